"""hrc_perception.ros.ground_truth_msgs: simulator ground truth <-> the package's messages.

Frames come from the real simulator (a tiny 160x120 cell); every message goes
through rclpy's CDR serialization and back before it is checked against the Frame.
"""
import json

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("hrc_perception.msg")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from hrc_perception.io.ground_truth import frame_record  # noqa: E402
from hrc_perception.msg import (InstanceArray, ObjectPoseArray, Skeleton,  # noqa: E402
                                SkeletonArray)
from hrc_perception.ros.convert import (ImageConversionError, numpy_to_image,  # noqa: E402
                                        pose_to_matrix, stamp_to_ns)
from hrc_perception.ros.ground_truth_msgs import (  # noqa: E402
    GT_HUMAN_SKELETONS_TOPIC, GT_INSTANCES_TOPIC, GT_OBJECT_POSES_TOPIC, GT_ROBOT_BASE_POSE_TOPIC,
    GT_ROBOT_SKELETON_TOPIC, frame_ground_truth_msgs, human_skeletons_msg, instances_msg, instances_to_mask, make_header,
    part_poses_msg, record_ground_truth_msgs, robot_skeleton_msg, skeleton_to_arrays)
from hrc_perception.sim.frame import Instance  # noqa: E402

FRAME_ID = "camera_color_optical_frame"
CELL_YAML = """\
camera: {width: 160, height: 120, fx: 154, fy: 154, cx: 80, cy: 60}
sequence: {episode_frames: 3}
humans: {count: [2, 2]}
"""
TYPES = {GT_ROBOT_SKELETON_TOPIC: Skeleton, GT_HUMAN_SKELETONS_TOPIC: SkeletonArray,
         GT_OBJECT_POSES_TOPIC: ObjectPoseArray, GT_INSTANCES_TOPIC: InstanceArray, GT_ROBOT_BASE_POSE_TOPIC: PoseStamped}
HEADER = Header(stamp=Time(sec=7, nanosec=123), frame_id=FRAME_ID)


@pytest.fixture(scope="session")
def gt_frames(tmp_path_factory):
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    p = tmp_path_factory.mktemp("gt_cfg") / "cell.yaml"
    p.write_text(CELL_YAML)
    return list(SynthRun(load_cell_config(p), seed=5).frames(2))


def wire(msg):
    """The message after a CDR round trip (what a subscriber receives)."""
    return deserialize_message(serialize_message(msg), type(msg))


def wire_all(msgs: dict) -> dict:
    out = {}
    for topic, msg in msgs.items():
        assert isinstance(msg, TYPES[topic]), topic
        out[topic] = wire(msg)
    return out


def check_skeleton(msg, kp, model, id_, header):
    assert msg.header == header
    assert (msg.model, msg.id) == (model, id_)
    names, xyz, uv, vis, conf = skeleton_to_arrays(msg)
    assert names == tuple(kp.names)
    n = len(names)
    assert xyz.shape == (n, 3) and uv.shape == (n, 2) and vis.shape == (n,) and conf.shape == (n,)
    np.testing.assert_array_equal(xyz, kp.xyz_cam_m)   # float64 on the wire
    np.testing.assert_array_equal(uv, kp.uv_px.astype(np.float32))
    np.testing.assert_allclose(uv, kp.uv_px, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(vis, kp.visibility)
    np.testing.assert_array_equal(conf, np.ones(n, np.float32))


def check_frame_msgs(frame, msgs):
    header = msgs[GT_ROBOT_SKELETON_TOPIC].header
    assert stamp_to_ns(header.stamp) == frame.stamp_ns and header.frame_id == FRAME_ID
    # robot
    check_skeleton(msgs[GT_ROBOT_SKELETON_TOPIC], frame.robot.keypoints, frame.robot.model,
                   frame.robot.instance_id, header)
    base = msgs[GT_ROBOT_BASE_POSE_TOPIC]
    assert base.header == header
    np.testing.assert_allclose(pose_to_matrix(base.pose), frame.robot.T_cam_base, rtol=0, atol=1e-9)
    # humans
    sk = msgs[GT_HUMAN_SKELETONS_TOPIC]
    assert sk.header == header
    assert len(sk.skeletons) == len(frame.humans)
    for s, h in zip(sk.skeletons, frame.humans):
        check_skeleton(s, h.keypoints, "coco17", h.instance_id, header)
    # parts
    poses = msgs[GT_OBJECT_POSES_TOPIC]
    assert poses.header == header
    assert len(poses.poses) == len(frame.parts)
    for op, p in zip(poses.poses, frame.parts):
        assert (op.instance_id, op.class_name, op.confidence) == (p.instance_id, p.class_name, 1.0)
        np.testing.assert_allclose(pose_to_matrix(op.pose), p.T_cam_obj, rtol=0, atol=1e-6)
    # instances
    inst = msgs[GT_INSTANCES_TOPIC]
    assert inst.header == header
    h, w = frame.instance_mask.shape
    present = set(np.unique(frame.instance_mask).tolist()) - {0}
    expected = [i for i in frame.instances if i.instance_id in present]
    assert [m.id for m in inst.instances] == [i.instance_id for i in expected]
    for m, i in zip(inst.instances, expected):
        assert (m.class_name, m.class_id, m.score, len(m.embedding)) == (i.class_name, i.class_id, 1.0, 0)
        assert m.mask.header == header and m.mask.encoding == "mono8"
        rows, cols = np.nonzero(frame.instance_mask == i.instance_id)
        assert (m.roi.x_offset, m.roi.y_offset) == (cols.min(), rows.min())
        assert (m.roi.width, m.roi.height) == (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
    np.testing.assert_array_equal(instances_to_mask(inst, h, w), frame.instance_mask)


# ------------------------------------------------------------------ frame based

def test_frames_have_content(gt_frames):
    """The fixture exercises every message kind (else the checks below prove little)."""
    assert len(gt_frames) == 2
    assert all(len(f.humans) == 2 for f in gt_frames)
    assert any(f.parts for f in gt_frames)
    assert any(len(np.unique(f.instance_mask)) >= 3 for f in gt_frames)
    assert any((f.robot.keypoints.visibility == 2).any() for f in gt_frames)


def test_frame_messages_match_ground_truth(gt_frames):
    for frame in gt_frames:
        msgs = frame_ground_truth_msgs(frame, FRAME_ID)
        assert set(msgs) == set(TYPES)
        check_frame_msgs(frame, wire_all(msgs))


def test_headers_identical_and_independent(gt_frames):
    frame = gt_frames[0]
    msgs = frame_ground_truth_msgs(frame, FRAME_ID)
    want = make_header(frame.stamp_ns, FRAME_ID)
    headers = [m.header for m in msgs.values()]
    headers += [s.header for s in msgs[GT_HUMAN_SKELETONS_TOPIC].skeletons]
    headers += [i.mask.header for i in msgs[GT_INSTANCES_TOPIC].instances]
    assert all(h == want for h in headers)
    # one header object per message: changing one leaves the others alone
    msgs[GT_ROBOT_SKELETON_TOPIC].header.frame_id = "changed"
    assert msgs[GT_OBJECT_POSES_TOPIC].header == want


def test_stamps_differ_between_frames(gt_frames):
    a, b = (frame_ground_truth_msgs(f, FRAME_ID)[GT_OBJECT_POSES_TOPIC].header for f in gt_frames)
    assert stamp_to_ns(a.stamp) != stamp_to_ns(b.stamp)


# ----------------------------------------------------------------- record based

def assert_msgs_close(a: dict, b: dict):
    """Frame- and record-based messages agree (records round floats to 1e-6)."""
    assert set(a) == set(b)
    for topic in a:
        ma, mb = a[topic], b[topic]
        assert ma.header == mb.header
        if topic == GT_OBJECT_POSES_TOPIC:
            assert len(ma.poses) == len(mb.poses)
            for pa, pb in zip(ma.poses, mb.poses):
                assert (pa.instance_id, pa.class_name, pa.confidence) == (pb.instance_id, pb.class_name,
                                                                          pb.confidence)
                np.testing.assert_allclose(pose_to_matrix(pa.pose), pose_to_matrix(pb.pose), atol=1e-5)
        elif topic == GT_INSTANCES_TOPIC:
            assert ma == mb   # integers only: exactly equal
        elif topic == GT_ROBOT_BASE_POSE_TOPIC:
            np.testing.assert_allclose(pose_to_matrix(ma.pose), pose_to_matrix(mb.pose), atol=1e-5)
        else:
            sa = [ma] if topic == GT_ROBOT_SKELETON_TOPIC else list(ma.skeletons)
            sb = [mb] if topic == GT_ROBOT_SKELETON_TOPIC else list(mb.skeletons)
            assert len(sa) == len(sb)
            for x, y in zip(sa, sb):
                assert (x.header, x.model, x.id) == (y.header, y.model, y.id)
                ax, bx = skeleton_to_arrays(x), skeleton_to_arrays(y)
                assert ax[0] == bx[0]
                for u, v in zip(ax[1:], bx[1:]):
                    np.testing.assert_allclose(u, v, rtol=0, atol=1e-5)


def test_record_matches_frame(gt_frames):
    for frame in gt_frames:
        record = json.loads(json.dumps(frame_record(frame)))   # as read from a sidecar file
        from_frame = wire_all(frame_ground_truth_msgs(frame, FRAME_ID))
        from_record = wire_all(record_ground_truth_msgs(record, FRAME_ID, frame.instance_mask))
        assert_msgs_close(from_frame, from_record)


def test_record_without_mask_has_no_instances(gt_frames):
    record = frame_record(gt_frames[0])
    msgs = record_ground_truth_msgs(record, FRAME_ID)
    assert set(msgs) == set(TYPES) - {GT_INSTANCES_TOPIC}
    assert all(stamp_to_ns(m.header.stamp) == record["stamp_ns"] for m in msgs.values())


# ------------------------------------------------------------------ empty cases

def test_empty_inputs_give_empty_arrays_with_header(gt_frames):
    frame = gt_frames[0]
    sk = wire(human_skeletons_msg([], HEADER))
    assert sk.header == HEADER and len(sk.skeletons) == 0
    po = wire(part_poses_msg([], HEADER))
    assert po.header == HEADER and len(po.poses) == 0
    empty_mask = np.zeros((120, 160), np.uint16)
    for mask, insts in ((empty_mask, frame.instances), (frame.instance_mask, []),
                        (np.zeros((0, 0), np.uint16), frame.instances)):
        im = wire(instances_msg(mask, insts, HEADER))
        assert im.header == HEADER and len(im.instances) == 0
        np.testing.assert_array_equal(instances_to_mask(im, 120, 160), empty_mask)
    rob = wire(robot_skeleton_msg(None, HEADER))
    assert rob.header == HEADER and len(rob.joint_names) == 0 and len(rob.positions) == 0
    names, xyz, uv, vis, conf = skeleton_to_arrays(rob)
    assert names == () and xyz.shape == (0, 3) and uv.shape == (0, 2) and vis.shape == conf.shape == (0,)


def test_record_with_no_humans_or_parts(gt_frames):
    record = frame_record(gt_frames[0])
    record["humans"], record["parts"] = [], []
    msgs = wire_all(record_ground_truth_msgs(record, FRAME_ID, np.zeros((120, 160), np.uint16)))
    assert len(msgs[GT_HUMAN_SKELETONS_TOPIC].skeletons) == 0
    assert len(msgs[GT_OBJECT_POSES_TOPIC].poses) == 0
    assert len(msgs[GT_INSTANCES_TOPIC].instances) == 0
    assert len({str(m.header) for m in msgs.values()}) == 1


# -------------------------------------------------------------- instance masks

def test_instances_synthetic_mask_round_trip():
    """Touching, nested, single-pixel and border instances; unknown ids are dropped."""
    mask = np.zeros((30, 40), np.uint16)
    mask[0:10, 0:10] = 3
    mask[2:5, 2:5] = 700          # inside instance 3's box
    mask[29, 39] = 9              # single pixel in the corner
    mask[10:30, 10] = 4           # thin, touches the border
    mask[15, 20:25] = 55          # not in the list: ignored
    insts = [Instance(9, "part", "gear", 2), Instance(3, "robot", "panda", 1),
             Instance(700, "person", "person", 3), Instance(4, "part", "bolt", 4),
             Instance(12, "part", "pipe", 5)]   # 12: no pixels
    msg = wire(instances_msg(mask, insts, HEADER))
    assert [i.id for i in msg.instances] == [9, 3, 700, 4]
    assert [(i.class_name, i.class_id) for i in msg.instances] == [("gear", 2), ("panda", 1),
                                                                   ("person", 3), ("bolt", 4)]
    r9 = msg.instances[0].roi
    assert (r9.x_offset, r9.y_offset, r9.width, r9.height) == (39, 29, 1, 1)
    want = mask.copy()
    want[want == 55] = 0
    # 3's crop has a hole where 700 is, so the paste order does not matter
    np.testing.assert_array_equal(instances_to_mask(msg, 30, 40), want)
    # signed and wider integer masks give the same messages
    for dt in (np.int32, np.uint32, np.int64):
        assert instances_msg(mask.astype(dt), insts, HEADER) == instances_msg(mask, insts, HEADER)


def test_instances_bad_inputs():
    with pytest.raises(ValueError):
        instances_msg(np.zeros((4, 4, 1), np.uint16), [], HEADER)
    with pytest.raises(ValueError):
        instances_msg(np.zeros((4, 4), np.float32), [], HEADER)
    mask = np.zeros((6, 6), np.uint16)
    mask[1:3, 1:4] = 1
    msg = instances_msg(mask, [Instance(1, "part", "gear", 1)], HEADER)
    with pytest.raises(ImageConversionError):
        instances_to_mask(msg, 2, 6)                    # ROI leaves the image
    msg.instances[0].mask = numpy_to_image(np.full((3, 3), 255, np.uint8), "mono8", HEADER)
    with pytest.raises(ImageConversionError):
        instances_to_mask(msg, 6, 6)                    # crop size != ROI size
    msg.instances[0].mask = numpy_to_image(np.zeros((2, 3), np.uint16), "16UC1", HEADER)
    with pytest.raises(ImageConversionError):
        instances_to_mask(msg, 6, 6)                    # not mono8


def test_skeleton_rejects_inconsistent_keypoints(gt_frames):
    from dataclasses import replace
    kp = gt_frames[0].robot.keypoints
    bad = replace(gt_frames[0].robot, keypoints=replace(kp, uv_px=kp.uv_px[:-1]))
    with pytest.raises(ValueError):
        robot_skeleton_msg(bad, HEADER)
