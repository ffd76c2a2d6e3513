"""A differentiable soft silhouette and depth renderer in torch (CPU), by splatting a
part's surface points.

A part is a set of points spread uniformly over its surface (model frame, metres),
each standing for ``area_per_point_m2`` of surface. Under a pose (R, t: model to
camera optical frame) each point projects with the pinhole intrinsics K and is
splatted as a small isotropic Gaussian onto the pixels of a square window of the
image resampled to ``size`` x ``size`` (a :class:`Window`), covering the
neighbourhood of ``2 * SPLAT_RADIUS_PX + 1`` pixels on a side around it:

- coverage density D(pixel) = sum over points of the point's area projected to
  pixels times its normalised Gaussian at the pixel (about the number of surface
  layers over the pixel, front and back: a closed surface gives about 2);
  silhouette = 1 - exp(-KAPPA * D), in [0, 1);
- depth (metres, along the optical axis): the points' z averaged with the same
  weights times sigmoid((z_front + front_m - z) / (0.2 front_m)), z_front the nearest
  point splatted on the pixel: a soft z-buffer that keeps the points within about
  front_m of the nearest one (the front surface, also where it slopes across the
  splat) and drops the back of the part.

Everything is differentiable in the point positions, so in R and t (the Gaussians
move with the projected points; the z-buffer's z_front is held fixed). No mesh and
no normals are needed: the silhouette of all surface points is the part's silhouette.

Image convention: K maps camera-frame points to pixel coordinates with pixel
centres at integers (u column, v row); a window (x0, y0, side) is in pixel-edge
coordinates (the image's top-left corner is (0, 0); pixel u covers [u, u + 1)),
and its crop pixel j has its centre at image edge coordinate x0 + (j + 0.5) side / size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

SPLAT_RADIUS_PX = 1
"""Each point reaches this many crop pixels each way (a 3 x 3 neighbourhood)."""
KAPPA = 1.0
"""Silhouette = 1 - exp(-KAPPA * coverage density); two layers give 0.86."""
SIGMA_SPACING = 0.6
"""A point's Gaussian has sigma = this times the projected point spacing (pixels),
within [SIGMA_MIN_PX, the splat radius]: wide enough to close the gaps between points."""
SIGMA_MIN_PX = 0.5


@dataclass(frozen=True)
class Window:
    """A square image window resampled to size x size crop pixels: (x0, y0) its
    top-left corner and side its side, in image pixel-edge coordinates."""
    x0: float
    y0: float
    side: float
    size: int

    @property
    def px_per_image_px(self) -> float:
        return self.size / self.side


def area_per_point_m2(points_m: np.ndarray) -> float:
    """Surface area each of a uniform sample of surface points stands for (m^2),
    from the median nearest-neighbour distance s of the points [M, 3]: for points
    spread at random over a surface at density rho, the mean nearest-neighbour
    distance is 1 / (2 sqrt(rho)), so 1 / rho = (2 s)^2 (the median is a little
    below the mean, which keeps the estimate conservative)."""
    points_m = np.asarray(points_m, np.float64).reshape(-1, 3)
    if len(points_m) < 2:
        raise ValueError("need at least 2 surface points")
    dist, _ = cKDTree(points_m).query(points_m, k=2)
    return float((2.0 * np.median(dist[:, 1])) ** 2)


def splat(points_m: Tensor, area_m2, R: Tensor, t: Tensor, K: Tensor, window,
          front_m: float = 0.01, valid: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Soft silhouettes and depths of H posed point sets.

    points_m [M, 3] (one part under every pose) or [H, M, 3] (a point set per pose:
    several parts at once), model frame, metres; area_m2: surface area per point, a float
    or [H]; R [H, 3, 3], t [H, 3] (model to camera, metres); K [3, 3] or [H, 3, 3]; window: where to
    render, one Window or a sequence of H (all of one size); front_m: the soft z-buffer's
    depth of the front surface; valid: optional [H, M] bool, False for padding points
    (point sets of different sizes). Returns (silhouette [H, S, S] in [0, 1), depth_m
    [H, S, S] (0 where nothing is splatted), weight [H, S, S] (the depth's weights,
    > 0 where some point reaches)). Points behind the camera (z <= 1 mm) are dropped.
    """
    H = R.shape[0]
    dtype = R.dtype
    windows = [window] * H if isinstance(window, Window) else list(window)
    S = windows[0].size
    if len(windows) != H or any(w.size != S for w in windows):
        raise ValueError(f"need {H} windows of one size, got {[w.size for w in windows]}")
    x0 = torch.tensor([w.x0 for w in windows], dtype=dtype)[:, None]
    y0 = torch.tensor([w.y0 for w in windows], dtype=dtype)[:, None]
    scale = torch.tensor([w.px_per_image_px for w in windows], dtype=dtype)[:, None]
    area = torch.as_tensor(area_m2, dtype=dtype).reshape(-1, 1).expand(H, 1)
    pts = points_m.to(dtype)
    p = (torch.einsum("hij,mj->hmi", R, pts) if pts.dim() == 2 else torch.einsum("hij,hmj->hmi", R, pts)) \
        + t[:, None, :]                                                               # [H, M, 3]
    z = p[..., 2]
    ahead = z > 1e-3
    if valid is not None:
        ahead = ahead & valid
    zc = torch.where(ahead, z, torch.ones_like(z))
    fx, fy, cx, cy = (K[..., i, j].reshape(-1, 1).to(dtype) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    u = ((fx * p[..., 0] / zc + cx + 0.5 - x0) * scale - 0.5)                         # crop pixel coordinates
    v = ((fy * p[..., 1] / zc + cy + 0.5 - y0) * scale - 0.5)
    f_px = fx * scale                                                                 # [H, 1]
    spacing_px = area.sqrt() * f_px / zc                                              # [H, M]
    sigma = (SIGMA_SPACING * spacing_px).clamp(SIGMA_MIN_PX, float(SPLAT_RADIUS_PX))
    coverage_px2 = area * (f_px / zc) ** 2
    offsets = torch.arange(-SPLAT_RADIUS_PX, SPLAT_RADIUS_PX + 1, dtype=dtype)
    cu = torch.round(u.detach())[..., None, None] + offsets[None, :]                 # [H, M, 1, R]
    cv = torch.round(v.detach())[..., None, None] + offsets[:, None]                 # [H, M, R, 1]
    d2 = (cu - u[..., None, None]) ** 2 + (cv - v[..., None, None]) ** 2             # [H, M, R, R]
    s2 = (sigma ** 2)[..., None, None]
    g = (coverage_px2[..., None, None] / (2.0 * np.pi * s2)) * torch.exp(-0.5 * d2 / s2)
    inside = (cu >= 0) & (cu < S) & (cv >= 0) & (cv < S) & ahead[..., None, None]
    n_pix = H * S * S                                     # splats outside the window go to one spare bin
    pix = torch.where(inside, torch.arange(H)[:, None, None, None] * (S * S) + (cv * S + cu).long().clamp(0, S * S - 1),
                      n_pix).reshape(-1)
    g = torch.where(inside, g, torch.zeros_like(g)).reshape(-1)
    zz = z[..., None, None].expand_as(d2).reshape(-1)
    density = torch.zeros(n_pix + 1, dtype=dtype).index_add(0, pix, g)
    z_front = torch.full((n_pix + 1,), float("inf"), dtype=dtype).scatter_reduce(
        0, pix, zz.detach(), reduce="amin", include_self=True)
    w = g * torch.sigmoid((z_front[pix] + front_m - zz) / (0.2 * front_m))
    weight = torch.zeros(n_pix + 1, dtype=dtype).index_add(0, pix, w)
    depth = torch.zeros(n_pix + 1, dtype=dtype).index_add(0, pix, w * zz)[:n_pix] / weight[:n_pix].clamp_min(1e-12)
    density, weight = density[:n_pix], weight[:n_pix]
    silhouette = 1.0 - torch.exp(-KAPPA * density)
    shape = (H, S, S)
    return silhouette.view(shape), depth.view(shape), weight.view(shape)
