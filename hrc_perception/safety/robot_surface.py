"""The robot's link surfaces as points, to explain the depth pixels the robot covers.

Each link's URDF mesh (visual origin applied) sampled at about ``spacing_m``, posed per
frame with the link transforms of forward kinematics at joint_states and the
camera-to-robot pose. A depth point within ``margin_m + spacing_m`` of a surface point
is the robot (:meth:`RobotSurface.explains`). Metres throughout.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


class RobotSurface:
    """link_points {link: [N, 3] points in the link frame}, sampled spacing_m apart."""

    def __init__(self, link_points: dict[str, np.ndarray], spacing_m: float):
        if not spacing_m > 0:
            raise ValueError(f"spacing_m must be > 0, got {spacing_m}")
        self.link_points = {k: np.asarray(v, dtype=np.float64).reshape(-1, 3) for k, v in link_points.items()}
        self.spacing_m = float(spacing_m)

    @classmethod
    def from_model(cls, model, spacing_m: float = 0.01) -> "RobotSurface":
        """From a :class:`~hrc_perception.sim.robot.RobotModel` with its meshes loaded:
        each link's vertices and area / spacing^2 points spread over its faces (seeded: the
        same points every run)."""
        from trimesh.sample import sample_surface
        if not model.link_meshes:
            raise ValueError("the robot model has no link meshes (load_meshes=False?)")
        points: dict[str, list[np.ndarray]] = {}
        for k, lm in enumerate(model.link_meshes):
            n = int(np.ceil(lm.mesh.area / spacing_m ** 2))
            spread = sample_surface(lm.mesh, n, seed=k)[0] if n > 0 else np.zeros((0, 3))
            points.setdefault(lm.link, []).extend([np.asarray(lm.mesh.vertices), np.asarray(spread)])
        return cls({k: np.concatenate(v) for k, v in points.items()}, spacing_m)

    def posed(self, T_frame_link: dict[str, np.ndarray]) -> np.ndarray:
        """Surface points [M, 3] in the frame of T_frame_link {link: [4, 4]} (every link of
        the surface must be there: KeyError otherwise)."""
        parts = [p @ T_frame_link[link][:3, :3].T + T_frame_link[link][:3, 3] for link, p in self.link_points.items()]
        return np.concatenate(parts) if parts else np.zeros((0, 3))

    def explains(self, points_m: np.ndarray, surface_m: np.ndarray, margin_m: np.ndarray | float) -> np.ndarray:
        """bool [N]: points [N, 3] within margin_m (per point [N] or one value, plus the
        sampling spacing) of the posed surface points surface_m [M, 3] (same frame)."""
        pts = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
        if len(pts) == 0 or len(surface_m) == 0:
            return np.zeros(len(pts), bool)
        reach = np.broadcast_to(np.asarray(margin_m, dtype=np.float64), (len(pts),)) + self.spacing_m
        r = float(reach.max())
        lo, hi = surface_m.min(axis=0) - r, surface_m.max(axis=0) + r
        near = np.nonzero(((pts >= lo) & (pts <= hi)).all(axis=1))[0]      # the surface's box first
        out = np.zeros(len(pts), bool)
        if len(near):
            dist, _ = cKDTree(surface_m).query(pts[near], k=1, distance_upper_bound=r)
            out[near] = dist <= reach[near]
        return out
