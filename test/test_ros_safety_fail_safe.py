"""The safety_monitor's defects found by reading it as an adversary, each over real rclpy
and DDS with the node's default safety parameters (issue 21, cases 1-5 and 7): a
coasting person, an overflowing joint, parameters set at run time, inputs in different
frames, a rejected message moving the clock, and the last status before it goes silent."""
import math

from conftest import QOS, spin_until
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import LivelinessPolicy

from hrc_perception.geometry import make_K
from hrc_perception.msg import SafetyStatus, Track, TrackArray
from hrc_perception.ros.convert import K_to_camera_info
from hrc_perception.ros.ground_truth_msgs import make_header
from hrc_perception.ros.safety_monitor_node import BASE_POSE_TOPIC, CAMERA_INFO_TOPIC, STATUS_TOPIC, TRACKS_TOPIC
from test_ros_safety_monitor import (FRAME_ID, T0, _people, _rig, _robot, _verdict, advance_clock, person_msg,
                                     robot_msg)

MS = 10**6


def _tracks(h, pubs, stamp_ns, *tracks):
    """Publish a TrackArray of person tracks (id, state, time_since_update); wait until the
    node holds it."""
    msg = TrackArray(header=make_header(stamp_ns, FRAME_ID), tracks=[
        Track(track_id=i, class_name="person", state=state, time_since_update=tsu) for i, state, tsu in tracks])
    pubs[TRACKS_TOPIC].publish(msg)
    assert spin_until(h.ex, lambda: stamp_ns in h.node._tracks, 10.0)


def test_a_coasting_person_stays_in_the_cell_until_the_tracker_lets_go(ros_context):
    """Matched in one image, coasting in the next with an empty SkeletonArray: the last
    skeleton stands, grown by how far a person moves meanwhile; gone when deleted (no hold
    here: the next test has it)."""
    h, pubs = _rig(ros_context, release_hold_s=0.0)
    try:
        t = T0
        # a person 1 m from the robot, seen: PROTECTIVE_STOP
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        seen = _verdict(h, _people(t, person_msg(1, -1.0)))
        assert seen.level == SafetyStatus.PROTECTIVE_STOP, seen.reason
        # the next image: segmentation missed them, the track coasts, no skeleton
        t += 100 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 1))
        coasting = _verdict(h, _people(t))
        assert coasting.level == SafetyStatus.PROTECTIVE_STOP, coasting.reason
        assert coasting.closest_human_id == 1 and coasting.speed_scale == 0.0
        assert coasting.min_distance_m < seen.min_distance_m - 0.1      # grown by >= 1.6 m/s x 0.1 s
        # a far person coasting: the bound grows, the verdict may still allow motion
        t += 100 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (2, Track.CONFIRMED, 0))
        far = _verdict(h, _people(t, person_msg(2, -5.0)))
        assert far.level == SafetyStatus.OK, far.reason
        t += 100 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (2, Track.CONFIRMED, 1))
        far_coasting = _verdict(h, _people(t))
        assert far_coasting.closest_human_id == 2 and far_coasting.min_distance_m < far.min_distance_m - 0.1
        # deleted by the tracker: gone
        t += 100 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (2, Track.DELETED, 2))
        gone = _verdict(h, _people(t))
        assert gone.level == SafetyStatus.OK and gone.closest_human_id == 0, gone.reason
        # a confirmed person track never seen with a skeleton: no bound, UNKNOWN
        t += 100 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (3, Track.CONFIRMED, 1))
        never = _verdict(h, _people(t))
        assert never.level == SafetyStatus.UNKNOWN and "3" in never.reason
    finally:
        h.close()



def test_a_person_the_tracker_deletes_stays_for_release_hold_s(ros_context):
    """A tentative track deleted after one missed frame (the two-people scenario through the
    graph): the person stays in the cell release_hold_s (1 s) after last seen, then goes."""
    h, pubs = _rig(ros_context)
    try:
        t = T0
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.TENTATIVE, 0))
        assert _verdict(h, _people(t, person_msg(1, -1.0))).level == SafetyStatus.PROTECTIVE_STOP
        t += 300 * MS                      # missed: the tracker deletes the tentative track
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.DELETED, 1))
        held = _verdict(h, _people(t))
        assert held.level == SafetyStatus.PROTECTIVE_STOP and held.closest_human_id == 1, held.reason
        t += 1000 * MS                     # 1.3 s after last seen: let go
        advance_clock(h, pubs, t)
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t)
        gone = _verdict(h, _people(t))
        assert gone.level == SafetyStatus.OK and gone.closest_human_id == 0, gone.reason
    finally:
        h.close()


def test_a_person_needs_a_fresh_track_array(ros_context):
    """No TrackArray, or a stale one: the monitor cannot know who is in the cell."""
    h, pubs = _rig(ros_context)
    try:
        _robot(h, pubs, robot_msg(T0))
        s = _verdict(h, _people(T0, person_msg(1, -5.0)))
        assert s.level == SafetyStatus.UNKNOWN and "track" in s.reason
        _tracks(h, pubs, T0, (1, Track.CONFIRMED, 0))
        t = T0 + 2000 * MS      # the tracker stalled 2 s ago
        advance_clock(h, pubs, t)
        _robot(h, pubs, robot_msg(t))
        s = _verdict(h, _people(t, person_msg(1, -5.0)))
        assert s.level == SafetyStatus.UNKNOWN and "track" in s.reason
    finally:
        h.close()


def test_overflowing_and_out_of_range_joints_are_invalid_input(ros_context):
    h, pubs = _rig(ros_context)
    try:
        for k, value in enumerate((1e160, 100.0, math.inf, 1e308)):
            t = T0 + k * 100 * MS
            _robot(h, pubs, robot_msg(t))
            _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
            sk = person_msg(1, -0.3)         # touching the robot
            sk.positions[5].x = value
            s = _verdict(h, _people(t, sk))
            assert s.level == SafetyStatus.UNKNOWN, (value, s.level, s.reason)
            assert s.speed_scale == 0.0
        # the robot with a joint at 1e160: UNKNOWN too
        t = T0 + 400 * MS
        bad = robot_msg(t)
        bad.positions[1].y = 1e160
        _robot(h, pubs, bad)
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        s = _verdict(h, _people(t, person_msg(1, -5.0)))
        assert s.level == SafetyStatus.UNKNOWN, s.reason
        assert h.node.lifecycle_state == "active"
    finally:
        h.close()


def _set_over_service(h, params):
    """set_parameters through the node's service (as `ros2 param set` does): results."""
    client = h.io.create_client(SetParameters, f"/{h.node.get_name()}/set_parameters")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(SetParameters.Request(parameters=[p.to_parameter_msg() for p in params]))
    assert spin_until(h.ex, future.done, 10.0)
    h.io.destroy_client(client)
    return future.result().results


def test_parameters_set_at_run_time_apply_to_the_next_verdict(ros_context):
    h, pubs = _rig(ros_context)
    try:
        _robot(h, pubs, robot_msg(T0))
        _tracks(h, pubs, T0, (1, Track.CONFIRMED, 0))
        before = _verdict(h, _people(T0, person_msg(1, -2.2)))     # ~1.7 m from the robot
        assert before.level != SafetyStatus.PROTECTIVE_STOP, before.reason
        results = _set_over_service(h, [Parameter("reaction_time_s", value=2.0),
                                        Parameter("stopping_time_s", value=2.0)])
        assert all(r.successful for r in results), results
        t = T0 + 10 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        after = _verdict(h, _people(t, person_msg(1, -2.2)))
        assert after.protective_separation_distance_m > before.protective_separation_distance_m + 5.0
        assert after.level == SafetyStatus.PROTECTIVE_STOP, after.reason
        # a read-only parameter is refused, and says so in its descriptor
        refused = _set_over_service(h, [Parameter("depth_carving", value=False)])
        assert not refused[0].successful
        assert h.node.describe_parameter("depth_carving").read_only
        assert not h.node.describe_parameter("reaction_time_s").read_only
        # a set that is invalid together is refused as a whole: nothing of it applies
        bad = _set_over_service(h, [Parameter("reaction_time_s", value=0.1), Parameter("max_age_s", value=-1.0)])
        assert not all(r.successful for r in bad)
        assert h.node.param("max_age_s") > 0
    finally:
        h.close()


def test_inputs_in_different_frames_are_transformed_or_unknown(ros_context):
    h, pubs = _rig(ros_context)
    try:
        base_pose_pub = h.io.create_publisher(PoseStamped, BASE_POSE_TOPIC, QOS)
        assert spin_until(h.ex, lambda: base_pose_pub.get_subscription_count() > 0, 10.0)
        # the robot in its base frame, the people in the camera frame, no transform: UNKNOWN
        robot = robot_msg(T0)
        robot.header.frame_id = "panda_link0"
        _robot(h, pubs, robot)
        _tracks(h, pubs, T0, (1, Track.CONFIRMED, 0))
        s = _verdict(h, _people(T0, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.UNKNOWN and "frame" in s.reason, s.reason
        # the camera-to-robot pose: the base 5 m to the right of the camera's axis
        pose = PoseStamped(header=make_header(T0, FRAME_ID))
        pose.pose.position.x = 5.0
        pose.pose.orientation.w = 1.0
        base_pose_pub.publish(pose)
        assert spin_until(h.ex, lambda: h.node._base_pose is not None, 10.0)
        t = T0 + 10 * MS
        robot = robot_msg(t)
        robot.header.frame_id = "panda_link0"
        _robot(h, pubs, robot)
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        s = _verdict(h, _people(t, person_msg(1, 4.0)))     # 1 m from the robot once it is placed
        assert s.level == SafetyStatus.PROTECTIVE_STOP, s.reason
        # people without a frame: UNKNOWN
        t += 10 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        msg = _people(t, person_msg(1, -4.0))
        msg.header.frame_id = ""
        for sk in msg.skeletons:
            sk.header.frame_id = ""
        h.pub.publish(msg)
        assert spin_until(h.ex, lambda: h.node.counters.get("no_frame_id", 0) == 1, 10.0)
        assert h.node._people_stamp_ns != t     # refused: not held
    finally:
        h.close()


def test_a_rejected_or_future_message_never_moves_the_clock(ros_context):
    h, pubs = _rig(ros_context)
    node = h.node
    try:
        # an all-zero K stamped one hour ahead: rejected, and the clock does not move
        bad = K_to_camera_info(make_K(300, 300, 160, 120), 320, 240, make_header(T0 + 3600 * 10**9, FRAME_ID))
        bad.k = [0.0] * 9
        pubs[CAMERA_INFO_TOPIC].publish(bad)
        assert spin_until(h.ex, lambda: node.counters.get("bad_camera_info", 0) == 1, 10.0)
        _robot(h, pubs, robot_msg(T0))
        _tracks(h, pubs, T0, (1, Track.CONFIRMED, 0))
        s = _verdict(h, _people(T0, person_msg(1, -5.0)))
        assert s.level == SafetyStatus.OK and s.data_age_s < 1.0, s.reason
        # a valid camera_info one hour ahead of everything: refused and counted
        ahead = K_to_camera_info(make_K(300, 300, 160, 120), 320, 240, make_header(T0 + 3600 * 10**9, FRAME_ID))
        pubs[CAMERA_INFO_TOPIC].publish(ahead)
        assert spin_until(h.ex, lambda: node.counters.get("stamp_ahead", 0) == 1, 10.0)
        t = T0 + 10 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        s = _verdict(h, _people(t, person_msg(1, -5.0)))
        assert s.level == SafetyStatus.OK and s.data_age_s < 1.0, s.reason
        # the bag loops: every input jumps back 60 s; the clock follows, OK again
        ok_again = None
        for k in range(8):
            t = T0 - 60 * 10**9 + k * 10 * MS
            pubs[CAMERA_INFO_TOPIC].publish(K_to_camera_info(make_K(300, 300, 160, 120), 320, 240,
                                                             make_header(t, FRAME_ID)))
            _robot_or_reset(h, pubs, t)
            _tracks_or_reset(h, pubs, t)
            s = _verdict(h, _people(t, person_msg(1, -5.0)))
            if s.level == SafetyStatus.OK:
                ok_again = k
                break
        assert ok_again is not None, s.reason
        assert node.counters.get("clock_jump", 0) == 1, sorted(node.counters.items())
    finally:
        h.close()


def _robot_or_reset(h, pubs, stamp_ns):
    """Publish a robot skeleton and wait until the node has handled it (held or refused)."""
    n = h.node.inputs_handled
    pubs["robot/skeleton"].publish(robot_msg(stamp_ns))
    assert spin_until(h.ex, lambda: h.node.inputs_handled > n, 10.0)


def _tracks_or_reset(h, pubs, stamp_ns):
    n = h.node.inputs_handled
    pubs[TRACKS_TOPIC].publish(TrackArray(header=make_header(stamp_ns, FRAME_ID), tracks=[
        Track(track_id=1, class_name="person", state=Track.CONFIRMED, time_since_update=0)]))
    assert spin_until(h.ex, lambda: h.node.inputs_handled > n, 10.0)


def test_older_inputs_never_replace_newer_ones(ros_context):
    """Reordered messages: an older, emptier SkeletonArray or an older robot pose must not
    replace the newer ones (a person next to the robot would vanish)."""
    h, pubs = _rig(ros_context)
    try:
        t = T0 + 100 * MS
        _robot(h, pubs, robot_msg(t))
        _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
        near = _verdict(h, _people(t, person_msg(1, -0.8)))
        assert near.level == SafetyStatus.PROTECTIVE_STOP
        n = h.node.counters.get("out_of_order", 0)
        h.pub.publish(_people(t - 50 * MS))      # an older frame with nobody
        assert spin_until(h.ex, lambda: h.node.counters.get("out_of_order", 0) > n, 10.0)
        count = h.node.verdicts
        assert spin_until(h.ex, lambda: h.node.verdicts > count, 10.0)
        assert [p.id for p in h.node._people] == [1]
        # (the timer's verdict may come after the robot's 0.5 s max age: then UNKNOWN)
        assert h.node.last_verdict.level in (SafetyStatus.PROTECTIVE_STOP, SafetyStatus.UNKNOWN)
    finally:
        h.close()


def test_the_status_has_deadline_and_liveliness_and_a_last_stop_before_going_silent(ros_context):
    h, pubs = _rig(ros_context)
    try:
        info = h.io.get_publishers_info_by_topic(STATUS_TOPIC)
        assert info, "no status publisher"
        qos = info[0].qos_profile
        deadline_ns = round(h.node.param("status_deadline_s") * 1e9)
        assert qos.deadline.nanoseconds == deadline_ns and qos.liveliness_lease_duration.nanoseconds == deadline_ns
        assert qos.liveliness == LivelinessPolicy.MANUAL_BY_TOPIC
        _robot(h, pubs, robot_msg(T0))
        _tracks(h, pubs, T0, (1, Track.CONFIRMED, 0))
        assert _verdict(h, _people(T0, person_msg(1, -5.0))).level == SafetyStatus.OK
        n = len(h.received[STATUS_TOPIC])
        h.node.trigger_deactivate()
        assert spin_until(h.ex, lambda: len(h.received[STATUS_TOPIC]) > n, 10.0)
        last = h.received[STATUS_TOPIC][-1]
        assert last.level in (SafetyStatus.PROTECTIVE_STOP, SafetyStatus.UNKNOWN) and last.speed_scale == 0.0
        assert "deactivat" in last.reason
    finally:
        h.close()


def test_a_person_standing_still_counts_at_the_iso_13855_speed(ros_context):
    """Speed floors (ISO 13855): a measured speed of 0 does not shrink S_p below 1.6 m/s."""
    h, pubs = _rig(ros_context)
    try:
        for k in range(3):   # the same person, standing still, three frames
            t = T0 + k * 100 * MS
            _robot(h, pubs, robot_msg(t))
            _tracks(h, pubs, t, (1, Track.CONFIRMED, 0))
            s = _verdict(h, _people(t, person_msg(1, -4.0)))
        s_h = s.protective_separation_distance_m
        # S_p at rest of the robot and 1.6 m/s, with T_r 0.1 + age and T_s 0.3: > 1.6 * 0.4
        assert s_h > 1.6 * 0.4 + 0.2, s_h
    finally:
        h.close()

