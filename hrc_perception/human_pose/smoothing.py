"""Temporal smoothing of 3D skeletons per identity: the One Euro filter (an exponential
filter whose cut-off frequency rises with the signal's speed: little lag when a joint
moves fast, little jitter when it rests), and the per-joint velocity it estimates.

Each joint is filtered on its own; a joint that goes unknown (NaN) restarts when it
comes back; a gap longer than ``max_gap_s`` or a stamp not after the last one restarts
the whole skeleton (an out-of-order stamp is not applied to the state). The velocity
is the low-passed difference of successive inputs (not of the lagging filtered values,
which would overstate a steady motion).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff_hz: float = 1.5     # cut-off at rest (lower: smoother, more lag)
    beta: float = 0.8              # cut-off increase per m/s of speed (higher: less lag when moving)
    d_cutoff_hz: float = 2.0       # cut-off of the velocity estimate
    max_gap_s: float = 0.5         # longer gaps restart the filter

    def __post_init__(self):
        if not (self.min_cutoff_hz > 0 and self.beta >= 0 and self.d_cutoff_hz > 0 and self.max_gap_s > 0):
            raise ValueError(f"invalid One Euro parameters: {self}")


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """One Euro filter of a [J, 3] point set (metres) over time (seconds)."""

    def __init__(self, params: OneEuroParams = OneEuroParams()):
        self.params = params
        self.x: np.ndarray | None = None     # [J, 3] filtered positions (NaN: joint not started)
        self.x_raw: np.ndarray | None = None # [J, 3] the previous input
        self.dx: np.ndarray | None = None    # [J, 3] filtered velocity, m/s
        self.t_s: float | None = None

    def reset(self) -> None:
        self.x = self.x_raw = self.dx = self.t_s = None

    def __call__(self, x_m: np.ndarray, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(filtered positions [J, 3], velocity [J, 3] in m/s; NaN velocity for a joint
        with no previous value) of new positions x_m [J, 3] (NaN = unknown) at t_s."""
        x = np.asarray(x_m, dtype=np.float64).reshape(-1, 3)
        if self.t_s is not None and not (0.0 < t_s - self.t_s <= self.params.max_gap_s):
            if t_s <= self.t_s:   # out of order or repeated: answer without touching the state
                return x.copy(), np.full_like(x, np.nan)
            self.reset()
        if self.x is None or self.x.shape != x.shape:
            self.x, self.x_raw, self.dx, self.t_s = x.copy(), x.copy(), np.full_like(x, np.nan), float(t_s)
            return x.copy(), self.dx.copy()
        dt = t_s - self.t_s
        known = np.isfinite(x).all(axis=1)
        started = known & np.isfinite(self.x).all(axis=1)
        raw_dx = (x - self.x_raw) / dt     # from the raw inputs: no lag bias on a steady motion
        prev_dx = np.where(np.isfinite(self.dx), self.dx, raw_dx)
        dx = prev_dx + _alpha(self.params.d_cutoff_hz, dt) * (raw_dx - prev_dx)
        cutoff = self.params.min_cutoff_hz + self.params.beta * np.linalg.norm(dx, axis=1)
        a = _alpha(cutoff, dt)[:, None]
        out = np.where(started[:, None], self.x + a * (x - self.x), x)        # new joints start raw
        vel = np.where(started[:, None], dx, np.nan)
        self.x = np.where(known[:, None], out, np.nan)                       # lost joints restart
        self.x_raw = x.copy()
        self.dx = np.where(known[:, None], vel, np.nan)
        self.t_s = float(t_s)
        return self.x.copy(), self.dx.copy()


class SkeletonSmoother:
    """One :class:`OneEuroFilter` per identity; identities unseen for longer than
    ``params.max_gap_s`` are forgotten (one that returns later starts afresh)."""

    def __init__(self, params: OneEuroParams = OneEuroParams()):
        self.params = params
        self.filters: dict[int, OneEuroFilter] = {}

    def __call__(self, identity: int, x_m: np.ndarray, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        f = self.filters.setdefault(int(identity), OneEuroFilter(self.params))
        return f(x_m, t_s)

    def forget_older_than(self, t_s: float) -> list[int]:
        """Drop identities last updated more than max_gap_s before t_s; returns their ids."""
        gone = [i for i, f in self.filters.items() if f.t_s is None or t_s - f.t_s > self.params.max_gap_s]
        for i in gone:
            del self.filters[i]
        return gone


def speed_mps(velocity_mps: np.ndarray, robust: bool = False) -> float | None:
    """Speed (m/s) from per-joint velocities [J, 3]: the fastest joint's (a rigid robot),
    or with ``robust`` the median joint's (a person: the body's speed, which one joint
    whose depth jumps between frames does not make); None if no joint has a velocity."""
    v = np.linalg.norm(np.asarray(velocity_mps, dtype=np.float64).reshape(-1, 3), axis=1)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    return float(np.median(v) if robust else v.max())
