"""The "now" of input stamps: the newest accepted stamp plus the (monotonic) time since it
arrived. Ages measured against it are right whether the stamps are the node's clock (a
live camera, a restamped replay) or a recording's own times (a bag replayed as recorded),
and they keep growing when the inputs stop.

Only messages that passed their own checks are offered (a rejected message never moves
the clock). Of those:

- a stamp more than ``max_lead_s`` ahead of now is refused (``AHEAD``): one clock that
  runs ahead (a misconfigured camera) must not make every other input look old;
- a stamp more than ``jump_back_s`` behind now is refused (``BEHIND``);
- but the ``jump_confirm``-th refused stamp in a row on the same side (no stamp in line
  between them) means the inputs' time itself jumped (a bag that loops, a clock reset, a
  first message that was ahead, a clock stepped forward): the clock follows, anchored at
  the newest of them (``JUMPED``: the caller drops what it holds of the old time line);
- any other stamp is ``ACCEPTED``; a newer one re-anchors the clock.
"""
from __future__ import annotations

import math

ACCEPTED, AHEAD, BEHIND, JUMPED = "accepted", "ahead", "behind", "jumped"


class StampClock:
    def __init__(self, max_lead_s: float = 0.5, jump_back_s: float = 10.0, jump_confirm: int = 3):
        if not (max_lead_s >= 0 and jump_back_s > 0 and jump_confirm >= 1):
            raise ValueError(f"invalid clock limits: lead {max_lead_s}, jump {jump_back_s}, confirm {jump_confirm}")
        self.max_lead_s, self.jump_back_s, self.jump_confirm = float(max_lead_s), float(jump_back_s), int(jump_confirm)
        self.stamp_s: float | None = None      # newest accepted stamp (seconds, stamp clock)
        self.arrival_s: float | None = None    # monotonic time it arrived
        self._off: list[tuple[float, float]] = []   # (stamp, arrival) of the refused stamps in a row, one side
        self._off_side = ""

    def offer(self, stamp_s: float, monotonic_s: float) -> str:
        """An input stamped stamp_s arrived at monotonic_s: ACCEPTED, AHEAD, BEHIND or
        JUMPED (module doc). A stamp that is not finite is refused as AHEAD."""
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            return AHEAD
        now = self.now(monotonic_s)
        if now is None:
            self.stamp_s, self.arrival_s = stamp_s, float(monotonic_s)
            return ACCEPTED
        side = AHEAD if stamp_s > now + self.max_lead_s else BEHIND if stamp_s < now - self.jump_back_s else ""
        if side:
            if side != self._off_side:
                self._off, self._off_side = [], side
            self._off.append((stamp_s, float(monotonic_s)))
            if len(self._off) < self.jump_confirm:
                return side
            self.stamp_s, self.arrival_s = max(self._off)
            self._off, self._off_side = [], ""
            return JUMPED
        self._off, self._off_side = [], ""
        if stamp_s >= now:
            self.stamp_s, self.arrival_s = stamp_s, float(monotonic_s)
        return ACCEPTED

    def now(self, monotonic_s: float) -> float | None:
        """Stamp-clock time at monotonic_s; None before any input."""
        if self.stamp_s is None:
            return None
        return self.stamp_s + max(monotonic_s - self.arrival_s, 0.0)

    def reset(self) -> None:
        self.stamp_s = self.arrival_s = None
        self._off, self._off_side = [], ""
