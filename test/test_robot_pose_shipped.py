"""The shipped robot_pose weights: the file and its card agree, SPDH beats the 2D +
depth baseline on the held-out set and its camera-to-robot fit refined on the depth
meets the calibration goal there; on frames of the default cell rendered here (a
seed no training or evaluation used) it beats the baseline again, its confident joints
are close and closer than the others, joints out of view are not invented, and a hole
in the depth over the hand lowers the confidence there."""
import json
from pathlib import Path

import numpy as np
import pytest

from hrc_perception.robot_pose.predictor import RobotPosePredictor
from hrc_perception.training import file_sha256

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "robot_pose"


@pytest.fixture(scope="module")
def predictor():
    return RobotPosePredictor(MODEL_DIR / "model.pt")


@pytest.fixture(scope="module")
def frames():
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun
    run = SynthRun(CellConfig(), seed=4242)
    return [run.frame(i) for i in (0, 40, 80, 160, 200, 320)]


def test_card_matches_the_weights(predictor):
    card = json.loads((MODEL_DIR / "model_card.json").read_text())
    assert card["sha256"] == file_sha256(MODEL_DIR / "model.pt")
    assert card["keypoints"] == list(predictor.names) and card["robot"]["name"] == "panda"
    held, base = card["metrics_held_out"]["spdh"], card["metrics_held_out"]["uv_depth"]
    # SPDH ahead of the 2D + depth baseline on the held-out set, in joints and in the camera-to-robot fit
    assert held["mAP"] > base["mAP"] and held["acc_4cm"] > base["acc_4cm"]
    assert held["calib_t_err_cm_median"] < base["calib_t_err_cm_median"]
    # the keypoint fit refined on the depth: within the calibration goal (1.5 cm, 1.5 deg)
    assert held["calib_surface_t_err_cm_median"] <= 1.5 and held["calib_surface_r_err_deg_median"] <= 1.5
    assert (MODEL_DIR / "model.pt").stat().st_size < 25e6


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
