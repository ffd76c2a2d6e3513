"""What a D435-like active stereo depth camera reports, given exact z-depth.

The ray-casting renderer produces an exact z-depth image (metres, 0 where no
surface). ``stereo_depth_mm`` turns it into the sensor's uint16 depth in
millimetres (0 = invalid), modelling the sensor in its own terms: disparity
``d = fx * baseline / z`` in pixels.

Effects, in the order they are applied:

1. Stereo occlusion shadows: the second imager sits ``baseline_m`` to the
   camera's +x side (right). A point seen in the left (reference) image at
   column u appears in the right image at ``u' = u - d(u)``. A pixel is hidden
   from the right imager when some pixel to its right lands at the same or a
   smaller u' (a nearer surface covers it), so the invalid band lies on the LEFT
   side of foreground objects, ``fx*b*(1/z_near - 1/z_far)`` pixels wide.
   Computed on the exact depth.
2. Flying pixels: a pixel on a depth edge (a 4-neighbour with valid depth
   differs by more than ``edge_threshold_m``) gets, with probability
   ``flying_pixel_prob``, a depth uniformly mixed between its own and that of
   the neighbour across the largest jump.
3. Disparity noise: Gaussian, sigma ``disparity_sigma_px`` (so depth noise grows
   as z^2), slightly spatially correlated: a mix of white noise and a smooth
   low-resolution field, normalised so every pixel has exactly that sigma.
4. Quantization: disparity rounded to multiples of ``subpixel`` (if > 0), back
   to depth, then to integer millimetres.
5. Invalidation (0): no surface, measured depth outside ``depth_range_m``,
   grazing surfaces (``cos_incidence < grazing_cos_min``), occlusion shadows and
   random hole blobs (a smooth random field thresholded so that a fraction
   ``hole_rate`` of pixels falls in blobs about ``hole_blob_px`` across).

Everything is vectorized numpy; random numbers come only from the given
``np.random.Generator``, so the output is deterministic given its state.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import ndtri

from hrc_perception.sim.config import DepthNoiseConfig

# Spatially correlated part of the disparity noise: grid spacing of the smooth
# field (pixels) and its share of the noise variance.
_NOISE_CORR_PX = 6.0
_NOISE_CORR_FRAC = 0.3
# Grid spacing of the hole field per pixel of blob size (calibrated so that the
# mean hole blob's equivalent diameter is about hole_blob_px at typical rates).
_HOLE_GRID_PER_BLOB_PX = 1.6


@dataclass(frozen=True)
class DepthNoiseParams:
    """Concrete noise values for one episode, drawn from a DepthNoiseConfig.

    disparity_sigma_px: Gaussian disparity noise (pixels).
    subpixel: disparity quantization step (pixels; 0 = none).
    hole_rate: fraction of pixels dropped in random blobs.
    hole_blob_px: typical hole blob diameter (pixels).
    grazing_cos_min: |cos(incidence)| below this is invalid.
    flying_pixel_prob: chance that a depth-edge pixel gets a mixed depth.
    edge_threshold_m: depth jump (metres) between neighbours that counts as an edge.
    """
    disparity_sigma_px: float
    subpixel: float
    hole_rate: float
    hole_blob_px: float
    grazing_cos_min: float
    flying_pixel_prob: float
    edge_threshold_m: float


def sample_depth_noise_params(cfg: DepthNoiseConfig, rng: np.random.Generator) -> DepthNoiseParams:
    """Draw one episode's noise values: ranges uniformly, scalars as given."""
    def draw(r) -> float:
        return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])

    return DepthNoiseParams(
        disparity_sigma_px=draw(cfg.disparity_sigma_px),
        subpixel=float(cfg.subpixel),
        hole_rate=draw(cfg.hole_rate),
        hole_blob_px=draw(cfg.hole_blob_px),
        grazing_cos_min=float(cfg.grazing_cos_min),
        flying_pixel_prob=float(cfg.flying_pixel_prob),
        edge_threshold_m=float(cfg.edge_threshold_m),
    )


def stereo_depth_mm(depth_m: np.ndarray, cos_incidence: np.ndarray, fx_px: float, baseline_m: float,
                    depth_range_m: tuple[float, float], params: DepthNoiseParams,
                    rng: np.random.Generator) -> np.ndarray:
    """Sensor depth image of an exact z-depth image.

    depth_m: [H, W] float exact z-depth in metres, 0 (or non-finite) where no surface.
    cos_incidence: [H, W] float |cos| of the angle between viewing ray and surface
        normal (1 = head-on); ignored where there is no surface.
    fx_px: focal length (pixels); baseline_m: stereo baseline (metres), the second
        imager on the camera's +x side.
    depth_range_m: (near, far) metres; measured depth outside it is invalid.
    params: this episode's noise values; rng: the only source of randomness.
    Returns [H, W] uint16 depth in millimetres, 0 = invalid. Inputs are not modified.
    """
    z = np.asarray(depth_m, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"depth_m must be [H, W], got shape {z.shape}")
    cos_inc = np.asarray(cos_incidence)
    if cos_inc.shape != z.shape:
        raise ValueError(f"cos_incidence shape {cos_inc.shape} != depth shape {z.shape}")
    fb = np.float32(fx_px * baseline_m)

    disparity = exact_disparity_px(z, fb)  # a fresh array: the inputs stay untouched
    surface = disparity > 0
    occluded = occlusion_shadow_mask(disparity)
    _add_flying_pixels(disparity, z, surface, fb, params, rng)
    if params.disparity_sigma_px > 0:
        disparity += _correlated_normal(z.shape, params.disparity_sigma_px, rng)
    if params.subpixel > 0:
        _quantize(disparity, params.subpixel)

    near, far = depth_range_m
    valid = (disparity >= fb / np.float32(far)) & (disparity <= fb / np.float32(near))
    valid &= surface
    valid &= cos_inc >= params.grazing_cos_min
    valid &= ~occluded
    if params.hole_rate > 0:
        valid &= ~hole_mask(z.shape, params.hole_rate, params.hole_blob_px, rng)
    return _depth_mm(disparity, valid, fb)


def exact_disparity_px(depth_m: np.ndarray, fb: float) -> np.ndarray:
    """Disparity [H, W] float32 pixels (fx * baseline / z) of depth [H, W] metres.

    0 where there is no surface (depth 0 or not finite: a point at infinity).
    """
    z = np.where(depth_m > 0, depth_m, np.float32(np.inf))  # NaN > 0 is False
    return np.float32(fb) / z


def _quantize(disparity_px: np.ndarray, step_px: float) -> None:
    """Round disparity [H, W] float32 in place to multiples of step_px."""
    step = np.float32(step_px)
    np.divide(disparity_px, step, out=disparity_px)
    np.rint(disparity_px, out=disparity_px)
    np.multiply(disparity_px, step, out=disparity_px)


def _depth_mm(disparity_px: np.ndarray, valid: np.ndarray, fb: np.float32) -> np.ndarray:
    """uint16 depth [H, W] mm of disparity [H, W] pixels (overwritten); 0 where not valid.

    Valid disparities must lie in fb / depth_range, so the depth fits uint16 mm.
    """
    np.maximum(disparity_px, np.float32(1e-3), out=disparity_px)
    mm = np.divide(fb * np.float32(1000.0), disparity_px)
    np.multiply(mm, valid, out=mm)
    np.rint(mm, out=mm)
    return mm.astype(np.uint16)


def occlusion_shadow_mask(disparity_px: np.ndarray) -> np.ndarray:
    """Pixels [H, W] bool seen by the left imager but hidden from the right one.

    disparity_px: [H, W] exact disparity (0 where no surface, i.e. at infinity).
    A pixel at column u lands at u' = u - d(u) in the right image; it is hidden
    when a pixel further right lands at u' or left of it (a nearer surface).
    Only pixels within (max d - min d) columns to the right can hide a pixel, so
    the running minimum of u' is taken over that window by doubling steps.
    """
    h, w = disparity_px.shape
    surface = disparity_px > 0
    if not surface.any():
        return surface
    u_right = np.arange(w, dtype=np.float32)[None, :] - disparity_px
    span = float(disparity_px.max()) - float(np.min(disparity_px, where=surface, initial=np.inf))
    reach = int(np.ceil(span)) + 1
    # right_min[:, u] = min of u' over columns u+1 .. u+reach (or further).
    right_min = np.full((h, w), np.inf, dtype=np.float32)
    if reach >= w // 2:
        right_min[:, :-1] = np.minimum.accumulate(u_right.T[::-1], axis=0)[::-1].T[:, 1:]
    else:
        right_min[:, :-1] = u_right[:, 1:]
        window = 1
        while window < reach:
            np.minimum(right_min[:, :-window], right_min[:, window:], out=right_min[:, :-window])
            window *= 2
    return (right_min <= u_right) & surface


def _add_flying_pixels(disparity_px: np.ndarray, z: np.ndarray, surface: np.ndarray, fb: np.float32,
                       params: DepthNoiseParams, rng: np.random.Generator) -> None:
    """Mix some depth-edge pixels towards the neighbour across the edge (in place).

    disparity_px: [H, W] float32, updated in place; z: [H, W] exact depth (metres);
    surface: [H, W] bool. A pixel is on an edge when a 4-neighbour with a surface
    differs by more than edge_threshold_m; with probability flying_pixel_prob it
    takes depth z + U * (z_neighbour - z), U ~ uniform(0, 1), the neighbour being
    the one across the largest jump.
    """
    if params.flying_pixel_prob <= 0:
        return
    w = z.shape[1]
    zs = np.where(surface, z, np.float32(0.0))
    idx = _edge_pixels(zs, surface, params.edge_threshold_m)
    if idx.size == 0:
        return
    idx = idx[rng.random(idx.size) < params.flying_pixel_prob]
    if idx.size == 0:
        return
    mix = rng.random(idx.size, dtype=np.float32)

    # Neighbour depths from a zero-padded copy: 0 there means no surface.
    zp = np.pad(zs, 1).ravel()
    rows, cols = np.divmod(idx, w)
    centre = (rows + 1) * (w + 2) + (cols + 1)
    own = zp[centre]
    neigh = np.stack([zp[centre + off] for off in (-1, 1, -(w + 2), w + 2)])
    jumps = np.where(neigh > 0, np.abs(neigh - own), np.float32(-1.0))
    across = neigh[np.argmax(jumps, axis=0), np.arange(idx.size)]
    disparity_px.ravel()[idx] = fb / (own + mix * (across - own))


def _edge_pixels(zs: np.ndarray, surface: np.ndarray, threshold_m: float) -> np.ndarray:
    """Flat indices of pixels [N] with a 4-neighbour surface more than threshold_m away.

    zs: [H, W] depth in metres, 0 where no surface; surface: [H, W] bool.
    """
    thr = np.float32(threshold_m)
    jump_x = (np.abs(zs[:, 1:] - zs[:, :-1]) > thr) & surface[:, 1:] & surface[:, :-1]
    jump_y = (np.abs(zs[1:, :] - zs[:-1, :]) > thr) & surface[1:, :] & surface[:-1, :]
    edge = np.zeros(zs.shape, dtype=bool)
    edge[:, 1:] |= jump_x
    edge[:, :-1] |= jump_x
    edge[1:, :] |= jump_y
    edge[:-1, :] |= jump_y
    return np.flatnonzero(edge)


def _correlated_normal(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise [H, W] float32 of standard deviation sigma, slightly correlated.

    A mix of white noise and a smooth field interpolated from a coarse grid
    (spacing _NOISE_CORR_PX, share _NOISE_CORR_FRAC of the variance); every
    pixel has variance exactly sigma**2.
    """
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise *= np.float32(sigma * np.sqrt(1.0 - _NOISE_CORR_FRAC))
    noise += smooth_normal_field(shape, _NOISE_CORR_PX, rng, scale=sigma * np.sqrt(_NOISE_CORR_FRAC))
    return noise


def hole_mask(shape: tuple[int, int], hole_rate: float, hole_blob_px: float,
              rng: np.random.Generator) -> np.ndarray:
    """Random hole blobs [H, W] bool covering about hole_rate of the pixels.

    A smooth unit-variance Gaussian field (grid spacing proportional to
    hole_blob_px) is thresholded at its (1 - hole_rate) quantile, so the
    expected covered fraction is exactly hole_rate and blobs are roughly
    hole_blob_px across.
    """
    if hole_rate <= 0:
        return np.zeros(shape, dtype=bool)
    if hole_rate >= 1:
        return np.ones(shape, dtype=bool)
    spacing = max(1.0, _HOLE_GRID_PER_BLOB_PX * hole_blob_px)
    field = smooth_normal_field(shape, spacing, rng)
    return field > np.float32(ndtri(1.0 - hole_rate))


def smooth_normal_field(shape: tuple[int, int], spacing_px: float, rng: np.random.Generator,
                        scale: float = 1.0) -> np.ndarray:
    """Smooth Gaussian random field [H, W] float32 with variance scale**2 at every pixel.

    iid normals on a coarse grid of spacing spacing_px are interpolated
    bilinearly (as two small matrix products) with weights normalised to unit
    L2 norm, so each output pixel is exactly N(0, scale**2).
    """
    h, w = shape
    rows = _interp_matrix(h, float(spacing_px))
    cols = _interp_matrix(w, float(spacing_px))
    coarse = rng.standard_normal((rows.shape[1], cols.shape[1]), dtype=np.float32)
    coarse *= np.float32(scale)
    return rows @ coarse @ cols.T


@lru_cache(maxsize=32)
def _interp_matrix(n_out: int, spacing_px: float) -> np.ndarray:
    """Linear interpolation weights [n_out, n_in] float32 from a grid of spacing spacing_px.

    Output pixel i sits at (i + 0.5) / spacing_px in grid units; each row has two
    non-zero weights normalised to unit L2 norm. Cached; read-only.
    """
    pos = (np.arange(n_out) + 0.5) / spacing_px
    lo = np.floor(pos).astype(np.int64)
    t = pos - lo
    n_in = int(lo.max()) + 2
    norm = np.sqrt((1.0 - t) ** 2 + t ** 2)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] = (1.0 - t) / norm
    m[np.arange(n_out), lo + 1] = t / norm
    m.setflags(write=False)
    return m
