"""The tracker node: Deep SORT (or SORT) identities for the segmentation node's instances.

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                      | type                          | QoS                                  |
|----------------------------|-------------------------------|--------------------------------------|
| ``segmentation/instances`` | hrc_perception/InstanceArray  | reliable, depth 10 (a result stream) |

Publishes, once per accepted InstanceArray, with its header (same stamp, same frame):

| topic              | type                        |
|--------------------|-----------------------------|
| ``tracking/tracks``| hrc_perception/TrackArray   |

Each ``Track``: ``track_id`` (stable while the track lives, unique, increasing from 1),
``instance_id`` (the ``Instance.id`` matched in this array; 0 when coasting),
``class_name`` / ``class_id`` (the class the track started with), ``state``
(TENTATIVE, CONFIRMED; a track deleted by this array is listed once more as DELETED,
then never again), ``score`` (of the last matched instance), ``hits`` / ``age`` /
``time_since_update`` (counted in arrays, i.e. images), ``roi`` (the Kalman box
after this array's update, or its prediction when coasting: pixels, rounded to
whole pixels, left/top clipped at 0; the right/bottom edge is not clipped because
the array does not carry the image size), ``velocity_u_px_s`` / ``velocity_v_px_s``
(box-centre velocity, pixels per second, u = columns, v = rows).

Markers (parameter ``markers``, default on): the node also subscribes to
``camera/depth/image_raw`` (16UC1 mm or 32FC1 m, aligned to colour) and
``camera/color/camera_info`` (input QoS). For an InstanceArray whose stamp equals a
received depth image's, it publishes ``tracker/markers`` (MarkerArray, the array's
header): per confirmed track matched in that image, a SPHERE (namespace ``tracks``,
colour per track id) and a TEXT_VIEW_FACING label "track_id class" (namespace
``track_labels``) at the instance's 3D point -- the median depth of its mask pixels
with valid depth, back-projected at their median pixel
(:func:`hrc_perception.geometry.mask_point_cam_m`); marker id = track id; lifetime
``marker_lifetime_s``. No depth for that stamp, no markers (counted
``no_depth_for_markers``); a track whose mask has under 10 pixels of valid depth gets
none (``marker_without_depth``). The visualizer also draws the track boxes and ids
on the image.

Per InstanceArray: ``dt`` = its header stamp minus the previous accepted one
(seconds; 0 for the first), ``Tracker.predict(dt)``, detections from the instances
(``roi`` -> tlwh box, ``class_id``, ``score``, ``embedding`` (empty -> no appearance:
IoU matching only), ``id``), ``Tracker.update``. Any gap forward in time is fine
(the Kalman filter takes dt).

Bad input never stops the node (each counted with ``report()``):
- ``stamp_out_of_order``: a stamp not after the previous accepted one, by at most
  ``max_backward_jump_s``: the array is skipped (no output).
- ``time_jump_back``: a stamp more than ``max_backward_jump_s`` before the previous
  one (a bag that loops, a restarted source): a new sequence; the tracker restarts
  (ids from 1 again) and the array is processed.
- ``bad_instance``: an instance with an empty ROI (width or height 0); skipped, the
  other instances are tracked.
- ``tracker_error``: any other failure of the tracker on one array; that array
  gives no output, the tracker restarts.
- ``bad_depth`` / ``bad_camera_info`` / ``bad_mask``: a depth image that cannot be
  read, unusable camera_info (zero K, ...), a mask that does not fit its ROI or the
  depth image: no markers for that array (or that track); tracks are unaffected.

Parameters ``use_appearance``, ``max_iou_distance``, ``max_cosine_distance``,
``iou_for_lost_tracks``, ``nn_budget``, ``per_class`` and ``nominal_frame_rate_hz``
apply from the next array; ``max_age`` and ``n_init`` to
tracks started after the change.

Numpy's BLAS is limited to one thread around each update where ``threadpoolctl`` is
installed (the tracker's matrix products are tiny; BLAS threads only add overhead).
"""
from __future__ import annotations

import contextlib

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.geometry import mask_point_cam_m
from hrc_perception.msg import InstanceArray, Track, TrackArray
from hrc_perception.ros.convert import (ImageConversionError, camera_info_to_K, copy_header, depth_to_meters,
                                        duration_msg, roi_crop, stamp_to_ns)
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.ros.sync import StampBuffer
from hrc_perception.tracking import Detection, KalmanFilter, NearestNeighborDistanceMetric, Tracker
from hrc_perception.tracking.nn_matching import DEFAULT_MAX_COSINE_DISTANCE, DEFAULT_NN_BUDGET
from hrc_perception.viz.draw import id_color

INSTANCES_TOPIC = "segmentation/instances"
TRACKS_TOPIC = "tracking/tracks"
DEPTH_TOPIC = "camera/depth/image_raw"
CAMERA_INFO_TOPIC = "camera/color/camera_info"
MARKERS_TOPIC = "tracker/markers"
NS_PER_S = 1_000_000_000
DEPTH_IMAGES_KEPT = 30      # recent depth images waiting for their InstanceArray
MARKER_SIZE_M = 0.08


def _blas_single_thread():
    """A callable giving a context that limits BLAS to one thread (threadpoolctl), or a no-op context."""
    try:
        from threadpoolctl import ThreadpoolController
        controller = ThreadpoolController()
    except Exception:  # noqa: BLE001 - not installed (or broken): leave BLAS as it is
        return contextlib.nullcontext
    return lambda: controller.limit(limits=1, user_api="blas")


def instances_to_detections(msg: InstanceArray) -> tuple[list[Detection], list[str], list[str]]:
    """(detections, their class names, problems) of an InstanceArray.

    Each instance with a non-empty ROI gives a Detection: tlwh = (x_offset, y_offset,
    width, height) pixels, class_id, score, feature = the embedding ([D] float32, None
    when empty), instance_id = id. Instances with an empty ROI are left out and named
    in ``problems``.
    """
    dets, names, problems = [], [], []
    for inst in msg.instances:
        r = inst.roi
        if r.width == 0 or r.height == 0:
            problems.append(f"instance {inst.id} ({inst.class_name}) has an empty roi {r.width}x{r.height}")
            continue
        emb = np.asarray(inst.embedding, np.float32)
        dets.append(Detection(tlwh=(r.x_offset, r.y_offset, r.width, r.height), score=float(inst.score),
                              class_id=int(inst.class_id), feature=emb if emb.size else None,
                              instance_id=int(inst.id)))
        names.append(inst.class_name)
    return dets, names, problems


def _roi_of_tlwh(tlwh: np.ndarray) -> RegionOfInterest:
    """ROI of a float tlwh box (pixels): corners rounded, left/top clipped at 0, size >= 0."""
    x0, y0, w, h = (float(v) for v in tlwh)
    if not all(np.isfinite((x0, y0, w, h))):
        return RegionOfInterest()
    c0, r0 = max(int(round(x0)), 0), max(int(round(y0)), 0)
    c1, r1 = max(int(round(x0 + w)), c0), max(int(round(y0 + h)), r0)
    return RegionOfInterest(x_offset=c0, y_offset=r0, width=c1 - c0, height=r1 - r0, do_rectify=False)


class TrackerNode(HrcNode):
    """Deep SORT over segmentation/instances (see the module doc); node name default 'tracker'.

    After construction: ``tracker`` is the core Tracker (None unless configured),
    ``arrays_tracked`` counts TrackArrays published since configure.
    """

    PARAMS = (
        ParamSpec("use_appearance", True, "Deep SORT: match on the instances' appearance embeddings first; "
                  "false = SORT (motion and IoU only)"),
        ParamSpec("max_age", 30, "images a confirmed track may go unmatched before it is deleted",
                  min_value=0, max_value=100000),
        ParamSpec("n_init", 3, "consecutive matched images that confirm a track", min_value=1, max_value=1000),
        ParamSpec("max_iou_distance", 0.7, "largest 1 - IoU accepted in the IoU matching stage",
                  min_value=0.0, max_value=1.0),
        ParamSpec("max_cosine_distance", DEFAULT_MAX_COSINE_DISTANCE,
                  "largest appearance cosine distance accepted as a match",
                  min_value=0.0, max_value=2.0),
        ParamSpec("iou_for_lost_tracks", True, "IoU matching also for confirmed tracks lost more than one image "
                  "(false: the original Deep SORT, only those missed in the last image)"),
        ParamSpec("nn_budget", DEFAULT_NN_BUDGET, "appearance features kept per track (most recent); 0 = all",
                  min_value=0, max_value=100000),
        ParamSpec("per_class", True, "a track only matches instances of its own class"),
        ParamSpec("nominal_frame_rate_hz", 15.0, "camera frame rate (Hz) at which Deep SORT's per-frame "
                  "Kalman noise applies (time steps come from the stamps)", min_value=0.1, max_value=1000.0),
        ParamSpec("markers", True, "publish tracker/markers (track spheres and id labels in 3D from depth)"),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of each marker (s)", min_value=0.0, max_value=3600.0),
        ParamSpec("max_backward_jump_s", 1.0, "a stamp up to this much (seconds) before the previous one is "
                  "out of order (skipped); further back starts a new sequence (tracker restarted)",
                  min_value=0.0, max_value=1e6),
    )

    def __init__(self, node_name: str = "tracker", **kwargs):
        self.tracker: Tracker | None = None
        self.arrays_tracked = 0
        self._sub = None
        self._tracks_pub = None
        self._markers_pub = None
        self._input_subs: list = []
        self._depth_by_stamp = StampBuffer(DEPTH_IMAGES_KEPT)
        self._camera_info: CameraInfo | None = None
        self._last_stamp_ns: int | None = None
        self._class_names: dict[int, str] = {}
        self._blas = _blas_single_thread()
        super().__init__(node_name, **kwargs)
        self.add_post_set_parameters_callback(self._on_parameters_set)

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self._reset_tracker()
        self._tracks_pub = self.create_publisher(TrackArray, TRACKS_TOPIC, self.output_qos())
        self._markers_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, self.output_qos())
        self._sub = self.create_subscription(InstanceArray, INSTANCES_TOPIC, self._on_instances, self.output_qos())
        self._input_subs = [
            self.create_subscription(Image, DEPTH_TOPIC, self._on_depth, self.input_qos()),
            self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, self.input_qos())]
        self.arrays_tracked = 0

    def on_cleanup_hook(self) -> None:
        for sub in [self._sub, *self._input_subs]:
            if sub is not None:
                self.destroy_subscription(sub)
        for pub in (self._tracks_pub, self._markers_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._sub = self._tracks_pub = self._markers_pub = None
        self._input_subs = []
        self._depth_by_stamp.clear()
        self._camera_info = None
        self.tracker = None
        self._last_stamp_ns = None

    def _reset_tracker(self) -> None:
        budget = self.param("nn_budget")
        self.tracker = Tracker(
            metric=NearestNeighborDistanceMetric(self.param("max_cosine_distance"), budget or None),
            max_iou_distance=self.param("max_iou_distance"), max_age=self.param("max_age"),
            n_init=self.param("n_init"), per_class=self.param("per_class"),
            use_appearance=self.param("use_appearance"), iou_for_lost_tracks=self.param("iou_for_lost_tracks"),
            kf=KalmanFilter(nominal_dt_s=1.0 / self.param("nominal_frame_rate_hz")))
        self._last_stamp_ns = None
        self._class_names = {}

    def _on_parameters_set(self, params) -> None:
        t = self.tracker
        if t is None:
            return
        for p in params:
            if p.name == "use_appearance":
                t.use_appearance = bool(p.value)
            elif p.name == "max_age":
                t.max_age = int(p.value)
            elif p.name == "n_init":
                t.n_init = int(p.value)
            elif p.name == "max_iou_distance":
                t.max_iou_distance = float(p.value)
            elif p.name == "max_cosine_distance":
                t.metric.matching_threshold = float(p.value)
            elif p.name == "iou_for_lost_tracks":
                t.iou_for_lost_tracks = bool(p.value)
            elif p.name == "nn_budget":
                t.metric.budget = int(p.value) or None
            elif p.name == "per_class":
                t.per_class = bool(p.value)
            elif p.name == "nominal_frame_rate_hz":
                t.kf.nominal_dt_s = 1.0 / float(p.value)

    # -- instances --------------------------------------------------------------------
    def _on_instances(self, msg: InstanceArray) -> None:
        if not self.is_active or self.tracker is None:
            return
        out = self.track(msg)
        if out is not None:
            self._tracks_pub.publish(out)
            self.arrays_tracked += 1
            if self.param("markers"):
                markers = self.markers(msg, out)
                if markers is not None:
                    self._markers_pub.publish(markers)

    def _on_depth(self, msg: Image) -> None:
        if not self.is_active or not self.param("markers"):
            return
        self._depth_by_stamp.add(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    # -- markers ----------------------------------------------------------------------
    def markers(self, instances: InstanceArray, tracks: TrackArray) -> MarkerArray | None:
        """Markers of the confirmed tracks matched in this array (see the module doc), or
        None without a depth image of the same stamp or without usable camera_info."""
        depth_msg = self._depth_by_stamp.get(stamp_to_ns(instances.header.stamp))
        if depth_msg is None or self._camera_info is None:
            self.report("no_depth_for_markers", f"no {DEPTH_TOPIC} image (or no {CAMERA_INFO_TOPIC}) with the stamp "
                        "of this InstanceArray: no markers")
            return None
        depth_m = self.converted(depth_to_meters, depth_msg, "bad_depth", DEPTH_TOPIC)
        intrinsics = None if depth_m is None else self.converted(camera_info_to_K, self._camera_info,
                                                                 "bad_camera_info", CAMERA_INFO_TOPIC)
        if intrinsics is None:
            return None
        K = intrinsics[0]
        h, w = depth_m.shape
        by_id = {inst.id: inst for inst in instances.instances}
        out = MarkerArray()
        for t in tracks.tracks:
            inst = by_id.get(t.instance_id)
            if t.state != Track.CONFIRMED or t.instance_id == 0 or inst is None:
                continue
            r = inst.roi
            try:   # work in the ROI only
                if inst.mask.width and inst.mask.height:
                    crop, rows, cols = roi_crop(r, inst.mask, h, w)
                else:   # no mask: the box, clipped to the image
                    rows = slice(r.y_offset, min(r.y_offset + r.height, h))
                    cols = slice(r.x_offset, min(r.x_offset + r.width, w))
                    crop = np.ones(depth_m[rows, cols].shape, bool)
            except ImageConversionError as e:
                self.report("bad_mask", f"instance {inst.id} ({inst.class_name}): {e}")
                continue
            point = mask_point_cam_m(crop, depth_m[rows, cols], K, (cols.start, rows.start))
            if point is None:
                self.report("marker_without_depth", f"track {t.track_id}: too few mask pixels with valid depth")
                continue
            out.markers += self._track_markers(instances.header, t, point)
        return out

    def _track_markers(self, header: Header, t: Track, point_m: np.ndarray) -> list[Marker]:
        r, g, b = id_color(t.track_id)
        lifetime = self.param("marker_lifetime_s")
        markers = []
        for ns, kind, z_up_m in (("tracks", Marker.SPHERE, 0.0), ("track_labels", Marker.TEXT_VIEW_FACING, 0.1)):
            m = Marker(header=copy_header(header), ns=ns, id=int(t.track_id), type=kind, action=Marker.ADD)
            m.pose.position.x, m.pose.position.y = float(point_m[0]), float(point_m[1]) - z_up_m  # optical y is down
            m.pose.position.z = float(point_m[2])
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = m.scale.z = MARKER_SIZE_M
            m.color = ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=0.9)
            m.lifetime = duration_msg(lifetime)
            if kind == Marker.TEXT_VIEW_FACING:
                m.text = f"{t.track_id} {t.class_name}"
                m.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
            markers.append(m)
        return markers

    def _time_step_s(self, stamp_ns: int) -> float | None:
        """Seconds since the previous accepted stamp (0 for the first); None to skip this array."""
        last = self._last_stamp_ns
        if last is None:
            return 0.0
        if stamp_ns > last:
            return (stamp_ns - last) / NS_PER_S
        back_s = (last - stamp_ns) / NS_PER_S
        if back_s > self.param("max_backward_jump_s"):
            self.report("time_jump_back", f"{INSTANCES_TOPIC}: stamp {back_s:.3f} s before the previous one: "
                        "new sequence, tracks restarted")
            self._reset_tracker()
            return 0.0
        self.report("stamp_out_of_order", f"{INSTANCES_TOPIC}: stamp {stamp_ns} ns is not after the previous "
                    f"{last} ns: array skipped")
        return None

    def track(self, msg: InstanceArray) -> TrackArray | None:
        """Run the tracker on one InstanceArray; the TrackArray to publish, or None when skipped."""
        stamp_ns = stamp_to_ns(msg.header.stamp)
        dt_s = self._time_step_s(stamp_ns)
        if dt_s is None:
            return None
        dets, names, problems = instances_to_detections(msg)
        for p in problems:
            self.report("bad_instance", f"{INSTANCES_TOPIC}: {p}")
        for d, name in zip(dets, names):
            self._class_names[d.class_id] = name
        try:
            with self._blas():
                before = list(self.tracker.tracks)
                self.tracker.predict(dt_s)
                self.tracker.update(dets)
        except Exception as e:  # noqa: BLE001 - a tracker failure must not stop the node
            self.report("tracker_error", f"{type(e).__name__}: {e}; tracks restarted")
            self._reset_tracker()
            return None
        self._last_stamp_ns = stamp_ns
        alive = {id(t) for t in self.tracker.tracks}
        deleted = [t for t in before if id(t) not in alive]
        out = TrackArray(header=copy_header(msg.header))
        out.tracks = [self._track_msg(t) for t in self.tracker.tracks + deleted]
        return out

    def _track_msg(self, t) -> Track:
        vu, vv = (float(v) for v in t.velocity_px_s())
        return Track(track_id=t.track_id, instance_id=t.instance_id if t.time_since_update == 0 else 0,
                     class_name=self._class_names.get(t.class_id, ""), class_id=t.class_id, state=int(t.state),
                     score=float(t.score), hits=int(t.hits), age=int(t.age),
                     time_since_update=int(t.time_since_update), roi=_roi_of_tlwh(t.to_tlwh()),
                     velocity_u_px_s=vu if np.isfinite(vu) else 0.0, velocity_v_px_s=vv if np.isfinite(vv) else 0.0)


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception tracker [--ros-args -p use_appearance:=false ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(TrackerNode, args)
