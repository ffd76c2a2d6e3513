"""Surface appearance of rendered meshes (domain randomized colour and texture)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXTURES = ("plain", "noise", "stripes", "checker")


@dataclass(frozen=True)
class Material:
    """How a mesh looks.

    albedo: base colour, RGB floats in [0, 1].
    texture: one of TEXTURES; a pattern evaluated in the mesh's own frame, so it
        moves with the object.
    texture_scale_m: the pattern's period in metres.
    texture_contrast: 0 (no pattern) .. 1.
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

    def __post_init__(self):
        if self.texture not in TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; expected one of {TEXTURES}")


def random_material(rng: np.random.Generator, albedo=None, specular_range=(0.0, 0.4),
                    textures=TEXTURES) -> Material:
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
