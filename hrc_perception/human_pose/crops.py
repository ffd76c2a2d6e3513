"""Person crops of a depth image for the SPDH backend: a square around the person's box,
sampled to size x size pixels, as an XYZ image of the person's own pixels.

Pixel convention as in :mod:`hrc_perception.geometry`: pixel centres at integer
coordinates. A crop of side S full-resolution pixels whose top-left corner is (x0, y0)
maps full-res (u, v) to crop (u', v') = ((u - x0) + 0.5) s - 0.5, s = size / S, so its
intrinsics are K_crop = A K with A = [[s, 0, s (0.5 - x0) - 0.5], [0, s, s (0.5 - y0) - 0.5],
[0, 0, 1]]. Crop pixel (r, c) takes the full-res pixel nearest to its centre.

The network sees the person relative to a reference point (the median of the person's
3D points): x and y minus the reference's, z minus the reference's plus
``Z_SHIFT_M`` (so every valid pixel has a positive depth, as the SPDH network expects);
pixels outside the mask or without depth are 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z_SHIFT_M = 2.0
"""Added to depths relative to the person's reference point: the network's depth range
(Z_SHIFT_M - 1, Z_SHIFT_M + 1) covers +-1 m around the person's middle."""


@dataclass
class PersonCrop:
    """xyz_m [size, size, 3] camera frame, metres, 0 outside the person or without depth;
    K_crop [3, 3]; ref_m [3] the reference point (camera frame, metres); box: (x0, y0, side)
    of the crop in full-resolution pixels."""
    xyz_m: np.ndarray
    K_crop: np.ndarray
    ref_m: np.ndarray
    box: tuple[int, int, int]


def shifted_xyz(xyz_m: np.ndarray, ref_m: np.ndarray) -> np.ndarray:
    """[S, S, 3] float32: a crop's XYZ image xyz_m [S, S, 3] (0 = no pixel) relative to
    its reference point ref_m [3], z shifted by Z_SHIFT_M; 0 where there is no pixel."""
    xyz = np.asarray(xyz_m, dtype=np.float32)
    valid = xyz[..., 2] > 0
    rel = xyz - np.asarray(ref_m, dtype=np.float32)
    rel[..., 2] += Z_SHIFT_M
    return np.where(valid[..., None], rel, 0.0).astype(np.float32)


def grow_mask_by_depth(mask: np.ndarray, depth_m: np.ndarray, iterations: int = 4, tol_m: float = 0.05
                       ) -> np.ndarray:
    """mask [H, W] bool grown by up to ``iterations`` pixels into neighbours with depth
    within tol_m of the mean depth of their masked 8-neighbours (a segmentation mask that
    stops short of a hand or a sleeve on the same surface; not across a depth edge).
    depth_m [H, W] metres (0 / NaN = none). Returns a new mask."""
    from scipy.ndimage import convolve
    m = np.asarray(mask, bool).copy()
    z = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, 0.0)
    kernel = np.ones((3, 3))
    for _ in range(iterations):
        on = (m & (z > 0)).astype(np.float64)
        n = convolve(on, kernel, mode="constant")
        mean = convolve(z * on, kernel, mode="constant") / np.maximum(n, 1)
        grow = ~m & (n > 0) & (z > 0) & (np.abs(z - mean) < tol_m)
        if not grow.any():
            break
        m |= grow
    return m


def crop_box(box_xyxy: np.ndarray, pad_fraction: float = 0.1) -> tuple[int, int, int]:
    """(x0, y0, side) of the square around box_xyxy [4] (pixels) grown by pad_fraction per side."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    side = max(int(round(max(x1 - x0, y1 - y0) * (1 + 2 * pad_fraction))), 4)
    return int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2)), side


def person_crop(depth_m: np.ndarray, K: np.ndarray, mask: np.ndarray, box_xyxy: np.ndarray, size: int = 128,
                pad_fraction: float = 0.1) -> PersonCrop | None:
    """The crop of one person (see module doc) from depth_m [H, W] (metres; 0/NaN = none),
    K [3, 3], mask [H, W] bool (the person's pixels), box_xyxy [4]; None when fewer than
    20 of the person's pixels have depth."""
    H, W = depth_m.shape
    x0, y0, side = crop_box(box_xyxy, pad_fraction)
    s = size / side
    c = np.arange(size)
    cols = np.floor(x0 + (c + 0.5) / s).astype(np.int64)      # the full-res pixel nearest to each centre
    rows = np.floor(y0 + (c + 0.5) / s).astype(np.int64)
    inside = (rows[:, None] >= 0) & (rows[:, None] < H) & (cols[None] >= 0) & (cols[None] < W)
    rr, cc = np.clip(rows, 0, H - 1), np.clip(cols, 0, W - 1)
    z = np.where(inside, depth_m[rr[:, None], cc[None]], 0.0)
    on = inside & mask[rr[:, None], cc[None]] & np.isfinite(z) & (z > 0)
    if on.sum() < 20:
        return None
    A = np.array([[s, 0.0, s * (0.5 - x0) - 0.5], [0.0, s, s * (0.5 - y0) - 0.5], [0.0, 0.0, 1.0]])
    K_crop = A @ np.asarray(K, dtype=np.float64)
    uu, vv = np.meshgrid(c.astype(np.float64), c.astype(np.float64))
    zz = np.where(on, z, 0.0)
    xyz = np.stack([(uu - K_crop[0, 2]) * zz / K_crop[0, 0], (vv - K_crop[1, 2]) * zz / K_crop[1, 1], zz], axis=-1)
    ref = np.median(xyz[on], axis=0)
    return PersonCrop(xyz.astype(np.float32), K_crop, ref, (x0, y0, side))
