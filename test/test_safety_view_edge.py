"""The distance to the space beside a camera's view (safety/view_edge.py): never more than
the true distance to a point the camera cannot see."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hrc_perception.safety.capsules import Capsules
from hrc_perception.safety.view_edge import frustum_planes, view_edge_distance

W, H = 640, 480
K = np.array([[615.0, 0, 320.0], [0, 615.0, 240.0], [0, 0, 1]])
NEAR, FAR = 0.28, 6.0


def seen(points: np.ndarray) -> np.ndarray:
    """bool [N]: the camera sees each point [N, 3] (inside the image and the depth range)."""
    z = points[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * points[:, 0] / z + K[0, 2]
        v = K[1, 1] * points[:, 1] / z + K[1, 2]
    return (z >= NEAR) & (z <= FAR) & (u >= -0.5) & (u <= W - 0.5) & (v >= -0.5) & (v <= H - 0.5)


def sphere(c, r) -> Capsules:
    c = np.asarray(c, float)
    return Capsules(c[None], c[None], np.array([float(r)]), ["j"], ["j"])


@settings(max_examples=300, deadline=None)
@given(u=st.floats(0, W - 1), v=st.floats(0, H - 1), z=st.floats(0.5, 5.5), r=st.floats(0.0, 0.2),
       seed=st.integers(0, 2 ** 31))
def test_everything_nearer_than_the_distance_is_in_view(u, v, z, r, seed):
    c = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
    d, k, end, foot = view_edge_distance(sphere(c, r), frustum_planes(K, W, H, NEAR, FAR))
    reach = d + r                               # from the centre
    if reach <= 0:
        return
    dirs = np.random.default_rng(seed).normal(size=(400, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    assert seen(c + 0.999 * reach * dirs).all()     # a lower bound: all of the ball is seen
    assert not seen((c + 1.001 * (foot - c))[None])[0] or np.linalg.norm(foot - c) < 1e-9   # the foot is the edge
    assert math.isclose(np.linalg.norm(foot - c), reach, rel_tol=1e-9, abs_tol=1e-9)


def test_a_capsule_reaching_out_of_view_overlaps_and_nan_is_not_a_distance():
    planes = frustum_planes(K, W, H, NEAR, FAR)
    inside, outside = np.array([0.0, 0.0, 2.0]), np.array([3.0, 0.0, 2.0])     # u = 1242: beyond the right border
    caps = Capsules(inside[None], outside[None], np.array([0.05]), ["a"], ["b"])
    d, k, _, _ = view_edge_distance(caps, planes)
    assert d < 0 and k == 1                         # the b end, outside
    nan = Capsules(np.full((1, 3), np.nan), inside[None], np.array([0.05]), ["a"], ["b"])
    assert not view_edge_distance(nan, planes)[0] >= 0
    assert view_edge_distance(Capsules.empty(), planes)[0] == math.inf
