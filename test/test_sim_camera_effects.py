"""Camera effects on rendered images: each effect does what it says, and nothing when off."""
import numpy as np
import pytest

from hrc_perception.sim.camera_effects import (CameraEffects, apply_camera_effects, motion_kernel,
                                               sample_camera_effects)
from hrc_perception.sim.config import CameraEffectsConfig


def _image(h=60, w=80):
    rng = np.random.default_rng(0)
    return rng.integers(40, 200, (h, w, 3)).astype(np.uint8)


def test_off_is_the_identity():
    img = _image()
    fx = sample_camera_effects(CameraEffectsConfig(), np.random.default_rng(1))
    assert not fx.active
    out = apply_camera_effects(img, fx, np.random.default_rng(0))
    np.testing.assert_array_equal(out, img)
    assert out is not img


@pytest.mark.parametrize("length, angle", [(5.0, 0.0), (6.0, np.pi / 2), (4.5, 0.6), (0.5, 1.0)])
def test_motion_kernel_is_a_normalised_line(length, angle):
    k = motion_kernel(length, angle)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(k.sum() - 1.0) < 1e-9 and (k >= 0).all()
    c = k.shape[0] // 2
    yy, xx = np.mgrid[0:k.shape[0], 0:k.shape[1]] - c
    # weight sits on the segment: within the bilinear footprint (sqrt 2 px) of the line through the centre
    dist = np.abs(-np.sin(angle) * xx + np.cos(angle) * yy)
    assert (k[dist > 1.42] == 0).all()
    # and spreads along it: the second moment along the line is that of a uniform segment
    along = np.cos(angle) * xx + np.sin(angle) * yy
    if length >= 2:
        assert abs(np.sqrt((k * along ** 2).sum()) - length / np.sqrt(12)) < 0.35


def test_motion_blur_smears_along_its_direction_only():
    img = np.zeros((41, 41, 3), np.uint8)
    img[20, 20] = 255
    rng = np.random.default_rng(3)
    out = apply_camera_effects(img, CameraEffects(motion_blur_px=9.0), rng).astype(float)[..., 0]
    angle = np.random.default_rng(3).uniform(0, np.pi)
    ys, xs = np.nonzero(out)
    d = np.abs(-np.sin(angle) * (xs - 20) + np.cos(angle) * (ys - 20))
    assert len(xs) >= 5 and d.max() <= 1.42
    assert out.max() < 255


def test_exposure_vignetting_defocus_jpeg():
    grey = np.full((60, 80, 3), 100, np.uint8)
    bright = apply_camera_effects(grey, CameraEffects(exposure_gain=2.0), np.random.default_rng(0))
    assert abs(int(bright[0, 0, 0]) - round(255 * min(1, 2 * (100 / 255) ** 2.2) ** (1 / 2.2))) <= 1
    clipped = apply_camera_effects(np.full((4, 4, 3), 250, np.uint8), CameraEffects(exposure_gain=3.0),
                                   np.random.default_rng(0))
    assert (clipped == 255).all()
    vig = apply_camera_effects(grey, CameraEffects(vignetting=0.5), np.random.default_rng(0)).astype(int)
    assert abs(vig[30, 40, 0] - 100) <= 1 and vig[0, 0, 0] < 100 * 0.5 ** (1 / 2.2) + 2
    assert vig[0, 0, 0] < vig[15, 20, 0] < vig[30, 40, 0] + 1
    img = _image()
    soft = apply_camera_effects(img, CameraEffects(defocus_sigma_px=1.5), np.random.default_rng(0)).astype(float)
    assert np.abs(np.diff(soft, axis=1)).mean() < 0.5 * np.abs(np.diff(img.astype(float), axis=1)).mean()
    assert abs(soft.mean() - img.mean()) < 1.0
    low = apply_camera_effects(img, CameraEffects(jpeg_quality=10), np.random.default_rng(0))
    high = apply_camera_effects(img, CameraEffects(jpeg_quality=95), np.random.default_rng(0))
    err = [np.abs(x.astype(int) - img.astype(int)).mean() for x in (low, high)]
    assert err[0] > err[1] > 0


def test_sampled_within_the_configured_ranges():
    cfg = CameraEffectsConfig(exposure_gain=(0.5, 2.0), vignetting=(0.1, 0.3), defocus_sigma_px=(0.0, 1.0),
                              motion_blur_px=(1.0, 4.0), jpeg_quality=(40, 90))
    rng = np.random.default_rng(5)
    fxs = [sample_camera_effects(cfg, rng) for _ in range(200)]
    assert all(0.5 <= f.exposure_gain <= 2.0 and 0.1 <= f.vignetting <= 0.3 and 1.0 <= f.motion_blur_px <= 4.0
               and 40 <= f.jpeg_quality <= 90 and f.active for f in fxs)
    gains = np.log([f.exposure_gain for f in fxs])
    assert gains.min() < np.log(0.6) and gains.max() > np.log(1.7)   # log-uniform spread: both ends reached
