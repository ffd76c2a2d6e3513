"""Bag export: frames written to MCAP read back identical with rosbags and with rclpy."""
import numpy as np
import pytest
from conftest import image_wire
from rosbags.rosbag2 import Reader

from hrc_perception.geometry import matrix_from_quaternion
from hrc_perception.io.bag import (CAMERA_FRAME_ID, COLOR_TOPIC, DEPTH_TOPIC, GT_PARTS_TOPIC, TYPESTORE, BagWriter,
                                   Header, Image, JointState, Time, full_topic, read_bag_frames)
from hrc_perception.io.ground_truth import GroundTruthWriter, read_ground_truth


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory, small_frames):
    out = tmp_path_factory.mktemp("bag") / "bag"
    writer = BagWriter(out, namespace="/cell")
    for f in small_frames[:4]:
        writer.add(f)
    assert not out.exists() and out.with_name("bag.partial").exists()   # not complete before close
    writer.close()
    assert out.exists() and not out.with_name("bag.partial").exists()
    return out


def test_bag_reads_back_with_rosbags(bag_dir, small_frames):
    frames = list(read_bag_frames(bag_dir))
    assert [b.stamp_ns for b in frames] == [f.stamp_ns for f in small_frames[:4]]
    for b, f in zip(frames, small_frames):
        assert np.array_equal(b.rgb, f.rgb)
        assert np.array_equal(b.depth_mm, f.depth_mm)
        assert np.array_equal(b.instance_mask, f.instance_mask)
        np.testing.assert_allclose(b.K, f.K)
    with Reader(bag_dir) as r:
        topics = {c.topic: c.msgtype for c in r.connections}
        assert topics[full_topic("/cell", COLOR_TOPIC)] == "sensor_msgs/msg/Image"
        assert topics["/cell/joint_states"] == "sensor_msgs/msg/JointState"
        assert r.message_count == 4 * len(topics)
    assert [p.name for p in bag_dir.glob("*.mcap")] == ["bag.mcap"]


def test_bag_reads_back_with_rclpy(bag_dir, small_frames):
    serialization = pytest.importorskip("rclpy.serialization")
    from geometry_msgs.msg import PoseArray
    from sensor_msgs.msg import Image
    seen = 0
    with Reader(bag_dir) as r:
        conns = [c for c in r.connections if c.topic in (full_topic("/cell", DEPTH_TOPIC),
                                                          full_topic("/cell", GT_PARTS_TOPIC))]
        for conn, stamp, raw in r.messages(connections=conns):
            f = next(f for f in small_frames if f.stamp_ns == stamp)
            if conn.topic.endswith(DEPTH_TOPIC):
                msg = serialization.deserialize_message(bytes(raw), Image)
                assert msg.encoding == "16UC1" and msg.header.frame_id == "camera_color_optical_frame"
                assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == f.stamp_ns
                depth = np.frombuffer(bytes(msg.data), "<u2").reshape(msg.height, msg.width)
                assert np.array_equal(depth, f.depth_mm)
            else:
                msg = serialization.deserialize_message(bytes(raw), PoseArray)
                assert len(msg.poses) == len(f.parts)
                for pose, part in zip(msg.poses, f.parts):
                    o = pose.orientation
                    np.testing.assert_allclose(matrix_from_quaternion([o.x, o.y, o.z, o.w]), part.T_cam_obj[:3, :3],
                                               atol=1e-9)
                    np.testing.assert_allclose([pose.position.x, pose.position.y, pose.position.z],
                                               part.T_cam_obj[:3, 3])
            seen += 1
    assert seen == 8


def test_ground_truth_sidecar_round_trip(tmp_path, small_frames):
    path = tmp_path / "gt.jsonl"
    w = GroundTruthWriter(path)
    for f in small_frames[:3]:
        w.add(f)
    assert not path.exists()
    w.close()
    gt = read_ground_truth(path)
    f = small_frames[1]
    rec = gt[f.stamp_ns]
    np.testing.assert_allclose(rec["robot"]["T_cam_base"], f.robot.T_cam_base, atol=1e-6)
    np.testing.assert_allclose(rec["parts"][0]["T_cam_obj"], f.parts[0].T_cam_obj, atol=1e-6)
    assert [h["instance_id"] for h in rec["humans"]] == [h.instance_id for h in f.humans]
    assert rec["robot"]["keypoints"]["visibility"] == f.robot.keypoints.visibility.tolist()


def test_corrupt_sidecar_names_the_line(tmp_path):
    p = tmp_path / "gt.jsonl"
    p.write_text('{"stamp_ns": 1}\n{not json\n')
    with pytest.raises(ValueError, match=r"gt.jsonl:2: not a JSON record"):
        read_ground_truth(p)


def _copy_bag(src, out, keep=lambda topic: True, shuffle_seed=None, extra=()):
    """A copy of bag src at out: topics filtered by keep, records of one log time in a
    shuffled order, extra (topic, msgtype, log time ns, raw CDR) records added."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    with Reader(src) as reader:
        conns = [c for c in reader.connections if keep(c.topic)]
        # (rosbags reads every connection when given none)
        records = [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages(connections=conns)
                   ] if conns else []
    records += list(extra)
    rng = np.random.default_rng(shuffle_seed)
    order = np.lexsort((rng.random(len(records)) if shuffle_seed is not None else np.arange(len(records)),
                        [r[2] for r in records]))
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        made = {}
        for k in order:
            topic, msgtype, t, raw = records[k]
            if topic not in made:
                made[topic] = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            writer.write(made[topic], t, raw)
    return out


def test_bag_frames_carry_the_newest_joint_state_at_or_before_them(tmp_path, bag_dir, small_frames):
    """A driver's joint_states at their own rate and stamps, and records of one stamp in
    any order: every frame still comes out whole, with the right joint state."""
    stamps = [f.stamp_ns for f in small_frames[:4]]
    extra = []
    for k, st in enumerate(stamps):
        for dt_ns, value in ((-20_000_000, 10.0 * k), (5_000_000, 10.0 * k + 5)):   # 20 ms before, 5 ms after
            msg = JointState(header=Header(stamp=Time(sec=(st + dt_ns) // 10**9, nanosec=(st + dt_ns) % 10**9),
                                           frame_id=""), name=["j1"], position=np.array([value]),
                             velocity=np.zeros(0), effort=np.zeros(0))
            extra.append(("/cell/joint_states", "sensor_msgs/msg/JointState", st + dt_ns,
                          bytes(TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/JointState"))))
    out = _copy_bag(bag_dir, tmp_path / "driver", keep=lambda t: not t.endswith("joint_states"),
                    shuffle_seed=0, extra=extra)
    frames = list(read_bag_frames(out))
    assert [b.stamp_ns for b in frames] == stamps
    for k, b in enumerate(frames):
        assert b.has_joint_states and b.joint_state.names == ("j1",)
        assert b.joint_state.stamp_ns == stamps[k] - 20_000_000 and b.joint_state.positions_rad[0] == 10.0 * k
        assert np.array_equal(b.depth_mm, small_frames[k].depth_mm) and np.array_equal(b.rgb, small_frames[k].rgb)
    # the exported bag: the joint state of the frame's own stamp
    for b, f in zip(read_bag_frames(bag_dir), small_frames):
        assert b.joint_state.stamp_ns == f.stamp_ns
        np.testing.assert_array_equal(b.joint_state.positions_rad, f.robot.joint_positions_rad)
    # no joint_states in the bag
    bare = _copy_bag(bag_dir, tmp_path / "bare", keep=lambda t: not t.endswith("joint_states"))
    assert all(b.joint_state is None and not b.has_joint_states for b in read_bag_frames(bare))


def test_a_frame_missing_a_record_is_skipped_and_the_others_come_out(tmp_path, bag_dir, small_frames):
    stamps = [f.stamp_ns for f in small_frames[:4]]
    with Reader(bag_dir) as reader:
        records = [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]
    lost = [r for r in records if not (r[0].endswith("depth/image_raw") and r[2] == stamps[1])]
    assert len(lost) == len(records) - 1
    out = _copy_bag(bag_dir, tmp_path / "lost", keep=lambda t: False, extra=lost)
    assert [b.stamp_ns for b in read_bag_frames(out)] == [stamps[0], stamps[2], stamps[3]]


def _colour_wire(rgb: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels [H, W, C] or [H, W] uint8 as a camera driver sends them in ``encoding``,
    the RGB [H, W, 3] they show)."""
    alpha = np.full(rgb.shape[:2] + (1,), 200, np.uint8)
    if encoding == "mono8":
        return rgb[..., 1], np.repeat(rgb[..., 1:2], 3, axis=2)
    return {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.concatenate([rgb, alpha], 2),
            "bgra8": np.concatenate([rgb[..., ::-1], alpha], 2)}[encoding], rgb


def _depth_wire(depth_mm: np.ndarray, encoding: str) -> np.ndarray:
    """Depth [H, W] as a driver sends it: uint16 mm, or float32 metres with NaN where there is none."""
    if encoding == "32FC1":
        return np.where(depth_mm > 0, depth_mm.astype(np.float32) / np.float32(1000), np.float32(np.nan))
    return depth_mm


def _image_record(topic: str, a: np.ndarray, encoding: str, stamp_ns: int, big_endian: bool) -> tuple:
    """(topic, msgtype, log time, raw CDR) of a sensor_msgs/Image laid out by hand: 2 bytes
    of padding after each row, big- or little-endian elements."""
    step, data = image_wire(a, pad=2, big_endian=big_endian)
    msg = Image(header=Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=CAMERA_FRAME_ID),
                height=a.shape[0], width=a.shape[1], encoding=encoding, is_bigendian=int(big_endian), step=step,
                data=np.frombuffer(data, np.uint8))
    return topic, "sensor_msgs/msg/Image", stamp_ns, bytes(TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def _driver_bag(tmp_path, bag_dir, frames, colour: str, depth: str, big_endian: bool = False):
    """A copy of bag_dir whose colour and depth images are in the given encodings."""
    camera = (full_topic("/cell", COLOR_TOPIC), full_topic("/cell", DEPTH_TOPIC))
    extra = []
    for f in frames:
        extra.append(_image_record(camera[0], _colour_wire(f.rgb, colour)[0], colour, f.stamp_ns, big_endian))
        extra.append(_image_record(camera[1], _depth_wire(f.depth_mm, depth), depth, f.stamp_ns, big_endian))
    return _copy_bag(bag_dir, tmp_path / f"{colour}_{depth}", keep=lambda t: t not in camera, extra=extra)


def _assert_frames_read_back(bag, frames, colour: str):
    got = list(read_bag_frames(bag))
    assert [b.stamp_ns for b in got] == [f.stamp_ns for f in frames]
    for b, f in zip(got, frames):
        assert b.rgb.dtype == np.uint8 and b.rgb.shape == f.rgb.shape
        np.testing.assert_array_equal(b.rgb, _colour_wire(f.rgb, colour)[1])
        assert b.depth_mm.dtype == np.uint16
        np.testing.assert_array_equal(b.depth_mm, f.depth_mm)
        np.testing.assert_array_equal(b.instance_mask, f.instance_mask)


def test_a_driver_bag_with_bgr8_colour_and_32fc1_metres_reads_back_as_rgb_and_millimetres(tmp_path, bag_dir,
                                                                                          small_frames):
    frames = small_frames[:4]
    assert (frames[0].depth_mm == 0).any() and (frames[0].depth_mm > 0).any()   # holes (NaN in 32FC1) and depth
    _assert_frames_read_back(_driver_bag(tmp_path, bag_dir, frames, "bgr8", "32FC1"), frames, "bgr8")


@pytest.mark.parametrize("colour, depth, big_endian", [
    ("rgb8", "16UC1", True), ("rgba8", "mono16", False), ("bgra8", "32FC1", True), ("mono8", "16UC1", False),
    ("bgr8", "mono16", True)])
def test_every_colour_and_depth_encoding_reads_back(tmp_path, bag_dir, small_frames, colour, depth, big_endian):
    frames = small_frames[:2]
    _assert_frames_read_back(_driver_bag(tmp_path, bag_dir, frames, colour, depth, big_endian), frames, colour)


def test_an_unreadable_image_is_a_clear_error(tmp_path, bag_dir, small_frames):
    from hrc_perception.io.image_codec import ImageConversionError
    f = small_frames[0]
    bad = _copy_bag(bag_dir, tmp_path / "yuv", keep=lambda t: not t.endswith(COLOR_TOPIC), extra=[
        _image_record(full_topic("/cell", COLOR_TOPIC), f.rgb, "yuv444", f.stamp_ns, False)])
    with pytest.raises(ImageConversionError, match=r"'yuv444' is not a colour encoding \(rgb8, bgr8"):
        list(read_bag_frames(bad))


def test_fast_cdr_records_read_back():
    """rclpy's (Fast CDR) JointState with empty velocity and effort ends in alignment bytes
    rosbags' size check refuses; deserialize reads it with the same fields, and still
    refuses a record that does not parse."""
    pytest.importorskip("rclpy")
    from rclpy.serialization import serialize_message
    from rosbags.serde import SerdeError
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Header

    from hrc_perception.io.bag import deserialize
    raw = serialize_message(JointState(header=Header(frame_id=""), name=["a", "b"], position=[1.0, 2.0]))
    msg = deserialize(raw, "sensor_msgs/msg/JointState")
    assert list(msg.name) == ["a", "b"] and list(msg.position) == [1.0, 2.0] and len(msg.velocity) == 0
    with pytest.raises(SerdeError):
        deserialize(raw[:20], "sensor_msgs/msg/JointState")
