"""The eval commands on public dataset formats (issue 22): a MOTChallenge sequence without a
frame rate, person keypoints of CrowdPose / MPII / AI Challenger / Halpe, COCO boxes
without masks. Every fixture is a tiny file written here (no ../shared needed)."""
from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from hrc_perception.cli import main
from hrc_perception.io import keypoint_layouts as kl
from hrc_perception.skeletons import COCO17_NAMES


# --------------------------------------------------------------------------- tracking
def _mot_sequence(root: Path, name: str = "Seq-NoRate", frames: int = 10, seqinfo: str = "") -> Path:
    """Two people walking apart, detections = ground truth (MOT format, 1-based frames)."""
    seq = root / name
    (seq / "gt").mkdir(parents=True)
    (seq / "det").mkdir()
    boxes = [(f, i, 40 + 200 * (i - 1) + (6 * f if i == 1 else -6 * f)) for f in range(1, frames + 1) for i in (1, 2)]
    (seq / "gt/gt.txt").write_text("".join(f"{f},{i},{x},60,30,80,1,-1,-1,-1\n" for f, i, x in boxes))
    (seq / "det/det.txt").write_text("".join(f"{f},-1,{x},60,30,80,1,-1,-1,-1\n" for f, i, x in boxes))
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nseqLength={frames}\n{seqinfo}")
    return seq


def _figures(res: dict) -> dict:
    return {name: {k: v for k, v in m.items() if not k.endswith("_ms")}
            for name, m in res["mot15"]["trackers"].items()}


def test_mot15_without_frame_rate_uses_the_default_and_says_so(tmp_path):
    from hrc_perception.tracking import evaluate
    seq = _mot_sequence(tmp_path)
    log = io.StringIO()
    res = evaluate.evaluate_tracking(None, None, mot15=seq, log=log)
    assert res["mot15"]["fps"] == evaluate.MOT_DEFAULT_FPS == 25.0
    assert res["mot15"]["fps_source"] == "default"
    assert "no frameRate" in log.getvalue() and "25 Hz assumed" in log.getvalue()
    sort = res["mot15"]["trackers"]["sort"]
    # 2 people x 10 frames, exact detections: each track is confirmed at its 3rd hit (n_init 3),
    # so frames 1-2 of each are misses: MOTA = 1 - 4 / 20, no switch, no false positive
    assert (sort["misses"], sort["false_positives"], sort["id_switches"]) == (4, 0, 0)
    assert sort["mota"] == pytest.approx(0.8)
    # the frame rate changes no figure: the same with --fps 7 (and it is reported as given)
    other = evaluate.evaluate_tracking(None, None, mot15=seq, mot15_fps=7.0, log=io.StringIO())
    assert (other["mot15"]["fps"], other["mot15"]["fps_source"]) == (7.0, "option")
    assert _figures(other) == _figures(res)


def test_mot15_frame_rate_sources(tmp_path):
    from hrc_perception.tracking import evaluate
    assert evaluate.mot15_frame_rate(_mot_sequence(tmp_path, "A", seqinfo="frameRate=30\n")) == (30.0, "seqinfo.ini")
    assert evaluate.mot15_frame_rate(_mot_sequence(tmp_path, "TUD-Campus")) == (25.0, "MOT15_FPS")
    assert evaluate.mot15_frame_rate(_mot_sequence(tmp_path, "B"), 12.5) == (12.5, "option")
    with pytest.raises(ValueError, match="--fps 0.0 is not a frame rate"):
        evaluate.mot15_frame_rate(tmp_path / "B", 0.0)


def test_eval_tracking_fps_option(tmp_path, capsys):
    seq = _mot_sequence(tmp_path)
    out = tmp_path / "t.json"
    assert main(["eval", "tracking", "--mot15", str(seq), "--fps", "10", "--json", str(out)]) == 0
    res = json.loads(out.read_text())["mot15"]
    assert (res["fps"], res["fps_source"]) == (10.0, "option")
    assert res["trackers"]["sort"]["mota"] == pytest.approx(0.8)
    assert "assumed" not in capsys.readouterr().err
    assert main(["eval", "tracking", "--mot15", str(seq), "--fps", "-1"]) == 2
    assert "--fps -1.0 is not a frame rate" in capsys.readouterr().err


# --------------------------------------------------------------------------- keypoint layouts
# The COCO-17 index each source joint lands on, written out by hand from the datasets' own
# joint orders (independent of the module's tables); joints absent here are dropped.
CROWDPOSE_TO_COCO = {0: 5, 1: 6, 2: 7, 3: 8, 4: 9, 5: 10, 6: 11, 7: 12, 8: 13, 9: 14, 10: 15, 11: 16}
MPII_TO_COCO = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 10: 10, 11: 8, 12: 6, 13: 5, 14: 7, 15: 9}
AIC_TO_COCO = {0: 6, 1: 8, 2: 10, 3: 5, 4: 7, 5: 9, 6: 12, 7: 14, 8: 16, 9: 11, 10: 13, 11: 15}


def _numbered(k: int) -> np.ndarray:
    """[k, 3] keypoints whose x is the joint's own index (y = 100 + index, v = 2)."""
    j = np.arange(k, dtype=np.float64)
    return np.c_[j, 100 + j, np.full(k, 2.0)]


@pytest.mark.parametrize("layout, k, expected", [
    ("crowdpose", 14, CROWDPOSE_TO_COCO), ("mpii", 16, MPII_TO_COCO), ("aic", 14, AIC_TO_COCO),
    ("halpe26", 26, {i: i for i in range(17)}), ("halpe136", 136, {i: i for i in range(17)}),
    ("coco", 17, {i: i for i in range(17)})])
def test_layouts_map_each_joint_to_its_coco_joint(layout, k, expected):
    coco = kl.to_coco17(_numbered(k).reshape(-1), layout)
    assert coco.shape == (17, 3)
    for src, dst in expected.items():
        assert coco[dst].tolist() == [src, 100 + src, 2.0], (layout, COCO17_NAMES[dst])
    absent = sorted(set(range(17)) - set(expected.values()))
    assert coco[absent].tolist() == [[0.0, 0.0, 0.0]] * len(absent)   # v=0: not scored


def test_layout_is_chosen_by_names_then_count():
    crowd_names = list(kl.LAYOUTS["crowdpose"])
    aic_names = ["r shoulder", "r elbow", "r wrist", "l shoulder", "l elbow", "l wrist", "r hip", "r knee",
                 "r ankle", "l hip", "l knee", "l ankle", "head top", "neck"]
    assert kl.resolve_layout(14, crowd_names) == "crowdpose"
    assert kl.resolve_layout(14, aic_names) == "aic"
    assert kl.resolve_layout(16) == "mpii" and kl.resolve_layout(26) == "halpe26"
    assert kl.resolve_layout(14, layout="aic") == "aic"
    with pytest.raises(ValueError, match=r"ambiguous between crowdpose and aic.*--keypoint-layout"):
        kl.resolve_layout(14, source="x.json")
    with pytest.raises(ValueError, match=r"x.json: 15 joints per person is no known keypoint layout.*crowdpose \(14\)"):
        kl.resolve_layout(15, source="x.json")
    with pytest.raises(ValueError, match="match no known layout"):
        kl.resolve_layout(14, crowd_names[::-1])
    with pytest.raises(ValueError, match="--keypoint-layout mpii has 16"):
        kl.resolve_layout(14, layout="mpii")


def _crowdpose_file(tmp_path: Path, with_names: bool = True) -> tuple[Path, np.ndarray]:
    """A CrowdPose-style json (14 joints, no area) with one 96x128 image and one person;
    returns the path and the person's true COCO-17 joints [17, 2] (NaN where CrowdPose has none)."""
    rng = np.random.default_rng(4)
    kp = np.c_[rng.uniform(10, 86, 14), rng.uniform(10, 118, 14), np.full(14, 2.0)]
    Image.fromarray(np.full((128, 96, 3), 90, np.uint8)).save(tmp_path / "im.png")
    cat = {"id": 1, "name": "person"} | ({"keypoints": list(kl.LAYOUTS["crowdpose"])} if with_names else {})
    ann = {"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [5.0, 5.0, 86.0, 118.0],
           "keypoints": kp.reshape(-1).tolist(), "num_keypoints": 14}
    path = tmp_path / "crowdpose_test.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "im.png", "width": 96, "height": 128}],
                                "annotations": [ann], "categories": [cat]}))
    true = np.full((17, 2), np.nan)
    for src, dst in CROWDPOSE_TO_COCO.items():
        true[dst] = kp[src, :2]
    return path, true


class _TrueJoints:
    """A 2D backend that answers the given COCO-17 joints (face joints: the box centre)."""

    def __init__(self, uv: np.ndarray):
        self.uv = np.where(np.isfinite(uv), uv, 48.0)

    def estimate(self, rgb, box_xyxy):
        return self.uv.copy(), np.full(17, 0.9)


def test_eval_human_pose_scores_a_crowdpose_file(tmp_path, capsys):
    from hrc_perception.human_pose.evaluate import evaluate_coco
    path, true = _crowdpose_file(tmp_path)
    res = evaluate_coco(_TrueJoints(true), path)
    assert res["keypoint_layout"] == "crowdpose" and res["persons"] == 1
    assert res["joints_labelled"] == 12            # head and neck have no COCO joint
    assert res["joints_scored"] == list(COCO17_NAMES[5:])
    assert res["pck_0.2"] == 1.0 and res["oks_AP"] == pytest.approx(1.0)
    assert "crowdpose keypoints (14 joints) mapped to COCO-17" in capsys.readouterr().err
    # read in the wrong (AI Challenger) order, the same answers are mostly wrong: the order matters
    wrong = evaluate_coco(_TrueJoints(true), path, layout="aic")
    assert wrong["pck_0.2"] < 0.5 and wrong["oks_AP"] < 0.5


def test_eval_human_pose_refuses_an_ambiguous_file(tmp_path):
    from hrc_perception.human_pose.evaluate import evaluate_coco
    path, true = _crowdpose_file(tmp_path, with_names=False)
    with pytest.raises(ValueError, match=r"crowdpose_test.json: 14 joints .* crowdpose and aic.*--keypoint-layout"):
        evaluate_coco(_TrueJoints(true), path)
    assert evaluate_coco(_TrueJoints(true), path, layout="crowdpose")["pck_0.2"] == 1.0


def test_eval_human_pose_parser_has_the_layout_option():
    from hrc_perception.cli import build_parser
    args = build_parser().parse_args(["eval", "human_pose", "--coco", "x.json", "--keypoint-layout", "mpii"])
    assert args.keypoint_layout == "mpii"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "human_pose", "--keypoint-layout", "openpose"])


# --------------------------------------------------------------------------- segmentation
def _box_only_coco(root: Path) -> Path:
    """A COCO folder (annotations.json + images/) with two boxes, no segmentation."""
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(root / "images/0.png")
    anns = [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [4.0, 4.0, 20.0, 30.0], "area": 600.0,
             "iscrowd": 0},
            {"id": 2, "image_id": 0, "category_id": 2, "bbox": [36.0, 10.0, 20.0, 20.0], "area": 400.0,
             "iscrowd": 0}]
    (root / "annotations.json").write_text(json.dumps({
        "images": [{"id": 0, "file_name": "images/0.png", "width": 64, "height": 48}], "annotations": anns,
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "gear"}]}))
    return root


class _FakePredictor:
    """Detections: the person's true box (score 0.9), the gear 20 px off (0.8)."""

    def __init__(self, weights, device="cpu", score_threshold=0.05, rpn_proposals=None, input_short_side=None):
        self.rpn_proposals, self.input_short_side = rpn_proposals or 150, input_short_side or 320

    def predict(self, rgb):
        return SimpleNamespace(boxes_xyxy=np.array([[4, 4, 24, 34], [16, 26, 36, 46]], np.float32),
                               class_names=["person", "gear"], scores=np.array([0.9, 0.8], np.float32),
                               masks=np.zeros((2,) + rgb.shape[:2], bool))


def test_eval_segmentation_scores_boxes_when_masks_are_absent(tmp_path, monkeypatch, capsys):
    import hrc_perception.segmentation.predictor as predictor
    monkeypatch.setattr(predictor, "SegmentationPredictor", _FakePredictor)
    data = _box_only_coco(tmp_path / "coco")
    out = tmp_path / "seg.json"
    assert main(["eval", "segmentation", "--weights", "unused.pt", "--data", str(data), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["masks_absent"] is True
    assert res["segm_AP"] is None and res["segm_AP50"] is None and res["per_class_segm_AP50"] is None
    # person found exactly, gear missed: per-class box AP50 1 and 0, mean 0.5
    assert res["per_class_bbox_AP50"] == {"person": pytest.approx(1.0), "gear": pytest.approx(0.0)}
    assert res["bbox_AP50"] == pytest.approx(0.5)
    captured = capsys.readouterr()
    assert "2 of 2 annotations have no mask" in captured.err and "box AP only" in captured.out


def test_mask_rcnn_training_data_without_masks_is_a_clear_error(tmp_path):
    from hrc_perception.segmentation.dataset import CocoInstances
    with pytest.raises(ValueError, match=r"annotations.json: annotation 1 has no mask"):
        CocoInstances(_box_only_coco(tmp_path / "coco"))
