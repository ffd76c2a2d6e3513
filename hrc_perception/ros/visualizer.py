"""The visualizer node: every result of the graph drawn on the colour image, and as rviz markers.

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                                   | type            | drawn as                                     |
|-----------------------------------------|-----------------|----------------------------------------------|
| ``camera/color/image_raw``              | Image (rgb8, bgr8, mono8) | the canvas (input QoS)             |
| ``camera/color/camera_info``            | CameraInfo      | K for part axes (input QoS)                  |
| ``segmentation/instances``              | InstanceArray   | masks blended in, colour per instance id     |
| ``tracking/tracks``                     | TrackArray      | boxes labelled "track_id class" (tentative dashed) |
| ``objects/poses``                       | ObjectPoseArray | x/y/z axes (red/green/blue) + "class conf"   |
| ``robot/skeleton``                      | Skeleton        | orange joints and bones                      |
| ``humans/skeletons``                    | SkeletonArray   | joints and bones, colour per person id       |
| ``safety/status``                       | SafetyStatus    | banner across the top, coloured by level     |
| ``ground_truth/segmentation/instances`` | InstanceArray   | mask outlines                                |
| ``ground_truth/objects/poses``          | ObjectPoseArray | thin dashed axes                             |
| ``ground_truth/robot/skeleton``         | Skeleton        | thin dashed bones, small joints              |
| ``ground_truth/humans/skeletons``       | SkeletonArray   | thin dashed bones, small joints              |

Results use reliable QoS (depth 10); ``ground_truth/*`` only with ``show_ground_truth``.

Publishes, per colour image drawn:

- ``visualizer/debug_image`` (Image rgb8, the colour image's header): the overlay,
  with a latency table (median / p95 of receive time minus header stamp, node
  clock, shown in ms) of the colour image and every estimate topic in the
  bottom-left corner (``latency_stats()`` has ground truth too).
- ``visualizer/markers`` (MarkerArray): per skeleton a SPHERE_LIST of its joints and
  a LINE_LIST of its bones, per part pose three ARROWs (x, y, z axes) and a label,
  in the result message's header frame (the camera optical frame, metres), one
  namespace per topic (the topic name) so rviz can toggle each; ``lifetime``
  ``marker_lifetime_s``.

Pairing: the node keeps the last messages of every topic. A colour image is drawn
with, per topic, the message whose header stamp equals the image's; failing that
the newest one at most ``max_age_s`` older, listed as stale on the image. An image
waits up to ``render_delay_s`` for results of its own stamp (results arrive after
their image); it is drawn as soon as every topic heard in the last
``LIVE_WINDOW_S`` seconds has one. ``max_rate_hz`` limits how many images are drawn.

Bad input never stops the node: an image that cannot be read (encoding, size), a
mask that does not fit its ROI or the image, a non-finite pose, a malformed
skeleton, missing or unusable camera_info -- each skips that part, is counted with
``report()`` and the rest is drawn. Joint positions that are NaN mean "unknown"
(Skeleton.msg) and are simply not drawn.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point
from PIL import Image as PilImage
from PIL import ImageDraw
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.geometry import project, transform_points
from hrc_perception.msg import (InstanceArray, ObjectPoseArray, SafetyStatus, Skeleton, SkeletonArray,
                                TrackArray)
from hrc_perception.ros.convert import (ImageConversionError, camera_info_to_K, copy_header, duration_msg,
                                        image_to_numpy, image_to_rgb, numpy_to_image, pose_to_matrix, stamp_to_ns)
from hrc_perception.ros.ground_truth_msgs import (GT_HUMAN_SKELETONS_TOPIC, GT_INSTANCES_TOPIC,
                                                  GT_OBJECT_POSES_TOPIC, GT_ROBOT_SKELETON_TOPIC,
                                                  skeleton_to_arrays)
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.skeletons import COCO17_BONES, chain_bones
from hrc_perception.viz.draw import (draw_axes, draw_boxes, draw_latency_table, draw_mask_outlines, draw_masks,
                                     draw_safety_banner, draw_skeleton, draw_text_block, id_color)

COLOR_TOPIC = "camera/color/image_raw"
INFO_TOPIC = "camera/color/camera_info"
DEBUG_IMAGE_TOPIC = "visualizer/debug_image"
MARKERS_TOPIC = "visualizer/markers"

LIVE_WINDOW_S = 2.0      # a topic heard within this is waited for (render_delay_s)
HISTORY = 30             # messages kept per topic
MAX_PENDING = 10         # colour images waiting for their results
ROBOT_COLOR = (255, 140, 0)
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class ResultTopic:
    """A subscribed result topic: kind says how it is drawn; label names it in the latency table."""
    topic: str
    msg_type: type
    kind: str            # instances | tracks | poses | skeleton | skeletons | safety
    label: str
    ground_truth: bool = False


RESULT_TOPICS: tuple[ResultTopic, ...] = (
    ResultTopic("segmentation/instances", InstanceArray, "instances", "instances"),
    ResultTopic("tracking/tracks", TrackArray, "tracks", "tracks"),
    ResultTopic("objects/poses", ObjectPoseArray, "poses", "poses"),
    ResultTopic("robot/skeleton", Skeleton, "skeleton", "robot"),
    ResultTopic("humans/skeletons", SkeletonArray, "skeletons", "humans"),
    ResultTopic("safety/status", SafetyStatus, "safety", "safety"),
    ResultTopic(GT_INSTANCES_TOPIC, InstanceArray, "instances", "gt instances", True),
    ResultTopic(GT_OBJECT_POSES_TOPIC, ObjectPoseArray, "poses", "gt poses", True),
    ResultTopic(GT_ROBOT_SKELETON_TOPIC, Skeleton, "skeleton", "gt robot", True),
    ResultTopic(GT_HUMAN_SKELETONS_TOPIC, SkeletonArray, "skeletons", "gt humans", True),
)


@dataclass
class _Received:
    stamp_ns: int       # header stamp
    msg: object


@dataclass
class _Picked:
    msg: object
    age_s: float        # image stamp - message stamp, seconds (0: exact match)


@dataclass
class _Pending:
    msg: Image
    arrived: float      # time.monotonic()


def _rgba(color, alpha: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=color[0] / 255.0, g=color[1] / 255.0, b=color[2] / 255.0, a=float(alpha))


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def pick_message(history, stamp_ns: int, max_age_ns: int) -> _Picked | None:
    """The message of ``history`` (iterable of _Received) for an image stamped ``stamp_ns``:
    the exact stamp if present, else the newest stamp in [stamp - max_age, stamp]; None if neither."""
    best = None
    for r in history:
        if r.stamp_ns == stamp_ns:
            return _Picked(r.msg, 0.0)
        if stamp_ns - max_age_ns <= r.stamp_ns < stamp_ns and (best is None or r.stamp_ns > best.stamp_ns):
            best = r
    return None if best is None else _Picked(best.msg, (stamp_ns - best.stamp_ns) / NS_PER_S)


class VisualizerNode(HrcNode):
    """Draws the graph's results on the colour image and as markers (see the module doc);
    node name default 'visualizer'.

    After construction: ``images_drawn`` counts debug images published,
    ``images_skipped_rate`` images dropped by ``max_rate_hz``, ``received[topic]``
    messages received per topic, ``last_regions`` the boxes (pixels x0, y0, x1, y1)
    of the banner, stale list and latency table of the last overlay.
    """

    PARAMS = (
        ParamSpec("show_ground_truth", True, "also draw ground_truth/* (thin, dashed, outlines) and publish "
                  "their markers"),
        ParamSpec("max_age_s", 0.5, "draw results up to this much older (seconds) than the image, labelled stale",
                  min_value=0.0, max_value=10.0),
        ParamSpec("render_delay_s", 0.3, "longest wait (seconds) of a colour image for results with its own "
                  "stamp; 0 = draw at once with what has arrived", min_value=0.0, max_value=5.0),
        ParamSpec("max_rate_hz", 15.0, "most overlays drawn per second (colour images beyond are skipped); "
                  "0 = no limit", min_value=0.0, max_value=1000.0),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of the rviz markers (seconds)", min_value=0.0,
                  max_value=60.0),
        ParamSpec("axis_length_m", 0.06, "length of drawn part axes (metres)", min_value=0.001, max_value=2.0),
        ParamSpec("min_confidence", 0.3, "joints of estimated skeletons below this confidence are not drawn",
                  min_value=0.0, max_value=1.0),
        ParamSpec("latency_window", 100, "latency statistics over this many last messages per topic",
                  min_value=1, max_value=100000),
        ParamSpec("show_latency", True, "draw the per-topic latency table"),
    )

    def __init__(self, node_name: str = "visualizer", **kwargs):
        self._subs: list = []
        self._image_pub = None
        self._marker_pub = None
        self._timer = None
        self._history: dict[str, deque] = {}
        self._last_heard: dict[str, float] = {}
        self._latency: dict[str, deque] = {}
        self._pending: deque[_Pending] = deque()
        self._camera: tuple[np.ndarray, int, int] | None = None
        self._last_accept = -math.inf
        self.images_drawn = 0
        self.images_skipped_rate = 0
        self.received: dict[str, int] = {}
        self.last_regions: dict[str, tuple[int, int, int, int]] = {}
        super().__init__(node_name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self._image_pub = self.create_publisher(Image, DEBUG_IMAGE_TOPIC, self.output_qos())
        self._marker_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, self.output_qos())
        self._subs = [self.create_subscription(Image, COLOR_TOPIC, self._on_image, self.input_qos()),
                      self.create_subscription(CameraInfo, INFO_TOPIC, self._on_camera_info, self.input_qos())]
        for t in RESULT_TOPICS:
            self._subs.append(self.create_subscription(t.msg_type, t.topic, self._result_callback(t),
                                                       self.output_qos()))
        self._reset()

    def on_activate_hook(self) -> None:
        self._timer = self.create_timer(0.02, self._process_pending)

    def on_deactivate_hook(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._pending.clear()

    def on_cleanup_hook(self) -> None:
        self.on_deactivate_hook()
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        for p in (self._image_pub, self._marker_pub):
            if p is not None:
                self.destroy_publisher(p)
        self._image_pub = self._marker_pub = None
        self._reset()

    def _reset(self) -> None:
        self._history = {t.topic: deque(maxlen=HISTORY) for t in RESULT_TOPICS}
        self._latency = {}
        self._last_heard = {}
        self._pending.clear()
        self._camera = None
        self._last_accept = -math.inf

    # -- inputs ---------------------------------------------------------------------
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _note_latency(self, name: str, stamp_ns: int) -> None:
        window = self._latency.get(name)
        if window is None or window.maxlen != self.param("latency_window"):
            window = deque(window or (), maxlen=self.param("latency_window"))
            self._latency[name] = window
        window.append((self._now_ns() - stamp_ns) / NS_PER_S)

    def _result_callback(self, t: ResultTopic):
        def callback(msg) -> None:
            stamp_ns = stamp_to_ns(msg.header.stamp)
            self.received[t.topic] = self.received.get(t.topic, 0) + 1
            self._note_latency(t.topic, stamp_ns)
            self._history[t.topic].append(_Received(stamp_ns, msg))
            self._last_heard[t.topic] = time.monotonic()
            self._process_pending()
        return callback

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.received[INFO_TOPIC] = self.received.get(INFO_TOPIC, 0) + 1
        try:
            self._camera = camera_info_to_K(msg)
        except (ValueError, TypeError) as e:
            self._camera = None
            self.report("bad_camera_info", f"{INFO_TOPIC}: {e}")

    def _on_image(self, msg: Image) -> None:
        self.received[COLOR_TOPIC] = self.received.get(COLOR_TOPIC, 0) + 1
        if not self.is_active:
            return
        self._note_latency(COLOR_TOPIC, stamp_to_ns(msg.header.stamp))
        now = time.monotonic()
        rate = self.param("max_rate_hz")
        if rate > 0 and now - self._last_accept < 0.75 / rate:   # 0.75: camera jitter must not halve the rate
            self.images_skipped_rate += 1
            return
        self._last_accept = now
        self._pending.append(_Pending(msg, now))
        while len(self._pending) > MAX_PENDING:
            self._draw_and_publish(self._pending.popleft().msg)
        self._process_pending()

    def _topics(self) -> list[ResultTopic]:
        show_gt = self.param("show_ground_truth")
        return [t for t in RESULT_TOPICS if show_gt or not t.ground_truth]

    def _complete(self, stamp_ns: int) -> bool:
        """Whether every topic heard recently has a message with this stamp."""
        now = time.monotonic()
        for t in self._topics():
            if now - self._last_heard.get(t.topic, -math.inf) > LIVE_WINDOW_S:
                continue
            if not any(r.stamp_ns == stamp_ns for r in self._history[t.topic]):
                return False
        return True

    def _process_pending(self) -> None:
        """Draw the waiting images that are complete or have waited render_delay_s, in arrival order."""
        if not self.is_active:
            return
        delay = self.param("render_delay_s")
        now = time.monotonic()
        while self._pending:
            p = self._pending[0]
            if now - p.arrived < delay and not self._complete(stamp_to_ns(p.msg.header.stamp)):
                return
            self._pending.popleft()
            self._draw_and_publish(p.msg)

    # -- statistics -----------------------------------------------------------------
    def latency_stats(self) -> dict[str, tuple[float, float, int]]:
        """{topic: (median_s, p95_s, count)} of receive time (node clock) minus header stamp."""
        out = {}
        for topic, window in self._latency.items():
            if window:
                a = np.asarray(window, np.float64)
                out[topic] = (float(np.median(a)), float(np.percentile(a, 95)), len(a))
        return out

    def _latency_rows(self) -> list[tuple[str, float, float, int]]:
        stats = self.latency_stats()
        labels = [(COLOR_TOPIC, "camera")] + [(t.topic, t.label) for t in RESULT_TOPICS if not t.ground_truth]
        return [(label,) + stats[topic] for topic, label in labels if topic in stats]

    # -- drawing --------------------------------------------------------------------
    def _guard(self, kind: str, what: str, fn, *args):
        """fn(*args); an exception is reported as ``kind`` and gives None."""
        try:
            return fn(*args)
        except Exception as e:  # drawing must never stop the node
            self.report(kind, f"{what}: {type(e).__name__}: {e}")
            return None

    def _draw_and_publish(self, msg: Image) -> None:
        out = self._guard("draw_error", COLOR_TOPIC, self.render, msg)
        if out is None:
            return
        image, markers = out
        self._image_pub.publish(image)
        self._marker_pub.publish(markers)
        self.images_drawn += 1

    def render(self, msg: Image) -> tuple[Image, MarkerArray] | None:
        """(debug image, markers) for one colour image, or None when the image cannot be read."""
        rgb = self.converted(image_to_rgb, msg, "bad_image", COLOR_TOPIC)
        if rgb is None:
            return None
        h, w = rgb.shape[:2]
        stamp_ns = stamp_to_ns(msg.header.stamp)
        max_age_ns = round(self.param("max_age_s") * NS_PER_S)
        picked = {}
        for t in self._topics():
            p = pick_message(self._history[t.topic], stamp_ns, max_age_ns)
            if p is not None:
                picked[t.topic] = (t, p)
        ctx = _Frame(self, msg.header.frame_id, h, w)

        for t, p in picked.values():   # masks first (estimates, then ground-truth outlines): they change pixels
            if t.kind == "instances" and ctx.same_frame(t, p.msg):
                out = self._guard("bad_mask", t.topic, ctx.masks, rgb, t, p.msg)
                rgb = rgb if out is None else out
        pil = PilImage.fromarray(rgb)
        draw = ImageDraw.Draw(pil)
        markers = MarkerArray()
        stale = []
        for t, p in picked.values():
            if p.age_s > 0:
                stale.append(f"stale {p.age_s:.2f} s: {t.topic}")
            if t.kind in ("instances", "safety"):
                continue
            if t.kind == "tracks":
                if ctx.same_frame(t, p.msg):
                    self._guard("bad_track", t.topic, ctx.tracks, draw, p.msg)
            elif t.kind == "poses":
                self._guard("bad_pose", t.topic, ctx.poses, draw, markers, t, p.msg)
            elif t.kind == "skeleton":
                self._guard("bad_skeleton", t.topic, ctx.skeletons, draw, markers, t, [p.msg])
            elif t.kind == "skeletons":
                self._guard("bad_skeleton", t.topic, ctx.skeletons, draw, markers, t, list(p.msg.skeletons))

        self.last_regions = {}
        safety = picked.get("safety/status")
        heard = self._last_heard.get("safety/status")
        if safety is not None:
            s = safety[1].msg
            note = f"stale {safety[1].age_s:.2f} s" if safety[1].age_s > 0 else ""
            self.last_regions["banner"] = draw_safety_banner(pil, int(s.level), float(s.min_distance_m),
                                                             s.reason, note)
        elif heard is not None and time.monotonic() - heard <= LIVE_WINDOW_S:
            self.last_regions["banner"] = draw_safety_banner(
                pil, "UNKNOWN", reason=f"no safety status within {self.param('max_age_s'):.2f} s of this image")
        if stale:
            y = self.last_regions["banner"][3] + 2 if "banner" in self.last_regions else 2
            self.last_regions["stale"] = draw_text_block(pil, stale, (2, y), fill=(255, 200, 0))
        if self.param("show_latency"):
            box = draw_latency_table(pil, self._latency_rows())
            if box is not None:
                self.last_regions["latency"] = box
        return numpy_to_image(np.asarray(pil), "rgb8", copy_header(msg.header)), markers


class _Frame:
    """Drawing of one colour image's results (the node's helpers, per image state)."""

    def __init__(self, node: VisualizerNode, frame_id: str, height: int, width: int):
        self.node = node
        self.frame_id = frame_id
        self.h, self.w = height, width
        self.lifetime = node.param("marker_lifetime_s")
        self._warned_K = False

    # -- checks -----------------------------------------------------------------------
    def same_frame(self, t: ResultTopic, msg) -> bool:
        """Whether msg's header frame is the image's (an empty frame_id is taken to be); reported if not."""
        fid = msg.header.frame_id
        if fid and self.frame_id and fid != self.frame_id:
            self.node.report("frame_mismatch", f"{t.topic}: frame_id {fid!r} is not the image's "
                                               f"{self.frame_id!r}; not drawn on the image")
            return False
        return True

    def K(self) -> np.ndarray | None:
        """K of camera_info when it fits the image; else None, reported once per image."""
        cam = self.node._camera
        why = None
        if cam is None:
            why = f"no usable {INFO_TOPIC} yet: part axes not drawn"
        elif (cam[1], cam[2]) != (self.w, self.h):
            why = f"{INFO_TOPIC} is {cam[1]}x{cam[2]} but the image is {self.w}x{self.h}: part axes not drawn"
        if why is None:
            return cam[0]
        if not self._warned_K:
            self._warned_K = True
            self.node.report("no_camera_info", why)
        return None

    def _header(self, msg) -> Header:
        return copy_header(msg.header)

    # -- masks ------------------------------------------------------------------------
    def masks(self, rgb: np.ndarray, t: ResultTopic, msg: InstanceArray) -> np.ndarray:
        """Masks blended in (estimates) or outlined (ground truth); bad instances reported and skipped."""
        ids = np.zeros((self.h, self.w), np.uint16)
        palette = [(0, 0, 0)]
        for inst in msg.instances:
            if inst.mask.width == 0 or inst.mask.height == 0:
                continue
            try:
                crop = image_to_numpy(inst.mask)
                if inst.mask.encoding != "mono8":
                    raise ImageConversionError(f"mask must be mono8, got {inst.mask.encoding!r}")
                r = inst.roi
                x0, y0, rw, rh = int(r.x_offset), int(r.y_offset), int(r.width), int(r.height)
                if crop.shape != (rh, rw):
                    raise ImageConversionError(f"mask image is {crop.shape[1]}x{crop.shape[0]} but its ROI is "
                                               f"{rw}x{rh}")
                if x0 + rw > self.w or y0 + rh > self.h:
                    raise ImageConversionError(f"ROI x={x0} y={y0} {rw}x{rh} does not fit in the "
                                               f"{self.w}x{self.h} image")
            except ImageConversionError as e:
                self.node.report("bad_mask", f"{t.topic}: instance {inst.id}: {e}")
                continue
            palette.append(id_color(inst.id))
            ids[y0:y0 + rh, x0:x0 + rw][crop > 0] = len(palette) - 1
        colors = np.asarray(palette, np.uint8)
        return draw_mask_outlines(rgb, ids, colors) if t.ground_truth else draw_masks(rgb, ids, colors)

    # -- tracks -----------------------------------------------------------------------
    def tracks(self, draw: ImageDraw.ImageDraw, msg: TrackArray) -> None:
        shown = [tr for tr in msg.tracks if tr.state != tr.DELETED]
        rois = np.array([(tr.roi.x_offset, tr.roi.y_offset, tr.roi.width, tr.roi.height) for tr in shown],
                        np.float64).reshape(-1, 4)
        draw_boxes(draw, rois, labels=[f"{tr.track_id} {tr.class_name}" for tr in shown],
                   colors=[id_color(tr.track_id) for tr in shown],
                   dashed=[tr.state == tr.TENTATIVE for tr in shown])

    # -- poses ------------------------------------------------------------------------
    def poses(self, draw: ImageDraw.ImageDraw, markers: MarkerArray, t: ResultTopic, msg: ObjectPoseArray) -> None:
        length = self.node.param("axis_length_m")
        on_image = self.same_frame(t, msg)
        K = self.K() if on_image and msg.poses else None
        for i, p in enumerate(msg.poses):
            try:
                T = pose_to_matrix(p.pose)
                if not np.all(np.isfinite(T)):
                    raise ValueError("non-finite position")
            except ValueError as e:
                self.node.report("bad_pose", f"{t.topic}: instance {p.instance_id} ({p.class_name}): {e}")
                continue
            label = p.class_name if t.ground_truth else f"{p.class_name} {p.confidence:.2f}"
            if K is not None:
                draw_axes(draw, T, K, length, label=None if t.ground_truth else label,
                          width=1 if t.ground_truth else 3, dashed=t.ground_truth)
            markers.markers.extend(self._axes_markers(msg, t, i, T, length, label))

    def _axes_markers(self, msg, t: ResultTopic, i: int, T: np.ndarray, length: float, label: str) -> list[Marker]:
        pts = transform_points(T, np.vstack([np.zeros(3), np.eye(3) * length]))
        alpha = 0.5 if t.ground_truth else 1.0
        out = []
        for k, color in enumerate(((255, 0, 0), (0, 255, 0), (0, 90, 255))):
            m = self._marker(msg, t, 4 * i + k, Marker.ARROW, color, alpha)
            m.points = [_point(pts[0]), _point(pts[k + 1])]
            m.scale.x, m.scale.y, m.scale.z = length * 0.08, length * 0.16, length * 0.25
            out.append(m)
        m = self._marker(msg, t, 4 * i + 3, Marker.TEXT_VIEW_FACING, (255, 255, 255), alpha)
        m.pose.position = _point(pts[0] + np.array([0.0, -0.6 * length, 0.0]))   # above (y is down)
        m.scale.z = 0.025
        m.text = label
        out.append(m)
        return out

    def _marker(self, msg, t: ResultTopic, marker_id: int, marker_type: int, color, alpha: float) -> Marker:
        m = Marker(header=self._header(msg), ns=t.topic, id=int(marker_id), type=marker_type, action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.color = _rgba(color, alpha)
        m.lifetime = duration_msg(self.lifetime)
        return m

    # -- skeletons --------------------------------------------------------------------
    def skeletons(self, draw: ImageDraw.ImageDraw, markers: MarkerArray, t: ResultTopic, skeletons: list) -> None:
        for i, s in enumerate(skeletons):
            try:
                self._skeleton(draw, markers, t, i, s)
            except (ValueError, TypeError, IndexError) as e:
                self.node.report("bad_skeleton", f"{t.topic}: skeleton {s.model!r} id {s.id}: {e}")

    def _skeleton(self, draw, markers: MarkerArray, t: ResultTopic, i: int, s: Skeleton) -> None:
        n = len(s.joint_names)
        if n == 0:
            return
        if len(s.pixel_u) != len(s.pixel_v):
            raise ValueError(f"{len(s.pixel_u)} pixel_u but {len(s.pixel_v)} pixel_v values")
        _, xyz, uv, vis, conf = skeleton_to_arrays(s)
        if len(xyz) != n:
            raise ValueError(f"{n} joint names but {len(xyz)} positions")
        vis = vis if len(vis) == n else None
        conf = conf if len(conf) == n and not t.ground_truth else None
        bones = COCO17_BONES if s.model == "coco17" or (n == 17 and s.model != "panda") else chain_bones(n)
        color = ROBOT_COLOR if t.kind == "skeleton" else id_color(s.id)
        min_conf = self.node.param("min_confidence")

        if self.same_frame(t, s):
            if len(uv) != n:          # no pixel coordinates: project the positions
                K = self.K()
                if K is None:
                    uv = None
                else:
                    uv = np.full((n, 2), np.nan)
                    front = np.all(np.isfinite(xyz), axis=1) & (xyz[:, 2] > 1e-3)
                    uv[front] = project(xyz[front], K)
            if uv is not None:
                label = None if t.ground_truth else (s.model if t.kind == "skeleton" else f"person {s.id}")
                draw_skeleton(draw, uv, bones, color, visibility=vis, confidence=conf, min_confidence=min_conf,
                              width=1 if t.ground_truth else 3, radius=3 if t.ground_truth else 4,
                              dashed=t.ground_truth, label=label)

        shown = np.all(np.isfinite(xyz), axis=1)
        if conf is not None:
            shown &= np.nan_to_num(conf, nan=-1.0) >= min_conf
        if not shown.any():
            return
        alpha = 0.5 if t.ground_truth else 1.0
        joints = self._marker(s, t, 2 * i, Marker.SPHERE_LIST, color, alpha)
        joints.scale.x = joints.scale.y = joints.scale.z = 0.025 if t.ground_truth else 0.04
        joints.points = [_point(p) for p in xyz[shown]]
        lines = self._marker(s, t, 2 * i + 1, Marker.LINE_LIST, color, alpha)
        lines.scale.x = 0.008 if t.ground_truth else 0.015
        lines.points = [_point(xyz[j]) for a, b in bones if a < n and b < n and shown[a] and shown[b]
                        for j in (a, b)]
        markers.markers.append(joints)
        if lines.points:
            markers.markers.append(lines)


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception visualizer [--ros-args -p show_ground_truth:=false ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(VisualizerNode, args)
