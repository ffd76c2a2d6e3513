"""The object_pose node: DenseFusion 6D poses of the segmented part instances.

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                        | type                           | QoS                          |
|------------------------------|--------------------------------|------------------------------|
| ``camera/color/image_raw``   | sensor_msgs/Image rgb8         | input QoS                    |
| ``camera/depth/image_raw``   | sensor_msgs/Image 16UC1 mm / 32FC1 m, aligned to colour | input QoS |
| ``camera/color/camera_info`` | sensor_msgs/CameraInfo         | input QoS                    |
| ``segmentation/instances``   | hrc_perception/InstanceArray   | reliable, depth 10           |
| ``tracking/tracks``          | hrc_perception/TrackArray      | reliable, depth 10           |

Publishes, once per InstanceArray, with its header (the colour image's):

| topic                  | type                            |
|------------------------|---------------------------------|
| ``objects/poses``      | hrc_perception/ObjectPoseArray  |
| ``object_pose/markers``| visualization_msgs/MarkerArray  |

Pairing by stamp (:class:`~hrc_perception.ros.sync.StampBuffer`): the node keeps the last
``frames_kept`` colour and depth images and TrackArrays.
An InstanceArray is paired with the colour image of exactly its stamp (the
segmentation node copies the colour header) and the depth image nearest in time
within ``depth_slop_s``; the latest camera_info gives K. Track ids come from the
TrackArray of the same stamp if it has arrived by the time the poses are ready (the
tracker is much faster than this node); otherwise ``track_id`` is 0.

Per InstanceArray: the instances whose class is a part of the model (model card
``classes``) with score >= ``min_score``, at most ``max_instances`` (highest score
first), each cropped around its mask and estimated (main network, then
``refine_iterations`` refiner passes, then, with ``verify_poses`` and a model file
that carries its parts' surface points, pose verification). Each ``ObjectPose``: ``instance_id`` (the
Instance's id), ``track_id``, ``class_name``, ``pose`` (model frame in the camera
optical frame, metres), ``confidence`` (the chosen pixel's, 0..1).

Markers (``markers``): per pose the part's axes (LINE_LIST, x red, y green, z blue,
half the part's diameter long; namespace ``part_axes``) and a "class confidence"
label (``part_labels``); marker id = index in the array, lifetime ``marker_lifetime_s``.

Lifecycle: configure loads the model (a missing or unreadable file fails the transition,
the reason in ``configure_error``); deactivate frees it and activate loads it again: with
the shipped model deactivate + activate took 0.9 s on the 2-core CPU machine it was
measured on (configure 1.3 s), quick enough to give its memory back while inactive;
cleanup frees it too.

Bad input never stops the node and never yields a pose with NaN. Counted with
``report()`` and answered with an empty ObjectPoseArray (the InstanceArray's header):
``no_images`` (no colour/depth image for the stamp), ``no_camera_info``,
``bad_camera_info`` (zero or unusable K), ``bad_image`` / ``bad_depth`` (unreadable),
``size_mismatch`` (colour, depth and camera_info sizes differ), ``predict_error``.
Per instance, skipped and counted in ``skipped`` (kind -> count; visible in
diagnostics): ``not_a_model_part`` (people, the robot, parts the model was not trained
on), ``low_score``, ``over_max_instances``, ``few_depth_pixels`` (fewer than
``min_mask_pixels`` mask pixels with depth), ``bad_mask`` (a mask that does not fit its
ROI), ``non_finite_pose``.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from geometry_msgs.msg import Point
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.msg import InstanceArray, ObjectPose, ObjectPoseArray, TrackArray
from hrc_perception.ros.convert import (ImageConversionError, copy_header, duration_msg, matrix_to_pose,
                                        roi_image_to_mask, stamp_to_ns)
from hrc_perception.ros.node_base import CAMERA_COLOR_TOPIC as COLOR_TOPIC
from hrc_perception.ros.node_base import CAMERA_DEPTH_TOPIC as DEPTH_TOPIC
from hrc_perception.ros.node_base import CAMERA_INFO_TOPIC, HrcNode, ParamSpec, run_node
from hrc_perception.ros.sync import StampBuffer
from hrc_perception.ros.weights import resolve_weights

INSTANCES_TOPIC = "segmentation/instances"
TRACKS_TOPIC = "tracking/tracks"
POSES_TOPIC = "objects/poses"
MARKERS_TOPIC = "object_pose/markers"
WEIGHTS_RELPATH = Path("models") / "object_pose" / "model.pt"
NO_WEIGHTS_MESSAGE = "no object pose weights: train with `hrc-perception train object_pose` or set weights"
NS_PER_S = 1_000_000_000
AXIS_COLORS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def pose_markers(header: Header, poses: list[ObjectPose], diameters_m: dict[str, float],
                 lifetime_s: float) -> MarkerArray:
    """Axes and labels of part poses (see the module doc)."""
    out = MarkerArray()
    life = duration_msg(lifetime_s)
    for i, p in enumerate(poses):
        length = 0.5 * diameters_m.get(p.class_name, 0.1)
        axes = Marker(header=copy_header(header), ns="part_axes", id=i, type=Marker.LINE_LIST, action=Marker.ADD,
                      pose=p.pose, lifetime=life)
        axes.scale.x = max(length / 15.0, 0.002)
        for k, (r, g, b) in enumerate(AXIS_COLORS):
            tip = [0.0, 0.0, 0.0]
            tip[k] = length
            axes.points += [Point(), Point(x=tip[0], y=tip[1], z=tip[2])]
            axes.colors += [ColorRGBA(r=r, g=g, b=b, a=1.0)] * 2
        label = Marker(header=copy_header(header), ns="part_labels", id=i, type=Marker.TEXT_VIEW_FACING,
                       action=Marker.ADD, lifetime=life, text=f"{p.class_name} {p.confidence:.2f}")
        label.pose.position.x, label.pose.position.z = p.pose.position.x, p.pose.position.z
        label.pose.position.y = p.pose.position.y - length - 0.02      # optical y points down: above the part
        label.pose.orientation.w = 1.0
        label.scale.z = 0.03
        label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        out.markers += [axes, label]
    return out


class ObjectPoseNode(HrcNode):
    """DenseFusion on segmentation/instances (see the module doc); node name default 'object_pose'.

    After construction: ``predictor`` (None unless configured), ``weights_path``,
    ``configure_error`` (the last configure failure, None after a good one),
    ``arrays_processed``, ``skipped`` (Counter of per-instance skip reasons),
    ``last_inference_s``.
    """

    MODEL_ATTR = "predictor"
    PARAMS = (
        ParamSpec("weights", "", "object pose model (hrc-perception train object_pose); '' = the shipped "
                  "models/object_pose/model.pt", read_only=True),
        ParamSpec("device", "cpu", "torch device of the model", choices=("cpu", "cuda"), read_only=True),
        ParamSpec("points_per_instance", 0, "masked pixels with depth fed to the network per instance; 0 = the "
                  "model's", min_value=0, max_value=10000),
        ParamSpec("refine_iterations", 2, "refiner passes after the main network (0: main network only)",
                  min_value=0, max_value=20),
        ParamSpec("verify_poses", True, "turn each pose about the part's axes and keep the turn that best fits "
                  "the observed points (models with part points)"),
        ParamSpec("render_compare", False, "then fit each pose by silhouette and depth render-and-compare "
                  "(models with part points; tens of ms per part on 2 cores)", read_only=True),
        ParamSpec("render_compare_starts", "verified", "render-and-compare starts from the verified pose, or from "
                  "the refined pose turned about the part's axes (best where depth is too noisy to verify by, "
                  "e.g. a camera 3 m away)", choices=("verified", "turns"), read_only=True),
        ParamSpec("min_mask_pixels", 20, "fewest mask pixels with valid depth an instance needs",
                  min_value=1, max_value=1000000),
        ParamSpec("max_instances", 10, "at most this many part instances per image (highest scores)",
                  min_value=1, max_value=200),
        ParamSpec("min_score", 0.5, "only instances with at least this segmentation score", min_value=0.0,
                  max_value=1.0),
        ParamSpec("depth_slop_s", 0.02, "largest stamp difference (s) between the colour and the depth image "
                  "paired with it", min_value=0.0, max_value=1.0),
        ParamSpec("frames_kept", 30, "colour and depth images kept waiting for their InstanceArray",
                  min_value=1, max_value=1000, read_only=True),
        ParamSpec("markers", True, "publish object_pose/markers (axes and labels per part)"),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of each marker (s)", min_value=0.0, max_value=3600.0),
    )

    def __init__(self, node_name: str = "object_pose", **kwargs):
        self.predictor = None
        self.weights_path: Path | None = None
        self.configure_error: str | None = None
        self.arrays_processed = 0
        self.skipped: Counter = Counter()
        self.last_inference_s = float("nan")
        self._subs: list = []
        self._poses_pub = None
        self._markers_pub = None
        # by stamp (made anew on configure, frames_kept each): Image, Image, {instance id: track id}
        self._color, self._depth, self._tracks = StampBuffer(1), StampBuffer(1), StampBuffer(1)
        self._camera_info: CameraInfo | None = None
        self._diameters_m: dict[str, float] = {}
        super().__init__(node_name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self.load_model_or_fail()
        self._poses_pub = self.create_publisher(ObjectPoseArray, POSES_TOPIC, self.output_qos())
        self._markers_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, self.output_qos())
        q = self.input_qos()
        self._color, self._depth, self._tracks = (StampBuffer(self.param("frames_kept")) for _ in range(3))
        self._subs = [
            self.create_subscription(Image, COLOR_TOPIC, lambda m: self._keep(self._color, m), q),
            self.create_subscription(Image, DEPTH_TOPIC, lambda m: self._keep(self._depth, m), q),
            self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, q),
            self.create_subscription(TrackArray, TRACKS_TOPIC, self._on_tracks, self.output_qos()),
            self.create_subscription(InstanceArray, INSTANCES_TOPIC, self._on_instances, self.output_qos())]
        self.arrays_processed = 0
        p = self.predictor
        self.get_logger().info(f"weights {self.weights_path}: parts {', '.join(p.classes)}; "
                               f"{p.n_points} points, refiner {'yes' if p.refiner is not None else 'none'}")

    def load_model(self) -> None:
        from hrc_perception.object_pose.predictor import ObjectPosePredictor
        path = resolve_weights(self.param("weights"), WEIGHTS_RELPATH, NO_WEIGHTS_MESSAGE)
        self.predictor = ObjectPosePredictor(path, device=self.param("device"),
                                             render_compare=self.param("render_compare"),
                                             render_compare_starts=self.param("render_compare_starts"))
        self.weights_path = path
        card = self.predictor.card
        self._diameters_m = dict(zip(card.get("classes", []), card.get("diameters_m", [])))

    def on_cleanup_hook(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        for pub in (self._poses_pub, self._markers_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._subs, self._poses_pub, self._markers_pub = [], None, None
        self._color.clear()
        self._depth.clear()
        self._tracks.clear()
        self._camera_info = None      # the base frees the model

    # -- inputs -----------------------------------------------------------------------
    def _keep(self, store: StampBuffer, msg, value=None) -> None:
        """Keep ``value`` (default the message) under the message's stamp, while active."""
        if self.is_active:
            store.add(msg, value)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_tracks(self, msg: TrackArray) -> None:
        self._keep(self._tracks, msg, {int(t.instance_id): int(t.track_id) for t in msg.tracks if t.instance_id})

    def _on_instances(self, msg: InstanceArray) -> None:
        with self.model_lock:      # a deactivate frees the model, not while it runs
            if not self.is_active or self.predictor is None:
                return
            out = self.estimate(msg)
        self._poses_pub.publish(out)
        self.arrays_processed += 1
        if self.param("markers") and out.poses:
            self._markers_pub.publish(pose_markers(out.header, list(out.poses), self._diameters_m,
                                                   self.param("marker_lifetime_s")))

    def _depth_for(self, stamp_ns: int) -> Image | None:
        return self._depth.nearest(stamp_ns, round(self.param("depth_slop_s") * NS_PER_S))

    # -- estimation -------------------------------------------------------------------
    def _images(self, msg: InstanceArray):
        """(rgb, depth_m, K) for an InstanceArray, or None after reporting why."""
        stamp = stamp_to_ns(msg.header.stamp)
        color, depth = self._color.get(stamp), self._depth_for(stamp)
        what = "this InstanceArray"
        if color is None or depth is None:      # say which stamps there were (only when one is missing)
            kept = sorted(self._color)
            what += (f" (stamp {stamp * 1e-9:.3f} s; colour images kept: "
                     + (f"{len(kept)} from {kept[0] * 1e-9:.3f} to {kept[-1] * 1e-9:.3f} s)" if kept else "none)"))
        return self.rgbd(color, depth, self._camera_info, what)

    def estimate(self, msg: InstanceArray) -> ObjectPoseArray:
        """Poses of the part instances of one InstanceArray (see the module doc)."""
        out = ObjectPoseArray(header=copy_header(msg.header))
        p = self.predictor
        wanted = []
        for inst in sorted(msg.instances, key=lambda i: -i.score):
            if inst.class_name not in p.classes:
                self.skipped["not_a_model_part"] += 1
            elif inst.score < self.param("min_score"):
                self.skipped["low_score"] += 1
            elif len(wanted) >= self.param("max_instances"):
                self.skipped["over_max_instances"] += 1
            else:
                wanted.append(inst)
        if not wanted:
            return out
        images = self._images(msg)
        if images is None:
            return out
        rgb, depth_m, K = images
        h, w = depth_m.shape
        instances, ids = [], []
        for inst in wanted:
            try:
                mask = roi_image_to_mask(inst.roi, inst.mask, h, w)
            except ImageConversionError as e:
                self.skipped["bad_mask"] += 1
                self.report("bad_mask", f"instance {inst.id} ({inst.class_name}): {e}")
                continue
            instances.append((inst.class_name, mask))
            ids.append(int(inst.id))
        p.n_points = self.param("points_per_instance") or p.build.n_points
        p.refine_iterations = self.param("refine_iterations")
        p.min_depth_px = self.param("min_mask_pixels")
        t0 = time.perf_counter()
        try:
            results = p.predict(rgb, depth_m, K, instances, verify=self.param("verify_poses"))
        except Exception as e:  # noqa: BLE001 - a failed estimate must not stop the node
            self.report("predict_error", f"{type(e).__name__}: {e}")
            return out
        self.last_inference_s = time.perf_counter() - t0
        tracks = self._tracks.get(stamp_to_ns(msg.header.stamp), {})
        for inst_id, r in zip(ids, results):
            if isinstance(r, str):
                self.skipped[r] += 1
                continue
            out.poses.append(ObjectPose(instance_id=inst_id, track_id=tracks.get(inst_id, 0),
                                        class_name=r.class_name, pose=matrix_to_pose(r.T_cam_obj),
                                        confidence=float(r.confidence)))
        return out

    def diagnostic_values(self) -> dict[str, str]:
        return {f"skipped {k}": str(v) for k, v in sorted(self.skipped.items())}


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception object_pose [--ros-args -p weights:=models/object_pose/model.pt ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(ObjectPoseNode, args)
