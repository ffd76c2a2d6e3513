"""Replay recorded frame stamps at their recorded spacing on a wall clock."""
from __future__ import annotations


class StampPacer:
    """When each frame is due, so frames go out as far apart as their stamps.

    The first frame anchors the schedule: frame stamp ``s`` (ns) is due at wall
    time ``t0 + (s - s0) * 1e-9`` (seconds, any monotonic clock), where (t0, s0)
    is the anchor. The schedule re-anchors (the frame is due at once) when

    - stamps go backwards (a looping source starting its next pass), or
    - a frame is more than ``max_lag_s`` late (a source slower than real time, or a
      pause): late frames then go out at the source's own speed instead of in a
      burst that tries to catch up.

    Holds no clock itself: callers pass ``now_s``, so it is tested without waiting.
    """

    def __init__(self, max_lag_s: float = 1.0):
        if max_lag_s < 0:
            raise ValueError(f"max_lag_s must be >= 0, got {max_lag_s}")
        self.max_lag_s = float(max_lag_s)
        self.reset()

    def reset(self) -> None:
        """Forget the schedule: the next frame is due at once and anchors a new one."""
        self._anchor: tuple[float, int] | None = None   # (wall time s, stamp ns)
        self._last_ns: int | None = None

    def delay_s(self, stamp_ns: int, now_s: float) -> float:
        """Seconds from now_s until the frame stamped stamp_ns is due (<= 0: due now).

        Asking again for the same frame gives the same due time (a frame held back
        until it is due does not move the schedule)."""
        stamp_ns = int(stamp_ns)
        if self._anchor is None or (self._last_ns is not None and stamp_ns < self._last_ns):
            self._anchor = (now_s, stamp_ns)
        self._last_ns = stamp_ns
        wall0, stamp0 = self._anchor
        delay = wall0 + (stamp_ns - stamp0) * 1e-9 - now_s
        if delay < -self.max_lag_s:
            self._anchor = (now_s, stamp_ns)
            delay = 0.0
        return delay
