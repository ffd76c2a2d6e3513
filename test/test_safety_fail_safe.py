"""The pure verdict (`assess`) guards every input itself (issue 21, cases 2, 6 and 8): an
overflowing or out-of-range joint, mismatched name and position lists, stamps in the
future, inputs in different frames, non-finite speeds; the ISO 13855 speed floors (1.6 m/s
for the body, 2.0 m/s for an arm or hand); and a coasting person's bound grows with time."""
import math
from dataclasses import replace

import numpy as np
import pytest
from test_safety_core import robot_at, standing_person

from hrc_perception.safety.monitor import (OK, PROTECTIVE_STOP, UNKNOWN, MonitorParams, PersonState, RobotState,
                                           assess)
from hrc_perception.safety.separation import protective_separation
from hrc_perception.skeletons import COCO17_NAMES

ARM_JOINTS = [COCO17_NAMES.index(n) for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")]


def arms_back(x_m: float) -> np.ndarray:
    """A person standing at x with elbows and wrists behind the torso, away from a robot
    at larger x: the torso is the nearest part."""
    p = standing_person(x_m)
    p[ARM_JOINTS, 0] = x_m - 0.35
    return p


@pytest.mark.parametrize("value", [1e160, -1e160, 100.0, math.inf, -math.inf, 1e308])
def test_a_joint_outside_the_physical_range_is_invalid_not_far(value):
    params = MonitorParams()
    robot = robot_at(0.0)
    p = standing_person(-0.4)     # touching the robot
    p[5, 0] = value
    v = assess(robot, [PersonState(1, p, 10.0, 0.0)], 10.0, params)
    assert v.level == UNKNOWN and v.speed_scale == 0.0, v
    far_robot = robot_at(0.0)
    far_robot.positions_m[1, 1] = value
    v = assess(far_robot, [PersonState(1, standing_person(-5.0), 10.0, 0.0)], 10.0, params)
    assert v.level == UNKNOWN and v.speed_scale == 0.0, v


@pytest.mark.parametrize("speed", [math.nan, math.inf, -1.0])
def test_a_non_finite_or_negative_speed_is_invalid(speed):
    params = MonitorParams()
    v = assess(robot_at(0.0), [PersonState(1, standing_person(-5.0), 10.0, speed)], 10.0, params)
    assert v.level == UNKNOWN, v
    v = assess(robot_at(0.0, speed=speed), [PersonState(1, standing_person(-5.0), 10.0, None)], 10.0, params)
    assert v.level == UNKNOWN, v


def test_names_and_positions_of_different_lengths_are_invalid():
    params = MonitorParams()
    robot = robot_at(0.0)
    people = [PersonState(1, standing_person(-5.0), 10.0, None)]
    assert assess(robot, people, 10.0, params).level == OK
    short_names = RobotState(robot.joint_names[:2], robot.positions_m, 10.0, 0.5)
    assert assess(short_names, people, 10.0, params).level == UNKNOWN
    long_names = RobotState(robot.joint_names + ["x", "y"], robot.positions_m, 10.0, 0.5)
    assert assess(long_names, people, 10.0, params).level == UNKNOWN
    sixteen = [PersonState(1, standing_person(-5.0)[:16], 10.0, None)]
    assert assess(robot, sixteen, 10.0, params).level == UNKNOWN


def test_stamps_in_the_future_or_not_finite_are_invalid():
    params = MonitorParams()
    people = [PersonState(1, standing_person(-5.0), 10.0, None)]
    assert assess(robot_at(0.0, stamp_s=10.2), people, 10.0, params).level == UNKNOWN
    assert assess(robot_at(0.0), [PersonState(1, standing_person(-5.0), 10.2, None)], 10.0, params).level == UNKNOWN
    assert assess(robot_at(0.0), people, 10.0, params, people_stamp_s=10.2).level == UNKNOWN
    assert assess(robot_at(0.0), people, math.nan, params).level == UNKNOWN
    assert assess(robot_at(0.0, stamp_s=math.nan), people, 10.0, params).level == UNKNOWN
    assert assess(robot_at(0.0), [], 10.0, params, people_stamp_s=math.inf).level == UNKNOWN


def test_inputs_in_different_frames_are_never_compared():
    params = MonitorParams()
    robot = replace(robot_at(0.0), frame_id="panda_link0")
    person = PersonState(1, standing_person(-5.0), 10.0, None, frame_id="camera_color_optical_frame")
    v = assess(robot, [person], 10.0, params)
    assert v.level == UNKNOWN and "frame" in v.reason
    same = replace(robot, frame_id="camera_color_optical_frame")
    assert assess(same, [person], 10.0, params).level == OK


def test_default_speeds_are_iso_13855_body_and_arm():
    params = MonitorParams()
    assert params.min_human_speed_mps >= 1.6 and params.min_arm_speed_mps >= 2.0
    robot = robot_at(0.0, speed=0.5)

    def s_p(v_h):
        return protective_separation(v_h, 0.5, params.separation).total_m

    # a person standing still (measured 0 m/s), torso nearest: the body's 1.6 m/s (with a
    # short T_r + T_s: the upper arm, 0.16 m behind the torso's surface at the shoulder, gains
    # only 0.4 m/s x 0.2 s on it)
    short = replace(params, separation=replace(params.separation, reaction_time_s=0.0, stopping_time_s=0.2))
    torso = assess(robot, [PersonState(1, arms_back(-1.5), 10.0, 0.0, arm_speed_mps=0.0)], 10.0, short)
    assert torso.closest_human_joint.startswith("right_") and "wrist" not in torso.closest_human_joint
    assert torso.separation_m == pytest.approx(protective_separation(1.6, 0.5, short.separation).total_m)
    # the hand nearest: an arm's 2.0 m/s, whatever the body does
    hand = assess(robot, [PersonState(1, standing_person(-1.5), 10.0, 0.0, arm_speed_mps=0.0)], 10.0, params)
    assert hand.closest_human_joint == "right_wrist" and hand.separation_m == pytest.approx(s_p(2.0))
    # an arm measured faster than the floor: its own speed
    fast = assess(robot, [PersonState(1, standing_person(-1.5), 10.0, 0.0, arm_speed_mps=3.0)], 10.0, params)
    assert fast.separation_m == pytest.approx(s_p(3.0))
    # a body measured faster than an arm's floor: the arm is at least as fast as the body
    run = assess(robot, [PersonState(1, standing_person(-1.5), 10.0, 2.5, arm_speed_mps=0.0)], 10.0, params)
    assert run.separation_m == pytest.approx(s_p(2.5))
    # speeds unknown (None): the floors
    unknown = assess(robot, [PersonState(1, standing_person(-1.5), 10.0, None)], 10.0, params)
    assert unknown.separation_m == pytest.approx(s_p(2.0))


def test_an_arm_reaching_towards_the_robot_decides_over_a_nearer_torso():
    """The deciding part is the one deepest inside its own S_p, not the nearest: a torso at
    1.00 m (S_p with 1.6 m/s) and a hand at 1.05 m moving at 3 m/s."""
    params = MonitorParams()
    robot = robot_at(0.0, speed=0.0)
    p = arms_back(-1.0)
    v_slow = assess(robot, [PersonState(1, p, 10.0, 0.0, arm_speed_mps=0.0)], 10.0, params)
    q = p.copy()
    q[COCO17_NAMES.index("right_wrist")] = [v_slow.point_human_m[0] - 0.01, -1.4, 3.0]   # hand beside the torso
    v_fast = assess(robot, [PersonState(1, q, 10.0, 0.0, arm_speed_mps=3.0)], 10.0, params)
    assert v_fast.closest_human_joint == "right_wrist"
    assert v_fast.separation_m == pytest.approx(protective_separation(3.0, 0.0, params.separation).total_m)


def test_a_coasting_person_grows_by_the_distance_a_person_moves():
    params = MonitorParams()
    robot = robot_at(0.0, speed=0.5)
    seen = assess(robot, [PersonState(1, arms_back(-3.0), 10.0, 0.0, arm_speed_mps=0.0)], 10.0, params)
    # last seen 0.5 s before the frame being judged
    coast = assess(robot, [PersonState(1, arms_back(-3.0), 9.5, 0.0, arm_speed_mps=0.0)], 10.0, params,
                   people_stamp_s=10.0)
    # the torso grew by 1.6 m/s x 0.5 s, the arms by 2.0 m/s x 0.5 s: the arms' margin is now the least
    assert coast.min_distance_m <= seen.min_distance_m - 0.8 + 1e-6
    assert coast.level != OK or coast.min_distance_m > coast.separation_m
    # an old stamp does not make the person stale: the frame's stamp is what ages
    assert coast.level != UNKNOWN, coast.reason
    far_gone = assess(robot, [PersonState(1, arms_back(-3.0), 5.0, 0.0)], 10.0, params, people_stamp_s=10.0)
    assert far_gone.level == PROTECTIVE_STOP, far_gone.reason    # 5 s: could be anywhere near


def test_no_verdict_grants_ok_on_a_nan_distance():
    """Every comparison that grants OK is false on NaN. Parameters refuse NaN; past that
    check (the last line of defence), a NaN link radius is not far."""
    with pytest.raises(ValueError):
        MonitorParams(robot_link_radius_m=math.nan)
    params = MonitorParams()
    object.__setattr__(params, "robot_link_radius_m", math.nan)
    v = assess(robot_at(0.0), [PersonState(1, standing_person(-5.0), 10.0, None)], 10.0, params)
    assert v.level in (UNKNOWN, PROTECTIVE_STOP) and v.speed_scale == 0.0


def test_a_duplicated_id_coasts_with_both_skeletons():
    """Found by the node fuzz: two skeletons of one id in a frame, then the track coasts; the
    last skeleton kept must not be only the farther one."""
    from hrc_perception.safety.people import PeopleInCell, PersonTrack
    cell = PeopleInCell()
    near, far = PersonState(1, standing_person(-1.0), 10.0), PersonState(1, standing_person(-5.0), 10.0)
    cell.observe([near, far])
    people, unbound = cell.in_cell([], [PersonTrack(1)])
    assert unbound == () and {id(p) for p in people} == {id(near), id(far)}
    v = assess(robot_at(0.0), people, 10.1, MonitorParams(), people_stamp_s=10.1)
    assert v.level == PROTECTIVE_STOP, v.reason
    newer = PersonState(1, standing_person(-5.0), 10.2)
    cell.observe([newer])                  # a newer frame replaces both
    assert cell.in_cell([], [PersonTrack(1)])[0] == [newer]


def test_a_later_skeleton_with_too_few_joints_keeps_the_last_that_bounds():
    """Found by following people between track arrays: a person listed without a skeleton,
    then coasting, was UNKNOWN ("0 known joints") though an older skeleton bounded them; it
    now bounds them, grown by its age; never seen with enough joints: unbound."""
    from hrc_perception.safety.people import PeopleInCell, PersonTrack
    cell = PeopleInCell()
    good = PersonState(4, standing_person(-3.0), 10.0)
    cell.observe([good], min_joints=4)
    cell.observe([PersonState(4, np.full((17, 3), np.nan), 10.2), PersonState(5, np.full((17, 3), np.nan), 10.2)],
                 min_joints=4)
    assert cell.seen_at_s == {4: 10.2, 5: 10.2}           # seen, for the hold
    people, unbound = cell.in_cell([], [PersonTrack(4, updated=False), PersonTrack(5, updated=False)])
    assert people == [good] and unbound == (5,)
    v = assess(robot_at(0.0, stamp_s=10.4), people, 10.4, MonitorParams(), people_stamp_s=10.4)
    grown = assess(robot_at(0.0, stamp_s=10.4), [replace(good, stamp_s=10.4)], 10.4, MonitorParams(),
                   people_stamp_s=10.4)
    assert v.level != UNKNOWN and v.min_distance_m < grown.min_distance_m       # grown by 0.4 s of motion


def test_a_person_the_tracker_drops_stays_for_the_hold_after_last_seen():
    """Found by the two-people scenario through the graph: people re-identified every frame
    (tentative tracks), all missed by the segmentation in one frame, the tracker deleted
    their tentative tracks, and that frame was OK while the truth stopped. A dropped person
    stays hold_s after last seen: with no valid skeleton, unbound (UNKNOWN)."""
    from hrc_perception.safety.people import PeopleInCell, PersonTrack
    cell = PeopleInCell(hold_s=1.0)
    # frame at 10.0: tracks 11 and 12 seen, their skeletons unusable (not observed)
    assert cell.in_cell([], [PersonTrack(11), PersonTrack(12)], tracks_stamp_s=10.0)[1] == (11, 12)
    # frame at 10.3: nobody detected, both tentative tracks deleted
    gone = [PersonTrack(11, deleted=True, updated=False), PersonTrack(12, deleted=True, updated=False)]
    people, unbound = cell.in_cell([], gone, tracks_stamp_s=10.3)
    assert people == [] and unbound == (11, 12)
    assert assess(robot_at(0.0), people, 10.3, MonitorParams(), people_stamp_s=10.3,
                  unseen_person_ids=unbound).level == UNKNOWN
    # one with a skeleton is judged by it, grown by its age
    cell.observe([PersonState(12, standing_person(-1.0), 10.3)])
    people, unbound = cell.in_cell([], [], tracks_stamp_s=10.9)
    assert [p.id for p in people] == [12] and unbound == (11,)
    # after the hold, both are let go
    assert cell.in_cell([], [], tracks_stamp_s=11.4) == ([], ())
    assert cell.last_seen == {} and cell.seen_at_s == {}
    # without stamps (the old call), only the tracker decides
    assert PeopleInCell().in_cell([], [PersonTrack(5, deleted=True)]) == ([], ())
