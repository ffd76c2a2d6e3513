"""COCO masks of a BOP scene rendered from ground-truth poses (`hrc-perception bop2coco`)."""
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from pycocotools import mask as mask_utils

from hrc_perception.cli import main
from hrc_perception.io.bop_coco import bop_scene_to_coco, visible_masks

LMO = Path(__file__).resolve().parents[2] / "shared/realdata/lmo"
K = np.array([[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]])


def _cube_mm(size_mm: float):
    box = trimesh.creation.box(extents=[size_mm] * 3)
    return np.asarray(box.vertices), np.asarray(box.faces)


def _T(z_m: float, x_m: float = 0.0):
    T = np.eye(4)
    T[:3, 3] = [x_m, 0.0, z_m]
    return T


def test_front_object_hides_the_one_behind():
    v, f = _cube_mm(100.0)
    v = v * 1e-3
    masks = visible_masks(K, 320, 240, [(v, f, _T(1.0)), (v, f, _T(2.0, 0.05))])
    # the front cube's face at z = 0.95 m spans 0.1 m: 500 * 0.1 / 0.95 = 52.6 px square
    assert abs(masks[0].sum() - (500 * 0.1 / 0.95) ** 2) < 2 * 4 * 53
    assert not (masks[0] & masks[1]).any()
    alone = visible_masks(K, 320, 240, [(v, f, _T(2.0, 0.05))])[0]
    assert masks[1].sum() < alone.sum() and (alone & masks[0]).any()


def test_measured_depth_in_front_removes_pixels():
    v, f = _cube_mm(100.0)
    v = v * 1e-3
    depth = np.zeros((240, 320))
    depth[:, :160] = 0.5             # an unmodelled occluder on the left half
    depth[:, 160:] = 0.96            # the cube's own surface (0.95 m) on the right half
    m = visible_masks(K, 320, 240, [(v, f, _T(1.0))], depth_m=depth)[0]
    full = visible_masks(K, 320, 240, [(v, f, _T(1.0))])[0]
    assert not m[:, :160].any() and np.array_equal(m[:, 160:], full[:, 160:])


def test_bop_scene_to_coco_writes_a_coco_folder(tmp_path):
    scene, models = tmp_path / "scene", tmp_path / "models"
    (scene / "rgb").mkdir(parents=True)
    models.mkdir()
    trimesh.Trimesh(*_cube_mm(100.0)).export(models / "obj_000003.ply")
    Image.fromarray(np.zeros((240, 320, 3), np.uint8)).save(scene / "rgb/000007.png")
    R = np.eye(3).ravel().tolist()
    (scene / "scene_gt.json").write_text(json.dumps({"7": [{"obj_id": 3, "cam_R_m2c": R, "cam_t_m2c": [0, 0, 1000.0]},
                                                           {"obj_id": 3, "cam_R_m2c": R,
                                                            "cam_t_m2c": [5000, 0, 1000.0]}]}))
    (scene / "scene_camera.json").write_text(json.dumps({"7": {"cam_K": K.ravel().tolist(), "depth_scale": 1.0}}))
    out = tmp_path / "coco"
    assert main(["bop2coco", "--scene", str(scene), "--models", str(models), "--out", str(out)]) == 0
    ann = json.loads((out / "annotations.json").read_text())
    assert ann["categories"] == [{"id": 3, "name": "obj_000003", "supercategory": "part"}]
    assert len(ann["annotations"]) == 1                  # the second cube is out of view: left out
    a = ann["annotations"][0]
    m = mask_utils.decode(a["segmentation"])
    assert m.sum() == a["area"] > 2500 and (out / ann["images"][0]["file_name"]).is_file()


def test_missing_mesh_is_a_clear_error(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s/scene_gt.json").write_text(json.dumps({"1": [{"obj_id": 9, "cam_R_m2c": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                                                                 "cam_t_m2c": [0, 0, 1]}]}))
    (tmp_path / "s/scene_camera.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="obj_000009.ply"):
        bop_scene_to_coco(tmp_path / "s", tmp_path, tmp_path / "out")


@pytest.mark.skipif(not LMO.is_dir(), reason="../shared/realdata/lmo absent")
def test_lmo_frame_with_depth_matches_bop_visible_pixel_counts(tmp_path):
    """Frame 3 has real depth: the rendered visible masks agree with BOP's own
    px_count_visib (computed by the dataset's authors from the same poses and depth)."""
    bop_scene_to_coco(LMO / "test/000002", LMO / "models", tmp_path)
    ann = json.loads((tmp_path / "annotations.json").read_text())
    info = json.loads((LMO / "test/000002/scene_gt_info.json").read_text())["3"]
    gt = json.loads((LMO / "test/000002/scene_gt.json").read_text())["3"]
    bop = {o["obj_id"]: i["px_count_visib"] for o, i in zip(gt, info)}
    ours = {a["category_id"]: a["area"] for a in ann["annotations"] if a["image_id"] == 3}
    assert set(ours) == set(bop)
    for oid in ours:
        assert abs(ours[oid] - bop[oid]) <= max(0.03 * bop[oid], 15), (oid, ours[oid], bop[oid])


def test_gt_pose_and_rgb_path_readers(tmp_path):
    from hrc_perception.io.bop import gt_pose_T, scene_rgb_path
    entry = {"cam_R_m2c": [0, -1, 0, 1, 0, 0, 0, 0, 1], "cam_t_m2c": [10.0, -20.0, 500.0], "obj_id": 3}
    T = gt_pose_T(entry)                                     # mm -> m
    assert np.allclose(T[:3, 3], [0.01, -0.02, 0.5]) and np.allclose(T[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert np.allclose(gt_pose_T(entry, 1.0)[:3, 3], [10.0, -20.0, 500.0])
    assert scene_rgb_path(tmp_path, 7) is None
    (tmp_path / "rgb").mkdir()
    (tmp_path / "rgb" / "000007.jpg").write_bytes(b"x")
    assert scene_rgb_path(tmp_path, 7) == tmp_path / "rgb" / "000007.jpg"
