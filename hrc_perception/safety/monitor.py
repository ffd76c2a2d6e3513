"""The safety verdict of one instant: robot + people -> level, distance, speed scale.

Levels (as SafetyStatus.msg): OK (full speed), WARNING (a person within S_p plus a
warning margin: reduced speed), PROTECTIVE_STOP (a person within S_p), UNKNOWN (the
inputs do not allow a verdict: treated as a stop, speed scale 0).

Fail-safe rules (OK only on positive evidence; :func:`assess` checks every input itself):
- no robot skeleton, a stale one, one stamped after ``now_s``, one with an unknown joint,
  a joint outside ``max_range_m`` or not finite, joint names and positions of different
  lengths, a speed that is not a finite number >= 0 -> UNKNOWN;
- no people message, a stale one or one from the future -> UNKNOWN;
- a person seen (by segmentation / tracking) without a usable skeleton (fewer than
  ``min_person_joints`` known joints, a joint at +-inf or beyond ``max_range_m``, not 17
  joints, a stamp after the frame's) -> UNKNOWN (with ``depth_covers_seen_people``, a person
  of the frame itself with too few known joints is left out instead: a depth verdict beside
  this one, which the caller must take the worse of, sees them);
- a person or the robot in another frame than the others -> UNKNOWN (the caller
  transforms them first);
- no person in the message -> OK (nobody in view), with NaN distance.
Every comparison that grants OK or WARNING is false on NaN. The worst of all people
decides; speed_scale is the smallest allowed over people. The reaction time T_r of S_p is
lengthened by the age of the inputs (capture to now; the tracks' too, unless
``depth_covers_seen_people``).

Speeds (ISO 13855): each person's trunk (torso, head, legs) moves at their measured body
speed, never slower than ``min_human_speed_mps`` (1.6 m/s); their arms and hands at the
measured arm speed, never slower than ``min_arm_speed_mps`` (2.0 m/s) nor than the body.
Each part is measured against its own S_p; the part deepest inside its S_p decides.
A person last seen before the frame being judged (a track coasting between sightings)
keeps their last skeleton, every capsule grown by that part's speed times the time since.
Unknown joints count as anywhere they could be (``HumanBodyModel.cover_parts``); given the
depth image of the people's frame, each seen person's reach spheres are carved by it
(:mod:`hrc_perception.safety.carving`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np

from hrc_perception.safety.capsules import Capsules, ClosestPair, HumanBodyModel, chain_capsules, closest_pairs
from hrc_perception.safety.carving import PooledDepth, closest_pair_carved
from hrc_perception.safety.depth_space import DepthSpaceResult
from hrc_perception.safety.separation import (STANDARD_HUMAN_SPEED_MPS, SeparationParams, allowed_robot_speed,
                                              protective_separation)
from hrc_perception.skeletons import COCO17_NAMES

OK, WARNING, PROTECTIVE_STOP, UNKNOWN = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARNING: "WARNING", PROTECTIVE_STOP: "PROTECTIVE_STOP", UNKNOWN: "UNKNOWN"}
ARM_SPEED_MPS = 2.0
"""ISO 13855: the approach speed of a hand or arm."""


@dataclass
class RobotState:
    """The robot at one instant: joint names, positions_m [J, 3] (metres, in frame_id;
    NaN = unknown), stamp_s (seconds), speed_mps (the fastest joint's speed; None =
    unknown, then ``MonitorParams.robot_speed_unknown_mps`` is used), frame_id (the
    people's must be the same)."""
    joint_names: list[str]
    positions_m: np.ndarray
    stamp_s: float
    speed_mps: float | None = None
    frame_id: str = ""


@dataclass
class PersonState:
    """One person: id (track id), COCO-17 positions_m [17, 3] (metres, in frame_id; NaN =
    unknown), stamp_s (when this skeleton was seen: before the people stamp while the
    track coasts), speed_mps (the body's measured speed: its fastest trunk joint; None =
    unknown: 1.6 m/s), arm_speed_mps (the fastest elbow or wrist; None = unknown: 2.0 m/s);
    both are raised to the floors of :class:`MonitorParams`."""
    id: int
    positions_m: np.ndarray
    stamp_s: float
    speed_mps: float | None = None
    arm_speed_mps: float | None = None
    frame_id: str = ""


@dataclass(frozen=True)
class MonitorParams:
    separation: SeparationParams = field(default_factory=SeparationParams)
    body: HumanBodyModel = field(default_factory=HumanBodyModel)
    robot_link_radius_m: float = 0.10      # capsule radius around every robot link
    warning_margin_m: float = 0.5          # WARNING within S_p + this
    max_age_s: float = 0.3                 # inputs older than this (vs now) are stale
    min_person_joints: int = 4             # fewer known joints: the person has no usable skeleton
    robot_speed_unknown_mps: float = 1.0   # robot speed assumed when not measured
    min_human_speed_mps: float = STANDARD_HUMAN_SPEED_MPS   # floor under a person's body speed (ISO 13855)
    min_arm_speed_mps: float = ARM_SPEED_MPS                # floor under an arm's or hand's speed (ISO 13855)
    carve_margin_m: float = 0.05           # reach spheres are carved up to this in front of the depth
    max_range_m: float = 20.0              # a joint farther from the frame's origin is invalid input
    require_tracks: bool = False           # a fresh tracker array is needed to know who is in the cell
    depth_covers_seen_people: bool = False  # a person seen in the people's frame with too few known joints is
    # left to a depth verdict judged beside this one (depth_path with_skeletons), not UNKNOWN: the depth sees
    # their surface. Off, and for people the tracker holds unseen, UNKNOWN. On, the tracks' age does not
    # lengthen T_r (the skeletons' does): whoever came since the tracks' stamp is in the depth.
    payload_radius_m: float = 0.0          # a sphere this big at the robot's last joint (the tool) is the robot's:
    # a workpiece it carries (0: none)
    max_people_age_s: float = 0.0          # skeletons and tracks older than this are stale; 0 = max_age_s
    # (more only where a fresh depth verdict covers whoever came since: S_p grows with the skeletons' age,
    # so a joint seen at p, t s ago, counts as anywhere within v t of p)

    @property
    def people_max_age_s(self) -> float:
        return self.max_people_age_s or self.max_age_s

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{f.name} must be a finite number >= 0, got {v}")
        if not (self.max_age_s > 0 and self.max_range_m > 0 and 1 <= self.min_person_joints <= len(COCO17_NAMES)):
            raise ValueError(f"max_age_s and max_range_m must be > 0 and min_person_joints 1..17: {self}")


def robot_capsules(joint_names: list[str], positions_m: np.ndarray, params: MonitorParams) -> Capsules:
    """The robot's capsules of both paths: its chain of joints [J, 3] at robot_link_radius_m,
    and with payload_radius_m a sphere of that radius at the last joint (a carried workpiece:
    counted as the robot, so it is no person, and people keep their distance from it)."""
    caps = chain_capsules(joint_names, positions_m, params.robot_link_radius_m)
    p = np.asarray(positions_m, dtype=np.float64).reshape(-1, 3)
    if params.payload_radius_m > 0 and len(p) and np.isfinite(p[-1]).all():
        tool = joint_names[-1]
        caps = caps.concat(Capsules(p[-1:].copy(), p[-1:].copy(), np.array([params.payload_radius_m]), [tool], [tool]))
    return caps


def monitor_params(values: dict) -> MonitorParams:
    """MonitorParams from the safety_monitor node's parameter values (names as in
    config/safety_monitor.yaml; missing ones take the defaults there)."""
    d = {"reaction_time_s": 0.1, "stopping_time_s": 0.3, "stopping_distance_m": -1.0, "intrusion_distance_m": 0.05,
         "human_uncertainty_m": 0.10, "robot_uncertainty_m": 0.05, "robot_max_speed_mps": 1.0,
         "robot_link_radius_m": 0.10, "warning_margin_m": 0.5, "max_age_s": 0.5, "min_person_joints": 4,
         "robot_speed_unknown_mps": 1.0, "min_human_speed_mps": STANDARD_HUMAN_SPEED_MPS,
         "min_arm_speed_mps": ARM_SPEED_MPS, "unknown_limb_reach": True, "carve_margin_m": 0.05,
         "max_range_m": 20.0, "require_tracks": True, "max_people_age_s": 0.0,
         "payload_radius_m": 0.0, "depth_covers_seen_people": False} | dict(values)
    s_s = float(d["stopping_distance_m"])
    sep = SeparationParams(reaction_time_s=float(d["reaction_time_s"]), stopping_time_s=float(d["stopping_time_s"]),
                           stopping_distance_m=s_s if s_s >= 0 else None,
                           intrusion_distance_m=float(d["intrusion_distance_m"]),
                           human_uncertainty_m=float(d["human_uncertainty_m"]),
                           robot_uncertainty_m=float(d["robot_uncertainty_m"]),
                           robot_max_speed_mps=float(d["robot_max_speed_mps"]))
    return MonitorParams(separation=sep, robot_link_radius_m=float(d["robot_link_radius_m"]),
                         warning_margin_m=float(d["warning_margin_m"]), max_age_s=float(d["max_age_s"]),
                         min_person_joints=int(d["min_person_joints"]),
                         robot_speed_unknown_mps=float(d["robot_speed_unknown_mps"]),
                         min_human_speed_mps=float(d["min_human_speed_mps"]),
                         min_arm_speed_mps=float(d["min_arm_speed_mps"]),
                         carve_margin_m=float(d["carve_margin_m"]), max_range_m=float(d["max_range_m"]),
                         require_tracks=bool(d["require_tracks"]), max_people_age_s=float(d["max_people_age_s"]),
                         payload_radius_m=float(d["payload_radius_m"]),
                         depth_covers_seen_people=bool(d["depth_covers_seen_people"]),
                         body=HumanBodyModel(cover_unknown=bool(d["unknown_limb_reach"])))


@dataclass
class Verdict:
    """SafetyStatus fields: level, min_distance_m (surface distance of the deciding
    person, NaN if none), separation_m (S_p of that person, NaN if none), speed_scale
    0..1, closest person id (0 = none) / joint, closest robot joint, data_age_s (age of
    the oldest input used, NaN if none), reason; the closest points (metres, on the
    person's and the robot's capsule axes; None if no person)."""
    level: int
    min_distance_m: float = math.nan
    separation_m: float = math.nan
    speed_scale: float = 0.0
    closest_human_id: int = 0
    closest_human_joint: str = ""
    closest_robot_joint: str = ""
    data_age_s: float = math.nan
    reason: str = ""
    point_human_m: np.ndarray | None = None
    point_robot_m: np.ndarray | None = None

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]


def _unknown(reason: str, data_age_s: float = math.nan) -> Verdict:
    return Verdict(UNKNOWN, speed_scale=0.0, data_age_s=data_age_s, reason=reason)


def _speed_problem(speed_mps: float | None) -> str | None:
    if speed_mps is None:
        return None
    try:
        ok = math.isfinite(float(speed_mps)) and float(speed_mps) >= 0.0
    except (TypeError, ValueError):
        ok = False
    return None if ok else f"speed {speed_mps!r} m/s is not a finite number >= 0"


def joint_positions_problem(positions_m: np.ndarray, n: int | None, max_range_m: float) -> str | None:
    """Why joint positions [J, 3] (NaN = unknown) are invalid input, or None: not numbers,
    not [n, 3], an infinite coordinate, a joint beyond max_range_m of the frame's origin."""
    p = _as_positions(positions_m)
    if p is None:
        return "positions are not numbers"
    if p.ndim != 2 or p.shape[1] != 3 or (n is not None and len(p) != n):
        return f"positions of shape {p.shape}, need [{n if n is not None else 'J'}, 3]"
    known = np.isfinite(p).all(axis=1)      # a joint with any NaN coordinate is unknown
    if np.isinf(p).any():
        return "a joint with an infinite coordinate"
    with np.errstate(over="ignore", invalid="ignore"):
        far = known & ~(np.abs(p).max(axis=1) <= max_range_m)
    if far.any():
        return f"a joint beyond {max_range_m:g} m of the camera (invalid, not far)"
    return None


def _age_problem(what: str, age_s: float, max_age_s: float) -> str | None:
    if not math.isfinite(age_s):
        return f"{what} has no finite stamp"
    if age_s < 0.0:
        return f"{what} is stamped {-age_s:.3f} s after now"
    if not age_s <= max_age_s:
        return f"{what} is {age_s:.2f} s old (max {max_age_s:.2f} s)"
    return None


def _robot_problem(robot: RobotState, params: MonitorParams) -> str | None:
    pos = _as_positions(robot.positions_m)
    if pos is None:
        return "robot skeleton positions are not numbers"
    if pos.ndim != 2 or len(robot.joint_names) != len(pos):
        return f"robot skeleton has {len(robot.joint_names)} joint names for positions of shape {pos.shape}"
    why = joint_positions_problem(pos, None, params.max_range_m) or _speed_problem(robot.speed_mps)
    if why:
        return f"robot skeleton invalid: {why}"
    missing = [n for n, p in zip(robot.joint_names, pos) if not np.isfinite(p).all()]
    if missing or len(pos) < 2:
        return f"robot joints unknown: {', '.join(missing) or 'fewer than two joints'}"
    return None


def _person_problem(person: PersonState, people_stamp_s: float, frame_id: str, params: MonitorParams) -> str | None:
    why = (joint_positions_problem(person.positions_m, len(COCO17_NAMES), params.max_range_m)
           or _speed_problem(person.speed_mps) or _speed_problem(person.arm_speed_mps))
    if why:
        return f"person {person.id}: {why}"
    if not (math.isfinite(person.stamp_s) and person.stamp_s <= people_stamp_s):
        return f"person {person.id} is stamped {person.stamp_s} s, after the frame ({people_stamp_s} s)"
    if person.frame_id != frame_id:
        return f"person {person.id} in frame {person.frame_id!r}, the robot in {frame_id!r}: not comparable"
    return None


@dataclass
class _Part:
    """A part of one person for the verdict: its capsules, the speed it moves at (m/s)."""
    capsules: Capsules
    speed_mps: float
    pair: ClosestPair | None = None


def _parts(person: PersonState, people_stamp_s: float, params: MonitorParams) -> tuple[_Part, _Part, Capsules,
                                                                                        np.ndarray]:
    """(trunk, arm, reach spheres, their end radii) of one person, each grown by how far
    it may have moved since the person was seen (0 for a person of this frame)."""
    # an unknown speed is the standard's, whatever the floors
    v_body = max(params.min_human_speed_mps,
                 float(person.speed_mps) if person.speed_mps is not None else STANDARD_HUMAN_SPEED_MPS)
    v_arm = max(params.min_arm_speed_mps, v_body,
                float(person.arm_speed_mps) if person.arm_speed_mps is not None else ARM_SPEED_MPS)
    trunk, arm, reach, end_r = params.body.cover_parts(person.positions_m)
    since_s = people_stamp_s - person.stamp_s
    if since_s > 0.0:
        trunk, arm, reach = trunk.grown(v_body * since_s), arm.grown(v_arm * since_s), reach.grown(v_arm * since_s)
    return _Part(trunk, v_body), _Part(arm, v_arm), reach, end_r


def person_speeds_mps(velocity_mps: np.ndarray, body: HumanBodyModel) -> tuple[float | None, float | None]:
    """(body, arm) speeds in m/s of one person from per-joint velocities [17, 3] (m/s; NaN
    = not measured): the fastest trunk joint's and the fastest arm joint's
    (``body.arm_joints``); None where no joint of the part has a velocity."""
    v = np.linalg.norm(np.asarray(velocity_mps, dtype=np.float64).reshape(len(COCO17_NAMES), 3), axis=1)
    arm = np.zeros(len(v), bool)
    arm[[COCO17_NAMES.index(n) for n in body.arm_joints]] = True
    out = []
    for part in (~arm, arm):
        known = v[part][np.isfinite(v[part])]
        out.append(float(known.max()) if len(known) else None)
    return out[0], out[1]


def _level(d: float, s_p: float, warning_margin_m: float) -> int:
    """The level of a distance d against S_p; NaN never grants OK or WARNING."""
    if d > s_p + warning_margin_m:
        return OK
    if d > s_p:
        return WARNING
    return PROTECTIVE_STOP


def _as_positions(positions_m) -> np.ndarray | None:
    """positions as a float64 array, or None when they are not numbers at all."""
    try:
        return np.asarray(positions_m, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def assess(robot: RobotState | None, people: list[PersonState] | None, now_s: float, params: MonitorParams,
           people_stamp_s: float | None = None, unseen_person_ids: tuple[int, ...] = (),
           depth: PooledDepth | None = None, tracks_stamp_s: float | None = None) -> Verdict:
    """The verdict at time now_s (seconds, same clock as the stamps).

    robot: None when no robot skeleton was received. people: None when no people
    message was received; [] when the last one had nobody; a person whose stamp_s is
    before people_stamp_s is one the tracker still holds, not seen since (coasting).
    people_stamp_s: stamp of the people message (default: the newest person's).
    unseen_person_ids: ids of people seen by segmentation / tracking that have no
    skeleton at all (each makes the verdict UNKNOWN). depth: the depth image of the
    people's camera frame, pooled, to carve the reach spheres of the people seen in that
    frame with (None: whole spheres). tracks_stamp_s: stamp of the tracker's newest
    array, which ``people`` follows (with ``params.require_tracks``, None or a stale one
    is UNKNOWN: the monitor cannot know who is in the cell). Never raises: input it
    cannot read is UNKNOWN with the reason.
    """
    try:
        return _assess(robot, people, now_s, params, people_stamp_s, unseen_person_ids, depth, tracks_stamp_s)
    except Exception as e:  # noqa: BLE001 - the last line of defence: what cannot be read is not OK
        return _unknown(f"invalid input: {type(e).__name__}: {e}")


def _clock_and_robot(robot: RobotState | None, now_s, params: MonitorParams) -> tuple[float, float, Verdict | None]:
    """(now_s, the robot's age, None), or an UNKNOWN verdict as the third when the clock or
    the robot cannot be used (both paths start here)."""
    try:
        now_s = float(now_s)
    except (TypeError, ValueError):
        now_s = math.nan
    if not math.isfinite(now_s):
        return now_s, math.nan, _unknown(f"the clock ({now_s}) is not finite")
    if robot is None:
        return now_s, math.nan, _unknown("no robot skeleton received")
    robot_age = now_s - float(robot.stamp_s)
    why = _age_problem("robot skeleton", robot_age, params.max_age_s) or _robot_problem(robot, params)
    return now_s, robot_age, (_unknown(why, robot_age) if why else None)


def _robot_in_frame(robot: RobotState | None, frame_id: str, what: str, now_s, params: MonitorParams
                    ) -> tuple[float, float, Verdict | None]:
    """:func:`_clock_and_robot`, and UNKNOWN as the third when the robot is not in frame_id
    (that of ``what``: the depth, the camera)."""
    now_s, robot_age, refused = _clock_and_robot(robot, now_s, params)
    if refused is None and robot.frame_id != frame_id:
        refused = _unknown(f"robot in frame {robot.frame_id!r}, {what} in {frame_id!r}: not comparable", robot_age)
    return now_s, robot_age, refused


def _robot_speed_mps(robot: RobotState, params: MonitorParams) -> float:
    """v_r: the robot's measured speed, or the parameter's before it is measured."""
    return params.robot_speed_unknown_mps if robot.speed_mps is None else float(robot.speed_mps)


def _unexplained_speed_mps(params: MonitorParams) -> float:
    """v_h of a point nobody explains (it may be a hand): the arm's speed floor."""
    return max(params.min_arm_speed_mps, ARM_SPEED_MPS, params.min_human_speed_mps)


def _assess(robot, people, now_s, params, people_stamp_s, unseen_person_ids, depth, tracks_stamp_s) -> Verdict:
    now_s, robot_age, refused = _clock_and_robot(robot, now_s, params)
    if refused:
        return refused
    if people is None:
        return _unknown("no people message received", robot_age)
    if people_stamp_s is None:
        if not people:
            return _unknown("people message has no stamp", robot_age)
        people_stamp_s = max(float(p.stamp_s) for p in people)
    people_age = now_s - float(people_stamp_s)
    age = max(robot_age, people_age) if math.isfinite(people_age) else math.nan
    why = _age_problem("people skeletons", people_age, params.people_max_age_s)
    if why:
        return _unknown(why, age)
    if params.require_tracks:
        if tracks_stamp_s is None:
            return _unknown("no person tracks received: who is in the cell is unknown", age)
        tracks_age = now_s - float(tracks_stamp_s)
        why = _age_problem("the tracker's person tracks", tracks_age, params.people_max_age_s)
        if why:
            return _unknown(why, age)
        if not params.depth_covers_seen_people:
            # the tracks say who was in the cell at their stamp; with a depth verdict beside this
            # one, whoever came since is in the depth, and the people are where their skeletons
            # (of their own age) put them: the tracks' age does not move anyone
            age = max(age, tracks_age)
    kept, to_depth = [], []
    for person in people:
        why = _person_problem(person, people_stamp_s, robot.frame_id, params)
        if why:
            return _unknown(why, age)
        known = int(np.isfinite(np.asarray(person.positions_m, dtype=np.float64)).all(axis=1).sum())
        if known >= params.min_person_joints:
            kept.append(person)
        elif params.depth_covers_seen_people and person.stamp_s == people_stamp_s:
            to_depth.append(f"{person.id} ({known} known joints)")
        else:
            return _unknown(f"person {person.id} has {known} known joints (< {params.min_person_joints})", age)
    people = kept
    if unseen_person_ids:
        ids = ", ".join(str(i) for i in unseen_person_ids)
        return _unknown(f"person {ids} seen without a skeleton", age)
    if not people:
        why = f"person {', '.join(to_depth)} left to the depth verdict" if to_depth else "no person in view"
        return Verdict(OK, speed_scale=1.0, data_age_s=age, reason=why)

    pos = np.asarray(robot.positions_m, dtype=np.float64)
    robot_caps = robot_capsules(robot.joint_names, pos, params)
    v_r = _robot_speed_mps(robot, params)
    # The inputs are `age` old: the person and the robot kept moving meanwhile, so the
    # reaction time counts from the camera's capture, not from now.
    sep = replace(params.separation, reaction_time_s=params.separation.reaction_time_s + age)
    parts = [_parts(p, people_stamp_s, params) for p in people]
    # trunks, and the arms + reach of people not carved, in one vectorised pass
    carve = [depth is not None and p.stamp_s == people_stamp_s for p in people]
    groups = [trunk.capsules for trunk, *_ in parts]
    groups += [arm.capsules.concat(reach) for (_, arm, reach, _), c in zip(parts, carve) if not c]
    pairs = iter(closest_pairs(groups, robot_caps))
    for trunk, *_ in parts:
        trunk.pair = next(pairs)
    for (_, arm, reach, end_r), c in zip(parts, carve):
        arm.pair = (closest_pair_carved(arm.capsules, reach, end_r, robot_caps, depth, params.carve_margin_m)
                    if c else next(pairs))
    worst: Verdict | None = None
    speed_scale = 1.0
    for person, (trunk, arm, _, _) in zip(people, parts):
        for part in (trunk, arm):
            if part.pair is None:
                continue
            s_p = protective_separation(part.speed_mps, v_r, sep).total_m
            d = part.pair.distance_m
            if not (math.isfinite(d) and math.isfinite(s_p)):
                return _unknown(f"person {person.id}: distance {d} m or S_p {s_p} m not finite", age)
            level = _level(d, s_p, params.warning_margin_m)
            why = {OK: f"closest person {person.id} at {d:.2f} m, S_p {s_p:.2f} m",
                   WARNING: f"person {person.id} at {d:.2f} m, within S_p {s_p:.2f} m + margin",
                   PROTECTIVE_STOP: f"person {person.id} at {d:.2f} m, within S_p {s_p:.2f} m"}[level]
            speed_scale = min(speed_scale, allowed_robot_speed(d, part.speed_mps, sep) / sep.robot_max_speed_mps)
            v = Verdict(level, d, s_p, 0.0, person.id, part.pair.name_a, part.pair.name_b, age, why,
                        part.pair.point_a, part.pair.point_b)
            # the worst: the highest level (the levels' values are in order of severity), then the
            # deepest inside its S_p
            if worst is None or (v.level, v.separation_m - v.min_distance_m) > \
                    (worst.level, worst.separation_m - worst.min_distance_m):
                worst = v
    if worst is None:
        return _unknown("no capsules for the people or the robot", age)
    scale = float(min(max(speed_scale, 0.0), 1.0)) if math.isfinite(speed_scale) else 0.0
    worst.speed_scale = 0.0 if worst.level == PROTECTIVE_STOP else scale
    return worst


VIEW_EDGE = "view_edge"       # assess_depth's group of the unseen space beside the view


def assess_depth(robot: RobotState | None, depth: DepthSpaceResult | None, depth_stamp_s: float | None,
                 depth_frame_id: str, now_s: float, params: MonitorParams,
                 max_lost_background: float = 0.3, person_speed_mps: dict[int, float] | None = None) -> Verdict:
    """The verdict of the depth-space path (:mod:`hrc_perception.safety.depth_space`) at
    now_s: the robot against every unexplained foreground point and the space hidden
    behind it, and the unseen space beside the view (``depth.view_edge``, when the
    depth path counts it), each point moving at the arm's speed (it may be a hand); the foreground a
    fresh skeleton explains (``depth.people``) at that person's speed, person_speed_mps {id:
    m/s} (the caller's, floors applied; a person without one: the arm's). UNKNOWN without
    a fresh valid robot (in depth_frame_id), without a fresh depth result (None: no frame,
    no background model), or when more than max_lost_background of the pixels with a
    background read nothing (a blinded or covered camera sees no one). Never raises."""
    try:
        now_s, robot_age, refused = _robot_in_frame(robot, depth_frame_id, "the depth", now_s, params)
        if refused:
            return refused
        if depth is None or depth_stamp_s is None:
            return _unknown("no depth-space result (no depth frame or no background model)", robot_age)
        age = max(robot_age, now_s - float(depth_stamp_s))
        why = _age_problem("depth frame", now_s - float(depth_stamp_s), params.max_age_s)
        if why:
            return _unknown(why, age)
        if not depth.lost_background_fraction <= max_lost_background:
            return _unknown(f"{depth.lost_background_fraction:.0%} of the background reads no depth: the camera "
                            f"may be covered or blinded", age)
        v_point = _unexplained_speed_mps(params)
        groups = [(None, v_point, depth.distance_m, depth.pixel_uv, depth.robot_joint, depth.point_m,
                   depth.point_robot_m)] if depth.distance_m != math.inf else []
        if depth.view_edge is not None:
            e = depth.view_edge
            groups.append((VIEW_EDGE, v_point, e.distance_m, e.pixel_uv, e.robot_joint, e.point_m, e.point_robot_m))
        speeds = person_speed_mps or {}
        for pid, block in sorted(depth.people.items()):
            v = float(speeds.get(pid, v_point))
            if not (math.isfinite(v) and v >= 0):
                return _unknown(f"person {pid}: speed {v} m/s is not a finite number >= 0", age)
            groups.append((pid, v, block.distance_m, block.pixel_uv, block.robot_joint, block.point_m,
                           block.point_robot_m))
        if not groups:
            return Verdict(OK, speed_scale=1.0, data_age_s=age, reason="no unexplained foreground")
        v_r = _robot_speed_mps(robot, params)
        sep = replace(params.separation, reaction_time_s=params.separation.reaction_time_s + age)
        verdicts = []
        for pid, v_h, d, (u, v), joint, p_ray, p_robot in groups:
            if pid == VIEW_EDGE:
                where = f"the unseen space beside the camera's view (at pixel ({u:.0f}, {v:.0f}))"
            else:
                who = "unexplained foreground" if pid is None else f"person {pid}'s foreground"
                where = f"{who} at pixel ({u:.0f}, {v:.0f})"
            verdicts.append(_point_verdict(d, v_h, v_r, sep, params, where, joint, age,
                                           pid if isinstance(pid, int) else 0, p_ray, p_robot))
        return worst_of(*verdicts)
    except Exception as e:  # noqa: BLE001 - what cannot be read is not OK
        return _unknown(f"invalid input: {type(e).__name__}: {e}")


def _point_verdict(d: float, v_h: float, v_r: float, sep, params: MonitorParams, where: str, joint: str,
                   age: float, person_id: int, p_human: np.ndarray, p_robot: np.ndarray) -> Verdict:
    """The verdict of one possible body part at surface distance d (m) from the robot's
    joint, moving at v_h (m/s), the robot at v_r, by separation sep (the inputs' age in its
    reaction time): level by S_p, the reason naming where, the allowed speed. UNKNOWN for a
    distance or S_p that is not finite."""
    s_p = protective_separation(v_h, v_r, sep).total_m
    if not (math.isfinite(d) and math.isfinite(s_p)):
        return _unknown(f"{where}: distance {d} m or S_p {s_p} m not finite", age)
    level = _level(d, s_p, params.warning_margin_m)
    why = {OK: f"{where} {d:.2f} m from {joint}, S_p {s_p:.2f} m",
           WARNING: f"{where} {d:.2f} m from {joint}, within S_p {s_p:.2f} m + margin",
           PROTECTIVE_STOP: f"{where} {d:.2f} m from {joint}, within S_p {s_p:.2f} m"}[level]
    scale = allowed_robot_speed(d, v_h, sep) / sep.robot_max_speed_mps
    scale = float(min(max(scale, 0.0), 1.0)) if math.isfinite(scale) else (1.0 if scale > 0 else 0.0)
    return Verdict(level, d, s_p, 0.0 if level == PROTECTIVE_STOP else scale, person_id, where, joint, age, why,
                   p_human, p_robot)


def assess_view_edge(robot: RobotState | None, K: np.ndarray, width_px: int, height_px: int, frame_id: str,
                     now_s: float, params: MonitorParams, near_m: float = 0.28, far_m: float = 10.0) -> Verdict:
    """The verdict of the unseen space beside a camera's view (:mod:`hrc_perception.safety.view_edge`):
    the robot (in that camera's frame_id) against a possible person at the outside of the
    view, moving at the arm's speed. For the skeleton path, which sees no one beside the
    view either; take the worse of it and the path's own verdict. UNKNOWN without a fresh
    valid robot in that frame. Never raises."""
    from hrc_perception.safety.view_edge import frustum_planes, view_edge_distance
    try:
        now_s, robot_age, refused = _robot_in_frame(robot, frame_id, "the camera", now_s, params)
        if refused:
            return refused
        caps = robot_capsules(robot.joint_names, np.asarray(robot.positions_m, dtype=np.float64), params)
        d, k, end, foot = view_edge_distance(caps, frustum_planes(K, width_px, height_px, near_m, far_m))
        sep = replace(params.separation, reaction_time_s=params.separation.reaction_time_s + robot_age)
        return _point_verdict(d, _unexplained_speed_mps(params), _robot_speed_mps(robot, params), sep, params, "the unseen space beside the camera's view",
                              (caps.names_a + caps.names_b)[k], robot_age, 0, foot, end)
    except Exception as e:  # noqa: BLE001 - what cannot be read is not OK
        return _unknown(f"invalid input: {type(e).__name__}: {e}")


def worst_of(*verdicts: Verdict) -> Verdict:
    """The verdict that stops most: the highest level (UNKNOWN above PROTECTIVE_STOP), then
    the deepest inside its S_p; its speed_scale the smallest of all (0 for UNKNOWN); an
    UNKNOWN gives the reasons of every UNKNOWN."""
    if not verdicts:
        return _unknown("no verdicts to combine")

    def depth_inside(v: Verdict) -> float:
        m = v.separation_m - v.min_distance_m
        return m if math.isfinite(m) else math.inf
    worst = max(verdicts, key=lambda v: (v.level, depth_inside(v)))
    scales = [v.speed_scale if v.level not in (PROTECTIVE_STOP, UNKNOWN) else 0.0 for v in verdicts]
    scale = min(scales)
    reasons = dict.fromkeys(v.reason for v in verdicts if v.level == UNKNOWN)      # in order, once each
    reason = "; ".join(reasons) if worst.level == UNKNOWN else worst.reason
    return replace(worst, speed_scale=float(scale) if math.isfinite(scale) and scale >= 0 else 0.0, reason=reason)
