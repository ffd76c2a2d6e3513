"""Reach regions carved by depth: an unseen limb is not where the camera sees through.

A person's unknown elbow, wrist, knee or ankle is somewhere within its reach sphere
(:class:`~hrc_perception.safety.capsules.HumanBodyModel`, ``reach``): the limb's axis
within the chain's length of the known joint, its surface within the end's radius of
that axis. A point inside a solid limb lies behind the first surface on its camera ray,
so where the depth camera measures depth d the limb's axis is not nearer than d. Of the
axis sphere this module keeps only what is not nearer than the depth, as capsules along
camera rays whose radius adds the end's radius back, never less than the limb could
occupy:

- the depth image is min-pooled over square blocks (:func:`pool_depth`); an invalid
  pixel (0 or NaN) makes its block unknown, so a block's depth is never farther than
  any of its pixels' and a hole carves nothing;
- a point X in a block's viewing frustum is kept when z_X >= d_block - margin_m;
  blocks outside the image are unknown (kept whole);
- the kept points of a block lie within ``pad`` of the block's centre ray, on the
  chord of that ray through the sphere grown by ``pad``, from
  max(near end, d_block - margin_m) to the far end: one capsule of radius
  ``pad`` + the end's radius, pad = the block's half-diagonal at the sphere's far depth.

A sphere that comes within ``NEAR_M`` of the camera plane, or of which nothing would be
kept (the depth contradicts the skeleton), is kept whole. Camera: pinhole K of the
depth image (aligned to colour: the people's frame), no distortion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hrc_perception.safety.capsules import Capsules, ClosestPair, closest_pair, closest_pairs, point_segment_distances

NEAR_M = 0.05                 # spheres reaching closer to the camera plane are not carved


@dataclass(frozen=True)
class PooledDepth:
    """A depth image min-pooled over blocks: depth_m [Hb, Wb] float32 (metres; 0 =
    unknown: some pixel of the block had no depth), block_px (pixels per block side),
    K [3, 3] of the full image, width and height of the full image (pixels)."""
    depth_m: np.ndarray
    block_px: int
    K: np.ndarray
    width: int
    height: int


def pool_depth(depth_m: np.ndarray, K: np.ndarray, block_px: int = 8) -> PooledDepth:
    """Min-pool depth_m [H, W] (metres, float; 0, negative, NaN or inf = no depth) over
    block_px squares. Blocks cut by the image's right or bottom edge are unknown."""
    d = np.asarray(depth_m, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth must be [H, W], got shape {d.shape}")
    if block_px < 1:
        raise ValueError(f"block_px must be >= 1, got {block_px}")
    if np.isinf(d).any():            # NaN and <= 0 make their block unknown below; inf would not
        d = np.where(np.isinf(d), np.float32(0.0), d)
    h, w = d.shape
    hb, wb = -(-h // block_px), -(-w // block_px)
    if (h, w) != (hb * block_px, wb * block_px):
        full = np.zeros((hb * block_px, wb * block_px), np.float32)
        full[:h, :w] = d
        d = full
    # the minimum over each block: strided slices, columns then rows (NaN propagates)
    cols = d[:, 0::block_px].copy()
    for k in range(1, block_px):
        np.minimum(cols, d[:, k::block_px], out=cols)
    pooled = cols[0::block_px].copy()
    for k in range(1, block_px):
        np.minimum(pooled, cols[k::block_px], out=pooled)
    pooled[~(pooled > 0)] = 0.0
    return PooledDepth(pooled, int(block_px), np.asarray(K, dtype=np.float64).reshape(3, 3), w, h)


def _window(depth: PooledDepth, j0: int, i0: int, nj: int, ni: int) -> np.ndarray:
    """depth.depth_m[j0:j0+nj, i0:i0+ni] with blocks outside the image at 0 (unknown)."""
    out = np.zeros((nj, ni), np.float32)
    hb, wb = depth.depth_m.shape
    sj0, sj1, si0, si1 = max(j0, 0), min(j0 + nj, hb), max(i0, 0), min(i0 + ni, wb)
    if sj0 < sj1 and si0 < si1:
        out[sj0 - j0:sj1 - j0, si0 - i0:si1 - i0] = depth.depth_m[sj0:sj1, si0:si1]
    return out


def carve_sphere(center_m: np.ndarray, radius_m: float, depth: PooledDepth, margin_m: float,
                 max_blocks: int = 32) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The part of a sphere (centre [3], camera frame, metres) that the depth does not
    see through, as capsules (a [N, 3], b [N, 3], radius pad metres) along camera rays;
    None: keep the whole sphere. Blocks are merged so that at most max_blocks span the
    sphere's image footprint."""
    c = np.asarray(center_m, dtype=np.float64).reshape(3)
    r = float(radius_m)
    if not np.isfinite(c).all() or c[2] - r < NEAR_M:
        return None
    fx, fy, cx, cy = depth.K[0, 0], depth.K[1, 1], depth.K[0, 2], depth.K[1, 2]
    # Image bounding box of the sphere: x/z and y/z over the box around the sphere.
    z_lo, z_hi = c[2] - r, c[2] + r
    xn = [(c[0] + sx * r) / z for sx in (-1, 1) for z in (z_lo, z_hi)]
    yn = [(c[1] + sy * r) / z for sy in (-1, 1) for z in (z_lo, z_hi)]
    b = depth.block_px
    # Block i covers the continuous pixel interval [i b - 0.5, (i + 1) b - 0.5).
    i0, i1 = (math.floor((fx * v + cx + 0.5) / b) for v in (min(xn), max(xn)))
    j0, j1 = (math.floor((fy * v + cy + 0.5) / b) for v in (min(yn), max(yn)))
    k = max(1, math.ceil(max(i1 - i0 + 1, j1 - j0 + 1) / max_blocks))
    ni, nj = -(-(i1 - i0 + 1) // k), -(-(j1 - j0 + 1) // k)
    d_block = _window(depth, j0, i0, nj * k, ni * k).reshape(nj, k, ni, k).min(axis=(1, 3))
    side = b * k
    u = i0 * b - 0.5 + (np.arange(ni) + 0.5) * side
    v = j0 * b - 0.5 + (np.arange(nj) + 0.5) * side
    x_n, y_n = np.meshgrid((u - cx) / fx, (v - cy) / fy)
    ray = np.stack([x_n, y_n, np.ones_like(x_n)], axis=-1).reshape(-1, 3)
    half_diag = 0.5 * side * math.hypot(1.0 / fx, 1.0 / fy)
    pad = half_diag * z_hi
    # Chord of z * ray through the sphere grown by pad: A z^2 - 2 B z + C = 0.
    A = np.einsum("ij,ij->i", ray, ray)
    B = ray @ c
    C = c @ c - (r + pad) ** 2
    disc = B * B - A * C
    root = np.sqrt(np.maximum(disc, 0.0))
    z_near, z_far = (B - root) / A, (B + root) / A
    d = d_block.reshape(-1).astype(np.float64)
    z_start = np.where(d > 0, np.maximum(z_near, d - margin_m), z_near)
    keep = (disc >= 0) & (z_start <= z_far)
    if not keep.any():
        return None
    return z_start[keep, None] * ray[keep], z_far[keep, None] * ray[keep], pad


def closest_pair_carved(body: Capsules, reach: Capsules, end_radius_m: np.ndarray, robot: Capsules,
                        depth: PooledDepth, margin_m: float, max_blocks: int = 32) -> ClosestPair | None:
    """The closest pair of one person and the robot when the person's reach spheres
    (``reach``: spheres, a == b; their ends' radii end_radius_m [N], metres, as
    :meth:`~hrc_perception.safety.capsules.HumanBodyModel.cover`) are carved by
    ``depth``; body: the person's other capsules. Spheres are carved nearest first, and
    only while a sphere is nearer than the best pair so far (carving only moves a
    sphere's distance away); of a carved sphere, only the capsules that could beat the
    best pair (by the robot's bounding sphere) are measured exactly. The pair's index_a
    counts body's capsules then reach's."""
    if len(reach) == 0 or len(robot) == 0:
        return closest_pair(body, robot)
    # the body and each whole sphere in one pass
    best, *whole = closest_pairs([body] + [Capsules(reach.a[[k]], reach.b[[k]], reach.radius[[k]],
                                                    [reach.names_a[k]], [reach.names_b[k]])
                                           for k in range(len(reach))], robot)
    ends = np.concatenate([robot.a, robot.b])
    centre = ends.mean(axis=0)
    bound_m = float(np.linalg.norm(ends - centre, axis=1).max() + robot.radius.max())
    for k in np.argsort([p.distance_m for p in whole]):
        if best is not None and whole[k].distance_m >= best.distance_m:
            break
        end_r = float(end_radius_m[k])
        carved = carve_sphere(reach.a[k], reach.radius[k] - end_r, depth, margin_m, max_blocks)
        pair = whole[k]
        if carved is not None:
            a, b, pad = carved
            if best is not None:    # a lower bound of each capsule's distance: to the robot's bounding sphere
                near = point_segment_distances(centre, a, b) - bound_m - pad - end_r < best.distance_m
                if not near.any():
                    continue
                a, b = a[near], b[near]
            cover = closest_pair(Capsules(a, b, np.full(len(a), pad + end_r), [reach.names_a[k]] * len(a),
                                          [reach.names_b[k]] * len(a)), robot)
            # the cover reaches pad beyond the sphere: the sphere's own distance is also a bound
            pair = max(cover, pair, key=lambda p: p.distance_m)
        if best is None or pair.distance_m < best.distance_m:
            best = ClosestPair(pair.distance_m, len(body) + int(k), pair.index_b, pair.name_a, pair.name_b,
                               pair.point_a, pair.point_b)
    return best
