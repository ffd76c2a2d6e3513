"""Pose verification: turns about the part's axes, the distance grid, recovery of a
turned pose from observed points, and the part points in the model file."""
import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

torch = pytest.importorskip("torch")

from hrc_perception.object_pose.model import BuildConfig, load_part_points, save_model  # noqa: E402
from hrc_perception.object_pose.verify import DistanceGrid, PoseVerifier, axis_turns  # noqa: E402


def _l_shaped_part(n=1500, seed=0) -> np.ndarray:
    """[n, 3] points on a flat L: a 10 x 2 cm bar with a 2 x 6 cm arm at one end,
    1 cm thick (no symmetry), model frame, metres."""
    rng = np.random.default_rng(seed)
    bar = rng.uniform([-0.05, -0.01, 0.0], [0.05, 0.01, 0.01], (n // 2, 3))
    arm = rng.uniform([0.03, 0.01, 0.0], [0.05, 0.07, 0.01], (n - n // 2, 3))
    return np.concatenate([bar, arm])


def test_axis_turns_are_rotations_identity_first():
    turns = axis_turns(10.0)
    assert turns.shape == (1 + 3 * 35, 3, 3)
    np.testing.assert_allclose(turns[0], np.eye(3))
    np.testing.assert_allclose(turns @ np.swapaxes(turns, 1, 2), np.broadcast_to(np.eye(3), turns.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(turns), 1.0)
    np.testing.assert_allclose(turns[1], Rotation.from_euler("x", 10, degrees=True).as_matrix())
    assert len(axis_turns(90.0)) == 1 + 3 * 3
    for bad in (0.0, -5.0, 200.0):
        with pytest.raises(ValueError):
            axis_turns(bad)


def test_distance_grid_is_within_half_a_cell_diagonal_of_the_exact_distance():
    """Distances and nearest points looked up for points posed by a camera pose (here
    the identity and a shifted, turned one: the same model-frame points)."""
    part = _l_shaped_part()
    grid = DistanceGrid(part, truncate_m=0.01)
    rng = np.random.default_rng(1)
    queries = part[rng.integers(0, len(part), 400)] + rng.normal(0, 0.006, (400, 3))
    R = Rotation.from_euler("xyz", [30, -50, 120], degrees=True).as_matrix()
    t = np.array([0.1, -0.2, 0.9])
    cells = grid.posed(np.concatenate([queries, queries @ R.T + t]), np.stack([np.eye(3), R]), np.stack([0 * t, t]))
    exact, nearest = cKDTree(part).query(queries)
    half_diagonal = grid.cell_m * np.sqrt(3) / 2
    for h, rows in ((0, slice(0, 400)), (1, slice(400, 800))):
        assert np.abs(grid.distance_m[cells[rows, h]] - np.minimum(exact, 0.01)).max() <= half_diagonal + 1e-6
        # the surface point stored for the cell is as near to its centre as the exact nearest point
        found = np.linalg.norm(grid.nearest_m[cells[rows, h]] - queries, axis=1)
        assert (found <= exact + 2 * half_diagonal + 1e-6).all()
    far = np.array([[1.0, 1.0, 1.0], [-0.2, 0.0, 0.0]])
    np.testing.assert_allclose(grid.distance_m[grid.posed(far, np.eye(3)[None], np.zeros((1, 3)))[:, 0]], 0.01)


def _observed(part, R, t, seed=2):
    """Camera-frame points of the top face (z = 1 cm) and the bar's front face
    (y = -1 cm) of the posed part, with 1 mm noise."""
    rng = np.random.default_rng(seed)
    top = part[(part[:, 2] > 0.008) | (part[:, 1] < -0.008)]
    sel = top[rng.choice(len(top), 128, replace=False)]
    return sel @ R.T + t + rng.normal(0, 0.001, (128, 3))


def _angle_deg(R_a, R_b) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R_a.T @ R_b) - 1) / 2, -1, 1))))


@pytest.mark.parametrize("axis,angle_deg,shift_m", [("z", 90.0, 0.0), ("z", 140.0, 0.01), ("x", 180.0, 0.0),
                                                    ("y", 60.0, 0.015), ("z", 33.0, 0.01)])
def test_verification_undoes_a_turn_about_the_parts_axes(axis, angle_deg, shift_m):
    """A turn of the estimate (not a multiple of the 10-degree step in the last case),
    its centroid off by shift_m as well: the fitted turn finds the pose to within a
    few degrees and millimetres (the grid's cell is 2 mm, the part's points ~3 mm
    apart; an ADD of 0.1 d is 12 mm here)."""
    part = _l_shaped_part()
    R_true = Rotation.from_euler("xyz", [160, 10, 30], degrees=True).as_matrix()
    t_true = np.array([0.05, -0.02, 0.8])
    obs = _observed(part, R_true, t_true)
    c = part.mean(axis=0)
    turn = Rotation.from_euler(axis, angle_deg, degrees=True).as_matrix()
    R_est = R_true @ turn
    t_est = t_true + R_true @ c - R_est @ c + np.array([shift_m, -shift_m, 0.0])
    verifier = PoseVerifier([part], [0.12])
    R, t = verifier.verify(0, obs, R_est, t_est)
    assert _angle_deg(R, R_true) < 6.0
    assert np.linalg.norm(t - t_true) < 6e-3
    # a right estimate stays right
    R2, t2 = verifier.verify(0, obs, R_true, t_true)
    assert _angle_deg(R2, R_true) < 6.0
    assert np.linalg.norm(t2 - t_true) < 6e-3


def test_alignment_converges_from_a_moderate_error_and_keeps_poses_without_inliers():
    part = _l_shaped_part()
    R_true = Rotation.from_euler("xyz", [20, -40, 75], degrees=True).as_matrix()
    t_true = np.array([-0.1, 0.05, 0.9])
    obs = _observed(part, R_true, t_true)
    R0 = R_true @ Rotation.from_rotvec(np.radians(15.0) * np.array([0.6, 0.0, 0.8])).as_matrix()
    t0 = t_true + np.array([0.008, -0.006, 0.0])
    far_t = t_true + np.array([1.0, 0.0, 0.0])                     # no observed point near the part
    verifier = PoseVerifier([part], [0.12])
    R, t = verifier.align(0, obs, np.stack([R0, R0]), np.stack([t0, far_t]), iterations=10)
    assert _angle_deg(R[0], R_true) < 5.0
    assert np.linalg.norm(t[0] - t_true) < 5e-3
    np.testing.assert_allclose(np.linalg.det(R[0]), 1.0)
    np.testing.assert_array_equal(R[1], R0)
    np.testing.assert_array_equal(t[1], far_t)
    before, after = verifier.score_m(0, obs, np.stack([R0, R[0]]), np.stack([t0, t[0]]))
    assert after < 0.5 * before


def test_symmetric_parts_are_not_verified():
    part = _l_shaped_part()
    R_true = np.eye(3)
    t_true = np.array([0.0, 0.0, 0.7])
    obs = _observed(part, R_true, t_true)
    turned = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    verifier = PoseVerifier([part, part], [0.12, 0.12], symmetric=[True, False])
    R, t = verifier.verify(0, obs, turned, t_true)
    np.testing.assert_array_equal(R, turned)
    assert _angle_deg(verifier.verify(1, obs, turned, t_true)[0], R_true) < 6.0
    with pytest.raises(ValueError, match="2 point sets, 2 diameters and 1 symmetry flags"):
        PoseVerifier([part, part], [0.12, 0.12], symmetric=[True])


def test_part_points_travel_in_the_model_file(tmp_path):
    build = BuildConfig(num_classes=2, n_points=32)
    net, ref = build.build()
    points = [_l_shaped_part(200, 0), _l_shaped_part(300, 1)]
    save_model(tmp_path / "with.pt", build, net, ref, {"classes": ["a", "b"]}, points)
    loaded = load_part_points(tmp_path / "with.pt")
    assert [p.shape for p in loaded] == [(200, 3), (300, 3)]
    np.testing.assert_allclose(loaded[1], points[1].astype(np.float32))
    save_model(tmp_path / "without.pt", build, net, ref, {"classes": ["a", "b"]})
    assert load_part_points(tmp_path / "without.pt") is None
    with pytest.raises(ValueError, match="1 part point sets for 2 classes"):
        save_model(tmp_path / "bad.pt", build, net, ref, {"classes": ["a", "b"]}, points[:1])
