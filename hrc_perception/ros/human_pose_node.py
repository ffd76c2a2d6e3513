"""The human_pose node: every tracked person's 3D COCO-17 skeleton (:mod:`hrc_perception.human_pose`).

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                        | type                           | QoS                          |
|------------------------------|--------------------------------|------------------------------|
| ``camera/color/image_raw``   | sensor_msgs/Image rgb8         | input QoS                    |
| ``camera/depth/image_raw``   | sensor_msgs/Image 16UC1 mm / 32FC1 m, aligned to colour | input QoS |
| ``camera/color/camera_info`` | sensor_msgs/CameraInfo         | input QoS                    |
| ``segmentation/instances``   | hrc_perception/InstanceArray   | reliable, depth 10 (masks)   |
| ``tracking/tracks``          | hrc_perception/TrackArray      | reliable, depth 10 (trigger) |

Publishes, once per TrackArray, with its header (the colour image's; with ``follow``, once
per depth frame, with the depth image's):

| topic                   | type                           |
|-------------------------|--------------------------------|
| ``humans/skeletons``    | hrc_perception/SkeletonArray   |
| ``human_pose/markers``  | visualization_msgs/MarkerArray |

People: the person tracks matched in this image (``time_since_update`` 0), at most
``max_people`` (largest boxes first). Each gets its instance's box and mask (the
InstanceArray of the same stamp; the track's box without a mask if it has not
arrived; colour, depth and instances are paired by exact stamp, the last ``frames_kept``
of each kept: :class:`~hrc_perception.ros.sync.StampBuffer`), then the ``backend``:
``mediapipe`` (BlazePose's 2D joints on the colour crop, lifted with the depth) or
``spdh`` (3D joints from the depth crop, ``weights``; with ``front_check``, a face seen
on the colour image at a skeleton that faces away swaps its left and right:
:mod:`hrc_perception.human_pose.front_back`), and One Euro smoothing per track id.

``follow`` (spdh only; the colour image is then not used): skeletons at camera rate.
Each depth frame is estimated on arrival for the people of the newest TrackArray (not
deleted), each person's crop the depth pixels near their last skeleton
(:mod:`hrc_perception.human_pose.follow`; only the foreground of ``background_file``'s
empty cell, where one is given). A person new to the track arrays is estimated in the
array's own frame with their instance mask, then followed through the depth frames kept
towards the newest (one every ``follow_catch_up_s``, a few per depth frame, so no callback
is long: under load the track arrays come seconds late) and from then on in every frame. A person not found again in a frame
(no last skeleton of ``follow_max_age_s`` or less with enough joints, or no pixel near it)
is listed with an unknown skeleton when the newest track array matched them (as a person
segmented without a skeleton), and left out when it holds them coasting: the safety monitor
then bounds them by their last skeleton, grown by its age, for as long as the tracker holds
them. Either way the tracker's next array (re)starts their following.

Without ``follow``, every such person is in the output, also when nothing was
found (all joints NaN, confidence 0): the safety monitor then knows a person is there
without a usable skeleton. ``Skeleton``: model ``coco17``, ``id`` = track id, positions
in the camera optical frame (metres; NaN = unknown), confidence, the 2D joints
(pixels), visibility (VISIBLE: placed in 3D; OCCLUDED: inside the image, not placed;
OUTSIDE).

Markers: per person its limbs (LINE_LIST, namespace ``human_limbs``, colour per id)
and an id label (``human_labels``); marker id = track id; lifetime ``marker_lifetime_s``.

Lifecycle: deactivate frees the backend (closes BlazePose, drops the SPDH network) and
activate loads it again, with a fresh smoothing state: deactivate + activate took 0.12 s
with BlazePose (configure 0.65 s) and 0.34 s with the shipped SPDH model on the 2-core
CPU machine it was measured on.

Bad input never stops the node and never hides a person (counted with ``report()``;
the people are then listed with unknown skeletons): ``no_images``, ``no_camera_info``,
``bad_camera_info``, ``bad_image`` / ``bad_depth``, ``size_mismatch``, ``estimate_error``,
``over_max_people``; per person ``bad_mask`` (the track's box is used without a mask).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Point
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.engines import ENGINES
from hrc_perception.msg import InstanceArray, SkeletonArray, TrackArray
from hrc_perception.ros.convert import (ImageConversionError, copy_header, duration_msg, roi_image_to_mask,
                                        skeleton_to_msg, stamp_to_ns)
from hrc_perception.ros.node_base import CAMERA_COLOR_TOPIC as COLOR_TOPIC
from hrc_perception.ros.node_base import CAMERA_DEPTH_TOPIC as DEPTH_TOPIC
from hrc_perception.ros.node_base import CAMERA_INFO_TOPIC, HrcNode, ParamSpec, run_node
from hrc_perception.ros.sync import StampBuffer
from hrc_perception.ros.weights import resolve_weights
from hrc_perception.skeletons import COCO17_BONES, COCO17_NAMES
from hrc_perception.viz.draw import id_color

INSTANCES_TOPIC = "segmentation/instances"
TRACKS_TOPIC = "tracking/tracks"
SKELETONS_TOPIC = "humans/skeletons"
MARKERS_TOPIC = "human_pose/markers"
CATCH_UP_STEPS = 3
"""follow: kept frames a late person's seed advances through per depth frame (each ~12 ms)."""
NS_PER_S = 1_000_000_000
WEIGHTS_RELPATH = Path("models") / "human_pose" / "model.pt"
NO_WEIGHTS_MESSAGE = "no human pose weights for the spdh backend: train with `hrc-perception train human_pose`, " \
    "set weights, or use backend mediapipe"


def _id_color(i: int) -> ColorRGBA:
    r, g, b = id_color(int(i))
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0)


def skeleton_markers(msg: SkeletonArray, lifetime_s: float) -> MarkerArray:
    """Limbs as lines and an id label per person."""
    life = duration_msg(lifetime_s)
    out = MarkerArray()
    for sk in msg.skeletons:
        pts = [p if np.isfinite([p.x, p.y, p.z]).all() else None for p in sk.positions]
        limbs = Marker(header=copy_header(msg.header), ns="human_limbs", id=int(sk.id), type=Marker.LINE_LIST,
                       action=Marker.ADD, lifetime=life, color=_id_color(sk.id))
        limbs.scale.x = 0.02
        limbs.pose.orientation.w = 1.0
        for a, b in COCO17_BONES:
            if pts[a] is not None and pts[b] is not None:
                limbs.points += [pts[a], pts[b]]
        known = [p for p in pts if p is not None]
        if not known:
            continue
        out.markers.append(limbs)
        top = min(known, key=lambda p: p.y)
        label = Marker(header=copy_header(msg.header), ns="human_labels", id=int(sk.id),
                       type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, lifetime=life, color=_id_color(sk.id),
                       text=f"person {sk.id}")
        label.pose.position = Point(x=top.x, y=top.y - 0.15, z=top.z)
        label.pose.orientation.w = 1.0
        label.scale.z = 0.1
        out.markers.append(label)
    return out


def unknown_skeleton(person_id: int):
    """A PersonSkeleton of person_id with every joint unknown (NaN, confidence 0)."""
    from hrc_perception.human_pose.estimator import PersonSkeleton
    nan = np.full((17, 3), np.nan)
    return PersonSkeleton(int(person_id), nan, np.zeros(17), np.full((17, 2), np.nan), nan.copy())


class HumanPoseNode(HrcNode):
    """3D skeletons of the tracked people (see the module doc); node name default 'human_pose'.

    After construction: ``estimator`` (None unless configured; None again after a
    deactivate), ``configure_error``, ``arrays_processed``,
    ``people_processed``, ``last_inference_s``.
    """

    MODEL_ATTR = "estimator"
    PARAMS = (
        ParamSpec("backend", "mediapipe", "per person crop: mediapipe (BlazePose 2D joints, lifted with the depth; "
                  "for real cameras) or spdh (3D joints from the depth crop; trained on the synthetic cell)",
                  choices=("mediapipe", "spdh"), read_only=True),
        ParamSpec("weights", "", "spdh backend model (hrc-perception train human_pose); '' = the shipped "
                  "models/human_pose/model.pt", read_only=True),
        ParamSpec("engine", "onnxruntime", "spdh: what runs the network: torch (the reference), onnxruntime or "
                  "openvino (fp32, CPU only; outputs within 1e-4 of torch: hrc-perception bench engines)",
                  choices=ENGINES,
                  read_only=True),
        ParamSpec("grow_mask_px", 0, "spdh: grow each person's mask by up to this many pixels of continuous "
                  "depth (segmentation masks that stop short of a hand)", min_value=0, max_value=20, read_only=True),
        ParamSpec("front_check", True, "spdh with colour (not follow): BlazeFace on each skeleton's head; a face "
                  "seen while the skeleton faces away swaps its left and right (needs mediapipe)", read_only=True),
        ParamSpec("max_people", 6, "most people estimated per image (largest first)", min_value=1, max_value=100),
        ParamSpec("min_confidence", 0.3, "joints below this (2D confidence x depth support) are unknown",
                  min_value=0.0, max_value=1.0),
        ParamSpec("crop_padding", 0.25, "person box grown by this fraction on every side for the backend",
                  min_value=0.0, max_value=2.0, read_only=True),
        ParamSpec("depth_window_px", 4, "half-size of the depth window per joint (pixels)", min_value=0,
                  max_value=50),
        ParamSpec("smoothing_min_cutoff_hz", 1.5, "One Euro cut-off at rest (Hz)", min_value=0.01, max_value=100.0),
        ParamSpec("smoothing_beta", 0.8, "One Euro cut-off increase per m/s", min_value=0.0, max_value=100.0),
        ParamSpec("frames_kept", 10, "colour / depth / instance messages kept for pairing by stamp (follow: "
                  "enough to span the tracks' latency)", min_value=1, max_value=1000),
        ParamSpec("follow", False, "spdh: skeletons for every depth frame, each person found near their last "
                  "skeleton (human_pose.follow) between track arrays", read_only=True),
        ParamSpec("follow_speed_mps", 1.0, "follow: the crop grows this fast with the last skeleton's age",
                  min_value=0.0, max_value=10.0),
        ParamSpec("follow_body_radius_m", 0.25, "follow: the person's pixels lie within this of the last "
                  "skeleton's bones", min_value=0.01, max_value=2.0),
        ParamSpec("follow_max_age_s", 0.5, "follow: a person whose last skeleton is older is not followed",
                  min_value=0.0, max_value=10.0),
        ParamSpec("follow_catch_up_s", 0.2, "follow: a person new to the tracks is followed from the track "
                  "array's frame to the newest through the frames kept, one every this many seconds",
                  min_value=0.0, max_value=10.0),
        ParamSpec("background_file", "", "follow: the empty cell's background depth (.npz, as the safety "
                  "monitor's): only the foreground can be a person ('' = every pixel)", read_only=True),
        ParamSpec("markers", True, "publish human_pose/markers"),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of each marker (s)", min_value=0.0, max_value=3600.0),
    )

    def __init__(self, node_name: str = "human_pose", **kwargs):
        self.estimator = None
        self.configure_error: str | None = None
        self.arrays_processed = 0
        self.people_processed = 0
        self.last_inference_s = float("nan")
        self._subs: list = []
        self._pubs: dict = {}
        # by stamp, the last frames_kept each: Image, Image, InstanceArray
        self._color, self._depth, self._instances = StampBuffer(10), StampBuffer(10), StampBuffer(10)
        self._camera_info: CameraInfo | None = None
        # follow: the newest TrackArray, each followed person's last measured joints and their stamp
        self._tracks_msg: TrackArray | None = None
        self._seeds: dict[int, tuple[np.ndarray, int]] = {}
        self._background = None
        self.frames_followed = 0
        super().__init__(node_name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------
    def check_parameters(self, values: dict) -> str | None:
        if values["follow"] and values["backend"] != "spdh":
            return "follow needs backend spdh (the crop is a depth region; BlazePose tracks by itself)"
        return None

    def on_configure_hook(self) -> None:
        self.load_model_or_fail()
        if self.param("follow") and self.param("background_file"):
            from hrc_perception.safety.background import BackgroundDepth
            try:
                self._background = BackgroundDepth.load(self.param("background_file"))
            except (OSError, ValueError) as e:
                raise RuntimeError(f"background_file {self.param('background_file')!r}: {e}") from e
        q = self.input_qos()
        self._pubs = {"skeletons": self.create_publisher(SkeletonArray, SKELETONS_TOPIC, self.output_qos()),
                      "markers": self.create_publisher(MarkerArray, MARKERS_TOPIC, self.output_qos())}
        self._subs = [] if self.param("follow") else [      # follow: depth alone
            self.create_subscription(Image, COLOR_TOPIC, lambda m: self._keep(self._color, m), q)]
        self._subs += [
            self.create_subscription(Image, DEPTH_TOPIC, self._on_depth, q),
            self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, q),
            self.create_subscription(InstanceArray, INSTANCES_TOPIC, lambda m: self._keep(self._instances, m),
                                     self.output_qos()),
            self.create_subscription(TrackArray, TRACKS_TOPIC, self._on_tracks, self.output_qos())]
        self.get_logger().info(f"backend {self.param('backend')}; at most {self.param('max_people')} people")

    def load_model(self) -> None:
        from hrc_perception.human_pose.estimator import HumanPoseEstimator
        if self.param("backend") == "spdh":
            from hrc_perception.human_pose.spdh_backend import SpdhBackend
            backend = SpdhBackend(resolve_weights(self.param("weights"), WEIGHTS_RELPATH, NO_WEIGHTS_MESSAGE),
                                  grow_mask_px=self.param("grow_mask_px"), engine=self.param("engine"))
        else:
            from hrc_perception.human_pose.mediapipe_backend import MediapipeBackend
            backend = MediapipeBackend(pad_fraction=self.param("crop_padding"),
                                       max_tracked=max(8, self.param("max_people")))
        self.estimator = HumanPoseEstimator(backend, min_confidence=self.param("min_confidence"),
                                            front_check=self._front_check())
        self._apply_params()

    def _front_check(self):
        """The face check of the spdh backend with colour, None otherwise (or without mediapipe: warned)."""
        if self.param("backend") != "spdh" or self.param("follow") or not self.param("front_check"):
            return None
        try:
            from hrc_perception.human_pose.front_back import FaceCheck
            return FaceCheck()
        except ImportError as e:
            self.get_logger().warning(f"front_check off: {e}")
            return None

    def free_model(self) -> None:
        if self.estimator is not None:
            self.estimator.backend.close()
            if self.estimator.front_check is not None:
                self.estimator.front_check.close()
        super().free_model()

    def on_cleanup_hook(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._subs, self._pubs = [], {}
        for store in (self._color, self._depth, self._instances):
            store.clear()
        self._camera_info, self._tracks_msg, self._background = None, None, None
        self._seeds.clear()      # the base frees the model

    def _apply_params(self) -> None:
        from dataclasses import replace
        e = self.estimator
        e.min_confidence = self.param("min_confidence")
        e.lifting = replace(e.lifting, window_px=self.param("depth_window_px"))
        e.smoother.params = replace(e.smoother.params, min_cutoff_hz=self.param("smoothing_min_cutoff_hz"),
                                    beta=self.param("smoothing_beta"))
        for f in e.smoother.filters.values():
            f.params = e.smoother.params

    # -- inputs -----------------------------------------------------------------------
    def _keep(self, store: StampBuffer, msg) -> None:
        if self.is_active:
            store.size = self.param("frames_kept")
            store.add(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_depth(self, msg: Image) -> None:
        self._keep(self._depth, msg)
        if not self.param("follow"):
            return
        with self.model_lock:
            if not self.is_active or self.estimator is None:
                return
            out = self.follow_frame(msg)
        if out is not None:
            self._publish(out)

    def _on_tracks(self, msg: TrackArray) -> None:
        with self.model_lock:      # a deactivate frees the backend, not while it runs
            if not self.is_active or self.estimator is None:
                return
            if self.param("follow"):
                self.take_tracks(msg)
                return
            out = self.estimate(msg)
        self._publish(out)

    def _publish(self, out: SkeletonArray) -> None:
        self._pubs["skeletons"].publish(out)
        self.arrays_processed += 1
        if self.param("markers"):
            self._pubs["markers"].publish(skeleton_markers(out, self.param("marker_lifetime_s")))

    @staticmethod
    def _person_tracks(msg: TrackArray, coasting: bool = False) -> list:
        """The person tracks matched in this image (with coasting: every one not deleted),
        largest box first."""
        people = [t for t in msg.tracks if t.class_name == "person" and t.state != t.DELETED
                  and (coasting or t.time_since_update == 0)]
        return sorted(people, key=lambda t: -int(t.roi.width) * int(t.roi.height))

    def _inputs(self, msg: TrackArray, tracks: list, h: int, w: int) -> list:
        """PersonInput of each track: its instance's box and mask (the InstanceArray of the
        same stamp), else the track's box without a mask."""
        from hrc_perception.human_pose.estimator import PersonInput
        instances = self._instances.get(stamp_to_ns(msg.header.stamp))
        by_id = {int(i.id): i for i in instances.instances} if instances is not None else {}
        out = []
        for tr in tracks:
            inst = by_id.get(int(tr.instance_id))
            roi = inst.roi if inst is not None else tr.roi
            box = np.array([roi.x_offset, roi.y_offset, roi.x_offset + roi.width, roi.y_offset + roi.height], float)
            mask = None
            if inst is not None:
                try:
                    mask = roi_image_to_mask(inst.roi, inst.mask, h, w)
                except ImageConversionError as e:
                    self.report("bad_mask", f"person track {tr.track_id}: {e}; box only")
            out.append(PersonInput(int(tr.track_id), box, mask))
        return out

    # -- estimation -------------------------------------------------------------------
    def estimate(self, msg: TrackArray) -> SkeletonArray:
        """Skeletons of the people tracked in one TrackArray (see the module doc). Every
        person track matched in the image is listed, with an unknown skeleton (all joints
        NaN) where nothing could be estimated: never an empty array while people are seen."""
        out = SkeletonArray(header=copy_header(msg.header))
        tracks = self._person_tracks(msg)
        if not tracks:
            return out
        unknown = {int(t.track_id): unknown_skeleton(int(t.track_id)) for t in tracks}
        stamp = stamp_to_ns(msg.header.stamp)
        images = self.rgbd(self._color.get(stamp), self._depth.get(stamp), self._camera_info, "this TrackArray")
        found = {}
        shape = (1, 1)
        if images is not None:
            rgb, depth_m, K = images
            shape = depth_m.shape
            self._apply_params()
            t0 = time.perf_counter()
            try:
                people = self._inputs(msg, tracks[:self.param("max_people")], *shape)
                found = {sk.id: sk for sk in self.estimator.estimate(rgb, depth_m, K, people, stamp / NS_PER_S)}
                self.last_inference_s = time.perf_counter() - t0
                self.people_processed += len(found)
            except Exception as e:  # noqa: BLE001 - a failed estimate must not stop the node
                self.report("estimate_error", f"{type(e).__name__}: {e}")
        if len(tracks) > self.param("max_people"):
            self.report("over_max_people", f"{len(tracks)} people, max_people {self.param('max_people')}: "
                        "the smallest are listed without a skeleton")
        people = [found.get(i, sk) for i, sk in unknown.items()]
        out.skeletons = [skeleton_to_msg(msg.header, "coco17", p.id, COCO17_NAMES, p.xyz_m, p.known, p.confidence,
                                         p.uv_px, shape) for p in people]
        return out

    # -- following between track arrays ---------------------------------------------------
    def _follow_params(self):
        from hrc_perception.human_pose.follow import FollowParams
        return FollowParams(max_speed_mps=self.param("follow_speed_mps"),
                            body_radius_m=self.param("follow_body_radius_m"), max_age_s=self.param("follow_max_age_s"))

    def _depth_and_K(self, msg: Image | None):
        """(depth_m [H, W], K) of a depth Image, or None after report()."""
        if msg is None:
            self.report("no_images", f"no {DEPTH_TOPIC} image with the stamp of this TrackArray (kept: the last "
                        "frames_kept images)")
            return None
        return self.depth_and_K(msg, self._camera_info)

    def _view(self, msg: Image | None):
        """(depth_m [H, W], K, foreground [H, W] bool or None) of a depth Image, or None after
        report(): the foreground of the empty cell's background where one is given and fits."""
        images = self._depth_and_K(msg)
        if images is None:
            return None
        depth_m, K = images
        if self._background is None:
            return depth_m, K, None
        if self._background.shape != depth_m.shape:
            self.report("background_size", f"background {self._background.shape}, depth {depth_m.shape}: "
                        "every pixel may be a person")
            return depth_m, K, None
        return depth_m, K, self._background.foreground(depth_m)

    def _follow(self, ids: list[int], view, stamp_ns: int) -> dict:
        """Each person of ids with a last skeleton found again in this frame's view (of
        :meth:`_view`): id -> PersonInput (the others: none); their seeds are not changed here."""
        from hrc_perception.human_pose.follow import follow_input
        depth_m, K, fg = view
        params, out = self._follow_params(), {}
        for i in ids:
            if i in self._seeds:
                xyz, seed_ns = self._seeds[i]
                person = follow_input(i, xyz, abs(stamp_ns - seed_ns) / NS_PER_S, depth_m, K, params, fg)
                if person is not None:
                    out[i] = person
        return out

    def _reseed(self, measured: dict, stamp_ns: int) -> None:
        """Seeds from measured joints (id -> xyz_m [17, 3]): kept with enough known joints, else dropped."""
        min_joints = self._follow_params().min_joints
        for i, xyz in measured.items():
            if xyz is not None and int(np.isfinite(xyz).all(axis=1).sum()) >= min_joints:
                self._seeds[i] = (np.asarray(xyz, dtype=np.float64), stamp_ns)
            else:
                self._seeds.pop(i, None)

    def _catch_up(self, ids: list[int], until_ns: int) -> None:
        """Advance the seeds of ids older than follow_max_age_s before until_ns through the
        depth frames kept after them (before until_ns), one every follow_catch_up_s (the
        farthest within it), at most CATCH_UP_STEPS frames each: a person new to the track
        arrays, estimated in the array's old frame, reaches the newest frames over a few
        callbacks, none of them long. A seed with no kept frame within follow_max_age_s
        after it is dropped (lost)."""
        max_age_ns = self.param("follow_max_age_s") * NS_PER_S
        step_ns = max(self.param("follow_catch_up_s") * NS_PER_S, 1)
        views: dict = {}        # each kept frame read once per callback, whoever it advances
        for i in ids:
            for _ in range(CATCH_UP_STEPS):
                if i not in self._seeds or until_ns - self._seeds[i][1] <= max_age_ns:
                    break
                seed_ns = self._seeds[i][1]
                after = [s for s in self._depth if seed_ns < s < until_ns and s - seed_ns <= max_age_ns]
                if not after:
                    self._seeds.pop(i)
                    break
                within = [s for s in after if s - seed_ns <= step_ns]
                s = max(within) if within else min(after)
                if s not in views:
                    views[s] = self._view(self._depth.get(s))
                view = views[s]
                if view is None:
                    self._seeds.pop(i)
                    break
                p = self._follow([i], view, s).get(i)
                self._reseed({i: self.estimator.joints(None, *view[:2], p.box_xyxy, p.mask)[0] if p else None}, s)

    def take_tracks(self, msg: TrackArray) -> None:
        """follow: the newest TrackArray names the people; one new to it (no last skeleton) is
        estimated in its frame with its instance mask (then caught up frame by frame:
        :meth:`_catch_up`)."""
        ns = stamp_to_ns(msg.header.stamp)
        if self._tracks_msg is not None and ns < stamp_to_ns(self._tracks_msg.header.stamp):
            self.report("out_of_order", f"{TRACKS_TOPIC}: older than the track array held: ignored")
            return
        self._tracks_msg = msg
        alive = {int(t.track_id) for t in msg.tracks if t.class_name == "person" and t.state != t.DELETED}
        for i in [i for i in self._seeds if i not in alive]:
            del self._seeds[i]
        new = [t for t in self._person_tracks(msg) if int(t.track_id) not in self._seeds][:self.param("max_people")]
        images = self._depth_and_K(self._depth.get(ns)) if new else None
        if images is None:
            return
        depth_m, K = images
        try:
            self._reseed({p.id: self.estimator.joints(None, depth_m, K, p.box_xyxy, p.mask)[0]
                          for p in self._inputs(msg, new, *depth_m.shape)}, ns)
        except Exception as e:  # noqa: BLE001 - a failed estimate must not stop the node
            self.report("estimate_error", f"{type(e).__name__}: {e}")

    def follow_frame(self, msg: Image) -> SkeletonArray | None:
        """follow: the skeletons of this depth frame for the people of the newest TrackArray
        (not deleted; the largest max_people): each found again near their last skeleton;
        one the array matched and not found is listed with an unknown skeleton (as a person
        segmented without one), a coasting one not found is left out (see the module doc).
        None before any TrackArray."""
        if self._tracks_msg is None:
            return None
        out = SkeletonArray(header=copy_header(msg.header))
        people = self._person_tracks(self._tracks_msg, coasting=True)
        if len(people) > self.param("max_people"):
            self.report("over_max_people", f"{len(people)} people, max_people {self.param('max_people')}: "
                        "the smallest are listed without a skeleton")
        found, shape = {}, (1, 1)
        view = self._view(msg) if people else None
        if view is not None:
            depth_m, K, _ = view
            shape, ns = depth_m.shape, stamp_to_ns(msg.header.stamp)
            self._apply_params()
            t0 = time.perf_counter()
            try:
                ids = [int(t.track_id) for t in people[:self.param("max_people")]]
                self._catch_up(ids, ns)
                max_age_ns = self.param("follow_max_age_s") * NS_PER_S
                current = [i for i in ids if i in self._seeds and ns - self._seeds[i][1] <= max_age_ns]
                inputs = self._follow(current, view, ns)
                found = {sk.id: sk for sk in self.estimator.estimate(None, depth_m, K, list(inputs.values()),
                                                                     ns / NS_PER_S)}
                self._reseed({i: (found[i].measured_xyz_m if i in found else None) for i in current}, ns)
                self.last_inference_s = time.perf_counter() - t0
                self.people_processed += len(found)
                self.frames_followed += 1
            except Exception as e:  # noqa: BLE001 - a failed estimate must not stop the node
                self.report("estimate_error", f"{type(e).__name__}: {e}")
        listed = [found.get(int(t.track_id)) or unknown_skeleton(int(t.track_id))
                  for t in people if int(t.track_id) in found or t.time_since_update == 0]
        out.skeletons = [skeleton_to_msg(msg.header, "coco17", p.id, COCO17_NAMES, p.xyz_m, p.known, p.confidence,
                                         p.uv_px, shape) for p in listed]
        return out

    def diagnostic_values(self) -> dict[str, str]:
        return {"arrays": str(self.arrays_processed), "people": str(self.people_processed),
                "frames_followed": str(self.frames_followed), "followed": str(len(self._seeds)),
                "left_right_swaps": str(self.estimator.swaps if self.estimator is not None else 0),
                "last_inference_ms": f"{1e3 * self.last_inference_s:.1f}"}


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception human_pose [--ros-args -p max_people:=4 ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(HumanPoseNode, args)
