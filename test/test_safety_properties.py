"""Property-based tests of the pure verdict (`assess`), hypothesis generating adversarial
inputs: robots and people with NaN, inf, huge and out-of-range joints, wrong lengths,
duplicated ids, other frames, stamps in the future or stale, coasting people, non-finite
speeds, any valid parameters. The invariant: `assess` never raises, and it says OK or
WARNING only when every input is valid and fresh and every person's margin is positive
by an independent bound (`safety_oracle`). Depth carving is left to test_safety_carving
(its cover is checked point by point there).

CI runs a fixed, bounded set of cases (derandomized); ``make fuzz`` (HRC_FUZZ=1) a long
random campaign."""
import math
import os

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safety_oracle import margin_upper_bound_m

from hrc_perception.safety.monitor import OK, PROTECTIVE_STOP, UNKNOWN, WARNING, PersonState, RobotState, assess
from hrc_perception.safety.monitor import monitor_params

FUZZ = os.environ.get("HRC_FUZZ") == "1"     # `make fuzz`: a long, random campaign
CAMPAIGN = settings(max_examples=20000 if FUZZ else 2000, derandomize=not FUZZ, deadline=None,
                    suppress_health_check=list(HealthCheck))

FRAMES = ("camera_color_optical_frame", "panda_link0")
NOW = 100.0
BAD_VALUES = [math.inf, -math.inf, 1e160, -1e160, 100.0, 1e308, -25.0, 30.0, -1e3]
BAD_SPEEDS = [math.nan, math.inf, -1.0]
BAD_AGES = [-0.5, -1e-3, 2.0, math.nan, math.inf]
# one fault of an otherwise valid scene (the adversary changes one or two things at a time)
FAULTS = ["robot_value", "robot_names", "robot_age", "robot_speed", "robot_frame", "person_value", "person_shape",
          "person_future", "person_frame", "person_speed", "people_age", "tracks", "unseen", "unknown_joints"]


@st.composite
def joints(draw, n, x_range=(-4.0, 4.0)):
    """[n, 3] plausible joints around a base point (metres, camera frame)."""
    base = np.array([draw(st.floats(*x_range)), draw(st.floats(-2, 0.5)), draw(st.floats(0.5, 5))])
    return base + np.array(draw(st.lists(st.tuples(st.floats(-0.9, 0.9), st.floats(-1.0, 1.0), st.floats(-0.5, 0.5)),
                                         min_size=n, max_size=n)))


@st.composite
def scenes(draw):
    """(params, robot, people, people_stamp_s given, tracks_stamp_s, unseen ids): a valid,
    fresh scene (people near and far, some coasting), then up to two faults."""
    p = draw(params())
    fresh = st.floats(0.0, 0.04)          # every max_age_s drawn is above this
    speed = st.one_of(st.none(), st.floats(0.0, 3.0))
    n = draw(st.integers(2, 8))
    robot = RobotState([f"j{i}" for i in range(n)], draw(joints(n, (-0.5, 0.5))), NOW - draw(fresh), draw(speed),
                       FRAMES[0])
    people_stamp = NOW - draw(fresh)
    persons = [PersonState(draw(st.integers(1, 4)), draw(joints(17)),
                           people_stamp - draw(st.sampled_from([0.0, 0.0, 0.0, 0.1, 0.5, 2.0])),
                           draw(speed), draw(speed), FRAMES[0]) for _ in range(draw(st.integers(0, 3)))]
    tracks_stamp, unseen, given = NOW - draw(fresh), (), draw(st.sampled_from([people_stamp, None]))
    for fault in draw(st.lists(st.sampled_from(FAULTS), max_size=2)):
        k = draw(st.integers(0, max(len(persons) - 1, 0)))
        if fault == "robot_value":
            robot.positions_m[draw(st.integers(0, n - 1)), draw(st.integers(0, 2))] = draw(st.sampled_from(BAD_VALUES))
        elif fault == "robot_names":
            robot.joint_names = robot.joint_names[:-1] if draw(st.booleans()) else robot.joint_names + ["x"]
        elif fault == "robot_age":
            robot.stamp_s = NOW - draw(st.sampled_from(BAD_AGES))
        elif fault == "robot_speed":
            robot.speed_mps = draw(st.sampled_from(BAD_SPEEDS))
        elif fault == "robot_frame":
            robot.frame_id = FRAMES[1]
        elif fault == "people_age":
            people_stamp = NOW - draw(st.sampled_from(BAD_AGES))
            given = people_stamp
        elif fault == "tracks":
            tracks_stamp = draw(st.sampled_from([None, NOW - 5.0, NOW + 1.0, math.nan]))
        elif fault == "unseen":
            unseen = (9,)
        else:
            if not persons:
                persons.append(PersonState(1, draw(joints(17)), people_stamp, None, None, FRAMES[0]))
            q = persons[k]
            if fault == "person_value":
                j = draw(st.integers(0, len(q.positions_m) - 1))
                q.positions_m[j, draw(st.integers(0, 2))] = draw(st.sampled_from(BAD_VALUES))
            elif fault == "person_shape":
                q.positions_m = q.positions_m[:16] if draw(st.booleans()) else np.vstack([q.positions_m, [[0, 0, 1]]])
            elif fault == "person_future":
                q.stamp_s = people_stamp + draw(st.sampled_from([0.2, math.nan]))
            elif fault == "person_frame":
                q.frame_id = FRAMES[1]
            elif fault == "person_speed":
                setattr(q, draw(st.sampled_from(["speed_mps", "arm_speed_mps"])), draw(st.sampled_from(BAD_SPEEDS)))
            elif fault == "unknown_joints":
                n_q = len(q.positions_m)
                q.positions_m[draw(st.lists(st.integers(0, n_q - 1), max_size=n_q - 1, unique=True))] = math.nan
    return p, robot, persons, given, tracks_stamp, unseen


@st.composite
def params(draw):
    values = {"reaction_time_s": draw(st.floats(0.0, 0.5)), "stopping_time_s": draw(st.floats(0.0, 0.8)),
              "max_age_s": draw(st.floats(0.05, 1.0)), "warning_margin_m": draw(st.floats(0.0, 1.0)),
              "min_human_speed_mps": draw(st.floats(0.0, 2.0)), "min_arm_speed_mps": draw(st.floats(0.0, 2.5)),
              "robot_speed_unknown_mps": draw(st.floats(0.0, 2.0)), "min_person_joints": draw(st.integers(1, 8)),
              "unknown_limb_reach": draw(st.booleans()), "require_tracks": draw(st.booleans()),
              "robot_link_radius_m": draw(st.floats(0.0, 0.2)), "max_range_m": draw(st.sampled_from([20.0, 8.0])),
              "max_people_age_s": draw(st.sampled_from([0.0]) | st.floats(0.05, 3.0)),
              "depth_covers_seen_people": draw(st.booleans())}
    return monitor_params(values)


def _valid_inputs(robot, persons, people_stamp_s, tracks_stamp_s, unseen, p) -> bool:
    """Every input as the fail-safe rules need it for OK or WARNING (the test's own reading)."""
    def fresh(stamp, max_age_s=p.max_age_s):
        return stamp is not None and math.isfinite(stamp) and 0.0 <= NOW - stamp <= max_age_s

    def speed_ok(v):
        return v is None or (math.isfinite(v) and v >= 0)

    r = np.asarray(robot.positions_m)
    if not (fresh(robot.stamp_s) and len(robot.joint_names) == len(r) >= 2 and np.isfinite(r).all()
            and np.abs(r).max() <= p.max_range_m and speed_ok(robot.speed_mps)):
        return False
    people_age = p.max_people_age_s or p.max_age_s
    if not fresh(people_stamp_s, people_age) or unseen or (p.require_tracks and not fresh(tracks_stamp_s, people_age)):
        return False
    for q in persons:
        x = np.asarray(q.positions_m)
        known = np.isfinite(x).all(axis=1)
        if (x.shape != (17, 3) or np.isinf(x).any() or (np.abs(x[known]) > p.max_range_m).any()
                or not q.stamp_s <= people_stamp_s
                or q.frame_id != robot.frame_id or not (speed_ok(q.speed_mps) and speed_ok(q.arm_speed_mps))):
            return False
        if known.sum() < p.min_person_joints and not _left_to_depth(q, people_stamp_s, p):
            return False
    return True


def _left_to_depth(q, people_stamp_s, p) -> bool:
    """A person of the frame itself with too few joints, with depth_covers_seen_people: the
    depth verdict beside judges them (the skeleton verdict leaves them out)."""
    known = np.isfinite(np.asarray(q.positions_m)).all(axis=1).sum()
    return p.depth_covers_seen_people and q.stamp_s == people_stamp_s and known < p.min_person_joints


@CAMPAIGN
@given(scene=scenes())
def test_ok_only_on_positive_evidence(scene):
    p, robot, persons, given_stamp, tracks_stamp_s, unseen = scene
    v = assess(robot, persons, NOW, p, people_stamp_s=given_stamp, unseen_person_ids=unseen,
               tracks_stamp_s=tracks_stamp_s)
    assert v.level in (OK, WARNING, PROTECTIVE_STOP, UNKNOWN)
    event(f"level {v.level_name}")
    if v.level in (PROTECTIVE_STOP, UNKNOWN):
        assert v.speed_scale == 0.0
        return
    stamp = given_stamp if given_stamp is not None else (max(q.stamp_s for q in persons) if persons else None)
    assert _valid_inputs(robot, persons, stamp, tracks_stamp_s, unseen, p), v
    assert 0.0 <= v.speed_scale <= 1.0
    persons = [q for q in persons if not _left_to_depth(q, stamp, p)]
    if not persons:
        return
    margin = v.min_distance_m - v.separation_m
    assert margin > (p.warning_margin_m if v.level == OK else 0.0), v
    v_r = p.robot_speed_unknown_mps if robot.speed_mps is None else robot.speed_mps
    age_s = max(NOW - robot.stamp_s, NOW - stamp)
    for q in persons:
        bound = margin_upper_bound_m(np.asarray(q.positions_m), stamp - q.stamp_s, np.asarray(robot.positions_m), v_r,
                                     age_s, p)
        assert margin <= bound + 1e-6, (q.id, margin, bound, v)


@CAMPAIGN
@given(data=st.data())
def test_assess_never_raises_on_garbage(data):
    """Types and shapes no caller should send: still a verdict, never OK."""
    junk = st.one_of(st.none(), st.just(np.zeros((0, 3))), st.just(np.full((3,), 1.0)), st.just(np.zeros((17, 2))),
                     st.just("x"), st.just(np.full((17, 3), np.nan)))
    robot = RobotState(["a", "b"], data.draw(junk), NOW, None)
    person = PersonState(1, data.draw(junk), NOW, None)
    for r, ps in ((robot, [person]), (robot, []), (RobotState(["a", "b"], np.zeros((2, 3)), NOW, None), [person])):
        try:
            v = assess(r, ps, NOW, monitor_params({"require_tracks": False}), people_stamp_s=NOW)
        except Exception as e:  # the invariant: no exception escapes
            raise AssertionError(f"assess raised {type(e).__name__}: {e}") from e
        assert v.level != OK or (r is not robot and not ps)
