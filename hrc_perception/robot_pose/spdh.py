"""Semi-Perspective Decoupled Heatmaps (SPDH): encoding 3D joints as heatmaps and back.

Each joint j has two heatmaps of the same size [h, w]:

- the **uv plane**: a Gaussian at the joint's projection (u, v) in an image of
  h x w pixels (intrinsics ``K_hm``, pixel centres at integer coordinates);
- the **uz plane**: a Gaussian at (u, row(z)) where the rows quantize the joint's
  depth z (camera optical frame, metres) into h bins over ``z_range_m``: row r
  covers [z_min + r * bin, z_min + (r + 1) * bin) and its centre is z_min + (r + 0.5) * bin.

Decoding takes the peak of each plane with a sub-pixel fit of a parabola to the log
of the heatmap around the peak (exact for a sampled Gaussian), fuses the two u
estimates by their peak heights, reads z from the uz row and back-projects (u, v, z)
with ``K_hm``. Encode -> decode returns the joint exactly (up to float error) when its
Gaussians lie inside the planes; the quantization is only that of the grid's extent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeatmapSpec:
    """hw: (h, w) of every heatmap; z_range_m: depths covered by the uz plane's h rows;
    sigma_px: Gaussian std in heatmap pixels (uv) and rows (uz)."""
    hw: tuple[int, int] = (120, 160)
    z_range_m: tuple[float, float] = (0.5, 4.5)
    sigma_px: float = 2.0

    @property
    def z_bin_m(self) -> float:
        """Depth covered by one uz row, metres."""
        return (self.z_range_m[1] - self.z_range_m[0]) / self.hw[0]

    def z_to_row(self, z_m: np.ndarray) -> np.ndarray:
        """Continuous uz row coordinate of depths z_m (row centres at integers)."""
        return (np.asarray(z_m, dtype=np.float64) - self.z_range_m[0]) / self.z_bin_m - 0.5

    def row_to_z(self, row: np.ndarray) -> np.ndarray:
        """Depth, metres, of continuous uz row coordinates."""
        return self.z_range_m[0] + (np.asarray(row, dtype=np.float64) + 0.5) * self.z_bin_m


def _gaussian(h: int, w: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    x = np.exp(-0.5 * ((np.arange(w) - cx) / sigma) ** 2)
    y = np.exp(-0.5 * ((np.arange(h) - cy) / sigma) ** 2)
    return (y[:, None] * x[None, :]).astype(np.float32)


def encode(xyz_cam_m: np.ndarray, K_hm: np.ndarray, spec: HeatmapSpec, valid: np.ndarray | None = None
           ) -> np.ndarray:
    """Heatmaps [2J, h, w] float32 of joints xyz_cam_m [J, 3] (camera frame, metres):
    channels 0..J-1 the uv planes, J..2J-1 the uz planes, peak 1.

    A joint gets all-zero planes when valid[j] is False, its depth is <= 0 or outside
    z_range_m, or its projection lies more than 3 sigma outside the image."""
    xyz = np.asarray(xyz_cam_m, dtype=np.float64)
    J = len(xyz)
    h, w = spec.hw
    out = np.zeros((2 * J, h, w), dtype=np.float32)
    ok = np.ones(J, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).copy()
    ok &= np.isfinite(xyz).all(axis=1) & (xyz[:, 2] > 0)
    ok &= (xyz[:, 2] >= spec.z_range_m[0]) & (xyz[:, 2] < spec.z_range_m[1])
    z = np.where(ok, xyz[:, 2], 1.0)
    u = K_hm[0, 0] * xyz[:, 0] / z + K_hm[0, 2]
    v = K_hm[1, 1] * xyz[:, 1] / z + K_hm[1, 2]
    margin = 3 * spec.sigma_px
    ok &= (u > -margin) & (u < w - 1 + margin) & (v > -margin) & (v < h - 1 + margin)
    rows = spec.z_to_row(z)
    for j in np.flatnonzero(ok):
        out[j] = _gaussian(h, w, u[j], v[j], spec.sigma_px)
        out[J + j] = _gaussian(h, w, u[j], rows[j], spec.sigma_px)
    return out


def heatmaps_from_logits(logits: np.ndarray, sigma_px: float) -> np.ndarray:
    """Network logits [2J, h, w] -> heatmaps [2J, h, w] on the scale of :func:`encode`:
    each channel's spatial softmax times 2 pi sigma^2, so a distribution shaped like the
    training target (a normalised Gaussian of sigma_px) peaks at ~1 and a spread-out
    one lower (the peak height is the decoder's confidence)."""
    x = np.asarray(logits, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1)
    p = np.exp(flat - flat.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p * 2 * np.pi * sigma_px ** 2).reshape(x.shape).astype(np.float32)


def _subpixel_peak(hm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x [N], y [N], peak [N]) of heatmaps hm [N, h, w]: the argmax moved by a 1D
    parabola fitted to log(hm) along each axis (offset limited to +-1 pixel; none at
    the border or where the neighbours are not positive)."""
    N, h, w = hm.shape
    flat = hm.reshape(N, -1).argmax(axis=1)
    y0, x0 = np.divmod(flat, w)
    n = np.arange(N)
    peak = hm[n, y0, x0].astype(np.float64)

    def offset(lo, mid, hi):
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b, c = np.log(lo), np.log(mid), np.log(hi)
            d = (a - c) / (2.0 * (a - 2.0 * b + c))
        good = (lo > 0) & (mid > 0) & (hi > 0) & np.isfinite(d)
        return np.where(good, np.clip(d, -1.0, 1.0), 0.0)

    x, y = x0.astype(np.float64), y0.astype(np.float64)
    inner_x = (x0 > 0) & (x0 < w - 1)
    xl, xr = np.clip(x0 - 1, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    x = x + np.where(inner_x, offset(hm[n, y0, xl].astype(np.float64), peak, hm[n, y0, xr].astype(np.float64)), 0)
    inner_y = (y0 > 0) & (y0 < h - 1)
    yu, yd = np.clip(y0 - 1, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    y = y + np.where(inner_y, offset(hm[n, yu, x0].astype(np.float64), peak, hm[n, yd, x0].astype(np.float64)), 0)
    return x, y, peak


@dataclass
class DecodedJoints:
    """Joints decoded from SPDH heatmaps.

    xyz_cam_m: [J, 3] camera frame, metres. uv_hm: [J, 2] pixel coordinates in the
    heatmap image (u fused from both planes, v from the uv plane). z_m: [J].
    confidence: [J] in [0, 1], the lower of the two planes' peak heights.
    """
    xyz_cam_m: np.ndarray
    uv_hm: np.ndarray
    z_m: np.ndarray
    confidence: np.ndarray


def decode(heatmaps: np.ndarray, K_hm: np.ndarray, spec: HeatmapSpec) -> DecodedJoints:
    """3D joints from heatmaps [2J, h, w] (uv planes, then uz planes; see module doc)."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 3 or hm.shape[0] % 2 or tuple(hm.shape[1:]) != tuple(spec.hw):
        raise ValueError(f"heatmaps must be [2J, {spec.hw[0]}, {spec.hw[1]}], got {list(hm.shape)}")
    J = hm.shape[0] // 2
    u_uv, v_uv, c_uv = _subpixel_peak(hm[:J])
    u_uz, row_uz, c_uz = _subpixel_peak(hm[J:])
    w_uv, w_uz = np.maximum(c_uv, 1e-6), np.maximum(c_uz, 1e-6)
    u = (w_uv * u_uv + w_uz * u_uz) / (w_uv + w_uz)
    z = spec.row_to_z(row_uz)
    x = (u - K_hm[0, 2]) * z / K_hm[0, 0]
    y = (v_uv - K_hm[1, 2]) * z / K_hm[1, 1]
    conf = np.clip(np.minimum(c_uv, c_uz), 0.0, 1.0)
    return DecodedJoints(np.stack([x, y, z], axis=1), np.stack([u, v_uv], axis=1), z, conf)


def decode_uv_depth(heatmaps: np.ndarray, K_hm: np.ndarray, xyz_image_m: np.ndarray, window_px: int = 1
                    ) -> DecodedJoints:
    """The 2D + depth baseline: (u, v) from the uv planes of heatmaps [2J, h, w] only,
    z = median of the valid depths of xyz_image_m [h, w, 3] (the network's input, same
    grid) within +-window_px of the peak pixel; NaN joint and confidence 0 where there is none."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    J = hm.shape[0] // 2
    h, w = hm.shape[1:]
    u, v, c = _subpixel_peak(hm[:J])
    z = np.full(J, np.nan)
    for j in range(J):
        r, col = int(round(v[j])), int(round(u[j]))
        zs = xyz_image_m[max(r - window_px, 0):r + window_px + 1, max(col - window_px, 0):col + window_px + 1, 2]
        zs = zs[zs > 0]
        if len(zs):
            z[j] = float(np.median(zs))
    x = (u - K_hm[0, 2]) * z / K_hm[0, 0]
    y = (v - K_hm[1, 2]) * z / K_hm[1, 1]
    conf = np.where(np.isfinite(z), np.clip(c, 0.0, 1.0), 0.0)
    return DecodedJoints(np.stack([x, y, z], axis=1), np.stack([u, v], axis=1), z, conf)
