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


CAMERA = ("/cell/camera/color/image_raw", "/cell/camera/depth/image_raw", "/cell/camera/color/camera_info")
WAIT_S = 60.0   # every wait returns as soon as its condition holds: generous costs nothing when it passes


def _recorded(recorder, topics, n: int) -> bool:
    """The recorder has written at least n messages on each of the topics."""
    return all(recorder.counts.get(t, 0) >= n for t in topics)


def _matched(nodes, topics) -> bool:
    """Every publisher of the nodes on these topics is matched (in DDS) with every
    subscription the ROS graph knows of on its topic, the recorder's included: nothing
    published from now on is lost to discovery."""
    return all(p.get_subscription_count() >= n.count_subscribers(p.topic_name)
               for n in nodes for p in n.publishers if p.topic_name in topics)


def _run(ros_context, tmp_path, graph_name, overrides, topics, until, probe=None, timeout_s=WAIT_S):
    """Run a graph and a recorder of /cell until ``until(recorder)`` holds, at most
    timeout_s (every node of the graph shares this process and 2 cores with whatever
    else runs: the models take a while to give their first results). The nodes are
    activated once the recorder has subscribed to every topic of ``topics`` and their
    publishers (which exist from configure) are matched with it: nothing the test
    needs is lost to discovery.
    ``probe``: an extra node to spin with them. Return the recorded bag and its
    frames by stamp."""
    ex = MultiThreadedExecutor(context=ros_context)
    if probe is not None:
        ex.add_node(probe)
    recorder = BagRecorder(tmp_path / f"{graph_name}_out", topic_namespace="/cell", context=ros_context)
    ex.add_node(recorder)
    graph = load_graph(graph_name)
    overrides = {gn.name: {"autostart": False} | overrides.get(gn.name, {}) for gn in graph.nodes}
    nodes = start_graph(graph, context=ros_context, overrides=overrides)
    for n in nodes:
        ex.add_node(n)
        n.trigger_configure()
    assert spin_until(ex, lambda: set(topics) <= set(recorder.subscribed_topics) and _matched(nodes, topics),
                      timeout_s=timeout_s)
    for n in nodes:
        n.trigger_activate()
    spin_until(ex, lambda: until(recorder), timeout_s=timeout_s)
    for n in nodes:
        n.trigger_deactivate()
    out = recorder.stop()
    ex.shutdown()
    for n in nodes + [recorder]:
        n.destroy_node()
    return out, {f.stamp_ns: f for f in read_bag_frames(out)}


def test_demo_graph_publishes_camera_and_ground_truth(ros_context, tmp_path, small_cell_yaml):
    from rosbags.rosbag2 import Reader

    from hrc_perception.msg import SafetyStatus, Skeleton, SkeletonArray
    from hrc_perception.ros.convert import stamp_to_ns
    truth_topics = ("/cell/ground_truth/robot/skeleton", "/cell/ground_truth/humans/skeletons")
    status_topic = "/cell/safety/status"
    topics = set(CAMERA) | set(truth_topics) | {status_topic, "/cell/ground_truth/objects/poses",
                                                "/cell/ground_truth/segmentation/instances"}
    probe = rclpy.create_node("people_probe", context=ros_context)
    people, seen = [], {t: [] for t in (*truth_topics, status_topic)}   # seen: header stamps (ns), in order
    probe.create_subscription(SkeletonArray, "/cell/humans/skeletons", people.append, 10)
    for topic, cls in zip(seen, (Skeleton, SkeletonArray, SafetyStatus)):
        probe.create_subscription(cls, topic, lambda m, got=seen[topic]: got.append(stamp_to_ns(m.header.stamp)), 10)

    def done(recorder) -> bool:
        """What the test asserts is in the recording: 3 camera frames, every topic, a
        safety status about a frame with ground truth, 2 people skeletons."""
        truth = set(seen[truth_topics[0]]) & set(seen[truth_topics[1]])
        paired = any(s in truth for s in seen[status_topic])
        # the recorder listened before anything was published: as many as the probe means the same ones
        return (len(people) >= 2 and paired and _recorded(recorder, CAMERA, 3) and _recorded(recorder, topics, 1)
                and all(recorder.counts.get(t, 0) >= len(got) for t, got in seen.items()))

    out, frames = _run(ros_context, tmp_path, "demo",
                       {"rgbd_capture": {"config": str(small_cell_yaml), "seed": 2, "realtime": False,
                                         "rate_hz": 20.0}}, topics, done, probe=probe)
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
    from hrc_perception.evaluation.demo import _graph_parameters
    from hrc_perception.evaluation.safety_report import safety_evaluation
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
    # the models' start-up shares the 2 cores with the capture timer: wait until the
    # recorder has every frame and its joint_states
    topics = (*CAMERA, "/cell/joint_states")
    _, frames = _run(ros_context, tmp_path, "replay",
                     {"rgbd_capture": {"bag_path": str(bag), "realtime": False, "rate_hz": 20.0}}, topics,
                     lambda recorder: _recorded(recorder, topics, 4))
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
