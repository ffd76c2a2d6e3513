"""Motion scripts for the cell's people: a random plan of behaviours, evaluated as a
continuous function of time (seconds) into a ``HumanPose``.

A script is a chain of segments between keyframes of a flat vector of pose
parameters (``PARAMS``). A segment interpolates them with smoothstep, except:

* ``walk``: the root moves on a straight line with a trapezoidal speed profile
  (accelerate, cruise at the walking speed, decelerate); the gait phase advances
  with the distance walked, and legs and arms swing with an amplitude proportional
  to the speed (the pelvis bob follows from the legs, see ``humans``);
* ``fall``: the fall angle accelerates and the body lands within the segment.

Each segment starts from the parameters the previous one has at that instant, so a
pose never jumps. Yaw keyframes are unwrapped, so yaw turns the short way.
The script's own clock starts with the person outside the cell (or at its edge);
the episode's t = 0 is ``time_offset_s`` later, a random phase of the plan.
World frame as in ``layout``: z up, origin under the table centre; the robot stands
at the table's -x end, so people use the +x end and the +-y sides.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hrc_perception.sim.config import HumansConfig
from hrc_perception.sim.humans import ArmPose, BodyShape, HumanPose, LegPose, joints_world
from hrc_perception.sim.layout import CellLayout

PARAMS: tuple[str, ...] = (
    "x", "y", "yaw", "pitch", "head_yaw", "head_pitch",
    "l_flex", "l_abd", "l_elbow", "l_ik", "l_tx", "l_ty", "l_tz",
    "r_flex", "r_abd", "r_elbow", "r_ik", "r_tx", "r_ty", "r_tz",
    "l_hip", "l_knee", "r_hip", "r_knee", "fall", "fall_dir", "gait")
_I = {n: i for i, n in enumerate(PARAMS)}   # x, y first: v[:2] is the root position
NEUTRAL = dict(pitch=0.0, head_yaw=0.0, head_pitch=0.0, l_flex=0.0, l_abd=0.12, l_elbow=0.15, l_ik=0.0,
               r_flex=0.0, r_abd=0.12, r_elbow=0.15, r_ik=0.0, l_hip=0.0, l_knee=0.0, r_hip=0.0, r_knee=0.0)
SPOT_EDGE_DISTANCE_M = (0.32, 0.5)   # standing spots: body centre this far outside the table edge
CORNER_MARGIN_M = 0.42               # walking paths round the table's +x corners this far out
CLEARANCE_M = 0.28                   # path segments keep this far from the table rectangle
MIN_SPOT_SEPARATION_M = 0.75         # > the 0.7 m that callers rely on
_ACTIONS = ("reach", "bend", "look", "idle", "exit")
_ACTION_P = (0.45, 0.15, 0.17, 0.13, 0.10)
MAX_REACH_PITCH_RAD = 1.0           # reaching bends the torso at most this far forward
HAND_REACH = 0.8                     # fingers touch a reach point this far (hand lengths) beyond the wrist
NEAR_TABLE_M = 1.2                   # falls happen this close to the table when the person ever is
MIN_STAY_S = 4.0                     # no walking out before this long at the table


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def _smoothstep(u: float) -> float:
    return u * u * (3.0 - 2.0 * u)


def _travel(tau: float, T: float, ramp: float) -> tuple[float, float]:
    """Trapezoidal speed profile: (fraction of the distance done, speed / cruise
    speed) at time tau of a walk of duration T with accel/decel ramps of ramp s."""
    tau = min(max(tau, 0.0), T)
    cruise_T = T - ramp
    if tau < ramp:
        return 0.5 * tau * tau / ramp / cruise_T, tau / ramp
    if tau > T - ramp:
        return 1.0 - 0.5 * (T - tau) ** 2 / ramp / cruise_T, (T - tau) / ramp
    return (0.5 * ramp + tau - ramp) / cruise_T, 1.0


@dataclass
class _Segment:
    """Interpolation from v0 (at t0) to v1 (at t1); active until the next one starts."""
    t0: float
    t1: float
    v0: np.ndarray
    v1: np.ndarray
    kind: str = "smooth"        # 'smooth' | 'walk' | 'fall'
    ramp_s: float = 0.0         # walk: acceleration time
    hip_amp_rad: float = 0.0    # walk: hip swing amplitude at cruise speed

    def at(self, tau: float) -> np.ndarray:
        dt = self.t1 - self.t0
        u = min(max((tau - self.t0) / dt, 0.0), 1.0) if dt > 0 else 1.0
        v = self.v0 + (self.v1 - self.v0) * _smoothstep(u)
        if self.kind == "walk":
            f, speed = _travel(tau - self.t0, dt, self.ramp_s)
            for n in ("x", "y", "gait"):
                v[_I[n]] = self.v0[_I[n]] + (self.v1[_I[n]] - self.v0[_I[n]]) * f
            _add_gait(v, speed, self.hip_amp_rad)
        elif self.kind == "fall":
            v[_I["fall"]] = self.v0[_I["fall"]] + (self.v1[_I["fall"]] - self.v0[_I["fall"]]) * 0.5 * (
                u * u + _smoothstep(u))
        return v


_GAIT = [_I[n] for n in ("l_hip", "r_hip", "l_knee", "r_knee", "l_flex", "r_flex", "l_elbow", "r_elbow", "pitch")]


def _add_gait(v: np.ndarray, amp: float, hip_amp: float) -> None:
    """Swing legs (the knee bends while its leg swings forward) and arms (opposite to
    the leg) by the gait phase v['gait'], scaled by amp = speed / cruise speed; in place."""
    s, c = np.sin(v[_I["gait"]]), np.cos(v[_I["gait"]])
    h = hip_amp * s
    v[_GAIT] += amp * np.array([h, -h, 0.95 * max(0.0, c), 0.95 * max(0.0, -c), -1.1 * h, 1.1 * h, 0.25, 0.25, 0.05])


def _pose_from_params(v: np.ndarray) -> HumanPose:
    """HumanPose of a parameter vector [len(PARAMS)]."""
    def arm(p: str) -> ArmPose:
        w = float(v[_I[p + "_ik"]])
        target = tuple(float(v[_I[p + k]]) for k in ("_tx", "_ty", "_tz")) if w > 0 else None
        return ArmPose(float(v[_I[p + "_flex"]]), float(v[_I[p + "_abd"]]), float(v[_I[p + "_elbow"]]), target, w)
    g = lambda n: float(v[_I[n]])  # noqa: E731
    return HumanPose(root_xy_m=(g("x"), g("y")), yaw_rad=_wrap(g("yaw")), torso_pitch_rad=g("pitch"),
                     head_yaw_rad=g("head_yaw"), head_pitch_rad=g("head_pitch"), left_arm=arm("l"),
                     right_arm=arm("r"), left_leg=LegPose(g("l_hip"), g("l_knee")),
                     right_leg=LegPose(g("r_hip"), g("r_knee")), fall_angle_rad=g("fall"),
                     fall_direction_rad=g("fall_dir"))


@dataclass
class HumanScript:
    """A person's plan over an episode (times in seconds from the episode start).

    standing_spot_xy_m: where the person stands at the table (world x, y);
    time_offset_s: script clock at episode t = 0; fall_time_s: episode time the
    fall starts (None: no fall); events: (episode time, behaviour) as planned.
    """
    shape: BodyShape
    duration_s: float
    floor_bounds_m: tuple[tuple[float, float], tuple[float, float]]
    segments: list[_Segment]
    time_offset_s: float
    standing_spot_xy_m: tuple[float, float]
    walk_speed_m_s: float
    fall_time_s: float | None = None
    events: list[tuple[float, str]] = field(default_factory=list)

    @property
    def standing_spots_xy_m(self) -> list[tuple[float, float]]:
        return [self.standing_spot_xy_m]

    def params_at(self, t_s: float) -> np.ndarray:
        """Pose parameter vector [len(PARAMS)] at episode time t_s (clamped to the plan)."""
        tau = min(max(t_s + self.time_offset_s, self.segments[0].t0), self.segments[-1].t1)
        i = max(0, int(np.searchsorted([s.t0 for s in self.segments], tau, side="right")) - 1)
        return self.segments[i].at(tau)

    def pose_at(self, t_s: float) -> HumanPose:
        return _pose_from_params(self.params_at(t_s))

    def present_at(self, t_s: float) -> bool:
        """True while the body root is inside the floor bounds."""
        v = self.params_at(t_s)
        (x0, x1), (y0, y1) = self.floor_bounds_m
        return bool(x0 <= v[_I["x"]] <= x1 and y0 <= v[_I["y"]] <= y1)


class _Planner:
    """Appends segments to a growing plan; self.v is the parameter vector at self.t."""

    def __init__(self, v0: np.ndarray):
        self.t, self.v, self.segments = 0.0, v0.copy(), []

    def to(self, dt: float, **changes: float) -> None:
        """Smooth transition over dt seconds to the current values updated by changes;
        'yaw' is taken the short way round from the current yaw."""
        for arm in ("l", "r"):   # an idle arm's target is unused: start a new reach from its own target
            if self.v[_I[arm + "_ik"]] == 0.0:
                for k in ("_tx", "_ty", "_tz"):
                    self.v[_I[arm + k]] = changes.get(arm + k, self.v[_I[arm + k]])
        v1 = self.v.copy()
        for name, value in changes.items():
            if name == "yaw":
                value = self.v[_I["yaw"]] + _wrap(value - self.v[_I["yaw"]])
            v1[_I[name]] = value
        self._push(_Segment(self.t, self.t + dt, self.v.copy(), v1))

    def walk(self, xy: np.ndarray, speed: float, hip_amp: float, stride: float) -> None:
        """Turn towards xy in place, then walk there in a straight line."""
        d = np.asarray(xy, float) - self.v[:2]
        dist = float(np.linalg.norm(d))
        if dist < 1e-3:
            return
        heading = float(np.arctan2(d[1], d[0]))
        self.to(0.3 + abs(_wrap(heading - self.v[_I["yaw"]])) / 2.2, yaw=heading, **NEUTRAL)
        ramp = min(0.5, dist / speed)
        v1 = self.v.copy()
        v1[_I["x"]], v1[_I["y"]] = xy
        v1[_I["gait"]] += 2 * np.pi * dist / stride
        self._push(_Segment(self.t, self.t + dist / speed + ramp, self.v.copy(), v1, "walk", ramp, hip_amp))

    def _push(self, seg: _Segment) -> None:
        self.segments.append(seg)
        self.t, self.v = seg.t1, seg.v1.copy()


# --- where to stand and walk ------------------------------------------------------

def _segment_hits_rect(p: np.ndarray, q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the segment p-q [2] passes through the open rectangle lo-hi [2]."""
    d = q - p
    t0, t1 = 0.0, 1.0
    for k in range(2):
        if abs(d[k]) < 1e-12:
            if not lo[k] < p[k] < hi[k]:
                return False
            continue
        a, b = sorted(((lo[k] - p[k]) / d[k], (hi[k] - p[k]) / d[k]))
        t0, t1 = max(t0, a), min(t1, b)
    return t0 < t1 - 1e-9


def _path_length(path: list[np.ndarray]) -> float:
    return float(sum(np.linalg.norm(q - p) for p, q in zip(path[:-1], path[1:])))


def _table_distance(xy: np.ndarray, layout: CellLayout) -> float:
    """Distance of a floor point [2] from the table rectangle (0 inside)."""
    lo = np.array([layout.table_x_m[0], layout.table_y_m[0]])
    hi = np.array([layout.table_x_m[1], layout.table_y_m[1]])
    return float(np.linalg.norm(np.maximum(np.maximum(lo - xy, xy - hi), 0.0)))


def _path(a: np.ndarray, b: np.ndarray, layout: CellLayout) -> list[np.ndarray]:
    """Shortest way from a to b [2] that keeps CLEARANCE_M from the table, going
    round the table's +x corners when needed (never round the robot's -x end)."""
    lo = np.array([layout.table_x_m[0], layout.table_y_m[0]]) - CLEARANCE_M
    hi = np.array([layout.table_x_m[1], layout.table_y_m[1]]) + CLEARANCE_M
    cx = layout.table_x_m[1] + CORNER_MARGIN_M
    c1 = np.array([cx, layout.table_y_m[1] + CORNER_MARGIN_M])
    c2 = np.array([cx, layout.table_y_m[0] - CORNER_MARGIN_M])
    candidates = [[a, b], [a, c1, b], [a, c2, b], [a, c1, c2, b], [a, c2, c1, b]]
    ok = [p for p in candidates if not any(_segment_hits_rect(p[i], p[i + 1], lo, hi) for i in range(len(p) - 1))]
    return min(ok, key=_path_length) if ok else candidates[3]


def _spot_on_side(rng: np.random.Generator, layout: CellLayout, side: str) -> tuple[np.ndarray, float]:
    """A standing spot [2] outside one table edge ('+x', '+y', '-y') and the yaw facing the table."""
    (x0, x1), (y0, y1) = layout.table_x_m, layout.table_y_m
    d = rng.uniform(*SPOT_EDGE_DISTANCE_M)
    if side == "+x":
        return np.array([x1 + d, rng.uniform(y0 + 0.1, y1 - 0.1)]), np.pi
    x = rng.uniform(x0 + 0.3, x1 - 0.05)
    return (np.array([x, y1 + d]), -np.pi / 2) if side == "+y" else (np.array([x, y0 - d]), np.pi / 2)


def _nearest_outside_point(rng: np.random.Generator, layout: CellLayout, start: np.ndarray,
                           out_m: tuple[float, float], tries: int) -> np.ndarray:
    """Of a few random points beyond the floor bounds, the one with the shortest path to start."""
    pts = [_outside_point(rng, layout, out_m) for _ in range(tries)]
    return min(pts, key=lambda q: _path_length(_path(start, q, layout)))


def _choose_spot(rng: np.random.Generator, layout: CellLayout,
                 avoid_xy_m) -> tuple[np.ndarray, float]:
    """A standing spot at least MIN_SPOT_SEPARATION_M from every avoid point (the
    farthest of many tries if none is), and its facing yaw."""
    avoid = np.asarray(list(avoid_xy_m), float).reshape(-1, 2)
    best, best_d = None, -1.0
    for _ in range(60):
        spot, yaw = _spot_on_side(rng, layout, ("+x", "+y", "-y")[rng.integers(3)])
        dmin = float(np.min(np.linalg.norm(avoid - spot, axis=1))) if len(avoid) else np.inf
        if dmin >= MIN_SPOT_SEPARATION_M:
            return spot, yaw
        if dmin > best_d:
            best, best_d = (spot, yaw), dmin
    return best


def _outside_point(rng: np.random.Generator, layout: CellLayout, out_m: tuple[float, float]) -> np.ndarray:
    """A point out_m (a [low, high] range) beyond the floor bounds on the +x or +-y side."""
    (bx0, bx1), (by0, by1) = layout.floor_bounds_m
    out = rng.uniform(*out_m)
    side = rng.integers(3)
    if side == 0:
        return np.array([bx1 + out, rng.uniform(by0 + 0.3, by1 - 0.3)])
    x = rng.uniform(layout.table_x_m[0] + 0.3, bx1 - 0.3)
    return np.array([x, by1 + out]) if side == 1 else np.array([x, by0 - out])


# --- behaviours -------------------------------------------------------------------

def _arm_target_changes(arm: str, target: np.ndarray) -> dict[str, float]:
    return {f"{arm}_ik": 1.0, f"{arm}_tx": target[0], f"{arm}_ty": target[1], f"{arm}_tz": target[2]}


def _with(v: np.ndarray, **changes: float) -> np.ndarray:
    v = v.copy()
    for name, value in changes.items():
        v[_I[name]] = value
    return v


def _wrist_targets(shape: BodyShape, v: np.ndarray, points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Wrist targets that put each arm's fingers (HAND_REACH of the hand length beyond
    the wrist, along the forearm) just above its reach point, so that the hand touches
    a part on the table rather than going through it; v: parameters of the reach pose."""
    lift = np.array([0.0, 0.0, 0.02])
    wrists = {a: pt + lift for a, pt in points.items()}
    for _ in range(3):
        changes: dict[str, float] = {}
        for a, w in wrists.items():
            changes.update(_arm_target_changes(a, w))
        j = joints_world(shape, _pose_from_params(_with(v, **changes)))
        for a, pt in points.items():
            elbow, wrist = j[7 if a == "l" else 8], j[9 if a == "l" else 10]
            wrists[a] = pt + lift - HAND_REACH * shape.hand_length_m * (wrist - elbow) / np.linalg.norm(wrist - elbow)
    return wrists


def _reach(p: _Planner, rng: np.random.Generator, shape: BodyShape, layout: CellLayout, face: float) -> None:
    """Turn towards one of the nearest reach targets and reach it with one or both
    arms (two-bone IK), bending the torso as far as needed to get it within reach."""
    targets = np.asarray(layout.reach_targets_m, float).reshape(-1, 3)
    if len(targets) == 0:
        return _look(p, rng, face)
    xy = p.v[:2].copy()
    order = np.argsort(np.linalg.norm(targets[:, :2] - xy, axis=1))
    target = targets[order[rng.integers(min(3, len(order)))]]
    desired = float(np.arctan2(target[1] - xy[1], target[0] - xy[0]))
    yaw = face + float(np.clip(_wrap(desired - face), -0.6, 0.6))
    left = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    lateral = float(left @ (target - np.array([*xy, 0.0])))
    if rng.random() < 0.3:
        arms = {"l": target + 0.08 * left, "r": target - 0.08 * left}
    else:
        near = "l" if lateral > 0 else "r"
        arm = near if rng.random() < 0.85 else {"l": "r", "r": "l"}[near]
        arms = {arm: target}
    knee = rng.uniform(0.0, 0.15)
    ch: dict[str, float] = dict(yaw=p.v[_I["yaw"]] + _wrap(yaw - p.v[_I["yaw"]]), l_knee=knee, r_knee=knee,
                                l_hip=knee / 2, r_hip=knee / 2, head_yaw=0.0, head_pitch=0.0)
    for a, tgt in arms.items():
        ch.update(_arm_target_changes(a, tgt))
    base = _with(p.v, **ch)
    pitch = MAX_REACH_PITCH_RAD
    for cand in np.linspace(0.0, MAX_REACH_PITCH_RAD, 21):
        j = joints_world(shape, _pose_from_params(_with(base, pitch=cand)))
        if all(np.linalg.norm(j[5 if a == "l" else 6] - tgt) <= 0.93 * shape.arm_length_m for a, tgt in arms.items()):
            pitch = float(cand)
            break
    nose = joints_world(shape, _pose_from_params(_with(base, pitch=pitch)))[0]
    look_down = np.arctan2(nose[2] - target[2], np.linalg.norm(target[:2] - nose[:2]))
    ch.update(pitch=pitch, head_pitch=float(np.clip(look_down - pitch, -0.5, 0.7)),
              head_yaw=float(np.clip(_wrap(desired - yaw), -0.6, 0.6)))
    for a in ("l", "r"):
        if a not in arms:
            ch[f"{a}_flex"] = 0.25 * pitch   # the free arm stays back, off the table
    wrists = _wrist_targets(shape, _with(p.v, **ch), arms)
    for a, w in wrists.items():
        ch.update(_arm_target_changes(a, w))
    p.to(rng.uniform(0.9, 1.5), **ch)
    for _ in range(int(rng.integers(1, 3))):   # hold, handling something at the target
        wiggle: dict[str, float] = {}
        for a, w in wrists.items():
            for k, c in zip(("_tx", "_ty", "_tz"), w + rng.uniform([-0.03, -0.03, 0.0], [0.03, 0.03, 0.03])):
                wiggle[a + k] = c
        p.to(rng.uniform(0.4, 1.2), **wiggle)
    p.to(rng.uniform(0.7, 1.2), yaw=face, **NEUTRAL)


def _bend(p: _Planner, rng: np.random.Generator, shape: BodyShape, face: float) -> None:
    """Turn away from (or along) the table, bend down to the floor with knees bent, and back."""
    if rng.random() < 0.6:
        turn = float(rng.choice([-1.0, 1.0])) * (np.pi / 2 + rng.uniform(0.0, 0.3))
    else:
        turn = np.pi + rng.uniform(-0.4, 0.4)
    p.to(0.3 + abs(_wrap(turn)) / 2.5, yaw=face + turn)
    pitch, a = rng.uniform(1.05, 1.5), rng.uniform(0.35, 0.8)
    k = 2 * a * rng.uniform(0.9, 1.1)
    ch = dict(pitch=pitch, l_hip=a, r_hip=a, l_knee=k, r_knee=k, head_pitch=-0.35 * pitch, head_yaw=0.0,
              l_flex=0.85 * pitch * rng.uniform(0.85, 1.1), r_flex=0.85 * pitch * rng.uniform(0.85, 1.1),
              l_elbow=rng.uniform(0.2, 0.6), r_elbow=rng.uniform(0.2, 0.6), l_ik=0.0, r_ik=0.0)
    for _ in range(12):   # keep the hands off the floor
        j = joints_world(shape, _pose_from_params(_with(p.v, **ch)))
        if min(j[9, 2], j[10, 2]) > shape.hand_length_m + 0.02:
            break
        ch["l_elbow"] += 0.15
        ch["r_elbow"] += 0.15
    p.to(rng.uniform(1.0, 1.6), **ch)
    p.to(rng.uniform(0.6, 2.0), l_elbow=ch["l_elbow"] + rng.uniform(0, 0.4),
         r_elbow=ch["r_elbow"] + rng.uniform(0, 0.4))
    p.to(rng.uniform(1.0, 1.5), **NEUTRAL)
    p.to(0.3 + abs(_wrap(turn)) / 2.5, yaw=face)


def _look(p: _Planner, rng: np.random.Generator, face: float) -> None:
    """Turn body and head to one side, look around, turn back."""
    d = float(rng.choice([-1.0, 1.0])) * rng.uniform(0.3, 1.1)
    p.to(rng.uniform(0.6, 1.2), yaw=face + 0.5 * d, head_yaw=0.5 * d, head_pitch=rng.uniform(-0.25, 0.25))
    p.to(rng.uniform(0.4, 1.5), head_yaw=0.5 * d + rng.uniform(-0.3, 0.3))
    p.to(rng.uniform(0.6, 1.2), yaw=face, head_yaw=0.0, head_pitch=0.0)


def _idle(p: _Planner, rng: np.random.Generator) -> None:
    """Stand with hands in front, a hand on the hip, or the weight on one leg."""
    style = int(rng.integers(3))
    if style == 0:
        ch = dict(l_flex=0.45, r_flex=0.45, l_elbow=1.3, r_elbow=1.3, l_abd=0.15, r_abd=0.15)
    elif style == 1:
        arm = "l" if rng.random() < 0.5 else "r"
        ch = {f"{arm}_abd": 0.6, f"{arm}_elbow": 1.7, f"{arm}_flex": -0.2}
    else:
        leg = "l" if rng.random() < 0.5 else "r"
        ch = {f"{leg}_knee": 0.25, f"{leg}_hip": 0.12, "head_pitch": rng.uniform(-0.1, 0.3)}
    p.to(rng.uniform(0.6, 1.0), **ch)
    p.to(rng.uniform(0.5, 2.5))
    p.to(rng.uniform(0.6, 1.0), **NEUTRAL)


def _lying_params(rng: np.random.Generator, v: np.ndarray, fall_dir: float) -> np.ndarray:
    """Parameters of a body lying on the floor, fallen towards fall_dir (body frame)."""
    out = _with(v, fall=np.pi / 2, fall_dir=fall_dir, pitch=0.0, head_yaw=rng.uniform(-0.5, 0.5),
                head_pitch=rng.uniform(-0.2, 0.2), l_ik=0.0, r_ik=0.0)
    c = np.cos(fall_dir)   # limbs bend away from the floor: > 0 face down, < 0 on the back
    for leg in ("l", "r"):
        out[_I[leg + "_hip"]] = -c * rng.uniform(0.0, 0.2)
        out[_I[leg + "_knee"]] = 0.02 + max(0.0, c) * rng.uniform(0.0, 0.3)
    for arm, side in (("l", 1.0), ("r", -1.0)):
        low = max(0.0, side * np.sin(fall_dir))   # 1 for the arm the body falls onto
        out[_I[arm + "_abd"]] = (1 - low) * rng.uniform(0.1, 0.4)
        out[_I[arm + "_flex"]] = -c * rng.uniform(0.0, 0.3)
        out[_I[arm + "_elbow"]] = 0.05 + (1 - max(0.0, c)) * rng.uniform(0.0, 0.5)
    return out


def _insert_fall(rng: np.random.Generator, segments: list[_Segment], layout: CellLayout,
                 t_from: float, t_to: float) -> tuple[list[_Segment], float | None]:
    """Cut the plan at a random script time in [t_from, t_to] when the person is well
    inside the floor bounds (near the table if ever), and fall there, away from the
    table; lie still after.
    Returns the new segments and the fall's script time (None: never in the cell)."""
    (bx0, bx1), (by0, by1) = layout.floor_bounds_m
    starts = [s.t0 for s in segments]
    at = lambda tau: segments[max(0, int(np.searchsorted(starts, tau, side="right")) - 1)]  # noqa: E731
    taus = np.arange(t_from, max(t_to, t_from + 0.01), 0.05)
    xys = [at(tau).at(tau)[:2] for tau in taus]
    ok = [(tau, xy) for tau, xy in zip(taus, xys) if bx0 + 0.3 < xy[0] < bx1 - 0.3 and by0 + 0.3 < xy[1] < by1 - 0.3]
    if not ok:
        return segments, None
    ok = [(tau, xy) for tau, xy in ok if _table_distance(xy, layout) < NEAR_TABLE_M] or ok
    tau = float(ok[rng.integers(len(ok))][0])
    seg = at(tau)
    vf = seg.at(tau)
    xy = vf[:2]
    away = xy - np.clip(xy, [layout.table_x_m[0], layout.table_y_m[0]], [layout.table_x_m[1], layout.table_y_m[1]])
    world_dir = float(np.arctan2(away[1], away[0])) + rng.uniform(-0.8, 0.8)
    fall_dir = _wrap(world_dir - vf[_I["yaw"]])
    vf[_I["fall_dir"]] = fall_dir
    lying = _lying_params(rng, vf, fall_dir)
    t_land = tau + rng.uniform(0.7, 0.9)
    kept = segments[:segments.index(seg) + 1]
    end = max(segments[-1].t1, t_land) + 0.5
    return kept + [_Segment(tau, t_land, vf, lying, "fall"), _Segment(t_land, end, lying, lying.copy())], tau


def _gait(rng: np.random.Generator, shape: BodyShape, cfg: HumansConfig) -> tuple[float, float, float]:
    """A walking speed (m/s) from cfg, its hip swing amplitude (rad) and stride (metres per gait cycle)."""
    speed = float(rng.uniform(*cfg.walk_speed_m_s))
    hip_amp = float(np.clip(0.22 + 0.09 * speed, 0.2, 0.42))
    return speed, hip_amp, 4 * (shape.thigh_length_m + shape.shank_length_m) * np.sin(hip_amp)


def plan_human_script(rng: np.random.Generator, shape: BodyShape, cfg: HumansConfig, layout: CellLayout,
                      duration_s: float, avoid_xy_m=()) -> HumanScript:
    """Plan one person's episode: walk in from beyond (or the edge of) the floor
    bounds to a standing spot by the table (at least 0.7 m from every avoid_xy_m
    point), then a random sequence of reach / bend / look / idle, possibly walking
    out; with probability cfg.fall_probability a fall at a random time in view.
    Episode t = 0 is a random phase of the plan. All randomness comes from rng."""
    if cfg.script != "random":
        return _scripted(cfg.script, rng, shape, cfg, layout, duration_s, avoid_xy_m)
    speed, hip_amp, stride = _gait(rng, shape, cfg)
    spot, face = _choose_spot(rng, layout, avoid_xy_m)
    face += rng.uniform(-0.15, 0.15)
    entry = _nearest_outside_point(rng, layout, spot, (0.0, 0.8), 2)
    path = _path(entry, spot, layout)
    first = path[1] - path[0]
    v0 = _with(np.zeros(len(PARAMS)), x=entry[0], y=entry[1], yaw=float(np.arctan2(first[1], first[0])),
               gait=rng.uniform(0, 2 * np.pi), **NEUTRAL)
    p = _Planner(v0)
    for q in path[1:]:
        p.walk(q, speed, hip_amp, stride)
    p.to(0.3 + abs(_wrap(face - p.v[_I["yaw"]])) / 2.2, yaw=face)
    t_arrive = p.t
    offset = float(rng.uniform(0.0, p.t + 2.0))
    events = [(-offset, "walk_in")]
    end = offset + duration_s
    while p.t < end:
        action = _ACTIONS[int(rng.choice(len(_ACTIONS), p=_ACTION_P))]
        if action == "exit" and p.t - t_arrive < MIN_STAY_S:
            action = "look"
        events.append((p.t - offset, action))
        if action == "reach":
            _reach(p, rng, shape, layout, face)
        elif action == "bend":
            _bend(p, rng, shape, face)
        elif action == "look":
            _look(p, rng, face)
        elif action == "idle":
            _idle(p, rng)
        else:
            goal = _nearest_outside_point(rng, layout, p.v[:2], (0.5, 1.0), 3)
            for q in _path(p.v[:2], goal, layout)[1:]:
                p.walk(q, speed, hip_amp, stride)
            break
    p.to(max(end - p.t, 0.0) + 0.5)
    segments, fall_time = p.segments, None
    if rng.random() < cfg.fall_probability:
        segments, tau = _insert_fall(rng, segments, layout, offset, offset + max(duration_s - 1.0, 0.0))
        if tau is not None:
            fall_time = tau - offset
            events = [e for e in events if e[0] < fall_time] + [(fall_time, "fall")]
    return HumanScript(shape, duration_s, layout.floor_bounds_m, segments, offset,
                       (float(spot[0]), float(spot[1])), speed, fall_time, events)


# --- scripted test scenarios (HumansConfig.script) --------------------------------

def _spots_by_robot(layout: CellLayout, along_m: float) -> dict[str, tuple[np.ndarray, float]]:
    """Standing spots right next to the robot by side ('-x': behind its base at the
    table's end; '+y' / '-y': at a long side, along_m further along +x than the base),
    SPOT_EDGE_DISTANCE_M[0] outside the edge, each with the yaw facing the table."""
    bx, by = layout.T_world_base[:2, 3]
    (x0, _), (y0, y1) = layout.table_x_m, layout.table_y_m
    d = SPOT_EDGE_DISTANCE_M[0]
    return {"-x": (np.array([x0 - d, by]), 0.0), "+y": (np.array([bx + along_m, y1 + d]), -np.pi / 2),
            "-y": (np.array([bx + along_m, y0 - d]), np.pi / 2)}


def _free_side(rng: np.random.Generator, spots: dict[str, tuple[np.ndarray, float]], sides: tuple[str, ...],
               avoid_xy_m) -> str:
    """A random one of sides whose spot is at least MIN_SPOT_SEPARATION_M from every
    avoid point (the one farthest from them if none is)."""
    avoid = np.asarray(list(avoid_xy_m), float).reshape(-1, 2)
    order = [sides[i] for i in rng.permutation(len(sides))]
    if not len(avoid):
        return order[0]
    gap = {s: float(np.min(np.linalg.norm(avoid - spots[s][0], axis=1))) for s in order}
    ok = [s for s in order if gap[s] >= MIN_SPOT_SEPARATION_M]
    return ok[0] if ok else max(order, key=gap.get)


def _scripted(name: str, rng: np.random.Generator, shape: BodyShape, cfg: HumansConfig, layout: CellLayout,
              duration_s: float, avoid_xy_m) -> HumanScript:
    """The plan of a scripted scenario (HumansConfig.script; no falls; episode t = script t):

    walk_at_robot: from 2 m beyond the floor bounds, on one of the robot's sides of the
      table ('-x', '+y', '-y'), straight at the robot's base at the walking speed, stopping
      at the spot next to it (the episode starts with the person outside, walking in);
      then standing there, looking around and idling.
    reach_over_table: standing at a long side next to the robot from the start, reaching
      over the table into the robot's work area (0.25-0.55 m in front of its base,
      0.12-0.35 m above the table), again and again.
    stand_still: standing at a long side next to the robot from the start, not moving at all.
    """
    speed, hip_amp, stride = _gait(rng, shape, cfg)
    spots = _spots_by_robot(layout, {"walk_at_robot": 0.0, "reach_over_table": 0.3, "stand_still": 0.2}[name])
    side = _free_side(rng, spots, ("-x", "+y", "-y") if name == "walk_at_robot" else ("+y", "-y"), avoid_xy_m)
    spot, face = spots[side]
    start = spot
    if name == "walk_at_robot":
        (bx0, _), (by0, by1) = layout.floor_bounds_m
        to_bound = {"-x": spot[0] - bx0, "+y": by1 - spot[1], "-y": spot[1] - by0}[side]
        start = spot - np.array([np.cos(face), np.sin(face)]) * (to_bound + 2.0)
    v0 = _with(np.zeros(len(PARAMS)), x=start[0], y=start[1], yaw=face, gait=rng.uniform(0, 2 * np.pi), **NEUTRAL)
    p = _Planner(v0)
    events = [(0.0, "walk_in" if name == "walk_at_robot" else name)]
    if name == "walk_at_robot":
        p.walk(spot, speed, hip_amp, stride)
    end = duration_s + 0.5
    if name == "stand_still":
        p.to(end)
    base = layout.T_world_base
    ahead = base[:2, 0] / np.linalg.norm(base[:2, 0])     # the robot's front (its base x axis), on the floor
    while p.t < end:
        action = "reach" if name == "reach_over_table" else ("look" if rng.random() < 0.5 else "idle")
        events.append((p.t, action))
        if action == "reach":
            target = np.array([*(base[:2, 3] + ahead * rng.uniform(0.25, 0.55)), layout.table_height_m])
            target += [0.0, rng.uniform(-0.15, 0.15), rng.uniform(0.12, 0.35)]
            _reach(p, rng, shape, replace(layout, reach_targets_m=target[None]), face)
            p.to(rng.uniform(0.2, 0.8))
        elif action == "look":
            _look(p, rng, face)
        else:
            _idle(p, rng)
    return HumanScript(shape, duration_s, layout.floor_bounds_m, p.segments, 0.0,
                       (float(spot[0]), float(spot[1])), speed, None, events)
