"""An independent check of the safety verdict for the property tests: what OK or WARNING
needs, from the inputs alone, without the monitor's body model.

Every capsule of the body model passes through the joints it is built on, so a person's
surface is never farther from the robot than their nearest known joint *point*; the robot's
links are segments between its joints with the link radius. The verdict's margin (its
distance minus its S_p) can therefore never exceed, for any person, the margin of that
person's nearest known joint point (grown by the body speed floor times the time since the
person was seen) against the smallest S_p the parameters allow (the body speed floor, the
robot's speed). Plain numpy, point to segment by projection (not the monitor's
segment-to-segment code).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from hrc_perception.safety.separation import protective_separation


def point_segment_distance_m(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance (m) from point p [3] to the segment a-b [3] (projection, clamped)."""
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0.0 else min(max(float((p - a) @ ab) / denom, 0.0), 1.0)
    return float(np.linalg.norm(p - (a + t * ab)))


ONLY_ARM_JOINTS = (7, 8, 9, 10)     # COCO-17 elbows and wrists: on no trunk capsule


def joint_distances_m(person_m: np.ndarray, robot_m: np.ndarray, link_radius_m: float) -> np.ndarray:
    """[17] distance (m) from each joint of person_m [17, 3] to the robot's link surfaces
    (segments between consecutive robot joints robot_m [J, 3], minus the radius); inf for
    an unknown joint."""
    out = np.full(len(person_m), math.inf)
    for j, p in enumerate(person_m):
        if np.isfinite(p).all():
            out[j] = min(point_segment_distance_m(p, a, b) for a, b in zip(robot_m[:-1], robot_m[1:])) - link_radius_m
    return out


def margin_upper_bound_m(person_m: np.ndarray, since_s: float, robot_m: np.ndarray, robot_speed_mps: float,
                         age_s: float, params) -> float:
    """An upper bound (m) of the margin (distance - S_p) any correct verdict can give this
    person: over the known joints, the joint point's distance grown by its slowest part's
    floor speed x since_s, against S_p at that speed with T_r lengthened by age_s. A joint
    of the trunk (or the shoulder, shared) moves at least at the body floor, an elbow or
    wrist (on arm capsules only) at least at the arm floor (ISO 13855)."""
    d = joint_distances_m(person_m, robot_m, params.robot_link_radius_m)
    sep = replace(params.separation, reaction_time_s=params.separation.reaction_time_s + max(age_s, 0.0))
    v_body = params.min_human_speed_mps
    v_arm = max(params.min_arm_speed_mps, v_body)
    best = math.inf
    for j in np.flatnonzero(np.isfinite(d)):
        v = v_arm if j in ONLY_ARM_JOINTS else v_body
        best = min(best, d[j] - v * max(since_s, 0.0) - protective_separation(v, robot_speed_mps, sep).total_m)
    return best
