"""2D joints + depth image -> 3D joints in the camera optical frame.

Depth per joint: the valid depth pixels in a window around the joint (only the
person's own pixels when a mask is given), then the front cluster of them (values within
``front_band_m`` of a low quantile: background seen past a thin limb is further away
and drops out), its median. The joint centre lies behind the visible surface: a
per-joint offset (metres along the ray) is added.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrc_perception.skeletons import COCO17_NAMES

# Depth of each COCO-17 joint centre behind the body surface the camera sees (metres):
# about half the limb's thickness (head: the skull's, torso joints: the trunk's).
COCO17_SURFACE_OFFSET_M: dict[str, float] = {
    "nose": 0.02, "left_eye": 0.03, "right_eye": 0.03, "left_ear": 0.06, "right_ear": 0.06,
    "left_shoulder": 0.06, "right_shoulder": 0.06, "left_elbow": 0.04, "right_elbow": 0.04,
    "left_wrist": 0.03, "right_wrist": 0.03, "left_hip": 0.08, "right_hip": 0.08,
    "left_knee": 0.05, "right_knee": 0.05, "left_ankle": 0.04, "right_ankle": 0.04}


@dataclass(frozen=True)
class LiftingParams:
    window_px: int = 4                 # half-size of the depth window (a 9 x 9 window)
    front_quantile: float = 0.2        # the front surface: this quantile of the window's depths
    front_band_m: float = 0.12         # depths within this of it are the body, the rest background
    min_pixels: int = 5                # fewer valid depth pixels: the joint's depth is unknown
    use_surface_offset: bool = True    # add COCO17_SURFACE_OFFSET_M (joint centre behind the surface)

    def __post_init__(self):
        if self.window_px < 0 or self.min_pixels < 1 or not 0.0 <= self.front_quantile <= 1.0 \
                or not self.front_band_m > 0.0:
            raise ValueError(f"invalid lifting parameters: {self}")


def joint_depth(depth_m: np.ndarray, u_px: float, v_px: float, params: LiftingParams,
                mask: np.ndarray | None = None) -> tuple[float, float]:
    """(surface depth in metres or NaN, fraction of the window with usable depth) at pixel
    (u, v) of depth_m [H, W] (metres; 0, NaN or inf = no depth). mask [H, W] bool, optional:
    the person's pixels, the only ones used (a joint hidden behind something else has
    none of them around it: unknown, rather than the occluder's depth)."""
    h, w = depth_m.shape
    c, r = int(round(u_px)), int(round(v_px))
    k = params.window_px
    r0, r1, c0, c1 = max(r - k, 0), min(r + k + 1, h), max(c - k, 0), min(c + k + 1, w)
    if r0 >= r1 or c0 >= c1:
        return float("nan"), 0.0
    win = depth_m[r0:r1, c0:c1]
    valid = np.isfinite(win) & (win > 0)
    if mask is not None:
        valid &= mask[r0:r1, c0:c1]
    z = win[valid]
    if len(z) < params.min_pixels:
        return float("nan"), len(z) / float((2 * k + 1) ** 2)
    front = np.quantile(z, params.front_quantile)
    body = z[z <= front + params.front_band_m]
    return float(np.median(body)), len(body) / float((2 * k + 1) ** 2)


def lift_joints(uv_px: np.ndarray, confidence: np.ndarray, depth_m: np.ndarray, K: np.ndarray,
                params: LiftingParams = LiftingParams(), mask: np.ndarray | None = None,
                joint_names: tuple[str, ...] = COCO17_NAMES) -> tuple[np.ndarray, np.ndarray]:
    """3D joints (camera optical frame, metres) from 2D joints and an aligned depth image.

    uv_px [J, 2] pixels (column, row; NaN = not found); confidence [J] in 0..1 (2D);
    depth_m [H, W] metres; K [3, 3] intrinsics of that image; mask [H, W] bool or None.
    Returns (xyz_m [J, 3], NaN where unknown; confidence [J]: the 2D confidence times
    the window's usable-depth fraction, capped at 1, 0 where unknown).
    """
    uv = np.asarray(uv_px, dtype=np.float64).reshape(-1, 2)
    conf2d = np.asarray(confidence, dtype=np.float64).reshape(-1)
    if len(conf2d) != len(uv):
        raise ValueError(f"uv_px has {len(uv)} joints, confidence {len(conf2d)}")
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f"depth_m must be [H, W], got shape {depth_m.shape}")
    if mask is not None and mask.shape != depth_m.shape:
        raise ValueError(f"mask shape {mask.shape} differs from depth {depth_m.shape}")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    xyz = np.full((len(uv), 3), np.nan)
    conf = np.zeros(len(uv))
    h, w = depth_m.shape
    for j, (u, v) in enumerate(uv):
        if not (np.isfinite(u) and np.isfinite(v) and conf2d[j] > 0 and -0.5 <= u < w - 0.5 and -0.5 <= v < h - 0.5):
            continue
        z, frac = joint_depth(depth_m, u, v, params, mask)
        if not np.isfinite(z):
            continue
        if params.use_surface_offset and j < len(joint_names):
            z += COCO17_SURFACE_OFFSET_M.get(joint_names[j], 0.0)
        xyz[j] = ((u - cx) * z / fx, (v - cy) * z / fy, z)
        conf[j] = min(1.0, conf2d[j] * min(1.0, 2.0 * frac))
    return xyz, conf
