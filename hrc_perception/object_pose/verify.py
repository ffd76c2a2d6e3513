"""Pose verification: turn an estimated pose about the part's own axes and keep the
turn whose model surface best explains the instance's observed points.

DenseFusion's per-pixel votes agree with each other even when they are wrong, and
for a flat, nearly symmetric part (the housing: a plate with an offset body) the
errors that remain after refinement are mostly turns about one of the part's axes
(on held-out-like tuning frames, 29 of 142 housings were off by 30-130 degrees,
almost all about the part's z axis). The observed depth points usually settle it:
a wrong turn leaves some of them far from the model's surface.

Hypotheses: the estimate itself and its turns by multiples of ``step_deg`` about
the model frame's x, y and z axes through the model's centroid (1 + 3 (360 /
step - 1) poses; 106 at 10 degrees). Score of a pose (R, t): the mean over the
observed points p (camera frame, metres) of min(distance from R^T (p - t) to the
nearest model surface point, 0.1 diameter), the truncation keeping stray mask
pixels (background, other parts) from deciding. The lowest score wins; ties keep
the estimate. The distances come from a grid per part, computed once (``GRID_CELLS``
cells along the longest side of the part's box grown by the truncation; a point's
distance is its cell centre's, within half a cell diagonal of the exact value), so
scoring 106 poses of 128 points is a few table look-ups, not a search.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

DEFAULT_STEP_DEG = 10.0
TRUNCATE_DIAMETERS = 0.1
GRID_CELLS = 64


def axis_turns(step_deg: float = DEFAULT_STEP_DEG) -> np.ndarray:
    """[H, 3, 3] rotations: the identity first, then turns by k * step_deg (k >= 1,
    below 360) about x, then y, then z. step_deg in (0, 180]; ValueError otherwise."""
    if not 0.0 < float(step_deg) <= 180.0:
        raise ValueError(f"step_deg must be in (0, 180], got {step_deg}")
    angles = np.arange(step_deg, 360.0 - 1e-6, step_deg)
    turns = [np.eye(3)]
    for axis in "xyz":
        turns += list(Rotation.from_euler(axis, angles[:, None], degrees=True).as_matrix())
    return np.stack(turns)


class DistanceGrid:
    """Truncated distance to a point set on a regular grid (model frame, metres).

    points_m: [M, 3] surface points; truncate_m: distances are capped at this; cells:
    cells along the longest side of the points' box grown by truncate_m per side.
    """

    def __init__(self, points_m: np.ndarray, truncate_m: float, cells: int = GRID_CELLS):
        points_m = np.asarray(points_m, np.float64).reshape(-1, 3)
        self.truncate_m = float(truncate_m)
        self.origin_m = points_m.min(axis=0) - self.truncate_m
        extent = points_m.max(axis=0) + self.truncate_m - self.origin_m
        self.cell_m = float(extent.max()) / cells
        self.shape = tuple(int(n) for n in np.maximum(np.ceil(extent / self.cell_m), 1).astype(int))
        centres = [(np.arange(n) + 0.5) * self.cell_m + o for n, o in zip(self.shape, self.origin_m)]
        grid = np.stack(np.meshgrid(*centres, indexing="ij"), axis=-1).reshape(-1, 3)
        dist, _ = cKDTree(points_m).query(grid, distance_upper_bound=self.truncate_m)
        self.table_m = np.minimum(dist, self.truncate_m).astype(np.float32).reshape(self.shape)

    def __call__(self, points_m: np.ndarray) -> np.ndarray:
        """Truncated distances [...] of points [..., 3] (model frame); truncate_m
        outside the grid."""
        idx = np.floor((points_m - self.origin_m) / self.cell_m).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < self.shape), axis=-1)
        out = np.full(points_m.shape[:-1], self.truncate_m, np.float32)
        i = idx[inside]
        out[inside] = self.table_m[i[:, 0], i[:, 1], i[:, 2]]
        return out


class PoseVerifier:
    """Verification against each part's surface points.

    part_points_m: per class index, [M, 3] points on the part's surface (model frame,
        metres). diameters_m: per class, the part's diameter (metres).
    """

    def __init__(self, part_points_m: list[np.ndarray], diameters_m: list[float],
                 step_deg: float = DEFAULT_STEP_DEG):
        if len(part_points_m) != len(diameters_m):
            raise ValueError(f"{len(part_points_m)} point sets for {len(diameters_m)} diameters")
        self.grids = [DistanceGrid(p, TRUNCATE_DIAMETERS * float(d)) for p, d in zip(part_points_m, diameters_m)]
        self.centroids_m = [np.asarray(p, np.float64).reshape(-1, 3).mean(axis=0) for p in part_points_m]
        self.turns = axis_turns(step_deg)

    def score_m(self, cls: int, points_cam_m: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Scores [H] (metres, lower is better) of poses R [H, 3, 3], t [H, 3]
        (model to camera) for the observed points [N, 3] (camera frame, metres)."""
        local = (points_cam_m[None] - t[:, None]) @ R        # rows R^T (p - t), [H, N, 3]
        return self.grids[cls](local).mean(axis=1)

    def verify(self, cls: int, points_cam_m: np.ndarray, R: np.ndarray, t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """The best-scoring of the turns of pose (R [3, 3], t [3]): (R, t)."""
        c = self.centroids_m[cls]
        Rh = R @ self.turns                                  # [H, 3, 3]
        th = t + R @ c - Rh @ c                              # the centroid stays where it was
        best = int(np.argmin(self.score_m(cls, np.asarray(points_cam_m, np.float64), Rh, th)))
        return Rh[best], th[best]
