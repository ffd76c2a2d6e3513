"""Pose verification: turn an estimated pose about the part's own axes, fit each
turn to the instance's observed points, and keep the turn whose model surface
explains them best.

DenseFusion's per-pixel votes agree with each other even when they are wrong, and
for the asymmetric parts the errors that remain after refinement are mostly turns
(on held-out-like tuning frames, 29 of 142 housings were off by 30-130 degrees,
almost all about the part's z axis; the bracket's are turns of 10-180 degrees about
various axes). The observed depth points usually settle it: a wrong turn leaves
some of them far from the model's surface. A turned estimate is rarely aligned
well enough to show that at once (its translation is the network's answer for the
wrong turn), so every turn is first fitted to the points.

Hypotheses: the estimate itself and its turns by multiples of ``step_deg`` about
the model frame's x, y and z axes through the model's centroid (1 + 3 (360 /
step - 1) poses; 106 at 10 degrees). Each is fitted to the points
(:meth:`PoseVerifier.align`): one translation step pairing every point with its
nearest surface point (a wide reach), one step of point-to-point ICP; the
``FINE_HYPOTHESES`` best then get ``FINE_ICP_ITERATIONS`` more, and the best of
those is returned (the fitted estimate when no turn does better: fitting also
more than halves the rotation error of right estimates, median 9.3 -> 3.8 degrees
on the tuning frames). Score of a pose (R, t): the mean over the observed points p (camera
frame, metres) of min(distance from R^T (p - t) to the nearest model surface
point, 0.1 diameter), the truncation keeping stray mask pixels (background,
other parts) from deciding; ICP pairs only points within the truncation.
Distances and nearest points come from a grid per part, computed once
(``GRID_CELLS`` cells along the longest side of the part's box grown by the
truncation; a point's distance is its cell centre's, within half a cell diagonal
of the exact value), so one ICP step of 106 poses of 128 points is a few table
look-ups and one batch of 3 x 3 SVDs.

Only parts without symmetry are verified: for a symmetric part turns about its
axis score alike and ADD-S forgives them, and on the tuning frames fitting turns
of the symmetric parts lost more (bolt 100% -> 97%) than it found.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

DEFAULT_STEP_DEG = 10.0
TRUNCATE_DIAMETERS = 0.1
GRID_CELLS = 64
FINE_HYPOTHESES = 10
FINE_ICP_ITERATIONS = 5


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
    """Nearest surface point and truncated distance to it, on a regular grid (model
    frame, metres).

    points_m: [M, 3] surface points; truncate_m: distances are capped at this; cells:
    cells along the longest side of the points' box grown by truncate_m per side.
    Per cell (C order): ``nearest_m`` [C, 3] float32, the surface point nearest to
    its centre, and ``distance_m`` [C] float32, the capped distance; the outermost
    layer of cells has distance truncate_m and answers for every point outside the
    grid.
    """

    def __init__(self, points_m: np.ndarray, truncate_m: float, cells: int = GRID_CELLS):
        points_m = np.asarray(points_m, np.float64).reshape(-1, 3)
        self.truncate_m = float(truncate_m)
        self.origin_m = points_m.min(axis=0) - self.truncate_m
        extent = points_m.max(axis=0) + self.truncate_m - self.origin_m
        self.cell_m = float(extent.max()) / cells
        self.shape = tuple(int(n) for n in np.maximum(np.ceil(extent / self.cell_m), 3))
        centres = [(np.arange(n) + 0.5) * self.cell_m + o for n, o in zip(self.shape, self.origin_m)]
        grid = np.stack(np.meshgrid(*centres, indexing="ij"), axis=-1)
        dist, nearest = cKDTree(points_m).query(grid.reshape(-1, 3))
        dist = np.minimum(dist, self.truncate_m).reshape(self.shape)
        for axis in range(3):                             # the outer layer stands for "outside"
            np.moveaxis(dist, axis, 0)[[0, -1]] = self.truncate_m
        self.nearest_m = points_m[nearest].astype(np.float32)
        self.distance_m = dist.reshape(-1).astype(np.float32)

    def _cells(self, coords: list[np.ndarray]) -> np.ndarray:
        """Cell indices (C order) [...] int32 of fractional cell coordinates along x,
        y, z (three arrays [...]), clamped to the grid."""
        flat = None
        for c, n in zip(coords, self.shape):
            i = np.clip(c, 0.0, n - 1.0).astype(np.int32)
            flat = i if flat is None else flat * n + i
        return flat

    def posed(self, points_cam_m: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Cell indices [N, H] of the observed points [N, 3] (camera frame) under each
        pose R [H, 3, 3], t [H, 3] (model to camera): the cells of the points
        R^T (p - t), one matrix product for all poses."""
        scale = R / self.cell_m                                           # [H, 3, 3]
        offset = (np.einsum("hj,hji->hi", t, R) + self.origin_m) / self.cell_m
        cells = (points_cam_m.astype(np.float32) @ scale.transpose(1, 2, 0).reshape(3, -1).astype(np.float32)
                 - offset.T.reshape(-1).astype(np.float32)).reshape(len(points_cam_m), 3, len(R))
        return self._cells([cells[:, k] for k in range(3)])


class PoseVerifier:
    """Verification against each part's surface points.

    part_points_m: per class index, [M, 3] points on the part's surface (model frame,
        metres). diameters_m: per class, the part's diameter (metres). symmetric: per
        class, whether the part has a symmetry (such parts are not verified; default
        none has).
    """

    def __init__(self, part_points_m: list[np.ndarray], diameters_m: list[float],
                 symmetric: list[bool] | None = None, step_deg: float = DEFAULT_STEP_DEG):
        symmetric = [False] * len(diameters_m) if symmetric is None else [bool(s) for s in symmetric]
        if not len(part_points_m) == len(diameters_m) == len(symmetric):
            raise ValueError(f"{len(part_points_m)} point sets, {len(diameters_m)} diameters and "
                             f"{len(symmetric)} symmetry flags")
        self.grids = [DistanceGrid(p, TRUNCATE_DIAMETERS * float(d)) for p, d in zip(part_points_m, diameters_m)]
        self.centroids_m = [np.asarray(p, np.float64).reshape(-1, 3).mean(axis=0) for p in part_points_m]
        self.symmetric = symmetric
        self.turns = axis_turns(step_deg)

    def score_m(self, cls: int, points_cam_m: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Scores [H] (metres, lower is better) of poses R [H, 3, 3], t [H, 3]
        (model to camera) for the observed points [N, 3] (camera frame, metres)."""
        grid = self.grids[cls]
        return np.take(grid.distance_m, grid.posed(points_cam_m, R, t)).mean(axis=0)

    def align(self, cls: int, points_cam_m: np.ndarray, R: np.ndarray, t: np.ndarray, iterations: int,
              rotate: bool = True, inliers_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Poses R [H, 3, 3], t [H, 3] after ``iterations`` of point-to-point ICP each:
        every observed point [N, 3] (camera frame) paired with the surface point
        nearest to it in the model frame, then the rigid fit of the pairs (Kabsch).
        inliers_only: pair only points closer to the surface than the truncation (a
        pose with fewer than 3 stays as it is); otherwise every point (a wider
        reach for a pose that is far off). rotate False: fit the translation only."""
        grid = self.grids[cls]
        for _ in range(iterations):
            cells = grid.posed(points_cam_m, R, t)                                 # [N, H]
            if inliers_only:
                w = (np.take(grid.distance_m, cells) < grid.truncate_m).astype(np.float32)
            else:
                w = np.ones(cells.shape, np.float32)
            n = w.sum(axis=0, dtype=np.float64)                                    # [H]
            ok = n >= 3
            if not ok.any():
                break
            wm = np.take(grid.nearest_m, cells, axis=0) * w[..., None]             # [N, H, 3]
            mu_model = wm.sum(axis=0, dtype=np.float64) / np.maximum(n, 1.0)[:, None]     # [H, 3]
            mu_cam = w.T.astype(np.float64) @ points_cam_m / np.maximum(n, 1.0)[:, None]
            if rotate:
                cov = (wm.reshape(len(w), -1).T.astype(np.float64) @ points_cam_m).reshape(-1, 3, 3) - (
                    n[:, None, None] * mu_model[:, :, None] * mu_cam[:, None, :])           # [H, 3, 3]
                U, _, Vt = np.linalg.svd(cov)
                V, Ut = np.swapaxes(Vt, 1, 2), np.swapaxes(U, 1, 2)
                Ut[:, 2] *= np.sign(np.linalg.det(V @ Ut))[:, None]   # a rotation, not a reflection
                R = np.where(ok[:, None, None], V @ Ut, R)
            t = np.where(ok[:, None], mu_cam - np.einsum("hij,hj->hi", R, mu_model), t)
        return R, t

    def verify(self, cls: int, points_cam_m: np.ndarray, R: np.ndarray, t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """The verified pose (R [3, 3], t [3]) of the estimate R, t (model to camera)
        given the observed points [N, 3] (camera frame, metres); the estimate itself
        for a symmetric part."""
        if self.symmetric[cls]:
            return R, t
        c = self.centroids_m[cls]
        points_cam_m = np.asarray(points_cam_m, np.float64)
        Rh = R @ self.turns                                  # [H, 3, 3]; turn 0 is the estimate
        th = t + R @ c - Rh @ c                              # the centroid stays where it was
        Rh, th = self.align(cls, points_cam_m, Rh, th, 1, rotate=False, inliers_only=False)
        Rh, th = self.align(cls, points_cam_m, Rh, th, 1)
        fine = np.argsort(self.score_m(cls, points_cam_m, Rh, th), kind="stable")[:FINE_HYPOTHESES]
        Rh, th = self.align(cls, points_cam_m, Rh[fine], th[fine], FINE_ICP_ITERATIONS)
        best = int(np.argmin(self.score_m(cls, points_cam_m, Rh, th)))
        return Rh[best], th[best]
