"""Camera-to-robot pose from keypoints: forward kinematics gives them in the robot base
frame, the SPDH network in the camera frame; a robust rigid fit pooled over a window
of frames gives T_cam_base, which the depth of a few of those frames then refines
(:mod:`hrc_perception.robot_pose.surface_fit`).

Frames: ``p_base`` robot base frame, ``p_cam`` camera optical frame; metres.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from hrc_perception.geometry import make_T
from hrc_perception.robot_pose.surface_fit import RobotSurface, SurfaceFit, SurfaceView, refine_T_cam_base


def weighted_rigid_fit(p_src: np.ndarray, p_dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """T [4, 4] (rotation + translation, no scale) minimising sum w_i |T p_src_i - p_dst_i|^2
    (Kabsch/Umeyama). p_src, p_dst: [N, 3], N >= 3 not collinear; weights [N] >= 0."""
    p_src, p_dst = np.asarray(p_src, dtype=np.float64), np.asarray(p_dst, dtype=np.float64)
    w = np.ones(len(p_src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ p_src, w @ p_dst
    H = (p_src - mu_s).T @ ((p_dst - mu_d) * w[:, None])
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    return make_T(R, mu_d - R @ mu_s)


@dataclass
class RigidFit:
    """T_dst_src [4, 4]; inliers [N] bool; rms_m: weighted RMS residual of the inliers;
    num_frames: frames that gave correspondences (1 for a single fit)."""
    T: np.ndarray
    inliers: np.ndarray
    rms_m: float
    num_frames: int = 1

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())


def _residuals(T: np.ndarray, p_src: np.ndarray, p_dst: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p_src @ T[:3, :3].T + T[:3, 3] - p_dst, axis=1)


def line_spread_m(points: np.ndarray) -> float:
    """RMS distance (metres) of points [N, 3] from their best-fit line: near 0 when they
    lie on a line (or on two spots), where a rotation about that line is undetermined."""
    c = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    sv = np.linalg.svd(c, compute_uv=False)
    return float(np.sqrt((sv[1:] ** 2).sum() / len(c))) if len(sv) > 1 else 0.0


def robust_rigid_fit(p_src: np.ndarray, p_dst: np.ndarray, weights: np.ndarray | None = None,
                     inlier_m: float = 0.04, min_points: int = 4, hypotheses: int = 100,
                     seed: int = 0, min_spread_m: float = 0.05) -> RigidFit | None:
    """Rigid fit that ignores outliers: RANSAC over 3-point samples (drawn in proportion
    to the weights) scored by the weight of the points within inlier_m, then weighted
    refits on the inliers until they stop changing. None when fewer than min_points
    points (or inliers) are left, every sample is degenerate, or the inliers' source
    points lie within min_spread_m of a line (:func:`line_spread_m`: e.g. only the
    robot's base joints, which do not move, were seen well)."""
    p_src, p_dst = np.asarray(p_src, dtype=np.float64), np.asarray(p_dst, dtype=np.float64)
    n = len(p_src)
    w = np.ones(n) if weights is None else np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if n < max(min_points, 3) or w.sum() <= 0:
        return None
    rng = np.random.default_rng(seed)
    prob = w / w.sum()
    best_T, best_score = None, -1.0
    for _ in range(hypotheses):
        idx = rng.choice(n, size=3, replace=False, p=prob if np.count_nonzero(prob) >= 3 else None)
        a, b, c = p_src[idx]
        if np.linalg.norm(np.cross(b - a, c - a)) < 1e-4:   # collinear: no unique rotation
            continue
        T = weighted_rigid_fit(p_src[idx], p_dst[idx])
        score = w[_residuals(T, p_src, p_dst) < inlier_m].sum()
        if score > best_score:
            best_T, best_score = T, score
    if best_T is None:
        return None
    inliers = _residuals(best_T, p_src, p_dst) < inlier_m
    T = best_T
    for _ in range(10):
        if inliers.sum() < max(min_points, 3):
            return None
        T = weighted_rigid_fit(p_src[inliers], p_dst[inliers], w[inliers] + 1e-12)
        new = _residuals(T, p_src, p_dst) < inlier_m
        if np.array_equal(new, inliers):
            break
        inliers = new
    if inliers.sum() < max(min_points, 3) or line_spread_m(p_src[inliers]) < min_spread_m:
        return None
    r = _residuals(T, p_src, p_dst)[inliers]
    wi = w[inliers] + 1e-12
    return RigidFit(T, inliers, float(np.sqrt((wi * r ** 2).sum() / wi.sum())))


class ExtrinsicsEstimator:
    """T_cam_base from the keypoints of the last window_s seconds of frames.

    add() takes one frame's keypoints in the base frame (forward kinematics) and in
    the camera frame (the network), with confidences and a valid mask; estimate()
    fits all valid pairs of the window at once (a static camera: more frames, more
    robot configurations, a better conditioned fit). A frame older than the newest
    by more than window_s is dropped, so out-of-order stamps cannot keep stale data.

    Given the robot and its surface, add() also keeps the frame's depth (a
    SurfaceView) when the newest kept one is at least window_s / max_views older, and
    refine() aligns the robot's surface to those views from a keypoint fit.
    """

    def __init__(self, window_s: float = 3.0, inlier_m: float = 0.04, min_points: int = 6,
                 max_frames: int = 200, robot=None, surface: RobotSurface | None = None, max_views: int = 8):
        self.window_s, self.inlier_m, self.min_points = float(window_s), float(inlier_m), int(min_points)
        self.robot, self.surface, self.max_views = robot, surface, int(max_views)
        self._frames: deque = deque(maxlen=max_frames)
        self._views: deque = deque(maxlen=max_views)

    def reset(self) -> None:
        self._frames.clear()
        self._views.clear()

    def add(self, stamp_s: float, p_base: np.ndarray, p_cam: np.ndarray, confidence: np.ndarray,
            valid: np.ndarray, view: SurfaceView | None = None) -> int:
        """Add one frame's keypoints ([J, 3] each, confidence and valid [J]) and
        optionally its depth; returns the number of its keypoint pairs kept (finite and valid)."""
        stamp_s = float(stamp_s)
        p_base, p_cam = np.asarray(p_base, dtype=np.float64), np.asarray(p_cam, dtype=np.float64)
        keep = np.asarray(valid, dtype=bool) & np.isfinite(p_base).all(1) & np.isfinite(p_cam).all(1)
        if keep.any():
            self._frames.append((stamp_s, p_base[keep], p_cam[keep], np.asarray(confidence)[keep]))
        if view is not None and self.surface is not None and (
                not self._views or abs(stamp_s - self._views[-1][0]) >= self.window_s / self.max_views):
            self._views.append((stamp_s, view))
        stamps = [f[0] for f in self._frames] + [v[0] for v in self._views]
        if stamps:
            newest = max(stamps)
            self._frames = deque((f for f in self._frames if newest - f[0] <= self.window_s),
                                 maxlen=self._frames.maxlen)
            self._views = deque((v for v in self._views if newest - v[0] <= self.window_s),
                                maxlen=self._views.maxlen)
        return int(keep.sum())

    @property
    def num_frames(self) -> int:
        return len(self._frames)

    @property
    def num_views(self) -> int:
        return len(self._views)

    @property
    def view_stamps(self) -> tuple[float, ...]:
        """Stamps (s) of the kept views: what refine() would align to."""
        return tuple(v[0] for v in self._views)

    def estimate(self) -> RigidFit | None:
        """The keypoint fit over the window, or None with too few confident pairs."""
        if not self._frames:
            return None
        p_base = np.concatenate([f[1] for f in self._frames])
        p_cam = np.concatenate([f[2] for f in self._frames])
        conf = np.concatenate([f[3] for f in self._frames])
        fit = robust_rigid_fit(p_base, p_cam, conf, self.inlier_m, self.min_points)
        if fit is not None:
            fit.num_frames = len(self._frames)
        return fit

    def refine(self, T_cam_base: np.ndarray) -> SurfaceFit | None:
        """T_cam_base [4, 4] (a keypoint fit) refined on the kept views' depth, or None
        without robot surface or views, or when the refinement refuses
        (:func:`~hrc_perception.robot_pose.surface_fit.refine_T_cam_base`)."""
        if self.surface is None or not self._views:
            return None
        return refine_T_cam_base(self.robot, self.surface, T_cam_base, [v[1] for v in self._views])


def joint_positions(model_joints: tuple[str, ...], names: list[str], positions: list[float],
                    required: np.ndarray | None = None) -> tuple[np.ndarray | None, str | None]:
    """(q [D] in the model's joint order, None) from a joint_states message's names and
    positions, or (None, reason). Unknown names are ignored; joints not given take 0
    unless required[d] (default: all) is True, which makes them a reason."""
    if len(names) != len(positions):
        return None, f"{len(names)} names but {len(positions)} positions"
    given = {n: float(p) for n, p in zip(names, positions)}
    req = np.ones(len(model_joints), bool) if required is None else np.asarray(required, bool)
    missing = [j for j, r in zip(model_joints, req) if r and j not in given]
    if missing:
        unknown = sorted(set(given) - set(model_joints))
        return None, (f"joint_states lacks {', '.join(missing)}"
                      + (f" (has unknown names {', '.join(unknown[:5])})" if unknown else ""))
    q = np.array([given.get(j, 0.0) for j in model_joints])
    if not np.isfinite(q).all():
        return None, "joint_states has non-finite positions"
    return q, None
