"""The robot_pose node: the robot's skeleton from depth (SPDH) and, with joint_states,
the camera-to-robot pose without markers.

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                        | type                        | QoS              |
|------------------------------|-----------------------------|------------------|
| ``camera/depth/image_raw``   | sensor_msgs/Image 16UC1 mm / 32FC1 m, aligned to colour | input QoS |
| ``camera/color/camera_info`` | sensor_msgs/CameraInfo      | input QoS        |
| ``joint_states``             | sensor_msgs/JointState      | reliable, depth 10 |

Publishes, once per depth image, with its header (the colour image's stamp and frame):

| topic                 | type                           | when                          |
|-----------------------|--------------------------------|-------------------------------|
| ``robot/skeleton``    | hrc_perception/Skeleton        | every depth image             |
| ``robot/base_pose``   | geometry_msgs/PoseStamped      | with a camera-to-robot fit    |
| ``robot_pose/markers``| visualization_msgs/MarkerArray | every skeleton                |

and, where ``tf2_ros`` is installed (the PyPI ROS wheels have none: then only
``robot/base_pose``), the same pose on TF (:func:`camera_tf`). By default (REP-105,
``tf_direction: base_to_camera``) the camera hangs in the robot's tree: parent the robot
base (``base_frame_id``, '' = the URDF's root link, the root of robot_state_publisher's
tree), child the camera (``camera_frame_id``, '' = the images' frame_id, e.g.
``camera_color_optical_frame``), so no frame gets a second parent. A ``camera_frame_id``
other than the images' frame (e.g. the driver's ``camera_link``, parent of its optical
frames) is placed through the driver's TF from the images' frame to it; until that TF is
known no transform is sent (``no_camera_frame_tf``). ``tf_direction: camera_to_base`` is
the old tree: parent the camera, child the robot base (for a cell whose robot has no other
TF parent). ``robot/base_pose`` is the same in both: the base in the images' frame.

Skeleton: ``model`` = the robot's name (model card), ``id`` 0, the model card's
keypoint names (URDF links), positions in the camera optical frame (metres) of the
joints whose confidence is >= ``min_confidence``, NaN for the others (never an
invented joint); confidence per joint; pixel u, v; visibility VIS_VISIBLE for a
confident joint, VIS_OCCLUDED for an unconfident one inside the image, VIS_OUTSIDE
outside it.

Camera-to-robot: when a ``joint_states`` message (the nearest in stamp of the last 50,
:class:`~hrc_perception.ros.sync.StampBuffer`) no older (or newer) than
``joint_states_max_age_s`` against the depth stamp names every arm joint of the
robot's URDF (a driver's message for the same instant is often delivered after the depth
image's callback: the newest frame waits for it), forward kinematics gives the
keypoints in the base frame; the pairs of
the last ``calibration_window_s`` seconds are fitted robustly
(:class:`~hrc_perception.robot_pose.extrinsics.ExtrinsicsEstimator`); with
``calibration_depth_refine`` that fit is refined by aligning the robot's surface,
posed by the joint_states, to the depth of up to ``calibration_views`` frames of the
window (:mod:`~hrc_perception.robot_pose.surface_fit`; the keypoint fit is kept
when too little of the robot pairs up or the alignment would move it beyond the range
it converges from). The result is published as
``robot/base_pose`` (the pose of the base link in the camera frame). With
``expected_base_pose`` ([x, y, z, qx, qy, qz, qw], the extrinsic in use) the
diagnostics carry ``calibration_drift`` (cm and deg) and go to WARN when it exceeds
``drift_warn_m`` or ``drift_warn_deg``.

Lifecycle: deactivate frees the network and activate loads it again (deactivate +
activate 0.1 s with the shipped model on the 2-core CPU machine it was measured on); the
robot's URDF model with its meshes and the surface model of the depth refinement (most of
configure's 4.2 s there) are kept across deactivate, as is the calibration window, and
freed on cleanup.

Bad input never stops the node. Counted with ``report()``: ``no_camera_info``,
``bad_camera_info``, ``bad_depth``, ``size_mismatch``, ``predict_error``,
``joint_states_stale`` (none near the depth stamp), ``joint_states_unusable``
(missing arm joints, unknown names only, non-finite values), ``fit_failed`` (too few
confident keypoints in the window, or only ones along a line such as the base's: no
pose is published rather than a bad one), ``depth_refine_failed`` (too little of the
robot's surface pairs up with the depth, or the alignment moved too far to trust: the
keypoint fit is published), ``no_camera_frame_tf`` (no TF from the images' frame to
``camera_frame_id``: robot/base_pose only).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TransformStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.msg import Skeleton
from hrc_perception.engines import ENGINES
from hrc_perception.geometry import invert_T, pose_error
from hrc_perception.robot_pose.extrinsics import ExtrinsicsEstimator, joint_positions
from hrc_perception.robot_pose.surface_fit import SurfaceView
from hrc_perception.ros.convert import (copy_header, duration_msg, matrix_to_pose, matrix_to_transform,
                                        pose_parameter_to_matrix, skeleton_to_msg, stamp_to_ns, transform_to_matrix)
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.ros.sync import StampBuffer
from hrc_perception.ros.weights import resolve_weights

DEPTH_TOPIC = "camera/depth/image_raw"
CAMERA_INFO_TOPIC = "camera/color/camera_info"
JOINT_STATES_TOPIC = "joint_states"
SKELETON_TOPIC = "robot/skeleton"
BASE_POSE_TOPIC = "robot/base_pose"
MARKERS_TOPIC = "robot_pose/markers"
WEIGHTS_RELPATH = Path("models") / "robot_pose" / "model.pt"
NO_WEIGHTS_MESSAGE = "no robot pose weights: train with `hrc-perception train robot_pose` or set weights"
NS_PER_S = 1_000_000_000
JOINT_STATES_KEPT = 50     # the latest joint_states (by stamp) a depth image is paired with
TF_DIRECTIONS = ("base_to_camera", "camera_to_base")


def camera_tf(header: Header, T_img_base: np.ndarray, base_frame: str, camera_frame: str = "",
              direction: str = "base_to_camera", T_img_camera: np.ndarray | None = None) -> TransformStamped:
    """The TF message of a camera-to-robot pose (pure: no tf2_ros needed).

    header: of the depth image the pose is for (stamp; frame_id = the images' optical frame).
    T_img_base [4, 4]: the robot base in the images' frame (what ``robot/base_pose`` carries).
    camera_frame: the camera's TF frame ('' = header.frame_id); T_img_camera [4, 4]: that
    frame in the images' frame (None = identity: the images' own frame).
    direction ``base_to_camera`` (REP-105): parent base_frame, child camera_frame, transform
    T_base_camera; ``camera_to_base``: parent camera_frame, child base_frame, T_camera_base.
    """
    if direction not in TF_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(TF_DIRECTIONS)}, got {direction!r}")
    camera_frame = camera_frame or header.frame_id
    T_camera_base = np.asarray(T_img_base, np.float64)
    if T_img_camera is not None:
        T_camera_base = invert_T(T_img_camera) @ T_camera_base
    if direction == "base_to_camera":
        parent, child, T = base_frame, camera_frame, invert_T(T_camera_base)
    else:
        parent, child, T = camera_frame, base_frame, T_camera_base
    return TransformStamped(header=Header(stamp=header.stamp, frame_id=parent), child_frame_id=child,
                            transform=matrix_to_transform(T))


def skeleton_markers(msg: Skeleton, lifetime_s: float) -> MarkerArray:
    """The skeleton's confident joints as spheres and the links between them as lines."""
    life = duration_msg(lifetime_s)
    pts = [(j, p) for j, p in enumerate(msg.positions) if np.isfinite([p.x, p.y, p.z]).all()]
    color = ColorRGBA(r=1.0, g=0.55, b=0.1, a=1.0)
    joints = Marker(header=copy_header(msg.header), ns="robot_joints", id=0, type=Marker.SPHERE_LIST,
                    action=Marker.ADD, lifetime=life, color=color)
    joints.scale.x = joints.scale.y = joints.scale.z = 0.04
    joints.pose.orientation.w = 1.0
    joints.points = [p for _, p in pts]
    links = Marker(header=copy_header(msg.header), ns="robot_links", id=0, type=Marker.LINE_LIST,
                   action=Marker.ADD, lifetime=life, color=color)
    links.scale.x = 0.015
    links.pose.orientation.w = 1.0
    present = dict(pts)
    for j in range(len(msg.positions) - 1):
        if j in present and j + 1 in present:
            links.points += [present[j], present[j + 1]]
    return MarkerArray(markers=[joints, links])


class RobotPoseNode(HrcNode):
    """SPDH on camera/depth/image_raw (see the module doc); node name default 'robot_pose'.

    After construction: ``predictor`` (None unless configured; None again after a deactivate), ``robot`` (the URDF
    model for forward kinematics), ``weights_path``, ``configure_error``,
    ``frames_processed``, ``last_fit`` (RigidFit or None: the keypoint fit),
    ``last_surface_fit`` (SurfaceFit or None: its refinement on the depth), ``drift`` ((m, deg) or None),
    ``last_inference_s``.
    """

    MODEL_ATTR = "predictor"
    PARAMS = (
        ParamSpec("weights", "", "robot pose model (hrc-perception train robot_pose); '' = the shipped "
                  "models/robot_pose/model.pt", read_only=True),
        ParamSpec("device", "cpu", "torch device of the model", choices=("cpu", "cuda"), read_only=True),
        ParamSpec("engine", "onnxruntime", "what runs the network: torch (the reference), onnxruntime or openvino "
                  "(fp32, CPU only; outputs within 1e-4 of torch: hrc-perception bench engines)", choices=ENGINES,
                  read_only=True),
        ParamSpec("min_confidence", 0.3, "joints below this heatmap peak are unknown (NaN), never guessed",
                  min_value=0.0, max_value=1.0),
        ParamSpec("joint_states_max_age_s", 0.1, "largest stamp difference (s) between a depth image and the "
                  "joint_states used with it", min_value=0.0, max_value=10.0),
        ParamSpec("calibration_window_s", 3.0, "seconds of frames pooled in the camera-to-robot fit",
                  min_value=0.1, max_value=600.0),
        ParamSpec("calibration_inlier_m", 0.04, "keypoints further than this from the fit are outliers (m)",
                  min_value=0.001, max_value=1.0),
        ParamSpec("calibration_min_points", 8, "fewest inlier keypoints (over the window) for a fit",
                  min_value=3, max_value=100000),
        ParamSpec("calibration_depth_refine", True, "refine the keypoint fit on the depth (the robot's "
                  "surface posed by joint_states, aligned to the depth images)", read_only=True),
        ParamSpec("calibration_views", 8, "most depth frames of the window the refinement aligns to",
                  min_value=1, max_value=100, read_only=True),
        ParamSpec("expected_base_pose", [""], "the extrinsic in use, robot base in the camera frame: "
                  "[x, y, z, qx, qy, qz, qw] as strings ('' = none; then no drift check)"),
        ParamSpec("drift_warn_m", 0.02, "calibration_drift warns above this translation (m)",
                  min_value=0.0, max_value=10.0),
        ParamSpec("drift_warn_deg", 2.0, "calibration_drift warns above this rotation (deg)",
                  min_value=0.0, max_value=180.0),
        ParamSpec("base_frame_id", "", "TF frame of the robot base ('' = the URDF's root link)"),
        ParamSpec("camera_frame_id", "", "TF frame of the camera ('' = the images' frame_id); another frame is "
                  "placed through the driver's TF from the images' frame to it", read_only=True),
        ParamSpec("tf_direction", "base_to_camera", "TF tree: base_to_camera (REP-105: the camera a child of the "
                  "robot base) or camera_to_base (the robot base a child of the camera)", choices=TF_DIRECTIONS,
                  read_only=True),
        ParamSpec("markers", True, "publish robot_pose/markers"),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of each marker (s)", min_value=0.0, max_value=3600.0),
    )

    def __init__(self, node_name: str = "robot_pose", **kwargs):
        self.predictor = None
        self.robot = None
        self.weights_path: Path | None = None
        self.configure_error: str | None = None
        self.frames_processed = 0
        self.last_fit = None
        self.last_surface_fit = None
        self._refined_for: tuple[float, ...] | None = None    # the view stamps of the last refinement
        self.drift: tuple[float, float] | None = None
        self.last_inference_s = float("nan")
        self._subs: list = []
        self._pubs: dict = {}
        self._camera_info: CameraInfo | None = None
        self._joint_states = StampBuffer(JOINT_STATES_KEPT)
        self._waiting = None      # (header, skeleton, view) of a frame whose joint states have not come yet
        self._estimator = None
        self._expected_T = None
        self._tf = None
        self._tf_buffer = self._tf_listener = None    # for camera_frame_id other than the images' frame
        super().__init__(node_name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self.load_model_or_fail(self._load_all)
        q = self.output_qos()
        self._pubs = {"skeleton": self.create_publisher(Skeleton, SKELETON_TOPIC, q),
                      "base_pose": self.create_publisher(PoseStamped, BASE_POSE_TOPIC, q),
                      "markers": self.create_publisher(MarkerArray, MARKERS_TOPIC, q)}
        self._subs = [self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, self.input_qos()),
                      self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_states, q),
                      self.create_subscription(Image, DEPTH_TOPIC, self._on_depth, self.input_qos())]
        try:
            from tf2_ros import TransformBroadcaster
            self._tf = TransformBroadcaster(self)
            if self.param("camera_frame_id"):
                from tf2_ros import Buffer, TransformListener
                self._tf_buffer = Buffer()
                self._tf_listener = TransformListener(self._tf_buffer, self)
        except ImportError:
            self._tf = self._tf_buffer = None
        self.frames_processed = 0
        self.last_fit = self.last_surface_fit = self._refined_for = None
        tf = self.param("tf_direction") if self._tf is not None else "off (no tf2_ros): robot/base_pose only"
        self.get_logger().info(f"weights {self.weights_path}: robot {self.predictor.card['robot']['name']}, "
                               f"keypoints {', '.join(self.predictor.names)}; TF {tf}")

    def _load_all(self) -> None:
        """The network, and what is kept across deactivate: the robot's URDF model (with its
        meshes for the depth refinement) and the camera-to-robot estimator."""
        from hrc_perception.robot_pose.evaluate import robot_model_of_card
        from hrc_perception.robot_pose.surface_fit import robot_surface
        self._expected_T = pose_parameter_to_matrix(self.param("expected_base_pose"), "expected_base_pose")
        self.load_model()
        refine = self.param("calibration_depth_refine")
        self.robot = robot_model_of_card(self.predictor.card, load_meshes=refine)
        surface = robot_surface(self.robot) if refine else None
        self._estimator = ExtrinsicsEstimator(self.param("calibration_window_s"), self.param("calibration_inlier_m"),
                                              self.param("calibration_min_points"), robot=self.robot, surface=surface,
                                              max_views=self.param("calibration_views"))

    def load_model(self) -> None:
        """The network only (freed on deactivate, loaded again on activate)."""
        from hrc_perception.robot_pose.predictor import RobotPosePredictor
        path = resolve_weights(self.param("weights"), WEIGHTS_RELPATH, NO_WEIGHTS_MESSAGE)
        self.predictor = RobotPosePredictor(path, device=self.param("device"), engine=self.param("engine"))
        self.weights_path = path

    def on_cleanup_hook(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._subs, self._pubs = [], {}
        self._camera_info = None
        self._joint_states.clear()
        self._waiting = None
        self.robot = self._estimator = self._tf = self._tf_buffer = self._tf_listener = None   # the base: the model

    # -- inputs -----------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_joint_states(self, msg: JointState) -> None:
        if not self.is_active:
            return
        self._joint_states.add(msg)
        if self._waiting is not None:      # a frame waiting for the joint states of its stamp
            header, sk, view = self._waiting
            stamp_ns = stamp_to_ns(header.stamp)
            js = self._joint_states_for(stamp_ns)
            if js is not None:
                self._waiting = None
                self._calibrate(header, sk, view, js)
            elif stamp_to_ns(msg.header.stamp) > stamp_ns + self.param("joint_states_max_age_s") * NS_PER_S:
                self._waiting = None       # past its stamp: none will come for it
                self._report_stale()

    def _joint_states_for(self, stamp_ns: int) -> JointState | None:
        return self._joint_states.nearest(stamp_ns, round(self.param("joint_states_max_age_s") * NS_PER_S))

    def _report_stale(self) -> None:
        self.report("joint_states_stale", f"no {JOINT_STATES_TOPIC} within joint_states_max_age_s of the depth "
                    "stamp: skeleton only, no camera-to-robot fit")

    def _on_depth(self, msg: Image) -> None:
        with self.model_lock:      # a deactivate frees the model, not while it runs
            if not self.is_active or self.predictor is None:
                return
            estimate = self.estimate(msg)
            robot_name = self.predictor.card["robot"]["name"]
        if estimate is None:
            return
        sk, view = estimate
        out = skeleton_to_msg(msg.header, robot_name, 0, sk.names, sk.xyz_cam_m, sk.valid, sk.confidence, sk.uv_px,
                              (msg.height, msg.width))
        self._pubs["skeleton"].publish(out)
        self.frames_processed += 1
        if self.param("markers"):
            self._pubs["markers"].publish(skeleton_markers(out, self.param("marker_lifetime_s")))
        if not self._joint_states:
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        js = self._joint_states_for(stamp_ns)
        if js is not None:
            self._calibrate(msg.header, sk, view, js)
        elif self._joint_states.newest_ns() < stamp_ns:
            # the joint states of this stamp may still be queued behind this callback: the
            # frame waits for them (the newest frame only; one it replaces had none in time)
            if self._waiting is not None:
                self._report_stale()
            self._waiting = (msg.header, sk, view)
        else:
            self._report_stale()

    # -- estimation -------------------------------------------------------------------
    def estimate(self, msg: Image):
        """(RobotSkeleton, (XYZ image [h, w, 3], its K [3, 3]): the network's input) of
        one depth image, or None after reporting why."""
        images = self.depth_and_K(msg, self._camera_info)
        if images is None:
            return None
        depth_m, K = images
        from hrc_perception.robot_pose.predictor import depth_to_input_xyz
        self.predictor.min_confidence = self.param("min_confidence")
        t0 = time.perf_counter()
        try:
            xyz, K_xyz = depth_to_input_xyz(depth_m, K, self.predictor.build.input_hw)
            sk = self.predictor.predict_xyz(xyz, K_xyz, depth_m.shape)
        except Exception as e:  # noqa: BLE001 - a failed estimate must not stop the node
            self.report("predict_error", f"{type(e).__name__}: {e}")
            return None
        self.last_inference_s = time.perf_counter() - t0
        return sk, (xyz, K_xyz)

    def _calibrate(self, header: Header, sk, view: tuple[np.ndarray, np.ndarray], js: JointState) -> None:
        """Add one frame (its skeleton, network input view and the joint states paired
        with it) to the camera-to-robot fit and publish the result."""
        stamp = stamp_to_ns(header.stamp)
        q, why = joint_positions(self.robot.joint_names, list(js.name), list(js.position), self.robot.arm_joint_mask)
        if q is None:
            self.report("joint_states_unusable", why)
            return
        est = self._estimator
        est.window_s, est.inlier_m = self.param("calibration_window_s"), self.param("calibration_inlier_m")
        est.min_points = self.param("calibration_min_points")
        est.add(stamp / NS_PER_S, self.robot.keypoints(q), sk.xyz_cam_m, sk.confidence, sk.valid,
                SurfaceView(q, *view))
        fit = est.estimate()
        if fit is None:
            self.report("fit_failed", f"fewer than {est.min_points} confident keypoints agree over the last "
                        f"{est.window_s:g} s, or they lie along a line (only the base seen well): no robot/base_pose")
            return
        self.last_fit = fit
        if est.view_stamps != self._refined_for:      # new depth to align to: refine (once per set of views)
            self._refined_for = est.view_stamps
            self.last_surface_fit = est.refine(fit.T)
            if self.last_surface_fit is None and est.num_views:
                self.report("depth_refine_failed", "too little of the robot's surface pairs up with the depth, or "
                            "the alignment moved too far to trust: robot/base_pose from the keypoints alone")
        T = self.base_pose_T
        self._pubs["base_pose"].publish(PoseStamped(header=copy_header(header), pose=matrix_to_pose(T)))
        if self._tf is not None:
            self._send_tf(header, T)
        if self._expected_T is not None:
            self.drift = pose_error(T, self._expected_T)

    def _send_tf(self, header: Header, T_img_base: np.ndarray) -> None:
        """The camera-to-robot pose on TF (see the module doc)."""
        camera_frame = self.param("camera_frame_id") or header.frame_id
        T_img_camera = None
        if camera_frame != header.frame_id:
            try:
                from rclpy.time import Time
                T_img_camera = transform_to_matrix(
                    self._tf_buffer.lookup_transform(header.frame_id, camera_frame, Time()).transform)
            except Exception as e:  # noqa: BLE001 - tf2's lookup errors: no TF this frame
                self.report("no_camera_frame_tf", f"no TF from {header.frame_id!r} to camera_frame_id "
                            f"{camera_frame!r} ({type(e).__name__}): robot/base_pose only")
                return
        self._tf.sendTransform(camera_tf(header, T_img_base, self.param("base_frame_id") or self.robot.base_link,
                                         camera_frame, self.param("tf_direction"), T_img_camera))

    @property
    def base_pose_T(self) -> np.ndarray | None:
        """T_cam_base [4, 4] last published: the depth refinement, else the keypoint fit (None before any)."""
        if self.last_surface_fit is not None:
            return self.last_surface_fit.T
        return None if self.last_fit is None else self.last_fit.T

    def diagnostic_values(self) -> dict[str, str]:
        out = {"frames": str(self.frames_processed)}
        if self.last_fit is not None:
            T = self.base_pose_T
            out["base_pose_xyz_m"] = f"{T[0, 3]:.3f} {T[1, 3]:.3f} {T[2, 3]:.3f}"
            out["fit"] = (f"{self.last_fit.num_inliers} inliers over {self.last_fit.num_frames} frames, rms "
                          f"{100 * self.last_fit.rms_m:.1f} cm")
        if self.last_surface_fit is not None:
            sf = self.last_surface_fit
            out["depth_refine"] = f"{sf.pairs} surface points over {sf.frames} frames, rms {100 * sf.rms_m:.1f} cm"
        if self.drift is not None:
            out["calibration_drift"] = f"{100 * self.drift[0]:.1f} cm, {self.drift[1]:.1f} deg"
        return out

    def diagnostic_check(self) -> tuple[int, str] | None:
        """WARN while the camera-to-robot estimate is further than drift_warn_* from the extrinsic in use."""
        if self.drift is not None and (self.drift[0] > self.param("drift_warn_m")
                                       or self.drift[1] > self.param("drift_warn_deg")):
            return DiagnosticStatus.WARN, (f"calibration_drift {100 * self.drift[0]:.1f} cm, {self.drift[1]:.1f} deg "
                                           "from expected_base_pose")
        return None


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception robot_pose [--ros-args -p weights:=models/robot_pose/model.pt ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(RobotPoseNode, args)
