"""The watchdog of the safety monitor's statuses: a monitor that stops or stalls is a stop.

The monitor publishes ``safety/status`` at its check rate whatever arrives. A subscriber
that reads silence as "nothing changed" would keep the robot at the last OK speed; the
watchdog passes each status on while statuses keep arriving within ``deadline_s``, and
says PROTECTIVE_STOP (speed 0) on its own output as soon as one is late, the monitor's
liveliness is lost, or a status carries a level it does not know. Pure: times are
monotonic seconds given by the caller.
"""
from __future__ import annotations

import math

OK, WARNING, PROTECTIVE_STOP, UNKNOWN = 0, 1, 2, 3


class StatusWatchdog:
    """Holds when the last status arrived (monotonic seconds) and whether the monitor's
    liveliness is known to be lost."""

    def __init__(self, deadline_s: float):
        if not (math.isfinite(deadline_s) and deadline_s > 0):
            raise ValueError(f"deadline_s must be a finite number > 0, got {deadline_s}")
        self.deadline_s = float(deadline_s)
        self.last_arrival_s: float | None = None
        self.alive = True
        self.stops = 0     # statuses turned into stops

    def on_status(self, level: int, speed_scale: float, arrival_s: float) -> tuple[int, float, str]:
        """A status arrived: (level, speed_scale, reason prefix) to pass on. An unknown
        level or a speed scale outside 0..1 (NaN included) is a stop."""
        self.last_arrival_s = float(arrival_s)
        self.alive = True
        if level not in (OK, WARNING, PROTECTIVE_STOP, UNKNOWN) or not 0.0 <= speed_scale <= 1.0:
            self.stops += 1
            return PROTECTIVE_STOP, 0.0, f"watchdog: invalid status (level {level}, speed scale {speed_scale}): "
        return level, (speed_scale if level in (OK, WARNING) else 0.0), ""

    def on_liveliness_lost(self) -> None:
        self.alive = False

    def silent_for(self, now_s: float) -> float:
        """Seconds since the last status (inf before any)."""
        return math.inf if self.last_arrival_s is None else max(float(now_s) - self.last_arrival_s, 0.0)

    def check(self, now_s: float) -> str | None:
        """Why the monitor counts as silent at now_s (a stop is due), or None."""
        silent = self.silent_for(now_s)
        if not silent <= self.deadline_s:
            return (f"watchdog: no safety status for {silent:.2f} s (deadline {self.deadline_s:.2f} s)"
                    if math.isfinite(silent) else "watchdog: no safety status received yet")
        if not self.alive:
            return "watchdog: the safety monitor's liveliness was lost"
        return None
