"""The shipped LM-O pose weights (``models/object_pose_lmo``, trained on the synthetic cell
with the Linemod-Occluded meshes): they load and match their card; on the real LM-O frame
with depth (``../shared/realdata/lmo``, skipped where it is absent) with masks rendered from
the ground-truth poses, verification places most parts within 0.1 d."""
import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from hrc_perception.object_pose.predictor import ObjectPosePredictor  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "object_pose_lmo"
LMO = REPO.parent / "shared" / "realdata" / "lmo"
LMO_CLASSES = [f"obj_{i:06d}" for i in (1, 5, 6, 8, 9, 10, 11, 12)]


@pytest.fixture(scope="module")
def card():
    return json.loads((MODEL_DIR / "model_card.json").read_text())


def test_card_describes_the_weights(card):
    assert hashlib.sha256((MODEL_DIR / card["weights"]).read_bytes()).hexdigest() == card["sha256"]
    pred = ObjectPosePredictor(MODEL_DIR / card["weights"], render_compare=True)
    assert pred.classes == card["classes"] == LMO_CLASSES
    assert pred.verifier is not None and pred.render_compare is not None    # the file carries the part points
    assert card["symmetric"] == [False] * 5 + [True, True, False]           # eggbox and glue
    assert (MODEL_DIR / card["weights"]).stat().st_size < 25e6


@pytest.mark.skipif(not (LMO / "test" / "000002" / "depth").is_dir(), reason="no ../shared/realdata/lmo")
def test_real_frame_with_ground_truth_masks():
    """Measured (benchmarks/results/object_pose_lmo_real.json): 2 of 8 within 0.1 d refined (the
    symmetric eggbox and glue), 6 of 8 verified (the ape and the holepuncher stay turned), 6 of 8
    verified and fitted by render-and-compare. The thresholds are those counts: one real frame, a
    deterministic pipeline."""
    from hrc_perception.object_pose.evaluate import evaluate
    res = evaluate(MODEL_DIR / "model.pt", LMO / "test" / "000002", baselines=False, quiet=True,
                   models=LMO / "models")
    s = res["summary"]
    assert res["instances"] == 8 and res["notes"]["missed"] == {}
    within = {m: round(8 * s[m]["all"]["add_s_accuracy_0.1d"]) for m in s}
    assert within["densefusion_verified"] >= 6 and within["verified_render_compare"] >= 6, within
    assert s["densefusion_verified"]["all"]["t_err_median_cm"] < 2.0
