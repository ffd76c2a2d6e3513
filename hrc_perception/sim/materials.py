"""Surface appearance of rendered meshes (domain randomized colour and texture)."""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

TEXTURES = ("plain", "noise", "stripes", "checker", "wood", "print", "brushed")
BASIC_TEXTURES = TEXTURES[:4]
"""The textures :func:`random_material` draws from by default (the first renderer's)."""


@dataclass(frozen=True)
class Material:
    """How a mesh looks.

    albedo: base colour, RGB floats in [0, 1].
    texture: one of TEXTURES; a pattern evaluated in the mesh's own frame, so it
        moves with the object.
    texture_scale_m: the pattern's period in metres.
    texture_contrast: 0 (no pattern) .. 1.
    albedo2: optional second colour, RGB in [0, 1]: the pattern then blends albedo
        (pattern -1) towards albedo2 (pattern +1) by texture_contrast (two-colour prints,
        wood grain, markers); without it the pattern scales albedo by 1 +- contrast.
    specular: strength of the highlight, 0..1; shininess: Blinn-Phong exponent.
    vertex_colors: optional [V, 3] float RGB in [0, 1] of the mesh's vertices; when
        given it replaces albedo (meshes with painted vertices, e.g. scanned objects).
    """
    albedo: tuple[float, float, float]
    texture: str = "plain"
    texture_scale_m: float = 0.05
    texture_contrast: float = 0.0
    specular: float = 0.1
    shininess: float = 16.0
    vertex_colors: np.ndarray | None = None
    albedo2: tuple[float, float, float] | None = None

    def __post_init__(self):
        if self.texture not in TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; expected one of {TEXTURES}")


def random_material(rng: np.random.Generator, albedo=None, specular_range=(0.0, 0.4),
                    textures=BASIC_TEXTURES) -> Material:
    """A material with random texture; albedo random unless given (RGB in [0, 1])."""
    if albedo is None:
        albedo = tuple(float(c) for c in rng.uniform(0.05, 0.95, size=3))
    texture = str(textures[rng.integers(len(textures))])
    return Material(
        albedo=tuple(float(c) for c in albedo),
        texture=texture,
        texture_scale_m=float(rng.uniform(0.01, 0.2)),
        texture_contrast=float(rng.uniform(0.05, 0.35)) if texture != "plain" else 0.0,
        specular=float(rng.uniform(*specular_range)),
        shininess=float(rng.uniform(4.0, 64.0)),
    )


RICH_KINDS = ("wood", "metal", "plastic", "print", "marker", "painted")


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def rich_material(rng: np.random.Generator) -> Material:
    """A material of one of RICH_KINDS (uniformly), for backgrounds and clutter that look
    like real surfaces: wood (grain rings, two browns, matte), metal (brushed, grey,
    strong tight highlight), plastic (saturated, smooth or speckled, soft highlight),
    print (paper with dark blocks of "text", matte), marker (black and white squares)
    and painted (any two colours in any pattern, any finish)."""
    kind = RICH_KINDS[int(rng.integers(len(RICH_KINDS)))]
    if kind == "wood":
        base = _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.85))
        return Material(base, "wood", float(rng.uniform(0.005, 0.03)), float(rng.uniform(0.3, 0.7)),
                        float(rng.uniform(0.0, 0.2)), float(rng.uniform(4, 20)),
                        albedo2=tuple(float(c) * rng.uniform(0.4, 0.75) for c in base))
    if kind == "metal":
        grey = rng.uniform(0.3, 0.8)
        return Material(tuple(float(grey * t) for t in rng.uniform(0.93, 1.05, 3)), "brushed",
                        float(rng.uniform(0.01, 0.05)), float(rng.uniform(0.05, 0.3)),
                        float(rng.uniform(0.5, 1.0)), float(rng.uniform(30, 120)))
    if kind == "plastic":
        texture = ("plain", "noise")[int(rng.integers(2))]
        return Material(_hsv(rng.uniform(), rng.uniform(0.4, 1.0), rng.uniform(0.2, 0.95)), texture,
                        float(rng.uniform(0.002, 0.02)), float(rng.uniform(0.0, 0.15)) if texture != "plain" else 0.0,
                        float(rng.uniform(0.2, 0.7)), float(rng.uniform(10, 60)))
    if kind == "print":
        paper = rng.uniform(0.75, 0.98)
        return Material((paper, paper, paper * rng.uniform(0.9, 1.0)), "print", float(rng.uniform(0.004, 0.03)),
                        float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.0, 0.15)), float(rng.uniform(4, 16)),
                        albedo2=_hsv(rng.uniform(), rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.5)))
    if kind == "marker":
        return Material((0.9, 0.9, 0.9), "checker", float(rng.uniform(0.01, 0.06)), 1.0,
                        float(rng.uniform(0.0, 0.2)), float(rng.uniform(4, 16)), albedo2=(0.03, 0.03, 0.03))
    texture = TEXTURES[1 + int(rng.integers(len(TEXTURES) - 1))]
    return Material(_hsv(rng.uniform(), rng.uniform(0, 1), rng.uniform(0.05, 0.95)), texture,
                    float(rng.uniform(0.005, 0.15)), float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.0, 0.9)),
                    float(rng.uniform(4, 100)), albedo2=_hsv(rng.uniform(), rng.uniform(0, 1), rng.uniform(0.05, 0.95)))
