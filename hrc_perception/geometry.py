"""Camera model, back-projection and rigid transforms (numpy only).

Conventions: metres, radians. Camera optical frame: z forward, x right, y down.
Homogeneous transforms are 4x4 float64 arrays named ``T_<to>_<from>``: a point
``p_from`` maps to ``p_to = T_to_from @ [p_from, 1]``. Quaternions are (x, y, z, w).
"""
from __future__ import annotations

import numpy as np


def make_K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole intrinsics matrix, [3, 3] float64, pixels."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 transform from rotation [3, 3] and translation [3]."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert_T(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform."""
    R = T[:3, :3]
    return make_T(R.T, -R.T @ T[:3, 3])


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points [..., 3]; returns [..., 3]."""
    return points @ T[:3, :3].T + T[:3, 3]


def project(points_cam_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel coordinates (u, v) [..., 2] of camera-frame points [..., 3] (z > 0).

    Pixel centres are at integer coordinates: the pixel in column c, row r spans
    [c - 0.5, c + 0.5) x [r - 0.5, r + 0.5).
    """
    z = points_cam_m[..., 2:3]
    uv1 = points_cam_m @ K.T
    return uv1[..., :2] / z


def backproject_pixels(uv_px: np.ndarray, depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points [N, 3] of pixels uv [N, 2] at z-depths [N] (metres)."""
    x = (uv_px[:, 0] - K[0, 2]) / K[0, 0] * depth_m
    y = (uv_px[:, 1] - K[1, 2]) / K[1, 1] * depth_m
    return np.stack([x, y, depth_m], axis=-1)


def mask_points_cam_m(mask: np.ndarray, depth_m: np.ndarray, K: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows [N], cols [N], camera-frame points [N, 3] in metres) of the pixels of mask
    [H, W] bool, back-projected at their z-depths depth_m [H, W] (the caller keeps invalid
    depths out of the mask)."""
    rows, cols = np.nonzero(mask)
    uv = np.stack([cols, rows], axis=1).astype(np.float64)
    return rows, cols, backproject_pixels(uv, depth_m[rows, cols].astype(np.float64), K)


def mask_point_cam_m(mask: np.ndarray, depth_m: np.ndarray, K: np.ndarray, origin_uv_px: tuple[int, int] = (0, 0),
                     min_valid_px: int = 10) -> np.ndarray | None:
    """Camera-frame point [3] (metres) of an instance seen in a depth image.

    mask [h, w] bool and depth_m [h, w] z-depth (0 or non-finite = invalid) of the same
    image region, whose top-left pixel is ``origin_uv_px`` (column, row) in the image K
    belongs to (e.g. the instance's ROI; (0, 0) for whole images). Among the mask's
    pixels with valid depth: the median depth, placed at their median pixel (u, v) --
    robust to the background seen through a ragged mask edge. None when fewer than
    ``min_valid_px`` mask pixels have a valid depth.
    """
    if mask.shape != depth_m.shape:
        raise ValueError(f"mask {mask.shape} and depth {depth_m.shape} differ in size")
    rows, cols = np.nonzero(mask & np.isfinite(depth_m) & (depth_m > 0))
    if len(rows) < max(int(min_valid_px), 1):
        return None
    z = float(np.median(depth_m[rows, cols]))
    uv = np.array([[origin_uv_px[0] + np.median(cols), origin_uv_px[1] + np.median(rows)]], dtype=np.float64)
    return backproject_pixels(uv, np.array([z]), K)[0]


def xyz_image(depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """XYZ image [H, W, 3] float32 (camera frame, metres) of a z-depth image [H, W].

    Invalid depth (0 or non-finite) gives (0, 0, 0).
    """
    h, w = depth_m.shape
    z = np.where(np.isfinite(depth_m), depth_m, 0.0).astype(np.float32)
    u = (np.arange(w, dtype=np.float32) - np.float32(K[0, 2])) / np.float32(K[0, 0])
    v = (np.arange(h, dtype=np.float32) - np.float32(K[1, 2])) / np.float32(K[1, 1])
    return np.stack([z * u[None, :], z * v[:, None], z], axis=-1)


def pixel_rays(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Camera-frame ray directions [H, W, 3] float64 with unit z component.

    A hit at parameter t along such a ray lies at z-depth t.
    """
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)


def rotation_about_axis(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation matrix [3, 3] of angle_rad about a (not necessarily unit) axis [3]."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    x, y, z = axis
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    C = 1.0 - c
    return np.array([
        [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
        [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
        [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
    ])


def rot_x(a: float) -> np.ndarray:
    return rotation_about_axis(np.array([1.0, 0, 0]), a)


def rot_y(a: float) -> np.ndarray:
    return rotation_about_axis(np.array([0, 1.0, 0]), a)


def rot_z(a: float) -> np.ndarray:
    return rotation_about_axis(np.array([0, 0, 1.0]), a)


def pose_error(T_est: np.ndarray, T_ref: np.ndarray) -> tuple[float, float]:
    """(translation error in metres, rotation error in degrees) between two 4x4 poses."""
    dt = float(np.linalg.norm(T_est[:3, 3] - T_ref[:3, 3]))
    cos = (np.trace(T_est[:3, :3].T @ T_ref[:3, :3]) - 1.0) / 2.0
    return dt, float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def look_at(eye_m: np.ndarray, target_m: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0]),
            roll_rad: float = 0.0) -> np.ndarray:
    """T_world_cam of an optical-frame camera at eye looking at target.

    The camera's z axis points at the target, its y axis (image down) points as
    close to -up as possible, then the camera rolls by roll_rad about its z axis.
    """
    z = np.asarray(target_m, float) - np.asarray(eye_m, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to up")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1) @ rot_z(roll_rad)
    return make_T(R, eye_m)


def quaternion_from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a rotation matrix [3, 3]."""
    m = R
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quaternion(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix [3, 3] of a quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(q_xyzw, float) / np.linalg.norm(q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def masks_to_boxes_xyxy(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [N, 4] float32 xyxy (pixel edges: x1 = last column + 1) of masks [N, H, W]
    and keep [N] bool (masks with at least one pixel and a box of >= 1 px)."""
    n = len(masks)
    boxes = np.zeros((n, 4), np.float32)
    keep = np.zeros(n, bool)
    for i, m in enumerate(masks):
        rows = np.flatnonzero(m.any(axis=1))
        if len(rows) == 0:
            continue
        cols = np.flatnonzero(m.any(axis=0))
        boxes[i] = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
        keep[i] = True
    return boxes, keep


def sample_surface_m(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0,
                     with_normals: bool = False):
    """``count`` points [count, 3] float32 uniformly on a triangle mesh's surface
    (area-weighted triangles, uniform barycentric coordinates), deterministic per seed.
    With with_normals, (points, normals [count, 3] float32): each point's triangle's
    unit normal, by the faces' winding (counter-clockwise seen from outside = outward)."""
    rng = np.random.default_rng(seed)
    tri = np.asarray(vertices)[faces]                                 # [F, 3, 3]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    if not np.isfinite(area).all() or area.sum() <= 0:
        raise ValueError("mesh has no surface area")
    pick = rng.choice(len(faces), count, p=area / area.sum())
    a, b = rng.random((2, count))
    flip = a + b > 1.0
    a[flip], b[flip] = 1.0 - a[flip], 1.0 - b[flip]
    t = tri[pick]
    points = (t[:, 0] + a[:, None] * (t[:, 1] - t[:, 0]) + b[:, None] * (t[:, 2] - t[:, 0])).astype(np.float32)
    if not with_normals:
        return points
    normals = cross[pick] / np.maximum(2.0 * area[pick], 1e-12)[:, None]
    return points, normals.astype(np.float32)
