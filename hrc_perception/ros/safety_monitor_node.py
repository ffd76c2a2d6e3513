"""The safety_monitor node: ISO/TS 15066 speed and separation monitoring from the people's
skeletons and the robot (:mod:`hrc_perception.safety`).

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                        | type                          | used                                   |
|------------------------------|-------------------------------|----------------------------------------|
| ``humans/skeletons``         | hrc_perception/SkeletonArray  | the people (ids = track ids)           |
| ``tracking/tracks``          | hrc_perception/TrackArray     | who is in the cell (``require_tracks``) |
| ``robot/skeleton``           | hrc_perception/Skeleton       | the robot, ``robot_source: skeleton``  |
| ``joint_states``             | sensor_msgs/JointState        | the robot, ``robot_source: joint_states`` |
| ``robot/base_pose``          | geometry_msgs/PoseStamped     | the robot base in the camera frame     |
| ``camera/color/camera_info`` | sensor_msgs/CameraInfo        | the newest capture stamp (the clock), K |
| ``camera/depth/image_raw``   | sensor_msgs/Image             | reach spheres carved, ``depth_carving`` |

Publishes ``safety/status`` (SafetyStatus: ``min_distance_m`` is the surface-to-surface
distance of the deciding person's body capsules and the robot's link capsules, negative on
overlap; reliable, deadline and MANUAL_BY_TOPIC liveliness of ``status_deadline_s``, so a
subscriber gets a QoS event when statuses stop)
after every SkeletonArray (and every depth frame judged), and at ``check_rate_hz`` when no
other verdict came for a period, whatever arrives or stops arriving (a stalled pipeline
turns into UNKNOWN), and a last UNKNOWN before it deactivates,
shuts down or exits; ``safety_watchdog`` turns a missed deadline into a stop. Also
``safety_monitor/markers``: the closest pair as a line and a label coloured by level
(green OK, amber WARNING, red PROTECTIVE_STOP, grey UNKNOWN) and a translucent sphere
of radius S_p around the robot's closest point (the zone the person must stay out of);
with the depth path and ``publish_depth_debug_image``, ``safety_monitor/depth_debug_image``
(Image rgb8, the depth frame's header, at most ``depth_debug_rate_hz``, after the status):
the depth path's view, needing no colour image (the robot's pixels blue, a fresh skeleton's
green, unexplained foreground red, the deciding pixel ringed, the verdict's banner).

Clock: ages are measured against the newest accepted input stamp plus the time since it
arrived (:class:`~hrc_perception.safety.clock.StampClock`), so recorded and live stamps
both work. A message is offered to the clock only after its own checks: a rejected one
never moves it; one stamped more than ``max_stamp_lead_s`` ahead is refused
(``stamp_ahead``), one more than ``clock_jump_back_s`` behind too (``stamp_behind``);
three refused in a row on the same side mean the inputs' time jumped (a bag that loops, a
clock stepped): the clock follows and every input held is dropped (``clock_jump``). A
SkeletonArray or robot state older than the one held is ignored (``out_of_order``): a
reordered, emptier frame never replaces a newer one. The status header's stamp is the
camera frame the verdict is about: the people skeletons' stamp (the robot's before any
people message, the node clock's now before any of them); ``data_age_s`` is the oldest
input's age; the frame is the people's (camera optical). The first status of a stamp,
received, minus that stamp is the camera-to-verdict latency.

Frames: every input names its frame (an empty frame_id is refused). The robot is moved
into the people's frame with TF where ``tf2_ros`` is installed (robot_pose's TF in either
``tf_direction``: the transform is looked up, the tree's direction does not matter), else
with the camera-to-robot pose (``robot/base_pose``: the robot base ``robot_base_frame`` in
the message's frame; or the ``base_pose`` parameter, in ``base_pose_frame``); with none of
them the verdict is UNKNOWN (``no_transform``).

Robot: ``skeleton`` takes robot/skeleton as it is (an unknown joint makes the verdict
UNKNOWN); ``joint_states`` computes the skeleton in the robot's base frame by forward
kinematics of the URDF (``robot_urdf``, keypoints ``robot_keypoints``). The robot's speed
is the fastest skeleton joint's, from a One Euro filter over time.

People: the tracker holds who is in the cell (:mod:`hrc_perception.safety.people`): a
person track not deleted in the newest TrackArray is judged by this frame's skeleton, or,
coasting, by its last one grown by how far a person moves since; a track never seen with a
skeleton makes the verdict UNKNOWN. Speeds (ISO 13855) per track id, from a One Euro
filter: the body's (fastest trunk joint) at least ``min_human_speed_mps`` (1.6 m/s), the
arms' (fastest elbow or wrist) at least ``min_arm_speed_mps`` (2.0 m/s): a noisy joint
only raises them. A skeleton of another model, another joint count, or with a joint at
infinity or beyond ``max_range_m`` is a person without a skeleton (``bad_person_skeleton``).

Unknown joints: with ``depth_carving``, each person's reach spheres (the places an
unknown joint could be) are carved by the depth image of the skeletons' own stamp
(:mod:`hrc_perception.safety.carving`; K from camera_info, which must match the depth
image's size). Without that frame's depth the spheres stay whole (counted:
``carving_without_depth``).

Depth path (``depth_path``: ``off``, ``with_skeletons``, ``alone``;
:mod:`hrc_perception.safety.depth_space`): every depth frame is judged on arrival, needing
no colour network: the cell's background (``background_file``, or learned from the first
``background_learn_frames`` frames after start-up, when the cell must be empty: UNKNOWN
until then; where it reads farther for ``background_reveal_after_s``, something moved away
and the background takes the new depth, the cautious direction; nearer never joins it), the
robot removed by its URDF link surfaces at joint_states (so it needs ``robot_source:
joint_states``) placed in the depth's frame, and the distance from the robot to every
unexplained foreground point and the space hidden behind it, each point moving at the arm's
speed; with ``unseen_space: occupied`` (the default) the space beside the camera's view
counts as a possible person at the view's edge. ``alone``: that verdict is the status (a
cell whose colour images of people are not recorded); ``with_skeletons``: the worse of it
and the skeletons' verdict (whose people may then be up to ``max_people_age_s`` old: S_p
grows with their age, and whoever came since is in the depth; a person seen in the
skeletons' frame with too few known joints is left to the depth verdict, which sees their
surface, where alone it is UNKNOWN; one the tracker holds unseen stays UNKNOWN). Either way a status per depth
frame, stamped with the frame's stamp.

Parameters: every safety parameter applies to the very next verdict when set at run time
(a set that makes the parameters invalid together is refused); the read-only ones say so
in their descriptors. Fail-safe rules and levels: :mod:`hrc_perception.safety.monitor`.
Bad input never stops the node; it is counted (``report``) and the verdict fails safe.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
from geometry_msgs.msg import Point, PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

from hrc_perception.geometry import transform_points
from hrc_perception.human_pose.smoothing import OneEuroFilter, OneEuroParams, SkeletonSmoother, speed_mps
from hrc_perception.msg import SafetyStatus, Skeleton, SkeletonArray, TrackArray
from hrc_perception.ros.convert import (camera_info_to_K, copy_header, depth_to_meters, duration_msg, ns_to_stamp,
                                        numpy_to_image, pose_parameter_to_matrix, pose_to_matrix, stamp_to_ns,
                                        transform_to_matrix)
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.ros.sync import StampBuffer
from hrc_perception.safety.background_sources import robot_in_camera
from hrc_perception.safety.carving import PooledDepth, pool_depth
from hrc_perception.safety.depth_space import UNSEEN_SPACE, DepthSpaceParams, DepthSpaceResult, depth_space_distance
from hrc_perception.safety.clock import AHEAD, BEHIND, JUMPED, StampClock
from hrc_perception.safety.monitor import (LEVEL_NAMES, OK, PROTECTIVE_STOP, UNKNOWN, WARNING, PersonState,
                                           RobotState, Verdict, assess, assess_depth, assess_view_edge,
                                           joint_positions_problem,
                                           monitor_params, person_speeds_mps, robot_capsules, worst_of)
from hrc_perception.safety.people import PeopleInCell, PersonTrack
from hrc_perception.skeletons import COCO17_NAMES

HUMANS_TOPIC = "humans/skeletons"
ROBOT_TOPIC = "robot/skeleton"
JOINT_STATES_TOPIC = "joint_states"
BASE_POSE_TOPIC = "robot/base_pose"
TRACKS_TOPIC = "tracking/tracks"
CAMERA_INFO_TOPIC = "camera/color/camera_info"
DEPTH_TOPIC = "camera/depth/image_raw"
DEPTH_FRAMES_KEPT = 30             # pooled depth frames kept for pairing with skeletons by stamp
TRACK_ARRAYS_KEPT = 60             # tracker arrays kept (the newest says who is in the cell)
DEPTH_SPACE = DepthSpaceParams()   # the depth path's blocks, margins and edges (safety/depth_space.py)
STATUS_TOPIC = "safety/status"
MARKERS_TOPIC = "safety_monitor/markers"
DEPTH_DEBUG_TOPIC = "safety_monitor/depth_debug_image"
NS_PER_S = 1_000_000_000
LEVEL_COLORS = {OK: (0.1, 0.8, 0.2), WARNING: (1.0, 0.65, 0.0), PROTECTIVE_STOP: (0.9, 0.05, 0.05),
                UNKNOWN: (0.5, 0.5, 0.5)}


def status_msg(v: Verdict, header: Header) -> SafetyStatus:
    """The SafetyStatus of a verdict: min_distance_m is the deciding person's surface-to-surface
    distance to the robot's link capsules (negative when they overlap; see SafetyStatus.msg)."""
    return SafetyStatus(header=header, level=int(v.level), min_distance_m=float(v.min_distance_m),
                        protective_separation_distance_m=float(v.separation_m), speed_scale=float(v.speed_scale),
                        closest_human_id=int(v.closest_human_id), closest_human_joint=v.closest_human_joint,
                        closest_robot_joint=v.closest_robot_joint,
                        data_age_s=float(v.data_age_s) if math.isfinite(v.data_age_s) else float("nan"),
                        reason=v.reason)


def setter(v: Verdict) -> str:
    """What set the verdict, in a few words: a person's joint, or the depth path's
    unexplained foreground or unseen space (its closest_human_joint) and the robot's joint."""
    who = f"person {v.closest_human_id} {v.closest_human_joint}" if v.closest_human_id else v.closest_human_joint
    return f"{who} - {v.closest_robot_joint}" if v.closest_robot_joint else who


def status_markers(v: Verdict, header: Header, lifetime_s: float) -> MarkerArray:
    """Closest-pair line + label (level, distance, S_p and what set it), and the S_p sphere
    around the robot's closest point."""
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
                   text=f"{LEVEL_NAMES[v.level]} {v.min_distance_m:.2f} m (S_p {v.separation_m:.2f})\n{setter(v)}")
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
    ``level_counts`` (level name -> count), ``inputs_handled`` (messages taken by any
    callback, accepted or not).
    """

    PARAMS = (
        ParamSpec("robot_source", "skeleton", "where the robot's geometry comes from: robot/skeleton, or "
                  "joint_states + forward kinematics + the camera-to-robot pose",
                  choices=("skeleton", "joint_states"), read_only=True),
        ParamSpec("robot_urdf", "", "URDF of the robot for joint_states ('' = the synthetic cell's Panda)",
                  read_only=True),
        ParamSpec("robot_keypoints", [""], "URDF links forming the robot's chain for joint_states ('' = the "
                  "cell's default keypoints)", read_only=True),
        ParamSpec("robot_base_frame", "", "frame of the robot's base: joint_states' forward kinematics are in it, "
                  "and robot/base_pose places it in the camera frame ('' = the URDF's root link)", read_only=True),
        ParamSpec("base_pose", [""], "camera-to-robot pose: robot base in base_pose_frame "
                  "[x, y, z, qx, qy, qz, qw] as strings ('' = the latest robot/base_pose)", read_only=True),
        ParamSpec("base_pose_frame", "camera_color_optical_frame", "the frame the base_pose parameter is given in",
                  read_only=True),
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
        ParamSpec("payload_radius_m", 0.0, "a sphere of this radius at the robot's last keypoint (the tool) counts "
                  "as the robot: the largest workpiece it carries (m; 0 = none)", min_value=0.0, max_value=1.0),
        ParamSpec("max_people_age_s", 0.0, "skeletons and person tracks older than this are stale (s; 0 = "
                  "max_age_s). More only with depth_path with_skeletons, whose depth verdict covers whoever came "
                  "since: S_p grows with the skeletons' age", min_value=0.0, max_value=10.0),
        ParamSpec("max_stamp_lead_s", 0.5, "an input stamped more than this ahead of the newest accepted one is "
                  "refused (s)", min_value=0.0, max_value=60.0),
        ParamSpec("clock_jump_back_s", 10.0, "inputs this far behind the newest, three in a row: time went back "
                  "(a looping bag), the clock follows and what was held is dropped (s)", min_value=0.1,
                  max_value=3600.0),
        ParamSpec("release_hold_s", 1.0, "a person the tracker drops (deleted, or gone from its array) stays in the "
                  "cell this long after they were last seen: a tentative track deleted after one miss is no proof "
                  "the person left (s)", min_value=0.0, max_value=60.0, read_only=True),
        ParamSpec("require_tracks", True, "a fresh tracking/tracks is needed: the tracker says who is in the cell "
                  "(a person it holds stays in the cell until it lets them go)", read_only=True),
        ParamSpec("unknown_limb_reach", True, "a person's unknown joint counts as anywhere within reach of the "
                  "nearest known joint (conservative distances; off: unknown joints are left out)"),
        ParamSpec("depth_carving", True, "carve each unknown limb's reach sphere with the depth image of its "
                  "frame: the limb is not where the camera sees through", read_only=True),
        ParamSpec("carve_margin_m", 0.05, "depth carving keeps every point up to this in front of the measured "
                  "depth (m): the depth noise", min_value=0.0, max_value=1.0),
        ParamSpec("carve_block_px", 8, "depth carving pools the depth over squares of this many pixels",
                  min_value=1, max_value=64, read_only=True),
        ParamSpec("min_human_speed_mps", 1.6, "floor under a person's body speed (m/s; ISO 13855: 1.6; lower "
                  "only with a risk assessment)", min_value=0.0, max_value=10.0),
        ParamSpec("min_arm_speed_mps", 2.0, "floor under an arm's or hand's speed (m/s; ISO 13855: 2.0; lower "
                  "only with a risk assessment)", min_value=0.0, max_value=10.0),
        ParamSpec("max_range_m", 20.0, "a joint farther than this from the camera is invalid input (m)",
                  min_value=0.1, max_value=1000.0),
        ParamSpec("min_person_joints", 4, "a skeleton with fewer known joints is no skeleton",
                  min_value=1, max_value=17),
        ParamSpec("depth_path", "off", "judge every depth frame by its unexplained foreground (no colour "
                  "network): off, with_skeletons (the worse of both verdicts) or alone",
                  choices=("off", "with_skeletons", "alone"), read_only=True),
        ParamSpec("unseen_space", "occupied", "the space beside the camera's view is 'occupied' (a possible person "
                  "at its edge, in both paths) or 'guarded' (the cell keeps people out of what the camera cannot see "
                  "within the robot's protective distance: fences, light curtains)",
                  choices=UNSEEN_SPACE, read_only=True),
        ParamSpec("background_file", "", "the empty cell's background depth (.npz: hrc-perception "
                  "background writes it); '' = learn it from the first background_learn_frames frames", read_only=True),
        ParamSpec("background_reveal_after_s", 2.0, "depth path: a background pixel read farther than the "
                  "background for this long (something moved away) takes the new depth; 0 = never. Nearer "
                  "readings never join the background (a person standing still would): learn it again when the "
                  "cell changes (s)", min_value=0.0, max_value=3600.0),
        ParamSpec("background_learn_frames", 30, "depth frames of the empty cell the background is learned from "
                  "when there is no background_file (UNKNOWN meanwhile)", min_value=1, max_value=10000,
                  read_only=True),
        ParamSpec("check_rate_hz", 20.0, "verdicts between skeleton messages (Hz)", min_value=1.0, max_value=1000.0,
                  read_only=True),
        ParamSpec("status_deadline_s", 0.25, "safety/status QoS deadline and liveliness lease (s): subscribers "
                  "get a QoS event when statuses stop; above one check period", min_value=0.002, max_value=60.0,
                  read_only=True),
        ParamSpec("publish_depth_debug_image", False, "depth path: publish safety_monitor/depth_debug_image (what "
                  "it saw in the depth frame: robot, skeletons, unexplained foreground)", read_only=True),
        ParamSpec("depth_debug_rate_hz", 2.0, "most depth debug images per second (drawn after the status)",
                  min_value=0.1, max_value=100.0),
        ParamSpec("markers", True, "publish safety_monitor/markers"),
        ParamSpec("marker_lifetime_s", 0.5, "lifetime of each marker (s)", min_value=0.0, max_value=3600.0),
    )
    MONITOR_PARAMS = ("reaction_time_s", "stopping_time_s", "stopping_distance_m", "intrusion_distance_m",
                      "human_uncertainty_m", "robot_uncertainty_m", "robot_max_speed_mps", "robot_link_radius_m",
                      "warning_margin_m", "max_age_s", "min_person_joints", "robot_speed_unknown_mps",
                      "min_human_speed_mps", "min_arm_speed_mps", "unknown_limb_reach", "carve_margin_m",
                      "max_range_m", "require_tracks", "max_people_age_s", "payload_radius_m")

    def __init__(self, node_name: str = "safety_monitor", **kwargs):
        self.last_verdict: Verdict | None = None
        self.verdicts = 0
        self._published_at = -math.inf
        self.inputs_handled = 0
        self.level_counts: dict[str, int] = {n: 0 for n in LEVEL_NAMES.values()}
        self.carved_frames = 0
        self._subs: list = []
        self._pubs: dict = {}
        self._timer = None
        self._stamp_clock = StampClock()
        self._robot_filter = OneEuroFilter(OneEuroParams())
        self._person_filters = SkeletonSmoother(OneEuroParams())
        self._in_cell = PeopleInCell()            # hold_s from release_hold_s at configure
        self._fk = None
        self._surface = None                  # the robot's link surfaces (depth path)
        self._background = None               # the empty cell's BackgroundDepth (depth path)
        self._learning: list = []             # (depth, robot mask) frames while the background is learned
        self.depth_frames_judged = 0
        self.background_revealed_px = 0       # background pixels the depth path made farther (something left)
        self.depth_debug_images = 0
        self._depth_debug_at = -math.inf      # time.monotonic() of the last depth debug image
        self._base_frame = ""
        self._base_pose_param: tuple[str, np.ndarray] | None = None
        self._tf_buffer = None
        self._base_pose: tuple[str, np.ndarray] | None = None     # from robot/base_pose: parent frame, T_parent_base
        self._drop_state()
        super().__init__(node_name, **kwargs)

    def _drop_state(self) -> None:
        """Forget every input held (after a clock jump, on cleanup)."""
        self._robot: RobotState | None = None
        self._robot_stamp_ns: int | None = None
        self._robot_filter.reset()
        self._people: list[PersonState] | None = None
        self._people_stamp_s: float | None = None
        self._people_stamp_ns: int | None = None     # the header stamp, exact (the status is stamped with it)
        self._people_frame = ""
        self._invalid_ids: tuple[int, ...] = ()
        self._person_filters.filters.clear()
        self._in_cell.clear()
        self._tracks = StampBuffer(TRACK_ARRAYS_KEPT)    # stamp ns -> person tracks (the newest: who is in)
        self._depths = StampBuffer(DEPTH_FRAMES_KEPT)    # stamp ns -> pooled depth (K unset)
        self._camera: tuple[np.ndarray, int, int] | None = None             # K, width, height
        self._people_depth: PooledDepth | None = None
        self._robot_q: np.ndarray | None = None      # joint positions of the robot state held (joint_states)
        self._depth_judged: tuple[int, str, DepthSpaceResult | None, str] | None = None   # ns, frame, result, why

    # -- parameters -------------------------------------------------------------------
    def check_parameters(self, values: dict) -> str | None:
        try:
            monitor_params({n: values[n] for n in self.MONITOR_PARAMS})
        except ValueError as e:
            return f"safety parameters: {e}"
        if not values["status_deadline_s"] > 1.0 / values["check_rate_hz"]:
            return (f"status_deadline_s ({values['status_deadline_s']} s) must exceed one check period "
                    f"(1 / check_rate_hz = {1.0 / values['check_rate_hz']:.3f} s)")
        if values["depth_path"] != "off" and values["robot_source"] != "joint_states":
            return "depth_path needs robot_source joint_states (the robot's link surfaces are posed at its joints)"
        if values["max_people_age_s"] > values["max_age_s"] and values["depth_path"] != "with_skeletons":
            return ("max_people_age_s above max_age_s needs depth_path with_skeletons: without a fresh depth "
                    "verdict, a person who came since the last skeletons would be in no verdict")
        if not values["clock_jump_back_s"] > max(values["max_age_s"], values["max_people_age_s"]):
            return "clock_jump_back_s must exceed max_age_s and max_people_age_s"
        return None

    def on_parameters_set(self, names: list[str]) -> None:
        """Every safety parameter applies to the very next verdict."""
        # with_skeletons: a person seen with too few joints is left to the depth verdict beside
        self._params = monitor_params({n: self.param(n) for n in self.MONITOR_PARAMS}
                                      | {"depth_covers_seen_people": self.param("depth_path") == "with_skeletons"})
        self._stamp_clock.max_lead_s = self.param("max_stamp_lead_s")
        self._stamp_clock.jump_back_s = self.param("clock_jump_back_s")

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self.on_parameters_set([])
        self._in_cell.hold_s = float(self.param("release_hold_s"))
        q = self.output_qos()
        deadline = Duration(seconds=self.param("status_deadline_s"))
        status_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                                deadline=deadline, liveliness=LivelinessPolicy.MANUAL_BY_TOPIC,
                                liveliness_lease_duration=deadline)
        self._pubs = {"status": self.create_publisher(SafetyStatus, STATUS_TOPIC, status_qos),
                      "markers": self.create_publisher(MarkerArray, MARKERS_TOPIC, q)}
        if self.param("publish_depth_debug_image") and self.param("depth_path") != "off":
            self._pubs["depth_debug"] = self.create_publisher(Image, DEPTH_DEBUG_TOPIC, q)
        inp = self.input_qos()
        # the newest of each stream matters (input_queue_depth): a queue of ten joint states
        # read one per executor cycle was 0.6 s behind in the demo graph
        subs = [(SkeletonArray, HUMANS_TOPIC, self._on_people, inp), (TrackArray, TRACKS_TOPIC, self._on_tracks, q),
                (CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, inp),
                (PoseStamped, BASE_POSE_TOPIC, self._on_base_pose, q)]
        if self.param("depth_carving") or self.param("depth_path") != "off":
            subs.append((Image, DEPTH_TOPIC, self._on_depth, inp))
        if self.param("robot_source") == "skeleton":
            subs.append((Skeleton, ROBOT_TOPIC, self._on_robot_skeleton, inp))
        else:
            subs.append((JointState, JOINT_STATES_TOPIC, self._on_joint_states, inp))
        self._configure_robot()
        self._configure_depth_path()
        self._subs = [self.create_subscription(t, topic, self._input(cb), qos) for t, topic, cb, qos in subs]
        self._configure_tf()
        self._timer = self.create_timer(1.0 / self.param("check_rate_hz"), self.guarded(self._on_timer))
        self.get_logger().info(f"robot from {self.param('robot_source')} (base frame {self._base_frame}); "
                               f"T_r {self.param('reaction_time_s')} s, T_s {self.param('stopping_time_s')} s, "
                               f"max input age {self.param('max_age_s')} s; TF "
                               f"{'on' if self._tf_buffer is not None else 'off (no tf2_ros): robot/base_pose only'}")

    def on_deactivate_hook(self) -> None:
        self._publish_last("safety monitor deactivating: no verdicts until it is active again")

    def on_cleanup_hook(self) -> None:
        self._publish_last("safety monitor shutting down")
        for s in self._subs:
            self.destroy_subscription(s)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._subs, self._pubs, self._timer, self._tf_buffer, self._base_pose = [], {}, None, None, None
        self._drop_state()
        self._stamp_clock.reset()

    def before_exit(self) -> None:
        self._publish_last("safety monitor exiting")

    def _configure_robot(self) -> None:
        """The forward kinematics (joint_states) and the robot's base frame name."""
        base = self.param("robot_base_frame")
        if self.param("robot_source") == "joint_states" or not base:
            from hrc_perception.sim.config import RobotConfig
            from hrc_perception.sim.robot import RobotModel
            cfg = RobotConfig()
            urdf = self.param("robot_urdf") or cfg.urdf
            keypoints = tuple(k for k in self.param("robot_keypoints") if k) or cfg.keypoints
            self._fk = RobotModel(RobotConfig(urdf=urdf, keypoints=keypoints, gripper_link=keypoints[-1]),
                                  load_meshes=self.param("depth_path") != "off")
            base = base or self._fk.base_link
        self._base_frame = base
        T = pose_parameter_to_matrix(self.param("base_pose"), "base_pose")
        self._base_pose_param = None if T is None else (self.param("base_pose_frame"), T)

    def _configure_depth_path(self) -> None:
        """The robot's link surfaces and the background (file, or learned from the first frames)."""
        self._surface, self._learning = None, []
        self._depth_space = replace(DEPTH_SPACE, unseen_space=self.param("unseen_space"))   # read-only: once
        if self.param("depth_path") == "off":
            return
        from hrc_perception.safety.robot_surface import RobotSurface
        self._surface = RobotSurface.from_model(self._fk)
        path = self.param("background_file")
        if path:
            from hrc_perception.safety.background import BackgroundDepth
            self._background = BackgroundDepth.load(path)
            self.get_logger().info(f"depth path: background {path} ({self._background.known_fraction:.0%} of "
                                   f"pixels known, {self._background.frames} frames)")
        elif self._background is None:
            self.get_logger().warning(f"depth path: no background_file: learning it from the next "
                                      f"{self.param('background_learn_frames')} depth frames; the cell must be "
                                      "empty of people until then (verdicts UNKNOWN)")

    def _configure_tf(self) -> None:
        try:
            from tf2_ros import Buffer, TransformListener
        except ImportError:
            self._tf_buffer = None
            return
        self._tf_buffer = Buffer()
        self._tf_listener = TransformListener(self._tf_buffer, self)

    # -- inputs -----------------------------------------------------------------------
    def _input(self, callback):
        """A subscription callback: counted, exceptions reported (never raised), only when active."""
        guarded = self.guarded(callback)

        def run(msg):
            self.inputs_handled += 1
            if self.is_active:
                guarded(msg)
        return run

    def _accept_stamp(self, stamp, topic: str) -> int | None:
        """The stamp (ns) of a message that passed its checks, offered to the clock; None
        (reported) when the clock refuses it. A jump back drops everything held."""
        ns = stamp_to_ns(stamp)
        result = self._stamp_clock.offer(ns / NS_PER_S, time.monotonic())
        if result == AHEAD:
            self.report("stamp_ahead", f"{topic}: stamp {ns / NS_PER_S:.3f} s is more than max_stamp_lead_s ahead "
                        "of the newest input: refused (three in a row: the clock follows)")
            return None
        if result == BEHIND:
            self.report("stamp_behind", f"{topic}: stamp {ns / NS_PER_S:.3f} s is more than clock_jump_back_s "
                        "behind the newest input: refused (three in a row: the clock follows)")
            return None
        if result == JUMPED:
            self.report("clock_jump", f"{topic}: the inputs' time jumped to {ns / NS_PER_S:.3f} s: "
                        "the clock follows, every input held is dropped")
            self._drop_state()
        return ns

    def _on_camera_info(self, msg: CameraInfo) -> None:
        camera = self.converted(camera_info_to_K, msg, "bad_camera_info", CAMERA_INFO_TOPIC)
        if camera is not None and self._accept_stamp(msg.header.stamp, CAMERA_INFO_TOPIC) is not None:
            self._camera = camera

    def _on_depth(self, msg: Image) -> None:
        """Pool the depth image now (once per frame), keep it for the skeletons of its stamp;
        with the depth path, judge the frame."""
        depth_m = self.converted(depth_to_meters, msg, "bad_depth", DEPTH_TOPIC)
        if depth_m is None:
            return
        if self.param("depth_carving"):
            self._depths.add(msg, pool_depth(depth_m, np.eye(3), self.param("carve_block_px")))
        if self.param("depth_path") != "off":
            self._judge_depth(msg, depth_m)

    def _judge_depth(self, msg: Image, depth_m: np.ndarray) -> None:
        """The depth-space result of one frame (or why there is none), then a status."""
        frame = msg.header.frame_id
        if not frame:
            self.report("no_frame_id", f"{DEPTH_TOPIC}: no frame_id: the depth cannot be placed")
            return
        ns = self._accept_stamp(msg.header.stamp, DEPTH_TOPIC)
        if ns is None:
            return
        result, why = None, ""
        robot = self._robot
        T_cam_base = None if robot is None else self._transform(frame, self._base_frame)
        if self._camera is None or self._camera[1:] != (depth_m.shape[1], depth_m.shape[0]):
            why = "no camera_info of the depth image's size"
        elif T_cam_base is None or self._robot_q is None:
            why = f"the robot is not placed in the depth's frame {frame!r} (joint_states and the camera-to-robot pose)"
        else:
            K = self._camera[0]
            posed = self._surface.posed(robot_in_camera(self._fk, self._robot_q, T_cam_base))
            if self._background is None:
                why = self._learn_background(depth_m, K, posed)
            else:
                caps = robot_capsules(robot.joint_names, transform_points(T_cam_base, robot.positions_m),
                                      self._params)
                debug = "depth_debug" in self._pubs and (
                    time.monotonic() - self._depth_debug_at >= 1.0 / self.param("depth_debug_rate_hz"))
                result = depth_space_distance(depth_m, K, self._background, caps, self._depth_space,
                                              surface=(self._surface, posed), label_image=debug)
                self.depth_frames_judged += 1
                reveal = self.param("background_reveal_after_s")
                if reveal > 0:      # after the verdict: this frame is judged by the background it had
                    self.background_revealed_px += self._background.update(depth_m, ns / NS_PER_S, None, reveal,
                                                                           math.inf)
        self._depth_judged = (ns, frame, result, why)
        self._publish()
        if result is not None and result.label_image is not None and self.last_verdict is not None:
            self._publish_depth_debug(msg, depth_m, result, self.last_verdict)

    def _publish_depth_debug(self, msg: Image, depth_m: np.ndarray, result: DepthSpaceResult, v: Verdict) -> None:
        """The depth path's view of this frame (after its status: never on the verdict's way)."""
        from hrc_perception.viz.draw import draw_depth_verdict
        self._depth_debug_at = time.monotonic()
        # the deciding pixel: the depth path's block whose point decided the verdict, if one did
        blocks = [(result.point_m, result.pixel_uv)] + [(b.point_m, b.pixel_uv) for b in
                                                        [result.view_edge, *result.people.values()] if b is not None]
        uv = next((px for point, px in blocks if point is not None and v.point_human_m is not None
                   and np.array_equal(point, v.point_human_m)), None)
        rgb = draw_depth_verdict(depth_m, result.label_image, v.level, v.min_distance_m, v.reason, uv)
        self._pubs["depth_debug"].publish(numpy_to_image(rgb, "rgb8", copy_header(msg.header)))
        self.depth_debug_images += 1

    def _learn_background(self, depth_m: np.ndarray, K: np.ndarray, robot_surface_m: np.ndarray) -> str:
        """Keep one frame for the background (the robot's pixels masked); learn it after
        background_learn_frames. The reason the verdict is UNKNOWN meanwhile."""
        from hrc_perception.safety.background_sources import learn_from_frames, masked_frame
        self._learning.append(masked_frame(depth_m, K, self._surface, robot_surface_m, DEPTH_SPACE))
        n = self.param("background_learn_frames")
        if len(self._learning) < n:
            return f"learning the empty cell's background: {len(self._learning)} of {n} frames"
        self._background = learn_from_frames(self._learning)
        self._learning = []
        self.get_logger().info(f"depth path: background learned from {n} frames "
                               f"({self._background.known_fraction:.0%} of pixels known)")
        return "background learned; the next frame is judged"

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
        tracks = [PersonTrack(int(t.track_id), t.state == t.DELETED, t.time_since_update == 0)
                  for t in msg.tracks if t.class_name == "person"]
        ns = self._accept_stamp(msg.header.stamp, TRACKS_TOPIC)
        if ns is None:
            return
        self._tracks.put(ns, tracks)

    def _set_robot(self, names: list[str], positions_m: np.ndarray, stamp, frame_id: str, topic: str) -> bool:
        """The robot at a message's stamp, in frame_id; refused (False) when older than the one held."""
        if not frame_id:
            self.report("no_frame_id", f"{topic}: no frame_id: the robot cannot be placed")
            return False
        ns = self._accept_stamp(stamp, topic)
        if ns is None:
            return False
        if self._robot_stamp_ns is not None and ns < self._robot_stamp_ns:
            self.report("out_of_order", f"{topic}: stamp older than the robot state held: ignored")
            return False
        t = ns / NS_PER_S
        speed = None
        if np.isfinite(positions_m).all() and np.abs(positions_m).max(initial=0.0) <= self._params.max_range_m:
            speed = speed_mps(self._robot_filter(positions_m, t)[1])
        self._robot = RobotState(list(names), positions_m, t, speed, frame_id)
        self._robot_stamp_ns = ns
        return True

    def _on_robot_skeleton(self, msg: Skeleton) -> None:
        p = np.array([[q.x, q.y, q.z] for q in msg.positions], dtype=np.float64).reshape(-1, 3)
        if len(msg.joint_names) != len(p):
            self.report("bad_robot_skeleton", f"{len(msg.joint_names)} joint names, {len(p)} positions")
            return
        self._set_robot(list(msg.joint_names), p, msg.header.stamp, msg.header.frame_id, ROBOT_TOPIC)

    def _on_base_pose(self, msg: PoseStamped) -> None:
        if not msg.header.frame_id:
            self.report("bad_base_pose", f"{BASE_POSE_TOPIC}: no frame_id")
            return
        try:
            self._base_pose = (msg.header.frame_id, pose_to_matrix(msg.pose))
        except ValueError as e:
            self.report("bad_base_pose", f"{BASE_POSE_TOPIC}: {e}")

    def _on_joint_states(self, msg: JointState) -> None:
        from hrc_perception.robot_pose.extrinsics import joint_positions
        q, why = joint_positions(self._fk.joint_names, list(msg.name), list(msg.position), self._fk.arm_joint_mask)
        if q is None:
            self.report("joint_states_unusable", why)
            return
        if self._set_robot(list(self._fk.keypoint_links), self._fk.keypoints(q, np.eye(4)), msg.header.stamp,
                           self._base_frame, JOINT_STATES_TOPIC):
            self._robot_q = np.asarray(q, dtype=np.float64)

    def _on_people(self, msg: SkeletonArray) -> None:
        if not msg.header.frame_id:
            self.report("no_frame_id", f"{HUMANS_TOPIC}: no frame_id: the people cannot be placed")
            return
        ns = self._accept_stamp(msg.header.stamp, HUMANS_TOPIC)
        if ns is None:
            return
        if self._people_stamp_ns is not None and ns < self._people_stamp_ns:
            self.report("out_of_order", f"{HUMANS_TOPIC}: stamp older than the people held: ignored")
            return
        t = ns / NS_PER_S
        people, invalid = [], []
        for sk in msg.skeletons:
            p = np.array([[q.x, q.y, q.z] for q in sk.positions], dtype=np.float64).reshape(-1, 3)
            why = person_skeleton_problem(sk.model, p, self._params.max_range_m)
            if why:
                invalid.append(int(sk.id))
                self.report("bad_person_skeleton", f"person {sk.id}: {why}: a person without a skeleton")
                continue
            _, vel = self._person_filters(sk.id, p, t)
            body, arm = person_speeds_mps(vel, self._params.body)
            people.append(PersonState(int(sk.id), p, t, body, arm, msg.header.frame_id))
        self._person_filters.forget_older_than(t)
        if ns == self._people_stamp_ns:   # a second message of the same frame: both count
            people = self._people + people
            invalid = list(self._invalid_ids) + invalid
        self._in_cell.observe(people, self._params.min_person_joints)
        self._people, self._people_stamp_s, self._people_stamp_ns = people, t, ns
        self._people_depth = self._depth_for(ns) if self.param("depth_carving") and people else None
        self._people_frame = msg.header.frame_id
        self._invalid_ids = tuple(invalid)
        self._publish()

    def _on_timer(self) -> None:
        """A verdict when none came for most of a period (inputs that stop still age into UNKNOWN)."""
        if self.is_active and time.monotonic() - self._published_at >= 0.9 / self.param("check_rate_hz"):
            self._publish()

    # -- the robot in the people's frame --------------------------------------------------
    def _transform(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source [4, 4] from TF (where installed) or the camera-to-robot pose
        (robot/base_pose or the base_pose parameter: the robot base in the camera frame)."""
        if self._tf_buffer is not None:
            try:
                from rclpy.time import Time
                return transform_to_matrix(self._tf_buffer.lookup_transform(target, source, Time()).transform)
            except Exception:  # noqa: BLE001 - tf2's lookup errors: try the base pose
                pass
        pose = self._base_pose_param or self._base_pose
        if pose is not None and source == self._base_frame and pose[0] == target:
            return pose[1]
        if pose is not None and target == self._base_frame and pose[0] == source:
            return np.linalg.inv(pose[1])
        return None

    def _robot_in(self, frame_id: str) -> RobotState | None:
        """The robot held, in frame_id; as it is (in its own frame: the verdict is UNKNOWN)
        when no transform is known."""
        robot = self._robot
        if robot is None or not frame_id or robot.frame_id == frame_id:
            return robot
        T = self._transform(frame_id, robot.frame_id)
        if T is None:
            self.report("no_transform", f"no transform from the robot's {robot.frame_id!r} to the people's "
                        f"{frame_id!r} (TF, {BASE_POSE_TOPIC} or the base_pose parameter)")
            return robot
        return replace(robot, positions_m=transform_points(T, robot.positions_m), frame_id=frame_id)

    # -- verdict ----------------------------------------------------------------------
    def _verdict(self) -> Verdict:
        now = self._stamp_clock.now(time.monotonic())
        if now is None:
            return Verdict(UNKNOWN, reason="no input received yet")
        mode = self.param("depth_path")
        depth = None if mode == "off" else self._depth_verdict(now)
        if mode == "alone":
            return depth
        skeletons = self._skeleton_verdict(now)
        if mode == "off" and self.param("unseen_space") == "occupied":     # the depth path counts it itself
            skeletons = worst_of(skeletons, self._view_edge_verdict(now))
        return skeletons if depth is None else worst_of(skeletons, depth)

    def _view_edge_verdict(self, now: float) -> Verdict:
        """The unseen space beside the view of the people's camera (camera_info's K and size)."""
        if self._camera is None:
            return Verdict(UNKNOWN, reason="no camera_info: the space beside the camera's view is unknown")
        K, w, h = self._camera
        return assess_view_edge(self._robot_in(self._people_frame), K, w, h, self._people_frame, now, self._params,
                                DEPTH_SPACE.min_depth_m, DEPTH_SPACE.max_depth_m)

    def _depth_verdict(self, now: float) -> Verdict:
        if self._depth_judged is None:
            return Verdict(UNKNOWN, reason="depth path: no depth frame judged yet")
        ns, frame, result, why = self._depth_judged
        if result is None:
            return Verdict(UNKNOWN, reason=f"depth path: {why}")
        return assess_depth(self._robot_in(frame), result, ns / NS_PER_S, frame, now, self._params)

    def _skeleton_verdict(self, now: float) -> Verdict:
        tracks_stamp_ns = self._tracks.newest_ns()
        tracks = self._tracks[tracks_stamp_ns] if tracks_stamp_ns is not None else None
        people, unbound = (None, ()) if self._people is None else self._in_cell.in_cell(
            self._people, tracks, self._invalid_ids, None if tracks_stamp_ns is None else tracks_stamp_ns / NS_PER_S)
        return assess(self._robot_in(self._people_frame), people, now, self._params, self._people_stamp_s, unbound,
                      self._people_depth, None if tracks_stamp_ns is None else tracks_stamp_ns / NS_PER_S)

    def _publish(self, verdict: Verdict | None = None) -> None:
        if verdict is None:
            try:
                verdict = self._verdict()
            except Exception as e:  # noqa: BLE001 - never stop; a failed verdict is UNKNOWN
                self.report("assess_error", f"{type(e).__name__}: {e}")
                verdict = Verdict(UNKNOWN, reason=f"internal error: {type(e).__name__}")
        about_ns = next((ns for ns in (self._people_stamp_ns, self._robot_stamp_ns) if ns is not None),
                        self.get_clock().now().nanoseconds)
        frame = self._people_frame
        if self._depth_judged is not None and (self.param("depth_path") == "alone"
                                               or self._people_stamp_ns is None
                                               or self._depth_judged[0] > self._people_stamp_ns):
            about_ns, frame = self._depth_judged[0], self._depth_judged[1]     # the newest frame judged
        header = Header(stamp=ns_to_stamp(about_ns), frame_id=frame)
        self._pubs["status"].publish(status_msg(verdict, header))
        if self.param("markers") and frame:
            self._pubs["markers"].publish(status_markers(verdict, header, self.param("marker_lifetime_s")))
        self.last_verdict = verdict
        self._published_at = time.monotonic()
        self.verdicts += 1
        self.level_counts[verdict.level_name] += 1

    def _publish_last(self, reason: str) -> None:
        """A last UNKNOWN (speed 0) before the monitor goes silent, so no subscriber keeps an OK."""
        if "status" in self._pubs:
            self._publish(Verdict(UNKNOWN, reason=reason))

    def diagnostic_values(self) -> dict[str, str]:
        out = {"verdicts": str(self.verdicts), "carved_frames": str(self.carved_frames),
               "depth_frames_judged": str(self.depth_frames_judged),
               "background_revealed_px": str(self.background_revealed_px),
               **{f"level_{k}": str(c) for k, c in self.level_counts.items()}}
        if self.last_verdict is not None:
            out["last"] = f"{self.last_verdict.level_name}: {self.last_verdict.reason}"
        return out


def person_skeleton_problem(model: str, positions_m: np.ndarray, max_range_m: float) -> str | None:
    """Why a person's Skeleton message cannot be used (model, joint count, a joint at
    infinity or beyond max_range_m: :func:`~hrc_perception.safety.monitor.joint_positions_problem`),
    or None."""
    if model != "coco17":
        return f"model {model!r} (need coco17)"
    return joint_positions_problem(positions_m, len(COCO17_NAMES), max_range_m)


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception safety_monitor [--ros-args -p robot_source:=joint_states ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(SafetyMonitorNode, args)
