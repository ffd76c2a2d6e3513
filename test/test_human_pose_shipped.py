"""The shipped spdh human pose model (models/human_pose): its card, and its 3D joints on
rendered people of the small cell (not its training data: another cell size and seed)."""
from pathlib import Path

import numpy as np
import pytest

from hrc_perception.skeletons import COCO17_NAMES

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "human_pose" / "model.pt"
pytestmark = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped human_pose model")


def test_card_names_the_data_the_command_and_held_out_metrics():
    import json
    card = json.loads((SHIPPED.parent / "model_card.json").read_text())
    assert card["component"] == "human_pose" and card["keypoints"] == list(COCO17_NAMES)
    assert card["metrics_data"]["seed"] != card["data"]["seed"]
    assert card["metrics_held_out"]["mpjpe_mm"] > 0 and "train human_pose" in card["training_command"]
    from hrc_perception.training import file_sha256
    assert file_sha256(SHIPPED) == card["sha256"]


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
