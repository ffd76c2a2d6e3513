"""Bodies as capsules (a segment swept by a sphere) and their surface distances.

A capsule is two end points ``a``, ``b`` (metres, any common frame) and a radius; a
sphere is a capsule with a == b. The distance between two capsules is the distance
between their segments minus both radii (negative when they overlap).

Robot: one capsule per link between consecutive skeleton joints. Person: capsules
on the COCO-17 limbs and the torso, spheres at the head, hands and feet
(:class:`HumanBodyModel`). Joints at NaN (unknown) drop every capsule that uses them.
Each capsule end carries the name of its joint; the closest pair reports, for each
side, the joint at the end nearer to the closest point.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hrc_perception.skeletons import COCO17_NAMES

_EPS = 1e-12


def segment_closest_params(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Parameters (s, t) in [0, 1] of the closest points p0 + s (p1 - p0) and
    q0 + t (q1 - q0) of two segments. Inputs [..., 3], broadcast; outputs [...].

    Degenerate segments (points) are handled; for parallel segments one of the
    closest pairs is returned.
    """
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.einsum("...i,...i->...", d2, d2)
    b = np.einsum("...i,...i->...", d1, d2)
    c = np.einsum("...i,...i->...", d1, r)
    f = np.einsum("...i,...i->...", d2, r)
    denom = a * e - b * b
    # s on the infinite lines (0 for parallel or point segments), clamped to the segment.
    s = np.where(denom > _EPS * np.maximum(a * e, _EPS), (b * f - c * e) / np.where(denom > 0, denom, 1.0), 0.0)
    s = np.clip(s, 0.0, 1.0)
    # t for that s; where it leaves [0, 1], clamp t and recompute s for the clamped t.
    t = np.where(e > _EPS, (b * s + f) / np.where(e > _EPS, e, 1.0), 0.0)
    a_safe = np.where(a > _EPS, a, 1.0)
    s = np.where(t < 0.0, np.where(a > _EPS, np.clip(-c / a_safe, 0.0, 1.0), 0.0), s)
    s = np.where(t > 1.0, np.where(a > _EPS, np.clip((b - c) / a_safe, 0.0, 1.0), 0.0), s)
    t = np.clip(t, 0.0, 1.0)
    return s, t


@dataclass
class Capsules:
    """N capsules: a [N, 3], b [N, 3] end points (metres), radius [N] (metres), and
    the joint names at the ends, names_a [N] and names_b [N] (equal for a sphere)."""
    a: np.ndarray
    b: np.ndarray
    radius: np.ndarray
    names_a: list[str]
    names_b: list[str]

    def __len__(self) -> int:
        return len(self.radius)

    @classmethod
    def empty(cls) -> "Capsules":
        return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), [], [])


@dataclass
class ClosestPair:
    """The closest pair of two capsule sets: surface distance (metres, < 0 when they
    overlap), the index of each capsule, the joint nearest to the contact on each
    side (the capsule end nearer to the closest point), and the closest points on
    the two segment axes (metres)."""
    distance_m: float
    index_a: int
    index_b: int
    name_a: str
    name_b: str
    point_a: np.ndarray
    point_b: np.ndarray


def closest_pair(first: Capsules, second: Capsules) -> ClosestPair | None:
    """Closest pair between every capsule of ``first`` and every capsule of
    ``second`` (surface distance = axis distance - both radii); None if either is empty."""
    if len(first) == 0 or len(second) == 0:
        return None
    s, t = segment_closest_params(first.a[:, None], first.b[:, None], second.a[None], second.b[None])
    cp = first.a[:, None] + s[..., None] * (first.b - first.a)[:, None]
    cq = second.a[None] + t[..., None] * (second.b - second.a)[None]
    surface = np.linalg.norm(cp - cq, axis=-1) - first.radius[:, None] - second.radius[None]
    i, j = np.unravel_index(int(np.argmin(surface)), surface.shape)
    name_a = first.names_a[i] if s[i, j] <= 0.5 else first.names_b[i]
    name_b = second.names_a[j] if t[i, j] <= 0.5 else second.names_b[j]
    return ClosestPair(float(surface[i, j]), int(i), int(j), name_a, name_b, cp[i, j].copy(), cq[i, j].copy())


def chain_capsules(joint_names: list[str], positions_m: np.ndarray, radii_m: np.ndarray | float) -> Capsules:
    """Capsules of a serial chain (a robot arm): one per pair of consecutive joints.
    positions_m [J, 3]; radii_m: one radius or [J - 1]. A pair with a NaN joint is
    left out (the caller decides whether a gap is acceptable)."""
    p = np.asarray(positions_m, dtype=np.float64).reshape(-1, 3)
    r = np.broadcast_to(np.asarray(radii_m, dtype=np.float64), (max(len(p) - 1, 0),))
    keep = [k for k in range(len(p) - 1) if np.isfinite(p[k]).all() and np.isfinite(p[k + 1]).all()]
    if not keep:
        return Capsules.empty()
    return Capsules(p[keep], p[[k + 1 for k in keep]], r[keep].copy(),
                    [joint_names[k] for k in keep], [joint_names[k + 1] for k in keep])


def _idx(name: str) -> int:
    return COCO17_NAMES.index(name)


@dataclass
class HumanBodyModel:
    """A person as capsules on COCO-17 joints, radii in metres (defaults: a large adult,
    rounded up)."""
    head_radius_m: float = 0.13        # spheres on the nose and eyes, capsules nose-ears
    torso_radius_m: float = 0.15       # shoulders-hips box as four capsules
    upper_arm_radius_m: float = 0.07
    forearm_radius_m: float = 0.06
    hand_radius_m: float = 0.12        # sphere at the wrist covering the hand and fingers
    thigh_radius_m: float = 0.09
    shin_radius_m: float = 0.07
    foot_radius_m: float = 0.10        # sphere at the ankle
    limbs: list[tuple[str, str, str]] = field(default_factory=lambda: [
        # (joint, joint, radius attribute)
        ("left_shoulder", "left_elbow", "upper_arm_radius_m"), ("right_shoulder", "right_elbow", "upper_arm_radius_m"),
        ("left_elbow", "left_wrist", "forearm_radius_m"), ("right_elbow", "right_wrist", "forearm_radius_m"),
        ("left_hip", "left_knee", "thigh_radius_m"), ("right_hip", "right_knee", "thigh_radius_m"),
        ("left_knee", "left_ankle", "shin_radius_m"), ("right_knee", "right_ankle", "shin_radius_m"),
        ("left_shoulder", "right_shoulder", "torso_radius_m"), ("left_hip", "right_hip", "torso_radius_m"),
        ("left_shoulder", "left_hip", "torso_radius_m"), ("right_shoulder", "right_hip", "torso_radius_m"),
        ("nose", "left_ear", "head_radius_m"), ("nose", "right_ear", "head_radius_m")])
    spheres: list[tuple[str, str]] = field(default_factory=lambda: [
        ("nose", "head_radius_m"), ("left_eye", "head_radius_m"), ("right_eye", "head_radius_m"),
        ("left_wrist", "hand_radius_m"), ("right_wrist", "hand_radius_m"),
        ("left_ankle", "foot_radius_m"), ("right_ankle", "foot_radius_m")])

    def capsules(self, positions_m: np.ndarray) -> Capsules:
        """Capsules of one person from COCO-17 joints positions_m [17, 3] (NaN =
        unknown: capsules touching an unknown joint are left out; a lone known joint
        with no capsule of its own becomes a sphere of the torso radius, so no seen
        joint is ever ignored)."""
        p = np.asarray(positions_m, dtype=np.float64).reshape(len(COCO17_NAMES), 3)
        ok = np.isfinite(p).all(axis=1)
        a, b, r, names_a, names_b = [], [], [], [], []
        covered = np.zeros(len(p), bool)
        for prox, dist, attr in self.limbs:
            i, j = _idx(prox), _idx(dist)
            if ok[i] and ok[j]:
                a.append(p[i]), b.append(p[j]), r.append(getattr(self, attr))
                names_a.append(prox), names_b.append(dist)
                covered[[i, j]] = True
        for name, attr in self.spheres:
            i = _idx(name)
            if ok[i]:
                a.append(p[i]), b.append(p[i]), r.append(getattr(self, attr))
                names_a.append(name), names_b.append(name)
                covered[i] = True
        for i in np.flatnonzero(ok & ~covered):
            a.append(p[i]), b.append(p[i]), r.append(self.torso_radius_m)
            names_a.append(COCO17_NAMES[i]), names_b.append(COCO17_NAMES[i])
        if not a:
            return Capsules.empty()
        return Capsules(np.array(a), np.array(b), np.array(r), names_a, names_b)
