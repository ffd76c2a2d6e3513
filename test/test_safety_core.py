"""Safety core: capsule distances against hand-computed cases and brute force, the
ISO/TS 15066 protective separation distance, and the verdict's levels and fail-safe rules."""
import math
from dataclasses import replace

import numpy as np
import pytest

from hrc_perception.safety.capsules import (Capsules, HumanBodyModel, chain_capsules, closest_pair,
                                            segment_closest_params)
from hrc_perception.safety.monitor import (OK, PROTECTIVE_STOP, UNKNOWN, WARNING, MonitorParams, PersonState,
                                           RobotState, assess)
from hrc_perception.safety.separation import SeparationParams, allowed_robot_speed, protective_separation
from hrc_perception.skeletons import COCO17_NAMES


def seg_dist(p0, p1, q0, q1):
    p0, p1, q0, q1 = (np.asarray(v, float) for v in (p0, p1, q0, q1))
    s, t = segment_closest_params(p0, p1, q0, q1)
    return float(np.linalg.norm(p0 + s * (p1 - p0) - q0 - t * (q1 - q0))), float(s), float(t)


def test_segment_distance_hand_cases():
    # perpendicular, crossing over each other 2 m apart in z
    d, s, t = seg_dist([-1, 0, 0], [1, 0, 0], [0, -1, 2], [0, 1, 2])
    assert d == pytest.approx(2.0) and s == pytest.approx(0.5) and t == pytest.approx(0.5)
    # parallel, overlapping in x, 1 m apart
    d, _, _ = seg_dist([0, 0, 0], [2, 0, 0], [1, 1, 0], [3, 1, 0])
    assert d == pytest.approx(1.0)
    # collinear, end to end with a 0.5 m gap
    d, s, t = seg_dist([0, 0, 0], [1, 0, 0], [1.5, 0, 0], [3, 0, 0])
    assert d == pytest.approx(0.5) and s == pytest.approx(1.0) and t == pytest.approx(0.0)
    # point to segment: foot of the perpendicular inside, then beyond the end
    d, _, t = seg_dist([0.3, 2, 0], [0.3, 2, 0], [0, 0, 0], [1, 0, 0])
    assert d == pytest.approx(2.0) and t == pytest.approx(0.3)
    d, _, _ = seg_dist([4, 0, 4], [4, 0, 4], [0, 0, 0], [1, 0, 0])
    assert d == pytest.approx(5.0)
    # segment to point (the point second): the same as the other way round
    d, s, _ = seg_dist([0, 0, 0], [1, 0, 0], [0.3, 2, 0], [0.3, 2, 0])
    assert d == pytest.approx(2.0) and s == pytest.approx(0.3)
    d, s, _ = seg_dist([0, 0, 1], [0, 0, 3], [0, 0, 2], [0, 0, 2])      # the point on the segment
    assert d == pytest.approx(0.0) and s == pytest.approx(0.5)
    d, s, _ = seg_dist([0, 0, 0], [1, 0, 0], [4, 0, 4], [4, 0, 4])
    assert d == pytest.approx(5.0) and s == 1.0
    # point to point
    d, _, _ = seg_dist([1, 2, 2], [1, 2, 2], [0, 0, 0], [0, 0, 0])
    assert d == pytest.approx(3.0)
    # skew segments whose infinite-line closest points lie outside both: clamped ends
    d, s, t = seg_dist([0, 0, 0], [1, 0, 0], [2, 1, 1], [2, 3, 1])
    assert d == pytest.approx(math.sqrt(1 + 1 + 1)) and s == 1.0 and t == 0.0


def test_segment_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    u = np.linspace(0, 1, 401)
    for _ in range(50):
        p0, p1, q0, q1 = rng.normal(size=(4, 3))
        d, _, _ = seg_dist(p0, p1, q0, q1)
        a = p0 + u[:, None] * (p1 - p0)
        b = q0 + u[:, None] * (q1 - q0)
        brute = np.linalg.norm(a[:, None] - b[None], axis=-1).min()
        assert d <= brute + 1e-12
        assert d >= brute - 0.01 * (np.linalg.norm(p1 - p0) + np.linalg.norm(q1 - q0))


def test_closest_pair_of_spheres_and_capsules():
    spheres = Capsules(np.array([[0, 0, 0.0]]), np.array([[0, 0, 0.0]]), np.array([0.2]), ["hand"], ["hand"])
    link = Capsules(np.array([[1.0, -1, 0], [5, 5, 5]]), np.array([[1.0, 1, 0], [6, 6, 6]]), np.array([0.1, 0.1]),
                    ["link3", "link5"], ["link4", "link6"])
    pair = closest_pair(spheres, link)
    assert pair.distance_m == pytest.approx(1.0 - 0.2 - 0.1)
    assert (pair.index_a, pair.index_b) == (0, 0)
    assert pair.name_a == "hand"
    np.testing.assert_allclose(pair.point_b, [1, 0, 0], atol=1e-12)
    # overlap gives a negative distance
    near = Capsules(np.array([[0.95, 0, 0.0]]), np.array([[0.95, 0, 0.0]]), np.array([0.2]), ["w"], ["w"])
    assert closest_pair(near, link).distance_m == pytest.approx(0.05 - 0.3)
    assert closest_pair(Capsules.empty(), link) is None


def test_closest_joint_is_the_nearer_end():
    link = chain_capsules(["a", "b"], np.array([[0, 0, 0.0], [1, 0, 0]]), 0.1)
    probe_near_b = Capsules(np.array([[0.9, 1, 0.0]]), np.array([[0.9, 1, 0.0]]), np.array([0.1]), ["p"], ["p"])
    assert closest_pair(probe_near_b, link).name_b == "b"
    probe_near_a = Capsules(np.array([[0.2, 1, 0.0]]), np.array([[0.2, 1, 0.0]]), np.array([0.1]), ["p"], ["p"])
    assert closest_pair(probe_near_a, link).name_b == "a"


def test_chain_capsules_skip_unknown_joints():
    pos = np.array([[0, 0, 0], [0, 0, 1], [np.nan, 0, 2], [0, 0, 3], [0, 0, 4.0]])
    caps = chain_capsules(["j0", "j1", "j2", "j3", "j4"], pos, 0.1)
    assert list(zip(caps.names_a, caps.names_b)) == [("j0", "j1"), ("j3", "j4")]


def standing_person(x_m: float, z_m: float = 3.0) -> np.ndarray:
    """COCO-17 joints of a person standing at (x, z) in a camera frame (y down), 1.8 m tall."""
    y = {"nose": -1.65, "left_eye": -1.68, "right_eye": -1.68, "left_ear": -1.66, "right_ear": -1.66,
         "left_shoulder": -1.45, "right_shoulder": -1.45, "left_elbow": -1.15, "right_elbow": -1.15,
         "left_wrist": -0.9, "right_wrist": -0.9, "left_hip": -0.95, "right_hip": -0.95,
         "left_knee": -0.5, "right_knee": -0.5, "left_ankle": -0.08, "right_ankle": -0.08}
    side = {n: (-0.2 if n.startswith("left") else 0.2 if n.startswith("right") else 0.0) for n in COCO17_NAMES}
    return np.array([[x_m + side[n], y[n], z_m] for n in COCO17_NAMES])


def test_body_model_covers_every_known_joint():
    body = HumanBodyModel()
    p = standing_person(0.0)
    caps = body.capsules(p)
    assert len(caps) == len(body.limbs) + len(body.spheres)
    only_ear = np.full((17, 3), np.nan)     # an ear without the nose: no capsule of its own
    only_ear[3] = [0, 0, 2.0]
    caps = HumanBodyModel(cover_unknown=False).capsules(only_ear)
    assert len(caps) == 1 and caps.names_a == ["left_ear"] and caps.radius[0] == body.torso_radius_m
    # covering the unknown joints: the whole body is within reach of that ear, the right
    # ankle farthest (ear, eye, nose, right shoulder, hip, knee, ankle: 2.43 m), plus the
    # largest capsule radius (the foot's)
    body_caps, reach, end_r = body.cover(only_ear)
    assert len(body_caps) == 1 and reach.names_a == ["left_ear"]
    assert reach.radius[0] == pytest.approx(0.14 + 0.07 + 0.42 + 0.68 + 0.56 + 0.56 + body.foot_radius_m)
    assert end_r[0] == max(body.foot_radius_m, body.hand_radius_m, body.torso_radius_m, body.head_radius_m)


def test_protective_separation_distance_formula():
    p = SeparationParams(reaction_time_s=0.1, stopping_time_s=0.3, intrusion_distance_m=0.05,
                         human_uncertainty_m=0.1, robot_uncertainty_m=0.05)
    terms = protective_separation(1.6, 1.0, p)
    assert terms.human_m == pytest.approx(1.6 * 0.4)
    assert terms.robot_reaction_m == pytest.approx(0.1)
    assert terms.robot_stopping_m == pytest.approx(0.15)
    assert terms.total_m == pytest.approx(0.64 + 0.1 + 0.15 + 0.2)
    # the allowed speed inverts S_p
    assert allowed_robot_speed(1.09, 1.6, p) == pytest.approx(1.0)
    assert allowed_robot_speed(0.5, 1.6, p) == 0.0
    # a measured stopping distance replaces v_r T_s / 2 and counts at rest
    pm = SeparationParams(stopping_distance_m=0.2)
    assert protective_separation(0.0, 0.0, pm).robot_stopping_m == 0.2
    with pytest.raises(ValueError):
        protective_separation(float("nan"), 0.0, p)
    with pytest.raises(ValueError):
        SeparationParams(reaction_time_s=-1)


ROBOT_NAMES = ["base", "shoulder", "elbow", "wrist"]


def robot_at(x_m: float, stamp_s: float = 10.0, speed: float | None = 0.5) -> RobotState:
    """A vertical robot arm at (x, z = 3 m), 1.2 m tall (y up = negative)."""
    pos = np.array([[x_m, -0.8, 3.0], [x_m, -1.2, 3.0], [x_m, -1.6, 3.0], [x_m, -2.0, 3.0]])
    return RobotState(ROBOT_NAMES, pos, stamp_s, speed)


def test_levels_follow_the_distance():
    params = MonitorParams()
    robot = robot_at(0.0)
    v_r = 0.5
    # the inputs are 0.05 s old at the verdict: T_r grows by that much; the hand is nearest:
    # an arm's speed (ISO 13855: 2.0 m/s)
    s_p = protective_separation(2.0, v_r, replace(params.separation, reaction_time_s=0.1 + 0.05)).total_m
    # the person's right side (x + 0.2; the widest body part there: the hand's sphere at the
    # wrist, or the torso capsules from shoulder to hip) faces the robot (axis x = 0, link
    # radius 0.10) from the left (x < 0)
    widest = max(params.body.hand_radius_m, params.body.torso_radius_m)
    for gap, expected in ((s_p - 0.05, PROTECTIVE_STOP), (s_p + 0.2, WARNING), (s_p + 1.0, OK)):
        x = -(gap + widest + 0.10 + 0.2)
        v = assess(robot, [PersonState(7, standing_person(x), 10.0, None)], 10.05, params)
        assert v.level == expected, (gap, v)
        assert v.min_distance_m == pytest.approx(gap, abs=1e-6)
        assert v.separation_m == pytest.approx(s_p)
        assert v.closest_human_id == 7 and v.closest_human_joint.startswith("right_")
        assert v.data_age_s == pytest.approx(0.05)
        if expected == PROTECTIVE_STOP:
            assert v.speed_scale == 0.0
        if expected == OK:
            assert 0.0 < v.speed_scale <= 1.0


def test_worst_person_decides_and_measured_speed_is_used():
    params = MonitorParams()
    robot = robot_at(0.0)
    far = PersonState(1, standing_person(-4.0), 10.0, None)
    near = PersonState(2, standing_person(-1.2), 10.0, None)
    v = assess(robot, [far, near], 10.0, params)
    assert v.closest_human_id == 2
    # a measured speed below the ISO 13855 floors changes nothing; one above them counts
    slow = assess(robot, [PersonState(2, standing_person(-1.2), 10.0, 0.1, 0.1)], 10.0, params)
    assert slow.separation_m == v.separation_m
    fast = assess(robot, [PersonState(2, standing_person(-1.2), 10.0, 2.5)], 10.0, params)
    assert fast.separation_m > v.separation_m
    assert fast.speed_scale <= v.speed_scale


@pytest.mark.parametrize("case", ["no_robot", "stale_robot", "robot_joint_nan", "no_people", "stale_people",
                                  "unseen_person", "too_few_joints"])
def test_fail_safe_never_ok(case):
    params = MonitorParams(max_age_s=0.3)
    robot, now = robot_at(0.0), 10.0
    people = [PersonState(3, standing_person(-4.0), 10.0, None)]     # far: OK when all is well
    assert assess(robot, people, now, params).level == OK
    kwargs = {}
    if case == "no_robot":
        robot = None
    elif case == "stale_robot":
        robot = robot_at(0.0, stamp_s=9.0)
    elif case == "robot_joint_nan":
        robot.positions_m[2] = np.nan
    elif case == "no_people":
        people = None
    elif case == "stale_people":
        people = [PersonState(3, standing_person(-4.0), 9.5, None)]
    elif case == "unseen_person":
        kwargs["unseen_person_ids"] = (5,)
    elif case == "too_few_joints":
        people[0].positions_m[3:] = np.nan
    v = assess(robot, people, now, params, **kwargs)
    assert v.level == UNKNOWN and v.speed_scale == 0.0 and v.reason


def test_empty_room_is_ok_only_when_fresh():
    params = MonitorParams(max_age_s=0.3)
    v = assess(robot_at(0.0), [], 10.1, params, people_stamp_s=10.0)
    assert v.level == OK and v.speed_scale == 1.0 and math.isnan(v.min_distance_m)
    assert assess(robot_at(0.0), [], 10.5, params, people_stamp_s=10.0).level == UNKNOWN
    assert assess(robot_at(0.0), [], 10.0, params).level == UNKNOWN     # no stamp at all


def test_stamp_clock_follows_the_newest_stamp_and_keeps_running():
    from hrc_perception.safety.clock import ACCEPTED, AHEAD, BEHIND, JUMPED, StampClock
    c = StampClock(max_lead_s=0.5, jump_back_s=10.0, jump_confirm=3)
    assert c.now(5.0) is None
    assert c.offer(100.0, monotonic_s=5.0) == ACCEPTED
    assert c.now(5.25) == pytest.approx(100.25)        # inputs stopped: time goes on
    assert c.offer(99.0, monotonic_s=5.3) == ACCEPTED  # an older input does not move it back
    assert c.now(5.3) == pytest.approx(100.3)
    assert c.offer(100.4, monotonic_s=5.31) == ACCEPTED    # a newer stamp re-anchors it
    assert c.now(5.41) == pytest.approx(100.5)
    # one hour ahead: refused, the clock unmoved; NaN likewise
    assert c.offer(3700.0, monotonic_s=5.41) == AHEAD and c.offer(math.nan, 5.41) == AHEAD
    assert c.now(5.41) == pytest.approx(100.5)
    assert c.offer(100.5, 5.41) == ACCEPTED         # in line: the run of refused stamps starts over
    # far behind twice, then in line: a stale input, not a jump
    assert c.offer(40.0, 5.42) == BEHIND and c.offer(40.1, 5.43) == BEHIND
    assert c.offer(100.5, 5.44) == ACCEPTED and c.offer(40.2, 5.45) == BEHIND
    assert c.now(5.45) == pytest.approx(100.54)     # (100.5 was behind now: no re-anchoring)
    # three in a row: time went back (a bag that loops), the clock follows the newest of them
    assert c.offer(40.3, 5.46) == BEHIND and c.offer(40.25, 5.47) == JUMPED
    assert c.now(5.5) == pytest.approx(40.3 + 0.04)
    assert c.offer(40.35, 5.5) == ACCEPTED
    # every input an hour ahead, three in a row (the cell's clock stepped): followed too
    assert c.offer(3640.0, 5.5) == AHEAD and c.offer(3640.1, 5.5) == AHEAD and c.offer(3640.2, 5.5) == JUMPED
    assert c.now(5.5) == pytest.approx(3640.2)


def test_an_unseen_hand_counts_within_reach_of_its_elbow():
    body = HumanBodyModel()
    p = standing_person(0.0)
    robot = chain_capsules(["a", "b"], np.array([[0.2 + 0.30, -1.0, 3.0], [0.2 + 0.30, -1.5, 3.0]]), 0.05)
    seen = closest_pair(body.capsules(p), robot).distance_m
    p_unseen = p.copy()
    p_unseen[COCO17_NAMES.index("right_wrist")] = np.nan
    caps = body.capsules(p_unseen)
    pair = closest_pair(caps, robot)
    # the right elbow at x = 0.2 is 0.30 m from the link's axis: minus the forearm's reach
    # (0.34 m) and the hand's radius, minus the link's 0.05 m
    assert pair.distance_m == pytest.approx(0.30 - 0.34 - body.hand_radius_m - 0.05) and pair.name_a == "right_elbow"
    assert pair.distance_m < seen


def test_monitor_params_from_node_values():
    from hrc_perception.safety.monitor import monitor_params
    p = monitor_params({"reaction_time_s": 0.2, "stopping_distance_m": -1.0, "unknown_limb_reach": False})
    assert p.separation.reaction_time_s == 0.2 and p.separation.stopping_distance_m is None
    assert not p.body.cover_unknown and monitor_params({}).body.cover_unknown


def test_older_skeletons_when_allowed_count_wherever_the_person_may_have_gone_since():
    """max_people_age_s (with the depth path beside): skeletons 1 s old are judged, not
    UNKNOWN, and S_p grows by the person's speed times that age; the robot stays strict."""
    strict, older = MonitorParams(max_age_s=0.3), MonitorParams(max_age_s=0.3, max_people_age_s=3.0)
    person = [PersonState(7, standing_person(-3.0), 9.0, None)]
    robot = robot_at(0.0, stamp_s=10.0)
    assert assess(robot, person, 10.0, strict, people_stamp_s=9.0).level == UNKNOWN
    v = assess(robot, person, 10.0, older, people_stamp_s=9.0)
    fresh = assess(robot, [replace(person[0], stamp_s=10.0)], 10.0, older, people_stamp_s=10.0)
    assert v.level != UNKNOWN and v.data_age_s == pytest.approx(1.0)
    # the age joins the reaction time: the arm's 2 m/s and the robot's 0.5 m/s, 1 s longer
    assert v.separation_m == pytest.approx(fresh.separation_m + (2.0 + 0.5) * 1.0)
    assert assess(robot, person, 12.5, older, people_stamp_s=9.0).level == UNKNOWN          # 3.5 s: too old
    assert assess(robot_at(0.0, stamp_s=9.0), person, 10.0, older, people_stamp_s=9.0).level == UNKNOWN
    assert assess(robot_at(0.0, stamp_s=11.0), [], 11.0, older, people_stamp_s=9.0).level == OK   # nobody then


def test_the_tracks_age_lengthens_t_r_unless_a_depth_verdict_covers_newcomers():
    """Skeletons of now (followed between track arrays) and tracks 1 s old: alone, the
    tracks' age joins the reaction time (who came since is unknown); with the depth path
    beside (depth_covers_seen_people), the skeletons' age does and the tracks only have to
    be no older than max_people_age_s."""
    alone = MonitorParams(max_age_s=0.3, max_people_age_s=3.0, require_tracks=True)
    beside = replace(alone, depth_covers_seen_people=True)
    person = [PersonState(7, standing_person(-3.0), 10.0, None)]
    robot = robot_at(0.0, stamp_s=10.0)
    now = assess(robot, person, 10.0, beside, people_stamp_s=10.0, tracks_stamp_s=10.0)
    v_alone = assess(robot, person, 10.0, alone, people_stamp_s=10.0, tracks_stamp_s=9.0)
    v_beside = assess(robot, person, 10.0, beside, people_stamp_s=10.0, tracks_stamp_s=9.0)
    assert v_alone.data_age_s == pytest.approx(1.0) and v_beside.data_age_s == pytest.approx(0.0)
    assert v_beside.separation_m == pytest.approx(now.separation_m)
    assert v_alone.separation_m == pytest.approx(now.separation_m + (2.0 + 0.5) * 1.0)
    for p in (alone, beside):          # tracks too old, or none: who is in the cell is unknown
        assert assess(robot, person, 10.0, p, people_stamp_s=10.0, tracks_stamp_s=6.5).level == UNKNOWN
        assert assess(robot, person, 10.0, p, people_stamp_s=10.0, tracks_stamp_s=None).level == UNKNOWN


def test_a_payload_sphere_at_the_tool_is_the_robots():
    from hrc_perception.safety.monitor import robot_capsules
    robot = robot_at(0.0)
    plain = robot_capsules(robot.joint_names, robot.positions_m, MonitorParams())
    held = robot_capsules(robot.joint_names, robot.positions_m, MonitorParams(payload_radius_m=0.15))
    assert len(held) == len(plain) + 1 and held.radius[-1] == 0.15 and held.names_a[-1] == "wrist"
    assert np.array_equal(held.a[-1], robot.positions_m[-1]) and np.array_equal(held.b[-1], robot.positions_m[-1])
    lost = robot.positions_m.copy()
    lost[-1] = np.nan                                    # no tool position: no sphere (and no last link)
    assert len(robot_capsules(robot.joint_names, lost, MonitorParams(payload_radius_m=0.15))) == len(plain) - 1
    # the payload only ever brings the robot nearer to people
    person = [PersonState(7, standing_person(-1.5), 10.0, None)]
    a = assess(robot, person, 10.0, MonitorParams())
    b = assess(robot, person, 10.0, MonitorParams(payload_radius_m=0.15))
    assert b.min_distance_m <= a.min_distance_m


def test_a_sparse_person_of_this_frame_is_left_to_the_depth_verdict_only_when_asked():
    """depth_covers_seen_people (depth_path with_skeletons): a person seen in the people's
    frame with 2 known joints is not UNKNOWN but left to the depth verdict, named in the
    reason; one the tracker holds from an older frame stays UNKNOWN, and so does any person
    without the flag."""
    sparse = standing_person(-1.0)
    sparse[2:] = np.nan
    robot = robot_at(0.0)
    seen = [PersonState(4, sparse, 10.0, None)]
    assert assess(robot, seen, 10.0, MonitorParams(), people_stamp_s=10.0).level == UNKNOWN
    v = assess(robot, seen, 10.0, MonitorParams(depth_covers_seen_people=True), people_stamp_s=10.0)
    assert v.level == OK and "person 4 (2 known joints) left to the depth verdict" in v.reason
    held = [PersonState(4, sparse, 9.9, None)]                 # coasting: not in this frame
    assert assess(robot, held, 10.0, MonitorParams(depth_covers_seen_people=True),
                  people_stamp_s=10.0).level == UNKNOWN
    # beside a full person, that person alone decides
    both = seen + [PersonState(5, standing_person(-0.6), 10.0, None)]
    v = assess(robot, both, 10.0, MonitorParams(depth_covers_seen_people=True), people_stamp_s=10.0)
    assert v.level == PROTECTIVE_STOP and v.closest_human_id == 5


def test_the_view_edge_verdict_is_the_depth_paths_rule_and_fails_safe():
    from hrc_perception.safety.monitor import assess_view_edge
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    robot = replace(robot_at(0.0), frame_id="cam")
    robot.positions_m[:, 1] = [-0.2, -0.3, -0.4, -0.5]          # a short arm in the middle of the view, 3 m away
    v = assess_view_edge(robot, K, 320, 240, "cam", 10.0, MonitorParams())
    # nearest border: top/bottom planes y = -+0.4 z; from (0, -0.5, 3): (1.2 - 0.5) / hypot(1, 0.4) - 0.1
    assert v.min_distance_m == pytest.approx((1.2 - 0.5) / math.hypot(1, 0.4) - 0.1)
    assert v.level == PROTECTIVE_STOP and "unseen space beside the camera's view" in v.reason
    assert assess_view_edge(robot, K, 320, 240, "other", 10.0, MonitorParams()).level == UNKNOWN
    assert assess_view_edge(robot, K, 320, 240, "cam", 11.0, MonitorParams()).level == UNKNOWN     # stale robot
    bad = replace(robot, positions_m=robot.positions_m.copy())
    bad.positions_m[0, 0] = np.nan
    assert assess_view_edge(bad, K, 320, 240, "cam", 10.0, MonitorParams()).level == UNKNOWN
    assert assess_view_edge(robot, np.full((3, 3), np.nan), 320, 240, "cam", 10.0, MonitorParams()).level == UNKNOWN
