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
from hrc_perception.sim.materials import TEXTURES, Material

_MISS = o3d.t.geometry.RaycastingScene.INVALID_ID
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


def _pattern(kind: np.ndarray, p_obj: np.ndarray, scale: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Texture value in [-1, 1] per pixel; kind [N] index into TEXTURES, p_obj [N, 3]
    metres in the object frame, scale [N] period in metres, freqs [3, 3] fixed
    directions of the pseudo-noise."""
    q = p_obj / scale[:, None]
    out = np.zeros(len(kind), dtype=np.float32)
    noise = kind == TEXTURES.index("noise")
    if noise.any():
        qn = q[noise] * (2 * np.pi)
        out[noise] = (np.sin(qn @ freqs[0]) * np.sin(qn @ freqs[1] + 1.3)
                      + 0.5 * np.sin(2.7 * (qn @ freqs[2]))) / 1.5
    stripes = kind == TEXTURES.index("stripes")
    if stripes.any():
        out[stripes] = np.sign(np.sin(2 * np.pi * q[stripes, 0] + 0.7 * q[stripes, 1]))
    checker = kind == TEXTURES.index("checker")
    if checker.any():
        c = np.floor(q[checker]).astype(np.int64).sum(axis=1) & 1
        out[checker] = 2.0 * c - 1.0
    return out


class Renderer:
    """Renders RenderItems for a fixed image size; ray directions cached per K."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._camera_key: bytes | None = None
        self._rays: np.ndarray | None = None
        self._ray_units: np.ndarray | None = None
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
            self._ray_units = (d_world / _norm(d_world)[:, None]).astype(np.float32)
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
        t_hit = hits["t_hit"].numpy()
        gid = hits["geometry_ids"].numpy()
        idx = np.flatnonzero(gid != _MISS)
        g = gid[idx].astype(np.int64)

        depth = np.zeros(h * w, dtype=np.float32)
        t = t_hit[idx]
        depth[idx] = t
        inst_table = np.array([it.instance_id for it in items], dtype=np.uint16)
        mask = np.zeros(h * w, dtype=np.uint16)
        mask[idx] = inst_table[g]

        d_unit = self._ray_units[idx]
        n = hits["primitive_normals"].numpy()[idx]
        n /= np.maximum(_norm(n), 1e-12)[:, None]
        facing = _dot(n, d_unit)
        n[facing > 0] *= -1.0
        cos_inc = np.zeros(h * w, dtype=np.float32)
        cos_inc[idx] = np.abs(facing)
        p = rays[idx, :3] + rays[idx, 3:] * t[:, None]

        albedo = self._albedo(items, hits, idx, g, p)
        shadow = self._shadow_factor(scene, lighting, idx, p, n) if lighting.shadows else None
        radiance = self._shade(items, lighting, g, p, n, d_unit, albedo, shadow)

        img = np.empty((h * w, 3), dtype=np.float32)
        img[:] = lighting.background_rgb
        img[idx] = radiance
        img *= (lighting.exposure * lighting.white_balance).astype(np.float32)
        srgb = self._gamma_lut[(np.clip(img, 0.0, 1.0) * 4095.0).astype(np.int32)]
        if lighting.noise_sigma > 0:
            srgb += rng.standard_normal(srgb.shape, dtype=np.float32) * np.float32(lighting.noise_sigma)
        rgb = np.clip(srgb + 0.5, 0, 255).astype(np.uint8).reshape(h, w, 3)
        return RenderOutput(rgb, depth.reshape(h, w), mask.reshape(h, w), cos_inc.reshape(h, w))

    def _albedo(self, items, hits, idx, g, p_world) -> np.ndarray:
        """Per-hit albedo [N, 3] with texture and vertex colours."""
        mats = [it.material for it in items]
        albedo = np.array([m.albedo for m in mats], dtype=np.float32)[g]
        for k, (it, m) in enumerate(zip(items, mats)):
            if m.vertex_colors is None:
                continue
            sel = np.flatnonzero(g == k)
            if sel.size == 0:
                continue
            prim = hits["primitive_ids"].numpy()[idx[sel]]
            uv = hits["primitive_uvs"].numpy()[idx[sel]]
            tri = it.faces[prim]
            vc = np.asarray(m.vertex_colors, dtype=np.float32)
            bary = np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)
            albedo[sel] = np.einsum("nk,nkc->nc", bary, vc[tri])
        kinds = np.array([TEXTURES.index(m.texture) for m in mats])
        textured = np.flatnonzero(kinds[g] != 0)
        if textured.size:
            gt = g[textured]
            R = np.stack([it.T_obj_world[:3, :3] for it in items]).astype(np.float32)
            t = np.stack([it.T_obj_world[:3, 3] for it in items]).astype(np.float32)
            p_obj = np.einsum("nij,nj->ni", R[gt], p_world[textured]) + t[gt]
            scale = np.array([m.texture_scale_m for m in mats], dtype=np.float32)[gt]
            contrast = np.array([m.texture_contrast for m in mats], dtype=np.float32)[gt]
            val = _pattern(kinds[gt], p_obj, scale, self._noise_dirs)
            albedo[textured] *= (1.0 + contrast * val)[:, None]
        return np.clip(albedo, 0.0, 1.0)

    def _shade(self, items, lighting: Lighting, g, p, n, d_unit, albedo, shadow) -> np.ndarray:
        """Lambert + Blinn-Phong radiance [N, 3] of hit points p [N, 3] with normals n;
        shadow [N] scales the key (first) light, None for no shadows."""
        mats = [it.material for it in items]
        spec_k = np.array([m.specular for m in mats], dtype=np.float32)[g]
        shin = np.array([m.shininess for m in mats], dtype=np.float32)[g]
        diffuse = np.full((len(p), 3), lighting.ambient, dtype=np.float32)
        specular = np.zeros((len(p), 3), dtype=np.float32)
        for li, light in enumerate(lighting.lights):
            L = light.position_m.astype(np.float32) - p
            dist = _norm(L)
            L /= dist[:, None]
            ndotl = np.clip(_dot(n, L), 0.0, None)
            lit = light.intensity * np.minimum(1.0, (2.5 / dist) ** 2)
            if li == 0 and shadow is not None:
                lit *= shadow
            color = light.color.astype(np.float32)
            diffuse += (lit * ndotl)[:, None] * color
            L -= d_unit                                   # half vector (unnormalized)
            ndoth = np.clip(_dot(n, L) / np.maximum(_norm(L), 1e-9), 0.0, 1.0)
            specular += (lit * spec_k * np.power(ndoth, shin) * (ndotl > 0))[:, None] * color
        return albedo * diffuse + specular

    def _shadow_factor(self, scene, lighting: Lighting, idx, p, n) -> np.ndarray:
        """[N] 1 where the key light reaches a hit point, SHADOW_LEVEL where blocked.

        Tested on every second row and column (a quarter of the rays); each pixel
        takes the value of its block's top-left pixel (1 where that one is no hit)."""
        h, w = self.height, self.width
        coarse = np.zeros(h * w, dtype=bool)
        rows, cols = np.divmod(idx, w)
        top_left = ((rows % 2) == 0) & ((cols % 2) == 0)
        sel = np.flatnonzero(top_left)
        light = lighting.lights[0].position_m.astype(np.float32)
        origin = p[sel] + 2e-3 * n[sel]
        rays = np.ascontiguousarray(np.concatenate([origin, light - origin], axis=1), dtype=np.float32)
        blocked = scene.test_occlusions(o3d.core.Tensor(rays), tnear=0.0, tfar=1.0).numpy().astype(bool)
        coarse[idx[sel]] = blocked
        src = (rows // 2 * 2) * w + cols // 2 * 2
        return np.where(coarse[src], np.float32(SHADOW_LEVEL), np.float32(1.0))


def _norm(v: np.ndarray) -> np.ndarray:
    """Row norms [N] of v [N, 3]."""
    return np.sqrt(np.einsum("ij,ij->i", v, v))


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row dot products [N] of a, b [N, 3]."""
    return np.einsum("ij,ij->i", a, b)


def placed_item(mesh, T_world_obj: np.ndarray, instance_id: int, material: Material) -> RenderItem:
    """RenderItem of a trimesh (object frame) placed at T_world_obj [4, 4]."""
    v = np.asarray(mesh.vertices) @ T_world_obj[:3, :3].T + T_world_obj[:3, 3]
    R = T_world_obj[:3, :3]
    T_obj_world = np.eye(4)
    T_obj_world[:3, :3] = R.T
    T_obj_world[:3, 3] = -R.T @ T_world_obj[:3, 3]
    return RenderItem(v.astype(np.float32), np.asarray(mesh.faces, dtype=np.uint32), instance_id, material,
                      T_obj_world)
