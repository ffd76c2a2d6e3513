"""Camera-to-robot pose refined on the depth itself: the robot's surface, posed by
forward kinematics of its joint positions, aligned to the observed XYZ images by
projective point-to-plane ICP, starting from the keypoint fit
(:mod:`hrc_perception.robot_pose.extrinsics`).

The keypoint fit inherits the network's keypoint errors (centimetres each); the
sensor measures the robot's surface directly at thousands of pixels. Once the
keypoint fit is within the association distance (~10 cm), aligning the posed
surface to the depth removes most of what is left.

Association (projective): each surface point that faces the camera is projected into
the XYZ image and paired with the point measured at that pixel when the two are
within ``max_dist_m``. A surface point hidden by something in front of it (a person,
a part, another link) sees that occluder, far in front, and is dropped; so is one
that projects beyond the silhouette onto the background. The pairs of all frames
(one camera, one robot base, a joint configuration per frame) give one Gauss-Newton
step on the 6 pose parameters (point-to-plane residuals along the surface normals,
Huber-weighted); the distance limit shrinks over the iterations.

Frames: ``T_cam_base`` maps robot base coordinates to the camera optical frame;
metres. XYZ images [h, w, 3] are camera-frame points per pixel (0 = no depth) with
their intrinsics ``K_xyz`` [3, 3].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrc_perception.geometry import make_T, pose_error, rotation_about_axis, sample_surface_m

DEFAULT_MAX_DIST_M = (0.10, 0.05, 0.03, 0.02)
"""Association distances, one stage each (metres), coarse to fine."""
HUBER_M = 0.01
"""Point-to-plane residuals beyond this (metres) get weight HUBER_M / |r|."""
MIN_PAIRS_PER_VIEW = 300
"""Fewest paired surface points per view for a fit (590-900 per view on the tuning set,
seed 1150 of config/cell_robot_pose.yaml; fewer: the robot mostly hidden or out of view)."""
MAX_MOVE = (0.10, 10.0)
"""(metres, degrees): a fit that moved further from its start is refused. From 10 deg /
10 cm off, fits on the tuning set often stop in a wrong alignment; from 6 deg / 6 cm
they do not, and the keypoint fits there were at most 6.1 deg / 3.0 cm off."""
MIN_FACING_COS = 0.3
"""Surface points seen more obliquely than this (cosine between their normal and the
viewing ray) are not paired: near the silhouette the measured depth mixes in the
background. (Chosen on a tuning set, seed 1150 of config/cell_robot_pose.yaml, among
0, 0.3, 0.5: 90% of fits within 0.9 cm / 0.75 deg from 6 cm / 6 deg off.)"""


@dataclass(frozen=True)
class RobotSurface:
    """Points on a robot's link meshes, each in its link's frame.

    links: link names; link_index [P] int (into links); points_m [P, 3] float32,
    metres; normals [P, 3] float32, outward unit normals.
    """
    links: tuple[str, ...]
    link_index: np.ndarray
    points_m: np.ndarray
    normals: np.ndarray


def robot_surface(robot, count: int = 4000, seed: int = 0) -> RobotSurface:
    """``count`` points spread over a robot's link meshes by area (a RobotModel loaded
    with its meshes), deterministic per seed. ValueError when it has no meshes."""
    meshes = list(robot.link_meshes)
    if not meshes:
        raise ValueError(f"robot {robot.name!r} has no link meshes (load the RobotModel with load_meshes=True)")
    areas = np.array([float(lm.mesh.area) for lm in meshes])
    counts = np.maximum(1, np.round(count * areas / areas.sum()).astype(int))
    links = tuple(dict.fromkeys(lm.link for lm in meshes))
    pts, nrm, idx = [], [], []
    for k, (lm, n) in enumerate(zip(meshes, counts)):
        p, normals = sample_surface_m(np.asarray(lm.mesh.vertices), np.asarray(lm.mesh.faces), int(n),
                                      seed=seed + k, with_normals=True)
        pts.append(p)
        nrm.append(normals)
        idx.append(np.full(len(p), links.index(lm.link)))
    return RobotSurface(links, np.concatenate(idx), np.concatenate(pts), np.concatenate(nrm))


def surface_in_base(surface: RobotSurface, robot, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points [P, 3], normals [P, 3]) of the surface in the robot base frame at joint
    positions q [D] (radians / metres)."""
    T = robot.link_transforms(np.asarray(q, dtype=np.float64))
    T_links = np.stack([T[name] for name in surface.links])[surface.link_index]   # [P, 4, 4]
    p = np.einsum("pij,pj->pi", T_links[:, :3, :3], surface.points_m) + T_links[:, :3, 3]
    n = np.einsum("pij,pj->pi", T_links[:, :3, :3], surface.normals)
    return p, n


@dataclass
class SurfaceView:
    """One frame for the fit: the robot's joint positions q [D] and the XYZ image
    xyz_m [h, w, 3] (any float dtype; camera frame, metres, 0 = none) with its
    intrinsics K_xyz [3, 3]."""
    q: np.ndarray
    xyz_m: np.ndarray
    K_xyz: np.ndarray


@dataclass
class SurfaceFit:
    """T [4, 4] T_cam_base; pairs: surface points paired with a measured point at the
    last iteration (all views); rms_m: their point-to-plane RMS (Huber-weighted);
    frames: views used."""
    T: np.ndarray
    pairs: int
    rms_m: float
    frames: int


def _pairs(p: np.ndarray, n: np.ndarray, xyz_m: np.ndarray, K: np.ndarray, max_dist_m: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """(indices [M] of the surface points p [P, 3] (camera frame, normals n [P, 3]) that
    face the camera and pair with a measured point, those measured points [M, 3])."""
    h, w = xyz_m.shape[:2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.rint(K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2])
        v = np.rint(K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2])
    facing = -(n * p).sum(1) / np.maximum(np.linalg.norm(p, axis=1), 1e-9)   # cosine to the viewing ray
    ok = (facing > MIN_FACING_COS) & (p[:, 2] > 0.05) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    idx = np.flatnonzero(ok)
    o = xyz_m[v[idx].astype(np.int64), u[idx].astype(np.int64)].astype(np.float64)
    keep = (o[:, 2] > 0) & (np.linalg.norm(p[idx] - o, axis=1) < max_dist_m)
    return idx[keep], o[keep]


def _twist_T(x: np.ndarray) -> np.ndarray:
    """4x4 transform of a small twist x = (rotation vector [3], translation [3])."""
    angle = float(np.linalg.norm(x[:3]))
    R = rotation_about_axis(x[:3] / angle, angle) if angle > 1e-12 else np.eye(3)
    return make_T(R, x[3:])


def refine_T_cam_base(robot, surface: RobotSurface, T_init: np.ndarray, views: list[SurfaceView],
                      iterations_per_stage: int = 6, max_dist_m: tuple[float, ...] = DEFAULT_MAX_DIST_M,
                      min_pairs_per_view: int = MIN_PAIRS_PER_VIEW, max_move: tuple[float, float] = MAX_MOVE
                      ) -> SurfaceFit | None:
    """T_cam_base aligning the robot's surface, posed by each view's joint positions, to
    each view's XYZ image (one static camera; see module doc), from T_init [4, 4]. None
    when fewer than min_pairs_per_view surface points per view find a measured partner
    (robot out of view or hidden, or T_init too far off), or when the fit moved further
    than max_move (metres, degrees) from T_init: beyond the range it converges from,
    so an alignment to the wrong surfaces."""
    T = np.asarray(T_init, dtype=np.float64).copy()
    surface_base = [surface_in_base(surface, robot, v.q) for v in views]
    pairs, rms = 0, float("nan")
    for dist in max_dist_m:
        for _ in range(iterations_per_stage):
            R, t = T[:3, :3], T[:3, 3]
            H, g = np.zeros((6, 6)), np.zeros(6)
            pairs, sq, wsum = 0, 0.0, 0.0
            for (p_b, n_b), view in zip(surface_base, views):
                p, n = p_b @ R.T + t, n_b @ R.T
                idx, o = _pairs(p, n, view.xyz_m, view.K_xyz, dist)
                p, n = p[idx], n[idx]
                r = ((p - o) * n).sum(1)                              # signed distances along the normals
                w = np.minimum(1.0, HUBER_M / np.maximum(np.abs(r), 1e-9))
                J = np.hstack([np.cross(p, n), n])                    # d r / d (rotation vector, translation)
                H += J.T @ (J * w[:, None])
                g += J.T @ (w * r)
                pairs += len(r)
                sq, wsum = sq + float((w * r * r).sum()), wsum + float(w.sum())
            if pairs < min_pairs_per_view * len(views):
                return None
            x = -np.linalg.solve(H + 1e-6 * np.eye(6), g)
            T = _twist_T(x) @ T
            rms = float(np.sqrt(sq / max(wsum, 1e-12)))
            if np.abs(x).max() < 1e-5:
                break
    moved_m, moved_deg = pose_error(T, T_init)
    if moved_m > max_move[0] or moved_deg > max_move[1]:
        return None
    return SurfaceFit(T, pairs, rms, len(views))
