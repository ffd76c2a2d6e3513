"""Ray-cast rendering (open3d RaycastingScene): exact depth and instance ids,
shaded colour with domain-randomized lights, textures and camera response.

The renderer draws a list of ``RenderItem``s (triangle meshes already placed in
the world frame) seen by a pinhole camera ``K`` at ``T_world_cam`` (optical
frame). Rays have unit z in the camera frame, so a hit's ray parameter is its
z-depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from hrc_perception.geometry import pixel_rays
from hrc_perception.sim import shading
from hrc_perception.sim.materials import TEXTURES, Material

SHADOW_LEVEL = 0.25   # fraction of the key light left in its shadow


@dataclass
class RenderItem:
    """A mesh placed in the world.

    vertices_world_m: [V, 3] float32; faces: [F, 3] uint32.
    instance_id: value in the instance mask (0: background, not an instance).
    T_obj_world: [4, 4] world to the mesh's own frame (textures move with it).
    """
    vertices_world_m: np.ndarray
    faces: np.ndarray
    instance_id: int
    material: Material
    T_obj_world: np.ndarray


@dataclass(frozen=True)
class PointLight:
    position_m: np.ndarray   # [3] world frame
    intensity: float
    color: np.ndarray        # [3] RGB multipliers around 1


@dataclass(frozen=True)
class Lighting:
    """Lights and camera response of one episode.

    ambient: ambient light level. exposure: gain on linear radiance.
    white_balance: [3] per-channel gains. noise_sigma: std of additive colour noise
    in 8-bit units. shadows: cast shadows from the first (key) light.
    """
    lights: tuple[PointLight, ...]
    ambient: float
    exposure: float
    white_balance: np.ndarray
    noise_sigma: float
    background_rgb: np.ndarray
    shadows: bool = True


@dataclass
class RenderOutput:
    """rgb [H, W, 3] uint8; depth_m [H, W] float32 z-depth (0 = no surface);
    instance_mask [H, W] uint16; cos_incidence [H, W] float32 (|cos| of the angle
    between viewing ray and surface normal, 0 where no surface)."""
    rgb: np.ndarray
    depth_m: np.ndarray
    instance_mask: np.ndarray
    cos_incidence: np.ndarray


class Renderer:
    """Renders RenderItems for a fixed image size; ray directions cached per K."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._camera_key: bytes | None = None
        self._rays: np.ndarray | None = None
        # fixed directions of the "noise" texture's sine waves (same in every run)
        self._noise_dirs = np.random.default_rng(7).normal(size=(3, 3)).astype(np.float32)
        # Linear radiance -> 8-bit sRGB-like (gamma 2.2) through a 4096-entry table.
        self._gamma_lut = (np.power(np.linspace(0.0, 1.0, 4096), 1.0 / 2.2) * 255.0).astype(np.float32)

    def camera_rays(self, K: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
        """World-frame rays [H*W, 6] float32 (origin, direction with unit camera z),
        row-major pixels; cached while the camera stays the same."""
        key = K.tobytes() + T_world_cam.tobytes()
        if key != self._camera_key:
            d_cam = pixel_rays(K, self.width, self.height).reshape(-1, 3)
            R = T_world_cam[:3, :3]
            d_world = d_cam[:, :1] * R[:, 0] + d_cam[:, 1:2] * R[:, 1] + d_cam[:, 2:] * R[:, 2]
            origin = np.broadcast_to(T_world_cam[:3, 3], d_world.shape)
            self._rays = np.ascontiguousarray(np.concatenate([origin, d_world], axis=1), dtype=np.float32)
            self._camera_key = key
        return self._rays

    def render(self, items: list[RenderItem], K: np.ndarray, T_world_cam: np.ndarray,
               lighting: Lighting, rng: np.random.Generator) -> RenderOutput:
        """Render one frame. rng draws the colour noise only."""
        h, w = self.height, self.width
        scene = o3d.t.geometry.RaycastingScene()
        for it in items:
            scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(it.vertices_world_m, dtype=np.float32)),
                                o3d.core.Tensor(np.ascontiguousarray(it.faces, dtype=np.uint32)))
        rays = self.camera_rays(K, T_world_cam)
        hits = scene.cast_rays(o3d.core.Tensor(rays))
        gid = hits["geometry_ids"].numpy()
        depth, mask, cos_inc, points, normals = shading.surface(
            rays, hits["t_hit"].numpy(), gid, hits["primitive_normals"].numpy(),
            np.array([it.instance_id for it in items], dtype=np.uint16))
        if lighting.shadows:
            shadow = self._shadow_factor(scene, lighting, gid, points, normals)
        else:
            shadow = np.ones(h * w, dtype=np.float32)
        mats = [it.material for it in items]
        vc_offset, vc_faces, vc_colors = _vertex_color_tables(items)
        noise = rng.standard_normal(h * w, dtype=np.float32) * np.float32(lighting.noise_sigma)
        rgb = shading.shade(
            rays, gid, hits["primitive_ids"].numpy(), hits["primitive_uvs"].numpy(), points, normals, shadow,
            np.array([m.albedo for m in mats], dtype=np.float32),
            np.array([TEXTURES.index(m.texture) for m in mats], dtype=np.int32),
            np.array([m.texture_scale_m for m in mats], dtype=np.float32),
            np.array([m.texture_contrast for m in mats], dtype=np.float32),
            np.array([m.specular for m in mats], dtype=np.float32),
            np.array([m.shininess for m in mats], dtype=np.float32),
            np.stack([it.T_obj_world[:3, :3] for it in items]).astype(np.float32),
            np.stack([it.T_obj_world[:3, 3] for it in items]).astype(np.float32),
            vc_offset, vc_faces, vc_colors,
            np.stack([li.position_m for li in lighting.lights]).astype(np.float32),
            np.array([li.intensity for li in lighting.lights], dtype=np.float32),
            np.stack([li.color for li in lighting.lights]).astype(np.float32),
            np.float32(lighting.ambient), (lighting.exposure * lighting.white_balance).astype(np.float32),
            np.asarray(lighting.background_rgb, dtype=np.float32), noise, self._gamma_lut, self._noise_dirs)
        return RenderOutput(rgb.reshape(h, w, 3), depth.reshape(h, w), mask.reshape(h, w), cos_inc.reshape(h, w))

    def _shadow_factor(self, scene, lighting: Lighting, gid, points, normals) -> np.ndarray:
        """[H*W] 1 where the key light reaches a hit point, SHADOW_LEVEL where blocked.

        Tested on every second row and column (a quarter of the rays); each pixel
        takes the value of its 2x2 block's top-left pixel (1 where that one is no hit)."""
        h, w = self.height, self.width
        top_left = np.zeros((h, w), dtype=bool)
        top_left[::2, ::2] = True
        sel = np.flatnonzero(top_left.reshape(-1) & (gid != shading.MISS))
        light = lighting.lights[0].position_m.astype(np.float32)
        origin = points[sel] + 2e-3 * normals[sel]
        rays = np.ascontiguousarray(np.concatenate([origin, light - origin], axis=1), dtype=np.float32)
        blocked = np.zeros(h * w, dtype=bool)
        blocked[sel] = scene.test_occlusions(o3d.core.Tensor(rays), tnear=0.0, tfar=1.0).numpy().astype(bool)
        coarse = blocked.reshape(h, w)[::2, ::2]
        full = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w]
        return np.where(full, np.float32(SHADOW_LEVEL), np.float32(1.0)).reshape(-1)


def _vertex_color_tables(items: list[RenderItem]):
    """(offset [G] int64, faces [F, 3] int64, colours [V, 3] float32) of the items
    whose material has vertex colours; offset -1 for the others."""
    offset = np.full(len(items), -1, dtype=np.int64)
    faces, colors = [np.zeros((0, 3), np.int64)], [np.zeros((0, 3), np.float32)]
    n_faces = n_verts = 0
    for k, it in enumerate(items):
        vc = it.material.vertex_colors
        if vc is None:
            continue
        offset[k] = n_faces
        faces.append(np.asarray(it.faces, dtype=np.int64) + n_verts)
        colors.append(np.asarray(vc, dtype=np.float32))
        n_faces += len(it.faces)
        n_verts += len(vc)
    return offset, np.concatenate(faces), np.concatenate(colors)


def placed_item(mesh, T_world_obj: np.ndarray, instance_id: int, material: Material) -> RenderItem:
    """RenderItem of a trimesh (object frame) placed at T_world_obj [4, 4]."""
    v = np.asarray(mesh.vertices) @ T_world_obj[:3, :3].T + T_world_obj[:3, 3]
    R = T_world_obj[:3, :3]
    T_obj_world = np.eye(4)
    T_obj_world[:3, :3] = R.T
    T_obj_world[:3, 3] = -R.T @ T_world_obj[:3, 3]
    return RenderItem(v.astype(np.float32), np.asarray(mesh.faces, dtype=np.uint32), instance_id, material,
                      T_obj_world)
