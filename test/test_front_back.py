"""Front or back (human_pose.front_back): the facing of a skeleton, left/right swaps, and
the face check: on a real person facing the camera, a skeleton turned around is swapped
back and the right one left alone; on synthetic people seen from behind nothing is
swapped; in the estimator, a spdh skeleton is swapped only where the check says so."""
import json
from pathlib import Path

import numpy as np
import pytest

from hrc_perception.geometry import make_K
from hrc_perception.human_pose.front_back import facing_cos, swap_left_right
from hrc_perception.skeletons import COCO17_FLIP as FLIP
from hrc_perception.skeletons import COCO17_NAMES

COCO_PERSON = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "coco_person" / "test_coco.json"


def _standing(facing_camera: bool, z_m: float = 3.0) -> np.ndarray:
    """A schematic upright skeleton [17, 3] at z_m in front of the camera; its left on the
    image's right when it faces the camera."""
    side = 1.0 if facing_camera else -1.0
    xyz = np.zeros((17, 3))
    for name, (x, y) in {"nose": (0, -0.7), "left_eye": (0.03, -0.72), "right_eye": (-0.03, -0.72),
                         "left_ear": (0.08, -0.7), "right_ear": (-0.08, -0.7), "left_shoulder": (0.2, -0.5),
                         "right_shoulder": (-0.2, -0.5), "left_elbow": (0.25, -0.2), "right_elbow": (-0.25, -0.2),
                         "left_wrist": (0.25, 0.05), "right_wrist": (-0.25, 0.05), "left_hip": (0.12, 0.0),
                         "right_hip": (-0.12, 0.0), "left_knee": (0.12, 0.45), "right_knee": (-0.12, 0.45),
                         "left_ankle": (0.12, 0.9), "right_ankle": (-0.12, 0.9)}.items():
        xyz[COCO17_NAMES.index(name)] = [side * x, y, z_m]
    return xyz


def test_facing_and_swaps():
    assert facing_cos(_standing(True)) > 0.99
    assert facing_cos(_standing(False)) < -0.99
    assert facing_cos(swap_left_right(_standing(True))[0]) < -0.99      # a swap turns a skeleton around
    xyz = _standing(True)
    xyz[COCO17_NAMES.index("left_hip")] = np.nan
    assert np.isnan(facing_cos(xyz))
    assert sorted(FLIP) == list(range(17)) and FLIP[COCO17_NAMES.index("left_wrist")] == COCO17_NAMES.index(
        "right_wrist") and FLIP[0] == 0
    conf = np.arange(17.0)
    _, swapped = swap_left_right(xyz, conf)
    assert swapped[COCO17_NAMES.index("left_knee")] == COCO17_NAMES.index("right_knee")


@pytest.mark.skipif(not COCO_PERSON.is_file(), reason="shared real data not present")
def test_a_real_face_turns_a_skeleton_facing_away_around():
    """The skier of a real COCO image faces the camera: her skeleton (her labelled 2D
    joints put at 4 m) is left alone; turned around (left and right swapped), the check
    sees her face and says swap."""
    pytest.importorskip("mediapipe")
    from PIL import Image

    from hrc_perception.human_pose.front_back import FaceCheck
    ann = json.loads(COCO_PERSON.read_text())
    person = next(a for a in ann["annotations"] if a["image_id"] == 785)
    rgb = np.asarray(Image.open(COCO_PERSON.parent / "000000000785.jpg").convert("RGB"))
    uv = np.asarray(person["keypoints"], float).reshape(17, 3)[:, :2]
    K = make_K(500.0, 500.0, rgb.shape[1] / 2, rgb.shape[0] / 2)
    z = 4.0
    xyz = np.stack([(uv[:, 0] - K[0, 2]) * z / K[0, 0], (uv[:, 1] - K[1, 2]) * z / K[1, 1], np.full(17, z)], 1)
    assert facing_cos(xyz) > 0
    check = FaceCheck()
    try:
        assert check.check(rgb, K, xyz) is False
        assert check.check(rgb, K, swap_left_right(xyz)[0]) is True
        blind = xyz.copy()
        blind[:5] = np.nan
        assert check.check(rgb, K, swap_left_right(blind)[0]) is None     # no head: no decision
    finally:
        check.close()


def test_nobody_seen_from_behind_is_turned_around():
    """Synthetic people (faces, hair) facing away from the camera: their true skeletons are
    never swapped by the check."""
    pytest.importorskip("mediapipe")
    from hrc_perception.human_pose.evaluate import facing, person_boxes
    from hrc_perception.human_pose.front_back import FaceCheck
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    repo = Path(__file__).resolve().parents[1]
    run = SynthRun(load_cell_config(repo / "config" / "cell_short_episodes.yaml"), seed=9240)
    check = FaceCheck()
    away = 0
    try:
        for frame in run.frames(90):
            for human, _, _ in person_boxes(frame, 8):
                if facing(human.keypoints.xyz_cam_m) != "away":
                    continue
                away += 1
                assert check.check(frame.rgb, frame.K, human.keypoints.xyz_cam_m) is False
            if away >= 10:
                break
    finally:
        check.close()
    assert away >= 10
