"""Property-based tests of the pure verdict (`assess`), hypothesis generating adversarial
inputs: robots and people with NaN, inf, huge and out-of-range joints, wrong lengths,
duplicated ids, other frames, stamps in the future or stale, coasting people, non-finite
speeds, any valid parameters. The invariant: `assess` never raises, and it says OK or
WARNING only when every input is valid and fresh and every person's margin is positive
by an independent bound (`safety_oracle`). Depth carving is left to test_safety_carving
(its cover is checked point by point there).

CI runs the ``ci`` profile (a fixed, bounded set); ``make fuzz`` runs the ``fuzz`` profile
(HYPOTHESIS_PROFILE=fuzz: many more, random each run)."""
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safety_oracle import margin_upper_bound_m

from hrc_perception.safety.monitor import OK, PROTECTIVE_STOP, UNKNOWN, WARNING, PersonState, RobotState, assess
from hrc_perception.safety.monitor import monitor_params

settings.register_profile("ci", max_examples=300, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

FRAMES = ("camera_color_optical_frame", "panda_link0")
NOW = 100.0

# a coordinate: mostly a plausible one, sometimes the adversary's
coord = st.one_of(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), st.floats(-3.0, 3.0),
                  st.sampled_from([math.nan, math.inf, -math.inf, 1e160, -1e160, 100.0, 1e308, 19.9, -25.0]))
speed = st.one_of(st.none(), st.floats(0.0, 4.0), st.sampled_from([math.nan, math.inf, -1.0, 0.0]))
age = st.one_of(st.floats(0.0, 0.6), st.sampled_from([-0.5, -1e-3, 2.0, math.nan, math.inf]))


@st.composite
def joints(draw, n):
    """[n, 3] joints around a base point, each joint sometimes unknown or adversarial."""
    base = np.array([draw(st.floats(-3, 3)), draw(st.floats(-2, 0.5)), draw(st.floats(0.5, 5))])
    out = base + np.array(draw(st.lists(st.tuples(st.floats(-0.9, 0.9), st.floats(-1.0, 1.0), st.floats(-0.5, 0.5)),
                                        min_size=n, max_size=n)))
    for _ in range(draw(st.integers(0, 3))):
        j, k = draw(st.integers(0, n - 1)), draw(st.integers(0, 2))
        out[j, k] = draw(coord) if draw(st.booleans()) else math.nan
    return out


@st.composite
def robots(draw):
    n = draw(st.integers(2, 8))
    names = [f"j{i}" for i in range(n + draw(st.sampled_from([0, 0, 0, 0, -1, 1])))]
    return RobotState(names, draw(joints(n)), NOW - draw(age), draw(speed), draw(st.sampled_from(FRAMES[:1] * 5 + FRAMES[1:])))


@st.composite
def people(draw, people_stamp_s):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        n = draw(st.sampled_from([17] * 10 + [16, 18]))
        since = draw(st.one_of(st.just(0.0), st.just(0.0), st.floats(0.0, 2.0), st.just(-0.2)))
        out.append(PersonState(draw(st.integers(1, 4)), draw(joints(n)), people_stamp_s - since, draw(speed),
                               draw(speed), draw(st.sampled_from(FRAMES[:1] * 8 + FRAMES[1:]))))
    return out


@st.composite
def params(draw):
    values = {"reaction_time_s": draw(st.floats(0.0, 0.5)), "stopping_time_s": draw(st.floats(0.0, 0.8)),
              "max_age_s": draw(st.floats(0.05, 1.0)), "warning_margin_m": draw(st.floats(0.0, 1.0)),
              "min_human_speed_mps": draw(st.floats(0.0, 2.0)), "min_arm_speed_mps": draw(st.floats(0.0, 2.5)),
              "robot_speed_unknown_mps": draw(st.floats(0.0, 2.0)), "min_person_joints": draw(st.integers(1, 17)),
              "unknown_limb_reach": draw(st.booleans()), "require_tracks": draw(st.booleans()),
              "robot_link_radius_m": draw(st.floats(0.0, 0.2)), "max_range_m": draw(st.sampled_from([20.0, 5.0]))}
    return monitor_params(values)


def _valid_inputs(robot, persons, people_stamp_s, tracks_stamp_s, unseen, p) -> bool:
    """Every input as the fail-safe rules need it for OK or WARNING (the test's own reading)."""
    def fresh(stamp):
        return stamp is not None and math.isfinite(stamp) and 0.0 <= NOW - stamp <= p.max_age_s

    def speed_ok(v):
        return v is None or (math.isfinite(v) and v >= 0)

    r = np.asarray(robot.positions_m)
    if not (fresh(robot.stamp_s) and len(robot.joint_names) == len(r) >= 2 and np.isfinite(r).all()
            and np.abs(r).max() <= p.max_range_m and speed_ok(robot.speed_mps)):
        return False
    if not fresh(people_stamp_s) or unseen or (p.require_tracks and not fresh(tracks_stamp_s)):
        return False
    for q in persons:
        x = np.asarray(q.positions_m)
        known = np.isfinite(x).all(axis=1)
        if (x.shape != (17, 3) or np.isinf(x).any() or (np.abs(x[known]) > p.max_range_m).any()
                or known.sum() < p.min_person_joints or not q.stamp_s <= people_stamp_s
                or q.frame_id != robot.frame_id or not (speed_ok(q.speed_mps) and speed_ok(q.arm_speed_mps))):
            return False
    return True


@given(data=st.data())
def test_ok_only_on_positive_evidence(data):
    p = data.draw(params())
    robot = data.draw(robots())
    people_stamp_s = NOW - data.draw(age)
    persons = data.draw(people(people_stamp_s))
    given_stamp = data.draw(st.sampled_from([people_stamp_s, people_stamp_s, None]))
    tracks_stamp_s = data.draw(st.one_of(st.none(), st.just(NOW - 0.01), st.just(NOW - 5.0), st.just(NOW + 1.0)))
    unseen = data.draw(st.sampled_from([(), (), (), (9,)]))
    v = assess(robot, persons, NOW, p, people_stamp_s=given_stamp, unseen_person_ids=unseen,
               tracks_stamp_s=tracks_stamp_s)
    assert v.level in (OK, WARNING, PROTECTIVE_STOP, UNKNOWN)
    if v.level in (PROTECTIVE_STOP, UNKNOWN):
        assert v.speed_scale == 0.0
        return
    stamp = given_stamp if given_stamp is not None else (max(q.stamp_s for q in persons) if persons else None)
    assert _valid_inputs(robot, persons, stamp, tracks_stamp_s, unseen, p), v
    assert 0.0 <= v.speed_scale <= 1.0
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
