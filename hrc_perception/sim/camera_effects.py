"""What a real colour camera does to the light the renderer computes: exposure, vignetting,
defocus and motion blur, JPEG compression (domain randomization toward real images).

Pure numpy / scipy / Pillow on 8-bit RGB images [H, W, 3]. The renderer's output is
sRGB-like (gamma 2.2): gain and vignetting act on linear light, blur on the 8-bit values
(as a lens blurs before the camera's tone curve only approximately; cheap and close).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from hrc_perception.sim.config import CameraEffectsConfig

GAMMA = 2.2


@dataclass(frozen=True)
class CameraEffects:
    """One episode's camera: exposure_gain (x linear light), vignetting (fraction lost in
    the corners), defocus_sigma_px, motion_blur_px (smear length; its direction is drawn per
    frame), jpeg_quality (0: none)."""
    exposure_gain: float = 1.0
    vignetting: float = 0.0
    defocus_sigma_px: float = 0.0
    motion_blur_px: float = 0.0
    jpeg_quality: int = 0

    @property
    def active(self) -> bool:
        return (self.exposure_gain != 1.0 or self.vignetting > 0 or self.defocus_sigma_px > 0
                or self.motion_blur_px > 0 or self.jpeg_quality > 0)


def sample_camera_effects(cfg: CameraEffectsConfig, rng: np.random.Generator) -> CameraEffects:
    """An episode's effects, each uniform in its configured range (gain log-uniform)."""
    g0, g1 = cfg.exposure_gain
    return CameraEffects(
        exposure_gain=float(np.exp(rng.uniform(np.log(g0), np.log(g1)))),
        vignetting=float(rng.uniform(*cfg.vignetting)),
        defocus_sigma_px=float(rng.uniform(*cfg.defocus_sigma_px)),
        motion_blur_px=float(rng.uniform(*cfg.motion_blur_px)),
        jpeg_quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))


def motion_kernel(length_px: float, angle_rad: float) -> np.ndarray:
    """Normalised [k, k] kernel of a straight smear length_px long at angle_rad (image x
    to the right, y down), anti-aliased by sampling the segment finely."""
    half = max(length_px / 2.0, 0.0)
    k = 2 * int(np.ceil(half)) + 1
    kernel = np.zeros((k, k), np.float64)
    c = k // 2
    for s in np.linspace(-half, half, max(int(np.ceil(4 * length_px)), 1) + 1):
        x, y = c + s * np.cos(angle_rad), c + s * np.sin(angle_rad)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < k and 0 <= x0 + dx < k:
                    kernel[y0 + dy, x0 + dx] += wy * wx
    return kernel / kernel.sum()


def apply_camera_effects(rgb: np.ndarray, fx: CameraEffects, rng: np.random.Generator) -> np.ndarray:
    """rgb [H, W, 3] uint8 as the camera of fx delivers it (a new array; rgb unchanged).
    Order: exposure and vignetting (linear light, clipped), defocus, motion smear (direction
    from rng), JPEG."""
    from scipy import ndimage
    if not fx.active:
        return rgb.copy()
    img = rgb.astype(np.float32) / 255.0
    if fx.exposure_gain != 1.0 or fx.vignetting > 0:
        h, w = rgb.shape[:2]
        lin = img ** GAMMA * fx.exposure_gain
        if fx.vignetting > 0:     # cos^4-like falloff: 1 at the centre, 1 - vignetting in the corners
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
            lin = lin * (1.0 - fx.vignetting * r2 ** 2)[..., None]
        img = np.clip(lin, 0.0, 1.0) ** (1.0 / GAMMA)
    if fx.defocus_sigma_px > 0:
        img = ndimage.gaussian_filter(img, (fx.defocus_sigma_px, fx.defocus_sigma_px, 0), mode="nearest")
    if fx.motion_blur_px > 0:
        kernel = motion_kernel(fx.motion_blur_px, float(rng.uniform(0, np.pi)))
        img = np.stack([ndimage.convolve(img[..., ch], kernel, mode="nearest") for ch in range(3)], axis=-1)
    out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if fx.jpeg_quality > 0:
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=fx.jpeg_quality)
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out
