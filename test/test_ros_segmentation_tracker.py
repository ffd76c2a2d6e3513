"""Segmentation and tracker nodes on real rclpy + DDS: headers, masks vs ROIs, embeddings, parameters,
bad input (encodings, empty images, missing / mismatched weights, out-of-order stamps, no embeddings), the model
freed on deactivate and loaded again on activate.

The segmentation node runs an untrained checkpoint made here (classes of the small synthetic cell,
mask logits biased so every mask covers its box) with score_threshold 0, so it always finds instances.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import QOS, Harness, spin_until
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, RegionOfInterest

from hrc_perception.msg import Instance, InstanceArray, Track, TrackArray
from hrc_perception.ros.convert import image_to_numpy, ns_to_stamp, numpy_to_image
from hrc_perception.ros import weights as weights_module
from hrc_perception.ros.ground_truth_msgs import make_header
from hrc_perception.ros.segmentation_node import (COLOR_TOPIC, DEBUG_IMAGE_TOPIC, INSTANCES_TOPIC,
                                                  NO_WEIGHTS_MESSAGE, SegmentationNode, detections_to_msg)
from hrc_perception.ros.tracker_node import TRACKS_TOPIC, TrackerNode

FRAME_ID = "camera_color_optical_frame"
INFERENCE_TIMEOUT_S = 90.0   # an untrained Mask R-CNN on a busy 2-core machine
FPS = 15.0
NS_PER_FRAME = round(1e9 / FPS)


# ------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cell_classes(small_run):
    return [c.name for c in sorted(small_run.classes, key=lambda c: c.class_id)]


@pytest.fixture(scope="module")
def cell_rgb(small_run):
    return small_run.frame(0).rgb


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, cell_classes):
    """An untrained checkpoint for the small cell's classes; every mask fills its box."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from hrc_perception.segmentation.model import build_maskrcnn, save_checkpoint
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_maskrcnn(cell_classes, input_short_side=160, pretrained_trunk=False)
    with torch.no_grad():
        model.roi_heads.mask_predictor.mask_fcn_logits.bias.fill_(8.0)
    path = tmp_path_factory.mktemp("seg_weights") / "model.pt"
    save_checkpoint(model, path, {"note": "untrained, for tests"})
    return path


def _seg_node(ctx, weights, **params):
    overrides = [Parameter("weights", value=str(weights)), Parameter("input_reliability", value="reliable")]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    return SegmentationNode(context=ctx, parameter_overrides=overrides)


@pytest.fixture(scope="module")
def seg(ros_context, checkpoint):
    node = _seg_node(ros_context, checkpoint, score_threshold=0.0, max_instances=4)
    assert node.lifecycle_state == "active", node.configure_error
    h = Harness(ros_context, node, COLOR_TOPIC, Image, {INSTANCES_TOPIC: InstanceArray, DEBUG_IMAGE_TOPIC: Image})
    yield h
    h.close()


def _same_header(a, b) -> bool:
    return (a.frame_id, a.stamp.sec, a.stamp.nanosec) == (b.frame_id, b.stamp.sec, b.stamp.nanosec)


# --------------------------------------------------------------------- segmentation

def test_segmentation_instances_masks_embeddings_and_header(seg, cell_rgb, cell_classes):
    header = make_header(12 * 10**9 + 345, FRAME_ID)
    h, w = cell_rgb.shape[:2]
    out = seg.send(numpy_to_image(cell_rgb, "rgb8", header), INSTANCES_TOPIC, INFERENCE_TIMEOUT_S)
    assert out is not None, "no InstanceArray for a good image"
    assert _same_header(out.header, header)
    assert 1 <= len(out.instances) <= 4
    assert [i.id for i in out.instances] == list(range(1, len(out.instances) + 1))
    scores = [i.score for i in out.instances]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    for inst in out.instances:
        assert 1 <= inst.class_id <= len(cell_classes) and inst.class_name == cell_classes[inst.class_id - 1]
        r = inst.roi
        assert r.width > 0 and r.height > 0 and r.x_offset + r.width <= w and r.y_offset + r.height <= h
        assert inst.mask.encoding == "mono8" and (inst.mask.height, inst.mask.width) == (r.height, r.width)
        crop = image_to_numpy(inst.mask)
        assert set(np.unique(crop)) <= {0, 255}
        # tight crop: the mask touches every side of its ROI
        assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
        assert _same_header(inst.mask.header, header)
        emb = np.asarray(inst.embedding)
        assert emb.shape == (128,) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-3)

    assert spin_until(seg.ex, lambda: seg.received[DEBUG_IMAGE_TOPIC], 10.0)
    dbg = seg.received[DEBUG_IMAGE_TOPIC][-1]
    assert _same_header(dbg.header, header)
    assert (dbg.encoding, dbg.height, dbg.width) == ("rgb8", h, w)
    assert not np.array_equal(image_to_numpy(dbg), cell_rgb)   # something was drawn


def test_segmentation_model_freed_on_deactivate_and_loaded_again_on_activate(seg, cell_rgb):
    node = seg.node
    node.trigger_deactivate()
    assert node.lifecycle_state == "inactive" and node.predictor is None
    node.trigger_activate()
    assert node.lifecycle_state == "active" and node.predictor is not None, node.configure_error
    header = make_header(12 * 10**9 + 999, FRAME_ID)
    out = seg.send(numpy_to_image(cell_rgb, "rgb8", header), INSTANCES_TOPIC, INFERENCE_TIMEOUT_S)
    assert out is not None and _same_header(out.header, header) and 1 <= len(out.instances) <= 4


def test_segmentation_parameters_apply_to_the_next_image(seg, cell_rgb):
    try:
        assert seg.node.set_parameters([Parameter("max_instances", value=2)])[0].successful
        out = seg.send(numpy_to_image(cell_rgb, "rgb8", make_header(13 * 10**9, FRAME_ID)), INSTANCES_TOPIC,
                       INFERENCE_TIMEOUT_S)
        assert out is not None and 1 <= len(out.instances) <= 2
        assert seg.node.set_parameters([Parameter("score_threshold", value=1.0)])[0].successful
        out = seg.send(numpy_to_image(cell_rgb, "rgb8", make_header(14 * 10**9, FRAME_ID)), INSTANCES_TOPIC,
                       INFERENCE_TIMEOUT_S)
        assert out is not None and len(out.instances) == 0   # nothing scores above 1
        bad = seg.node.set_parameters([Parameter("score_threshold", value=1.5)])[0]
        assert not bad.successful and "score_threshold" in bad.reason
        assert not seg.node.set_parameters([Parameter("device", value="cuda")])[0].successful   # read-only
    finally:
        seg.node.set_parameters([Parameter("score_threshold", value=0.0), Parameter("max_instances", value=4)])


@pytest.mark.parametrize("encoding, kind", [("16UC1", "bad_image"), ("yuv422", "bad_image"),
                                            ("rgb8", "empty_image")])
def test_segmentation_bad_image_gives_empty_array_with_header(seg, encoding, kind):
    header = make_header(20 * 10**9 + 7, "some_frame")
    if encoding == "16UC1":
        msg = numpy_to_image(np.full((24, 32), 1000, np.uint16), "16UC1", header)
    elif encoding == "rgb8":
        msg = Image(header=header, encoding="rgb8")   # 0 x 0
    else:
        msg = numpy_to_image(np.zeros((24, 32, 3), np.uint8), "rgb8", header)
        msg.encoding = encoding
    before = seg.node.counters.get(kind, 0)
    out = seg.send(msg, INSTANCES_TOPIC, 10.0)
    assert out is not None and len(out.instances) == 0 and _same_header(out.header, header)
    assert seg.node.counters.get(kind, 0) == before + 1
    assert seg.node.is_active


def test_detections_without_mask_pixels_keep_their_box():
    pytest.importorskip("torch")
    from hrc_perception.segmentation.predictor import Detections
    det = Detections(boxes_xyxy=np.array([[10.4, 5.0, 30.2, 25.9], [-3.0, 2.0, 8.0, 50.0]], np.float32),
                     labels=np.array([2, 1]), class_names=["person", "panda"], scores=np.array([0.9, 0.4], np.float32),
                     masks=np.zeros((2, 40, 60), bool), embeddings=np.eye(2, 128, dtype=np.float32),
                     image_size_hw=(40, 60))
    det.masks[1, 3:7, 0:4] = True
    header = make_header(5, FRAME_ID)
    msg = detections_to_msg(det, header)
    a, b = msg.instances
    assert (a.roi.x_offset, a.roi.y_offset, a.roi.width, a.roi.height) == (10, 5, 21, 21)
    assert a.mask.width == 0 and a.mask.height == 0
    assert (b.roi.x_offset, b.roi.y_offset, b.roi.width, b.roi.height) == (0, 3, 4, 4)
    assert image_to_numpy(b.mask).min() == 255
    assert (a.id, a.class_id, a.class_name, b.id, b.class_id) == (1, 2, "person", 2, 1)
    assert list(a.embedding)[:2] == [1.0, 0.0] and len(b.embedding) == 128


def test_segmentation_missing_weights_fails_configure_and_stays_alive(ros_context, tmp_path, monkeypatch):
    import rclpy.node
    missing = tmp_path / "nope.pt"
    node = _seg_node(ros_context, missing)
    io = rclpy.node.Node("seg_diag_listener", context=ros_context)
    try:
        assert node.lifecycle_state == "unconfigured" and node.predictor is None
        assert "not found" in node.configure_error and str(missing) in node.configure_error
        from diagnostic_msgs.msg import DiagnosticArray
        got = []
        io.create_subscription(DiagnosticArray, "/diagnostics",
                               lambda m: got.extend(s for s in m.status if s.name.endswith("/segmentation")), 10)
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(node)
        ex.add_node(io)
        assert spin_until(ex, lambda: got, 5.0), "the node stopped publishing diagnostics"
        assert "unconfigured" in got[-1].message
        ex.shutdown()
    finally:
        node.destroy_node()
        io.destroy_node()

    # weights '' and nothing shipped: the message says how to get weights
    monkeypatch.setattr(weights_module, "shipped_weights_candidates", lambda relpath: [tmp_path / relpath])
    node = _seg_node(ros_context, "")
    try:
        assert node.lifecycle_state == "unconfigured" and NO_WEIGHTS_MESSAGE in node.configure_error
    finally:
        node.destroy_node()


def test_segmentation_model_card_with_other_classes_fails_configure(ros_context, tmp_path, checkpoint, cell_classes):
    weights = tmp_path / "model.pt"
    weights.write_bytes(checkpoint.read_bytes())
    (tmp_path / "model_card.json").write_text(json.dumps({"class_names": cell_classes[::-1]}))
    node = _seg_node(ros_context, weights)
    try:
        assert node.lifecycle_state == "unconfigured" and "mismatched weights" in node.configure_error
    finally:
        node.destroy_node()


def test_segmentation_cleanup_frees_the_model(ros_context, checkpoint):
    node = _seg_node(ros_context, checkpoint, autostart=False)
    try:
        assert node.lifecycle_state == "unconfigured" and node.predictor is None
        node.trigger_configure()
        assert node.lifecycle_state == "inactive" and node.predictor is not None
        node.trigger_cleanup()
        assert node.lifecycle_state == "unconfigured" and node.predictor is None
    finally:
        node.destroy_node()


# -------------------------------------------------------------------------- tracker

def _unit(k: int, noise: float, rng) -> np.ndarray:
    v = np.zeros(128, np.float32)
    v[k] = 1.0
    v += rng.normal(0, noise, 128).astype(np.float32)
    return v / np.linalg.norm(v)


def _instances(frame: int, stamp_ns: int, rng, with_a=True, with_b=True) -> InstanceArray:
    """Two boxes 40x80 px: A (person, with embeddings) moves right 6 px/frame (+90 px/s);
    B (gear, no embedding) moves left 6 px/frame and down 3 px/frame (-90, +45 px/s)."""
    msg = InstanceArray(header=make_header(stamp_ns, FRAME_ID))
    if with_a:
        msg.instances.append(Instance(id=1, class_name="person", class_id=2, score=0.9,
                                      roi=RegionOfInterest(x_offset=50 + 6 * frame, y_offset=100, width=40, height=80),
                                      embedding=_unit(0, 0.02, rng).tolist()))
    if with_b:
        msg.instances.append(Instance(id=len(msg.instances) + 1, class_name="gear", class_id=4, score=0.8,
                                      roi=RegionOfInterest(x_offset=400 - 6 * frame, y_offset=60 + 3 * frame,
                                                           width=40, height=80)))
    return msg


def _by_class(msg: TrackArray) -> dict[str, Track]:
    live = [t for t in msg.tracks if t.state != Track.DELETED]
    assert len({t.class_name for t in live}) == len(live)
    return {t.class_name: t for t in live}


@pytest.fixture
def tracker(ros_context):
    node = TrackerNode(context=ros_context, parameter_overrides=[Parameter("n_init", value=3)])
    assert node.lifecycle_state == "active"
    h = Harness(ros_context, node, "segmentation/instances", InstanceArray, {TRACKS_TOPIC: TrackArray})
    yield h
    h.close()


def test_tracker_confirms_two_moving_boxes_with_stable_ids(tracker):
    rng = np.random.default_rng(0)
    t0 = 1_000 * 10**9
    ids = None
    for f in range(6):
        header_stamp = t0 + f * NS_PER_FRAME
        out = tracker.send(_instances(f, header_stamp, rng), TRACKS_TOPIC)
        assert out is not None, f"no TrackArray for frame {f}"
        assert (out.header.frame_id, out.header.stamp) == (FRAME_ID, ns_to_stamp(header_stamp))
        tracks = _by_class(out)
        assert set(tracks) == {"person", "gear"}
        a, b = tracks["person"], tracks["gear"]
        if ids is None:
            ids = (a.track_id, b.track_id)
        assert (a.track_id, b.track_id) == ids and ids[0] != ids[1]
        assert (a.instance_id, b.instance_id) == (1, 2) and (a.class_id, b.class_id) == (2, 4)
        assert (a.hits, a.age, a.time_since_update) == (f + 1, f + 1, 0)
        want = Track.CONFIRMED if f + 1 >= 3 else Track.TENTATIVE
        assert a.state == want and b.state == want
        assert abs(a.roi.x_offset - (50 + 6 * f)) <= 2 and abs(a.roi.height - 80) <= 2
    assert a.velocity_u_px_s > 20 and abs(a.velocity_v_px_s) < 20
    assert b.velocity_u_px_s < -20 and b.velocity_v_px_s > 5
    assert a.score == pytest.approx(0.9) and b.score == pytest.approx(0.8)

    # out of order (an older stamp) and a repeated stamp: reported, skipped, nothing published
    n = len(tracker.received[TRACKS_TOPIC])
    for stamp in (t0 + 3 * NS_PER_FRAME, t0 + 5 * NS_PER_FRAME):
        before = tracker.node.counters.get("stamp_out_of_order", 0)
        tracker.pub.publish(_instances(3, stamp, rng))
        assert spin_until(tracker.ex, lambda: tracker.node.counters.get("stamp_out_of_order", 0) == before + 1)
    spin_until(tracker.ex, lambda: len(tracker.received[TRACKS_TOPIC]) > n, 0.5)
    assert len(tracker.received[TRACKS_TOPIC]) == n

    # the next frame continues the same tracks; B alone is missed: coasting, instance_id 0
    out = tracker.send(_instances(6, t0 + 6 * NS_PER_FRAME, rng, with_b=False), TRACKS_TOPIC)
    tracks = _by_class(out)
    a, b = tracks["person"], tracks["gear"]
    assert (a.track_id, b.track_id) == ids and a.instance_id == 1 and a.hits == 7
    assert b.state == Track.CONFIRMED and b.instance_id == 0 and b.time_since_update == 1

    # a 3 s gap forward is a normal time step (the boxes moved on; whether they still match is the
    # Kalman gate's business): processed, not skipped
    out = tracker.send(_instances(7, t0 + 3 * 10**9, rng), TRACKS_TOPIC)
    assert out is not None and out.header.stamp == ns_to_stamp(t0 + 3 * 10**9) and out.tracks


def test_tracker_time_jump_back_restarts_and_deleted_tracks_are_listed_once(ros_context):
    node = TrackerNode(context=ros_context, parameter_overrides=[Parameter("n_init", value=2),
                                                                  Parameter("max_age", value=1),
                                                                  Parameter("use_appearance", value=False)])
    try:
        rng = np.random.default_rng(1)
        t0 = 50 * 10**9
        for f in range(3):
            out = node.track(_instances(f, t0 + f * NS_PER_FRAME, rng))
        assert {t.state for t in out.tracks} == {Track.CONFIRMED}
        # both missed twice: coasting, then deleted (listed once as DELETED), then gone
        out = node.track(_instances(3, t0 + 3 * NS_PER_FRAME, rng, with_a=False, with_b=False))
        assert [t.time_since_update for t in out.tracks] == [1, 1]
        out = node.track(_instances(4, t0 + 4 * NS_PER_FRAME, rng, with_a=False, with_b=False))
        assert sorted(t.state for t in out.tracks) == [Track.DELETED, Track.DELETED]
        out = node.track(_instances(5, t0 + 5 * NS_PER_FRAME, rng, with_a=False, with_b=False))
        assert out.tracks == []
        # a source that starts again 10 s earlier: a new sequence, not "out of order"
        out = node.track(_instances(0, t0 - 10 * 10**9, rng))
        assert out is not None and node.counters.get("time_jump_back") == 1
        assert sorted(t.track_id for t in out.tracks) == [1, 2]
        assert "stamp_out_of_order" not in node.counters
    finally:
        node.destroy_node()


def test_tracker_bad_instances_are_skipped_and_parameters_validated(ros_context):
    node = TrackerNode(context=ros_context)
    try:
        msg = _instances(0, 10**9, np.random.default_rng(2))
        msg.instances.append(Instance(id=3, class_name="gear", class_id=4, roi=RegionOfInterest(width=0, height=5)))
        msg.instances[0].embedding = [float("nan")] * 128   # unusable embedding: treated as none
        out = node.track(msg)
        assert len(out.tracks) == 2 and node.counters.get("bad_instance") == 1
        assert not node.set_parameters([Parameter("n_init", value=0)])[0].successful
        assert node.set_parameters([Parameter("use_appearance", value=False)])[0].successful
        assert node.tracker.use_appearance is False
        assert node.set_parameters([Parameter("nn_budget", value=0)])[0].successful
        assert node.tracker.metric.budget is None
    finally:
        node.destroy_node()


def test_tracker_markers_at_the_instances_depth(ros_context):
    """Depth and camera_info over DDS; markers for the confirmed tracks at the median depth
    of their instance (A: box at 1.5 m with a hole, B: too few valid depth pixels)."""
    from hrc_perception.geometry import make_K
    from hrc_perception.ros.convert import K_to_camera_info
    from hrc_perception.ros.tracker_node import CAMERA_INFO_TOPIC, DEPTH_TOPIC, MARKERS_TOPIC
    from visualization_msgs.msg import Marker, MarkerArray
    from sensor_msgs.msg import CameraInfo

    node = TrackerNode(context=ros_context, parameter_overrides=[Parameter("n_init", value=1)])
    h = Harness(ros_context, node, "segmentation/instances", InstanceArray,
                {TRACKS_TOPIC: TrackArray, MARKERS_TOPIC: MarkerArray})
    try:
        depth_pub = h.io.create_publisher(Image, DEPTH_TOPIC, QOS)
        info_pub = h.io.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, QOS)
        assert spin_until(h.ex, lambda: depth_pub.get_subscription_count() > 0 and info_pub.get_subscription_count() > 0)
        K = make_K(500.0, 500.0, 320.0, 240.0)
        t0 = 3_000 * 10**9
        depth_mm = np.full((480, 640), 4000, np.uint16)      # background at 4 m
        depth_mm[100:180, 50:90] = 1500                      # A's box (roi x 50..89, y 100..179) at 1.5 m
        depth_mm[100:110, 50:60] = 0                         # a hole in it
        depth_mm[60:140, 400:440] = 0                        # B's box: no depth but 5 pixels
        depth_mm[70, 410:415] = 2000
        info_pub.publish(K_to_camera_info(K, 640, 480, make_header(t0, FRAME_ID)))
        depth_pub.publish(numpy_to_image(depth_mm, "16UC1", make_header(t0, FRAME_ID)))
        assert spin_until(h.ex, lambda: t0 in node._depth_by_stamp and node._camera_info is not None)

        rng = np.random.default_rng(3)
        assert h.send(_instances(0, t0, rng), TRACKS_TOPIC) is not None
        assert spin_until(h.ex, lambda: len(h.received[MARKERS_TOPIC]) == 1)
        markers = h.received[MARKERS_TOPIC][0].markers
        assert [(m.ns, m.type) for m in markers] == [("tracks", Marker.SPHERE), ("track_labels", Marker.TEXT_VIEW_FACING)]
        sphere, label = markers
        assert sphere.header.stamp == ns_to_stamp(t0) and sphere.header.frame_id == FRAME_ID
        assert sphere.pose.position.z == pytest.approx(1.5)
        rows, cols = np.nonzero(depth_mm[100:180, 50:90] == 1500)
        u, v = 50 + np.median(cols), 100 + np.median(rows)
        assert sphere.pose.position.x == pytest.approx((u - 320.0) / 500.0 * 1.5)
        assert sphere.pose.position.y == pytest.approx((v - 240.0) / 500.0 * 1.5)
        person = next(t for t in h.received[TRACKS_TOPIC][0].tracks if t.class_name == "person")
        assert label.text == f"{person.track_id} person" and sphere.id == label.id == person.track_id
        assert node.counters.get("marker_without_depth") == 1        # B: 5 valid pixels < 10

        # no depth image with the next stamp: tracks, no markers; unreadable depth: reported
        assert h.send(_instances(1, t0 + NS_PER_FRAME, rng), TRACKS_TOPIC) is not None
        assert node.counters.get("no_depth_for_markers") == 1
        t2 = t0 + 2 * NS_PER_FRAME
        depth_pub.publish(numpy_to_image(np.zeros((480, 640, 3), np.uint8), "rgb8", make_header(t2, FRAME_ID)))
        assert spin_until(h.ex, lambda: t2 in node._depth_by_stamp)
        assert h.send(_instances(2, t2, rng), TRACKS_TOPIC) is not None
        assert node.counters.get("bad_depth") == 1
        spin_until(h.ex, lambda: len(h.received[MARKERS_TOPIC]) > 1, 0.5)
        assert len(h.received[MARKERS_TOPIC]) == 1
    finally:
        h.close()


COCO_PERSON = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "coco_person" / "test_coco.json"


@pytest.mark.skipif(not COCO_PERSON.is_file(), reason="shared real data not present")
def test_segmentation_adds_blazepose_people_on_a_real_image(ros_context, checkpoint, cell_classes):
    """blazepose_people: on a real photograph the model (here one that reports nothing)
    misses, BlazePose's person is published as a person instance with its mask and the
    model's appearance descriptor."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("ai_edge_litert")
    from PIL import Image as PilImage
    assert "person" in cell_classes
    rgb = np.asarray(PilImage.open(COCO_PERSON.parent / "000000000785.jpg").convert("RGB"))
    node = _seg_node(ros_context, checkpoint, score_threshold=1.0, blazepose_people=True, blazepose_tile_scale=0.0)
    assert node.lifecycle_state == "active", node.configure_error
    h = Harness(ros_context, node, COLOR_TOPIC, Image, {INSTANCES_TOPIC: InstanceArray})
    try:
        header = make_header(3 * 10**9, FRAME_ID)
        out = h.send(numpy_to_image(rgb, "rgb8", header), INSTANCES_TOPIC, INFERENCE_TIMEOUT_S)
        assert out is not None and _same_header(out.header, header)
        assert len(out.instances) == 1
        inst = out.instances[0]
        assert inst.class_name == "person" and inst.class_id == cell_classes.index("person") + 1
        r = inst.roi
        x0, y0, x1, y1 = 280.8, 44.7, 499.5, 391.4                  # her labelled box
        ix = max(0.0, min(x1, r.x_offset + r.width) - max(x0, r.x_offset))
        iy = max(0.0, min(y1, r.y_offset + r.height) - max(y0, r.y_offset))
        union = (x1 - x0) * (y1 - y0) + r.width * r.height - ix * iy
        assert ix * iy / union > 0.8
        assert image_to_numpy(inst.mask).mean() > 0.25 * 255       # her mask covers a good part of its box
        assert np.linalg.norm(np.asarray(inst.embedding)) == pytest.approx(1.0, abs=1e-3)
    finally:
        h.close()


def test_blazepose_people_only_add_people_the_model_lacks():
    pytest.importorskip("torch")
    from types import SimpleNamespace

    from hrc_perception.segmentation.people import add_people
    from hrc_perception.segmentation.predictor import Detections
    h, w = 60, 80
    masks = np.zeros((2, h, w), bool)
    masks[0, 10:50, 5:25] = True
    masks[1, 5:20, 50:70] = True
    det = Detections(np.array([[5, 10, 25, 50], [50, 5, 70, 20]], np.float32), np.array([1, 2]), ["person", "robot"],
                     np.array([0.9, 0.6], np.float32), masks, np.eye(2, 4, dtype=np.float32), (h, w))

    def person(x0, y0, x1, y1, score):
        m = np.zeros((h, w), bool)
        m[y0:y1 + 1, x0:x1 + 1] = True
        return SimpleNamespace(mask_box_xyxy=np.array([x0, y0, x1, y1], float), score=score,
                               mask_in_image=lambda shape, m=m: m)
    people = [person(6, 11, 24, 49, 0.95),      # the model's person again: not added
              person(52, 4, 68, 21, 0.7),       # over the robot: a person the model took for something else
              person(30, 30, 45, 58, 0.8),      # a person the model missed
              person(31, 31, 44, 57, 0.5)]      # the same one again
    out = add_people(det, people, 1, lambda boxes: np.tile([0, 0, 0, 1.0], (len(boxes), 1)))
    assert len(out) == 4 and out.class_names.count("person") == 3 and "robot" in out.class_names
    assert list(out.scores) == sorted(out.scores, reverse=True)
    added = [i for i, s in enumerate(out.scores) if s in (np.float32(0.8), np.float32(0.7))]
    assert len(added) == 2 and all(out.labels[i] == 1 and out.embeddings[i, 3] == 1.0 for i in added)
    k = int(np.flatnonzero(np.isclose(out.scores, 0.8))[0])
    assert np.allclose(out.boxes_xyxy[k], [30, 30, 46, 59]) and out.masks[k].sum() == 16 * 29
    assert add_people(det, [], 1, lambda b: None) is det
