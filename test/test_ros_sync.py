"""hrc_perception.ros.sync: the StampBuffer every node pairs its input streams with (exact
stamp; nearest within a tolerance for a stream of another clock), and the nodes using it."""
import pytest
from std_msgs.msg import Header

from hrc_perception.ros.ground_truth_msgs import make_header
from hrc_perception.ros.sync import StampBuffer

T0 = 1_000 * 10**9


class _Msg:
    def __init__(self, stamp_ns: int, name: str = ""):
        self.header: Header = make_header(stamp_ns, "camera_color_optical_frame")
        self.name = name


def test_exact_stamp_pairing_and_values():
    buf = StampBuffer(3)
    a, b = _Msg(T0, "a"), _Msg(T0 + 66_666_667, "b")
    assert buf.add(a) == T0 and buf.add(b) == T0 + 66_666_667
    assert buf.get(T0) is a and buf[T0 + 66_666_667] is b and buf.get(T0 + 1) is None
    assert T0 in buf and len(buf) == 2 and list(buf) == [T0, T0 + 66_666_667]
    buf.add(_Msg(T0 + 5), value={3: 17})            # a value made from the message
    assert buf[T0 + 5] == {3: 17}
    again = _Msg(T0, "a2")                           # a second message of a stamp replaces the first
    buf.add(again)
    assert buf[T0] is again and len(buf) == 3
    buf.clear()
    assert len(buf) == 0 and buf.newest_ns() is None and buf.nearest(T0, 10**9) is None


def test_the_oldest_stamp_goes_first_not_the_oldest_arrival():
    buf = StampBuffer(2)
    buf.put(T0 + 2, "new")
    buf.put(T0 + 3, "newer")
    buf.put(T0 + 1, "late and old")                  # arrives last, is the oldest: dropped at once
    assert sorted(buf) == [T0 + 2, T0 + 3]
    buf.put(T0 + 4, "newest")
    assert sorted(buf) == [T0 + 3, T0 + 4] and buf.newest_ns() == T0 + 4
    buf.size = 1                                     # a smaller size applies from the next add
    buf.put(T0 + 5, "x")
    assert list(buf) == [T0 + 5]
    with pytest.raises(ValueError, match="size"):
        StampBuffer(0)


def test_nearest_within_a_tolerance():
    buf = StampBuffer(10)
    for k in range(3):
        buf.put(T0 + k * 100, k)
    assert buf.nearest(T0 + 130, 40) == 1 and buf.nearest(T0 + 170, 40) == 2
    assert buf.nearest(T0 + 150, 50) == 1             # equally near: the earlier
    assert buf.nearest(T0 + 260, 50) is None and buf.nearest(T0 - 1, 0) is None
    assert buf.nearest(T0 + 200, 0) == 2


def test_the_nodes_pair_their_inputs_with_it(ros_context):
    """One way to pair streams: every node that pairs by stamp keeps its streams in StampBuffers."""
    from rclpy.parameter import Parameter

    from hrc_perception.ros.human_pose_node import HumanPoseNode
    from hrc_perception.ros.object_pose_node import ObjectPoseNode
    from hrc_perception.ros.robot_pose_node import RobotPoseNode
    from hrc_perception.ros.safety_monitor_node import SafetyMonitorNode
    from hrc_perception.ros.tracker_node import TrackerNode
    expected = {ObjectPoseNode: ("_color", "_depth", "_tracks"), HumanPoseNode: ("_color", "_depth", "_instances"),
                TrackerNode: ("_depth_by_stamp",), RobotPoseNode: ("_joint_states",),
                SafetyMonitorNode: ("_tracks", "_depths")}
    for cls, names in expected.items():
        node = cls(context=ros_context, parameter_overrides=[Parameter("autostart", value=False)])
        try:
            for name in names:
                assert isinstance(getattr(node, name), StampBuffer), (cls.__name__, name)
        finally:
            node.destroy_node()
