"""Visualizer node on real rclpy + DDS: overlay pixels and header, markers, latency, bad input, ground truth."""
import numpy as np
import pytest
from conftest import spin_until
from PIL import Image as PilImage
from PIL import ImageDraw
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from scipy import ndimage
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.geometry import project, transform_points
from hrc_perception.msg import InstanceArray, ObjectPoseArray, SafetyStatus, Skeleton, SkeletonArray
from hrc_perception.ros.convert import K_to_camera_info, image_to_numpy, numpy_to_image
from hrc_perception.ros.ground_truth_msgs import (GT_INSTANCES_TOPIC, human_skeletons_msg, instances_msg,
                                                  make_header, part_poses_msg, robot_skeleton_msg,
                                                  skeleton_to_arrays)
from hrc_perception.ros.visualizer import (COLOR_TOPIC, DEBUG_IMAGE_TOPIC, INFO_TOPIC, MARKERS_TOPIC,
                                           VisualizerNode, _Received, pick_message)
from hrc_perception.skeletons import COCO17_BONES, chain_bones
from hrc_perception.viz.draw import SAFETY_COLORS

FRAME_ID = "camera_color_optical_frame"
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def frame(small_cell_yaml):
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    return SynthRun(load_cell_config(small_cell_yaml), seed=1).frame(0)


class Harness:
    """The node under test, a publisher/listener node, and one executor for both."""

    def __init__(self, ctx, **params):
        import rclpy.node
        overrides = [Parameter("input_reliability", value="reliable")]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        self.node = VisualizerNode(context=ctx, parameter_overrides=overrides)
        self.io = rclpy.node.Node("visualizer_test_io", context=ctx)
        self.pubs = {}
        for topic, t in [(COLOR_TOPIC, Image), (INFO_TOPIC, CameraInfo),
                         ("segmentation/instances", InstanceArray), ("objects/poses", ObjectPoseArray),
                         ("robot/skeleton", Skeleton), ("humans/skeletons", SkeletonArray),
                         ("safety/status", SafetyStatus), (GT_INSTANCES_TOPIC, InstanceArray)]:
            self.pubs[topic] = self.io.create_publisher(t, topic, QOS)
        self.images, self.markers = [], []
        self.io.create_subscription(Image, DEBUG_IMAGE_TOPIC, self.images.append, QOS)
        self.io.create_subscription(MarkerArray, MARKERS_TOPIC, self.markers.append, QOS)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        assert spin_until(self.ex, lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values())
                          and self.io.count_publishers(DEBUG_IMAGE_TOPIC) > 0, 10.0)

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def publish_results(self, msgs: dict) -> None:
        """Publish {topic: msg} and wait until the node has them all."""
        before = dict(self.node.received)
        for topic, m in msgs.items():
            self.pubs[topic].publish(m)
        assert spin_until(self.ex, lambda: all(self.node.received.get(t, 0) > before.get(t, 0) for t in msgs))

    def image(self, rgb, header, encoding="rgb8") -> Image | None:
        """Publish a colour image; the debug image the node publishes for it (None if none in 1 s)."""
        n = len(self.images)
        msg = numpy_to_image(rgb, encoding, header) if encoding in ("rgb8", "mono8") else _raw(rgb, encoding, header)
        self.pubs[COLOR_TOPIC].publish(msg)
        spin_until(self.ex, lambda: len(self.images) > n, 3.0 if encoding == "rgb8" else 1.0)
        return self.images[n] if len(self.images) > n else None

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


def _raw(rgb, encoding, header) -> Image:
    msg = numpy_to_image(rgb, "rgb8", header)
    msg.encoding = encoding
    return msg


@pytest.fixture
def harness(ros_context, request):
    h = Harness(ros_context, **getattr(request, "param", {}))
    yield h
    h.close()


def _frame_msgs(frame, header):
    return {INFO_TOPIC: K_to_camera_info(frame.K, frame.rgb.shape[1], frame.rgb.shape[0], header),
            "segmentation/instances": instances_msg(frame.instance_mask, frame.instances, header),
            "objects/poses": part_poses_msg(frame.parts, header),
            "robot/skeleton": robot_skeleton_msg(frame.robot, header),
            "humans/skeletons": human_skeletons_msg(frame.humans, header),
            "safety/status": SafetyStatus(header=header, level=SafetyStatus.WARNING, min_distance_m=0.82,
                                          reason="person approaching")}


def _near_drawings(frame, shape, radius=6):
    """Pixels where the overlay may draw: instances, skeletons (+ labels), part axes (+ labels), dilated."""
    h, w = shape
    canvas = PilImage.new("L", (w, h), 0)
    d = ImageDraw.Draw(canvas)

    def mark_label(u, v):
        d.rectangle([u - 10, v - 30, u + 90, v + 30], fill=255)
    skeletons = [(frame.robot.keypoints, chain_bones(len(frame.robot.keypoints.names)))]
    skeletons += [(hm.keypoints, COCO17_BONES) for hm in frame.humans]
    for kp, bones in skeletons:
        uv, shown = kp.uv_px, kp.visibility > 0
        for j, k in bones:
            if shown[j] and shown[k]:
                d.line([tuple(uv[j]), tuple(uv[k])], fill=255, width=3)
        for j in np.flatnonzero(shown):
            d.ellipse([uv[j][0] - 6, uv[j][1] - 6, uv[j][0] + 6, uv[j][1] + 6], fill=255)
        if shown.any():
            mark_label(*uv[np.flatnonzero(shown)[0]])
    for p in frame.parts:
        pts = transform_points(p.T_cam_obj, np.vstack([np.zeros(3), np.eye(3) * 0.06]))
        uv = project(pts, frame.K)
        for k in range(1, 4):
            d.line([tuple(uv[0]), tuple(uv[k])], fill=255, width=3)
        mark_label(*uv[0])
    near = (np.asarray(canvas) > 0) | (frame.instance_mask > 0)
    return ndimage.binary_dilation(near, iterations=radius)


def _box_mask(shape, boxes):
    m = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        m[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
    return m


def test_pick_message_prefers_exact_then_newest_within_max_age():
    hist = [_Received(100, "a"), _Received(300, "c"), _Received(200, "b"), _Received(500, "e")]
    assert pick_message(hist, 300, 0).msg == "c" and pick_message(hist, 300, 0).age_s == 0.0
    p = pick_message(hist, 450, 200)
    assert p.msg == "c" and p.age_s == pytest.approx(150e-9)
    assert pick_message(hist, 450, 100) is None            # c is 150 ns older: too old
    assert pick_message(hist, 50, 10**9) is None           # everything is newer than the image


def test_overlay_markers_and_latency(harness, frame):
    h = harness
    stamp = h.now_ns()
    header = make_header(stamp, FRAME_ID)
    msgs = _frame_msgs(frame, header)
    h.publish_results(msgs)
    out = h.image(frame.rgb, header)
    assert out is not None, "no debug image"
    assert out.header.stamp == header.stamp and out.header.frame_id == FRAME_ID
    assert out.encoding == "rgb8" and (out.height, out.width) == frame.rgb.shape[:2]
    a, rgb = image_to_numpy(out), frame.rgb
    changed = np.any(a != rgb, axis=2)
    regions = h.node.last_regions
    assert set(regions) == {"banner", "latency"}, regions            # nothing stale: exact stamps
    overlays = _box_mask(changed.shape, regions.values())
    # instances are tinted
    inside = (frame.instance_mask > 0) & ~overlays
    assert inside.sum() > 500 and changed[inside].mean() > 0.95
    # far from every drawing nothing changed
    far = ~_near_drawings(frame, changed.shape) & ~overlays
    assert far.sum() > 0.1 * far.size
    assert not changed[far].any()
    # the safety banner is amber (WARNING)
    assert tuple(a[2, a.shape[1] - 2]) == SAFETY_COLORS["WARNING"]

    assert spin_until(h.ex, lambda: len(h.markers) >= 1)
    markers = h.markers[-1].markers
    assert {m.header.frame_id for m in markers} == {FRAME_ID}
    by_ns = {}
    for m in markers:
        by_ns.setdefault(m.ns, []).append(m)
    assert {"robot/skeleton", "humans/skeletons", "objects/poses"} <= set(by_ns)
    _, xyz, _, _, _ = skeleton_to_arrays(msgs["robot/skeleton"])
    spheres = [m for m in by_ns["robot/skeleton"] if m.type == Marker.SPHERE_LIST]
    assert len(spheres) == 1
    assert np.allclose([(p.x, p.y, p.z) for p in spheres[0].points], xyz)
    assert any(m.type == Marker.LINE_LIST for m in by_ns["robot/skeleton"])
    assert sum(m.type == Marker.SPHERE_LIST for m in by_ns["humans/skeletons"]) == len(frame.humans)
    arrows = [m for m in by_ns["objects/poses"] if m.type == Marker.ARROW]
    assert len(arrows) == 3 * len(frame.parts)
    origins = {(round(m.points[0].x, 6), round(m.points[0].y, 6), round(m.points[0].z, 6)) for m in arrows}
    assert origins == {tuple(np.round(p.T_cam_obj[:3, 3], 6)) for p in frame.parts}
    assert all(0.4 < m.lifetime.sec + m.lifetime.nanosec * 1e-9 < 0.6 for m in markers)

    stats = h.node.latency_stats()
    for topic in ("segmentation/instances", "objects/poses", "robot/skeleton", "humans/skeletons", COLOR_TOPIC):
        med, p95, n = stats[topic]
        assert n == 1 and 0.0 <= med <= p95 < 5.0


@pytest.mark.parametrize("harness", [{"render_delay_s": 0.0, "max_rate_hz": 0.0}], indirect=True)
def test_bad_input_is_reported_and_the_node_keeps_working(harness, frame):
    h = harness
    rgb = frame.rgb
    bad = h.image(rgb, make_header(h.now_ns(), FRAME_ID), encoding="yuv422")
    assert bad is None and h.node.counters.get("bad_image") == 1

    # no camera_info yet, a mask whose ROI leaves the image, a NaN pose, NaN joints
    stamp = h.now_ns()
    header = make_header(stamp, FRAME_ID)
    msgs = _frame_msgs(frame, header)
    del msgs[INFO_TOPIC]
    inst = msgs["segmentation/instances"]
    inst.instances[0].roi.x_offset = rgb.shape[1] - 2
    poses = msgs["objects/poses"]
    poses.poses[0].pose.position.x = float("nan")
    humans = msgs["humans/skeletons"]
    humans.skeletons[0].positions[0].x = float("nan")
    humans.skeletons[0].pixel_u[1] = float("nan")
    h.publish_results(msgs)
    out = h.image(rgb, header)
    assert out is not None and out.header.stamp == header.stamp
    for kind in ("bad_mask", "bad_pose", "no_camera_info"):
        assert h.node.counters.get(kind, 0) >= 1, (kind, h.node.counters)
    assert "bad_skeleton" not in h.node.counters and "draw_error" not in h.node.counters
    a = image_to_numpy(out)
    good = frame.instance_mask == inst.instances[1].id
    good &= ~_box_mask(good.shape, h.node.last_regions.values())
    assert np.any(a != rgb, axis=2)[good].mean() > 0.95      # the other instances are still drawn
    markers = h.markers[-1].markers if spin_until(h.ex, lambda: h.markers) else []
    assert sum(m.type == Marker.ARROW and m.ns == "objects/poses" for m in markers) == 3 * (len(frame.parts) - 1)

    # results only from an older image: drawn, listed as stale
    later = make_header(stamp + 100_000_000, FRAME_ID)
    out = h.image(rgb, later)
    assert out is not None and "stale" in h.node.last_regions


@pytest.mark.parametrize("harness", [{"render_delay_s": 0.0, "max_rate_hz": 0.0, "show_latency": False}], indirect=True)
def test_ground_truth_drawn_as_outlines_and_can_be_hidden(harness, frame):
    h = harness
    rgb = frame.rgb
    header = make_header(h.now_ns(), FRAME_ID)
    gt = instances_msg(frame.instance_mask, frame.instances, header)
    h.publish_results({GT_INSTANCES_TOPIC: gt})
    out = h.image(rgb, header)
    assert out is not None
    changed = np.any(image_to_numpy(out) != rgb, axis=2)
    m = frame.instance_mask > 0
    interior = ndimage.binary_erosion(m, iterations=2)
    assert changed.any() and not changed[interior].any() and not changed[~m].any()

    assert h.node.set_parameters([Parameter("show_ground_truth", value=False)])[0].successful
    header2 = make_header(h.now_ns(), FRAME_ID)
    gt.header = header2
    h.publish_results({GT_INSTANCES_TOPIC: gt})
    out = h.image(rgb, header2)
    assert out is not None and np.array_equal(image_to_numpy(out), rgb)

    # max_rate_hz: of two images in quick succession at most one is drawn
    assert h.node.set_parameters([Parameter("max_rate_hz", value=1.0)])[0].successful
    drawn = h.node.images_drawn
    for k in (1, 2):
        h.pubs[COLOR_TOPIC].publish(numpy_to_image(rgb, "rgb8", make_header(h.now_ns(), FRAME_ID)))
    assert spin_until(h.ex, lambda: h.node.received[COLOR_TOPIC] >= 4)
    spin_until(h.ex, lambda: False, 0.2)
    assert h.node.images_skipped_rate >= 1 and h.node.images_drawn - drawn <= 1
