"""The depth-space distance on scenes whose geometry is known: a wall, a spherical robot,
rectangles of foreground at chosen places (every figure below follows from them)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrc_perception.safety.background import BackgroundDepth
from hrc_perception.safety.capsules import Capsules
from hrc_perception.safety.depth_space import DepthSpaceParams, depth_space_distance, remove_depth_edges

W, H, F = 320, 240, 300.0
K = np.array([[F, 0, (W - 1) / 2], [0, F, (H - 1) / 2], [0, 0, 1]])
WALL_M = 3.0
ROBOT_C, ROBOT_R = np.array([0.0, 0.0, 2.0]), 0.15
ROBOT = Capsules(ROBOT_C[None], ROBOT_C[None], np.array([ROBOT_R]), ["link"], ["link"])
P = DepthSpaceParams()


def rays():
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    return np.stack([(u - K[0, 2]) / F, (v - K[1, 2]) / F, np.ones((H, W))], axis=-1)


def scene(robot=True) -> np.ndarray:
    """The wall at 3 m and the robot sphere in front of it: exact z-depth [H, W]."""
    r = rays()
    depth = np.full((H, W), WALL_M)
    if robot:
        a = np.einsum("hwi,hwi->hw", r, r)
        b = r @ ROBOT_C
        disc = b * b - a * (ROBOT_C @ ROBOT_C - ROBOT_R ** 2)
        hit = disc >= 0
        depth[hit] = ((b - np.sqrt(np.maximum(disc, 0))) / a)[hit]
    return depth.astype(np.float32)


def put_rect(depth, x0, x1, y0, y1, z):
    """A fronto-parallel rectangle [x0, x1] x [y0, y1] (metres) at depth z, where nearer;
    its pixels' points (camera frame)."""
    u0, u1 = F * x0 / z + K[0, 2], F * x1 / z + K[0, 2]
    v0, v1 = F * y0 / z + K[1, 2], F * y1 / z + K[1, 2]
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    m = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1) & (depth > z)
    depth[m] = z
    return np.stack([(u[m] - K[0, 2]) * z / F, (v[m] - K[1, 2]) * z / F, np.full(m.sum(), z)], axis=1)


def true_distance(points):
    return float((np.linalg.norm(points - ROBOT_C, axis=1) - ROBOT_R).min())


@pytest.fixture(scope="module")
def background():
    return BackgroundDepth(scene(robot=False))


def test_the_robot_alone_is_explained(background):
    res = depth_space_distance(scene(), K, background, ROBOT, P)
    assert res.distance_m == math.inf and res.occupied_blocks == 0 and res.pixel_uv is None
    assert res.explained_px == res.foreground_px > 1000      # the robot's pixels: all of them foreground, explained


def test_a_body_beside_the_robot_at_its_distance(background):
    depth = scene()
    pts = put_rect(depth, 0.5, 0.7, -0.2, 0.2, 2.0)
    res = depth_space_distance(depth, K, background, ROBOT, P)
    truth = true_distance(pts)                  # 0.35 m
    pad = 0.5 * P.block_px * math.sqrt(2) / F * WALL_M
    assert truth - pad - 0.01 <= res.distance_m <= truth, (res.distance_m, truth)
    assert res.robot_joint == "link" and res.pixel_uv[0] > K[0, 2]      # right of the centre, where the body is


def test_what_hides_behind_a_body_counts(background):
    """A body in front of the robot: the space behind it (holding the robot) may hold a
    person too: the distance is an overlap."""
    depth = scene()
    pts = put_rect(depth, -0.1, 0.1, -0.1, 0.1, 1.0)
    assert true_distance(pts) > 0.8
    assert depth_space_distance(depth, K, background, ROBOT, P).distance_m < 0


def test_flying_pixels_and_speckles_are_not_a_body(background):
    depth = scene()
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, H, 40), rng.integers(0, W, 40)
    depth[r, c] = rng.uniform(0.5, 2.9, 40)      # isolated wrong readings, anywhere
    res = depth_space_distance(depth, K, background, ROBOT, P)
    assert res.distance_m == math.inf and res.occupied_blocks == 0
    # the same readings as a 6 x 6 px patch are a body
    depth[100:106, 40:46] = 1.0
    assert depth_space_distance(depth, K, background, ROBOT, P).occupied_blocks >= 1


def test_a_hole_beside_a_body_counts_as_the_body(background):
    depth = scene()
    put_rect(depth, 0.6, 0.8, -0.2, 0.2, 2.0)
    without = depth_space_distance(depth, K, background, ROBOT, P).distance_m
    u0, u1 = int(F * 0.45 / 2.0 + K[0, 2]), int(F * 0.6 / 2.0 + K[0, 2])
    v0, v1 = int(-F * 0.2 / 2.0 + K[1, 2]), int(F * 0.2 / 2.0 + K[1, 2])
    depth[v0:v1, u0:u1 + 1] = 0.0                 # a shadow band between the body and the robot
    res = depth_space_distance(depth, K, background, ROBOT, P)
    # filled up to hole_fill_blocks blocks (3 x 4 px = 8 cm at 2 m) towards the robot
    reach = P.hole_fill_blocks * P.block_px * 2.0 / F
    assert res.filled_holes > 0 and without - reach - 0.02 <= res.distance_m <= without - reach + 0.02
    # far from any body, the same hole is not counted
    depth = scene()
    depth[v0:v1, u0:u1 + 1] = 0.0
    assert depth_space_distance(depth, K, background, ROBOT, P).distance_m == math.inf


def test_no_background_makes_every_reading_foreground():
    depth = scene()
    res = depth_space_distance(depth, K, BackgroundDepth(np.zeros((H, W), np.float32)), ROBOT, P)
    valid = np.count_nonzero(remove_depth_edges(depth, F, P.stereo_baseline_m, P.edge_disparity_px))
    assert res.foreground_px == valid
    # the wall, 1 m behind the robot's centre, is the nearest foreground: it counts
    assert 0.6 < res.distance_m < WALL_M - ROBOT_C[2] - ROBOT_R


def test_invalid_readings_and_sizes(background):
    depth = scene()
    depth[:, :50] = np.nan
    depth[:, 50:60] = np.inf
    depth[:, 60:70] = -1.0
    res = depth_space_distance(depth, K, background, ROBOT, P)
    assert res.distance_m == math.inf and res.invalid_fraction == pytest.approx(70 / W, abs=0.01)
    with pytest.raises(ValueError, match="differ in size"):
        depth_space_distance(depth[:-1], K, background, ROBOT, P)
    with pytest.raises(ValueError):
        DepthSpaceParams(block_px=0)


def test_depth_edges_are_removed_on_both_sides():
    d = np.full((5, 8), 3.0, np.float32)
    d[:, 4:] = 1.0
    out = remove_depth_edges(d, 600.0, 0.05, 1.0)        # disparity 10 px against 30 px
    assert (out[:, 3:5] == 0).all() and (out[:, :3] == 3.0).all() and (out[:, 5:] == 1.0).all()
    assert (remove_depth_edges(d, 600.0, 0.05, 0.0) == d).all()
    # a smooth slanted surface is not an edge, however far: 4.0 to 4.4 m over 8 px is 1.7 px of disparity
    slope = np.tile(np.linspace(4.0, 4.4, 8, dtype=np.float32), (5, 1))
    assert (remove_depth_edges(slope, 600.0, 0.05, 1.0) == slope).all()


@settings(max_examples=40, deadline=None)
@given(x=st.floats(-0.9, 0.9), y=st.floats(-0.6, 0.6), z=st.floats(0.8, 2.8), size=st.floats(0.06, 0.4))
def test_never_farther_than_any_body_point(background, x, y, z, size):
    """Whatever the body's place and size, the estimate is never farther from the robot than
    the body's nearest visible point outside the robot's explain margin (the estimate errs
    near only). Points within the margin are taken for the robot: a body seen only there (a
    fingertip beside a link, the rest hidden behind it) is not seen."""
    depth = scene()
    pts = put_rect(depth, x, x + size, y, y + size, z)
    seen = pts[np.linalg.norm(pts - ROBOT_C, axis=1) - ROBOT_R > P.explain_margin_m]
    res = depth_space_distance(depth, K, background, ROBOT, P)
    if len(seen) >= 4 * P.block_px ** 2:           # a body of at least a few blocks
        assert res.distance_m <= true_distance(seen) + 1e-6


# -- the verdict of the depth path -------------------------------------------------------
from hrc_perception.safety.depth_space import DepthSpaceResult  # noqa: E402
from hrc_perception.safety.monitor import (OK, PROTECTIVE_STOP, UNKNOWN, WARNING, MonitorParams,  # noqa: E402
                                           RobotState, Verdict, assess_depth, worst_of)

MP = MonitorParams()
ROBOT_STATE = RobotState(["a", "b"], np.array([[0.0, 0.0, 2.0], [0.0, -0.3, 2.0]]), 10.0, 0.5, "cam")


def near(d):
    return DepthSpaceResult(d, (100.0, 80.0), "b", np.zeros(3), np.zeros(3))


def test_depth_verdict_levels_and_what_set_them():
    assert assess_depth(ROBOT_STATE, DepthSpaceResult(math.inf), 10.0, "cam", 10.05, MP).level == OK
    stop = assess_depth(ROBOT_STATE, near(0.3), 10.0, "cam", 10.05, MP)
    assert stop.level == PROTECTIVE_STOP and stop.speed_scale == 0.0
    assert "pixel (100, 80)" in stop.reason and stop.closest_robot_joint == "b"
    # S_p at the arm's speed (2 m/s) over T_r + age + T_s, the robot's 0.5 m/s: 0.8 + 0.1 + 0.075 + 0.2 + 0.1
    assert stop.separation_m == pytest.approx(2.0 * (0.1 + 0.05 + 0.3) + 0.5 * 0.15 + 0.5 * 0.5 * 0.3 + 0.2)
    far = assess_depth(ROBOT_STATE, near(stop.separation_m + 0.05), 10.0, "cam", 10.05, MP)
    # WARNING; the speed that keeps S_p within 1.3 m: (1.3 - 1.1 at rest) / (T_r + T_s / 2) = 0.67 m/s
    assert far.level == WARNING and far.speed_scale == pytest.approx(0.2 / 0.3)
    assert assess_depth(ROBOT_STATE, near(5.0), 10.0, "cam", 10.05, MP).level == OK


@pytest.mark.parametrize("robot, result, stamp, frame, now, why", [
    (None, near(5.0), 10.0, "cam", 10.05, "no robot"),
    (ROBOT_STATE, None, 10.0, "cam", 10.05, "no depth-space result"),
    (ROBOT_STATE, near(5.0), None, "cam", 10.05, "no depth-space result"),
    (ROBOT_STATE, near(5.0), 9.0, "cam", 10.05, "depth frame is"),             # stale
    (ROBOT_STATE, near(5.0), 10.2, "cam", 10.05, "after now"),                # from the future
    (ROBOT_STATE, near(5.0), 10.0, "base", 10.05, "not comparable"),
    (ROBOT_STATE, near(float("nan")), 10.0, "cam", 10.05, "not finite"),
    (ROBOT_STATE, near(5.0), 10.0, "cam", float("nan"), "clock"),
    (ROBOT_STATE, DepthSpaceResult(math.inf, lost_background_fraction=0.9), 10.0, "cam", 10.05, "covered"),
    (ROBOT_STATE, "not a result", 10.0, "cam", 10.05, "invalid input"),
])
def test_depth_verdict_is_unknown_without_positive_evidence(robot, result, stamp, frame, now, why):
    v = assess_depth(robot, result, stamp, frame, now, MP)
    assert v.level == UNKNOWN and v.speed_scale == 0.0 and why in v.reason, v.reason


def test_worst_of_takes_the_highest_level_and_the_smallest_speed():
    ok = Verdict(OK, 2.0, 1.0, 1.0, reason="ok")
    warn = Verdict(WARNING, 1.2, 1.0, 0.6, reason="warn")
    slow_ok = Verdict(OK, 1.8, 1.0, 0.4, reason="slow ok")
    v = worst_of(ok, warn, slow_ok)
    assert v.level == WARNING and v.reason == "warn" and v.speed_scale == 0.4
    assert worst_of(ok, Verdict(UNKNOWN, reason="?")).level == UNKNOWN
    assert worst_of(ok, Verdict(UNKNOWN, reason="?")).speed_scale == 0.0
    assert worst_of(Verdict(UNKNOWN, reason="a"), ok, Verdict(UNKNOWN, reason="b")).reason == "a; b"
    assert worst_of().level == UNKNOWN


def test_the_depth_path_on_synthetic_episodes_is_never_ok_while_the_truth_stops(small_run):
    """The evaluation of the depth path alone on the small cell (2 episodes of 5 frames):
    every frame judged against the truth, the empty cell judged too, stage times there. The
    space beside the view taken as guarded (else nothing is ever OK there and the check is empty)."""
    from hrc_perception.safety.evaluate_depth import evaluate_depth_path
    from hrc_perception.safety.monitor import monitor_params
    res = evaluate_depth_path(small_run, [0, 1], monitor_params({}), DepthSpaceParams(unseen_space="guarded"),
                              empty_frames=5, log=lambda *_: None)
    assert res["frames"] == 10 and res["empty_cell_frames"] == 10
    assert sum(res["confusion_estimate_vs_truth"].values()) == 10
    assert res["ok_while_truth_stop"] == 0 and res["ok_while_truth_stop_person_unseen"] == 0
    assert 0 <= res["frames_part_carried"] <= res["frames"]
    assert res["distance_error_visible"]["frames"] + res["distance_error_hidden"]["frames"] > 0
    # never farther than the body surface the camera sees, beyond the sensor's noise
    surface = res["distance_minus_visible_surface"]
    assert surface["frames"] > 0 and surface["max_m"] <= 0.03 and surface["frames_farther_than_2cm"] == 0
    assert set(res["availability_ceiling"]) == {"rule_at_age_0", "rule_at_eval_age"}
    assert set(res["stage_ms_median"]) == {"depth_space", "surface_pose", "verdict"}


def test_a_fresh_skeleton_explains_its_foreground(background):
    """Foreground within person_margin_m of a person's capsules is that person's (judged at the
    person's speed); within two people's, nobody's; a hole beside it is the person's too."""
    depth = scene()
    pts = put_rect(depth, 0.5, 0.7, -0.2, 0.2, 2.0)
    body = Capsules(np.array([[0.6, -0.2, 2.05]]), np.array([[0.6, 0.2, 2.05]]), np.array([0.1]), ["a"], ["b"])
    res = depth_space_distance(depth, K, background, ROBOT, P, people=[(7, body)])
    assert res.distance_m == math.inf and set(res.people) == {7}
    pad = 0.5 * P.block_px * math.sqrt(2) / F * WALL_M
    assert true_distance(pts) - pad - 0.01 <= res.people[7].distance_m <= true_distance(pts)
    # a second person's capsules over the same points: nobody's, unexplained again
    both = depth_space_distance(depth, K, background, ROBOT, P, people=[(7, body), (8, body)])
    assert not both.people and both.distance_m == pytest.approx(res.people[7].distance_m)
    # the person covers only the far half: the near half is unexplained, and decides
    half = Capsules(np.array([[0.68, -0.2, 2.05]]), np.array([[0.68, 0.2, 2.05]]), np.array([0.03]), ["a"], ["b"])
    part = depth_space_distance(depth, K, background, ROBOT, P, people=[(7, half)])
    assert part.distance_m < part.people[7].distance_m
    # a shadow beside the person's body belongs to the person
    u0, u1 = int(F * 0.45 / 2.0 + K[0, 2]), int(F * 0.5 / 2.0 + K[0, 2])
    depth[80:160, u0:u1] = 0.0
    shadow = depth_space_distance(depth, K, background, ROBOT, P, people=[(7, body)])
    assert shadow.filled_holes > 0 and shadow.distance_m == math.inf
    assert shadow.people[7].distance_m < res.people[7].distance_m


def test_depth_verdict_judges_a_person_at_their_speed():
    person = DepthSpaceResult(math.inf, people={3: near(1.0)})
    fast = assess_depth(ROBOT_STATE, person, 10.0, "cam", 10.05, MP)               # no speed given: the arm's
    slow = assess_depth(ROBOT_STATE, person, 10.0, "cam", 10.05, MP, person_speed_mps={3: 0.2})
    assert fast.level == PROTECTIVE_STOP and slow.level == OK and slow.closest_human_id == 3      # S_p 0.44 m
    assert "person 3's foreground" in slow.reason
    # unexplained foreground beside them decides when it is worse
    both = DepthSpaceResult(1.0, (5.0, 5.0), "a", np.zeros(3), np.zeros(3), people={3: near(1.0)})
    assert assess_depth(ROBOT_STATE, both, 10.0, "cam", 10.05, MP, person_speed_mps={3: 0.2}).level == \
        PROTECTIVE_STOP
    bad = assess_depth(ROBOT_STATE, person, 10.0, "cam", 10.05, MP, person_speed_mps={3: float("nan")})
    assert bad.level == UNKNOWN


def test_skeletons_only_ever_lower_the_depth_verdict(small_run):
    """Perfect skeletons of the visible joints, at the people's measured speeds (no floor):
    the frames the robot may move are a superset of those without skeletons, and still never
    OK while the truth stops."""
    from hrc_perception.safety.evaluate_depth import evaluate_depth_path
    from hrc_perception.safety.monitor import monitor_params
    floor0 = monitor_params({"min_arm_speed_mps": 0.0, "min_human_speed_mps": 0.0})
    runs = [evaluate_depth_path(small_run, [0], floor0, DepthSpaceParams(unseen_space="guarded"), empty_frames=5,
                                skeletons=s, log=lambda *_: None) for s in (False, True)]
    assert all(r["ok_while_truth_stop"] == 0 for r in runs)
    moves = [sum(v for k, v in r["confusion_estimate_vs_truth"].items() if k.split("|")[0] in ("OK", "WARNING"))
             for r in runs]
    assert moves[1] >= moves[0]


def test_the_3x3_filter_is_scipys():
    from scipy.ndimage import maximum_filter, minimum_filter

    from hrc_perception.safety.depth_space import _filter3
    a = np.random.default_rng(1).uniform(0, 5, (7, 9)).astype(np.float32)
    assert np.array_equal(_filter3(a, np.maximum), maximum_filter(a, size=3, mode="nearest"))
    assert np.array_equal(_filter3(a, np.minimum), minimum_filter(a, size=3, mode="nearest"))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), garbage=st.sampled_from(["nan", "inf", "negative", "huge", "mixed"]),
       fraction=st.floats(0.0, 1.0))
def test_garbage_depth_never_raises_and_never_grants_ok_blind(background, seed, garbage, fraction):
    """Any depth image (NaN, inf, negative, absurdly far, a mix, over any share of the
    pixels): a result, and a verdict that is OK only with the background seen and nothing
    unexplained near."""
    rng = np.random.default_rng(seed)
    depth = scene()
    hit = rng.random((H, W)) < fraction
    values = {"nan": np.nan, "inf": np.inf, "negative": -1.0, "huge": 1e9,
              "mixed": rng.choice([np.nan, np.inf, -1.0, 0.0, 0.3, 1e9], size=(H, W))}[garbage]
    depth = np.where(hit, values, depth).astype(np.float32)
    res = depth_space_distance(depth, K, background, ROBOT, P)
    robot = RobotState(["a", "b"], np.array([[0.0, 0.0, 2.0], [0.0, -0.3, 2.0]]), 10.0, 0.5, "cam")
    v = assess_depth(robot, res, 10.0, "cam", 10.05, MP)
    assert v.level in (OK, WARNING, PROTECTIVE_STOP, UNKNOWN)
    if v.level == OK:
        assert res.lost_background_fraction <= 0.3
        assert res.distance_m == math.inf or res.distance_m > v.separation_m + MP.warning_margin_m
    if garbage != "mixed" and fraction > 0.5:       # most of the image unreadable: no verdict
        assert v.level == UNKNOWN and "covered" in v.reason, v.reason


def test_the_space_beside_the_view_counts_unless_the_cell_guards_it(background):
    from dataclasses import replace
    res = depth_space_distance(scene(), K, background, ROBOT, P)
    assert res.distance_m == math.inf                       # nothing seen but the robot...
    t = (H / 2) / F                                         # ... yet the top and bottom borders: y = +-t z
    assert res.view_edge.distance_m == pytest.approx(ROBOT_C[2] * t / math.hypot(1.0, t) - ROBOT_R, abs=1e-9)
    robot = RobotState(["link", "tip"], np.array([ROBOT_C, ROBOT_C + [0, 0, 0.01]]), 10.0, 0.5, "cam")
    v = assess_depth(robot, res, 10.0, "cam", 10.05, MP)
    assert v.level == PROTECTIVE_STOP and "unseen space beside the camera's view" in v.reason   # 0.59 m < S_p
    guarded = depth_space_distance(scene(), K, background, ROBOT, replace(P, unseen_space="guarded"))
    assert guarded.view_edge is None and assess_depth(robot, guarded, 10.0, "cam", 10.05, MP).level == OK
    with pytest.raises(ValueError):
        replace(P, unseen_space="fenced")


def test_the_label_image_says_what_each_pixel_was(background):
    from hrc_perception.safety.depth_space import LABEL_INVALID, LABEL_NONE, LABEL_ROBOT, LABEL_UNEXPLAINED
    depth = scene()
    put_rect(depth, 0.5, 0.7, -0.2, 0.2, 2.0)
    depth[0:4, 0:4] = 0.0
    plain = depth_space_distance(depth, K, background, ROBOT, P)
    res = depth_space_distance(depth, K, background, ROBOT, P, label_image=True)
    assert plain.label_image is None and res.distance_m == plain.distance_m
    img = res.label_image
    assert img.shape == depth.shape and img[1, 1] == LABEL_INVALID and img[5, 5] == LABEL_NONE
    u_body = int(F * 0.6 / 2.0 + K[0, 2])
    assert img[int(K[1, 2]), u_body] == LABEL_UNEXPLAINED and img[int(K[1, 2]), int(K[0, 2])] == LABEL_ROBOT
    assert (img == LABEL_ROBOT).sum() == res.explained_px

