"""rgbd_capture: the frame sources (pure) and the node on real rclpy + DDS.

Node tests configure with autostart off, wait until the listener is matched, then
activate, so no frame is published before anyone can receive it.
"""
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import spin_until
from PIL import Image as PILImage
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState

from hrc_perception.capture import (BagSource, CaptureFrame, FolderSource, RealSenseSource, SourceError,
                                    StampPacer, SyntheticSource, frame_problem)
from hrc_perception.io.bag import BagWriter
from hrc_perception.ros.convert import camera_info_to_K, image_to_numpy, pose_to_matrix, stamp_to_ns
from hrc_perception.ros.node_base import ParameterError
from hrc_perception.ros.rgbd_capture import COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, JOINT_STATES_TOPIC, RgbdCaptureNode

REPO = Path(__file__).resolve().parents[1]
GT_TOPICS = ("ground_truth/robot/skeleton", "ground_truth/humans/skeletons", "ground_truth/objects/poses",
             "ground_truth/segmentation/instances", "ground_truth/robot/base_pose")


# ----------------------------------------------------------------- test data

def write_bag(path, frames):
    writer = BagWriter(path, namespace="/cell")
    for f in frames:
        writer.add(f)
    writer.close()
    return path


@pytest.fixture(scope="module")
def bag3(tmp_path_factory, small_frames):
    return write_bag(tmp_path_factory.mktemp("bag") / "bag3", small_frames[:3])


def write_folder(root: Path, frames, intrinsics=True, ext="png") -> Path:
    (root / "color").mkdir(parents=True)
    (root / "depth").mkdir()
    for i, f in enumerate(frames):
        PILImage.fromarray(f.rgb).save(root / "color" / f"{i}.{ext}")
        PILImage.fromarray(f.depth_mm).save(root / "depth" / f"{i}.png")
    if intrinsics:
        K, (h, w) = frames[0].K, frames[0].depth_mm.shape
        (root / "intrinsics.yaml").write_text(yaml.safe_dump(
            {"fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
             "width": int(w), "height": int(h)}))
    return root


# --------------------------------------------------------------- pure sources

def test_pacer_follows_stamp_spacing_and_reanchors():
    p = StampPacer(max_lag_s=1.0)
    assert p.delay_s(5_000_000_000, now_s=100.0) == 0.0                  # first frame anchors
    assert p.delay_s(5_100_000_000, now_s=100.02) == pytest.approx(0.08)
    assert p.delay_s(5_100_000_000, now_s=100.05) == pytest.approx(0.05)  # same frame, same due time
    assert p.delay_s(5_000_000_000, now_s=100.2) == 0.0                  # backwards (loop): re-anchor
    assert p.delay_s(5_100_000_000, now_s=100.2) == pytest.approx(0.1)
    assert p.delay_s(5_200_000_000, now_s=150.0) == 0.0                  # far behind: no burst
    assert p.delay_s(5_300_000_000, now_s=150.0) == pytest.approx(0.1)


def test_frame_problem_names_what_is_wrong(small_frames):
    f = small_frames[0]
    ok = CaptureFrame(1, f.rgb, f.depth_mm, f.K)
    assert frame_problem(ok) is None
    kind, msg = frame_problem(CaptureFrame(1, f.rgb, f.depth_mm[:-2], f.K))
    assert kind == "size_mismatch" and "colour image is 320x240 but depth is 320x238" in msg
    assert frame_problem(CaptureFrame(1, f.rgb, f.depth_mm.astype(np.float32), f.K))[0] == "bad_image"
    assert frame_problem(CaptureFrame(1, f.rgb, f.depth_mm, np.zeros((3, 3))))[0] == "bad_camera_info"


def test_synthetic_source_bad_config_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="synthetic: .*nope.yaml: cannot read"):
        SyntheticSource(tmp_path / "nope.yaml")


def test_bag_source_reads_frames_and_loops(bag3, small_frames):
    src = BagSource(bag3, loop=True)
    try:
        stamps = [src.next_frame().stamp_ns for _ in range(5)]
    finally:
        src.close()
    recorded = [f.stamp_ns for f in small_frames[:3]]
    assert stamps == recorded + recorded[:2]
    src = BagSource(next(bag3.glob("*.mcap")), restamp=True)   # a file in the bag directory works too
    try:
        frames = [src.next_frame() for _ in range(4)]
    finally:
        src.close()
    assert [f is None for f in frames] == [False, False, False, True]
    assert frames[0].stamp_ns is None and np.array_equal(frames[0].rgb, small_frames[0].rgb)


def test_bag_source_reads_sqlite3(tmp_path, bag3, small_frames):
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    out = tmp_path / "sqlite_bag"
    with Reader(bag3) as reader, Writer(out, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest)
                 for c in reader.connections}
        for c, t, raw in reader.messages():
            writer.write(conns[c.id], t, raw)
    assert list(out.glob("*.db3"))
    src = BagSource(out)
    try:
        frames = [src.next_frame() for _ in range(3)]
    finally:
        src.close()
    assert [f.stamp_ns for f in frames] == [f.stamp_ns for f in small_frames[:3]]
    assert np.array_equal(frames[2].depth_mm, small_frames[2].depth_mm)


def test_bag_source_errors(tmp_path, bag3):
    with pytest.raises(SourceError, match="no such file or directory"):
        BagSource(tmp_path / "missing")
    with pytest.raises(SourceError, match="cannot read: .*no /other/camera/color/image_raw topic"):
        BagSource(bag3, namespace="/other")


def test_folder_source_pairs_by_name_in_natural_order(tmp_path, small_frames):
    root = write_folder(tmp_path / "f", small_frames[:3], intrinsics=False)
    # a ROS calibration file works as well as the flat keys
    K = small_frames[0].K
    (root / "camera_info.yaml").write_text(yaml.safe_dump(
        {"image_width": 320, "image_height": 240, "camera_matrix": {"rows": 3, "cols": 3,
                                                                    "data": K.reshape(-1).tolist()}}))
    (root / "color" / "10.png").write_bytes((root / "color" / "2.png").read_bytes())
    (root / "depth" / "10.png").write_bytes((root / "depth" / "2.png").read_bytes())
    src = FolderSource(root)
    assert src.stems == ["0", "1", "2", "10"] and len(src) == 4
    f = src.next_frame()
    assert f.stamp_ns is None and np.array_equal(f.rgb, small_frames[0].rgb)
    assert f.depth_mm.dtype == np.uint16 and np.array_equal(f.depth_mm, small_frames[0].depth_mm)
    np.testing.assert_allclose(f.K, K)
    assert [src.next_frame() is None for _ in range(4)] == [False, False, False, True]


def test_folder_source_reads_jpg_colour(tmp_path, small_frames):
    src = FolderSource(write_folder(tmp_path / "f", small_frames[:1], ext="jpg"))
    f = src.next_frame()
    assert f.rgb.shape == (240, 320, 3) and np.abs(f.rgb.astype(int) - small_frames[0].rgb).mean() < 8


def _break_folder(root: Path, how: str, frames) -> str:
    """Damage a good folder; returns the expected error text."""
    if how == "missing_depth":
        (root / "depth" / "1.png").unlink()
        return "no depth image depth/<name>.png for colour image(s) 1"
    if how == "missing_intrinsics":
        (root / "intrinsics.yaml").unlink()
        return "no intrinsics.yaml or camera_info.yaml"
    if how == "intrinsics_size":
        data = yaml.safe_load((root / "intrinsics.yaml").read_text())
        (root / "intrinsics.yaml").write_text(yaml.safe_dump({**data, "width": 640, "height": 480}))
        return "color/0.png is 320x240 but intrinsics.yaml says 640x480"
    if how == "depth_size":
        PILImage.fromarray(frames[2].depth_mm[:120, :160]).save(root / "depth" / "2.png")
        return "color/2.png is 320x240 but depth/2.png is 160x120"
    if how == "depth_8bit":
        PILImage.fromarray((frames[0].depth_mm // 256).astype(np.uint8)).save(root / "depth" / "0.png")
        return "depth/0.png is a 'L' image; depth must be a 16-bit"
    if how == "missing_intrinsics_key":
        data = yaml.safe_load((root / "intrinsics.yaml").read_text())
        del data["fy"]
        (root / "intrinsics.yaml").write_text(yaml.safe_dump(data))
        return "intrinsics.yaml: missing fy"
    raise ValueError(how)


@pytest.mark.parametrize("how", ["missing_depth", "missing_intrinsics", "intrinsics_size", "depth_size",
                                 "depth_8bit", "missing_intrinsics_key"])
def test_folder_source_errors_name_the_problem(tmp_path, small_frames, how):
    root = write_folder(tmp_path / "f", small_frames[:3])
    expected = _break_folder(root, how, small_frames)
    with pytest.raises(SourceError) as e:
        FolderSource(root)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_folder_source_missing_subfolder(tmp_path):
    (tmp_path / "color").mkdir()
    with pytest.raises(SourceError, match=r"missing depth/"):
        FolderSource(tmp_path)


def test_realsense_without_pyrealsense2_or_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)   # import fails, installed or not
    with pytest.raises(SourceError, match="no RealSense device found: the pyrealsense2 package is not installed"):
        RealSenseSource()
    fake = types.ModuleType("pyrealsense2")
    fake.context = lambda: types.SimpleNamespace(query_devices=lambda: [])
    monkeypatch.setitem(sys.modules, "pyrealsense2", fake)
    with pytest.raises(SourceError, match="no RealSense device found: pyrealsense2 sees no connected camera"):
        RealSenseSource()


# ------------------------------------------------------------------ node tests

class Listener:
    """A node recording every message on the capture outputs (reliable, deep queue)."""

    def __init__(self, ctx, namespace, topics):
        self.node = Node("capture_listener", namespace=namespace, context=ctx)
        self.got = {t: [] for t in topics}
        self.arrival = []
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        types_ = {COLOR_TOPIC: Image, DEPTH_TOPIC: Image, INFO_TOPIC: CameraInfo, JOINT_STATES_TOPIC: JointState}
        for t in topics:
            msg_type = types_.get(t) or _gt_type(t)
            self.node.create_subscription(msg_type, t, self._cb(t), qos)

    def _cb(self, topic):
        def cb(msg):
            self.got[topic].append(msg)
            if topic == COLOR_TOPIC:
                self.arrival.append(time.monotonic())
        return cb

    def stamps(self, topic=COLOR_TOPIC):
        return [stamp_to_ns(m.header.stamp) for m in self.got[topic]]


def _gt_type(topic):
    from hrc_perception.msg import InstanceArray, ObjectPoseArray, Skeleton, SkeletonArray
    from geometry_msgs.msg import PoseStamped
    return dict(zip(GT_TOPICS, (Skeleton, SkeletonArray, ObjectPoseArray, InstanceArray, PoseStamped)))[topic]


@pytest.fixture
def graph(ros_context, request):
    """start(params, topics) -> (node, listener, executor): a capture node, configured; the
    listener matched; then activated (if the configure succeeded)."""
    made = []
    ex = SingleThreadedExecutor(context=ros_context)
    namespace = "/t_" + request.node.name.split("[")[0][-40:]

    def start(params, topics=(COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC), activate=True):
        listener = Listener(ros_context, namespace, topics)
        made.append(listener.node)
        ex.add_node(listener.node)
        overrides = [Parameter("autostart", value=False)] + [Parameter(k, value=v) for k, v in params.items()]
        node = RgbdCaptureNode(namespace=namespace, context=ros_context, parameter_overrides=overrides)
        made.append(node)
        ex.add_node(node)
        node.trigger_configure()
        if node.lifecycle_state == "inactive":
            pubs = [p for t, p in node.output_publishers.items() if t in topics]
            assert spin_until(ex, lambda: all(p.get_subscription_count() > 0 for p in pubs))
            if activate:
                node.trigger_activate()
        return node, listener, ex

    yield start
    ex.shutdown()
    for n in made:
        n.destroy_node()


def assert_same_headers(listener, i):
    headers = [listener.got[t][i].header for t in (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC)]
    assert len({(h.stamp.sec, h.stamp.nanosec, h.frame_id) for h in headers}) == 1
    return headers[0]


def test_synthetic_source_publishes_camera_and_ground_truth(graph, small_cell_yaml, small_frames):
    node, lis, ex = graph({"source": "synthetic", "config": str(small_cell_yaml), "seed": 3, "realtime": False,
                           "rate_hz": 30.0}, topics=(COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, JOINT_STATES_TOPIC) + GT_TOPICS)
    assert node.is_active and set(node.output_publishers) == {COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, JOINT_STATES_TOPIC,
                                                              *GT_TOPICS}
    assert spin_until(ex, lambda: all(len(v) >= 2 for v in lis.got.values()), timeout_s=15)
    for i in range(2):
        header = assert_same_headers(lis, i)
        assert header.frame_id == "camera_color_optical_frame"
        assert stamp_to_ns(header.stamp) == small_frames[i].stamp_ns   # the simulator's stamps, in order
        for t in GT_TOPICS:
            gt_header = lis.got[t][i].header
            assert (gt_header.stamp, gt_header.frame_id) == (header.stamp, header.frame_id)
    color, depth, info = (lis.got[t][0] for t in (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC))
    assert (color.encoding, color.width, color.height) == ("rgb8", 320, 240)
    assert (depth.encoding, depth.width, depth.height) == ("16UC1", 320, 240)
    assert np.array_equal(image_to_numpy(color), small_frames[0].rgb)
    assert np.array_equal(image_to_numpy(depth), small_frames[0].depth_mm)
    K, w, h = camera_info_to_K(info)
    np.testing.assert_allclose(K, small_frames[0].K)
    assert (w, h) == (320, 240)
    assert lis.got["ground_truth/robot/skeleton"][0].model == "panda"
    js = lis.got[JOINT_STATES_TOPIC][0]       # the simulated robot's driver: its joints at the frame's stamp
    assert js.header.stamp == lis.got[COLOR_TOPIC][0].header.stamp
    assert list(js.name) == list(small_frames[0].robot.joint_names)
    np.testing.assert_allclose(js.position, small_frames[0].robot.joint_positions_rad)
    np.testing.assert_allclose(pose_to_matrix(lis.got["ground_truth/robot/base_pose"][0].pose),
                               small_frames[0].robot.T_cam_base, atol=1e-9)
    assert len(lis.got["ground_truth/humans/skeletons"][0].skeletons) == len(small_frames[0].humans)
    # restamp (changed while running): ground truth follows the new stamp
    assert node.set_parameters([Parameter("restamp", value=True)])[0].successful
    n = len(lis.got[COLOR_TOPIC])
    assert spin_until(ex, lambda: all(len(v) >= n + 2 for v in lis.got.values()), timeout_s=15)
    i = n + 1
    header = assert_same_headers(lis, i)
    assert stamp_to_ns(header.stamp) not in {f.stamp_ns for f in small_frames}
    assert all(lis.got[t][i].header.stamp == header.stamp for t in GT_TOPICS)
    assert node.counters == {}


def test_bag_source_republishes_recorded_stamps_and_pixels(graph, bag3, small_frames):
    node, lis, ex = graph({"source": "bag", "bag_path": str(bag3), "realtime": False, "rate_hz": 50.0},
                          topics=(COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, JOINT_STATES_TOPIC))
    # the recorded joint_states go out with the frames (no ground truth)
    assert set(node.output_publishers) == {COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, JOINT_STATES_TOPIC}
    assert spin_until(ex, lambda: node.source_ended and len(lis.got[INFO_TOPIC]) == 3
                      and len(lis.got[JOINT_STATES_TOPIC]) == 3)
    assert lis.stamps() == [f.stamp_ns for f in small_frames[:3]]
    assert lis.stamps(JOINT_STATES_TOPIC) == [f.stamp_ns for f in small_frames[:3]]
    for i, f in enumerate(small_frames[:3]):
        assert_same_headers(lis, i)
        assert np.array_equal(image_to_numpy(lis.got[COLOR_TOPIC][i]), f.rgb)
        assert np.array_equal(image_to_numpy(lis.got[DEPTH_TOPIC][i]), f.depth_mm)
        np.testing.assert_allclose(camera_info_to_K(lis.got[INFO_TOPIC][i])[0], f.K)
        assert list(lis.got[JOINT_STATES_TOPIC][i].name) == list(f.robot.joint_names)
        np.testing.assert_allclose(lis.got[JOINT_STATES_TOPIC][i].position, f.robot.joint_positions_rad)
    # the end: publishing stops, the node stays up and active
    spin_until(ex, lambda: False, timeout_s=0.3)
    assert len(lis.got[COLOR_TOPIC]) == 3 and node.is_active and node.frames_published == 3
    assert node.counters == {}


def test_bag_restamp_stamps_now(graph, bag3, small_frames):
    node, lis, ex = graph({"source": "bag", "bag_path": str(bag3), "realtime": False, "rate_hz": 50.0,
                           "restamp": True}, topics=(COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, JOINT_STATES_TOPIC))
    assert spin_until(ex, lambda: all(len(v) == 3 for v in lis.got.values()))
    stamps = lis.stamps()
    assert lis.stamps(JOINT_STATES_TOPIC) == stamps   # recorded with the frames: restamped with them
    now_ns = node.get_clock().now().nanoseconds
    assert not set(stamps) & {f.stamp_ns for f in small_frames}
    assert stamps == sorted(stamps) and 0 < now_ns - stamps[0] < 10e9
    for i in range(3):
        assert_same_headers(lis, i)
        assert np.array_equal(image_to_numpy(lis.got[COLOR_TOPIC][i]), small_frames[i].rgb)


def test_bag_realtime_keeps_the_recorded_spacing(graph, bag3, small_frames):
    node, lis, ex = graph({"source": "bag", "bag_path": str(bag3), "realtime": True})
    assert spin_until(ex, lambda: len(lis.got[COLOR_TOPIC]) == 3)
    recorded_s = (small_frames[2].stamp_ns - small_frames[0].stamp_ns) * 1e-9    # 2 / 15 fps
    assert lis.arrival[-1] - lis.arrival[0] == pytest.approx(recorded_s, abs=0.05)


def test_bag_frame_with_size_mismatch_is_skipped_and_counted(graph, tmp_path, small_frames):
    import dataclasses
    frames = list(small_frames[:3])
    frames[1] = dataclasses.replace(frames[1], depth_mm=frames[1].depth_mm[:-8])
    bag = write_bag(tmp_path / "bad", frames)
    node, lis, ex = graph({"source": "bag", "bag_path": str(bag), "realtime": False, "rate_hz": 50.0})
    assert spin_until(ex, lambda: node.source_ended and len(lis.got[INFO_TOPIC]) == 2)
    assert lis.stamps() == [frames[0].stamp_ns, frames[2].stamp_ns]
    assert node.counters == {"size_mismatch": 1} and node.is_active


def test_unreadable_file_is_skipped_and_counted(graph, tmp_path, small_frames):
    root = write_folder(tmp_path / "f", small_frames[:3])
    node, lis, ex = graph({"source": "folder", "folder_path": str(root), "rate_hz": 50.0}, activate=False)
    (root / "color" / "1.png").write_bytes(b"not a png")   # broken after configure checked it
    node.trigger_activate()
    assert spin_until(ex, lambda: node.source_ended and len(lis.got[INFO_TOPIC]) == 2)
    assert node.counters == {"source_error": 1} and node.is_active
    assert "color/1.png" in node._last_message["source_error"]


def test_folder_source_publishes_files(graph, tmp_path, small_frames):
    root = write_folder(tmp_path / "f", small_frames[:3])
    node, lis, ex = graph({"source": "folder", "folder_path": str(root), "rate_hz": 50.0})
    assert spin_until(ex, lambda: node.source_ended and len(lis.got[INFO_TOPIC]) == 3)
    for i, f in enumerate(small_frames[:3]):
        header = assert_same_headers(lis, i)
        assert header.frame_id == "camera_color_optical_frame"
        assert np.array_equal(image_to_numpy(lis.got[COLOR_TOPIC][i]), f.rgb)
        assert np.array_equal(image_to_numpy(lis.got[DEPTH_TOPIC][i]), f.depth_mm)
        np.testing.assert_allclose(camera_info_to_K(lis.got[INFO_TOPIC][i])[0], f.K)
    stamps = lis.stamps()
    assert stamps == sorted(stamps) and 0 < node.get_clock().now().nanoseconds - stamps[0] < 10e9   # stamped now


@pytest.mark.parametrize("how", ["missing_depth", "missing_intrinsics", "depth_size"])
def test_bad_folder_fails_configure_and_the_node_stays_up(graph, tmp_path, small_frames, how, capfd):
    root = write_folder(tmp_path / "f", small_frames[:3])
    expected = _break_folder(root, how, small_frames)
    node, lis, ex = graph({"source": "folder", "folder_path": str(root), "rate_hz": 50.0})
    assert node.lifecycle_state == "unconfigured" and node.source is None
    assert expected in node.configure_error
    log = capfd.readouterr().err
    assert f"configure failed: SourceError: folder {root}" in log and expected in log
    # still alive: fix the folder and configure again
    (root / "intrinsics.yaml").unlink(missing_ok=True)
    for p in [*(root / "color").iterdir(), *(root / "depth").iterdir()]:
        p.unlink()
    (root / "color").rmdir()
    (root / "depth").rmdir()
    write_folder(root, small_frames[:3])
    node.trigger_configure()
    assert node.lifecycle_state == "inactive" and node.configure_error is None


def test_realsense_without_pyrealsense2_fails_configure(graph, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    node, lis, ex = graph({"source": "realsense"})
    assert node.lifecycle_state == "unconfigured"
    assert node.configure_error.startswith("no RealSense device found")


@pytest.mark.parametrize("override, message", [
    (Parameter("source", value="webcam"), "source: 'webcam' is not one of synthetic, bag, folder, realsense"),
    (Parameter("rate_hz", value=-5.0), "rate_hz: -5.0 is below the minimum 0.0"),
])
def test_invalid_parameter_is_an_error_at_construction(ros_context, override, message):
    with pytest.raises(ParameterError, match="node 'rgbd_capture': invalid parameter") as e:
        RgbdCaptureNode(context=ros_context, parameter_overrides=[override])
    assert message in str(e.value)


def test_descriptors(ros_context, tmp_path, small_frames):
    root = write_folder(tmp_path / "f", small_frames[:1])
    node = RgbdCaptureNode(context=ros_context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("source", value="folder"),
        Parameter("folder_path", value=str(root))])
    try:
        d = node.describe_parameter("source")
        assert d.read_only and "synthetic, bag, folder, realsense" in d.additional_constraints
        assert node.describe_parameter("rate_hz").floating_point_range[0].from_value == 0.0
        assert not node.set_parameters([Parameter("rate_hz", value=-1.0)])[0].successful
        assert node.camera_output_qos().reliability == ReliabilityPolicy.RELIABLE
        assert node.camera_output_qos().depth == 5
    finally:
        node.destroy_node()


def test_deactivate_stops_publishing_and_activate_resumes(graph, tmp_path, small_frames):
    root = write_folder(tmp_path / "f", small_frames[:2])
    node, lis, ex = graph({"source": "folder", "folder_path": str(root), "loop": True, "rate_hz": 40.0})
    assert spin_until(ex, lambda: len(lis.got[COLOR_TOPIC]) >= 3)
    node.trigger_deactivate()
    assert node.lifecycle_state == "inactive"
    spin_until(ex, lambda: False, timeout_s=0.2)   # messages already sent arrive
    n = len(lis.got[COLOR_TOPIC])
    spin_until(ex, lambda: False, timeout_s=0.4)
    assert len(lis.got[COLOR_TOPIC]) == n
    node.trigger_activate()
    assert spin_until(ex, lambda: len(lis.got[COLOR_TOPIC]) >= n + 3)
    node.trigger_deactivate()
    node.trigger_cleanup()
    assert node.lifecycle_state == "unconfigured" and node.source is None and not node.output_publishers


def test_changing_rate_while_active(graph, tmp_path, small_frames):
    root = write_folder(tmp_path / "f", small_frames[:1])
    node, lis, ex = graph({"source": "folder", "folder_path": str(root), "loop": True, "rate_hz": 2.0})
    assert node.set_parameters([Parameter("rate_hz", value=100.0)])[0].successful
    assert spin_until(ex, lambda: len(lis.got[COLOR_TOPIC]) >= 10, timeout_s=2.0)


def test_main_exits_2_on_an_invalid_parameter():
    env = {**os.environ, "ROS_DOMAIN_ID": str(100 + os.getpid() % 100), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    r = subprocess.run([sys.executable, str(REPO / "nodes" / "rgbd_capture"), "--ros-args", "-p", "source:=webcam"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "invalid parameter" in ln]
    assert len(lines) == 1 and "source: 'webcam' is not one of" in lines[0]
