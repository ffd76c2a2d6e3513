"""The safety_monitor node over real rclpy and DDS: levels from people and robot skeletons,
the fail-safe rules (nothing received, a robot joint unknown, a person tracked without a
skeleton, a malformed skeleton, stale inputs), and the robot from joint_states by forward
kinematics placed with the base_pose parameter, and unknown legs carved by the depth image
of the skeletons' frame."""
import math
import time

import numpy as np
from conftest import QOS, Harness, spin_until
from geometry_msgs.msg import Point
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, JointState
from visualization_msgs.msg import MarkerArray

from hrc_perception.geometry import invert_T, make_K, make_T, matrix_from_quaternion
from hrc_perception.msg import SafetyStatus, Skeleton, SkeletonArray, Track, TrackArray
from hrc_perception.ros.convert import K_to_camera_info, matrix_to_transform, numpy_to_image, transform_to_matrix
from hrc_perception.ros.ground_truth_msgs import make_header
from hrc_perception.ros.safety_monitor_node import (CAMERA_INFO_TOPIC, DEPTH_TOPIC, HUMANS_TOPIC, JOINT_STATES_TOPIC,
                                                    MARKERS_TOPIC, ROBOT_TOPIC, STATUS_TOPIC, TRACKS_TOPIC,
                                                    SafetyMonitorNode)
from hrc_perception.skeletons import COCO17_NAMES

FRAME_ID = "camera_color_optical_frame"
T0 = 3_000 * 10**9


def person_msg(id_: int, x_m: float, z_m: float = 3.0) -> Skeleton:
    """A person standing at x (camera frame, y down), all 17 joints known."""
    sk = Skeleton(model="coco17", id=id_, joint_names=list(COCO17_NAMES))
    for j, name in enumerate(COCO17_NAMES):
        y = -1.6 + 1.5 * j / 16
        dx = -0.2 if name.startswith("left") else 0.2 if name.startswith("right") else 0.0
        sk.positions.append(Point(x=x_m + dx, y=y, z=z_m))
    sk.confidence = [1.0] * 17
    return sk


def robot_msg(stamp_ns: int, x_m: float = 0.0, nan_joint: int | None = None) -> Skeleton:
    sk = Skeleton(header=make_header(stamp_ns, FRAME_ID), model="panda", joint_names=["j0", "j1", "j2", "j3"])
    for j in range(4):
        nan = j == nan_joint
        sk.positions.append(Point(x=math.nan if nan else x_m, y=-0.5 - 0.4 * j, z=3.0))
    return sk


def _rig(ros_context, cli_args=None, **params):
    """The monitor with a harness. The test scenes put the robot anywhere in front of the
    camera, so the space beside the view is guarded unless a test asks otherwise
    (test_the_skeleton_path_counts_the_space_beside_the_view)."""
    params.setdefault("unseen_space", "guarded")
    overrides = [Parameter("input_reliability", value="reliable"), Parameter("check_rate_hz", value=1.0),
                 Parameter("status_deadline_s", value=3.0)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    node = SafetyMonitorNode(context=ros_context, parameter_overrides=overrides, cli_args=cli_args)
    assert node.lifecycle_state == "active"
    h = Harness(ros_context, node, HUMANS_TOPIC, SkeletonArray, {STATUS_TOPIC: SafetyStatus,
                                                                 MARKERS_TOPIC: MarkerArray})
    topics = {ROBOT_TOPIC: Skeleton, TRACKS_TOPIC: TrackArray, CAMERA_INFO_TOPIC: CameraInfo,
              JOINT_STATES_TOPIC: JointState, DEPTH_TOPIC: Image}
    pubs = {t: h.io.create_publisher(m, t, QOS) for t, m in topics.items()}
    wanted = [TRACKS_TOPIC, CAMERA_INFO_TOPIC] + [ROBOT_TOPIC if node.param("robot_source") == "skeleton"
                                                  else JOINT_STATES_TOPIC]
    assert spin_until(h.ex, lambda: all(pubs[t].get_subscription_count() > 0 for t in wanted))
    return h, pubs


def _people(stamp_ns, *skeletons) -> SkeletonArray:
    msg = SkeletonArray(header=make_header(stamp_ns, FRAME_ID))
    for sk in skeletons:
        sk.header = make_header(stamp_ns, FRAME_ID)
        msg.skeletons.append(sk)
    return msg


def _verdict(h, msg: SkeletonArray) -> SafetyStatus:
    """Publish people; the status received after the node processed them (a timer verdict
    can come first: the last one after a short flush reflects this message)."""
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    n = h.node.verdicts
    h.pub.publish(msg)
    assert spin_until(h.ex, lambda: h.node._people_stamp_s is not None and abs(h.node._people_stamp_s - stamp) < 1e-9
                      and h.node.verdicts > n)
    count = h.node.verdicts
    assert spin_until(h.ex, lambda: len(h.received[STATUS_TOPIC]) >= count)
    return h.received[STATUS_TOPIC][-1]


def advance_clock(h, pubs, to_ns: int, step_ns: int = 4 * 10**8) -> None:
    """camera_info messages in steps (within the monitor's max_stamp_lead_s) up to to_ns:
    the cell's time moves on (a camera 2 s ahead at once is refused)."""
    t = h.node._stamp_clock.stamp_s
    t = int(round(t * 1e9)) if t is not None else to_ns
    while t < to_ns:
        t = min(t + step_ns, to_ns)
        pubs[CAMERA_INFO_TOPIC].publish(K_to_camera_info(make_K(300, 300, 160, 120), 320, 240,
                                                         make_header(t, FRAME_ID)))
        assert spin_until(h.ex, lambda: h.node._stamp_clock.stamp_s is not None
                          and h.node._stamp_clock.now(time.monotonic()) >= t * 1e-9 - 1e-9, 10.0)


def _robot(h, pubs, msg):
    pubs[ROBOT_TOPIC].publish(msg)
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    assert spin_until(h.ex, lambda: h.node._robot is not None and abs(h.node._robot.stamp_s - stamp) < 1e-6)


def test_levels_and_fail_safe(ros_context):
    h, pubs = _rig(ros_context, require_tracks=False, release_hold_s=0.0)    # the hold: test_ros_safety_fail_safe
    node = h.node
    try:
        # nothing yet: the timer says UNKNOWN
        assert spin_until(h.ex, lambda: h.received[STATUS_TOPIC], 3.0)
        assert h.received[STATUS_TOPIC][0].level == SafetyStatus.UNKNOWN
        # people before any robot skeleton: UNKNOWN
        s = _verdict(h, _people(T0, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.UNKNOWN and "robot" in s.reason and s.speed_scale == 0.0
        # a person far away: OK, with the distance, S_p and the closest pair; stamped with the inputs' time
        _robot(h, pubs, robot_msg(T0 + 10**7))
        s = _verdict(h, _people(T0 + 2 * 10**7, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.OK, s.reason
        assert 3.0 < s.min_distance_m < 4.0 and 0.0 < s.protective_separation_distance_m < s.min_distance_m
        assert s.closest_human_id == 1 and s.closest_robot_joint.startswith("j") and s.closest_human_joint
        assert 0.0 < s.speed_scale <= 1.0 and s.header.frame_id == FRAME_ID
        assert s.header.stamp.sec * 10**9 + s.header.stamp.nanosec == T0 + 2 * 10**7   # the people's frame, exactly
        assert 0.0 <= s.data_age_s < 0.5
        # a person next to the robot: PROTECTIVE_STOP, speed 0, markers
        _robot(h, pubs, robot_msg(T0 + 3 * 10**7))
        s = _verdict(h, _people(T0 + 4 * 10**7, person_msg(2, -0.5)))
        assert s.level == SafetyStatus.PROTECTIVE_STOP and s.speed_scale == 0.0 and s.closest_human_id == 2
        assert spin_until(h.ex, lambda: any(m.ns == "safety_distance" for a in h.received[MARKERS_TOPIC]
                                            for m in a.markers))
        # the label says what set it: person 2's joint and the robot's joint
        assert spin_until(h.ex, lambda: any(m.ns == "safety_label" and m.text.startswith("PROTECTIVE_STOP")
                                            and f"person 2 {s.closest_human_joint} - {s.closest_robot_joint}"
                                            in m.text for a in h.received[MARKERS_TOPIC] for m in a.markers))
        # a person tracked in this image without a skeleton: UNKNOWN
        stamp = T0 + 6 * 10**7
        _robot(h, pubs, robot_msg(stamp))
        tracks = TrackArray(header=make_header(stamp, FRAME_ID), tracks=[
            Track(track_id=1, class_name="person", time_since_update=0),
            Track(track_id=9, class_name="person", time_since_update=0)])
        pubs[TRACKS_TOPIC].publish(tracks)
        assert spin_until(h.ex, lambda: len(node._tracks) == 1)
        s = _verdict(h, _people(stamp, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.UNKNOWN and "9" in s.reason
        # the tracker (ahead of human_pose) still sees person 9 in a newer image: still UNKNOWN
        pubs[TRACKS_TOPIC].publish(TrackArray(header=make_header(stamp + 2 * 10**5, FRAME_ID), tracks=[
            Track(track_id=1, class_name="person", time_since_update=0),
            Track(track_id=9, class_name="person", time_since_update=0)]))
        assert spin_until(h.ex, lambda: len(node._tracks) == 2)
        s = _verdict(h, _people(stamp + 10**5, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.UNKNOWN and "9" in s.reason
        # person 9 let go by the tracker (coasting, it would still be in the cell: never seen with a
        # skeleton, UNKNOWN)
        pubs[TRACKS_TOPIC].publish(TrackArray(header=make_header(stamp + 3 * 10**5, FRAME_ID), tracks=[
            Track(track_id=1, class_name="person", time_since_update=0),
            Track(track_id=9, class_name="person", state=Track.DELETED, time_since_update=1)]))
        assert spin_until(h.ex, lambda: len(node._tracks) == 3)
        # a person with too few known joints, a skeleton of another model: UNKNOWN
        few = person_msg(1, -4.0)
        for p in few.positions[2:]:
            p.x = math.nan
        s = _verdict(h, _people(stamp + 1 * 10**6, few))
        assert s.level == SafetyStatus.UNKNOWN and "known joints" in s.reason
        wrong = person_msg(1, -4.0)
        wrong.model = "panda"
        s = _verdict(h, _people(stamp + 2 * 10**6, wrong))
        assert s.level == SafetyStatus.UNKNOWN and node.counters["bad_person_skeleton"] == 1
        # a robot joint unknown: UNKNOWN
        _robot(h, pubs, robot_msg(stamp + 3 * 10**6, nan_joint=2))
        s = _verdict(h, _people(stamp + 4 * 10**6, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.UNKNOWN and "j2" in s.reason
        # fresh robot, but the camera is 2 s ahead of the skeletons: stale, UNKNOWN
        _robot(h, pubs, robot_msg(stamp + 5 * 10**6))
        assert _verdict(h, _people(stamp + 6 * 10**6, person_msg(1, -4.0))).level == SafetyStatus.OK
        advance_clock(h, pubs, stamp + 2 * 10**9)
        s = _verdict(h, _people(stamp + 7 * 10**6, person_msg(1, -4.0)))
        assert s.level == SafetyStatus.UNKNOWN and "old" in s.reason and s.data_age_s > 1.5
        assert node.lifecycle_state == "active"
        assert node.level_counts["OK"] >= 2 and node.level_counts["PROTECTIVE_STOP"] >= 1
    finally:
        h.close()


def test_min_distance_is_the_surface_distance_negative_on_overlap(ros_context):
    """SafetyStatus.min_distance_m is what its .msg comment says: the surface-to-surface
    distance of the person's body and the robot's link capsules (shorter than any
    joint-to-joint distance), negative when they overlap."""
    from pathlib import Path
    lines = (Path(__file__).resolve().parents[1] / "msg" / "SafetyStatus.msg").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("float32 min_distance_m"))
    doc = lines[first].split("#", 1)[1]
    for line in lines[first + 1:]:
        if not line.lstrip().startswith("#"):
            break
        doc += " " + line.split("#", 1)[1].strip()
    assert "surface-to-surface" in doc and "negative when they overlap" in doc and "closest human joint" not in doc
    h, pubs = _rig(ros_context, require_tracks=False)
    try:
        _robot(h, pubs, robot_msg(T0))           # links along x = 0, 3 m in front of the camera
        far = _verdict(h, _people(T0 + 10**7, person_msg(1, -4.0)))     # nearest joints 3.8 m apart
        robot_radius_m = h.node.param("robot_link_radius_m")
        assert far.level == SafetyStatus.OK and 3.0 < far.min_distance_m < 3.8 - robot_radius_m, far.min_distance_m
        overlap = _verdict(h, _people(T0 + 2 * 10**7, person_msg(2, 0.0)))   # standing in the robot
        assert overlap.level == SafetyStatus.PROTECTIVE_STOP and overlap.min_distance_m < 0.0, overlap
    finally:
        h.close()


def _panda_joint_states(h, pubs, stamp_ns=T0):
    """A Panda's joint_states at stamp_ns; the monitor holds the robot (in panda_link0) after it."""
    names = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]
    js = JointState(header=make_header(stamp_ns, ""), name=names,
                    position=[0, -0.5, 0, -2.0, 0, 1.5, 0.8, 0.02, 0.02])
    pubs[JOINT_STATES_TOPIC].publish(js)
    assert spin_until(h.ex, lambda: h.node._robot_stamp_ns == stamp_ns)


def test_robot_from_joint_states_and_base_pose(ros_context):
    # the robot base 3 m in front of the camera, base z axis = camera -y (up)
    c = math.sqrt(0.5)
    h, pubs = _rig(ros_context, require_tracks=False, robot_source="joint_states",
                   base_pose=["0", "0.5", "3.0", str(-c), "0", "0", str(c)])
    node = h.node
    try:
        _panda_joint_states(h, pubs)
        assert node._robot.positions_m.shape == (8, 3) and node._robot.frame_id == "panda_link0"
        in_camera = node._robot_in(FRAME_ID)    # placed with the base_pose parameter
        np.testing.assert_allclose(in_camera.positions_m[0], [0, 0.5, 3.0], atol=1e-6)   # link0 at the base
        near = _verdict(h, _people(T0 + 10**7, person_msg(4, -0.4)))
        assert near.level == SafetyStatus.PROTECTIVE_STOP and near.closest_robot_joint.startswith("panda_")
        far = _verdict(h, _people(T0 + 2 * 10**7, person_msg(5, -6.0)))   # another person (id 4 would move 560 m/s)
        assert far.level == SafetyStatus.OK, far.reason
        # joint_states without the arm joints: reported, the last robot state ages out
        pubs[JOINT_STATES_TOPIC].publish(JointState(header=make_header(T0 + 3 * 10**7, ""), name=["x"],
                                                    position=[0.0]))
        assert spin_until(h.ex, lambda: node.counters.get("joint_states_unusable", 0) == 1)
    finally:
        h.close()


class _TfTree:
    """What tf2_ros' Buffer answers from the transforms sent (not installed here): an edge
    looked up either way, T_target_source."""

    def __init__(self, *msgs):
        self.edges = {(m.header.frame_id, m.child_frame_id): transform_to_matrix(m.transform) for m in msgs}

    def lookup_transform(self, target, source, time):
        from geometry_msgs.msg import TransformStamped
        if (target, source) in self.edges:
            T = self.edges[(target, source)]
        elif (source, target) in self.edges:
            T = invert_T(self.edges[(source, target)])
        else:
            raise LookupError(f"no transform {source} -> {target}")
        return TransformStamped(transform=matrix_to_transform(T))


def test_robot_placed_by_robot_pose_tf_in_either_direction_as_by_base_pose(ros_context):
    """robot_pose's TF (the camera a child of the robot base by default, the old camera ->
    base tree too) places the robot where robot/base_pose does: the monitor looks the
    transform up, it does not depend on the tree's direction."""
    from hrc_perception.ros.robot_pose_node import camera_tf
    c = math.sqrt(0.5)
    T_cam_base = make_T(matrix_from_quaternion(np.array([-c, 0, 0, c])), [0.0, 0.5, 3.0])
    h, pubs = _rig(ros_context, require_tracks=False, robot_source="joint_states")
    node = h.node
    try:
        _panda_joint_states(h, pubs)
        in_base = node._robot.positions_m
        expected = in_base @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
        assert node._robot_in(FRAME_ID).frame_id != FRAME_ID     # nothing places it yet
        header = make_header(T0, FRAME_ID)
        for direction in ("base_to_camera", "camera_to_base"):
            node._tf_buffer = _TfTree(camera_tf(header, T_cam_base, "panda_link0", direction=direction))
            placed = node._robot_in(FRAME_ID)
            assert placed.frame_id == FRAME_ID
            np.testing.assert_allclose(placed.positions_m, expected, atol=1e-9)
        near = _verdict(h, _people(T0 + 10**7, person_msg(4, -0.4)))
        assert near.level == SafetyStatus.PROTECTIVE_STOP, near.reason
        node._tf_buffer = None
        node._base_pose = (FRAME_ID, T_cam_base)      # what robot/base_pose carries
        np.testing.assert_allclose(node._robot_in(FRAME_ID).positions_m, expected, atol=1e-9)
    finally:
        h.close()


def test_base_pose_topic_can_be_remapped(ros_context):
    """As the demo graph does: the calibrated extrinsic from another topic."""
    from geometry_msgs.msg import PoseStamped
    h, _ = _rig(ros_context, cli_args=["--ros-args", "-r", "robot/base_pose:=ground_truth/robot/base_pose"],
                robot_source="joint_states")
    try:
        pub = h.io.create_publisher(PoseStamped, "ground_truth/robot/base_pose", QOS)
        assert spin_until(h.ex, lambda: pub.get_subscription_count() > 0)
        msg = PoseStamped(header=make_header(T0, FRAME_ID))
        msg.pose.position.z = 2.5
        msg.pose.orientation.w = 1.0
        pub.publish(msg)
        assert spin_until(h.ex, lambda: h.node._base_pose is not None)
        assert h.node._base_pose[0] == FRAME_ID and h.node._base_pose[1][2, 3] == 2.5
    finally:
        h.close()


def test_unknown_legs_carved_by_the_depth_of_their_frame(ros_context):
    """A person whose nearer hip is 1.8 m left of the robot (both 3 m away), with knees and
    ankles unknown: the legs' 1.38 m reach spheres come within S_p of the robot. The depth image of that frame shows the
    person's torso and arms and, where legs could be, a wall 2 m behind them: carved, the
    legs are no nearer than the person's silhouette. (A person standing still, the ISO 13855
    speed floors lowered to 0.2 m/s for this check.)"""
    h, pubs = _rig(ros_context, require_tracks=False, min_human_speed_mps=0.2, min_arm_speed_mps=0.2)
    node = h.node
    K, w, h_px = make_K(400, 400, 319.5, 239.5), 640, 480    # at 3 m: u = 319.5 + 133 x, v = 239.5 + 133 y
    depth_mm = np.full((h_px, w), 5000, np.uint16)      # the wall
    depth_mm[10:235, 65:175] = 3000                      # the person (x -1.8 .. -1.2 m, y -1.6 .. -0.1 m)
    depth_mm[5:190, 372:400] = 3000                      # the robot (x = 0.5, y -1.7 .. -0.5 m)
    legless = person_msg(1, -1.5)
    for name in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        legless.positions[COCO17_NAMES.index(name)].x = math.nan
    try:
        assert spin_until(h.ex, lambda: pubs[DEPTH_TOPIC].get_subscription_count() > 0)
        pubs[CAMERA_INFO_TOPIC].publish(K_to_camera_info(K, w, h_px, make_header(T0, FRAME_ID)))
        assert spin_until(h.ex, lambda: node._camera is not None)
        # no depth of this frame: whole reach spheres, within S_p
        _robot(h, pubs, robot_msg(T0, x_m=0.5))
        whole = _verdict(h, _people(T0, legless))
        assert whole.level == SafetyStatus.PROTECTIVE_STOP and whole.closest_human_joint.endswith("hip")
        assert whole.min_distance_m < 0.4 and node.counters["carving_without_depth"] == 1
        # the depth of the frame: the legs carved to the person's silhouette
        stamp = T0 + 10**7
        pubs[DEPTH_TOPIC].publish(numpy_to_image(depth_mm, "16UC1", make_header(stamp, FRAME_ID)))
        assert spin_until(h.ex, lambda: stamp in node._depths)
        _robot(h, pubs, robot_msg(stamp, x_m=0.5))
        carved = _verdict(h, _people(stamp, legless))
        assert carved.min_distance_m > whole.min_distance_m + 0.3, carved.reason
        assert carved.level != SafetyStatus.PROTECTIVE_STOP and node.carved_frames == 1
        # a depth image whose size is not the camera_info's is not used
        stamp2 = stamp + 10**7
        pubs[DEPTH_TOPIC].publish(numpy_to_image(depth_mm[:240, :320].copy(), "16UC1", make_header(stamp2, FRAME_ID)))
        assert spin_until(h.ex, lambda: stamp2 in node._depths)
        _robot(h, pubs, robot_msg(stamp2, x_m=0.5))
        again = _verdict(h, _people(stamp2, legless))
        assert abs(again.min_distance_m - whole.min_distance_m) < 1e-6    # whole spheres again
        assert node.counters["carving_without_depth"] == 2
        # a depth image of another encoding: reported, the node lives on
        pubs[DEPTH_TOPIC].publish(numpy_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8", make_header(stamp2, FRAME_ID)))
        assert spin_until(h.ex, lambda: node.counters.get("bad_depth", 0) == 1)
        assert node.lifecycle_state == "active"
    finally:
        h.close()


def test_depth_carving_off_needs_no_depth(ros_context):
    h, pubs = _rig(ros_context, require_tracks=False, depth_carving=False)
    try:
        assert h.node.count_subscribers(DEPTH_TOPIC) == 0
        _robot(h, pubs, robot_msg(T0))
        legless = person_msg(1, -1.0)
        for name in ("left_knee", "right_knee"):
            legless.positions[COCO17_NAMES.index(name)].x = math.nan
        s = _verdict(h, _people(T0, legless))
        assert s.level == SafetyStatus.PROTECTIVE_STOP and "carving_without_depth" not in h.node.counters
    finally:
        h.close()


def _depth_status(h, pubs, depth_mm, stamp_ns):
    """Publish a depth frame; the status about it (stamped with it)."""
    n = h.node.verdicts
    pubs[DEPTH_TOPIC].publish(numpy_to_image(depth_mm, "16UC1", make_header(stamp_ns, FRAME_ID)))
    stamp = stamp_ns * 1e-9

    def about_it():
        return [s for s in h.received[STATUS_TOPIC][n:]
                if abs(s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 - stamp) < 1e-6]
    assert spin_until(h.ex, lambda: bool(about_it()), 10.0)
    return about_it()[-1]


def test_depth_path_alone_judges_every_depth_frame(ros_context, tmp_path):
    """depth_path alone: no skeletons at all. A wall 5 m away is the learned background; the
    robot (joint_states, base_pose) stands 4 m in front of the camera. Each depth frame gets
    its status: the empty cell OK; a body at 1 m in front of the robot (the space hidden
    behind it comes near the robot) PROTECTIVE_STOP, naming the pixel; a covered camera
    UNKNOWN; a stale robot UNKNOWN. The space beside the view is guarded here (the next test
    has it occupied)."""
    from hrc_perception.safety.background import BackgroundDepth
    w, h_px = 320, 240
    K = make_K(300, 300, 160, 120)
    wall = np.full((h_px, w), 5000, np.uint16)
    BackgroundDepth(wall.astype(np.float32) / 1000).save(tmp_path / "bg.npz")
    c = math.sqrt(0.5)
    h, pubs = _rig(ros_context, require_tracks=False, robot_source="joint_states", depth_path="alone",
                   background_file=str(tmp_path / "bg.npz"), base_pose=["0", "0.5", "4.0", str(-c), "0", "0", str(c)],
                   unseen_space="guarded", publish_depth_debug_image=True)
    node = h.node
    try:
        assert spin_until(h.ex, lambda: pubs[DEPTH_TOPIC].get_subscription_count() > 0)
        pubs[CAMERA_INFO_TOPIC].publish(K_to_camera_info(K, w, h_px, make_header(T0, FRAME_ID)))
        assert spin_until(h.ex, lambda: node._camera is not None)
        _panda_joint_states(h, pubs)
        empty = _depth_status(h, pubs, wall, T0 + 10**7)
        assert empty.level == SafetyStatus.OK and "no unexplained foreground" in empty.reason, empty.reason
        body = wall.copy()
        body[100:140, 140:180] = 1000
        stop = _depth_status(h, pubs, body, T0 + 2 * 10**7)
        assert stop.level == SafetyStatus.PROTECTIVE_STOP and stop.min_distance_m < 0.3, stop
        assert "pixel (1" in stop.reason and stop.closest_robot_joint.startswith("panda_")
        # the depth path's view (at most depth_debug_rate_hz), after the statuses
        assert spin_until(h.ex, lambda: node.depth_debug_images >= 1), node.counters
        covered = _depth_status(h, pubs, np.zeros_like(wall), T0 + 3 * 10**7)
        assert covered.level == SafetyStatus.UNKNOWN and "covered" in covered.reason
        assert node.depth_frames_judged == 3
        # the robot's joint_states age out: the depth path stops too
        advance_clock(h, pubs, T0 + 10**9)
        stale = _depth_status(h, pubs, wall, T0 + 10**9)
        assert stale.level == SafetyStatus.UNKNOWN and "robot" in stale.reason, stale.reason
    finally:
        h.close()


def test_depth_path_background_follows_what_moves_away_never_what_stays(ros_context, tmp_path):
    """A box at 3 m stood in the learned background where the wall (5 m) is now seen: after
    background_reveal_after_s of the wall there, the background takes it, so a body at 4 m
    in that place (behind where the box was: invisible before) is foreground. A body
    standing still is never taken into the background."""
    from hrc_perception.safety.background import BackgroundDepth
    w, h_px = 320, 240
    wall = np.full((h_px, w), 5000, np.uint16)
    learned = wall.astype(np.float32) / 1000
    learned[100:140, 140:180] = 3.0                          # the box, since taken away
    BackgroundDepth(learned).save(tmp_path / "bg.npz")
    c = math.sqrt(0.5)
    h, pubs = _rig(ros_context, require_tracks=False, robot_source="joint_states", depth_path="alone",
                   background_file=str(tmp_path / "bg.npz"), base_pose=["0", "0.5", "4.0", str(-c), "0", "0", str(c)],
                   unseen_space="guarded", background_reveal_after_s=1.0, max_age_s=2.0)
    node = h.node
    try:
        assert spin_until(h.ex, lambda: pubs[DEPTH_TOPIC].get_subscription_count() > 0)
        info = K_to_camera_info(make_K(300, 300, 160, 120), w, h_px, make_header(T0, FRAME_ID))
        pubs[CAMERA_INFO_TOPIC].publish(info)
        assert spin_until(h.ex, lambda: node._camera is not None)
        body = wall.copy()
        body[100:140, 140:180] = 4000
        _panda_joint_states(h, pubs, T0)
        hidden = _depth_status(h, pubs, body, T0 + 10**7)
        assert hidden.level == SafetyStatus.OK, hidden.reason        # farther than the box: not foreground yet
        for t in (T0 + 2 * 10**8, T0 + 6 * 10**8, T0 + 12 * 10**8):    # the wall seen there for 1 s
            advance_clock(h, pubs, t)
            _panda_joint_states(h, pubs, t)
            _depth_status(h, pubs, wall, t + 10**7)
        assert node.background_revealed_px == 40 * 40
        assert np.allclose(node._background.depth_m[100:140, 140:180], 5.0)
        t = T0 + 13 * 10**8
        _panda_joint_states(h, pubs, t)
        seen = _depth_status(h, pubs, body, t + 10**7)
        assert seen.level != SafetyStatus.OK and "unexplained foreground" in seen.reason, seen.reason
        for t in (T0 + 20 * 10**8, T0 + 30 * 10**8):                 # the body stays: never background
            advance_clock(h, pubs, t)
            _panda_joint_states(h, pubs, t)
            still = _depth_status(h, pubs, body, t + 10**7)
            assert still.level == seen.level and "unexplained foreground" in still.reason
        assert node.background_revealed_px == 40 * 40
    finally:
        h.close()


def _with_fresh_robot(h, pubs, act, done, tries: int = 8) -> SafetyStatus:
    """Publish the Panda's joint_states at the cell's time now, then act(stamp_ns) 10 ms later,
    until done(status): on a busy machine the robot skeleton can age past max_age_s before the
    verdict is computed (UNKNOWN "robot skeleton is ... old"). No try may be OK."""
    for _ in range(tries):
        t = int(h.node._stamp_clock.now(time.monotonic()) * 1e9)
        _panda_joint_states(h, pubs, t)
        s = act(t + 10**7)
        assert s.level != SafetyStatus.OK, s.reason
        if done(s):
            break
    return s


def test_depth_path_learns_the_background_first(ros_context):
    """Without a background_file the first background_learn_frames frames are the empty
    cell's background: UNKNOWN while it is learned, then judged; the space beside the view
    counts (unseen_space occupied, the default)."""
    w, h_px = 320, 240
    c = math.sqrt(0.5)
    h, pubs = _rig(ros_context, require_tracks=False, robot_source="joint_states", depth_path="with_skeletons",
                   background_learn_frames=3, base_pose=["0", "0.5", "4.0", str(-c), "0", "0", str(c)],
                   unseen_space="occupied")
    try:
        assert spin_until(h.ex, lambda: pubs[DEPTH_TOPIC].get_subscription_count() > 0)
        pubs[CAMERA_INFO_TOPIC].publish(K_to_camera_info(make_K(300, 300, 160, 120), w, h_px,
                                                         make_header(T0, FRAME_ID)))
        assert spin_until(h.ex, lambda: h.node._camera is not None)
        _panda_joint_states(h, pubs)
        wall = np.full((h_px, w), 5000, np.uint16)
        for k in range(3):
            s = _depth_status(h, pubs, wall, T0 + (k + 1) * 10**7)
            assert s.level == SafetyStatus.UNKNOWN and ("learning" in s.reason or "learned" in s.reason), s.reason
        assert h.node._background is not None
        t1 = T0 + 3 * 10**9                   # later than learning took, however busy the machine
        advance_clock(h, pubs, t1)
        # with_skeletons: no people message yet, so the skeletons' verdict is UNKNOWN and so is the worse of both
        s = _with_fresh_robot(h, pubs, lambda t: _depth_status(h, pubs, wall, t), lambda s: "people" in s.reason)
        assert s.level == SafetyStatus.UNKNOWN and "people" in s.reason, s.reason
        # nobody in view, yet the edge of the view is 0.2 m from the robot: what is beside it may be a person
        s = _with_fresh_robot(h, pubs, lambda t: _verdict(h, _people(t)),
                              lambda s: s.level == SafetyStatus.PROTECTIVE_STOP)
        assert s.level == SafetyStatus.PROTECTIVE_STOP and "unseen space beside the camera's view" in s.reason, s
    finally:
        h.close()


def test_depth_path_needs_joint_states(ros_context):
    import pytest

    from hrc_perception.ros.node_base import ParameterError
    with pytest.raises(ParameterError, match="depth_path needs robot_source joint_states"):
        SafetyMonitorNode(context=ros_context, parameter_overrides=[Parameter("depth_path", value="alone")])
    # older skeletons only where a depth verdict covers whoever came since
    with pytest.raises(ParameterError, match="max_people_age_s above max_age_s needs depth_path with_skeletons"):
        SafetyMonitorNode(context=ros_context, parameter_overrides=[Parameter("max_people_age_s", value=2.0)])


def test_the_skeleton_path_counts_the_space_beside_the_view(ros_context):
    """unseen_space occupied (the default) without the depth path: nobody in view, yet the
    robot 0.3 m inside the image's left border is 0.3 m from where an unseen person may be:
    a stop naming it (the arm also reaches above the top border); guarded: OK."""
    for unseen, level in (("occupied", SafetyStatus.PROTECTIVE_STOP), ("guarded", SafetyStatus.OK)):
        h, pubs = _rig(ros_context, require_tracks=False, unseen_space=unseen)
        try:
            pubs[CAMERA_INFO_TOPIC].publish(K_to_camera_info(make_K(300, 300, 160, 120), 320, 240,
                                                             make_header(T0, FRAME_ID)))
            assert spin_until(h.ex, lambda: h.node._camera is not None)
            # the left border at z = 3 m is x = -1.6 m: the robot's axis at x = -1.3 m
            _robot(h, pubs, robot_msg(T0 + 10**6, x_m=-1.3))
            s = _verdict(h, _people(T0 + 2 * 10**6))
            assert s.level == level, s.reason
            if unseen == "occupied":
                assert "unseen space beside the camera's view" in s.reason and s.min_distance_m < 0.3
        finally:
            h.close()

