"""The "now" of input stamps: the newest stamp seen plus the (monotonic) time since it
arrived. Ages measured against it are right whether the stamps are the node's clock
(a live camera, a restamped replay) or a recording's own times (a bag replayed as
recorded), and they keep growing when the inputs stop."""
from __future__ import annotations


class StampClock:
    def __init__(self):
        self.stamp_s: float | None = None      # newest stamp seen (seconds, stamp clock)
        self.arrival_s: float | None = None    # monotonic time it arrived

    def observe(self, stamp_s: float, monotonic_s: float) -> None:
        """An input stamped stamp_s arrived at monotonic_s. Older stamps do not move the
        clock back; a stamp far behind (a restarted recording) is the caller's to reset."""
        if self.stamp_s is None or stamp_s >= self.now(monotonic_s):
            self.stamp_s, self.arrival_s = float(stamp_s), float(monotonic_s)

    def now(self, monotonic_s: float) -> float | None:
        """Stamp-clock time at monotonic_s; None before any input."""
        if self.stamp_s is None:
            return None
        return self.stamp_s + max(monotonic_s - self.arrival_s, 0.0)

    def reset(self) -> None:
        self.stamp_s = self.arrival_s = None
