"""The shipped segmentation weights: they load, match their model card, and find the
people and the robot of a synthetic frame they were not trained on."""
import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from hrc_perception.segmentation.predictor import SegmentationPredictor  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "models/segmentation"


@pytest.fixture(scope="module")
def card():
    return json.loads((MODEL_DIR / "model_card.json").read_text())


def test_card_describes_the_weights(card):
    assert hashlib.sha256((MODEL_DIR / card["weights"]).read_bytes()).hexdigest() == card["sha256"]
    pred = SegmentationPredictor(MODEL_DIR / card["weights"])
    assert pred.class_names == card["classes"] and pred.input_short_side == card["input_short_side"]
    assert card["data"]["seed"] != card["metrics_data"]["seed"]          # held-out metrics
    assert (MODEL_DIR / card["weights"]).stat().st_size < 25e6


def test_finds_people_and_robot_in_an_unseen_frame(small_frames):
    """Every person and the robot with >= 1500 visible pixels, not cut by the image
    border, in the fixture's frames (another seed and a smaller image than training)
    is found: a detection of its class with mask IoU >= 0.5."""
    pred = SegmentationPredictor(MODEL_DIR / "model.pt")
    checked = 0
    for frame in small_frames:
        det = pred.predict(frame.rgb)
        for inst in frame.instances:
            gt = frame.instance_mask == inst.instance_id
            on_border = gt[0].any() or gt[-1].any() or gt[:, 0].any() or gt[:, -1].any()
            if inst.class_name not in ("person", "panda") or gt.sum() < 1500 or on_border:
                continue
            ious = [(m & gt).sum() / (m | gt).sum() for m, c in zip(det.masks, det.class_names) if c == inst.class_name]
            assert max(ious, default=0.0) >= 0.5, (inst.class_name, gt.sum(), ious)
            checked += 1
    assert checked >= 10


def test_card_records_a_learned_appearance_embedding(card):
    """The embedding stage ran on the detector's own training data and, on held-out
    episodes, separates other objects of a class at least as well as the projection it
    started from (the previous model's, for a fine-tuned model), and well in absolute terms."""
    section = card["appearance_embedding"]
    assert section["data"] == card["data"]["path"] and section["identities"] > 100
    before, learned = section["separation_held_out"]["before"], section["separation_held_out"]["learned"]
    assert learned["other_object_same_class"]["under_threshold"] <= before["other_object_same_class"]["under_threshold"]
    assert learned["other_object_same_class"]["under_threshold"] < 0.01
    assert learned["same_object"]["median"] < 0.25 * learned["other_object_same_class"]["median"]
