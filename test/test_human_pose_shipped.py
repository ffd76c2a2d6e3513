"""The shipped spdh human pose model (models/human_pose), run: its card matches the file; on a
small held-out slice of the short-episode cell rendered here with a seed no training, tuning
or evaluation used, `hrc-perception eval human_pose`'s synthetic evaluation (true masks)
gives 3D joints close to the README's figures; and on rendered people of the small cell
(another cell size) its joints are close and its 2D joints are its 3D ones projected."""
from pathlib import Path

import numpy as np
import pytest

from hrc_perception.skeletons import COCO17_NAMES

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "human_pose" / "model.pt"
pytestmark = [pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped human_pose model"),
              pytest.mark.usefixtures("one_torch_thread")]
# The held-out slice: config/cell_short_episodes.yaml (the cell of the training crops and of the
# README's synthetic evaluation), two frames 15 frames (1 s) apart in each of 24 episodes, at a
# different phase of each: 48 frames, 40 people with >= 6 visible joints. Seed 9301: no synth
# run of the README or of any model card uses it (human pose: training crops 2000, tuning 2100,
# held out 1300, 1330, 1340; the README keeps 9000-9999 for these slices), nor does any other test.
SLICE_SEED, SLICE_EPISODES = 9301, 24


@pytest.fixture(scope="module")
def held_out_frames():
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    cfg = load_cell_config(REPO / "config" / "cell_short_episodes.yaml")
    run = SynthRun(cfg, SLICE_SEED, REPO / "config")
    n = cfg.sequence.episode_frames
    return [run.frame(e * n + (5 * e + k * n // 2) % n) for e in range(SLICE_EPISODES) for k in (0, 1)]


def test_card_matches_the_weights():
    import json

    from hrc_perception.human_pose.spdh_backend import SpdhBackend
    from hrc_perception.training import file_sha256
    card = json.loads((SHIPPED.parent / "model_card.json").read_text())
    assert file_sha256(SHIPPED) == card["sha256"]
    backend = SpdhBackend(SHIPPED)          # refuses a file that is not a human_pose model of the COCO-17 joints
    assert card["keypoints"] == backend.card["keypoints"] == list(COCO17_NAMES)
    assert card["component"] == backend.card["component"] == "human_pose"


def check_slice_figures(res: dict) -> None:
    """The spdh row of :func:`hrc_perception.human_pose.evaluate.evaluate_synthetic` on the slice
    (visible joints with confidence >= 0.3, before smoothing). Measured on it with the model of
    issue 24 (the README's tuning seed 2100 and held-out seed 1340 in brackets): MPJPE 33.8 mm
    (47.4, 39.9), median 25.6 mm (31.9, 27.1), PCK@10cm 0.961 (0.913, 0.935), 96.5% of the
    visible joints given (95%, 96%). The thresholds sit a little past those (the slice is
    deterministic: the margin is for floating point and small changes, not for another draw); an
    untrained or perturbed network, depth in mm, a crop input off in scale or with x and y swapped,
    or a decoder with the wrong intrinsics or depth range fails them."""
    assert res["people"] == 40
    b = res["backends"]["spdh"]
    assert b["visible_joints_returned"] >= 0.94, b
    assert b["mpjpe_mm"] <= 38.0 and b["median_error_mm"] <= 28.0 and b["pck3d_10cm"] >= 0.94, b


def test_joints_of_the_held_out_slice(held_out_frames):
    from hrc_perception.human_pose.evaluate import evaluate_synthetic
    from hrc_perception.human_pose.spdh_backend import SpdhBackend
    check_slice_figures(evaluate_synthetic({"spdh": SpdhBackend(SHIPPED)}, held_out_frames))


def test_joints_of_rendered_people(small_frames):
    from hrc_perception.human_pose.spdh_backend import SpdhBackend
    backend = SpdhBackend(SHIPPED)
    errs = []
    for f in small_frames:
        depth_m = f.depth_mm / 1000.0
        for h in f.humans:
            vis = h.keypoints.visibility == 2
            mask = f.instance_mask == h.instance_id
            if vis.sum() < 10:
                continue
            rows, cols = np.nonzero(mask)
            box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], float)
            xyz, conf, uv = backend.estimate_3d(depth_m, f.K, box, mask)
            ok = vis & (conf > 0.3)
            errs += np.linalg.norm(xyz[ok] - h.keypoints.xyz_cam_m[ok], axis=1).tolist()
            # the 2D joints are the 3D ones projected
            z = xyz[ok, 2]
            np.testing.assert_allclose(uv[ok, 0], f.K[0, 0] * xyz[ok, 0] / z + f.K[0, 2], atol=1e-6)
    assert len(errs) >= 40
    assert np.median(errs) < 0.10, np.median(errs)
