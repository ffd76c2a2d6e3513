"""`hrc-perception train object_pose` and `eval object_pose` end to end on a tiny BOP
dataset (checkpoints, resume, both stages, model card, held-out figures), and the
predictor on bad input."""
import json

import numpy as np
import pytest

from hrc_perception.cli import main

CLOSE_CELL_YAML = """\
camera:
  width: 320
  height: 240
  fx: 307.5
  fy: 307.5
  cx: 160.0
  cy: 120.0
  pose: {look_at_m: [-0.1, 0.0, 0.78], distance_m: [0.6, 0.8], elevation_deg: [45.0, 60.0]}
sequence: {fps: 15.0, episode_frames: 2}
humans: {count: [1, 1]}
parts: {count: [3, 3], names: [gear, bracket, bolt]}
"""


@pytest.fixture(scope="module")
def tiny_bop(tmp_path_factory):
    root = tmp_path_factory.mktemp("posedata")
    cfg = root / "close.yaml"
    cfg.write_text(CLOSE_CELL_YAML)
    for name, seed in (("train", 21), ("val", 22)):
        assert main(["synth", "--config", str(cfg), "--frames", "4", "--seed", str(seed), "--out", str(root / name),
                     "--dataset", "bop", "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def trained(tiny_bop, tmp_path_factory):
    out = tmp_path_factory.mktemp("posemodel") / "model"
    base = ["train", "object_pose", "--data", str(tiny_bop / "train"), "--out", str(out), "--batch-size", "4",
            "--checkpoint-every", "1", "--workers", "0", "--points", "32"]
    assert main(base + ["--steps", "2", "--refine-steps", "0"]) == 0
    return out, base


def test_train_two_stages_resume_and_card(trained, tiny_bop, capsys):
    out, base = trained
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in log] == [("posenet", 2)]
    assert log[0]["add_s_m"] > 0 and np.isfinite(log[0]["loss"])
    # resume: the pose network is done (2 steps), the refiner stage runs 2 steps
    assert main(base + ["--steps", "2", "--refine-steps", "2", "--val", str(tiny_bop / "val")]) == 0
    assert "resuming posenet at step 2" in capsys.readouterr().err
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in log] == [("posenet", 2), ("refiner", 2)]
    card = json.loads((out / "model_card.json").read_text())
    assert card["classes"] == ["gear", "bracket", "bolt"] and card["symmetric"] == [True, False, True]
    assert card["data"]["seed"] == 21 and card["metrics_data"]["seed"] == 22
    held = card["metrics_held_out"]
    # the file has part points: verification and render-and-compare are scored
    assert set(held) == {"densefusion", "densefusion_refined", "densefusion_verified", "render_compare",
                         "verified_render_compare"}
    assert held["densefusion"]["all"]["instances"] > 0
    assert len(card["sha256"]) == 64
    # A model of 2 + 2 steps: its figures mean nothing; the scoring that gives them can be checked: the
    # held-out instances' true poses, fed back as the estimates, are all within 0.1 diameter, and
    # moved by a diameter none is (the held-out parts, gears and bolts, are symmetric: by ADD-S a
    # part moved by 0.15 diameter is still within 0.05-0.08 diameter of its true surface).
    from types import SimpleNamespace

    from hrc_perception.object_pose.data import load_bop_split
    from hrc_perception.object_pose.evaluate import evaluate_samples, summarise
    parts, samples = load_bop_split(tiny_bop / "val", quiet=True)
    for shift_d, accuracy in ((0.0, 1.0), (1.0, 0.0)):
        poses = {id(s.crop): s.T_cam_obj + np.pad([[shift_d * parts[s.obj_id].diameter_m], [0], [0]], ((0, 1), (3, 0)))
                 for s in samples}
        truth = SimpleNamespace(classes=card["classes"], verifier=None, render_compare=None,
                                estimate=lambda items, **_: [SimpleNamespace(T_cam_obj=poses[id(crop)])
                                                             for crop, _, _ in items])
        figures = summarise(evaluate_samples(truth, samples, parts, baselines=False, quiet=True),
                            {p.name: p for p in parts.values()})["densefusion_refined"]["all"]
        assert figures["instances"] == held["densefusion_refined"]["all"]["instances"]
        assert figures["add_s_accuracy_0.1d"] == accuracy, (shift_d, figures)
        assert figures["t_err_median_cm"] == pytest.approx(100 * shift_d * np.median(
            [parts[s.obj_id].diameter_m for s in samples]), abs=1e-9)


def test_eval_with_baselines_writes_json(trained, tiny_bop, tmp_path, capsys):
    out, _ = trained
    js = tmp_path / "eval.json"
    assert main(["eval", "object_pose", "--weights", str(out / "model.pt"), "--data", str(tiny_bop / "val"),
                 "--max-instances", "3", "--json", str(js), "--figure", str(tmp_path / "poses.jpg")]) == 0
    printed = capsys.readouterr().out
    assert "icp_global" in printed and "ADD(-S)<0.1d" in printed
    saved = json.loads(js.read_text())
    assert saved["instances"] == 3 and saved["summary"]["icp_centroid"]["all"]["instances"] == 3
    assert "command" in saved and "machine" in saved
    from PIL import Image
    assert Image.open(tmp_path / "poses.jpg").width in (640, 2 * 640)   # the 3 instances' frames, 2 per row


def test_resume_with_other_parts_is_refused(trained, tmp_path, tiny_bop):
    out, _ = trained
    cfg = tmp_path / "other.yaml"
    cfg.write_text(CLOSE_CELL_YAML.replace("names: [gear, bracket, bolt]", "names: [pipe, flange]"))
    assert main(["synth", "--config", str(cfg), "--frames", "2", "--seed", "5", "--out", str(tmp_path / "d"),
                 "--dataset", "bop", "--quiet"]) == 0
    assert main(["train", "object_pose", "--data", str(tmp_path / "d"), "--out", str(out), "--steps", "3",
                 "--workers", "0", "--batch-size", "2"]) == 2


def test_predictor_bad_input_gives_reasons_not_poses(trained):
    from hrc_perception.geometry import make_K
    from hrc_perception.object_pose.predictor import ObjectPosePredictor
    out, _ = trained
    pred = ObjectPosePredictor(out / "model.pt", refine_iterations=1)
    rgb = np.full((240, 320, 3), 128, np.uint8)
    depth = np.full((240, 320), 0.7, np.float32)
    K = make_K(307.5, 307.5, 160.0, 120.0)
    mask = np.zeros((240, 320), bool)
    mask[100:130, 150:190] = True
    tiny = np.zeros_like(mask)
    tiny[5:7, 5:7] = True
    res = pred.predict(rgb, depth, K, [("gear", mask), ("robot", mask), ("bolt", tiny), ("bracket", mask & False)])
    assert res[1:] == ["unknown_class", "few_depth_pixels", "few_depth_pixels"]
    assert res[0].class_name == "gear" and np.isfinite(res[0].T_cam_obj).all() and 0 < res[0].confidence < 1
    R = res[0].T_cam_obj[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
    assert pred.predict(rgb, np.zeros_like(depth), K, [("gear", mask)]) == ["few_depth_pixels"]
    nan_depth = np.full_like(depth, np.nan)
    assert pred.predict(rgb, nan_depth, K, [("gear", mask)]) == ["few_depth_pixels"]
    assert pred.predict(rgb, depth, K, []) == []


def test_init_from_a_model_and_refuse_other_parts(trained, tiny_bop, tmp_path, capsys):
    out, _ = trained
    args = ["train", "object_pose", "--data", str(tiny_bop / "train"), "--batch-size", "4", "--workers", "0",
            "--points", "32", "--steps", "1", "--refine-steps", "0", "--init", str(out / "model.pt")]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert "starting from" in capsys.readouterr().err
    card = json.loads((tmp_path / "a" / "model_card.json").read_text())
    assert card["initialised_from"]["weights"] == str(out / "model.pt")
    args[args.index("--points") + 1] = "64"                      # more points: the same weights fit
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "model_card.json").read_text())["n_points"] == 64
    from hrc_perception.object_pose.train import train
    with pytest.raises(ValueError, match="crop_px 32"):          # another crop side: refused
        train(tiny_bop / "train", tmp_path / "c", steps=1, refine_steps=0, batch_size=4, n_points=32, crop_px=32,
              workers=0, init=out / "model.pt")


def test_init_with_a_fresh_refiner_keeps_only_the_pose_network(trained, tiny_bop, tmp_path):
    import torch

    from hrc_perception.object_pose.model import load_model
    out, _ = trained
    args = ["train", "object_pose", "--data", str(tiny_bop / "train"), "--batch-size", "4", "--workers", "0",
            "--points", "32"]
    assert main(args + ["--steps", "1", "--refine-steps", "2", "--init", str(out / "model.pt"),
                        "--out", str(tmp_path / "a")]) == 0                      # a trained refiner
    assert main(args + ["--steps", "0", "--refine-steps", "0", "--init", str(tmp_path / "a" / "model.pt"),
                        "--fresh-refiner", "--out", str(tmp_path / "c")]) == 0
    _, net_a, ref_a, _ = load_model(tmp_path / "a" / "model.pt")
    _, net_c, ref_c, card = load_model(tmp_path / "c" / "model.pt")
    for (k, va), vc in zip(net_a.state_dict().items(), net_c.state_dict().values()):
        assert torch.equal(va, vc), k
    assert torch.count_nonzero(ref_a.rot[-1].weight) > 0                          # moved by training
    assert torch.count_nonzero(ref_c.rot[-1].weight) == 0                         # the identity start
    assert card["initialised_from"]["networks"] == "pose network"


def test_refiner_perturbation_moves_half_within_bounds():
    import torch

    from hrc_perception.object_pose.train import perturb_estimates

    torch.manual_seed(3)
    B = 400
    R = torch.linalg.qr(torch.randn(B, 3, 3, dtype=torch.float64))[0]
    R = R * torch.det(R).sign().view(B, 1, 1)  # proper rotations
    t = torch.randn(B, 3, dtype=torch.float64)
    R2, t2 = perturb_estimates(R, t, max_deg=10.0, max_shift_m=0.01)
    eye = torch.eye(3, dtype=torch.float64).expand(B, 3, 3)
    assert torch.allclose(R2 @ R2.transpose(1, 2), eye, atol=1e-9)
    assert torch.allclose(torch.det(R2), torch.ones(B, dtype=torch.float64))
    cos = ((R2 @ R.transpose(1, 2)).diagonal(dim1=1, dim2=2).sum(1) - 1) / 2
    angle_deg = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
    shift = (t2 - t).abs().max(1).values
    moved = ~((R2 == R).flatten(1).all(1) & (t2 == t).all(1))
    assert 0.4 < moved.double().mean() < 0.6
    assert angle_deg.max() <= 10.0 + 1e-6 and shift.max() <= 0.01
    assert angle_deg[moved].median() > 3.0  # spread over the range, not tiny
    assert shift[moved].min() > 0
