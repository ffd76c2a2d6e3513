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

    def concat(self, other: "Capsules") -> "Capsules":
        """These capsules, then other's."""
        return Capsules(np.concatenate([self.a, other.a]), np.concatenate([self.b, other.b]),
                        np.concatenate([self.radius, other.radius]), self.names_a + other.names_a,
                        self.names_b + other.names_b)


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


def closest_pairs(groups: list[Capsules], other: Capsules) -> list[ClosestPair | None]:
    """For every capsule set of ``groups`` (e.g. one per person), its closest pair with
    ``other`` (surface distance = axis distance - both radii; None for an empty set or
    an empty ``other``). One vectorised pass over all groups' capsules."""
    if len(other) == 0 or not groups:
        return [None] * len(groups)
    a = np.concatenate([g.a for g in groups])
    b = np.concatenate([g.b for g in groups])
    radius = np.concatenate([g.radius for g in groups])
    s, t = segment_closest_params(a[:, None], b[:, None], other.a[None], other.b[None])
    cp = a[:, None] + s[..., None] * (b - a)[:, None]
    cq = other.a[None] + t[..., None] * (other.b - other.a)[None]
    surface = np.linalg.norm(cp - cq, axis=-1) - radius[:, None] - other.radius[None]
    out, start = [], 0
    for g in groups:
        n = len(g)
        if n == 0:
            out.append(None)
            continue
        block = surface[start:start + n]
        i, j = np.unravel_index(int(np.argmin(block)), block.shape)
        k = start + i
        name_a = g.names_a[i] if s[k, j] <= 0.5 else g.names_b[i]
        name_b = other.names_a[j] if t[k, j] <= 0.5 else other.names_b[j]
        out.append(ClosestPair(float(block[i, j]), int(i), int(j), name_a, name_b, cp[k, j].copy(), cq[k, j].copy()))
        start += n
    return out


def closest_pair(first: Capsules, second: Capsules) -> ClosestPair | None:
    """Closest pair between every capsule of ``first`` and every capsule of ``second``
    (:func:`closest_pairs` of one group)."""
    return closest_pairs([first], second)[0]


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

    # A limb whose outer joint is unknown may be anywhere within reach of its known inner
    # joint: its axis within the chain's length (segment lengths of a tall adult), its
    # surface within that plus the end's own radius, so an unseen hand still counts
    # (conservatively).
    reach: list[tuple[str, str, float, str]] = field(default_factory=lambda: [
        # (known joint, unknown joint, chain length in metres, radius attribute of the end)
        ("left_elbow", "left_wrist", 0.30, "hand_radius_m"), ("right_elbow", "right_wrist", 0.30, "hand_radius_m"),
        ("left_shoulder", "left_elbow", 0.63, "hand_radius_m"), ("right_shoulder", "right_elbow", 0.63, "hand_radius_m"),
        ("left_knee", "left_ankle", 0.48, "foot_radius_m"), ("right_knee", "right_ankle", 0.48, "foot_radius_m"),
        ("left_hip", "left_knee", 0.95, "foot_radius_m"), ("right_hip", "right_knee", 0.95, "foot_radius_m")])

    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(end joint a [C], end joint b [C], radius [C]) of every limb and sphere, COCO-17 indices."""
        pairs = [(_idx(a), _idx(b), getattr(self, attr)) for a, b, attr in self.limbs]
        pairs += [(_idx(n), _idx(n), getattr(self, attr)) for n, attr in self.spheres]
        ia, ib, r = zip(*pairs)
        return np.array(ia), np.array(ib), np.array(r, dtype=np.float64)

    def capsules(self, positions_m: np.ndarray, with_reach: bool = True) -> Capsules:
        """Capsules of one person from COCO-17 joints positions_m [17, 3] (NaN =
        unknown: capsules touching an unknown joint are left out; a lone known joint
        with no capsule of its own becomes a sphere of the torso radius, so no seen
        joint is ever ignored), then, with_reach, the :meth:`reach_spheres`."""
        p = np.asarray(positions_m, dtype=np.float64).reshape(len(COCO17_NAMES), 3)
        ok = np.isfinite(p).all(axis=1)
        ia, ib, r = self._layout()
        keep = ok[ia] & ok[ib]
        covered = np.zeros(len(p), bool)
        covered[ia[keep]] = covered[ib[keep]] = True
        lone = np.flatnonzero(ok & ~covered)
        ia = np.concatenate([ia[keep], lone])
        ib = np.concatenate([ib[keep], lone])
        r = np.concatenate([r[keep], np.full(len(lone), self.torso_radius_m)])
        body = Capsules(p[ia], p[ib], r, [COCO17_NAMES[i] for i in ia], [COCO17_NAMES[i] for i in ib])
        return body.concat(self.reach_spheres(p)[0]) if with_reach else body

    def reach_spheres(self, positions_m: np.ndarray) -> tuple[Capsules, np.ndarray]:
        """One sphere per unknown elbow, wrist, knee or ankle whose inner joint is known
        (``reach``): centred on the inner joint, radius the chain length plus the end's
        radius, named after the inner joint; and the end's radius [N] (metres), so the
        limb's axis lies within radius - end radius. positions_m [17, 3] (metres, NaN =
        unknown)."""
        p = np.asarray(positions_m, dtype=np.float64).reshape(len(COCO17_NAMES), 3)
        ok = np.isfinite(p).all(axis=1)
        reach = [(_idx(k), length, getattr(self, attr)) for k, u, length, attr in self.reach
                 if ok[_idx(k)] and not ok[_idx(u)]]
        idx = [k for k, _, _ in reach]
        end_radius = np.array([r for _, _, r in reach], np.float64)
        radius = np.array([length for _, length, _ in reach], np.float64) + end_radius
        names = [COCO17_NAMES[i] for i in idx]
        return Capsules(p[idx].reshape(-1, 3), p[idx].reshape(-1, 3), radius, names, list(names)), end_radius
