"""`hrc-perception train robot_pose` and `eval robot_pose` on a tiny synth output:
the run writes model, card and log, resumes from its checkpoint, refuses a foreign
checkpoint, and the evaluation reports both methods and the calibration."""
import json

import numpy as np
import pytest

from hrc_perception.cli import main
from hrc_perception.robot_pose.dataset import RobotPoseDataset, load_robot_frames
from hrc_perception.robot_pose.model import load_model
from hrc_perception.robot_pose.spdh import decode


@pytest.fixture(scope="module")
def tiny_kp(tmp_path_factory, small_cell_yaml):
    root = tmp_path_factory.mktemp("kpdata")
    for name, seed in (("train", 21), ("val", 22)):
        assert main(["synth", "--config", str(small_cell_yaml), "--frames", "10", "--seed", str(seed),
                     "--out", str(root / name), "--dataset", "keypoints", "--quiet"]) == 0
    return root


def test_dataset_targets_decode_to_the_true_joints(tiny_kp):
    frames = load_robot_frames(tiny_kp / "train")
    assert len(frames) == 10 and frames.full_hw == (240, 320) and frames.xyz_m.shape[1:] == (240, 320, 3)
    # keypoints in the base frame are the same for every camera: forward kinematics
    kb = frames.keypoints_base_m()
    assert np.isfinite(kb).all() and np.allclose(kb[:, 0], 0.0, atol=1e-6)    # link0 is the base origin
    from hrc_perception.robot_pose.model import BuildConfig
    spec = BuildConfig(num_joints=8).heatmap_spec
    ds = RobotPoseDataset(frames, spec)
    x, target, joint_z = ds[3]
    assert tuple(x.shape) == (4, 240, 320) and tuple(target.shape) == (16, 120, 160)
    np.testing.assert_allclose(joint_z.numpy(), frames.robot_xyz_m[3][:, 2], rtol=1e-6)
    from hrc_perception.robot_pose.dataset import heatmap_K
    d = decode(target.numpy(), heatmap_K(frames.K_xyz[3], (240, 320), spec), spec)
    inside = (frames.robot_vis[3] > 0) & (d.confidence > 0.5)
    assert inside.sum() >= 4
    err = np.linalg.norm(d.xyz_cam_m[inside] - frames.robot_xyz_m[3][inside], axis=1)
    assert err.max() < 1e-4


def test_frames_of_several_datasets_concatenate_with_episodes_apart(tiny_kp):
    from hrc_perception.robot_pose.dataset import concat_robot_frames
    a, b = load_robot_frames(tiny_kp / "train"), load_robot_frames(tiny_kp / "val")
    both = concat_robot_frames([a, b])
    assert len(both) == 20 and both.keypoint_names == a.keypoint_names
    np.testing.assert_array_equal(both.xyz_m[10:], b.xyz_m)
    np.testing.assert_array_equal(both.robot_xyz_m[:10], a.robot_xyz_m)
    assert set(both.episode[:10]).isdisjoint(both.episode[10:])
    assert len(np.unique(both.episode)) == len(np.unique(a.episode)) + len(np.unique(b.episode))
    assert concat_robot_frames([a]) is a
    import dataclasses
    other = dataclasses.replace(b, keypoint_names=tuple(reversed(b.keypoint_names)))
    with pytest.raises(ValueError, match="keypoints datasets differ"):
        concat_robot_frames([a, other])


def test_train_resume_and_evaluate(tiny_kp, tmp_path, capsys):
    import torch
    out = tmp_path / "model"
    args = ["train", "robot_pose", "--data", str(tiny_kp / "train"), "--out", str(out), "--batch-size", "2",
            "--threads", "1", "--workers", "0", "--checkpoint-every", "2"]
    assert main(args + ["--steps", "2"]) == 0
    assert (out / "checkpoint.pt").is_file() and (out / "model.pt").is_file()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 2
    capsys.readouterr()
    assert main(args + ["--steps", "4", "--val", str(tiny_kp / "val")]) == 0
    # resumed at step 2 (not started again from 0), and checkpointed at the end
    assert "train robot_pose: resuming at step 2\n" in capsys.readouterr().err
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 4
    # two data folders train together (a fresh run: the checkpoint's data differ)
    assert main(["train", "robot_pose", "--data", str(tiny_kp / "train"), str(tiny_kp / "val"), "--out",
                 str(tmp_path / "two"), "--batch-size", "2", "--threads", "1", "--workers", "0", "--steps", "1"]) == 0
    two_card = json.loads((tmp_path / "two" / "model_card.json").read_text())
    assert [d["seed"] for d in two_card["data"]] == [21, 22] and "initialised_from" not in two_card
    # --init: the card says which model the run started from
    assert main(["train", "robot_pose", "--data", str(tiny_kp / "train"), "--out", str(tmp_path / "init"),
                 "--batch-size", "2", "--threads", "1", "--workers", "0", "--steps", "1",
                 "--init", str(tmp_path / "two" / "model.pt")]) == 0
    init_card = json.loads((tmp_path / "init" / "model_card.json").read_text())["initialised_from"]
    assert init_card["sha256"] == two_card["sha256"] and init_card["card"]["data"] == two_card["data"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log][-1] == 4 and log[-1]["step"] > log[0]["step"]
    card = json.loads((out / "model_card.json").read_text())
    assert card["keypoints"][0] == "panda_link0" and card["robot"]["urdf"].endswith("panda.urdf")
    assert card["steps"] == 4 and "spdh" in card["metrics_held_out"] and "uv_depth" in card["metrics_held_out"]
    build, _, file_card = load_model(out / "model.pt")
    assert build.num_joints == 8 and file_card["metrics_held_out"] == card["metrics_held_out"]
    res_path = tmp_path / "eval.json"
    assert main(["eval", "robot_pose", "--weights", str(out / "model.pt"), "--data", str(tiny_kp / "val"),
                 "--calib-frames", "5", "--json", str(res_path), "--figure", str(tmp_path / "fig.png")]) == 0
    res = json.loads(res_path.read_text())
    assert res["frames"] == 10 and set(res["summary"]) == {"spdh", "uv_depth", "fk_fitted"}
    assert {"mean_err_cm", "acc_4cm", "mAP", "calib_t_err_cm_median", "calib_surface_t_err_cm_median"
            } <= set(res["summary"]["spdh"])
    assert res["calibration"]["spdh"]["surface_frames"] == 8
    assert set(res["per_joint_image_depth"]) == set(card["keypoints"])
    # A 4-step model's errors mean nothing; the per-joint image and depth figures can be checked:
    # the true joints give 0, the true joints moved by (3, 4) px in the image and 2 cm in depth give those
    from hrc_perception.robot_pose.evaluate import image_and_depth_errors
    frames = load_robot_frames(tiny_kp / "val")
    uvw = np.einsum("nij,nkj->nki", frames.K_full, frames.robot_xyz_m)
    true_uv = uvw[..., :2] / uvw[..., 2:]
    for offset_px, offset_m in (((0.0, 0.0), 0.0), ((3.0, 4.0), 0.02)):
        errors = image_and_depth_errors(frames, true_uv + offset_px, frames.robot_xyz_m + [0.0, 0.0, offset_m])
        assert set(errors) == set(card["keypoints"])
        for j, name in enumerate(frames.keypoint_names):
            if (frames.robot_vis[:, j] > 0).any():
                assert errors[name] == {"image_err_px_median": pytest.approx(np.hypot(*offset_px), abs=0.01),
                                        "depth_err_cm_median": pytest.approx(100 * offset_m, abs=0.01)}
    assert len(res["calibration"]["spdh"]["episodes"]) == 2 and (tmp_path / "fig.png").stat().st_size > 10_000
    # a checkpoint of another run is refused, not silently mixed in
    ckpt = out / "checkpoint.pt"
    c = torch.load(ckpt, weights_only=False)
    c["keypoints"] = ["other"] * 8
    torch.save(c, ckpt)
    assert main(args + ["--steps", "6"]) == 2


def test_train_without_keypoints_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "robot_pose", "--data", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    assert "no meta.json" in capsys.readouterr().err
