"""The shipped object pose weights, run: they load and match their model card; on a small
held-out slice of close-up frames rendered here with a seed no training, tuning or
evaluation used, `hrc-perception eval object_pose` finds the poses of most part instances
(main network, refined, verified) close to the card's held-out figures, and the network
gets the crop as it was trained on it."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from hrc_perception.cli import main  # noqa: E402
from hrc_perception.object_pose.predictor import ObjectPosePredictor  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "object_pose"
# The held-out slice: config/cell_parts_closeup.yaml (the card's training and held-out cell),
# 24 frames = 8 episodes of 3, 113 part instances (114 before the synthetic people got heads with
# faces and hair: one part is hidden differently). Seed 9201: no synth run of the README or of
# any model card uses it (object pose: training 500, tuning 650, held out 600, 630; LM-O 700, 800;
# the README keeps 9000-9999 for these slices), nor does any other test, so the networks never
# saw these poses.
SLICE_SEED, SLICE_FRAMES = 9201, 24


@pytest.fixture(scope="module")
def card():
    return json.loads((MODEL_DIR / "model_card.json").read_text())


@pytest.fixture(scope="module")
def held_out_slice(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("object_pose_slice")
    assert main(["synth", "--config", str(REPO / "config" / "cell_parts_closeup.yaml"), "--frames", str(SLICE_FRAMES),
                 "--seed", str(SLICE_SEED), "--out", str(out), "--dataset", "bop", "--quiet"]) == 0
    return out


def test_card_describes_the_weights(card):
    assert hashlib.sha256((MODEL_DIR / card["weights"]).read_bytes()).hexdigest() == card["sha256"]
    pred = ObjectPosePredictor(MODEL_DIR / card["weights"])
    assert pred.classes == card["classes"] and pred.refiner is not None
    assert pred.verifier is not None                                      # the file carries the part points
    assert (MODEL_DIR / card["weights"]).stat().st_size < 25e6


def check_slice_figures(res: dict) -> None:
    """Figures of :func:`hrc_perception.object_pose.evaluate.evaluate` (no baselines) on the
    slice. Measured on it (the card's 945 held-out instances, seed 600, then the README's fresh
    held-out seed 630, in brackets): ADD(-S) under 0.1 diameter 0.912 main network, 0.912
    refined, 0.939 verified (0.912, 0.912, 0.974; 0.920, 0.920, 0.955);
    verified ADD(-S) AUC 0.942 (0.952), median translation error 0.30 cm (0.33), median rotation
    error 4.0 deg (4.0). The thresholds sit a little under those (the slice is deterministic:
    the margin, 3-4 of the 113 instances, is for floating point and small changes, not for another
    draw); an untrained or perturbed network, points in mm or with x and y swapped, or a
    rotation decoded transposed or from a quaternion of the other component order fails them.
    Render-and-compare (10 steps) on the slice (112 instances with a refined pose): 0.946 from the
    refined pose's turns (12 about z, half turns about x and y; symmetric parts kept as refined),
    0.929 from the verified pose (AUC 0.952; verified alone 0.938, AUC 0.942: on this slice that
    fit loses one instance more than it gains)."""
    s = res["summary"]
    assert res["instances"] == 113 and set(s) == {"densefusion", "densefusion_refined", "densefusion_verified",
                                                  "render_compare", "verified_render_compare"}
    acc = {m: s[m]["all"]["add_s_accuracy_0.1d"] for m in s}
    assert acc["densefusion"] >= 0.87 and acc["densefusion_refined"] >= 0.87, acc
    assert acc["densefusion_verified"] >= 0.90 and acc["densefusion_verified"] >= acc["densefusion_refined"], acc
    assert acc["render_compare"] >= 0.92 and acc["verified_render_compare"] >= 0.90, acc
    assert s["verified_render_compare"]["all"]["add_s_auc"] >= 0.94, s["verified_render_compare"]["all"]
    assert s["verified_render_compare"]["all"]["instances"] >= 110, s["verified_render_compare"]["all"]
    ver = s["densefusion_verified"]["all"]
    assert ver["add_s_auc"] >= 0.92 and ver["t_err_median_cm"] <= 0.45 and ver["r_err_median_deg"] <= 6.0, ver


def test_poses_on_the_held_out_slice(held_out_slice):
    from hrc_perception.object_pose.evaluate import evaluate
    check_slice_figures(evaluate(MODEL_DIR / "model.pt", held_out_slice, baselines=False, quiet=True))


def test_the_network_gets_the_crop_as_training_gave_it(held_out_slice):
    """The main network gets the crop's colours in RGB order, ImageNet-normalised (as in
    training, :func:`~hrc_perception.object_pose.dataset.normalised_crop`), and its points in
    metres. The accuracy alone would not catch a colour slip: on the slice, BGR crops give
    ADD(-S) 0.947 verified, crops 4 times too bright 0.939."""
    from hrc_perception.object_pose.data import load_bop_split
    pred = ObjectPosePredictor(MODEL_DIR / "model.pt")
    parts, samples = load_bop_split(held_out_slice, crop_px=pred.build.crop_px, quiet=True)
    s = samples[5]
    seen = []
    hook = pred.posenet.register_forward_pre_hook(lambda module, args: seen.append([a.clone() for a in args]))
    try:
        pred.estimate([(s.crop, pred.classes.index(parts[s.obj_id].name), s.K)])
    finally:
        hook.remove()
    crop, points, choose, _ = (a[0].numpy() for a in seen[0])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])   # ImageNet's, RGB
    np.testing.assert_allclose(crop, ((s.crop.rgb / 255.0 - mean) / std).transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_allclose(points[:, 2], s.crop.depth_m.reshape(-1)[choose], rtol=1e-6)
    assert 0.3 < np.median(points[:, 2]) < 1.5                                  # metres, a close-up camera


def test_the_predictor_fits_a_frames_parts_by_render_and_compare(held_out_slice):
    """estimate(views=) with render_compare: the frame's parts fitted together (under the
    networks' inference mode) give each part the pose of its own fit: from the verified pose
    ('verified') or the best of the refined pose's turns ('turns'; symmetric parts keep the
    refined pose)."""
    from hrc_perception.object_pose.data import load_bop_split
    from hrc_perception.object_pose.render_compare import turned_starts
    for mode in ("verified", "turns"):
        pred = ObjectPosePredictor(MODEL_DIR / "model.pt", render_compare=True, render_compare_starts=mode)
        parts, samples = load_bop_split(held_out_slice, crop_px=pred.build.crop_px, quiet=True, with_views=True)
        frame = [s for s in samples if (s.scene, s.image_id) == (samples[0].scene, samples[0].image_id)]
        items = [(s.crop, pred.classes.index(parts[s.obj_id].name), s.K) for s in frame]
        assert len(items) >= 3 and {pred.symmetric[it[1]] for it in items} == {True, False}
        fitted = pred.estimate(items, views=[s.view for s in frame])
        start = pred.estimate(items, verify=(mode == "verified"))
        rc = pred.render_compare
        for (_, cls, _), s, f, p in zip(items, frame, fitted, start):
            R, t = p.T_cam_obj[:3, :3], p.T_cam_obj[:3, 3]
            if mode == "turns" and pred.symmetric[cls]:          # kept as refined
                np.testing.assert_array_equal(f.T_cam_obj, p.T_cam_obj)
                continue
            Rs, ts = turned_starts(R, t, rc.centroids_m[cls]) if mode == "turns" else (R[None], t[None])
            Rr, tr, loss = rc.refine(cls, s.view, Rs, ts)
            best = int(np.argmin(loss))
            np.testing.assert_allclose(f.T_cam_obj[:3, :3], Rr[best], atol=1e-4)
            np.testing.assert_allclose(f.T_cam_obj[:3, 3], tr[best], atol=1e-5)
    with pytest.raises(ValueError, match="render_compare_starts"):
        ObjectPosePredictor(MODEL_DIR / "model.pt", render_compare=True, render_compare_starts="all")
