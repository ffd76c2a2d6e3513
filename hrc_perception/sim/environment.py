"""The static cell around the work: floor, walls, table, floor clutter, table clutter.

Everything here is background (instance id 0) and placed once per episode in
the world frame (z up, metres, origin on the floor under the table centre).
"""
from __future__ import annotations

import numpy as np
import trimesh

from hrc_perception.geometry import make_T, rot_z
from hrc_perception.sim.materials import random_material
from hrc_perception.sim.renderer import RenderItem, placed_item

TABLE_TOP_THICKNESS_M = 0.04
TABLE_LEG_SIZE_M = 0.06


def _box(size_m, center_m, yaw_rad=0.0) -> tuple[trimesh.Trimesh, np.ndarray]:
    return trimesh.creation.box(size_m), make_T(rot_z(yaw_rad), np.asarray(center_m, float))


def table_items(rng: np.random.Generator, size_m: tuple[float, float], height_m: float) -> list[RenderItem]:
    """Table top (its upper face at height_m) on four legs, one random material."""
    lx, ly = size_m
    top_mat = random_material(rng, albedo=rng.uniform(0.25, 0.85) * np.array([1.0, rng.uniform(0.85, 1.0),
                                                                               rng.uniform(0.7, 1.0)]),
                              textures=("plain", "noise", "stripes"))
    leg_mat = random_material(rng, albedo=np.full(3, rng.uniform(0.1, 0.6)), textures=("plain",))
    mesh, T = _box((lx, ly, TABLE_TOP_THICKNESS_M), (0.0, 0.0, height_m - TABLE_TOP_THICKNESS_M / 2))
    items = [placed_item(mesh, T, 0, top_mat)]
    leg_h = height_m - TABLE_TOP_THICKNESS_M
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = (sx * (lx / 2 - 0.08), sy * (ly / 2 - 0.08), leg_h / 2)
            mesh, T = _box((TABLE_LEG_SIZE_M, TABLE_LEG_SIZE_M, leg_h), c)
            items.append(placed_item(mesh, T, 0, leg_mat))
    return items


def room_items(rng: np.random.Generator, table_size_m: tuple[float, float]) -> list[RenderItem]:
    """Floor, four walls at random distances, and 2-5 boxes or drums on the floor
    away from the table (shelves, bins, machines: distractors)."""
    grey = rng.uniform(0.25, 0.7)
    floor_mat = random_material(rng, albedo=grey * rng.uniform(0.85, 1.1, 3), textures=("noise", "checker", "plain"))
    floor = trimesh.Trimesh([[-15, -15, 0], [15, -15, 0], [15, 15, 0], [-15, 15, 0]], [[0, 1, 2], [0, 2, 3]],
                            process=False)
    items = [placed_item(floor, np.eye(4), 0, floor_mat)]
    x_min, x_max = -rng.uniform(3.5, 5.5), rng.uniform(4.0, 6.5)
    y_min, y_max = -rng.uniform(4.0, 6.0), rng.uniform(4.0, 6.0)
    height = 3.2
    walls = [((0.05, y_max - y_min, height), (x_min, (y_min + y_max) / 2, height / 2)),
             ((0.05, y_max - y_min, height), (x_max, (y_min + y_max) / 2, height / 2)),
             ((x_max - x_min, 0.05, height), ((x_min + x_max) / 2, y_min, height / 2)),
             ((x_max - x_min, 0.05, height), ((x_min + x_max) / 2, y_max, height / 2))]
    for size, center in walls:
        mesh, T = _box(size, center)
        items.append(placed_item(mesh, T, 0, random_material(rng, albedo=rng.uniform(0.3, 0.9, 3))))
    keep_out_x = table_size_m[0] / 2 + 1.2
    keep_out_y = table_size_m[1] / 2 + 1.2
    n = int(rng.integers(2, 6))
    placed = 0
    for _ in range(50):
        if placed == n:
            break
        x, y = rng.uniform(x_min + 0.6, x_max - 0.6), rng.uniform(y_min + 0.6, y_max - 0.6)
        if abs(x) < keep_out_x and abs(y) < keep_out_y:
            continue
        mat = random_material(rng)
        if rng.random() < 0.7:
            size = rng.uniform([0.3, 0.3, 0.3], [1.2, 0.8, 1.8])
            mesh, T = _box(size, (x, y, size[2] / 2), rng.uniform(0, np.pi))
        else:
            r, hh = rng.uniform(0.15, 0.35), rng.uniform(0.4, 1.0)
            mesh, T = trimesh.creation.cylinder(r, hh, sections=20), make_T(np.eye(3), np.array([x, y, hh / 2]))
        items.append(placed_item(mesh, T, 0, mat))
        placed += 1
    return items


CLUTTER_SHAPES = ("box", "cylinder", "sphere", "capsule", "lump")


def clutter_mesh(rng: np.random.Generator, shape: str, size_m: float) -> trimesh.Trimesh:
    """One clutter object of the given shape, longest side about size_m, resting on z = 0
    (its lowest point), centred on the z axis."""
    if shape == "box":
        mesh = trimesh.creation.box(size_m * rng.uniform([0.3, 0.3, 0.15], [1.0, 1.0, 1.0]))
    elif shape == "cylinder":
        mesh = trimesh.creation.cylinder(size_m * rng.uniform(0.15, 0.5), size_m * rng.uniform(0.2, 1.0), sections=24)
    elif shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=2, radius=size_m / 2)
    elif shape == "capsule":
        mesh = trimesh.creation.capsule(size_m * rng.uniform(0.3, 0.7), size_m * rng.uniform(0.1, 0.25), count=[12, 12])
        mesh.apply_transform(make_T(np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), np.zeros(3)))  # lying down
    elif shape == "lump":
        mesh = trimesh.convex.convex_hull(rng.normal(0.0, 1.0, (int(rng.integers(8, 20)), 3)) * size_m / 4)
    else:
        raise ValueError(f"unknown clutter shape {shape!r}; one of {CLUTTER_SHAPES}")
    mesh.apply_translation([0.0, 0.0, -float(mesh.vertices[:, 2].min())])
    return mesh


def clutter_items(rng: np.random.Generator, count: int, size_m: tuple[float, float], area_x_m, area_y_m,
                  table_h_m: float, keep_out: list[tuple[float, float, float]]) -> list[RenderItem]:
    """``count`` clutter objects (:func:`clutter_mesh`) on the table top (height
    table_h_m) within area_x_m x area_y_m (world x, y ranges), each clear of the
    circles (x, y, radius) of keep_out (the parts) and of the others; fewer where
    they do not fit."""
    items, taken = [], list(keep_out)
    for _ in range(count):
        size = float(rng.uniform(*size_m))
        mesh = clutter_mesh(rng, str(CLUTTER_SHAPES[rng.integers(len(CLUTTER_SHAPES))]), size)
        radius = 0.5 * float(np.linalg.norm(mesh.extents[:2]))
        mat = random_material(rng)
        for _ in range(30):
            x, y = rng.uniform(*area_x_m), rng.uniform(*area_y_m)
            if all(np.hypot(x - qx, y - qy) > radius + qr + 0.01 for qx, qy, qr in taken):
                items.append(placed_item(mesh, make_T(rot_z(rng.uniform(-np.pi, np.pi)),
                                                      np.array([x, y, table_h_m])), 0, mat))
                taken.append((x, y, radius))
                break
    return items
