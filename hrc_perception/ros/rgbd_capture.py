"""The RGB-D capture node: one source of colour + depth + camera_info for the whole graph.

Sources (parameter ``source``, see :mod:`hrc_perception.capture.sources`):
``synthetic`` (the simulated cell, with ground truth), ``bag`` (a rosbag2 recording),
``folder`` (PNG/JPG files) and ``realsense`` (a connected Intel RealSense).

Publishes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                         | type                   | notes                                   |
|-------------------------------|------------------------|-----------------------------------------|
| ``camera/color/image_raw``    | sensor_msgs/Image rgb8 |                                         |
| ``camera/depth/image_raw``    | sensor_msgs/Image 16UC1| z-depth, millimetres, aligned to colour |
| ``camera/color/camera_info``  | sensor_msgs/CameraInfo | pinhole K of the colour camera, no distortion |
| ``joint_states``              | sensor_msgs/JointState | synthetic: the simulated robot's joints, as its driver would publish them; bag: those recorded in it (newest at or before each frame, own stamp) |
| ``ground_truth/*``            | see ``ground_truth_msgs`` | synthetic source only               |

All messages of one frame carry the same header: stamp = the frame's recorded stamp
(or the node clock's "now" with ``restamp``, and always for sources without
stamps: folder, RealSense), frame_id = ``frame_id`` (the colour camera's optical
frame: z forward, x right, y down).

Lifecycle: configure opens the source (a source that cannot be opened fails the
transition with one log line; the node stays up) and creates the publishers;
activate starts a timer that publishes; deactivate stops it; cleanup closes the
source. A source that ends (a bag or folder without ``loop``) logs once and stops
publishing; the node stays up. Frames that cannot be published (colour/depth
sizes differ, bad K, a read error) are skipped and counted with ``report()``.

Pacing: with ``realtime`` a source with recorded stamps (synthetic, bag) is
published at the spacing of its stamps (its own fps); otherwise at ``rate_hz``
(0 = as fast as possible). A RealSense sets its own pace (the node waits for it).
"""
from __future__ import annotations

import dataclasses
import threading
import time

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header

from hrc_perception.capture.pacing import StampPacer
from hrc_perception.capture.sources import (BagSource, CaptureFrame, FolderSource, FrameSource, RealSenseSource,
                                            SourceError, SyntheticSource, frame_problem)
from hrc_perception.ros.convert import CameraInfoError, ImageConversionError, K_to_camera_info, numpy_to_image, \
    ns_to_stamp
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node

COLOR_TOPIC = "camera/color/image_raw"
DEPTH_TOPIC = "camera/depth/image_raw"
INFO_TOPIC = "camera/color/camera_info"
JOINT_STATES_TOPIC = "joint_states"
SOURCES = ("synthetic", "bag", "folder", "realsense")
PACING_SLACK_S = 0.001   # a frame due within this is published now


def _header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def frame_messages(frame: CaptureFrame, stamp_ns: int, frame_id: str, joint_states: bool = True,
                   ground_truth: bool = True) -> tuple[dict, str | None]:
    """({relative topic: message} of one frame as this node publishes it, the reason its
    ground truth could not be converted or None): colour, depth and camera_info stamped
    stamp_ns in frame_id; the frame's joint state (joint_states; moved by the same offset
    as the frame when restamped) and ground truth (ground_truth; restamped with the frame)
    where it has them. Raises ImageConversionError / CameraInfoError for a frame that
    cannot go out at all."""
    height, width = frame.depth_mm.shape
    msgs = {COLOR_TOPIC: numpy_to_image(frame.rgb, "rgb8", _header(stamp_ns, frame_id)),
            DEPTH_TOPIC: numpy_to_image(frame.depth_mm, "16UC1", _header(stamp_ns, frame_id)),
            INFO_TOPIC: K_to_camera_info(frame.K, width, height, _header(stamp_ns, frame_id))}
    joints = frame.joint_state
    if joints is not None and joint_states:
        js_stamp_ns = stamp_ns + (joints.stamp_ns - frame.stamp_ns if frame.stamp_ns is not None else 0)
        msgs[JOINT_STATES_TOPIC] = JointState(header=_header(js_stamp_ns, ""), name=list(joints.names),
                                              position=[float(q) for q in joints.positions_rad])
    gt, gt_error = frame.ground_truth, None
    if gt is not None and ground_truth:
        from hrc_perception.ros.ground_truth_msgs import frame_ground_truth_msgs
        if gt.stamp_ns != stamp_ns:
            gt = dataclasses.replace(gt, stamp_ns=stamp_ns)   # restamped: ground truth follows
        try:
            msgs.update(frame_ground_truth_msgs(gt, frame_id))
        except Exception as e:   # ground truth is extra: the camera frame still goes out
            gt_error = f"{type(e).__name__}: {e}"
    return msgs, gt_error


class RgbdCaptureNode(HrcNode):
    """Publishes the frames of one source (see the module doc); node name default 'rgbd_capture'.

    After construction: ``source`` is the open FrameSource (None when unconfigured),
    ``frames_published`` counts frames sent since configure, ``source_ended`` is
    true once a non-looping source has run out, ``configure_error`` holds the
    last source error's message (None after a good configure).
    """

    PARAMS = (
        ParamSpec("source", "synthetic", "where frames come from: synthetic (simulated cell, with ground truth), "
                  "bag (rosbag2 recording), folder (image files), realsense (Intel RealSense camera)",
                  choices=SOURCES, read_only=True),
        ParamSpec("config", "", "synthetic: cell YAML file ('' = the built-in cell)", read_only=True),
        ParamSpec("seed", 0, "synthetic: random seed (same seed, same frames)", min_value=0, max_value=2**31 - 1,
                  read_only=True),
        ParamSpec("bag_path", "", "bag: rosbag2 directory (MCAP or sqlite3), or a file in one", read_only=True),
        ParamSpec("bag_namespace", "/cell", "bag: namespace of the camera topics in the bag", read_only=True),
        ParamSpec("folder_path", "", "folder: directory with color/*.png|jpg, depth/*.png (uint16 mm) paired by "
                  "file name, and intrinsics.yaml or camera_info.yaml (fx, fy, cx, cy, width, height)",
                  read_only=True),
        ParamSpec("loop", False, "bag, folder: start again after the last frame instead of stopping",
                  read_only=True),
        ParamSpec("restamp", False, "stamp frames with the node clock's now instead of their recorded stamps "
                  "(folder and realsense frames are always stamped now)"),
        ParamSpec("rate_hz", 15.0, "publishing rate (Hz) when not paced by the source; 0 = as fast as possible",
                  min_value=0.0, max_value=1000.0),
        ParamSpec("realtime", True, "synthetic, bag: publish at the spacing of the recorded stamps (the "
                  "source's own fps) instead of rate_hz"),
        ParamSpec("frame_id", "camera_color_optical_frame", "header frame_id: the colour camera's optical frame"),
        ParamSpec("publish_ground_truth", True, "synthetic: also publish ground_truth/* (exact skeletons, part "
                  "poses, instances)"),
        ParamSpec("publish_joint_states", True, "synthetic, bag: publish the robot's joint_states (the simulated "
                  "robot's, or those recorded in the bag, as its driver published them; robot_pose needs them for "
                  "the camera-to-robot pose, safety_monitor for the robot)", read_only=True),
        ParamSpec("width", 640, "realsense: image width (pixels)", min_value=1, max_value=4096, read_only=True),
        ParamSpec("height", 480, "realsense: image height (pixels)", min_value=1, max_value=4096, read_only=True),
        ParamSpec("fps", 30, "realsense: frame rate (Hz)", min_value=1, max_value=300, read_only=True),
    )

    def __init__(self, node_name: str = "rgbd_capture", **kwargs):
        self._lock = threading.RLock()   # timer, parameter and lifecycle callbacks may run on different threads
        self.source: FrameSource | None = None
        self.configure_error: str | None = None
        self.frames_published = 0
        self.source_ended = False
        self._timer = None
        self._camera_pubs: dict = {}
        self._gt_pubs: dict = {}
        self._next: CaptureFrame | None = None   # fetched, waiting for its due time
        self._pacer = StampPacer()
        self._last_stamp_ns: int | None = None
        super().__init__(node_name, **kwargs)
        self.add_post_set_parameters_callback(self._on_parameters_set)

    # -- QoS ----------------------------------------------------------------------
    @staticmethod
    def camera_output_qos() -> QoSProfile:
        """Camera outputs: reliable, keep-last depth 5, volatile.

        Not sensor-data (best-effort) QoS: that suits a *subscriber* of a camera,
        but a best-effort *publisher* does not match reliable subscribers (the bag
        recorder, tests, rviz set to reliable), while a reliable publisher matches
        reliable and best-effort subscribers alike -- every consumer in the graph
        chooses for itself (``input_reliability``). Depth 5 instead of the results'
        10: images are large (640x480 rgb8 is 0.9 MB) and a subscriber that is more
        than 5 frames behind needs new frames, not old ones.
        """
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                          durability=DurabilityPolicy.VOLATILE)

    @property
    def output_publishers(self) -> dict:
        """{relative topic: publisher} of everything this node publishes frames on."""
        return {**self._camera_pubs, **self._gt_pubs}

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        with self._lock:
            self.configure_error = None
            if not self.param("frame_id"):
                raise ValueError("frame_id is empty: set it to the colour camera's optical frame")
            try:
                self.source = self._open_source()
            except Exception as e:   # the base logs it as one line and fails the transition
                self.configure_error = str(e) if isinstance(e, SourceError) else f"{type(e).__name__}: {e}"
                raise
            try:
                qos = self.camera_output_qos()
                self._camera_pubs = {COLOR_TOPIC: self.create_publisher(Image, COLOR_TOPIC, qos),
                                     DEPTH_TOPIC: self.create_publisher(Image, DEPTH_TOPIC, qos),
                                     INFO_TOPIC: self.create_publisher(CameraInfo, INFO_TOPIC, qos)}
                if self.source.has_joint_states and self.param("publish_joint_states"):
                    self._camera_pubs[JOINT_STATES_TOPIC] = self.create_publisher(JointState, JOINT_STATES_TOPIC,
                                                                                  self.output_qos())
                if self.source.has_ground_truth and self.param("publish_ground_truth"):
                    self._create_ground_truth_publishers()
            except Exception:
                self.on_cleanup_hook()   # a failed configure leaves nothing open
                raise
            self.frames_published, self.source_ended = 0, False
            self._next, self._last_stamp_ns = None, None
            self.get_logger().info(f"source: {self.source.name}")

    def _open_source(self) -> FrameSource:
        kind = self.param("source")
        if kind == "synthetic":
            return SyntheticSource(self.param("config") or None, self.param("seed"))
        if kind == "bag":
            # restamp is applied at publication (as for every source), so realtime
            # pacing can still follow the recorded stamps
            return BagSource(self.param("bag_path"), self.param("bag_namespace"), loop=self.param("loop"))
        if kind == "folder":
            return FolderSource(self.param("folder_path"), loop=self.param("loop"))
        return RealSenseSource(self.param("width"), self.param("height"), self.param("fps"))

    def _create_ground_truth_publishers(self) -> None:
        from geometry_msgs.msg import PoseStamped

        from hrc_perception.msg import InstanceArray, ObjectPoseArray, Skeleton, SkeletonArray
        from hrc_perception.ros.ground_truth_msgs import (GT_HUMAN_SKELETONS_TOPIC, GT_INSTANCES_TOPIC,
                                                          GT_OBJECT_POSES_TOPIC, GT_ROBOT_BASE_POSE_TOPIC,
                                                          GT_ROBOT_SKELETON_TOPIC)
        for topic, msg_type in ((GT_ROBOT_SKELETON_TOPIC, Skeleton), (GT_HUMAN_SKELETONS_TOPIC, SkeletonArray),
                                (GT_OBJECT_POSES_TOPIC, ObjectPoseArray), (GT_INSTANCES_TOPIC, InstanceArray),
                                (GT_ROBOT_BASE_POSE_TOPIC, PoseStamped)):
            if topic not in self._gt_pubs:
                self._gt_pubs[topic] = self.create_publisher(msg_type, topic, self.output_qos())

    def on_activate_hook(self) -> None:
        with self._lock:
            if self.source_ended:
                self.get_logger().info(f"{self.source.name} has ended: cleanup and configure to start again")
                return
            self._pacer.reset()
            self._start_timer()

    def on_deactivate_hook(self) -> None:
        with self._lock:
            self._stop_timer()

    def on_cleanup_hook(self) -> None:
        with self._lock:
            self._stop_timer()
            for pub in self.output_publishers.values():
                self.destroy_publisher(pub)
            self._camera_pubs, self._gt_pubs = {}, {}
            self._close_source()

    def _close_source(self) -> None:
        if self.source is not None:
            source, self.source, self._next = self.source, None, None
            source.close()

    def destroy_node(self) -> None:
        with self._lock:
            self._stop_timer()
            self._close_source()
        super().destroy_node()

    # -- pacing ---------------------------------------------------------------------
    def _paced_by_stamps(self) -> bool:
        return bool(self.param("realtime")) and self.source.timed

    def _start_timer(self) -> None:
        self._stop_timer()
        rate = self.param("rate_hz")
        if self._paced_by_stamps() or self.source.live or rate <= 0:
            period_s = 0.0   # stamps: re-armed per frame; live: the device waits; 0: as fast as possible
        else:
            period_s = 1.0 / rate
        self._timer = self.create_timer(period_s, self._on_timer)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def _arm(self, delay_s: float) -> None:
        """Fire the timer once delay_s (seconds) from now."""
        period_ns = max(0, int(delay_s * 1e9))
        if self._timer.timer_period_ns != period_ns:
            self._timer.timer_period_ns = period_ns
        self._timer.reset()

    def _on_parameters_set(self, params) -> None:
        names = {p.name for p in params}
        with self._lock:
            if names & {"rate_hz", "realtime"} and self._timer is not None:
                self._pacer.reset()
                self._start_timer()
            if ("publish_ground_truth" in names and self.param("publish_ground_truth") and self.source is not None
                    and self.source.has_ground_truth):
                self._create_ground_truth_publishers()

    # -- publishing -------------------------------------------------------------------
    def _on_timer(self) -> None:
        with self._lock:
            if self._timer is None or self.source is None:
                return
            frame = self._next
            if frame is None:
                try:
                    frame = self.source.next_frame()
                except Exception as e:   # one unreadable frame: count it, go on with the next
                    self.report("source_error", str(e) if isinstance(e, SourceError) else f"{type(e).__name__}: {e}")
                    return
                if frame is None:
                    self._end_of_source()
                    return
            paced = self._paced_by_stamps() and frame.stamp_ns is not None
            if paced:
                delay_s = self._pacer.delay_s(frame.stamp_ns, time.monotonic())
                if delay_s > PACING_SLACK_S:
                    self._next = frame
                    self._arm(delay_s)
                    return
            self._next = None
            self.publish_frame(frame)
            if paced:
                self._arm(0.0)   # fetch the next frame now, then wait for its due time

    def _end_of_source(self) -> None:
        self.source_ended = True
        self._stop_timer()
        self.get_logger().info(f"end of {self.source.name} after {self.frames_published} frames: publishing "
                               "stopped, the node stays up (cleanup + configure to start again)")

    def publish_frame(self, frame: CaptureFrame) -> bool:
        """Publish one frame on every output with one header; False (and a report) if it was skipped."""
        problem = frame_problem(frame)
        if problem:
            self.report(*problem)
            return False
        if self.param("restamp") or frame.stamp_ns is None:
            stamp_ns = self.get_clock().now().nanoseconds
        else:
            stamp_ns = int(frame.stamp_ns)
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns and not self.param("loop"):
            self.report("stamp_not_increasing", f"frame stamp {stamp_ns} ns is not after the previous "
                        f"{self._last_stamp_ns} ns (published anyway)")
        try:
            msgs, gt_error = frame_messages(frame, stamp_ns, self.param("frame_id"),
                                            joint_states=JOINT_STATES_TOPIC in self._camera_pubs,
                                            ground_truth=self.param("publish_ground_truth") and bool(self._gt_pubs))
        except ImageConversionError as e:
            self.report("bad_image", str(e))
            return False
        except CameraInfoError as e:
            self.report("bad_camera_info", str(e))
            return False
        if gt_error:
            self.report("ground_truth_error", gt_error)
        publishers = self.output_publishers
        for topic, msg in msgs.items():
            if topic not in publishers:
                self.report("unknown_topic", f"no publisher for {topic!r} ({type(msg).__name__})")
                continue
            try:
                publishers[topic].publish(msg)
            except Exception:
                if not self.context.ok():   # Ctrl-C shut the context down mid-frame: stop quietly
                    return False
                raise
        self.frames_published += 1
        self._last_stamp_ns = stamp_ns
        return True


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception rgbd_capture [--ros-args -p source:=bag -p bag_path:=...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(RgbdCaptureNode, args)
