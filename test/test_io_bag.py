"""Bag export: frames written to MCAP read back identical with rosbags and with rclpy."""
import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from hrc_perception.geometry import matrix_from_quaternion
from hrc_perception.io.bag import (COLOR_TOPIC, DEPTH_TOPIC, GT_PARTS_TOPIC, BagWriter, full_topic,
                                   read_bag_frames)
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
