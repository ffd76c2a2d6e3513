"""Parts that lie on the work cell's table: procedural industrial parts or mesh files.

A part is a rigid mesh plus what pose estimation needs to know about it: its
diameter, its symmetries (in the BOP ``models_info.json`` convention) and, for
scanned models, its vertex colours. ``load_parts`` turns the ``parts`` section
of the cell description into a list of ``PartModel``.

Frames and units: metres. A part's model frame has its origin at the centre of
the mesh's axis-aligned bounding box and, for the procedural parts, +z up in the
pose the part rests in on the table (``rest_height_m`` lifts the origin above the
surface). Mesh files keep their own axes; only their origin moves to the box
centre (a no-op for BOP models, which are already centred).

Procedural parts (all built here from shapely profiles, no boolean engine):

========  ======================================================  =====================
name      shape (rest pose)                                        symmetries
========  ======================================================  =====================
bracket   L angle bracket, unequal legs, one round hole per leg    none
gear      14-tooth spur gear with a one-sided hub and a bore       13 discrete about z
flange    disc, raised hub, centre bore, 6 bolt holes              5 discrete about z
bolt      hex head bolt standing on its head, shaft up             5 discrete about z
housing   base plate with 4 holes, offset body, blind bore, boss   none
pipe      short tube standing on its end                           continuous about z
                                                                   + flip about x
========  ======================================================  =====================

The gear's hub sits on one face only, so turning the gear over is not a
symmetry; the pipe's flip (a half turn about x) is, and is listed as BOP does
for objects that have both.
"""
from __future__ import annotations

import colorsys
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import trimesh
from scipy.spatial import ConvexHull
from scipy.spatial.distance import cdist
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from hrc_perception.geometry import make_T, rot_x, rot_z
from hrc_perception.sim.config import ConfigError, PartsConfig
from hrc_perception.sim.materials import BASIC_TEXTURES, Material

PROCEDURAL_PART_NAMES: tuple[str, ...] = ("bracket", "gear", "flange", "bolt", "housing", "pipe")

MESH_SUFFIXES = (".ply", ".obj")
UNIT_SCALES = {"m": 1.0, "mm": 1e-3}

ContinuousSymmetry = tuple[np.ndarray, np.ndarray]  # (unit axis [3], point on the axis [3] metres)


@dataclass(frozen=True, eq=False)
class PartModel:
    """One class of part. Treat every array (and the mesh) as read-only.

    name: class name, 'gear' or a mesh file's stem such as 'obj_000001'.
    mesh: the surface in the model frame, metres; origin at the centre of the
        axis-aligned bounding box; +z up in the resting pose.
    rest_height_m: -min(vertex z), the height of the origin above a surface the
        part rests on (rotations about z keep it valid).
    diameter_m: largest distance between two vertices (exact).
    symmetries_continuous: tuple of (axis [3] unit float64, offset [3] metres),
        the part looks the same after any rotation about the axis through offset.
    symmetries_discrete: tuple of [4, 4] float64 model-frame transforms
        (translation in metres) that map the part onto itself, identity excluded.
    vertex_colors: [V, 3] float64 RGB in [0, 1] when the mesh file has vertex
        colours, else None.

    Equality is identity (the fields hold arrays).
    """
    name: str
    mesh: trimesh.Trimesh
    rest_height_m: float
    diameter_m: float
    symmetries_continuous: tuple
    symmetries_discrete: tuple
    vertex_colors: np.ndarray | None = None


# ---------------------------------------------------------------------------
# Small geometric helpers
# ---------------------------------------------------------------------------

def _regular_polygon(radius: float, sections: int, center=(0.0, 0.0), phase: float = 0.0) -> Polygon:
    """Regular polygon with `sections` corners on a circle of `radius` (metres),
    the first corner at angle `phase` (radians) from +x."""
    a = phase + 2.0 * np.pi * np.arange(sections) / sections
    return Polygon(np.stack([center[0] + radius * np.cos(a), center[1] + radius * np.sin(a)], axis=1))


def _rotate_xy(points: np.ndarray, angle_rad: float) -> np.ndarray:
    """Points [N, 2] rotated by angle_rad about the origin."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return points @ np.array([[c, s], [-s, c]])


def _max_pairwise_distance(points: np.ndarray, block: int = 2048) -> float:
    """Largest Euclidean distance between two rows of points [N, 3] (blocked, exact)."""
    best = 0.0
    for i in range(0, len(points), block):
        d = cdist(points[i:i + block], points[i:])
        best = max(best, float(d.max()))
    return best


def mesh_diameter(vertices: np.ndarray) -> float:
    """Exact diameter (max vertex-to-vertex distance, metres) of vertices [V, 3];
    computed on the convex hull's vertices."""
    pts = np.unique(np.asarray(vertices, dtype=np.float64), axis=0)
    if len(pts) < 2:
        return 0.0
    for options in (None, "QJ"):
        try:
            hull = ConvexHull(pts, qhull_options=options)
            return _max_pairwise_distance(pts[hull.vertices])
        except Exception:  # flat or degenerate point sets: try joggling, then all points
            continue
    return _max_pairwise_distance(pts)


def _polygon_parts(geom: BaseGeometry, min_area: float = 1e-12) -> list[Polygon]:
    """The non-empty polygons of a (Multi)Polygon or collection, outer rings CCW."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [orient(geom, 1.0)] if geom.area > min_area else []
    out: list[Polygon] = []
    for g in getattr(geom, "geoms", []):
        out.extend(_polygon_parts(g, min_area))
    return out


def _ring_walls(ring: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Side wall of a closed 2D ring [N, 2] (without the repeated end point) from z0 to z1.

    Faces point to the right of the walking direction: outwards for a CCW outer
    ring or a CW hole. Returns vertices [2N, 3] and faces [2N, 3]."""
    n = len(ring)
    v = np.concatenate([np.c_[ring, np.full(n, z0)], np.c_[ring, np.full(n, z1)]])
    i = np.arange(n)
    j = (i + 1) % n
    f = np.concatenate([np.stack([i, j, j + n], 1), np.stack([i, j + n, i + n], 1)])
    return v, f


def _cap(geom: BaseGeometry, z: float, up: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Triangulated horizontal face(s) of geom at height z, normals +z if up else -z."""
    pieces = []
    for poly in _polygon_parts(geom):
        v2, f = trimesh.creation.triangulate_polygon(poly, engine="earcut")
        if len(f) == 0:
            continue
        v2 = np.asarray(v2, dtype=np.float64)
        f = np.asarray(f, dtype=np.int64)
        e1 = v2[f[:, 1]] - v2[f[:, 0]]
        e2 = v2[f[:, 2]] - v2[f[:, 0]]
        ccw = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() > 0
        if ccw != up:
            f = f[:, ::-1]
        pieces.append((np.c_[v2, np.full(len(v2), z)], f))
    return pieces


def _assemble(pieces: Sequence[tuple[np.ndarray, np.ndarray]], merge: bool) -> trimesh.Trimesh:
    """One mesh of (vertices [N, 3], faces [M, 3]) pieces; merge=True joins equal vertices."""
    verts, faces, offset = [], [], 0
    for v, f in pieces:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    mesh = trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), process=False)
    if merge:
        mesh.merge_vertices()
        mesh.remove_unreferenced_vertices()
    return mesh


def prism_stack(layers: Sequence[tuple[BaseGeometry, float, float]]) -> trimesh.Trimesh:
    """A closed solid made of stacked prisms: layer (profile, z0, z1) is the 2D
    profile (shapely, metres, in the xy plane) swept from z0 to z1.

    Layers must be contiguous in z (each z0 is the previous z1). Where two
    adjacent layers' outlines meet, the rings must be identical (same vertices);
    otherwise they must not touch. Under that rule the result is watertight.
    """
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    for k, (geom, z0, z1) in enumerate(layers):
        if k and abs(layers[k - 1][2] - z0) > 1e-12:
            raise ValueError(f"prism_stack: layer {k} starts at {z0}, previous ends at {layers[k - 1][2]}")
        if z1 <= z0:
            raise ValueError(f"prism_stack: layer {k} has z1 {z1} <= z0 {z0}")
        for poly in _polygon_parts(geom):
            for ring in (poly.exterior, *poly.interiors):
                pieces.append(_ring_walls(np.asarray(ring.coords)[:-1, :2], z0, z1))
    empty = Polygon()
    profiles = [g for g, _, _ in layers]
    levels = [layers[0][1]] + [z1 for _, _, z1 in layers]
    for i, z in enumerate(levels):
        below = profiles[i - 1] if i > 0 else empty
        above = profiles[i] if i < len(profiles) else empty
        pieces.extend(_cap(below.difference(above), z, up=True))
        pieces.extend(_cap(above.difference(below), z, up=False))
    mesh = _assemble(pieces, merge=True)
    if not mesh.is_watertight:
        raise ValueError("prism_stack: adjacent layers' outlines touch without coinciding")
    return mesh


def _rotation_T(R: np.ndarray) -> np.ndarray:
    return make_T(R, np.zeros(3))


def _rotations_about_z(n: int) -> list[np.ndarray]:
    """The n-1 non-identity rotations by multiples of 360/n degrees about z, [4, 4]."""
    return [_rotation_T(rot_z(2.0 * np.pi * k / n)) for k in range(1, n)]


# ---------------------------------------------------------------------------
# Procedural parts, built in a design frame (symmetry axes through its origin)
# ---------------------------------------------------------------------------

Design = tuple[trimesh.Trimesh, list[ContinuousSymmetry], list[np.ndarray]]


def _bracket() -> Design:
    """Angle bracket: horizontal leg 90 x 50 mm, upright leg 60 mm high, 6 mm thick,
    a 10 mm hole in each leg. Two closed bodies touching at x = t (not merged)."""
    t, length, width, height, r_hole = 0.006, 0.09, 0.05, 0.06, 0.005
    base_profile = Polygon([(t, 0), (length, 0), (length, width), (t, width)]).difference(
        _regular_polygon(r_hole, 32, center=(0.6 * length, 0.5 * width)))
    base = prism_stack([(base_profile, 0.0, t)])
    # Upright leg: profile in (y, z), swept along x from 0 to t.
    up_profile = Polygon([(0, 0), (width, 0), (width, height), (0, height)]).difference(
        _regular_polygon(r_hole, 32, center=(0.5 * width, 0.62 * height)))
    upright = prism_stack([(up_profile, 0.0, t)])
    to_world = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # (u, v, w) -> (x=w, y=u, z=v)
    up_vertices = upright.vertices @ to_world.T
    mesh = _assemble([(base.vertices, base.faces), (up_vertices, upright.faces)], merge=False)
    return mesh, [], []


def _gear_profile(teeth: int, r_root: float, r_pitch: float, r_tip: float) -> Polygon:
    """Outline of a spur gear with trapezoidal teeth, one tooth centred on +x."""
    pitch = 2.0 * np.pi / teeth
    # (radius, angle as a fraction of the angular pitch) of one tooth period
    tooth = [(r_root, -0.5), (r_root, -0.3), (r_pitch, -0.2), (r_tip, -0.11), (r_tip, 0.0),
             (r_tip, 0.11), (r_pitch, 0.2), (r_root, 0.3)]
    pts = [(r * np.cos((k + f) * pitch), r * np.sin((k + f) * pitch))
           for k in range(teeth) for r, f in tooth]
    return Polygon(pts)


def _gear() -> Design:
    """Spur gear: 14 teeth, tip diameter 80 mm, 16 mm face width, a 30 mm hub
    10 mm high on top, 16 mm bore. Symmetric under the 13 tooth-pitch turns about z."""
    teeth = 14
    bore = _regular_polygon(0.008, 3 * teeth)
    disc = _gear_profile(teeth, 0.033, 0.0365, 0.040).difference(bore)
    hub = _regular_polygon(0.015, 3 * teeth).difference(bore)
    mesh = prism_stack([(disc, 0.0, 0.016), (hub, 0.016, 0.026)])
    return mesh, [], _rotations_about_z(teeth)


def _flange() -> Design:
    """Flange: 100 mm disc 12 mm thick, 52 mm hub 20 mm high on top, 30 mm bore,
    6 holes of 11 mm on a 76 mm circle. Symmetric under 60 degree turns about z."""
    bore = _regular_polygon(0.015, 48)
    hole0 = np.asarray(_regular_polygon(0.0055, 16, center=(0.038, 0.0)).exterior.coords)[:-1]
    holes = [Polygon(_rotate_xy(hole0, k * np.pi / 3.0)) for k in range(6)]
    disc = _regular_polygon(0.05, 72).difference(bore)
    for hole in holes:
        disc = disc.difference(hole)
    hub = _regular_polygon(0.026, 48).difference(bore)
    mesh = prism_stack([(disc, 0.0, 0.012), (hub, 0.012, 0.032)])
    return mesh, [], _rotations_about_z(6)


def _bolt() -> Design:
    """Hex bolt M16 x 90, standing on its head: head 24 mm across flats, 10 mm high;
    shaft 16 mm diameter, 90 mm long. Symmetric under 60 degree turns about z."""
    across_flats = 0.024
    head = _regular_polygon(across_flats / np.sqrt(3.0), 6)
    shaft = _regular_polygon(0.008, 24)
    mesh = prism_stack([(head, 0.0, 0.010), (shaft, 0.010, 0.100)])
    return mesh, [], _rotations_about_z(6)


def _housing() -> Design:
    """Gearbox-like housing: 110 x 75 x 10 mm base plate with four 9 mm holes, a
    66 x 52 mm body 40 mm high set off-centre, a 32 mm blind bore 42 mm deep and a
    12 mm high boss around it. No symmetry."""
    lx, ly = 0.055, 0.0375
    base = Polygon([(-lx, -ly), (lx, -ly), (lx, ly), (-lx, ly)])
    for sx in (-1, 1):
        for sy in (-1, 1):
            base = base.difference(_regular_polygon(0.0045, 16, center=(sx * (lx - 0.008), sy * (ly - 0.008))))
    cx, cy, bx, by = 0.008, 0.004, 0.033, 0.026  # body centre and half sizes, clear of the holes
    body = Polygon([(cx - bx, cy - by), (cx + bx, cy - by), (cx + bx, cy + by), (cx - bx, cy + by)])
    bore = _regular_polygon(0.016, 48, center=(cx + 0.006, cy))
    boss = _regular_polygon(0.022, 48, center=(cx + 0.006, cy)).difference(bore)
    mesh = prism_stack([(base, 0.0, 0.010), (body, 0.010, 0.020),
                        (body.difference(bore), 0.020, 0.050), (boss, 0.050, 0.062)])
    return mesh, [], []


def _pipe() -> Design:
    """Pipe section standing on its end: 60 mm outside, 5 mm wall, 90 mm long.
    Continuous symmetry about z, plus the half turn about x (ends alike)."""
    sections = 64
    ring = _regular_polygon(0.030, sections).difference(_regular_polygon(0.025, sections))
    mesh = prism_stack([(ring, -0.045, 0.045)])
    continuous = [(np.array([0.0, 0.0, 1.0]), np.zeros(3))]
    return mesh, continuous, [_rotation_T(rot_x(np.pi))]


_BUILDERS: dict[str, Callable[[], Design]] = {
    "bracket": _bracket, "gear": _gear, "flange": _flange,
    "bolt": _bolt, "housing": _housing, "pipe": _pipe,
}


# ---------------------------------------------------------------------------
# PartModel construction
# ---------------------------------------------------------------------------

def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _make_part(name: str, mesh: trimesh.Trimesh, continuous: Sequence[ContinuousSymmetry],
               discrete: Sequence[np.ndarray], vertex_colors: np.ndarray | None = None) -> PartModel:
    """PartModel of a mesh (metres) whose symmetries are given in the mesh's frame.

    The mesh is moved so that its bounding-box centre is the origin; symmetries
    are re-expressed in that frame (S' = T(-c) S T(c))."""
    c = mesh.bounds.mean(axis=0)
    centred = trimesh.Trimesh(mesh.vertices - c, mesh.faces, process=False)
    T_shift, T_back = make_T(np.eye(3), -c), make_T(np.eye(3), c)
    disc = tuple(_readonly(T_shift @ np.asarray(S, dtype=np.float64) @ T_back) for S in discrete)
    cont = tuple((_readonly(np.asarray(a, float) / np.linalg.norm(a)), _readonly(np.asarray(o, float) - c))
                 for a, o in continuous)
    colors = None if vertex_colors is None else _readonly(vertex_colors)
    return PartModel(
        name=name,
        mesh=centred,
        rest_height_m=float(-centred.vertices[:, 2].min()),
        diameter_m=mesh_diameter(centred.vertices),
        symmetries_continuous=cont,
        symmetries_discrete=disc,
        vertex_colors=colors,
    )


def procedural_part(name: str) -> PartModel:
    """The procedural part called name (one of PROCEDURAL_PART_NAMES); a new mesh
    each call. Raises ValueError for an unknown name."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown procedural part {name!r}; known: {', '.join(PROCEDURAL_PART_NAMES)}")
    mesh, continuous, discrete = _BUILDERS[name]()
    return _make_part(name, mesh, continuous, discrete)


# ---------------------------------------------------------------------------
# Mesh folders
# ---------------------------------------------------------------------------

def _vertex_colors_of(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """[V, 3] float64 RGB in [0, 1] of a loaded mesh's vertex colours (or of its
    texture sampled at the vertices), None when the file has neither."""
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    rgba = None
    if kind == "vertex":
        rgba = np.asarray(visual.vertex_colors)
    elif kind == "texture" and getattr(visual, "uv", None) is not None \
            and getattr(getattr(visual, "material", None), "image", None) is not None:
        rgba = np.asarray(visual.to_color().vertex_colors)
    if rgba is None or rgba.shape != (len(mesh.vertices), 4):
        return None
    return rgba[:, :3].astype(np.float64) / 255.0


def _load_mesh_file(path: Path, scale: float) -> tuple[trimesh.Trimesh, np.ndarray | None]:
    """Geometry (scaled to metres) and vertex colours of one .ply/.obj file.
    Raises ConfigError naming the file."""
    where = f"parts.source: {path}"
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many types on corrupt files
        raise ConfigError(f"{where}: cannot read mesh ({type(e).__name__}: {e})") from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise ConfigError(f"{where}: not a triangle mesh (got {type(loaded).__name__})")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int64)
    if len(faces) == 0:
        raise ConfigError(f"{where}: mesh has no faces")
    if not np.isfinite(vertices).all():
        raise ConfigError(f"{where}: mesh has non-finite vertex coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ConfigError(f"{where}: a face refers to a vertex that does not exist")
    try:
        colors = _vertex_colors_of(loaded)
    except Exception:  # an unreadable texture leaves the part uncoloured
        colors = None
    return trimesh.Trimesh(vertices * scale, faces, process=False), colors


def _read_models_info(folder: Path) -> dict:
    """The folder's BOP models_info.json as a dict ({} when there is none)."""
    path = folder / "models_info.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"parts.source: {path}: cannot read models info ({e})") from None
    if not isinstance(info, dict):
        raise ConfigError(f"parts.source: {path}: expected a JSON object keyed by object id")
    return info


def _symmetries_from_info(entry: dict, scale: float, path: Path, key: str
                          ) -> tuple[list[ContinuousSymmetry], list[np.ndarray]]:
    """BOP symmetries of one models_info entry, translations and offsets scaled to metres."""
    where = f"parts.source: {path}: object {key}"
    try:
        discrete = []
        for flat in entry.get("symmetries_discrete", []):
            S = np.asarray(flat, dtype=np.float64).reshape(4, 4).copy()
            S[:3, 3] *= scale
            discrete.append(S)
        continuous = [(np.asarray(s["axis"], dtype=np.float64).reshape(3),
                       np.asarray(s.get("offset", [0, 0, 0]), dtype=np.float64).reshape(3) * scale)
                      for s in entry.get("symmetries_continuous", [])]
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{where}: malformed symmetries ({e})") from None
    if not all(np.isfinite(S).all() for S in discrete) or \
            not all(np.isfinite(a).all() and np.linalg.norm(a) > 0 and np.isfinite(o).all() for a, o in continuous):
        raise ConfigError(f"{where}: symmetries must be finite with non-zero axes")
    return continuous, discrete


def _info_entry(info: dict, stem: str) -> tuple[str, dict]:
    """models_info entry of a mesh file stem: 'obj_000012' -> key '12', else the stem itself."""
    m = re.fullmatch(r"obj_0*(\d+)", stem)
    for key in ((str(int(m.group(1))),) if m else ()) + (stem,):
        if isinstance(info.get(key), dict):
            return key, info[key]
    return stem, {}


def load_part_folder(folder: str | Path, units: str) -> list[PartModel]:
    """Every .ply/.obj mesh in folder (sorted by file name) as a part named after
    its file stem. units: 'm' or 'mm', the mesh coordinates' unit. A BOP
    models_info.json next to the meshes supplies their symmetries.

    Raises ConfigError naming the folder or file for a missing or empty folder,
    an unreadable mesh, a mesh without faces or with non-finite vertices, two
    meshes with the same stem, or an unknown unit."""
    if units not in UNIT_SCALES:
        raise ConfigError(f"parts.mesh_units: unknown unit {units!r} (expected 'm' or 'mm')")
    scale = UNIT_SCALES[units]
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"parts.source: {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if not files:
        raise ConfigError(f"parts.source: {folder}: no .ply or .obj mesh files in the folder")
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise ConfigError(f"parts.source: {p}: same part name as {stems[p.stem]}")
        stems[p.stem] = p
    info = _read_models_info(folder)
    parts = []
    for path in files:
        mesh, colors = _load_mesh_file(path, scale)
        key, entry = _info_entry(info, path.stem)
        continuous, discrete = _symmetries_from_info(entry, scale, folder / "models_info.json", key)
        parts.append(_make_part(path.stem, mesh, continuous, discrete, colors))
    return parts


def load_parts(cfg: PartsConfig, config_dir: Path | None = None) -> list[PartModel]:
    """The part classes of a cell description.

    cfg.source 'procedural': procedural_part of each of cfg.names, in that order.
    Otherwise cfg.source is a mesh folder (relative paths are resolved against
    config_dir when given, else the working directory) loaded in cfg.mesh_units.
    Raises ConfigError naming the field (parts.names, parts.source, ...)."""
    if cfg.source == "procedural":
        if not cfg.names:
            raise ConfigError("parts.names: empty part list")
        unknown = [n for n in cfg.names if n not in PROCEDURAL_PART_NAMES]
        if unknown:
            raise ConfigError(f"parts.names: unknown procedural part {unknown[0]!r} "
                              f"(known: {', '.join(PROCEDURAL_PART_NAMES)})")
        repeated = sorted({n for n in cfg.names if cfg.names.count(n) > 1})
        if repeated:
            raise ConfigError(f"parts.names: {repeated[0]!r} is listed more than once")
        return [procedural_part(n) for n in cfg.names]
    folder = Path(cfg.source).expanduser()
    if not folder.is_absolute() and config_dir is not None:
        folder = Path(config_dir) / folder
    return load_part_folder(folder, cfg.mesh_units)


# ---------------------------------------------------------------------------
# Appearance
# ---------------------------------------------------------------------------

# Chance that a part gets a bare-metal look rather than paint or plastic.
_METAL_PROBABILITY = {"bolt": 0.8, "gear": 0.7, "flange": 0.7, "pipe": 0.6, "bracket": 0.5, "housing": 0.4}


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))


def random_part_material(rng: np.random.Generator, part: PartModel) -> Material:
    """A domain-randomized look for part (deterministic given rng's state).

    A part with vertex colours keeps them (albedo = their mean, plain texture,
    mildly glossy). Otherwise it is bare metal (grey, saturation < 0.12, strong
    sharp highlight) or painted/plastic (saturated colour, weaker highlight), with
    a random texture of BASIC_TEXTURES at a part-sized scale (5..50 mm)."""
    if part.vertex_colors is not None:
        return Material(
            albedo=tuple(float(c) for c in part.vertex_colors.mean(axis=0)),
            texture="plain",
            specular=float(rng.uniform(0.0, 0.3)),
            shininess=float(rng.uniform(4.0, 32.0)),
            vertex_colors=part.vertex_colors,
        )
    metal = rng.random() < _METAL_PROBABILITY.get(part.name, 0.5)
    if metal:
        albedo = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.12), rng.uniform(0.35, 0.85))
        specular, shininess = rng.uniform(0.5, 0.9), rng.uniform(32.0, 128.0)
        contrast_range = (0.03, 0.2)
    else:
        albedo = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.5, 1.0), rng.uniform(0.35, 0.95))
        specular, shininess = rng.uniform(0.05, 0.4), rng.uniform(8.0, 48.0)
        contrast_range = (0.05, 0.35)
    texture = str(BASIC_TEXTURES[rng.integers(len(BASIC_TEXTURES))])
    scale = float(rng.uniform(0.005, 0.05))
    contrast = float(rng.uniform(*contrast_range))
    return Material(
        albedo=albedo,
        texture=texture,
        texture_scale_m=scale,
        texture_contrast=contrast if texture != "plain" else 0.0,
        specular=float(specular),
        shininess=float(shininess),
    )
