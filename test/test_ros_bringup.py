"""The graphs run in one process: demo (synthetic source) and replay (bag source) through
bringup, recorded with the recorder, outputs checked against what went in."""

import numpy as np
import rclpy
from conftest import spin_until
from rclpy.executors import MultiThreadedExecutor

from hrc_perception.io.bag import BagWriter, read_bag_frames
from hrc_perception.ros.bag_record import BagRecorder
from hrc_perception.ros.bringup import start_graph
from hrc_perception.ros.graph import load_graph


def _run(ros_context, tmp_path, graph_name, overrides, seconds, until=None, probe=None, max_extra_s=30.0):
    """Run a graph and a recorder of /cell for ``seconds``, then, with ``until`` (a
    predicate), on until it holds (at most ``max_extra_s`` more: on a loaded machine
    the models take a while to give their first results); ``probe``: an extra node to
    spin with them. Return the recorded bag and its frames by stamp."""
    ex = MultiThreadedExecutor(context=ros_context)
    if probe is not None:
        ex.add_node(probe)
    recorder = BagRecorder(tmp_path / f"{graph_name}_out", topic_namespace="/cell", context=ros_context)
    ex.add_node(recorder)
    spin_until(ex, lambda: False, timeout_s=0.5)          # let the recorder start discovering
    graph = load_graph(graph_name)
    overrides = {gn.name: {"autostart": False} | overrides.get(gn.name, {}) for gn in graph.nodes}
    nodes = start_graph(graph, context=ros_context, overrides=overrides)
    for n in nodes:
        ex.add_node(n)
        n.trigger_configure()
    # start publishing once the recorder listens to the camera (nothing is lost to discovery)
    camera = {"/cell/camera/color/image_raw", "/cell/camera/depth/image_raw", "/cell/camera/color/camera_info"}
    assert spin_until(ex, lambda: camera <= set(recorder.subscribed_topics), timeout_s=10.0)
    for n in nodes:
        n.trigger_activate()
    spin_until(ex, lambda: False, timeout_s=seconds)
    if until is not None:
        spin_until(ex, until, timeout_s=max_extra_s)
    for n in nodes:
        n.trigger_deactivate()
    spin_until(ex, lambda: False, timeout_s=0.5)
    out = recorder.stop()
    ex.shutdown()
    for n in nodes + [recorder]:
        n.destroy_node()
    return out, {f.stamp_ns: f for f in read_bag_frames(out)}


def test_demo_graph_publishes_camera_and_ground_truth(ros_context, tmp_path, small_cell_yaml):
    from rosbags.rosbag2 import Reader

    from hrc_perception.msg import SkeletonArray
    probe = rclpy.create_node("people_probe", context=ros_context)
    people = []
    probe.create_subscription(SkeletonArray, "/cell/humans/skeletons", people.append, 10)
    out, frames = _run(ros_context, tmp_path, "demo",
                       {"rgbd_capture": {"config": str(small_cell_yaml), "seed": 2, "realtime": False,
                                         "rate_hz": 20.0}}, seconds=8.0,
                       until=lambda: len(people) >= 2, probe=probe)
    probe.destroy_node()
    assert len(frames) >= 3     # every node of the graph shares this process (and 2 cores)
    f = next(iter(frames.values()))
    assert f.rgb.shape == (240, 320, 3) and f.depth_mm.shape == (240, 320)
    with Reader(out) as r:
        topics = {c.topic for c in r.connections}
    assert {"/cell/camera/color/image_raw", "/cell/camera/depth/image_raw", "/cell/camera/color/camera_info",
            "/cell/ground_truth/robot/skeleton", "/cell/ground_truth/humans/skeletons",
            "/cell/ground_truth/objects/poses", "/cell/ground_truth/segmentation/instances",
            "/cell/safety/status"} <= topics
    # the safety monitor's verdicts against the true skeletons' (eval safety on this recording)
    from hrc_perception.ros.demo import _graph_parameters
    from hrc_perception.ros.safety_report import safety_evaluation
    res = safety_evaluation(out, tmp_path, _graph_parameters("demo", "safety_monitor"))
    assert res is not None and res["frames_with_truth"] >= 1, res
    assert res["ok_while_truth_stop"] == 0
    assert (tmp_path / "safety_timeline.png").is_file()


def test_replay_graph_republishes_a_bag_bit_exact(ros_context, tmp_path, small_frames):
    bag = tmp_path / "in_bag"
    w = BagWriter(bag, namespace="/cell")
    for f in small_frames[:4]:
        w.add(f)
    w.close()
    from sensor_msgs.msg import JointState
    probe = rclpy.create_node("joints_probe", context=ros_context)
    joints = []
    probe.create_subscription(JointState, "/cell/joint_states", joints.append, 10)
    # the models' start-up shares the 2 cores with the capture timer: wait for every frame
    _, frames = _run(ros_context, tmp_path, "replay",
                     {"rgbd_capture": {"bag_path": str(bag), "realtime": False, "rate_hz": 20.0}}, seconds=6.0,
                     until=lambda: len(joints) >= 4, probe=probe)
    probe.destroy_node()
    sent = {f.stamp_ns: f for f in small_frames[:4]}
    assert set(frames) == set(sent)
    for stamp, got in frames.items():
        assert np.array_equal(got.rgb, sent[stamp].rgb)
        assert np.array_equal(got.depth_mm, sent[stamp].depth_mm)
        np.testing.assert_allclose(got.K, sent[stamp].K)
        # the recorded robot driver's joint_states go out with their frames (robot_pose and
        # safety_monitor need them)
        assert got.joint_state.stamp_ns == stamp
        np.testing.assert_array_equal(got.joint_state.positions_rad, sent[stamp].robot.joint_positions_rad)
