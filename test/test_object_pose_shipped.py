"""The shipped object pose weights: they load, match their model card, and estimate the
poses of parts in close-up frames of a seed they were not trained on."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from hrc_perception.cli import main  # noqa: E402
from hrc_perception.object_pose.metrics import add_or_adds_m  # noqa: E402
from hrc_perception.object_pose.predictor import ObjectPosePredictor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "object_pose"


@pytest.fixture(scope="module")
def card():
    return json.loads((MODEL_DIR / "model_card.json").read_text())


def test_card_describes_the_weights(card):
    assert hashlib.sha256((MODEL_DIR / card["weights"]).read_bytes()).hexdigest() == card["sha256"]
    pred = ObjectPosePredictor(MODEL_DIR / card["weights"])
    assert pred.classes == card["classes"] and pred.refiner is not None
    assert pred.verifier is not None                                      # the file carries the part points
    assert card["data"]["seed"] != card["metrics_data"]["seed"]          # held-out metrics
    held = card["metrics_held_out"]
    for method in ("densefusion", "densefusion_refined", "densefusion_verified"):   # every part, every stage
        assert set(held[method]) == {"all", *card["classes"]}
        assert held[method]["all"]["instances"] >= 500
    assert (MODEL_DIR / card["weights"]).stat().st_size < 25e6


def test_poses_of_parts_in_unseen_close_up_frames(tmp_path):
    """Most part instances of two new frames get a pose within 0.2 diameters (ADD(-S));
    an untrained model gets none."""
    from hrc_perception.object_pose.train import load_bop_split
    assert main(["synth", "--config", str(REPO / "config" / "cell_parts_closeup.yaml"), "--frames", "2",
                 "--seed", "4242", "--out", str(tmp_path), "--dataset", "bop", "--quiet"]) == 0
    pred = ObjectPosePredictor(MODEL_DIR / "model.pt")
    parts, samples = load_bop_split(tmp_path, quiet=True)
    results = pred.estimate([(s.crop, pred.classes.index(parts[s.obj_id].name), s.K) for s in samples])
    good = []
    for s, r in zip(samples, results):
        p = parts[s.obj_id]
        d = add_or_adds_m(p.points_m, p.symmetric, r.T_cam_obj[:3, :3], r.T_cam_obj[:3, 3],
                          s.T_cam_obj[:3, :3], s.T_cam_obj[:3, 3])
        good.append(d < 0.2 * p.diameter_m)
    assert len(good) >= 4 and np.mean(good) >= 0.6, good
