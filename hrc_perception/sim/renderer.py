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


@dataclass
class _Layer:
    """Ray-cast result of a set of items for a set of pixels (rows of the camera rays).

    depth_m [M], mask [M] uint16, cos_incidence [M], points [M, 3] world,
    normals [M, 3] facing the camera, key / rest [M, 3] linear radiance
    (see shading.light_components), hit [M] bool."""
    depth_m: np.ndarray
    mask: np.ndarray
    cos_incidence: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    key: np.ndarray
    rest: np.ndarray
    hit: np.ndarray


@dataclass
class _StaticLayer:
    """The episode's still background, cast and lit once: its layer over every
    pixel, its ray-casting scene, and its own shadows on the coarse grid."""
    key: tuple
    scene: o3d.t.geometry.RaycastingScene
    layer: _Layer
    blocked_coarse: np.ndarray


class Renderer:
    """Renders a still background (cached per episode) and moving items for a
    fixed image size.

    Per frame only the moving items are ray cast, and only inside the image
    rectangles their vertices project to; a pixel shows whichever of the cached
    background and the moving items is nearer. Shadows of the key light are tested
    on every second row and column (each pixel takes its 2x2 block's top-left value).
    """

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._camera_key: bytes | None = None
        self._rays: np.ndarray | None = None
        self._static: _StaticLayer | None = None
        # fixed directions of the "noise" texture's waves (same in every run)
        self._noise_dirs = np.random.default_rng(7).normal(size=(3, 3)).astype(np.float32)
        # Linear radiance -> 8-bit sRGB-like (gamma 2.2) through a 4096-entry table.
        self._gamma_lut = (np.power(np.linspace(0.0, 1.0, 4096), 1.0 / 2.2) * 255.0).astype(np.float32)
        coarse = np.zeros((height, width), dtype=bool)
        coarse[::2, ::2] = True
        self._coarse_pixels = np.flatnonzero(coarse)

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

    def render(self, static_key, static_items: list[RenderItem], items: list[RenderItem], K: np.ndarray,
               T_world_cam: np.ndarray, lighting: Lighting, rng: np.random.Generator) -> RenderOutput:
        """Render one frame of the still static_items (cached while static_key is
        unchanged: same items, camera and lights) and the moving items.
        rng draws the colour noise only."""
        h, w = self.height, self.width
        rays = self.camera_rays(K, T_world_cam)
        bg = self._static_layer(static_key, static_items, rays, lighting)
        scene = _scene_of(items)
        sel = self._pixels_covered(items, K, T_world_cam)
        fg = self._cast(scene, items, rays[sel], lighting)
        front = fg.hit & (~bg.layer.hit[sel] | (fg.depth_m < bg.layer.depth_m[sel]))
        px, fg = sel[front], _subset(fg, front)

        depth, mask, cos_inc = bg.layer.depth_m.copy(), bg.layer.mask.copy(), bg.layer.cos_incidence.copy()
        depth[px], mask[px], cos_inc[px] = fg.depth_m, fg.mask, fg.cos_incidence
        key, rest = bg.layer.key.copy(), bg.layer.rest.copy()
        key[px], rest[px] = fg.key, fg.rest
        shadow = np.ones(h * w, dtype=np.float32)
        if lighting.shadows:
            shadow = self._shadows(bg, scene, px, fg, lighting)
        noise = rng.standard_normal(h * w, dtype=np.float32) * np.float32(lighting.noise_sigma)
        rgb = shading.compose(key, rest, shadow, (lighting.exposure * lighting.white_balance).astype(np.float32),
                              noise, self._gamma_lut)
        return RenderOutput(rgb.reshape(h, w, 3), depth.reshape(h, w), mask.reshape(h, w), cos_inc.reshape(h, w))

    def _static_layer(self, static_key, items, rays, lighting) -> _StaticLayer:
        key = (static_key, self._camera_key)
        if self._static is None or self._static.key != key:
            scene = _scene_of(items)
            layer = self._cast(scene, items, rays, lighting)
            blocked = np.zeros(len(self._coarse_pixels), dtype=bool)
            if lighting.shadows:
                c = self._coarse_pixels
                blocked = _occluded(scene, layer.points[c], layer.normals[c], lighting) & layer.hit[c]
            self._static = _StaticLayer(key, scene, layer, blocked)
        return self._static

    def _pixels_covered(self, items, K, T_world_cam) -> np.ndarray:
        """Row-major indices of the pixels inside the bounding rectangle of some item's
        projected vertices (all pixels if a vertex lies behind the camera)."""
        h, w = self.height, self.width
        covered = np.zeros((h, w), dtype=bool)
        R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
        for it in items:
            v_cam = (it.vertices_world_m.astype(np.float64) - t) @ R
            if np.any(v_cam[:, 2] <= 1e-3):
                return np.arange(h * w)
            uv = v_cam[:, :2] / v_cam[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
            u0, v0 = np.clip(np.floor(uv.min(axis=0)).astype(int) - 1, 0, [w, h])
            u1, v1 = np.clip(np.ceil(uv.max(axis=0)).astype(int) + 2, 0, [w, h])
            covered[v0:v1, u0:u1] = True
        return np.flatnonzero(covered)

    def _cast(self, scene, items, rays, lighting) -> _Layer:
        """Cast rays [M, 6] at a scene of items and light the hits."""
        if len(items) == 0 or len(rays) == 0:
            m = len(rays)
            z3 = np.zeros((m, 3), np.float32)
            return _Layer(np.zeros(m, np.float32), np.zeros(m, np.uint16), np.zeros(m, np.float32), z3, z3, z3,
                          np.broadcast_to(np.asarray(lighting.background_rgb, np.float32), (m, 3)).copy(),
                          np.zeros(m, bool))
        hits = scene.cast_rays(o3d.core.Tensor(np.ascontiguousarray(rays)))
        gid = hits["geometry_ids"].numpy()
        depth, mask, cos_inc, points, normals = shading.surface(
            rays, hits["t_hit"].numpy(), gid, hits["primitive_normals"].numpy(),
            np.array([it.instance_id for it in items], dtype=np.uint16))
        mats = [it.material for it in items]
        vc_offset, vc_faces, vc_colors = _vertex_color_tables(items)
        key, rest = shading.light_components(
            rays, gid, hits["primitive_ids"].numpy(), hits["primitive_uvs"].numpy(), points, normals,
            np.array([m.albedo for m in mats], dtype=np.float32),
            np.array([m.albedo if m.albedo2 is None else m.albedo2 for m in mats], dtype=np.float32),
            np.array([m.albedo2 is not None for m in mats], dtype=np.bool_),
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
            np.float32(lighting.ambient), np.asarray(lighting.background_rgb, dtype=np.float32), self._noise_dirs)
        return _Layer(depth, mask, cos_inc, points, normals, key, rest, gid != shading.MISS)

    def _shadows(self, bg: _StaticLayer, scene, px, fg: _Layer, lighting) -> np.ndarray:
        """Shadow factor [H*W] of the key light (1 lit, SHADOW_LEVEL blocked)."""
        h, w = self.height, self.width
        c = self._coarse_pixels
        row_of_px = np.full(h * w, -1, dtype=np.int64)
        row_of_px[px] = np.arange(len(px))
        fg_rows = row_of_px[c]
        on_fg = fg_rows >= 0
        on_bg = ~on_fg & bg.layer.hit[c]
        blocked = np.zeros(len(c), dtype=bool)
        # background pixels: their own shadows (cached) or the moving items' shadows
        blocked[on_bg] = bg.blocked_coarse[on_bg]
        i = np.flatnonzero(on_bg & ~blocked)
        if len(i) and scene is not None:
            blocked[i] = _occluded(scene, bg.layer.points[c[i]], bg.layer.normals[c[i]], lighting)
        # moving-item pixels: shadows of the background and of the moving items
        i = np.flatnonzero(on_fg)
        if len(i):
            p, n = fg.points[fg_rows[i]], fg.normals[fg_rows[i]]
            blocked[i] = _occluded(bg.scene, p, n, lighting) | _occluded(scene, p, n, lighting)
        coarse = np.zeros((h, w), dtype=bool)
        coarse.reshape(-1)[c] = blocked
        coarse = coarse[::2, ::2]
        full = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w]
        return np.where(full, np.float32(SHADOW_LEVEL), np.float32(1.0)).reshape(-1)


def _scene_of(items: list[RenderItem]):
    """Ray-casting scene of the items (geometry id = position in the list), None if empty."""
    if not items:
        return None
    scene = o3d.t.geometry.RaycastingScene()
    for it in items:
        scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(it.vertices_world_m, dtype=np.float32)),
                            o3d.core.Tensor(np.ascontiguousarray(it.faces, dtype=np.uint32)))
    return scene


def _occluded(scene, points, normals, lighting) -> np.ndarray:
    """[M] bool: the segment from each point (nudged along its normal) to the key light is blocked."""
    if scene is None or len(points) == 0:
        return np.zeros(len(points), dtype=bool)
    origin = points + np.float32(2e-3) * normals
    light = lighting.lights[0].position_m.astype(np.float32)
    rays = np.ascontiguousarray(np.concatenate([origin, light - origin], axis=1), dtype=np.float32)
    return scene.test_occlusions(o3d.core.Tensor(rays), tnear=0.0, tfar=1.0).numpy().astype(bool)


def _subset(layer: _Layer, keep: np.ndarray) -> _Layer:
    return _Layer(*(getattr(layer, f)[keep] for f in ("depth_m", "mask", "cos_incidence", "points", "normals",
                                                       "key", "rest", "hit")))


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
