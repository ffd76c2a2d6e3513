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
        self._rays_cam = None
        self._rays_K = None
        freq_rng = np.random.default_rng(7)
        self._noise_dirs = freq_rng.normal(size=(3, 3))

    def _rays_camera(self, K: np.ndarray) -> np.ndarray:
        if self._rays_K is None or not np.array_equal(self._rays_K, K):
            self._rays_cam = pixel_rays(K, self.width, self.height).reshape(-1, 3)
            self._rays_K = K.copy()
        return self._rays_cam

    def camera_rays(self, K: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
        """World-frame rays [H*W, 6] float32 (origin, direction with unit camera z), row-major pixels."""
        d_world = (self._rays_camera(K) @ T_world_cam[:3, :3].T).astype(np.float32)
        origin = np.broadcast_to(T_world_cam[:3, 3].astype(np.float32), d_world.shape)
        return np.concatenate([origin, d_world], axis=1)

    def render(self, items: list[RenderItem], K: np.ndarray, T_world_cam: np.ndarray,
               lighting: Lighting, rng: np.random.Generator) -> RenderOutput:
        """Render one frame. rng draws the colour noise only."""
        h, w = self.height, self.width
        scene = o3d.t.geometry.RaycastingScene()
        for it in items:
            scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(it.vertices_world_m, dtype=np.float32)),
                                o3d.core.Tensor(np.ascontiguousarray(it.faces, dtype=np.uint32)))
        rays = self.camera_rays(K, T_world_cam)
        c_w, d_world = T_world_cam[:3, 3], rays[:, 3:]
        hits = scene.cast_rays(o3d.core.Tensor(rays))
        t_hit = hits["t_hit"].numpy()
        gid = hits["geometry_ids"].numpy()
        hit = gid != _MISS
        idx = np.flatnonzero(hit)
        g = gid[idx].astype(np.int64)

        depth = np.zeros(h * w, dtype=np.float32)
        depth[idx] = t_hit[idx]
        inst_table = np.array([it.instance_id for it in items], dtype=np.uint16)
        mask = np.zeros(h * w, dtype=np.uint16)
        mask[idx] = inst_table[g]

        d = d_world[idx]
        d_unit = d / np.linalg.norm(d, axis=1, keepdims=True)
        n = hits["primitive_normals"].numpy()[idx]
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        facing = np.einsum("ij,ij->i", n, d_unit)
        n[facing > 0] *= -1.0
        cos_inc = np.zeros(h * w, dtype=np.float32)
        cos_inc[idx] = np.abs(facing)
        p = c_w.astype(np.float32) + d * t_hit[idx, None]

        albedo = self._albedo(items, hits, idx, g, p)
        radiance = self._shade(items, scene, lighting, g, p, n, d_unit, albedo)

        img = np.empty((h * w, 3), dtype=np.float32)
        img[:] = lighting.background_rgb
        img[idx] = radiance
        img *= lighting.exposure * lighting.white_balance
        srgb = np.power(np.clip(img, 0.0, 1.0), 1.0 / 2.2) * 255.0
        if lighting.noise_sigma > 0:
            srgb += rng.normal(0.0, lighting.noise_sigma, size=srgb.shape).astype(np.float32)
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

    def _shade(self, items, scene, lighting: Lighting, g, p, n, d_unit, albedo) -> np.ndarray:
        """Lambert + Blinn-Phong radiance [N, 3] of hit points p [N, 3], normals n."""
        mats = [it.material for it in items]
        spec_k = np.array([m.specular for m in mats], dtype=np.float32)[g]
        shin = np.array([m.shininess for m in mats], dtype=np.float32)[g]
        diffuse = np.full((len(p), 3), lighting.ambient, dtype=np.float32)
        specular = np.zeros((len(p), 3), dtype=np.float32)
        for li, light in enumerate(lighting.lights):
            L = light.position_m.astype(np.float32) - p
            dist = np.linalg.norm(L, axis=1)
            L_unit = L / dist[:, None]
            ndotl = np.clip(np.einsum("ij,ij->i", n, L_unit), 0.0, None)
            falloff = np.minimum(1.0, (2.5 / dist) ** 2)
            lit = light.intensity * falloff
            if li == 0 and lighting.shadows:
                lit = lit * self._unshadowed(scene, p, n, L, ndotl)
            diffuse += (lit * ndotl)[:, None] * light.color
            half = L_unit - d_unit
            half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
            ndoth = np.clip(np.einsum("ij,ij->i", n, half), 0.0, 1.0)
            specular += (lit * spec_k * ndoth ** shin * (ndotl > 0))[:, None] * light.color
        return albedo * diffuse + specular

    @staticmethod
    def _unshadowed(scene, p, n, L, ndotl) -> np.ndarray:
        """1 where the segment from p towards the light is free, else 0.2."""
        out = np.ones(len(p), dtype=np.float32)
        sel = np.flatnonzero(ndotl > 0)
        if sel.size == 0:
            return out
        origin = p[sel] + 2e-3 * n[sel]
        rays = np.concatenate([origin, L[sel]], axis=1).astype(np.float32)
        t = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        out[sel[t < 1.0]] = 0.2
        return out




def placed_item(mesh, T_world_obj: np.ndarray, instance_id: int, material: Material) -> RenderItem:
    """RenderItem of a trimesh (object frame) placed at T_world_obj [4, 4]."""
    v = np.asarray(mesh.vertices) @ T_world_obj[:3, :3].T + T_world_obj[:3, 3]
    R = T_world_obj[:3, :3]
    T_obj_world = np.eye(4)
    T_obj_world[:3, :3] = R.T
    T_obj_world[:3, 3] = -R.T @ T_world_obj[:3, 3]
    return RenderItem(v.astype(np.float32), np.asarray(mesh.faces, dtype=np.uint32), instance_id, material,
                      T_obj_world)
