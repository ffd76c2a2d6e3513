"""Per-pixel surface and colour kernels of the ray-cast renderer (numba, parallel over pixels).

Pixels are flattened row-major: N = H * W. Geometry tables are indexed by the
ray caster's geometry id g (one entry per RenderItem). Colours are linear RGB
in [0, 1] until the final gamma table. Each pixel is independent, so results do
not depend on the thread count.
"""
from __future__ import annotations

import numba as nb
import numpy as np

# numba's OpenMP layer spins its idle threads, which starves the ray caster's
# threads between kernels (frames took ~1.6x longer); its TBB layer is too old here.
nb.config.THREADING_LAYER = "workqueue"

MISS = np.uint32(0xFFFFFFFF)
TEX_PLAIN, TEX_NOISE, TEX_STRIPES, TEX_CHECKER, TEX_WOOD, TEX_PRINT, TEX_BRUSHED = range(7)  # materials.TEXTURES


@nb.njit(parallel=True, cache=True, fastmath=True)
def surface(rays, t_hit, gid, normals, instance_of_geometry):
    """Depth, instance ids, incidence and facing normals of the primary hits.

    rays [N, 6] float32 (origin, direction with unit camera z); t_hit [N]; gid [N]
    uint32 (MISS where no hit); normals [N, 3] hit triangle normals.
    Returns depth_m [N] float32 (0 = miss), mask [N] uint16, cos_incidence [N]
    float32, points [N, 3] float32 (world), normals_facing [N, 3] float32 (towards
    the camera).
    """
    n_px = rays.shape[0]
    depth = np.zeros(n_px, np.float32)
    mask = np.zeros(n_px, np.uint16)
    cos_inc = np.zeros(n_px, np.float32)
    points = np.zeros((n_px, 3), np.float32)
    nrm = np.zeros((n_px, 3), np.float32)
    for i in nb.prange(n_px):
        g = gid[i]
        if g == MISS:
            continue
        t = t_hit[i]
        depth[i] = t
        mask[i] = instance_of_geometry[g]
        dx, dy, dz = rays[i, 3], rays[i, 4], rays[i, 5]
        inv_len = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        inv_n = 1.0 / max(np.sqrt(nx * nx + ny * ny + nz * nz), 1e-12)
        nx, ny, nz = nx * inv_n, ny * inv_n, nz * inv_n
        c = (nx * dx + ny * dy + nz * dz) * inv_len
        if c > 0:
            nx, ny, nz, c = -nx, -ny, -nz, -c
        cos_inc[i] = -c
        points[i, 0] = rays[i, 0] + dx * t
        points[i, 1] = rays[i, 1] + dy * t
        points[i, 2] = rays[i, 2] + dz * t
        nrm[i, 0], nrm[i, 1], nrm[i, 2] = nx, ny, nz
    return depth, mask, cos_inc, points, nrm


@nb.njit(cache=True, fastmath=True)
def _tri(x):
    """Triangle wave of period 1 in [-1, 1] (a cheap sine)."""
    return 4.0 * abs(x - np.floor(x) - 0.5) - 1.0


@nb.njit(cache=True, fastmath=True)
def _pattern(kind, x, y, z, noise_dirs):
    """Texture value in [-1, 1] at object-frame point (x, y, z) already divided by the period."""
    if kind == TEX_NOISE:   # interfering triangle waves along three fixed directions
        a = x * noise_dirs[0, 0] + y * noise_dirs[1, 0] + z * noise_dirs[2, 0]
        b = x * noise_dirs[0, 1] + y * noise_dirs[1, 1] + z * noise_dirs[2, 1] + 0.3
        c = 2.7 * (x * noise_dirs[0, 2] + y * noise_dirs[1, 2] + z * noise_dirs[2, 2])
        return (_tri(a) * _tri(b) + 0.5 * _tri(c)) / 1.5
    if kind == TEX_STRIPES:
        return 1.0 if _tri(x + 0.1 * y) >= 0 else -1.0
    if kind == TEX_CHECKER:
        s = int(np.floor(x)) + int(np.floor(y)) + int(np.floor(z))
        return 1.0 if (s & 1) else -1.0
    if kind == TEX_WOOD:    # growth rings about the z axis, warped, with a sharp late-wood edge
        r = np.sqrt(x * x + y * y) + 0.25 * _tri(0.13 * z + 0.05 * x) + 0.1 * _tri(0.7 * z)
        return 1.0 if _tri(r) > 0.4 else -1.0
    if kind == TEX_PRINT:   # lines of "text": blocks 1/4 period wide, on by a hash of their cell
        iy = int(np.floor(y))
        if y - np.floor(y) > 0.55:
            return -1.0   # between lines: paper
        h = (int(np.floor(4.0 * x)) * 73856093) ^ (iy * 19349663) ^ (int(np.floor(z)) * 83492791)
        return 1.0 if (h & 1023) < 560 else -1.0
    if kind == TEX_BRUSHED:  # fine streaks along x
        return 0.6 * _tri(23.0 * y + 0.7 * _tri(0.31 * x)) + 0.4 * _tri(57.0 * y + 2.0 * z)
    return 0.0


@nb.njit(parallel=True, cache=True, fastmath=True)
def light_components(rays, gid, prim, uvs, points, nrm,
                     albedo, albedo2, two_tone, texture, tex_scale, tex_contrast, specular, shininess,
                     R_obj_world, t_obj_world,
                     vc_face_offset, faces, vertex_colors,
                     light_pos, light_intensity, light_color, ambient, background, noise_dirs):
    """Linear radiance of hit points, split into the key light's share and the rest.

    rays [M, 6], gid [M] (MISS: background), prim [M], uvs [M, 2], points [M, 3],
    nrm [M, 3] (facing the camera) of M pixels. Per geometry g: albedo [G, 3], albedo2
    [G, 3] and two_tone [G] bool (the pattern blends albedo to albedo2, else scales albedo);
    texture [G] (TEX_*), tex_scale [G] metres, tex_contrast [G]; specular [G],
    shininess [G]; R_obj_world [G, 3, 3], t_obj_world [G, 3] (world -> mesh frame,
    for textures); vc_face_offset [G] (-1: no vertex colours, else offset of its
    faces in faces [F, 3], which index vertex_colors [V, 3]). Lights: light_pos
    [L, 3], light_intensity [L], light_color [L, 3] (light 0 is the key light, the
    one that casts shadows); ambient level; background [3] for misses.
    Returns key [M, 3] (light 0, unshadowed) and rest [M, 3] (ambient, other lights);
    a pixel's radiance is rest + shadow * key.
    """
    n_px = rays.shape[0]
    key = np.zeros((n_px, 3), np.float32)
    rest = np.empty((n_px, 3), np.float32)
    n_lights = light_pos.shape[0]
    for i in nb.prange(n_px):
        g = gid[i]
        if g == MISS:
            rest[i, 0], rest[i, 1], rest[i, 2] = background[0], background[1], background[2]
            continue
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        nx, ny, nz = nrm[i, 0], nrm[i, 1], nrm[i, 2]
        # albedo: vertex colours (barycentric) or flat, then the texture pattern
        a0, a1, a2 = albedo[g, 0], albedo[g, 1], albedo[g, 2]
        if vc_face_offset[g] >= 0:
            f = vc_face_offset[g] + prim[i]
            u, v = uvs[i, 0], uvs[i, 1]
            w0 = 1.0 - u - v
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            a0 = w0 * vertex_colors[i0, 0] + u * vertex_colors[i1, 0] + v * vertex_colors[i2, 0]
            a1 = w0 * vertex_colors[i0, 1] + u * vertex_colors[i1, 1] + v * vertex_colors[i2, 1]
            a2 = w0 * vertex_colors[i0, 2] + u * vertex_colors[i1, 2] + v * vertex_colors[i2, 2]
        if texture[g] != TEX_PLAIN:
            s = 1.0 / tex_scale[g]
            ox = (R_obj_world[g, 0, 0] * px + R_obj_world[g, 0, 1] * py + R_obj_world[g, 0, 2] * pz
                  + t_obj_world[g, 0]) * s
            oy = (R_obj_world[g, 1, 0] * px + R_obj_world[g, 1, 1] * py + R_obj_world[g, 1, 2] * pz
                  + t_obj_world[g, 1]) * s
            oz = (R_obj_world[g, 2, 0] * px + R_obj_world[g, 2, 1] * py + R_obj_world[g, 2, 2] * pz
                  + t_obj_world[g, 2]) * s
            pat = _pattern(texture[g], ox, oy, oz, noise_dirs)
            if two_tone[g]:
                m = 0.5 * (1.0 + pat) * tex_contrast[g]
                a0 = a0 + (albedo2[g, 0] - a0) * m
                a1 = a1 + (albedo2[g, 1] - a1) * m
                a2 = a2 + (albedo2[g, 2] - a2) * m
            else:
                m = 1.0 + tex_contrast[g] * pat
                a0, a1, a2 = a0 * m, a1 * m, a2 * m
        a0, a1, a2 = min(max(a0, 0.0), 1.0), min(max(a1, 0.0), 1.0), min(max(a2, 0.0), 1.0)
        dx, dy, dz = rays[i, 3], rays[i, 4], rays[i, 5]
        inv = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
        vx, vy, vz = -dx * inv, -dy * inv, -dz * inv          # towards the camera
        r0 = r1 = r2 = ambient
        r0, r1, r2 = a0 * r0, a1 * r1, a2 * r2
        for li in range(n_lights):
            lx, ly, lz = light_pos[li, 0] - px, light_pos[li, 1] - py, light_pos[li, 2] - pz
            inv_dist = 1.0 / np.sqrt(lx * lx + ly * ly + lz * lz)
            lx, ly, lz = lx * inv_dist, ly * inv_dist, lz * inv_dist
            ndotl = nx * lx + ny * ly + nz * lz
            if ndotl <= 0:
                continue
            lit = light_intensity[li] * min(1.0, 6.25 * inv_dist * inv_dist)   # full strength within 2.5 m
            hx, hy, hz = lx + vx, ly + vy, lz + vz
            ndoth = max((nx * hx + ny * hy + nz * hz) / np.sqrt(hx * hx + hy * hy + hz * hz + 1e-12), 0.0)
            # Schlick's rational stand-in for ndoth ** shininess (no pow per pixel)
            sp = lit * specular[g] * ndoth / (shininess[g] - shininess[g] * ndoth + ndoth)
            diff = lit * ndotl
            c0 = (a0 * diff + sp) * light_color[li, 0]
            c1 = (a1 * diff + sp) * light_color[li, 1]
            c2 = (a2 * diff + sp) * light_color[li, 2]
            if li == 0:
                key[i, 0], key[i, 1], key[i, 2] = c0, c1, c2
            else:
                r0, r1, r2 = r0 + c0, r1 + c1, r2 + c2
        rest[i, 0], rest[i, 1], rest[i, 2] = r0, r1, r2
    return key, rest


@nb.njit(parallel=True, cache=True, fastmath=True)
def compose(key, rest, shadow, response, noise, gamma_lut):
    """8-bit colour [N, 3]: (rest + shadow * key) x response [3], gamma table
    gamma_lut [4096] (linear -> 8 bit), plus noise [N] in 8-bit units on all channels."""
    n_px = key.shape[0]
    out = np.empty((n_px, 3), np.uint8)
    for i in nb.prange(n_px):
        for k in range(3):
            out[i, k] = _to_8bit((rest[i, k] + shadow[i] * key[i, k]) * response[k], noise[i], gamma_lut)
    return out


@nb.njit(cache=True, fastmath=True)
def _to_8bit(linear, noise, gamma_lut):
    lin = min(max(linear, 0.0), 1.0)
    return np.uint8(min(max(gamma_lut[int(lin * 4095.0)] + noise + 0.5, 0.0), 255.0))
