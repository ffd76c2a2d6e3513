"""Bodies as capsules (a segment swept by a sphere) and their surface distances.

A capsule is two end points ``a``, ``b`` (metres, any common frame) and a radius; a
sphere is a capsule with a == b. The distance between two capsules is the distance
between their segments minus both radii (negative when they overlap).

Robot: one capsule per link between consecutive skeleton joints. Person: capsules
on the COCO-17 limbs and the torso, spheres at the head, hands and feet
(:class:`HumanBodyModel`). A capsule touching a joint at NaN (unknown) is moved to
known joints within reach and grown by that reach (:meth:`HumanBodyModel.cover`).
Each capsule end carries the name of its joint; the closest pair reports, for each
side, the joint at the end nearer to the closest point.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

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
    # the second segment a point: t = 0 and s the projection of that point on the first
    s = np.where(e > _EPS, s, np.where(a > _EPS, np.clip(-c / a_safe, 0.0, 1.0), 0.0))
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

    def grown(self, extra_m: float) -> "Capsules":
        """These capsules with every radius larger by extra_m (metres, >= 0)."""
        return Capsules(self.a, self.b, self.radius + float(extra_m), self.names_a, self.names_b)

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


def point_segment_distances(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances [...] of points p [..., 3] to segments a-b [..., 3] (broadcast; metres)."""
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), _EPS), 0.0, 1.0)
    return np.linalg.norm(a + t[..., None] * ab - p, axis=-1)


def pairwise_closest(a: np.ndarray, b: np.ndarray, radius: np.ndarray, other: Capsules):
    """Capsules (a [N, 3], b [N, 3], radius [N]) against every capsule of other [M]: the
    surface distances [N, M], the segment parameters s, t [N, M] and the closest points on
    the axes cp, cq [N, M, 3]."""
    s, t = segment_closest_params(a[:, None], b[:, None], other.a[None], other.b[None])
    cp = a[:, None] + s[..., None] * (b - a)[:, None]
    cq = other.a[None] + t[..., None] * (other.b - other.a)[None]
    return np.linalg.norm(cp - cq, axis=-1) - radius[:, None] - other.radius[None], s, t, cp, cq


def closest_pairs(groups: list[Capsules], other: Capsules) -> list[ClosestPair | None]:
    """For every capsule set of ``groups`` (e.g. one per person), its closest pair with
    ``other`` (surface distance = axis distance - both radii; None for an empty set or
    an empty ``other``). One vectorised pass over all groups' capsules."""
    if len(other) == 0 or not groups:
        return [None] * len(groups)
    a = np.concatenate([g.a for g in groups])
    b = np.concatenate([g.b for g in groups])
    radius = np.concatenate([g.radius for g in groups])
    surface, s, t, cp, cq = pairwise_closest(a, b, radius, other)
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
    """A person as capsules on COCO-17 joints, radii in metres. Defaults: they enclose
    every body the synthetic cell makes (people up to 1.95 m, proportions +-8%, any
    pose; tested), with about a centimetre to spare."""
    head_radius_m: float = 0.18        # spheres on the nose and eyes, capsules nose-ears
    torso_radius_m: float = 0.23       # shoulders-hips box as four capsules (and the neck)
    upper_arm_radius_m: float = 0.07
    forearm_radius_m: float = 0.06
    hand_radius_m: float = 0.24        # sphere at the wrist: the whole hand, fingers stretched
    thigh_radius_m: float = 0.11
    shin_radius_m: float = 0.07
    foot_radius_m: float = 0.26        # sphere at the ankle: the whole foot, toes included
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

    # Bones of the skeleton with the longest joint-to-joint distance of a very tall adult
    # (metres; above every body the synthetic cell makes, tested). An unknown joint lies
    # within the shortest path over these of every known joint (triangle inequality):
    # the unknown joints are covered from them.
    bones: list[tuple[str, str, float]] = field(default_factory=lambda: [
        ("nose", "left_eye", 0.07), ("nose", "right_eye", 0.07), ("left_eye", "left_ear", 0.14),
        ("right_eye", "right_ear", 0.14), ("nose", "left_shoulder", 0.42), ("nose", "right_shoulder", 0.42),
        ("left_ear", "left_shoulder", 0.36), ("right_ear", "right_shoulder", 0.36),
        ("left_shoulder", "right_shoulder", 0.50), ("left_hip", "right_hip", 0.35),
        ("left_shoulder", "left_hip", 0.68), ("right_shoulder", "right_hip", 0.68),
        ("left_shoulder", "left_elbow", 0.42), ("right_shoulder", "right_elbow", 0.42),
        ("left_elbow", "left_wrist", 0.34), ("right_elbow", "right_wrist", 0.34),
        ("left_hip", "left_knee", 0.56), ("right_hip", "right_knee", 0.56),
        ("left_knee", "left_ankle", 0.56), ("right_knee", "right_ankle", 0.56)])
    cover_unknown: bool = True         # unknown joints count as anywhere they could be (else: left out)
    # joints of the arm and hand: a capsule touching one moves at an arm's speed (ISO 13855: 2.0 m/s)
    arm_joints: tuple[str, ...] = ("left_elbow", "right_elbow", "left_wrist", "right_wrist")

    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(end joint a [C], end joint b [C], radius [C]) of every limb and sphere, COCO-17 indices."""
        pairs = [(_idx(a), _idx(b), getattr(self, attr)) for a, b, attr in self.limbs]
        pairs += [(_idx(n), _idx(n), getattr(self, attr)) for n, attr in self.spheres]
        ia, ib, r = zip(*pairs)
        return np.array(ia), np.array(ib), np.array(r, dtype=np.float64)

    @cached_property
    def bone_distances(self) -> np.ndarray:
        """[17, 17] the longest possible distance (metres) between any two joints: shortest
        paths over ``bones`` (inf where no path); computed once."""
        n = len(COCO17_NAMES)
        d = np.full((n, n), np.inf)
        np.fill_diagonal(d, 0.0)
        for a, b, length in self.bones:
            d[_idx(a), _idx(b)] = d[_idx(b), _idx(a)] = min(d[_idx(a), _idx(b)], float(length))
        for k in range(n):
            d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
        return d

    def anchors(self, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each joint, (the known joint it lies within reach of [17] (itself when known;
        -1 when nothing is known), that reach in metres [17] (0 when known))."""
        d = self.bone_distances[:, np.asarray(known, bool)]
        if d.shape[1] == 0:
            return np.full(len(COCO17_NAMES), -1), np.full(len(COCO17_NAMES), np.inf)
        k = np.argmin(d, axis=1)
        return np.flatnonzero(known)[k], d[np.arange(len(COCO17_NAMES)), k]

    def cover(self, positions_m: np.ndarray) -> tuple[Capsules, Capsules, np.ndarray]:
        """One person from COCO-17 joints positions_m [17, 3] (metres; NaN = unknown) as
        (body, reach, reach_end_radius_m):

        - body: the capsules between known joints; a lone known joint with no capsule of
          its own as a sphere of the torso radius (no seen joint is ever ignored); and,
          with ``cover_unknown``, every capsule touching an unknown joint moved to the
          joints' anchors (:meth:`anchors`) and grown by the larger reach: it covers
          every place the capsule could be, when its two anchors differ;
        - reach: when they are the same joint, one sphere per anchor (named after it)
          whose radius is the largest reach plus the largest capsule radius, and those
          capsule radii, reach_end_radius_m [N]: the limb's axis lies within radius -
          end radius of the anchor (what :mod:`~hrc_perception.safety.carving` needs).
        """
        trunk, arm, reach, end_r = self.cover_parts(positions_m)
        return trunk.concat(arm), reach, end_r

    def cover_parts(self, positions_m: np.ndarray) -> tuple[Capsules, Capsules, Capsules, np.ndarray]:
        """:meth:`cover` with the body split by the speed a part may move at (ISO 13855):
        (trunk, arm, reach, reach_end_radius_m). trunk: capsules between known joints none
        of which is in ``arm_joints`` (torso, head, legs), and lone known joints outside
        it; arm: every other body capsule, the ones moved to cover an unknown joint
        included (that joint may be a hand). The reach spheres may hold a hand too."""
        p = np.asarray(positions_m, dtype=np.float64).reshape(len(COCO17_NAMES), 3)
        ok = np.isfinite(p).all(axis=1)
        ia, ib, r = self._layout()
        arm_joint = np.zeros(len(p), bool)
        arm_joint[[_idx(n) for n in self.arm_joints]] = True
        keep = ok[ia] & ok[ib]
        covered = np.zeros(len(p), bool)
        covered[ia[keep]] = covered[ib[keep]] = True
        lone = np.flatnonzero(ok & ~covered)
        ca, cb = [ia[keep], lone], [ib[keep], lone]
        cr = [r[keep], np.full(len(lone), self.torso_radius_m)]
        fast = [arm_joint[ia[keep]] | arm_joint[ib[keep]], arm_joint[lone]]
        sphere_reach: dict[int, tuple[float, float]] = {}      # anchor -> (reach, end radius)
        if self.cover_unknown and ok.any() and not ok.all():
            anchor, reach = self.anchors(ok)
            moved = ~keep
            aa, ab = anchor[ia[moved]], anchor[ib[moved]]
            slack = np.maximum(reach[ia[moved]], reach[ib[moved]])
            for x, y, sl, rad in zip(aa, ab, slack, r[moved]):
                if x == y:
                    old = sphere_reach.get(int(x), (0.0, 0.0))
                    sphere_reach[int(x)] = (max(old[0], float(sl)), max(old[1], float(rad)))
            two = aa != ab
            ca.append(aa[two])
            cb.append(ab[two])
            cr.append(r[moved][two] + slack[two])
            fast.append(np.ones(int(two.sum()), bool))
        ia, ib, r = np.concatenate(ca).astype(int), np.concatenate(cb).astype(int), np.concatenate(cr)
        fast = np.concatenate(fast)
        trunk, arm = (Capsules(p[ia[m]], p[ib[m]], r[m], [COCO17_NAMES[i] for i in ia[m]],
                               [COCO17_NAMES[i] for i in ib[m]]) for m in (~fast, fast))
        idx = sorted(sphere_reach)
        end_r = np.array([sphere_reach[i][1] for i in idx], np.float64)
        radius = np.array([sphere_reach[i][0] for i in idx], np.float64) + end_r
        names = [COCO17_NAMES[i] for i in idx]
        reach_caps = Capsules(p[idx].reshape(-1, 3), p[idx].reshape(-1, 3), radius, names, list(names))
        return trunk, arm, reach_caps, end_r

    def capsules(self, positions_m: np.ndarray) -> Capsules:
        """Every capsule of one person (:meth:`cover`: body, then the reach spheres)."""
        body, reach, _ = self.cover(positions_m)
        return body.concat(reach)
