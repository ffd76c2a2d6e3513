"""The shipped robot_pose weights, run: the file and its card agree; on a small held-out
slice of the training cell rendered here (3 episodes, a seed no training, tuning or
evaluation used) the evaluation of `hrc-perception eval robot_pose` finds SPDH close to
its card's held-out figures and ahead of the 2D + depth baseline, and its
camera-to-robot fit refined on the depth within the calibration goal; on frames of the
default cell it beats the baseline again, its confident joints are close and closer than
the others, joints out of view are not invented, and a hole in the depth over the hand
lowers the confidence there."""
import json
from pathlib import Path

import numpy as np
import pytest

from hrc_perception.robot_pose.predictor import RobotPosePredictor
from hrc_perception.training import file_sha256

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "robot_pose"
# The held-out slice: config/cell_robot_pose.yaml (the cell of the card's held-out set, seed 1100),
# 3 episodes of 45 frames (the evaluation's calibration window). Seed 9001: no synth run of the
# README or of any model card uses it (robot_pose: training 1000, 1500-1505, tuning 1150, held out
# 1100, 1130, 1200, 1230; the README keeps 9000-9999 for these slices), nor does any other test,
# so the network has never seen these frames.
SLICE_SEED, SLICE_FRAMES = 9001, 135


@pytest.fixture(scope="module")
def predictor():
    return RobotPosePredictor(MODEL_DIR / "model.pt")


@pytest.fixture(scope="module")
def frames():
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun
    run = SynthRun(CellConfig(), seed=4242)
    return [run.frame(i) for i in (0, 40, 80, 160, 200, 320)]


@pytest.fixture(scope="module")
def held_out_slice(tmp_path_factory):
    from hrc_perception.cli import main
    out = tmp_path_factory.mktemp("robot_pose_slice")
    assert main(["synth", "--config", str(REPO / "config" / "cell_robot_pose.yaml"), "--frames", str(SLICE_FRAMES),
                 "--seed", str(SLICE_SEED), "--out", str(out), "--dataset", "keypoints", "--quiet"]) == 0
    return out


def test_card_matches_the_weights(predictor):
    card = json.loads((MODEL_DIR / "model_card.json").read_text())
    assert card["sha256"] == file_sha256(MODEL_DIR / "model.pt")
    assert card["keypoints"] == list(predictor.names) and card["robot"]["name"] == "panda"
    assert (MODEL_DIR / "model.pt").stat().st_size < 25e6


def check_held_out_figures(res: dict) -> None:
    """The figures of :func:`hrc_perception.robot_pose.evaluate.evaluate` on the slice.
    Measured on it (seed 9001; the card's 540 held-out frames, seed 1100, then the README's fresh
    held-out seed 1130, in brackets): SPDH mAP 0.524 (0.503, 0.566), <4 cm 0.441 (0.428, 0.494),
    baseline mAP 0.295 (0.254); keypoint fit 2.12 cm (1.57) against the baseline's 7.47 (7.43);
    refined on the depth 1.25 cm, 0.38 deg (0.76, 0.50; 0.45, 0.41);
    forward kinematics placed by it mAP 0.997 (0.75: one held-out episode not refined). The
    thresholds sit a little under those (the slice is deterministic: the margin is for floating
    point and small changes, not for another draw); an untrained or perturbed network, an input
    off by a scale or with x and y swapped (mAP 0.483, <4 cm 0.397), or a decoder with the wrong
    intrinsics or u and v swapped fails them. Three episodes vary: the slices of seeds 9002 and
    9003 gave SPDH mAP 0.380 and 0.665, so a change of the synthesiser that changes these frames
    calls for measuring again, not for a looser threshold."""
    s, cal = res["summary"], res["calibration"]
    spdh, base = s["spdh"], s["uv_depth"]
    assert res["frames"] == SLICE_FRAMES and spdh["joints"] == SLICE_FRAMES * 8
    assert spdh["mAP"] >= 0.50 and spdh["acc_4cm"] >= 0.42, spdh
    assert spdh["mAP"] >= base["mAP"] + 0.15, (spdh["mAP"], base["mAP"])     # ahead of the 2D + depth baseline
    assert cal["spdh"]["fitted"] == "3/3" and cal["spdh"]["surface_fitted"] == "3/3", cal["spdh"]
    assert spdh["calib_t_err_cm_median"] <= 3.0 and spdh["calib_t_err_cm_median"] < base["calib_t_err_cm_median"]
    # the keypoint fit refined on the depth: within the calibration goal (1.5 cm, 1.5 deg)
    assert spdh["calib_surface_t_err_cm_median"] <= 1.5 and spdh["calib_surface_r_err_deg_median"] <= 1.5, spdh
    assert s["fk_fitted"]["mAP"] >= 0.9, s["fk_fitted"]


def test_held_out_slice_of_the_training_cell(held_out_slice):
    from hrc_perception.robot_pose.evaluate import evaluate
    check_held_out_figures(evaluate(MODEL_DIR / "model.pt", held_out_slice))


def test_skeletons_on_new_frames_of_the_default_cell(predictor, frames):
    baseline = RobotPosePredictor(MODEL_DIR / "model.pt", method="uv_depth")
    err, err_base, valid, invented = [], [], [], 0
    for f in frames:
        sk = predictor.predict(f.depth_mm / 1000.0, f.K)
        sb = baseline.predict(f.depth_mm / 1000.0, f.K)
        vis = f.robot.keypoints.visibility
        truth = f.robot.keypoints.xyz_cam_m
        err += list(np.linalg.norm(sk.xyz_cam_m - truth, axis=1)[vis > 0])
        err_base += list(np.linalg.norm(sb.xyz_cam_m - truth, axis=1)[vis > 0])
        valid += list(sk.valid[vis > 0])
        invented += int((sk.valid & (vis == 0)).sum())
        assert np.isfinite(sk.xyz_cam_m[sk.valid]).all() and ((sk.confidence >= 0) & (sk.confidence <= 1)).all()
    err, err_base, valid = np.array(err), np.array(err_base), np.array(valid)
    assert np.median(err) < np.nanmedian(err_base)             # ahead of the 2D + depth baseline
    assert valid.sum() >= 10 and np.median(err[valid]) < 0.08  # the joints it is confident about are close
    assert np.median(err[valid]) < np.median(err[~valid])      # and closer than the ones it is not
    assert invented == 0


def test_a_depth_hole_over_the_hand_lowers_its_confidence(predictor, frames):
    f = next(f for f in frames if (f.robot.keypoints.visibility[-2:] == 2).all())
    depth = f.depth_mm / 1000.0
    before = predictor.predict(depth, f.K)
    u, v = f.robot.keypoints.uv_px[-1]
    holed = depth.copy()
    holed[max(int(v) - 60, 0):int(v) + 60, max(int(u) - 60, 0):int(u) + 60] = 0.0
    after = predictor.predict(holed, f.K)
    assert after.confidence[-1] < before.confidence[-1]
    if after.valid[-1]:     # still given: then it must still be near the truth, not a guess at the hole's edge
        assert np.linalg.norm(after.xyz_cam_m[-1] - f.robot.keypoints.xyz_cam_m[-1]) < 0.10
