"""The safety verdict of one instant: robot + people -> level, distance, speed scale.

Levels (as SafetyStatus.msg): OK (full speed), WARNING (a person within S_p plus a
warning margin: reduced speed), PROTECTIVE_STOP (a person within S_p), UNKNOWN (the
inputs do not allow a verdict: treated as a stop, speed scale 0).

Fail-safe rules (never OK without evidence):
- no robot skeleton, a stale one, or one with an unknown joint -> UNKNOWN;
- no people message, or a stale one -> UNKNOWN;
- a person seen (by segmentation / tracking) without a usable skeleton (fewer than
  ``min_person_joints`` known joints) -> UNKNOWN;
- no person in the message -> OK (nobody in view), with NaN distance.
The worst of all people decides; speed_scale is the smallest allowed over people. The
reaction time T_r of S_p is lengthened by the age of the inputs (capture to now).
Unknown joints count as anywhere they could be (``HumanBodyModel.cover``); given the
depth image of the people's frame, each person's reach spheres are carved by it (:mod:`hrc_perception.safety.carving`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from hrc_perception.safety.capsules import HumanBodyModel, chain_capsules, closest_pairs
from hrc_perception.safety.carving import PooledDepth, closest_pair_carved
from hrc_perception.safety.separation import (STANDARD_HUMAN_SPEED_MPS, SeparationParams, allowed_robot_speed,
                                              protective_separation)

OK, WARNING, PROTECTIVE_STOP, UNKNOWN = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARNING: "WARNING", PROTECTIVE_STOP: "PROTECTIVE_STOP", UNKNOWN: "UNKNOWN"}


@dataclass
class RobotState:
    """The robot at one instant: joint names, positions_m [J, 3] (metres, the people's
    frame; NaN = unknown), stamp_s (seconds), speed_mps (the fastest joint's speed;
    None = unknown, then ``MonitorParams.robot_speed_unknown_mps`` is used)."""
    joint_names: list[str]
    positions_m: np.ndarray
    stamp_s: float
    speed_mps: float | None = None


@dataclass
class PersonState:
    """One person: id (track id), COCO-17 positions_m [17, 3] (metres; NaN = unknown),
    stamp_s, speed_mps (the fastest joint's speed; None = unknown: 1.6 m/s is used)."""
    id: int
    positions_m: np.ndarray
    stamp_s: float
    speed_mps: float | None = None


@dataclass(frozen=True)
class MonitorParams:
    separation: SeparationParams = field(default_factory=SeparationParams)
    body: HumanBodyModel = field(default_factory=HumanBodyModel)
    robot_link_radius_m: float = 0.10      # capsule radius around every robot link
    warning_margin_m: float = 0.5          # WARNING within S_p + this
    max_age_s: float = 0.3                 # inputs older than this (vs now) are stale
    min_person_joints: int = 4             # fewer known joints: the person has no usable skeleton
    robot_speed_unknown_mps: float = 1.0   # robot speed assumed when not measured
    min_human_speed_mps: float = 0.0       # floor under a measured person speed
    carve_margin_m: float = 0.05           # reach spheres are carved up to this in front of the depth


def monitor_params(values: dict) -> MonitorParams:
    """MonitorParams from the safety_monitor node's parameter values (names as in
    config/safety_monitor.yaml; missing ones take the defaults there)."""
    d = {"reaction_time_s": 0.1, "stopping_time_s": 0.3, "stopping_distance_m": -1.0, "intrusion_distance_m": 0.05,
         "human_uncertainty_m": 0.10, "robot_uncertainty_m": 0.05, "robot_max_speed_mps": 1.0,
         "robot_link_radius_m": 0.10, "warning_margin_m": 0.5, "max_age_s": 0.5, "min_person_joints": 4,
         "robot_speed_unknown_mps": 1.0, "min_human_speed_mps": 0.0, "unknown_limb_reach": True,
         "carve_margin_m": 0.05} | dict(values)
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
                         carve_margin_m=float(d["carve_margin_m"]),
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


def assess(robot: RobotState | None, people: list[PersonState] | None, now_s: float, params: MonitorParams,
           people_stamp_s: float | None = None, unseen_person_ids: tuple[int, ...] = (),
           depth: PooledDepth | None = None) -> Verdict:
    """The verdict at time now_s (seconds, same clock as the stamps).

    robot: None when no robot skeleton was received. people: None when no people
    message was received; [] when the last one had nobody. people_stamp_s: stamp of the
    people message (needed when it is empty; default the people's own stamps).
    unseen_person_ids: ids of people seen by segmentation / tracking that have no
    skeleton in ``people`` (each makes the verdict UNKNOWN). depth: the depth image of
    the people's camera frame, pooled, to carve reach spheres with (None: whole spheres).
    """
    if robot is None:
        return _unknown("no robot skeleton received")
    robot_age = now_s - robot.stamp_s
    if not robot_age <= params.max_age_s:
        return _unknown(f"robot skeleton is {robot_age:.2f} s old (max {params.max_age_s:.2f} s)", robot_age)
    pos = np.asarray(robot.positions_m, dtype=np.float64).reshape(-1, 3)
    missing = [n for n, p in zip(robot.joint_names, pos) if not np.isfinite(p).all()]
    if missing or len(pos) < 2:
        return _unknown(f"robot joints unknown: {', '.join(missing) or 'fewer than two joints'}", robot_age)
    if people is None:
        return _unknown("no people message received", robot_age)
    stamps = [p.stamp_s for p in people] + ([people_stamp_s] if people_stamp_s is not None else [])
    if not stamps:
        return _unknown("people message has no stamp", robot_age)
    people_age = now_s - min(stamps)
    age = max(robot_age, people_age)
    if not people_age <= params.max_age_s:
        return _unknown(f"people skeletons are {people_age:.2f} s old (max {params.max_age_s:.2f} s)", age)
    if unseen_person_ids:
        ids = ", ".join(str(i) for i in unseen_person_ids)
        return _unknown(f"person {ids} seen without a skeleton", age)
    for person in people:
        known = int(np.isfinite(np.asarray(person.positions_m, dtype=np.float64)).all(axis=1).sum())
        if known < params.min_person_joints:
            return _unknown(f"person {person.id} has {known} known joints (< {params.min_person_joints})", age)
    if not people:
        return Verdict(OK, speed_scale=1.0, data_age_s=age, reason="no person in view")

    robot_caps = chain_capsules(robot.joint_names, pos, params.robot_link_radius_m)
    v_r = params.robot_speed_unknown_mps if robot.speed_mps is None else float(robot.speed_mps)
    # The inputs are `age` old: the person and the robot kept moving meanwhile, so the
    # reaction time counts from the camera's capture, not from now.
    sep = replace(params.separation, reaction_time_s=params.separation.reaction_time_s + max(age, 0.0))
    worst: Verdict | None = None
    speed_scale = 1.0
    if depth is None:
        pairs = closest_pairs([params.body.capsules(p.positions_m) for p in people], robot_caps)
    else:
        pairs = [closest_pair_carved(*params.body.cover(p.positions_m), robot_caps, depth, params.carve_margin_m)
                 for p in people]
    for person, pair in zip(people, pairs):
        if pair is None:   # no robot capsule (cannot happen after the checks above) or no body capsule
            return _unknown(f"no capsules for person {person.id} or the robot", age)
        v_h = (STANDARD_HUMAN_SPEED_MPS if person.speed_mps is None
               else max(float(person.speed_mps), params.min_human_speed_mps))
        s_p = protective_separation(v_h, v_r, sep).total_m
        d = pair.distance_m
        if d <= s_p:
            level, why = PROTECTIVE_STOP, f"person {person.id} at {d:.2f} m, within S_p {s_p:.2f} m"
        elif d <= s_p + params.warning_margin_m:
            level, why = WARNING, f"person {person.id} at {d:.2f} m, within S_p {s_p:.2f} m + margin"
        else:
            level, why = OK, f"closest person {person.id} at {d:.2f} m, S_p {s_p:.2f} m"
        speed_scale = min(speed_scale, allowed_robot_speed(d, v_h, sep) / sep.robot_max_speed_mps)
        v = Verdict(level, d, s_p, 0.0, person.id, pair.name_a, pair.name_b, age, why, pair.point_a, pair.point_b)
        # the worst: the highest level (the levels' values are in order of severity), then the
        # deepest inside its S_p
        if worst is None or (v.level, v.separation_m - v.min_distance_m) > \
                (worst.level, worst.separation_m - worst.min_distance_m):
            worst = v
    worst.speed_scale = 0.0 if worst.level == PROTECTIVE_STOP else float(min(max(speed_scale, 0.0), 1.0))
    return worst
