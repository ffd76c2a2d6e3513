"""Tests of hrc_perception.sim.parts: procedural parts, their symmetries, mesh folders."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial.distance import pdist

from hrc_perception.geometry import make_T, rot_z, rotation_about_axis, transform_points
from hrc_perception.sim.config import ConfigError, PartsConfig
from hrc_perception.sim.materials import BASIC_TEXTURES as TEXTURES
from hrc_perception.sim.parts import (
    PROCEDURAL_PART_NAMES, PartModel, load_part_folder, load_parts, procedural_part,
    random_part_material,
)

LMO_MODELS = Path(__file__).resolve().parents[2] / "shared/realdata/lmo/models"
MM = 1e-3


@pytest.fixture(scope="module")
def parts() -> dict[str, PartModel]:
    return {n: procedural_part(n) for n in PROCEDURAL_PART_NAMES}


def surface_distance(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Distance [N] of points [N, 3] to the closest point of the mesh surface."""
    _, dist, _ = trimesh.proximity.closest_point(mesh, points)
    return dist


def symmetry_error(part: PartModel, T: np.ndarray) -> float:
    """Largest distance of the part's vertices moved by T [4, 4] to its own surface."""
    return float(surface_distance(part.mesh, transform_points(T, part.mesh.vertices)).max())


# ---------------------------------------------------------------------------
# Procedural parts
# ---------------------------------------------------------------------------

def test_names():
    assert PROCEDURAL_PART_NAMES == ("bracket", "gear", "flange", "bolt", "housing", "pipe")


@pytest.mark.parametrize("name", PROCEDURAL_PART_NAMES)
def test_procedural_part_geometry(parts, name):
    p = parts[name]
    m = p.mesh
    assert p.name == name
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    assert 0 < len(m.faces) <= 3000
    assert m.faces.max() < len(m.vertices)
    assert np.isfinite(m.vertices).all()
    assert np.abs(m.bounds.mean(axis=0)).max() < 1e-9
    assert 0.03 < p.diameter_m < 0.2
    assert p.diameter_m == pytest.approx(pdist(m.vertices).max(), abs=1e-12)
    assert p.rest_height_m == -m.vertices[:, 2].min() > 0
    assert 0.04 <= m.extents.max() <= 0.15
    assert p.vertex_colors is None


def test_procedural_parts_differ(parts):
    for a, b in itertools.combinations(PROCEDURAL_PART_NAMES, 2):
        ma, mb = parts[a].mesh, parts[b].mesh
        assert len(ma.faces) != len(mb.faces), (a, b)
        assert np.abs(np.sort(ma.extents) - np.sort(mb.extents)).max() > 0.002, (a, b)


def test_procedural_part_is_a_fresh_mesh():
    a, b = procedural_part("gear"), procedural_part("gear")
    assert a.mesh is not b.mesh
    np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)


def test_unknown_procedural_part():
    with pytest.raises(ValueError, match="bracket, gear, flange, bolt, housing, pipe"):
        procedural_part("sprocket")


def test_symmetry_counts(parts):
    counts = {n: (len(p.symmetries_continuous), len(p.symmetries_discrete)) for n, p in parts.items()}
    assert counts == {"bracket": (0, 0), "gear": (0, 13), "flange": (0, 5), "bolt": (0, 5),
                      "housing": (0, 0), "pipe": (1, 1)}
    axis, offset = parts["pipe"].symmetries_continuous[0]
    np.testing.assert_allclose(axis, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(offset, [0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("name", ["gear", "flange", "bolt", "pipe"])
def test_discrete_symmetries_map_the_part_onto_itself(parts, name):
    p = parts[name]
    for S in p.symmetries_discrete:
        assert S.shape == (4, 4) and S.dtype == np.float64
        R = S[:3, :3]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(R) == pytest.approx(1.0)
        assert not np.allclose(S, np.eye(4))
        assert symmetry_error(p, S) < 1 * MM


def test_continuous_symmetry_maps_the_pipe_onto_itself(parts):
    p = parts["pipe"]
    axis, offset = p.symmetries_continuous[0]
    for angle in np.random.default_rng(0).uniform(0, 2 * np.pi, size=5):
        T = make_T(np.eye(3), offset) @ make_T(rotation_about_axis(axis, angle), np.zeros(3)) \
            @ make_T(np.eye(3), -offset)
        assert symmetry_error(p, T) < 1 * MM


@pytest.mark.parametrize("name", ["bracket", "housing"])
@pytest.mark.parametrize("angle_deg", [90.0, 180.0])
def test_asymmetric_parts_fail_the_symmetry_check(parts, name, angle_deg):
    T = make_T(rot_z(np.radians(angle_deg)), np.zeros(3))
    assert symmetry_error(parts[name], T) > 1 * MM


def test_gear_half_tooth_turn_is_not_a_symmetry(parts):
    T = make_T(rot_z(np.pi / 14), np.zeros(3))
    assert symmetry_error(parts["gear"], T) > 1 * MM


def test_some_part_has_continuous_symmetry(parts):
    assert any(p.symmetries_continuous for p in parts.values())


# ---------------------------------------------------------------------------
# load_parts
# ---------------------------------------------------------------------------

def test_load_parts_procedural_keeps_order():
    got = load_parts(PartsConfig(source="procedural", names=("pipe", "bolt", "gear")))
    assert [p.name for p in got] == ["pipe", "bolt", "gear"]


@pytest.mark.parametrize("names", [("gear", "sprocket"), ("gear", "gear")])
def test_load_parts_rejects_bad_names(names):
    with pytest.raises(ConfigError, match="parts.names"):
        load_parts(PartsConfig(source="procedural", names=names))


def _box_with_colors(extents, center) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(center)
    colors = np.zeros((len(box.vertices), 4), dtype=np.uint8)
    colors[:, 0] = np.arange(len(box.vertices)) * 30
    colors[:, 1] = 200
    colors[:, 3] = 255
    return trimesh.Trimesh(box.vertices, box.faces, vertex_colors=colors, process=False)


def test_load_part_folder_scales_mm_and_centres(tmp_path):
    box = _box_with_colors([40.0, 60.0, 80.0], [10.0, 5.0, 40.0])
    (tmp_path / "b_box.ply").write_bytes(box.export(file_type="ply"))
    plain = trimesh.creation.cylinder(radius=20.0, height=30.0, sections=16)
    (tmp_path / "a_cyl.obj").write_text(plain.export(file_type="obj"))
    (tmp_path / "notes.txt").write_text("not a mesh")

    got = load_part_folder(tmp_path, "mm")
    assert [p.name for p in got] == ["a_cyl", "b_box"]
    cyl, b = got
    np.testing.assert_allclose(b.mesh.extents, [0.04, 0.06, 0.08], atol=1e-9)
    assert np.abs(b.mesh.bounds.mean(axis=0)).max() < 1e-9
    assert b.rest_height_m == pytest.approx(0.04)
    assert b.diameter_m == pytest.approx(np.sqrt(0.04**2 + 0.06**2 + 0.08**2))
    np.testing.assert_allclose(b.mesh.vertices, (box.vertices - [10.0, 5.0, 40.0]) * MM, atol=1e-9)
    assert b.vertex_colors.shape == (len(b.mesh.vertices), 3) and b.vertex_colors.dtype == np.float64
    np.testing.assert_allclose(b.vertex_colors, box.visual.vertex_colors[:, :3] / 255.0)
    assert cyl.vertex_colors is None
    assert cyl.diameter_m == pytest.approx(np.hypot(0.04, 0.03))
    assert b.symmetries_discrete == () and b.symmetries_continuous == ()


def test_load_part_folder_metres_unchanged(tmp_path):
    box = trimesh.creation.box(extents=[0.05, 0.06, 0.07])
    (tmp_path / "box.ply").write_bytes(box.export(file_type="ply"))
    (p,) = load_part_folder(tmp_path, "m")
    np.testing.assert_allclose(p.mesh.extents, [0.05, 0.06, 0.07], atol=1e-12)


def test_load_part_folder_reads_bop_symmetries(tmp_path):
    """models_info.json symmetries (mm, about the file's origin) come out in metres
    about the bounding-box centre."""
    box = trimesh.creation.box(extents=[40.0, 60.0, 80.0])
    box.apply_translation([10.0, 0.0, 0.0])  # box centre 10 mm off the file origin
    (tmp_path / "obj_000003.ply").write_bytes(box.export(file_type="ply"))
    # half turn about the vertical axis through the box centre, in the file's frame
    S = make_T(rot_z(np.pi), np.zeros(3))
    S[:3, 3] = [20.0, 0.0, 0.0]
    info = {"3": {"diameter": 107.7, "symmetries_discrete": [S.ravel().tolist()],
                  "symmetries_continuous": [{"axis": [0, 0, 2], "offset": [10, 0, 0]}]}}
    (tmp_path / "models_info.json").write_text(json.dumps(info))

    (p,) = load_part_folder(tmp_path, "mm")
    (Sc,) = p.symmetries_discrete
    np.testing.assert_allclose(Sc, make_T(rot_z(np.pi), np.zeros(3)), atol=1e-12)
    (axis, offset), = p.symmetries_continuous
    np.testing.assert_allclose(axis, [0, 0, 1])
    np.testing.assert_allclose(offset, [0, 0, 0], atol=1e-12)
    assert symmetry_error(p, Sc) < 1e-9


def test_load_parts_resolves_relative_folder(tmp_path):
    (tmp_path / "meshes").mkdir()
    trimesh.creation.box(extents=[50.0, 50.0, 50.0]).export(tmp_path / "meshes" / "cube.ply")
    got = load_parts(PartsConfig(source="meshes", mesh_units="mm"), config_dir=tmp_path)
    assert [p.name for p in got] == ["cube"]
    assert got[0].diameter_m == pytest.approx(0.05 * np.sqrt(3))


def test_missing_folder(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="parts.source") as e:
        load_part_folder(folder, "mm")
    assert str(folder) in str(e.value)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no meshes here")
    with pytest.raises(ConfigError, match="no .ply or .obj") as e:
        load_part_folder(tmp_path, "mm")
    assert str(tmp_path) in str(e.value)


def test_corrupt_file(tmp_path):
    trimesh.creation.box().export(tmp_path / "a.ply")
    bad = tmp_path / "x.ply"
    bad.write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8)))
    with pytest.raises(ConfigError, match="cannot read") as e:
        load_part_folder(tmp_path, "mm")
    assert str(bad) in str(e.value) and "parts.source" in str(e.value)


def test_mesh_without_faces(tmp_path):
    trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(tmp_path / "cloud.ply")
    with pytest.raises(ConfigError, match="no faces") as e:
        load_part_folder(tmp_path, "m")
    assert str(tmp_path / "cloud.ply") in str(e.value)


def test_non_finite_vertex(tmp_path):
    path = tmp_path / "nan.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nf 1 2 3\n")
    with pytest.raises(ConfigError, match="non-finite") as e:
        load_part_folder(tmp_path, "m")
    assert str(path) in str(e.value)


def test_unknown_unit(tmp_path):
    trimesh.creation.box().export(tmp_path / "a.ply")
    with pytest.raises(ConfigError, match="parts.mesh_units"):
        load_part_folder(tmp_path, "inch")


def test_corrupt_models_info(tmp_path):
    trimesh.creation.box().export(tmp_path / "a.ply")
    (tmp_path / "models_info.json").write_text("{not json")
    with pytest.raises(ConfigError, match="models_info.json"):
        load_part_folder(tmp_path, "mm")


@pytest.mark.skipif(not LMO_MODELS.is_dir(), reason="LM-O models not present")
def test_lmo_models():
    info = json.loads((LMO_MODELS / "models_info.json").read_text())
    got = load_part_folder(LMO_MODELS, "mm")
    assert len(got) == 8
    for p in got:
        entry = info[str(int(p.name.split("_")[1]))]
        assert p.diameter_m == pytest.approx(entry["diameter"] * MM, rel=0.01)
        assert p.vertex_colors is not None and p.vertex_colors.shape == (len(p.mesh.vertices), 3)
        assert 0.0 <= p.vertex_colors.min() and p.vertex_colors.max() <= 1.0
        assert len(p.symmetries_discrete) == len(entry.get("symmetries_discrete", []))
        np.testing.assert_allclose(p.mesh.extents, [entry[k] * MM for k in ("size_x", "size_y", "size_z")],
                                   rtol=1e-3)


# ---------------------------------------------------------------------------
# Materials
# ---------------------------------------------------------------------------

def test_random_part_material_is_deterministic(parts):
    for p in parts.values():
        a = random_part_material(np.random.default_rng(7), p)
        b = random_part_material(np.random.default_rng(7), p)
        assert a == b


def test_random_part_material_ranges(parts):
    rng = np.random.default_rng(3)
    looks = [random_part_material(rng, p) for p in parts.values() for _ in range(30)]
    for m in looks:
        assert all(0.0 <= c <= 1.0 for c in m.albedo)
        assert m.texture in TEXTURES and m.vertex_colors is None
        assert 0.005 <= m.texture_scale_m <= 0.05
    saturation = [max(m.albedo) - min(m.albedo) for m in looks]
    assert min(saturation) < 0.1 and max(saturation) > 0.5  # both metals and painted parts occur
    assert len({m.texture for m in looks}) == len(TEXTURES)


def test_random_part_material_keeps_vertex_colors(tmp_path):
    box = _box_with_colors([40.0, 60.0, 80.0], [0.0, 0.0, 0.0])
    box.export(tmp_path / "box.ply")
    (p,) = load_part_folder(tmp_path, "mm")
    m = random_part_material(np.random.default_rng(0), p)
    assert m.vertex_colors is p.vertex_colors
    np.testing.assert_allclose(m.albedo, p.vertex_colors.mean(axis=0))
