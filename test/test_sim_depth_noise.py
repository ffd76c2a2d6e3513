"""Tests of the D435-like stereo depth model (hrc_perception.sim.depth_noise)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from hrc_perception.sim.config import DepthNoiseConfig
from hrc_perception.sim.depth_noise import (
    DepthNoiseParams,
    exact_disparity_px,
    hole_mask,
    occlusion_shadow_mask,
    sample_depth_noise_params,
    stereo_depth_mm,
)

FX = 615.0
BASELINE = 0.05
FB = FX * BASELINE
RANGE = (0.28, 6.0)
H, W = 240, 320

CLEAN = DepthNoiseParams(disparity_sigma_px=0.0, subpixel=0.0, hole_rate=0.0, hole_blob_px=4.0,
                         grazing_cos_min=0.12, flying_pixel_prob=0.0, edge_threshold_m=0.05)


def params(**kw) -> DepthNoiseParams:
    return dataclasses.replace(CLEAN, **kw)


def plane(z: float, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    return np.full((h, w), z, np.float32), np.ones((h, w), np.float32)


def run(depth, cos, p, seed=0):
    return stereo_depth_mm(depth, cos, FX, BASELINE, RANGE, p, np.random.default_rng(seed))


def box_scene() -> tuple[np.ndarray, np.ndarray]:
    """Wall at 3 m with a box at 1 m in rows 60..179, columns 150..199."""
    depth, cos = plane(3.0)
    depth[60:180, 150:200] = 1.0
    return depth, cos


def realistic_scene(h: int = 480, w: int = 640) -> tuple[np.ndarray, np.ndarray]:
    """Wall, receding floor, a box, a sphere and an empty corner."""
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    depth = np.full((h, w), 3.2, np.float32)
    cos = np.full((h, w), 0.9, np.float32)
    floor = v > h * 0.4
    depth[floor] = 3.2 - (v[floor] - h * 0.4) * 0.006
    cos[floor] = 0.5
    box = (u > w * 0.3) & (u < w * 0.45) & (v > h * 0.3) & (v < h * 0.7)
    depth[box], cos[box] = 1.5, 1.0
    r2 = (u - w * 0.7) ** 2 + (v - h * 0.45) ** 2
    ball = r2 < (h / 8) ** 2
    cos[ball] = np.sqrt(1 - r2[ball] / (h / 8) ** 2)
    depth[ball] = 2.0 - cos[ball] * 0.2
    depth[: h // 12, : w // 6] = 0.0
    return depth, cos


# --- noise and quantization ------------------------------------------------------------

def test_plane_noise_grows_with_depth_squared():
    p = params(disparity_sigma_px=0.1, hole_rate=0.01, hole_blob_px=4.0)
    stds = {}
    for z in (1.0, 3.0):
        out = run(*plane(z, 480, 640), p, seed=1)
        mm = out[out > 0].astype(np.float64)
        assert mm.size > 0.95 * out.size
        assert abs(mm.mean() - z * 1000) < 3.0
        stds[z] = mm.std()
        expected_std_mm = 1000 * z * z / FB * 0.1
        assert stds[z] == pytest.approx(expected_std_mm, rel=0.2)
    assert 5 < stds[3.0] / stds[1.0] < 13


def test_plane_mean_unbiased_with_default_quantization():
    p = params(disparity_sigma_px=0.08, subpixel=0.125)
    for z in (1.0, 3.0):
        out = run(*plane(z, 480, 640), p, seed=2)
        assert abs(out[out > 0].mean() - z * 1000) < 5.0


def test_noise_is_spatially_slightly_correlated():
    out = run(*plane(2.0, 480, 640), params(disparity_sigma_px=0.1), seed=3).astype(np.float64)
    e = out - out.mean()
    rho = (e[:, 1:] * e[:, :-1]).mean() / e.var()
    assert 0.05 < rho < 0.6


def test_clean_config_reproduces_depth():
    rng = np.random.default_rng(4)
    depth = rng.uniform(0.5, 5.5, (H, W)).astype(np.float32)
    depth = ndimage.uniform_filter(depth, 15)  # smooth: no edges, no shadows
    out = run(depth, np.ones_like(depth), CLEAN)
    assert np.all(out > 0)
    assert np.abs(out - depth.astype(np.float64) * 1000).max() <= 0.5 + 1e-3


def test_quantization_levels():
    step = 0.125
    depth = np.tile(np.linspace(2.0, 3.0, W, dtype=np.float32), (H, 1))
    out = run(depth, np.ones_like(depth), params(subpixel=step))
    got = set(np.unique(out[out > 0]).tolist())
    k = np.arange(int(np.floor(FB / 3.0 / step)), int(np.ceil(FB / 2.0 / step)) + 1)
    levels = np.rint(1000 * FB / (k * step))
    allowed = set(levels[(levels >= 1990) & (levels <= 3010)].astype(int).tolist())
    assert got <= allowed
    inner = {v for v in allowed if 2010 <= v <= 2990}
    assert inner <= got
    assert len(got) > 10


# --- invalid pixels --------------------------------------------------------------------

def test_out_of_range_and_no_surface_invalid():
    depth, cos = plane(2.0)
    depth[:, :40] = 0.1
    depth[:, 280:] = 10.0
    depth[:20] = 0.0
    depth[20:30, 100:110] = np.nan
    depth[30:40, 100:110] = np.inf
    out = run(depth, cos, params(disparity_sigma_px=0.05, subpixel=0.125))
    assert np.all(out[:, :40] == 0)
    assert np.all(out[:, 280:] == 0)
    assert np.all(out[:20] == 0)
    assert np.all(out[20:40, 100:110] == 0)
    assert np.all(out[40:, 120:260] > 0)


def test_grazing_surfaces_invalid():
    depth, cos = plane(2.0)
    cos[:, : W // 2] = 0.05
    cos[:, W // 2:] = 0.9
    out = run(depth, cos, params(grazing_cos_min=0.12))
    assert np.all(out[:, : W // 2] == 0)
    assert np.all(out[:, W // 2:] > 0)


def test_occlusion_shadow_left_of_near_box():
    depth, cos = box_scene()
    out = run(depth, cos, params(disparity_sigma_px=0.05, subpixel=0.125))
    expected = FB * (1 / 1.0 - 1 / 3.0)
    box_rows = out[60:180]
    # A zero band ends exactly at the box's left edge ...
    assert np.all(box_rows[:, 150:200] > 0)
    widths = []
    for row in box_rows:
        left = row[:150]
        valid_cols = np.flatnonzero(left > 0)
        widths.append(150 - (valid_cols.max() + 1))
    assert all(abs(wd - expected) <= 2 for wd in widths)
    # ... and nothing is missing right of the box or in rows without the box.
    assert np.all(box_rows[:, 200:] > 0)
    assert np.all(out[:60] > 0) and np.all(out[180:] > 0)


def test_occlusion_mask_matches_brute_force():
    rng = np.random.default_rng(5)
    h, w = 6, 90
    for trial in range(8):
        depth = np.full((h, w), rng.uniform(2, 5), np.float32)
        for _ in range(4):  # random near and far slabs, some very near (wide shadows)
            c0 = rng.integers(0, w - 5)
            depth[:, c0:c0 + rng.integers(3, 30)] = rng.uniform(0.3 if trial % 2 else 1.0, 5)
        depth += rng.uniform(0, 0.2, (h, 1)).astype(np.float32) * np.arange(w, dtype=np.float32) / w
        depth[rng.random((h, w)) < 0.05] = 0.0
        d = exact_disparity_px(depth, FB)
        got = occlusion_shadow_mask(d)
        up = np.arange(w) - d.astype(np.float64)
        ref = np.zeros((h, w), bool)
        for r in range(h):
            for u in range(w - 1):
                ref[r, u] = d[r, u] > 0 and np.min(up[r, u + 1:]) <= up[r, u]
        assert np.array_equal(got, ref)


def test_hole_fraction_and_blob_size():
    for rate, blob in ((0.01, 4.0), (0.005, 7.0)):
        out = run(*plane(2.0, 480, 640), params(disparity_sigma_px=0.05, hole_rate=rate, hole_blob_px=blob),
                  seed=6)
        holes = out == 0
        assert rate / 2 < holes.mean() < rate * 2
        labels, n = ndimage.label(holes)
        diameters = 2 * np.sqrt(np.bincount(labels.ravel())[1:] / np.pi)
        assert n > 5
        assert blob / 2 < diameters.mean() < blob * 2


def test_hole_mask_extremes():
    rng = np.random.default_rng(7)
    assert not hole_mask((20, 30), 0.0, 4.0, rng).any()
    assert hole_mask((20, 30), 1.0, 4.0, rng).all()


# --- flying pixels ---------------------------------------------------------------------

def step_edge() -> tuple[np.ndarray, np.ndarray]:
    """Near half (1 m) left of a far half (3 m): the edge is not in a shadow."""
    depth, cos = plane(3.0)
    depth[:, :160] = 1.0
    return depth, cos


def in_between(out: np.ndarray) -> np.ndarray:
    return (out > 1050) & (out < 2950)


def test_flying_pixels_on_edges():
    out = run(*step_edge(), params(subpixel=0.125, flying_pixel_prob=1.0))
    mid = in_between(out)
    assert mid.any()
    assert mid[:, 158:162].sum() > 0.5 * H  # about 2 * 95 % of rows
    assert not mid[:, :158].any() and not mid[:, 162:].any()  # only next to the edge


def test_no_flying_pixels_with_zero_probability():
    out = run(*step_edge(), params(subpixel=0.125, flying_pixel_prob=0.0))
    assert not in_between(out).any()
    out = run(*box_scene(), params(subpixel=0.125, flying_pixel_prob=0.0))
    assert not in_between(out).any()


def test_flying_pixels_ignore_empty_neighbours():
    depth, cos = plane(2.0)
    depth[:, 160:] = 0.0  # a surface against nothing: no edge
    out = run(depth, cos, params(flying_pixel_prob=1.0))
    assert np.all(out[:, :160] == 2000)


# --- contract --------------------------------------------------------------------------

def test_inputs_unchanged_dtype_and_no_float_errors():
    depth, cos = realistic_scene()
    depth[5, 5] = np.nan
    d0, c0 = depth.copy(), cos.copy()
    p = sample_depth_noise_params(DepthNoiseConfig(), np.random.default_rng(8))
    with np.errstate(all="raise"):
        out = run(depth, cos, p)
    assert out.dtype == np.uint16 and out.shape == depth.shape
    assert np.array_equal(depth, d0, equal_nan=True) and np.array_equal(cos, c0)
    valid = out > 0
    assert 0.5 < valid.mean() < 0.99
    assert np.all(out[valid] >= 280) and np.all(out[valid] <= 6000)


def test_float64_input_accepted_and_unchanged():
    depth, cos = box_scene()
    depth64, cos64 = depth.astype(np.float64), cos.astype(np.float64)
    keep = depth64.copy()
    out = run(depth64, cos64, params(disparity_sigma_px=0.1, flying_pixel_prob=0.5))
    assert out.dtype == np.uint16
    assert np.array_equal(depth64, keep)


def test_deterministic_given_seed():
    depth, cos = realistic_scene(240, 320)
    p = params(disparity_sigma_px=0.1, subpixel=0.125, hole_rate=0.01, flying_pixel_prob=0.5)
    a, b, c = run(depth, cos, p, seed=9), run(depth, cos, p, seed=9), run(depth, cos, p, seed=10)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError):
        run(np.ones((10, 10), np.float32), np.ones((10, 11), np.float32), CLEAN)
    with pytest.raises(ValueError):
        run(np.ones(10, np.float32), np.ones(10, np.float32), CLEAN)


def test_sample_params_within_ranges():
    cfg = DepthNoiseConfig()
    rng = np.random.default_rng(11)
    for _ in range(200):
        p = sample_depth_noise_params(cfg, rng)
        assert cfg.disparity_sigma_px[0] <= p.disparity_sigma_px <= cfg.disparity_sigma_px[1]
        assert cfg.hole_rate[0] <= p.hole_rate <= cfg.hole_rate[1]
        assert cfg.hole_blob_px[0] <= p.hole_blob_px <= cfg.hole_blob_px[1]
        assert p.subpixel == cfg.subpixel
        assert p.grazing_cos_min == cfg.grazing_cos_min
        assert p.flying_pixel_prob == cfg.flying_pixel_prob
        assert p.edge_threshold_m == cfg.edge_threshold_m
    fixed = DepthNoiseConfig(disparity_sigma_px=(0.1, 0.1), hole_rate=(0.0, 0.0))
    p = sample_depth_noise_params(fixed, rng)
    assert p.disparity_sigma_px == 0.1 and p.hole_rate == 0.0
    a = sample_depth_noise_params(cfg, np.random.default_rng(12))
    assert a == sample_depth_noise_params(cfg, np.random.default_rng(12))
