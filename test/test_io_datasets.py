"""Dataset exporters (COCO, BOP, keypoint npz) and atomic output, on hand-made frames."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from pycocotools.coco import COCO

from hrc_perception.geometry import invert_T, make_K, make_T, project, rot_x, rotation_about_axis, xyz_image
from hrc_perception.io.atomic import (PartialDir, atomic_write_bytes, atomic_write_json, json_bytes,
                                      png_bytes)
from hrc_perception.io.bop import BopWriter
from hrc_perception.sim.parts import PartModel
from hrc_perception.io.coco import COCO17_KEYPOINTS, COCO17_SKELETON, CocoWriter
from hrc_perception.io.keypoints_npz import KeypointsWriter, resized_K, sample_indices
from hrc_perception.sim.frame import (ClassInfo, Frame, HumanGT, Instance, Keypoints, PartGT, RobotGT)

H, W = 48, 64
K = make_K(50.0, 52.0, 31.5, 23.5)
ROBOT_KP = ("link0", "link2", "link4", "hand")
CLASSES = [ClassInfo(1, "panda", "robot", ROBOT_KP), ClassInfo(2, "person", "person", COCO17_KEYPOINTS),
           ClassInfo(3, "gear", "part"), ClassInfo(4, "bracket", "part")]
ROBOT_ID, GEAR_ID, BRACKET_ID, PERSON_IDS = 1, 2, 3, (10, 11)
XYZ_SIZE = (20, 28)  # non-integer scale factors (2.4, 2.29)

# Visible rectangles (row slice, column slice) of the instances.
RECTS = {ROBOT_ID: (slice(0, 10), slice(40, 64)), GEAR_ID: (slice(20, 30), slice(10, 25)),
         PERSON_IDS[0]: (slice(30, 48), slice(30, 40)), PERSON_IDS[1]: (slice(30, 48), slice(45, 55))}
GEAR_FULL = (slice(18, 30), slice(10, 25))  # unoccluded silhouette of the gear


def make_parts() -> list[PartModel]:
    gear_mesh = trimesh.creation.cylinder(radius=0.02, height=0.01, sections=12)
    box = trimesh.creation.box(extents=(0.04, 0.02, 0.01))
    flip = make_T(rot_x(np.pi), [0.0, 0.0, 0.01])
    colors = np.linspace(0.0, 1.0, len(box.vertices) * 3).reshape(-1, 3)
    return [PartModel("gear", gear_mesh, 0.005, 0.0412, (([0.0, 0.0, 1.0], [0.0, 0.0, 0.002]),), (), None),
            PartModel("bracket", box, 0.005, float(np.linalg.norm([0.04, 0.02, 0.01])), (), (flip,), colors)]


def keypoints(names, xyz, vis) -> Keypoints:
    xyz = np.asarray(xyz, dtype=np.float64)
    return Keypoints(tuple(names), xyz, project(xyz, K), np.asarray(vis, dtype=np.int8))


def human(instance_id: int, seed: int) -> HumanGT:
    rng = np.random.default_rng(seed)
    xyz = np.column_stack([rng.uniform(-0.3, 0.3, 17), rng.uniform(-0.2, 0.2, 17), rng.uniform(1.5, 2.5, 17)])
    return HumanGT(instance_id, keypoints(COCO17_KEYPOINTS, xyz, np.arange(17) % 3))


def make_frame(episode: int, index: int, n_people: int) -> Frame:
    mask = np.zeros((H, W), np.uint16)
    people = PERSON_IDS[:n_people]
    for iid in (ROBOT_ID, GEAR_ID) + people:
        mask[RECTS[iid]] = iid
    rows, cols = np.mgrid[0:H, 0:W]
    depth = (900 + 10 * cols + 5 * rows + 3 * index).astype(np.uint16)
    rgb = np.stack([4 * cols, 5 * rows, np.full_like(rows, 40 * index)], axis=-1).astype(np.uint8)
    depth[0, :5] = 0
    depth[5, 7] = 65535
    instances = [Instance(ROBOT_ID, "robot", "panda", 1), Instance(GEAR_ID, "part", "gear", 3),
                 Instance(BRACKET_ID, "part", "bracket", 4)]  # bracket fully hidden
    instances += [Instance(i, "person", "person", 2) for i in people]
    robot_xyz = [[0.2, -0.1, 1.0], [0.25, -0.15, 1.1], [0.3, -0.2, 1.2], [0.35, -0.25, 1.0 + 0.01 * index]]
    robot = RobotGT(ROBOT_ID, "panda", tuple(f"j{k}" for k in range(7)), np.linspace(-1, 1, 7) + index,
                    make_T(rot_x(0.1 * index), [0.1, 0.2, 1.5]), keypoints(ROBOT_KP, robot_xyz, [2, 1, 0, 2]))
    parts = [PartGT(GEAR_ID, "gear", make_T(rotation_about_axis([1, 2, 3], 0.7 + index), [0.1, -0.05, 0.8])),
             PartGT(BRACKET_ID, "bracket", make_T(rot_x(0.3), [-0.1, 0.05, 0.9]))]
    T_world_cam = make_T(rot_x(-2.0) @ rotation_about_axis([0, 0, 1], 0.1 * episode), [0.5, -1.0, 1.6])
    return Frame(episode=episode, index=index, time_s=index / 30, stamp_ns=10**18 + index * 33_333_333,
                 rgb=rgb, depth_mm=depth,
                 depth_clean_m=depth.astype(np.float32) / 1000, instance_mask=mask, K=K.copy(),
                 T_world_cam=T_world_cam, instances=instances, robot=robot, parts=parts,
                 humans=[human(i, 100 * index + i) for i in people])


FRAMES_PEOPLE = [(0, 0, 2), (0, 1, 0), (1, 2, 1)]  # (episode, index, number of people)


def make_frames() -> list[Frame]:
    return [make_frame(*f) for f in FRAMES_PEOPLE]


def gear_silhouette(frame: Frame, part_gt: PartGT) -> np.ndarray:
    full = np.zeros((H, W), bool)
    if part_gt.class_name == "gear":
        full[GEAR_FULL] = True
    return full


def write_all(root: Path) -> dict[str, Path]:
    parts = make_parts()
    writers = {"coco": CocoWriter(root / "coco", CLASSES, parts),
               "bop": BopWriter(root / "bop", CLASSES, parts, silhouette_fn=gear_silhouette),
               "kp": KeypointsWriter(root / "kp", CLASSES, parts, xyz_size=XYZ_SIZE, chunk_frames=2)}
    for frame in make_frames():
        for w in writers.values():
            w.add(frame)
    return {name: w.close() for name, w in writers.items()}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("datasets"))


# ----------------------------------------------------------------------------- COCO

def test_coco_masks_boxes_and_keypoints(out):
    coco = COCO(str(out["coco"] / "annotations.json"))
    frames = {f.index: f for f in make_frames()}
    assert sorted(coco.getImgIds()) == [0, 1, 2]
    img = coco.loadImgs(2)[0]
    assert (img["width"], img["height"], img["episode"], img["file_name"]) == (W, H, 1, "images/000002.jpg")
    assert img["stamp_ns"] == frames[2].stamp_ns
    rgb = np.asarray(Image.open(out["coco"] / img["file_name"]))
    assert rgb.shape == (H, W, 3) and np.abs(rgb.astype(int) - frames[2].rgb).mean() < 3

    anns = coco.loadAnns(coco.getAnnIds())
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    assert len(anns) == 4 + 2 + 3  # robot, gear (+ people) per frame; the hidden bracket never
    for ann in anns:
        frame = frames[ann["image_id"]]
        iid = ann["track_id"]
        expected = frame.instance_mask == iid
        assert np.array_equal(coco.annToMask(ann).astype(bool), expected)
        rows, cols = RECTS[iid]
        assert ann["bbox"] == [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start]
        assert ann["area"] == expected.sum() and ann["iscrowd"] == 0
        assert ann["episode"] == frame.episode
        if iid == GEAR_ID:
            assert ann["category_id"] == 3 and "keypoints" not in ann

    person = next(a for a in anns if a["image_id"] == 0 and a["track_id"] == PERSON_IDS[1])
    kp = frames[0].humans[1].keypoints
    assert person["category_id"] == 2 and len(person["keypoints"]) == 3 * 17
    triples = np.array(person["keypoints"], dtype=float).reshape(17, 3)
    assert np.array_equal(triples[:, 2], kp.visibility)
    shown = kp.visibility > 0
    np.testing.assert_allclose(triples[shown, :2], kp.uv_px[shown], atol=0.005 + 1e-9)
    assert np.all(triples[~shown, :2] == 0)
    assert person["num_keypoints"] == int(shown.sum())

    robot_ann = next(a for a in anns if a["image_id"] == 1 and a["track_id"] == ROBOT_ID)
    assert robot_ann["num_keypoints"] == 3 and len(robot_ann["keypoints"]) == 12
    robot_cat, person_cat, gear_cat = coco.loadCats([1, 2, 3])
    assert robot_cat["keypoints"] == list(ROBOT_KP) and robot_cat["supercategory"] == "robot"
    assert robot_cat["skeleton"] == [[1, 2], [2, 3], [3, 4]]
    assert person_cat["keypoints"] == list(COCO17_KEYPOINTS)
    assert person_cat["skeleton"] == [list(p) for p in COCO17_SKELETON]
    assert gear_cat == {"id": 3, "name": "gear", "supercategory": "part"}


# ----------------------------------------------------------------------------- BOP

def _json(path: Path):
    return json.loads(path.read_text())


def test_bop_scenes(out):
    frames = make_frames()
    bop = out["bop"]
    assert sorted(p.name for p in (bop / "train").iterdir()) == ["000000", "000001"]
    for frame, (scene, i) in zip(frames, [("000000", 0), ("000000", 1), ("000001", 0)]):
        sdir = bop / "train" / scene
        gt = _json(sdir / "scene_gt.json")[str(i)]
        cam = _json(sdir / "scene_camera.json")[str(i)]
        info = _json(sdir / "scene_gt_info.json")[str(i)]
        assert [g["obj_id"] for g in gt] == [1, 2]
        for g, part_gt in zip(gt, frame.parts):
            T = make_T(np.reshape(g["cam_R_m2c"], (3, 3)), np.array(g["cam_t_m2c"]) / 1000.0)
            np.testing.assert_allclose(T, part_gt.T_cam_obj, atol=2e-6)
        np.testing.assert_allclose(np.reshape(cam["cam_K"], (3, 3)), K)
        T_cw = make_T(np.reshape(cam["cam_R_w2c"], (3, 3)), np.array(cam["cam_t_w2c"]) / 1000.0)
        np.testing.assert_allclose(T_cw, invert_T(frame.T_world_cam), atol=2e-6)
        assert cam["depth_scale"] == 1.0 and cam["frame_index"] == frame.index

        depth = np.asarray(Image.open(sdir / "depth" / f"{i:06d}.png"))
        assert depth.dtype == np.uint16 and np.array_equal(depth, frame.depth_mm)
        for k, part_gt in enumerate(frame.parts):
            m = np.asarray(Image.open(sdir / "mask_visib" / f"{i:06d}_{k:06d}.png"))
            assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
            assert np.array_equal(m == 255, frame.instance_mask == part_gt.instance_id)
        gear, bracket = info
        assert gear["bbox_visib"] == [10, 20, 14, 9] and gear["px_count_visib"] == 150
        assert gear["bbox_obj"] == [10, 18, 14, 11] and gear["px_count_all"] == 180
        assert gear["visib_fract"] == pytest.approx(150 / 180, abs=1e-6)
        assert bracket == {"bbox_obj": [-1] * 4, "bbox_visib": [-1] * 4, "px_count_all": 0,
                           "px_count_visib": 0, "visib_fract": 0.0}


def test_bop_models(out):
    parts = make_parts()
    info = _json(out["bop"] / "models" / "models_info.json")
    assert sorted(info) == ["1", "2"]
    gear, bracket = info["1"], info["2"]
    assert gear["diameter"] == pytest.approx(41.2)
    assert [gear[k] for k in ("min_x", "min_y", "min_z")] == pytest.approx([-20, -20, -5], abs=1e-3)
    assert [bracket[k] for k in ("size_x", "size_y", "size_z")] == pytest.approx([40, 20, 10])
    assert gear["symmetries_continuous"] == [{"axis": [0, 0, 1], "offset": [0, 0, 2]}]
    assert "symmetries_discrete" not in gear and "symmetries_continuous" not in bracket
    sym = np.reshape(bracket["symmetries_discrete"][0], (4, 4))
    np.testing.assert_allclose(sym[:3, :3], rot_x(np.pi), atol=1e-6)
    np.testing.assert_allclose(sym[:3, 3], [0, 0, 10])

    for obj_id, part in enumerate(parts, start=1):
        mesh = trimesh.load(out["bop"] / "models" / f"obj_{obj_id:06d}.ply", process=False)
        np.testing.assert_allclose(mesh.vertices, 1000 * part.mesh.vertices, rtol=1e-6, atol=1e-4)
        assert np.array_equal(mesh.faces, part.mesh.faces)
        if part.vertex_colors is not None:
            expected = np.round(part.vertex_colors * 255).astype(np.uint8)
            assert np.array_equal(mesh.visual.vertex_colors[:, :3], expected)


# ----------------------------------------------------------------------------- keypoints npz

def _load_chunks(kp_dir: Path) -> list[dict]:
    index = _json(kp_dir / "index.json")
    assert [c["num_frames"] for c in index["chunks"]] == [2, 1] and index["num_frames"] == 3
    out = []
    for c in index["chunks"]:
        with np.load(kp_dir / c["file"], allow_pickle=False) as z:
            out.append({k: z[k] for k in z.files})
    return out


def test_npz_xyz_and_intrinsics(out):
    chunks = _load_chunks(out["kp"])
    frames = make_frames()
    rows, cols = sample_indices(H, XYZ_SIZE[0]), sample_indices(W, XYZ_SIZE[1])
    # each small pixel samples a full-res pixel nearest to its centre (ties either way)
    for idx, full, small in ((rows, H, XYZ_SIZE[0]), (cols, W, XYZ_SIZE[1])):
        centres = (np.arange(small) + 0.5) * full / small - 0.5
        assert np.all(np.abs(centres - idx) <= 0.5) and idx.min() >= 0 and idx.max() < full
    flat = [(c, n) for c in chunks for n in range(len(c["frame_index"]))]
    for frame, (c, n) in zip(frames, flat):
        assert c["frame_index"][n] == frame.index and c["episode"][n] == frame.episode
        assert c["stamp_ns"].dtype == np.int64 and c["stamp_ns"][n] == frame.stamp_ns
        xyz = c["xyz_m"][n]
        assert xyz.dtype == np.float16 and xyz.shape == XYZ_SIZE + (3,)
        full = xyz_image(frame.depth_mm / 1000.0, K)
        np.testing.assert_allclose(xyz.astype(np.float32), full[rows][:, cols], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(c["K"][n], K)

        K_xyz = c["K_xyz"][n]
        np.testing.assert_allclose(K_xyz, resized_K(K, (H, W), XYZ_SIZE))
        scale = np.array([XYZ_SIZE[1] / W, XYZ_SIZE[0] / H])
        p = np.array([[0.12, -0.07, 1.3], [-0.2, 0.15, 2.0]])
        np.testing.assert_allclose(project(p, K_xyz), (project(p, K) + 0.5) * scale - 0.5, atol=1e-9)
        # each sampled 3D point lands within half a pixel of its small-image pixel centre
        pts = full[rows][:, cols].astype(np.float64)
        valid = pts[..., 2] > 0
        uv = project(pts[valid], K_xyz)
        r, q = np.nonzero(valid)
        assert np.all(np.abs(uv - np.column_stack([q, r])) <= 0.5 + 1e-9)

        kp = frame.robot.keypoints
        np.testing.assert_allclose(c["robot_xyz_m"][n], kp.xyz_cam_m, rtol=1e-6)
        np.testing.assert_allclose(c["robot_uv_px"][n], kp.uv_px, rtol=1e-6)
        assert c["robot_vis"].dtype == np.int8 and np.array_equal(c["robot_vis"][n], kp.visibility)
        np.testing.assert_allclose(c["robot_joint_positions_rad"][n], frame.robot.joint_positions_rad)
        np.testing.assert_allclose(c["T_cam_base"][n], frame.robot.T_cam_base)
    assert list(chunks[0]["robot_keypoint_names"]) == list(ROBOT_KP)
    assert list(chunks[0]["human_keypoint_names"]) == list(COCO17_KEYPOINTS)


def test_npz_people_padding(out):
    first, second = _load_chunks(out["kp"])
    frames = make_frames()
    # chunk 0: frames with 2 and 0 people -> P = 2, frame 1 fully padded
    assert first["human_xyz_m"].shape == (2, 2, 17, 3) and first["human_uv_px"].shape == (2, 2, 17, 2)
    assert first["human_id"].dtype == np.int32
    assert first["human_id"].tolist() == [list(PERSON_IDS), [-1, -1]]
    for j, h in enumerate(frames[0].humans):
        np.testing.assert_allclose(first["human_xyz_m"][0, j], h.keypoints.xyz_cam_m, rtol=1e-6)
        np.testing.assert_allclose(first["human_uv_px"][0, j], h.keypoints.uv_px, rtol=1e-6)
        assert np.array_equal(first["human_vis"][0, j], h.keypoints.visibility)
    assert np.all(np.isnan(first["human_xyz_m"][1])) and np.all(np.isnan(first["human_uv_px"][1]))
    assert np.all(first["human_vis"][1] == -1)
    # chunk 1: one frame with 1 person -> P = 1, no padding
    assert second["human_id"].tolist() == [[PERSON_IDS[0]]] and not np.isnan(second["human_xyz_m"]).any()


# ----------------------------------------------------------------------------- atomicity

def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_partial_until_close_and_deterministic(tmp_path, out):
    parts = make_parts()
    frame = make_frame(0, 0, 1)
    for cls, kwargs in ((CocoWriter, {}), (BopWriter, {}), (KeypointsWriter, {"xyz_size": (12, 16)})):
        final = tmp_path / cls.__name__
        writer = cls(final, CLASSES, parts, **kwargs)
        writer.add(frame)
        assert not final.exists() and (tmp_path / f"{cls.__name__}.partial").is_dir()
        writer.close()
        assert final.is_dir() and not (tmp_path / f"{cls.__name__}.partial").exists()
        with pytest.raises(RuntimeError):
            writer.add(frame)

    # the same frames give byte-identical datasets
    again = write_all(tmp_path / "again")
    for name, path in out.items():
        first, second = _tree(path), _tree(again[name])
        assert first.keys() == second.keys() and len(first) > 2
        assert all(first[k] == second[k] for k in first), name
    assert not list((tmp_path / "again").glob("*.partial")) and not list(tmp_path.rglob("*.tmp-*"))


def test_partial_dir_replaces_and_survives_crash(tmp_path):
    final = tmp_path / "ds"
    final.mkdir()
    (final / "old.txt").write_text("old")
    pd = PartialDir(final)
    atomic_write_bytes(pd / "new.txt", b"new")
    assert (final / "old.txt").exists()  # the old dataset stays complete until commit
    pd.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert [p.name for p in final.iterdir()] == ["new.txt"]

    # an exception (or a dead process) leaves only the .partial; a new writer starts afresh
    with pytest.raises(KeyError):
        with PartialDir(tmp_path / "crash") as pd:
            atomic_write_bytes(pd / "half.txt", b"half")
            raise KeyError("boom")
    assert not (tmp_path / "crash").exists() and (tmp_path / "crash.partial" / "half.txt").exists()
    pd = PartialDir(tmp_path / "crash")
    assert list(pd.path.iterdir()) == []


def test_json_and_png_helpers(tmp_path):
    doc = {"b": np.float32(0.1), "a": [np.int64(3), 1.23456789, -0.0], "10": 1, "2": (True, None)}
    assert json_bytes(doc) == b'{"10":1,"2":[true,null],"a":[3,1.234568,0.0],"b":0.1}\n'
    assert json_bytes({"10": 0, "9": 0, "100": 0}) == b'{"9":0,"10":0,"100":0}\n'
    with pytest.raises(ValueError):
        json_bytes({"x": float("nan")})
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]

    depth = np.array([[0, 1, 65535], [256, 1000, 4097]], dtype=np.uint16)
    path = tmp_path / "d.png"
    path.write_bytes(png_bytes(depth))
    back = np.asarray(Image.open(path))
    assert back.dtype == np.uint16 and np.array_equal(back, depth)
