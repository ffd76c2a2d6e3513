"""BlazePose run directly (human_pose.blazepose): anchors, regions and their crops,
weighted NMS, tiles, the person-box matching of the evaluation; on real images (when
../shared is there): the same landmarks as mediapipe's own solution for one person, every
person of a crowded image, nobody on real images without people, the dark-image
exposure rule."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from hrc_perception.human_pose.blazepose import (Roi, box_iou, roi_from_alignment, roi_from_box, square_tiles,
                                                 ssd_anchors, weighted_nms)
from hrc_perception.human_pose.person_boxes import matched

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"
COCO_PERSON = REAL / "coco_person" / "test_coco.json"
LMO_RGB = REAL / "lmo" / "test" / "000002" / "rgb"


def _bp():
    pytest.importorskip("mediapipe")
    pytest.importorskip("ai_edge_litert")
    from hrc_perception.human_pose.blazepose import BlazePose
    return BlazePose


def test_anchors_are_the_detectors_2254_cell_centres():
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])      # two per cell, stride 8
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14])                               # stride 16 starts
    assert np.allclose(a[-6:], [[6.5 / 7, 6.5 / 7]] * 6)                            # six per cell, stride 32
    assert (a > 0).all() and (a < 1).all()


def test_region_maps_crop_pixels_to_the_image_and_back():
    roi = Roi(np.array([100.0, 80.0]), 64.0, math.radians(30))
    # the crop's centre is the region's centre, its edges are side / 2 away along the turned axes
    assert np.allclose(roi.to_image(np.array([[127.5, 127.5]]), 256), [[100.0, 80.0]])
    right = roi.to_image(np.array([[255.5, 127.5]]), 256)[0] - [100, 80]
    assert np.allclose(right, 32.0 * np.array([math.cos(math.radians(30)), math.sin(math.radians(30))]))
    # crop() samples the image there: a dot at a known image point shows up at its crop pixel
    img = np.zeros((200, 200, 3), np.uint8)
    img[85:96, 110:121] = 255                                   # a blob centred at (115, 90)
    crop = roi.crop(img, 64)
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    back = roi.to_image(np.array([[xs.mean(), ys.mean()]]), 64)[0]
    assert np.linalg.norm(back - [115, 90]) < 1.0


def test_a_large_region_is_shrunk_without_aliasing():
    roi = Roi(np.array([500.0, 500.0]), 1000.0, 0.0)
    img = np.zeros((1000, 1000, 3), np.uint8)
    img[:, ::2] = 255                                           # one-pixel stripes: grey when averaged
    crop = roi.crop(img, 100)
    assert abs(float(crop[10:90, 10:90].mean()) - 127.5) < 8 and crop[10:90, 10:90].std() < 10


def test_upright_body_gives_an_unturned_region():
    roi = roi_from_alignment(np.array([50.0, 100.0]), np.array([50.0, 60.0]))    # scale point above the hips
    assert roi.rotation_rad == pytest.approx(0.0) and roi.side_px == pytest.approx(100.0)
    tilted = roi_from_alignment(np.array([50.0, 100.0]), np.array([90.0, 100.0]))  # lying, head to the right
    assert tilted.rotation_rad == pytest.approx(math.pi / 2)
    # the region's up (crop y decreasing) points from the hips to the scale point
    up = tilted.to_image(np.array([[127.5, 0.0]]), 256)[0] - tilted.centre_px
    assert up[0] > 0 and abs(up[1]) < 1e-6
    box = roi_from_box(np.array([10.0, 20.0, 30.0, 120.0]), pad_fraction=0.1)
    assert np.allclose(box.centre_px, [20, 70]) and box.side_px == pytest.approx(120.0)


def test_weighted_nms_merges_overlaps_and_keeps_the_rest():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.3, 0.6])
    kps = np.zeros((3, 4, 2))
    kps[1] += 4.0
    s, b, k = weighted_nms(scores, boxes, kps, 0.3)
    assert np.allclose(s, [0.9, 0.6])
    assert np.allclose(b[0], [0.25, 0, 10.25, 10]) and np.allclose(k[0], 1.0)
    assert np.allclose(b[1], boxes[2])


def test_tiles_cover_the_image_and_overlap():
    for h, w in ((480, 640), (333, 500), (1198, 1919)):
        tiles = square_tiles(h, w, (0.6,))
        covered = np.zeros((h, w), bool)
        for x0, y0, side in tiles:
            assert 0 <= x0 and 0 <= y0 and x0 + side <= w and y0 + side <= h
            covered[y0:y0 + side, x0:x0 + side] = True
        assert covered.all()
    assert square_tiles(100, 100, (1.0,)) == [(0, 0, 100)]


def test_box_iou_and_matching():
    a = np.array([[0, 0, 10, 10]], float)
    assert box_iou(a, np.array([[5, 0, 15, 10]], float))[0, 0] == pytest.approx(1 / 3)
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    dets = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [40, 40, 50, 50]], float)
    # the best detection takes the first person; the second detection may not take it again
    assert matched(gt, dets, np.array([0.9, 0.8, 0.7])).tolist() == [True, False]
    assert matched(gt, np.zeros((0, 4)), np.zeros(0)).tolist() == [False, False]


def test_dark_images_are_brightened_and_others_left_alone():
    from hrc_perception.human_pose.mediapipe_backend import normalise_exposure
    rng = np.random.default_rng(0)
    normal = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert normalise_exposure(normal) is normal
    dark = (normal // 16).astype(np.uint8)                       # 0..15: an underexposed frame
    bright = normalise_exposure(dark)
    assert bright.dtype == np.uint8 and bright.mean() > 5 * dark.mean()


@pytest.mark.skipif(not COCO_PERSON.is_file(), reason="shared real data not present")
def test_same_landmarks_as_mediapipes_solution_on_a_real_person():
    """One person alone in a real image: the networks run here find the landmarks that
    mediapipe's own single-person graph finds (within a few pixels)."""
    BlazePose = _bp()
    from mediapipe.python.solutions import pose as mp_pose
    from PIL import Image
    rgb = np.asarray(Image.open(COCO_PERSON.parent / "000000000785.jpg").convert("RGB"))
    people = BlazePose(tile_scales=()).people(rgb)
    with mp_pose.Pose(static_image_mode=True, model_complexity=1) as sol:
        lm = sol.process(rgb).pose_landmarks.landmark
    ref = np.array([[p.x * rgb.shape[1] - 0.5, p.y * rgb.shape[0] - 0.5] for p in lm])
    assert len(people) == 1
    err = np.linalg.norm(people[0].uv_px - ref, axis=1)
    assert np.median(err) < 8.0, np.median(err)                 # the person is ~350 px tall
    # the mask box is the person's annotated box
    assert box_iou(people[0].mask_box_xyxy, np.array([280.8, 44.7, 499.5, 391.4]))[0, 0] > 0.85


@pytest.mark.skipif(not COCO_PERSON.is_file(), reason="shared real data not present")
def test_tiles_find_more_people_in_a_crowded_real_image():
    BlazePose = _bp()
    from PIL import Image
    rgb = np.asarray(Image.open(COCO_PERSON.parent / "000000197388.jpg").convert("RGB"))
    whole = BlazePose(tile_scales=()).people(rgb)
    tiled = BlazePose(tile_scales=(0.6,)).people(rgb)
    assert len(tiled) > len(whole) >= 1
    boxes = np.stack([p.mask_box_xyxy for p in tiled])
    assert (box_iou(boxes, boxes) - np.eye(len(boxes))).max() <= 0.5       # no person twice


@pytest.mark.skipif(not LMO_RGB.is_dir(), reason="shared real data not present")
def test_no_person_on_real_images_without_people():
    """The whole-image detector reports nobody on the 12 real LM-O frames (parts on a
    cluttered table, no people)."""
    BlazePose = _bp()
    from PIL import Image
    pose = BlazePose(tile_scales=())
    frames = sorted(LMO_RGB.glob("*.png"))
    assert len(frames) == 12
    assert sum(len(pose.people(np.asarray(Image.open(f).convert("RGB")))) for f in frames) == 0


def test_person_box_evaluation_scores_a_perfect_and_a_half_detector(tmp_path):
    """evaluate_person_boxes on a small COCO file: a detector giving the true boxes has
    recall and AP50 1, one giving every other box and a false one 0.5 and one false person;
    persons on the images without people are counted."""
    from PIL import Image

    from hrc_perception.human_pose.person_boxes import evaluate_person_boxes
    boxes = {1: [[10, 10, 30, 60], [50, 5, 20, 40]], 2: [[5, 20, 40, 70]]}
    images, anns = [], []
    for img_id, bs in boxes.items():
        Image.new("RGB", (100, 100)).save(tmp_path / f"{img_id}.png")
        images.append({"id": img_id, "file_name": f"{img_id}.png", "width": 100, "height": 100, "source": f"s{img_id}"})
        anns += [{"id": 10 * img_id + k, "image_id": img_id, "category_id": 1, "bbox": b, "area": b[2] * b[3],
                  "iscrowd": 0} for k, b in enumerate(bs)]
    (tmp_path / "people.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                      "categories": [{"id": 1, "name": "person"}]}))
    Image.new("RGB", (100, 100)).save(tmp_path / "empty.png")
    calls = {"n": 0}

    def perfect(rgb):
        calls["n"] += 1
        k = 1 if calls["n"] == 1 else 2
        b = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes.get(k, [])], float).reshape(-1, 4)
        return (b, np.ones(len(b))) if calls["n"] <= 2 else (np.array([[0, 0, 10, 10.0]]), np.ones(1))

    res = evaluate_person_boxes({"perfect": perfect}, tmp_path / "people.json", [tmp_path / "empty.png"])["perfect"]
    assert res["recall_iou0.5"] == 1.0 and res["ap50"] == pytest.approx(1.0)
    assert res["per_source"]["s1"]["people"] == 2 and res["per_source"]["s2"]["false_persons"] == 0
    assert res["persons_on_negative_images"] == 1 and res["negative_images"] == 1

    def half(rgb):
        return np.array([[10, 10, 40, 70], [80, 80, 95, 95]], float), np.array([0.9, 0.8])

    res = evaluate_person_boxes({"half": half}, tmp_path / "people.json")["half"]
    assert res["per_source"]["s1"]["recall_iou0.5"] == 0.5 and res["per_source"]["s1"]["false_persons"] == 1
    assert res["per_source"]["s2"]["recall_iou0.5"] == 0.0 and res["recall_iou0.5"] == pytest.approx(1 / 3)
    assert 0.0 < res["ap50"] < 1.0


@pytest.mark.skipif(not COCO_PERSON.is_file(), reason="shared real data not present")
def test_combined_detector_confirms_person_boxes_and_rejects_the_rest():
    """Boxes proposed by another model count only where BlazePose's landmark network finds a
    person filling them: a real person's box is kept once (merged with BlazePose's own
    detection of her), a box of empty background is not."""
    _bp()
    from PIL import Image

    from hrc_perception.human_pose.person_boxes import confirmed_detector
    rgb = np.asarray(Image.open(COCO_PERSON.parent / "000000000785.jpg").convert("RGB"))
    person = np.array([280.8, 44.7, 499.5, 391.4])
    background = np.array([20.0, 20.0, 150.0, 200.0])
    detect = confirmed_detector(lambda img: (np.stack([person, background]), np.array([0.9, 0.8])), tile_scales=())
    boxes, scores = detect(rgb)
    assert len(boxes) == 1 and box_iou(boxes, person)[0, 0] > 0.8
    alone = confirmed_detector(lambda img: (background[None], np.array([0.8])), tile_scales=())
    assert len(alone(np.zeros_like(rgb))[0]) == 0
