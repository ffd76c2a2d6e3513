"""The object_pose node over real rclpy and DDS: pairing by stamp, poses with the
instance's and the track's ids, markers, and bad input (no images, zero camera_info,
sizes that differ, masks that do not fit, classes the model does not know), the model freed
on deactivate and loaded again on activate."""
import numpy as np
import pytest
from conftest import QOS, Harness, spin_until
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.geometry import make_K
from hrc_perception.msg import Instance, InstanceArray, ObjectPoseArray, Track, TrackArray
from hrc_perception.ros.convert import K_to_camera_info, mask_to_roi_image, numpy_to_image, pose_to_matrix
from hrc_perception.ros.ground_truth_msgs import make_header
from hrc_perception.ros.object_pose_node import (CAMERA_INFO_TOPIC, COLOR_TOPIC, DEPTH_TOPIC, INSTANCES_TOPIC,
                                                 MARKERS_TOPIC, POSES_TOPIC, TRACKS_TOPIC, ObjectPoseNode)

FRAME_ID = "camera_color_optical_frame"
K = make_K(500.0, 500.0, 320.0, 240.0)
T0 = 5_000 * 10**9


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """An untrained model for two parts (its poses are finite, not accurate)."""
    torch = pytest.importorskip("torch")
    from hrc_perception.object_pose.model import BuildConfig, save_model
    build = BuildConfig(num_classes=2, n_points=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net, ref = build.build()
    path = tmp_path_factory.mktemp("pose_weights") / "model.pt"
    save_model(path, build, net.eval(), ref.eval(), {"classes": ["gear", "bolt"], "diameters_m": [0.08, 0.1]})
    return path


def _scene():
    rgb = np.full((480, 640, 3), 90, np.uint8)
    depth_mm = np.full((480, 640), 1200, np.uint16)
    gear = np.zeros((480, 640), bool)
    gear[200:240, 300:350] = True
    depth_mm[gear] = 800
    rgb[gear] = (180, 180, 40)
    return rgb, depth_mm, gear


def _instance(i, name, mask, score=0.9):
    roi, img = mask_to_roi_image(mask)
    return Instance(id=i, class_name=name, class_id=i, score=score, roi=roi, mask=img)


@pytest.fixture(scope="module")
def rig(ros_context, weights):
    node = ObjectPoseNode(context=ros_context, parameter_overrides=[
        Parameter("weights", value=str(weights)), Parameter("input_reliability", value="reliable"),
        Parameter("min_mask_pixels", value=30)])
    assert node.lifecycle_state == "active", node.configure_error
    h = Harness(ros_context, node, INSTANCES_TOPIC, InstanceArray, {POSES_TOPIC: ObjectPoseArray,
                                                                    MARKERS_TOPIC: MarkerArray})
    pubs = {t: h.io.create_publisher(m, t, QOS) for t, m in
            ((COLOR_TOPIC, Image), (DEPTH_TOPIC, Image), (CAMERA_INFO_TOPIC, CameraInfo), (TRACKS_TOPIC, TrackArray))}
    assert spin_until(h.ex, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()))
    yield h, pubs
    h.close()


def _send_images(h, pubs, stamp, rgb, depth, zero_K=False):
    node = h.node
    info = K_to_camera_info(K, 640, 480, make_header(stamp, FRAME_ID))
    if zero_K:   # an uncalibrated camera
        info.k = [0.0] * 9
        info.p = [0.0] * 12
    pubs[CAMERA_INFO_TOPIC].publish(info)
    pubs[COLOR_TOPIC].publish(numpy_to_image(rgb, "rgb8", make_header(stamp, FRAME_ID)))
    pubs[DEPTH_TOPIC].publish(numpy_to_image(depth, "16UC1" if depth.dtype == np.uint16 else "32FC1",
                                             make_header(stamp, FRAME_ID)))
    assert spin_until(h.ex, lambda: stamp in node._color and stamp in node._depth and node._camera_info is not None
                      and node._camera_info.header.stamp == info.header.stamp)


def test_poses_of_the_parts_with_instance_and_track_ids(rig):
    h, pubs = rig
    node = h.node
    rgb, depth_mm, gear = _scene()
    _send_images(h, pubs, T0, rgb, depth_mm)
    tracks = TrackArray(header=make_header(T0, FRAME_ID), tracks=[Track(track_id=17, instance_id=2, state=1)])
    pubs[TRACKS_TOPIC].publish(tracks)
    assert spin_until(h.ex, lambda: T0 in node._tracks)
    person = np.zeros_like(gear)
    person[50:300, 500:560] = True
    far_bolt = np.zeros_like(gear)
    far_bolt[10:14, 10:14] = True                       # 16 pixels < min_mask_pixels 30
    msg = InstanceArray(header=make_header(T0, FRAME_ID), instances=[
        _instance(1, "person", person), _instance(2, "gear", gear), _instance(3, "bolt", far_bolt),
        _instance(4, "gear", gear, score=0.2)])
    before = dict(node.skipped)
    out = h.send(msg, POSES_TOPIC)
    assert out is not None and out.header.stamp == msg.header.stamp and out.header.frame_id == FRAME_ID
    assert [(p.instance_id, p.track_id, p.class_name) for p in out.poses] == [(2, 17, "gear")]
    T = pose_to_matrix(out.poses[0].pose)
    assert np.isfinite(T).all() and 0.0 < out.poses[0].confidence < 1.0
    delta = {k: node.skipped[k] - before.get(k, 0) for k in node.skipped}
    assert delta == {"not_a_model_part": 1, "few_depth_pixels": 1, "low_score": 1}
    assert spin_until(h.ex, lambda: len(h.received[MARKERS_TOPIC]) > 0)
    markers = h.received[MARKERS_TOPIC][-1].markers
    assert [(m.ns, m.type) for m in markers] == [("part_axes", Marker.LINE_LIST), ("part_labels", Marker.TEXT_VIEW_FACING)]
    assert markers[0].pose == out.poses[0].pose and len(markers[0].points) == 6
    assert np.linalg.norm([markers[0].points[1].x, markers[0].points[1].y]) == pytest.approx(0.04)   # diameter / 2


def test_bad_input_gives_an_empty_array_with_the_header(rig):
    h, pubs = rig
    node = h.node
    rgb, depth_mm, gear = _scene()

    def ask(stamp):
        out = h.send(InstanceArray(header=make_header(stamp, FRAME_ID), instances=[_instance(1, "gear", gear)]),
                     POSES_TOPIC)
        assert out is not None and out.header.stamp == make_header(stamp, FRAME_ID).stamp
        return out.poses

    t = T0 + 10**9
    assert ask(t) == [] and node.counters.get("no_images") == 1           # no images of this stamp
    _send_images(h, pubs, t + 1, rgb, depth_mm, zero_K=True)
    assert ask(t + 1) == [] and node.counters.get("bad_camera_info") == 1
    _send_images(h, pubs, t + 2, rgb, depth_mm[:, :600].copy())
    assert ask(t + 2) == [] and node.counters.get("size_mismatch") == 1
    _send_images(h, pubs, t + 3, rgb, np.zeros_like(depth_mm))            # depth all zero
    n = node.skipped["few_depth_pixels"]
    assert ask(t + 3) == [] and node.skipped["few_depth_pixels"] == n + 1
    nan_depth = np.full((480, 640), np.nan, np.float32)
    _send_images(h, pubs, t + 4, rgb, nan_depth)
    assert ask(t + 4) == [] and node.skipped["few_depth_pixels"] == n + 2
    _send_images(h, pubs, t + 5, rgb, depth_mm)
    roi, img = mask_to_roi_image(gear)
    roi.x_offset = 630                                                     # does not fit in the image
    bad = InstanceArray(header=make_header(t + 5, FRAME_ID),
                        instances=[Instance(id=1, class_name="gear", score=0.9, roi=roi, mask=img)])
    assert h.send(bad, POSES_TOPIC).poses == [] and node.counters.get("bad_mask") == 1
    assert node.lifecycle_state == "active"


def test_model_freed_on_deactivate_and_loaded_again_on_activate(rig):
    h, pubs = rig
    node = h.node
    node.trigger_deactivate()
    assert node.lifecycle_state == "inactive" and node.predictor is None
    node.trigger_activate()
    assert node.lifecycle_state == "active" and node.predictor is not None, node.configure_error
    rgb, depth_mm, gear = _scene()
    t = T0 + 3 * 10**9
    _send_images(h, pubs, t, rgb, depth_mm)
    out = h.send(InstanceArray(header=make_header(t, FRAME_ID), instances=[_instance(2, "gear", gear)]), POSES_TOPIC)
    assert out is not None and [p.class_name for p in out.poses] == ["gear"]
    assert np.isfinite(pose_to_matrix(out.poses[0].pose)).all()


def test_missing_weights_fail_configure_and_the_node_stays_up(ros_context, tmp_path):
    node = ObjectPoseNode(context=ros_context, parameter_overrides=[Parameter("weights", value=str(tmp_path / "x.pt"))])
    try:
        assert node.lifecycle_state == "unconfigured" and "not found" in node.configure_error
    finally:
        node.destroy_node()
