"""The pose picture: estimates drawn where the part projects, labelled good or bad by
ADD(-S) < 0.1 d, skipped instances labelled, tiles written to a file."""
import numpy as np
from PIL import Image

from hrc_perception.object_pose.data import PartInfo
from hrc_perception.object_pose.figure import BAD, GOOD, draw_frame_poses

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def _part():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.04, 0.04, (2000, 3)).astype(np.float32)
    return PartInfo("block", pts, float(np.linalg.norm(pts.max(0) - pts.min(0))), False)


def _pose(x_m):
    T = np.eye(4)
    T[:3, 3] = [x_m, 0.0, 0.8]
    return T


def _has_color(img, color):
    return bool(np.all(img == np.array(color, np.uint8), axis=-1).any())


def test_exact_estimate_is_labelled_good_and_drawn_on_the_part():
    part = _part()
    rgb = np.zeros((480, 640, 3), np.uint8)
    out = draw_frame_poses(rgb, K, [(part, _pose(0.0), _pose(0.0))])
    changed = np.any(out != rgb, axis=-1)
    assert changed[215:265, 295:345].mean() > 0.1          # the part's points (+-25 px around the centre)
    assert not changed[:, :150].any()                     # nothing far away
    assert _has_color(out, GOOD) and not _has_color(out, BAD)


def test_estimate_off_by_5_cm_is_labelled_bad_and_skips_are_labelled():
    part = _part()
    rgb = np.zeros((480, 640, 3), np.uint8)
    out = draw_frame_poses(rgb, K, [(part, _pose(0.05), _pose(0.0))])
    assert _has_color(out, BAD) and not _has_color(out, GOOD)
    skipped = draw_frame_poses(rgb, K, [(part, None, _pose(0.0))])
    assert _has_color(skipped, BAD)
    nan = draw_frame_poses(rgb, K, [(part, np.full((4, 4), np.nan), _pose(0.0))])
    assert _has_color(nan, BAD)


def test_eval_writes_the_figure(tmp_path):
    """pose_figure tiles the chosen frames into one image file."""
    from hrc_perception.object_pose.data import PoseSample
    from hrc_perception.object_pose.figure import pose_figure

    samples = [PoseSample(None, K, 1, _pose(0.0), "000000", i, 0) for i in range(6)]  # crops are not drawn
    path = pose_figure(samples, {1: _part()}, lambda s: _pose(0.0), lambda s: np.zeros((480, 640, 3), np.uint8),
                       tmp_path / "poses.png", frames=3, columns=2, width_px=640)
    img = Image.open(path)
    assert img.size == (1280, 960)                         # 3 tiles of 640 x 480 in 2 columns
    assert _has_color(np.asarray(img), GOOD)
