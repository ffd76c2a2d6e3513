"""Reach spheres carved by depth: pooling, coverage of every point the depth does not
see through (checked point by point on random scenes), hand-made walls, and the
verdict with and without depth."""
import numpy as np
import pytest

from hrc_perception.geometry import make_K
from hrc_perception.safety.capsules import Capsules, HumanBodyModel, chain_capsules, closest_pair
from hrc_perception.safety.carving import carve_sphere, closest_pair_carved, pool_depth
from hrc_perception.safety.monitor import OK, PROTECTIVE_STOP, WARNING, MonitorParams, PersonState, RobotState, assess
from hrc_perception.skeletons import COCO17_NAMES

K = make_K(600.0, 600.0, 319.5, 239.5)
W, H = 640, 480


def point_segment_distance(p, a, b):
    """Distances [P, S] of points p [P, 3] to segments a-b [S, 3]."""
    ab = b - a
    t = np.clip(np.einsum("psi,si->ps", p[:, None] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    return np.linalg.norm(p[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1)


def test_pool_depth_takes_the_minimum_and_unknown_blocks():
    d = np.full((20, 30), 3.0, np.float32)
    d[1, 2] = 2.5              # block (0, 0): min 2.5
    d[9, 9] = 0.0              # block (1, 1): a hole -> unknown
    d[12, 20] = np.nan         # block (1, 2): NaN -> unknown
    d[3, 20] = np.inf          # block (0, 2): inf (no return: perhaps a dark surface) -> unknown
    d[4, 25] = -1.0            # block (0, 3), cut by the edge anyway
    p = pool_depth(d, K, block_px=8)
    assert p.depth_m.shape == (3, 4)          # 20 / 8 and 30 / 8 rounded up
    assert p.depth_m[0, 0] == pytest.approx(2.5)
    assert p.depth_m[1, 1] == 0 and p.depth_m[1, 2] == 0 and p.depth_m[0, 2] == 0
    assert p.depth_m[0, 1] == pytest.approx(3.0)
    # blocks cut by the right and bottom edges are unknown
    assert (p.depth_m[2, :] == 0).all() and (p.depth_m[:, 3] == 0).all()
    with pytest.raises(ValueError, match="H, W"):
        pool_depth(np.zeros((2, 3, 4)), K)


def _kept(points, depth_m, margin_m):
    """Points [P, 3] the raw depth does not see through (outside the image or at an
    invalid pixel count as kept)."""
    uv = points[:, :2] / points[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    d = np.zeros(len(points))
    d[inside] = depth_m[v[inside], u[inside]]
    return ~inside | (d <= 0) | (points[:, 2] >= d - margin_m)


@pytest.mark.parametrize("seed", range(6))
def test_carved_capsules_cover_every_point_not_seen_through(seed):
    rng = np.random.default_rng(seed)
    # A scene: a slanted far wall, a near box, holes; a sphere partly behind the box,
    # partly in free space, sometimes cut by the image border.
    vv, uu = np.mgrid[0:H, 0:W]
    depth = (3.5 + 0.002 * (uu - 320) * rng.uniform(-1, 1)).astype(np.float32)
    u0, v0 = rng.integers(100, 500), rng.integers(80, 380)
    depth[max(v0 - 90, 0):v0 + 90, max(u0 - 110, 0):u0 + 110] = rng.uniform(1.5, 2.5)
    depth[rng.random((H, W)) < 0.002] = 0.0
    center = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.0), rng.uniform(2.0, 3.0)])
    radius, margin = rng.uniform(0.3, 0.9), 0.05
    pooled = pool_depth(depth, K, block_px=8)
    carved = carve_sphere(center, radius, pooled, margin, max_blocks=24)
    # points of the sphere the depth does not see through
    p = rng.normal(size=(20000, 3))
    p = center + p / np.linalg.norm(p, axis=1, keepdims=True) * radius * rng.random((20000, 1)) ** (1 / 3)
    kept = p[_kept(p, depth, margin)]
    assert len(kept) > 0
    assert carved is not None      # every scene here has something to carve
    a, b, pad = carved
    assert pad > 0 and len(a) > 0
    covered = (point_segment_distance(kept, a, b) <= pad + 1e-9).any(axis=1)
    assert covered.all(), f"{(~covered).sum()} of {len(kept)} kept points outside the carved capsules"


def test_free_space_in_front_of_a_far_wall_is_carved_away():
    # A wall at 4 m, 1 m behind the sphere (z 2.5 m, r 0.5): the camera sees through all
    # of it. The depth contradicts a limb there, so the whole sphere is kept.
    depth = np.full((H, W), 4.0, np.float32)
    assert carve_sphere([0, 0, 2.5], 0.5, pool_depth(depth, K), 0.05) is None
    # A box in front of the sphere's right half (x > 0): only that half is kept.
    depth[:, 320:] = 1.5
    a, b, pad = carve_sphere([0, 0, 2.5], 0.5, pool_depth(depth, K), 0.05)
    assert (a[:, 0] / a[:, 2]).min() > -pad     # every kept ray looks right of the centre
    left_probe = np.array([[-1.0, 0, 2.5]])
    d = point_segment_distance(left_probe, a, b).min() - pad
    assert 1.0 - pad - 0.02 <= d <= 1.0 + 1e-9     # whole sphere: 0.5


def test_holes_and_the_image_border_carve_nothing():
    depth = np.full((H, W), 4.0, np.float32)
    depth[200:280, 280:360] = 0.0              # a hole in front of the sphere's centre
    a, b, pad = carve_sphere([0, 0, 2.5], 0.4, pool_depth(depth, K), 0.05)
    # the rays through the hole keep their whole chord (from the sphere's near side)
    assert a[:, 2].min() < 2.5 - 0.4 + 0.05
    # a sphere mostly left of the image: the outside part is kept
    a, b, pad = carve_sphere([-2.0, 0, 2.0], 0.6, pool_depth(np.full((H, W), 4.0, np.float32), K), 0.05)
    assert (a[:, 0] * K[0, 0] / a[:, 2] + K[0, 2] < 0).all()
    # spheres reaching the camera plane are not carved
    assert carve_sphere([0, 0, 0.5], 0.6, pool_depth(depth, K), 0.05) is None


def _person(known: dict[str, tuple[float, float, float]]) -> np.ndarray:
    p = np.full((17, 3), np.nan)
    for name, xyz in known.items():
        p[COCO17_NAMES.index(name)] = xyz
    return p


# A person 3 m away with unknown knees and head, hips at y = 0; the robot arm at the same
# depth, its hand 1.35 m left of the left hip: within the 1.38 m reach sphere of that
# hip's leg, but every point behind the robot (its shadow) is out of the leg's reach.
PERSON = _person({"left_shoulder": (0.7, -0.5, 3.0), "right_shoulder": (1.1, -0.5, 3.0), "left_hip": (0.75, 0.0, 3.0),
                  "right_hip": (1.05, 0.0, 3.0), "left_elbow": (0.65, -0.2, 3.0), "right_elbow": (1.15, -0.2, 3.0),
                  "left_wrist": (0.65, 0.05, 3.0), "right_wrist": (1.15, 0.05, 3.0)})
ROBOT_NAMES = ["base", "elbow", "hand"]
ROBOT = np.array([[-0.75, 0.4, 3.0], [-0.75, -0.1, 3.0], [-0.6, -0.1, 3.0]])


def _scene_depth(legs_hidden_by_table: bool) -> np.ndarray:
    """Depth of the scene: a far wall at 5 m; the person's torso and arms at 3 m (no legs:
    the camera sees the wall where they could be); the robot; below image row 260 a
    table front at 2.2 m when the legs are hidden by it."""
    depth = np.full((H, W), 5.0, np.float32)
    depth[60:260, 440:540] = 3.0          # the person's torso and arms
    depth[210:330, 160:210] = 3.0         # the robot
    if legs_hidden_by_table:
        depth[260:, :] = 2.2
    return depth


def test_carving_moves_a_hidden_leg_away_only_where_the_camera_sees():
    body = HumanBodyModel()
    robot = chain_capsules(ROBOT_NAMES, ROBOT, 0.1)
    own, spheres, end_r = body.cover(PERSON)
    # the legs from the hips, the head from a shoulder
    assert sorted(spheres.names_a) == ["left_hip", "left_shoulder", "right_hip"]
    whole = closest_pair(body.capsules(PERSON), robot).distance_m
    free = closest_pair_carved(own, spheres, end_r, robot, pool_depth(_scene_depth(False), K), 0.05)
    table = closest_pair_carved(own, spheres, end_r, robot, pool_depth(_scene_depth(True), K), 0.05)
    arms = closest_pair(own, robot).distance_m
    # legs in plain view of free space below the hips: the reach spheres are carved to
    # the person's own silhouette, so the arms (or the carved legs) decide
    assert free.distance_m > whole + 0.3
    assert free.distance_m <= arms + 1e-9
    # legs behind a table: the space behind it stays possible, nearer than in free view
    assert whole <= table.distance_m < free.distance_m
    # with no depth known (all holes) nothing is carved
    unknown = closest_pair_carved(own, spheres, end_r, robot, pool_depth(np.zeros((H, W)), K), 0.05)
    assert unknown.distance_m == pytest.approx(whole)


def test_verdict_with_depth_is_never_nearer_than_without():
    # a person measured at 0.2 m/s, the ISO 13855 speed floors lowered to that for this check
    params = MonitorParams(min_human_speed_mps=0.0, min_arm_speed_mps=0.0)
    robot = RobotState(ROBOT_NAMES, ROBOT, 0.0, 0.5)
    people = [PersonState(1, PERSON, 0.0, 0.2, 0.2)]
    without = assess(robot, people, 0.0, params)
    with_depth = assess(robot, people, 0.0, params, depth=pool_depth(_scene_depth(False), K))
    assert without.level == PROTECTIVE_STOP           # a leg anywhere within 1.38 m of a hip
    assert with_depth.min_distance_m > without.min_distance_m + 0.3
    assert with_depth.level in (OK, WARNING)
    # no reach spheres configured: depth changes nothing
    no_reach = MonitorParams(body=HumanBodyModel(cover_unknown=False))
    assert assess(robot, people, 0.0, no_reach, depth=pool_depth(_scene_depth(False), K)).min_distance_m == \
        pytest.approx(assess(robot, people, 0.0, no_reach).min_distance_m)


@pytest.mark.parametrize("seed", range(5))
def test_carved_pair_is_the_nearest_of_every_carved_capsule(seed):
    """closest_pair_carved (nearest spheres first, capsules culled by the robot's bounding
    sphere) against measuring every capsule of every carved sphere."""
    rng = np.random.default_rng(seed)
    body = HumanBodyModel()
    depth = np.full((H, W), 4.5, np.float32)
    depth[rng.integers(0, 200):rng.integers(250, 480), rng.integers(0, 300):rng.integers(350, 640)] = \
        rng.uniform(2.0, 3.0)
    pooled = pool_depth(depth, K)
    for _ in range(10):
        person = PERSON + [rng.uniform(-0.8, 0.8), rng.uniform(-0.3, 0.3), rng.uniform(-0.5, 0.5)]
        robot = chain_capsules(ROBOT_NAMES, ROBOT + [rng.uniform(0.0, 1.2), 0, rng.uniform(-0.5, 0.5)], 0.1)
        own, spheres, end_r = body.cover(person)
        got = closest_pair_carved(own, spheres, end_r, robot, pooled, 0.05)
        ref = closest_pair(own, robot).distance_m
        for k in range(len(spheres)):
            whole = closest_pair(Capsules(spheres.a[[k]], spheres.b[[k]], spheres.radius[[k]], ["s"], ["s"]),
                                 robot).distance_m
            carved = carve_sphere(spheres.a[k], spheres.radius[k] - end_r[k], pooled, 0.05)
            if carved is not None:
                a, b, pad = carved
                caps = Capsules(a, b, np.full(len(a), pad + end_r[k]), ["s"] * len(a), ["s"] * len(a))
                whole = max(whole, closest_pair(caps, robot).distance_m)
            ref = min(ref, whole)
        assert got.distance_m == pytest.approx(ref, abs=1e-9)
