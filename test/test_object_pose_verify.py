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
    part = _l_shaped_part()
    grid = DistanceGrid(part, truncate_m=0.01)
    rng = np.random.default_rng(1)
    queries = part[rng.integers(0, len(part), 400)] + rng.normal(0, 0.006, (400, 3))
    exact = np.minimum(cKDTree(part).query(queries)[0], 0.01)
    assert np.abs(grid(queries) - exact).max() <= grid.cell_m * np.sqrt(3) / 2 + 1e-9
    far = np.array([[1.0, 1.0, 1.0], [-0.2, 0.0, 0.0]])
    np.testing.assert_allclose(grid(far), [0.01, 0.01])
    assert grid(queries.reshape(20, 20, 3)).shape == (20, 20)


def _observed(part, R, t, seed=2):
    """Camera-frame points of the top face (z = 1 cm) of the posed part, with 1 mm noise."""
    rng = np.random.default_rng(seed)
    top = part[part[:, 2] > 0.008]
    sel = top[rng.choice(len(top), 128, replace=False)]
    return sel @ R.T + t + rng.normal(0, 0.001, (128, 3))


@pytest.mark.parametrize("axis,angle_deg", [("z", 90.0), ("z", 140.0), ("x", 180.0), ("y", 60.0)])
def test_verification_undoes_a_turn_about_the_parts_axes(axis, angle_deg):
    part = _l_shaped_part()
    R_true = Rotation.from_euler("xyz", [160, 10, 30], degrees=True).as_matrix()
    t_true = np.array([0.05, -0.02, 0.8])
    obs = _observed(part, R_true, t_true)
    c = part.mean(axis=0)
    turn = Rotation.from_euler(axis, angle_deg, degrees=True).as_matrix()
    R_est = R_true @ turn
    t_est = t_true + R_true @ c - R_est @ c          # turned about the centroid
    verifier = PoseVerifier([part], [0.12])
    R, t = verifier.verify(0, obs, R_est, t_est)
    angle = np.degrees(np.arccos(np.clip((np.trace(R.T @ R_true) - 1) / 2, -1, 1)))
    assert angle < 1.0
    np.testing.assert_allclose(t, t_true, atol=1e-6)
    # a right estimate stays as it is
    R2, t2 = verifier.verify(0, obs, R_true, t_true)
    np.testing.assert_allclose(R2, R_true)
    np.testing.assert_allclose(t2, t_true)


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
