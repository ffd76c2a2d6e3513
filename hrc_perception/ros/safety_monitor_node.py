"""The safety_monitor node: ISO/TS 15066 speed and separation monitoring from the people's
skeletons and the robot (:mod:`hrc_perception.safety`).

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                        | type                          | used                                   |
|------------------------------|-------------------------------|----------------------------------------|
| ``humans/skeletons``         | hrc_perception/SkeletonArray  | the people (ids = track ids)           |
| ``robot/skeleton``           | hrc_perception/Skeleton       | the robot, ``robot_source: skeleton``  |
| ``joint_states``             | sensor_msgs/JointState        | the robot, ``robot_source: joint_states`` |
| ``robot/base_pose``          | geometry_msgs/PoseStamped     | camera-to-robot pose for joint_states |
| ``tracking/tracks``          | hrc_perception/TrackArray     | people seen without a skeleton         |
| ``camera/color/camera_info`` | sensor_msgs/CameraInfo        | the newest capture stamp (the clock), K |
| ``camera/depth/image_raw``   | sensor_msgs/Image             | reach spheres carved, ``depth_carving`` |

Publishes ``safety/status`` (SafetyStatus, reliable) after every SkeletonArray and at
``check_rate_hz`` in between (so a stalled pipeline turns into UNKNOWN), and
``safety_monitor/markers``: the closest pair as a line and a label coloured by level
(green OK, amber WARNING, red PROTECTIVE_STOP, grey UNKNOWN) and a translucent sphere
of radius S_p around the robot's closest point (the zone the person must stay out of).

Clock: ages are measured against the newest input stamp plus the time since it arrived
(:class:`~hrc_perception.safety.clock.StampClock`), so recorded and live stamps both work.
The status header's stamp is the camera frame the verdict is about: the people
skeletons' stamp (the robot's before any people message, the node clock's now before
any of them); ``data_age_s`` is the oldest input's age; the frame is the people's
(camera optical). The first status of a stamp, received, minus that stamp is the
camera-to-verdict latency.

Robot: ``skeleton`` takes robot/skeleton as it is (an unknown joint makes the verdict
UNKNOWN); ``joint_states`` computes the skeleton by forward kinematics of the URDF
(``robot_urdf``, keypoints ``robot_keypoints``) placed with the camera-to-robot pose
(``base_pose`` [x, y, z, qx, qy, qz, qw] as strings, or the latest robot/base_pose).
The robot's speed is the fastest skeleton joint's, from a One Euro filter over time;
each person's speed is the median joint's per track id (the body's speed, robust to a
joint whose depth jumps; 1.6 m/s until two skeletons were seen), at least
``min_human_speed_mps``.

Unknown joints: with ``depth_carving``, each person's reach spheres (the places an
unknown joint could be) are carved by the depth image of the skeletons' own stamp
(:mod:`hrc_perception.safety.carving`; K from camera_info, which must match the depth
image's size). Without that frame's depth the spheres stay whole (counted:
``carving_without_depth``).

People seen without a skeleton: the person tracks matched (time_since_update 0) in the
TrackArray of the skeletons' stamp or in the newest TrackArray whose id has no skeleton.

Fail-safe rules and levels: :mod:`hrc_perception.safety.monitor`. Bad input never stops
the node; it is counted (``report``) and the verdict fails safe.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import replace

import numpy as np
from geometry_msgs.msg import Point, PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from hrc_perception.human_pose.smoothing import OneEuroFilter, OneEuroParams, SkeletonSmoother, speed_mps
from hrc_perception.msg import SafetyStatus, Skeleton, SkeletonArray, TrackArray
from hrc_perception.ros.convert import (camera_info_to_K, copy_header, depth_to_meters, duration_msg, ns_to_stamp,
                                        pose_parameter_to_matrix, pose_to_matrix, stamp_to_ns)
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.safety.carving import PooledDepth, pool_depth
from hrc_perception.safety.clock import StampClock
from hrc_perception.safety.monitor import (LEVEL_NAMES, OK, PROTECTIVE_STOP, UNKNOWN, WARNING, MonitorParams,
                                           PersonState, RobotState, Verdict, assess, monitor_params)

HUMANS_TOPIC = "humans/skeletons"
ROBOT_TOPIC = "robot/skeleton"
JOINT_STATES_TOPIC = "joint_states"
BASE_POSE_TOPIC = "robot/base_pose"
TRACKS_TOPIC = "tracking/tracks"
CAMERA_INFO_TOPIC = "camera/color/camera_info"
DEPTH_TOPIC = "camera/depth/image_raw"
DEPTH_FRAMES_KEPT = 30             # pooled depth frames kept for pairing with skeletons by stamp
STATUS_TOPIC = "safety/status"
MARKERS_TOPIC = "safety_monitor/markers"
NS_PER_S = 1_000_000_000
LEVEL_COLORS = {OK: (0.1, 0.8, 0.2), WARNING: (1.0, 0.65, 0.0), PROTECTIVE_STOP: (0.9, 0.05, 0.05),
                UNKNOWN: (0.5, 0.5, 0.5)}


def status_msg(v: Verdict, header: Header) -> SafetyStatus:
    return SafetyStatus(header=header, level=int(v.level), min_distance_m=float(v.min_distance_m),
                        protective_separation_distance_m=float(v.separation_m), speed_scale=float(v.speed_scale),
                        closest_human_id=int(v.closest_human_id), closest_human_joint=v.closest_human_joint,
                        closest_robot_joint=v.closest_robot_joint,
                        data_age_s=float(v.data_age_s) if math.isfinite(v.data_age_s) else float("nan"),
                        reason=v.reason)


def status_markers(v: Verdict, header: Header, lifetime_s: float) -> MarkerArray:
    """Closest-pair line + label, and the S_p sphere around the robot's closest point."""
    life = duration_msg(lifetime_s)
    r, g, b = LEVEL_COLORS[v.level]
    out = MarkerArray()
    if v.point_human_m is None or v.point_robot_m is None:
        clear = Marker(header=copy_header(header), action=Marker.DELETEALL)
        out.markers.append(clear)
        return out
    ph, pr = (Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in (v.point_human_m, v.point_robot_m))
    line = Marker(header=copy_header(header), ns="safety_distance", id=0, type=Marker.LINE_LIST, action=Marker.ADD,
                  lifetime=life, color=ColorRGBA(r=r, g=g, b=b, a=1.0), points=[ph, pr])
    line.scale.x = 0.02
    line.pose.orientation.w = 1.0
    label = Marker(header=copy_header(header), ns="safety_label", id=0, type=Marker.TEXT_VIEW_FACING,
                   action=Marker.ADD, lifetime=life, color=ColorRGBA(r=r, g=g, b=b, a=1.0),
                   text=f"{LEVEL_NAMES[v.level]} {v.min_distance_m:.2f} m (S_p {v.separation_m:.2f})")
    label.pose.position = Point(x=(ph.x + pr.x) / 2, y=(ph.y + pr.y) / 2 - 0.1, z=(ph.z + pr.z) / 2)
    label.pose.orientation.w = 1.0
    label.scale.z = 0.08
    zone = Marker(header=copy_header(header), ns="safety_zone", id=0, type=Marker.SPHERE, action=Marker.ADD,
                  lifetime=life, color=ColorRGBA(r=r, g=g, b=b, a=0.15))
    zone.pose.position = pr
    zone.pose.orientation.w = 1.0
    zone.scale.x = zone.scale.y = zone.scale.z = 2.0 * max(float(v.separation_m), 0.01)
    out.markers += [line, label, zone]
    return out


class SafetyMonitorNode(HrcNode):
    """Speed and separation monitoring (see the module doc); node name default 'safety_monitor'.

    After construction: ``last_verdict`` (Verdict or None), ``verdicts`` (count),
    ``level_counts`` (level name -> count).
    """

    PARAMS = (
        ParamSpec("robot_source", "skeleton", "where the robot's geometry comes from: robot/skeleton, or "
                  "joint_states + forward kinematics + the camera-to-robot pose",
                  choices=("skeleton", "joint_states"), read_only=True),
        ParamSpec("robot_urdf", "", "URDF of the robot for joint_states ('' = the synthetic cell's Panda)",
                  read_only=True),
        ParamSpec("robot_keypoints", [""], "URDF links forming the robot's chain for joint_states ('' = the "
                  "cell's default keypoints)", read_only=True),
        ParamSpec("base_pose", [""], "camera-to-robot pose for joint_states: robot base in the camera frame "
                  "[x, y, z, qx, qy, qz, qw] as strings ('' = the latest robot/base_pose)", read_only=True),
        ParamSpec("reaction_time_s", 0.1, "T_r: sensing-to-robot reaction time (s), input age added",
                  min_value=0.0, max_value=10.0),
        ParamSpec("stopping_time_s", 0.3, "T_s: robot braking time (s)", min_value=0.0, max_value=10.0),
        ParamSpec("stopping_distance_m", -1.0, "S_s measured for the robot (m); < 0: v_r T_s / 2",
                  min_value=-1.0, max_value=10.0),
        ParamSpec("intrusion_distance_m", 0.05, "C: reach past the detected body (m)", min_value=0.0, max_value=5.0),
        ParamSpec("human_uncertainty_m", 0.10, "Z_d: position uncertainty of the skeletons (m)",
                  min_value=0.0, max_value=5.0),
        ParamSpec("robot_uncertainty_m", 0.05, "Z_r: position uncertainty of the robot (m)",
                  min_value=0.0, max_value=5.0),
        ParamSpec("robot_max_speed_mps", 1.0, "robot speed at speed_scale 1 (m/s)", min_value=0.01, max_value=10.0),
        ParamSpec("robot_speed_unknown_mps", 1.0, "robot speed assumed before it is measured (m/s)",
                  min_value=0.0, max_value=10.0),
        ParamSpec("robot_link_radius_m", 0.10, "capsule radius around every robot link (m)",
                  min_value=0.0, max_value=2.0),
        ParamSpec("warning_margin_m", 0.5, "WARNING within S_p + this (m)", min_value=0.0, max_value=10.0),
        ParamSpec("max_age_s", 0.5, "inputs older than this are stale: UNKNOWN (s)", min_value=0.01,
                  max_value=10.0),
        ParamSpec("unknown_limb_reach", True, "a person's unknown joint counts as anywhere within reach of the "
                  "nearest known joint (conservative distances; off: unknown joints are left out)"),
        ParamSpec("depth_carving", True, "carve each unknown limb's reach sphere with the depth image of its "
                  "frame: the limb is not where the camera sees through", read_only=True),
        ParamSpec("carve_margin_m", 0.05, "depth carving keeps every point up to this in front of the measured "
                  "depth (m): the depth noise", min_value=0.0, max_value=1.0),
        ParamSpec("carve_block_px", 8, "depth carving pools the depth over squares of this many pixels",
                  min_value=1, max_value=64, read_only=True),
        ParamSpec("min_human_speed_mps", 0.0, "floor under a person's measured speed (m/s)", min_value=0.0,
                  max_value=10.0),
        ParamSpec("min_person_joints", 4, "a skeleton with fewer known joints is no skeleton",
                  min_value=1, max_value=17),
        ParamSpec("check_rate_hz", 20.0, "verdicts between skeleton messages (Hz)", min_value=1.0, max_value=1000.0),
        ParamSpec("markers", True, "publish safety_monitor/markers"),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of each marker (s)", min_value=0.0, max_value=3600.0),
    )

    def __init__(self, node_name: str = "safety_monitor", **kwargs):
        self.last_verdict: Verdict | None = None
        self.verdicts = 0
        self.level_counts: dict[str, int] = {n: 0 for n in LEVEL_NAMES.values()}
        self._subs: list = []
        self._pubs: dict = {}
        self._timer = None
        self._stamp_clock = StampClock()
        self._robot: RobotState | None = None
        self._robot_filter = OneEuroFilter(OneEuroParams())
        self._people: list[PersonState] | None = None
        self._people_stamp_s: float | None = None
        self._people_stamp_ns: int | None = None     # the header stamp, exact (the status is stamped with it)
        self._robot_stamp_ns: int | None = None
        self._people_frame = ""
        self._bad_people: tuple[int, ...] = ()
        self._person_filters = SkeletonSmoother(OneEuroParams())
        self._tracks: OrderedDict[int, TrackArray] = OrderedDict()
        self._fk = None
        self._depths: OrderedDict[int, PooledDepth] = OrderedDict()  # stamp ns -> pooled depth (K unset)
        self._camera: tuple[np.ndarray, int, int] | None = None       # K, width, height
        self._people_depth: PooledDepth | None = None
        self.carved_frames = 0
        self._T_cam_base_param = None
        self._T_cam_base_topic = None
        super().__init__(node_name, **kwargs)

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self._params = self._monitor_params()
        q = self.output_qos()
        self._pubs = {"status": self.create_publisher(SafetyStatus, STATUS_TOPIC, q),
                      "markers": self.create_publisher(MarkerArray, MARKERS_TOPIC, q)}
        subs = [self.create_subscription(SkeletonArray, HUMANS_TOPIC, self._on_people, q),
                self.create_subscription(TrackArray, TRACKS_TOPIC, self._on_tracks, q),
                self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, self.input_qos())]
        if self.param("depth_carving"):
            subs.append(self.create_subscription(Image, DEPTH_TOPIC, self._on_depth, self.input_qos()))
        if self.param("robot_source") == "skeleton":
            subs.append(self.create_subscription(Skeleton, ROBOT_TOPIC, self._on_robot_skeleton, q))
        else:
            self._configure_fk()
            subs += [self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_states, q),
                     self.create_subscription(PoseStamped, BASE_POSE_TOPIC, self._on_base_pose, q)]
        self._subs = subs
        self._timer = self.create_timer(1.0 / self.param("check_rate_hz"), self._on_timer)
        self.get_logger().info(f"robot from {self.param('robot_source')}; T_r {self.param('reaction_time_s')} s, "
                               f"T_s {self.param('stopping_time_s')} s, max input age {self.param('max_age_s')} s")

    def on_cleanup_hook(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._subs, self._pubs, self._timer = [], {}, None
        self._robot = self._people = self._people_stamp_s = self._people_stamp_ns = self._robot_stamp_ns = None
        self._depths.clear()
        self._camera = self._people_depth = None
        self._stamp_clock.reset()

    def _configure_fk(self) -> None:
        from hrc_perception.sim.config import RobotConfig
        from hrc_perception.sim.robot import RobotModel
        cfg = RobotConfig()
        urdf = self.param("robot_urdf") or cfg.urdf
        keypoints = tuple(k for k in self.param("robot_keypoints") if k) or cfg.keypoints
        self._fk = RobotModel(RobotConfig(urdf=urdf, keypoints=keypoints, gripper_link=keypoints[-1]),
                              load_meshes=False)
        self._T_cam_base_param = pose_parameter_to_matrix(self.param("base_pose"), "base_pose")

    def _monitor_params(self) -> MonitorParams:
        names = ("reaction_time_s", "stopping_time_s", "stopping_distance_m", "intrusion_distance_m",
                 "human_uncertainty_m", "robot_uncertainty_m", "robot_max_speed_mps", "robot_link_radius_m",
                 "warning_margin_m", "max_age_s", "min_person_joints", "robot_speed_unknown_mps",
                 "min_human_speed_mps", "unknown_limb_reach", "carve_margin_m")
        return monitor_params({n: self.param(n) for n in names})

    # -- inputs -----------------------------------------------------------------------
    def _observe(self, stamp) -> tuple[int, float]:
        """(stamp in ns, in s) of an input; advances the stamp clock."""
        ns = stamp_to_ns(stamp)
        self._stamp_clock.observe(ns / NS_PER_S, time.monotonic())
        return ns, ns / NS_PER_S

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not self.is_active:
            return
        self._observe(msg.header.stamp)
        camera = self.converted(camera_info_to_K, msg, "bad_camera_info", CAMERA_INFO_TOPIC)
        if camera is not None:
            self._camera = camera

    def _on_depth(self, msg: Image) -> None:
        """Pool the depth image now (once per frame), keep it for the skeletons of its stamp."""
        if not self.is_active:
            return
        depth_m = self.converted(depth_to_meters, msg, "bad_depth", DEPTH_TOPIC)
        if depth_m is None:
            return
        self._depths[stamp_to_ns(msg.header.stamp)] = pool_depth(depth_m, np.eye(3), self.param("carve_block_px"))
        while len(self._depths) > DEPTH_FRAMES_KEPT:
            self._depths.popitem(last=False)

    def _depth_for(self, stamp_ns: int) -> PooledDepth | None:
        """The pooled depth of stamp_ns with the camera's K, or None (reported) when there
        is no such frame, no camera_info yet, or their sizes differ."""
        pooled = self._depths.get(stamp_ns)
        if pooled is None or self._camera is None:
            self.report("carving_without_depth", "no depth image or camera_info of the skeletons' stamp: "
                        "unknown limbs keep their whole reach spheres")
            return None
        K, w, h = self._camera
        if (w, h) != (pooled.width, pooled.height):
            self.report("carving_without_depth", f"depth image {pooled.width}x{pooled.height} but camera_info "
                        f"{w}x{h}: unknown limbs keep their whole reach spheres")
            return None
        self.carved_frames += 1
        return replace(pooled, K=K)

    def _on_tracks(self, msg: TrackArray) -> None:
        if not self.is_active:
            return
        self._tracks[stamp_to_ns(msg.header.stamp)] = msg
        while len(self._tracks) > 60:
            self._tracks.popitem(last=False)

    def _set_robot(self, names: list[str], positions_m: np.ndarray, stamp_ns: int) -> None:
        """The robot at stamp_ns; its speed from the filter when every joint is known."""
        t = stamp_ns / NS_PER_S
        speed = speed_mps(self._robot_filter(positions_m, t)[1]) if np.isfinite(positions_m).all() else None
        self._robot, self._robot_stamp_ns = RobotState(list(names), positions_m, t, speed), stamp_ns

    def _on_robot_skeleton(self, msg: Skeleton) -> None:
        if not self.is_active:
            return
        ns, _ = self._observe(msg.header.stamp)
        p = np.array([[q.x, q.y, q.z] for q in msg.positions], dtype=np.float64).reshape(-1, 3)
        if len(msg.joint_names) != len(p):
            self.report("bad_robot_skeleton", f"{len(msg.joint_names)} joint names, {len(p)} positions")
            return
        self._set_robot(list(msg.joint_names), p, ns)

    def _on_base_pose(self, msg: PoseStamped) -> None:
        if not self.is_active:
            return
        try:
            self._T_cam_base_topic = pose_to_matrix(msg.pose)
        except ValueError as e:
            self.report("bad_base_pose", f"{BASE_POSE_TOPIC}: {e}")

    def _on_joint_states(self, msg: JointState) -> None:
        from hrc_perception.robot_pose.extrinsics import joint_positions
        if not self.is_active:
            return
        ns, _ = self._observe(msg.header.stamp)
        T = self._T_cam_base_param if self._T_cam_base_param is not None else self._T_cam_base_topic
        if T is None:
            self.report("no_base_pose", f"no camera-to-robot pose yet (parameter base_pose or {BASE_POSE_TOPIC})")
            return
        q, why = joint_positions(self._fk.joint_names, list(msg.name), list(msg.position), self._fk.arm_joint_mask)
        if q is None:
            self.report("joint_states_unusable", why)
            return
        self._set_robot(list(self._fk.keypoint_links), self._fk.keypoints(q, T), ns)

    def _on_people(self, msg: SkeletonArray) -> None:
        if not self.is_active:
            return
        ns, t = self._observe(msg.header.stamp)
        people, bad = [], []
        for sk in msg.skeletons:
            p = np.array([[q.x, q.y, q.z] for q in sk.positions], dtype=np.float64).reshape(-1, 3)
            if sk.model != "coco17" or len(p) != 17:
                bad.append(sk.id)
                self.report("bad_person_skeleton", f"person {sk.id}: model {sk.model!r} with {len(p)} joints "
                            "(need coco17, 17 joints): treated as a person without a skeleton")
                continue
            _, vel = self._person_filters(sk.id, p, t)
            people.append(PersonState(int(sk.id), p, t, speed_mps(vel, robust=True)))
        self._person_filters.forget_older_than(t)
        self._people, self._people_stamp_s, self._people_stamp_ns = people, t, ns
        self._people_depth = self._depth_for(ns) if self.param("depth_carving") and people else None
        self._people_frame = msg.header.frame_id
        self._bad_people = tuple(bad)
        self._publish()

    def _unseen_people(self) -> tuple[int, ...]:
        """Ids of people without a usable skeleton: malformed skeletons, and the person tracks
        matched in the image of the skeletons' stamp and in the newest TrackArray (the
        tracker runs ahead of human_pose) that have no skeleton."""
        ids = {p.id for p in self._people or []}
        unseen = set(self._bad_people)
        arrays = [self._tracks.get(self._people_stamp_ns)] + ([next(reversed(self._tracks.values()))]
                                                              if self._tracks else [])
        for arr in arrays:
            if arr is not None:
                unseen |= {int(tr.track_id) for tr in arr.tracks
                           if tr.class_name == "person" and tr.time_since_update == 0 and tr.track_id not in ids}
        return tuple(sorted(unseen))

    def _on_timer(self) -> None:
        if self.is_active:
            self._publish()

    # -- verdict ----------------------------------------------------------------------
    def _publish(self) -> None:
        now = self._stamp_clock.now(time.monotonic())
        if now is None:
            v = Verdict(UNKNOWN, reason="no input received yet")
        else:
            try:
                v = assess(self._robot, self._people, now, self._params, self._people_stamp_s,
                           self._unseen_people(), self._people_depth)
            except Exception as e:  # noqa: BLE001 - never stop; a failed verdict is UNKNOWN
                self.report("assess_error", f"{type(e).__name__}: {e}")
                v = Verdict(UNKNOWN, reason=f"internal error: {type(e).__name__}")
        about_ns = next((ns for ns in (self._people_stamp_ns, self._robot_stamp_ns) if ns is not None),
                        self.get_clock().now().nanoseconds)
        header = Header(stamp=ns_to_stamp(about_ns), frame_id=self._people_frame)
        self._pubs["status"].publish(status_msg(v, header))
        if self.param("markers") and self._people_frame:
            self._pubs["markers"].publish(status_markers(v, header, self.param("marker_lifetime_s")))
        self.last_verdict = v
        self.verdicts += 1
        self.level_counts[v.level_name] += 1

    def diagnostic_values(self) -> dict[str, str]:
        out = {"verdicts": str(self.verdicts), "carved_frames": str(self.carved_frames),
               **{f"level_{k}": str(c) for k, c in self.level_counts.items()}}
        if self.last_verdict is not None:
            out["last"] = f"{self.last_verdict.level_name}: {self.last_verdict.reason}"
        return out


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception safety_monitor [--ros-args -p robot_source:=joint_states ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(SafetyMonitorNode, args)
