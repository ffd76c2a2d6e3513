"""Pairing the messages of several streams by their header stamp: the one way the nodes do it.

Every hrc_perception result array carries the header of the colour image it came from,
and rgbd_capture stamps a frame's colour, depth and camera_info alike, so a node pairs
its inputs by exact stamp: it keeps the last messages of each input stream in a
:class:`StampBuffer` and looks up the stamp of the message that triggers its work
(``buffer.get(stamp_ns)``). A stream stamped by another clock (a robot driver's
joint_states) is paired with the nearest stamp within a tolerance (``nearest``).
Approximate-time set matching (message_filters' ApproximateTime) is for streams that do
not share stamps, such as two drivers' cameras; no node here has such inputs.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hrc_perception.ros.convert import stamp_to_ns


class StampBuffer(Mapping):
    """The last ``size`` values of one stream by header stamp: a read-only mapping
    stamp (int ns) -> value.

    ``add(msg, value)`` keeps ``value`` (default: the message) under ``msg.header.stamp``;
    a second message of a stamp replaces the first. Beyond ``size`` stamps the oldest
    stamp is dropped (not the oldest arrival: a late message of an old stamp never
    pushes out newer ones). ``size`` may be changed; it applies from the next ``add``.
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = int(size)
        self._by_ns: dict[int, Any] = {}

    def add(self, msg, value: Any = None) -> int:
        """Keep value (default msg) under msg's header stamp; returns that stamp (ns)."""
        stamp_ns = stamp_to_ns(msg.header.stamp)
        self.put(stamp_ns, msg if value is None else value)
        return stamp_ns

    def put(self, stamp_ns: int, value: Any) -> None:
        """Keep value under stamp_ns (ns), dropping the oldest stamps beyond size."""
        self._by_ns[int(stamp_ns)] = value
        while len(self._by_ns) > self.size:
            del self._by_ns[min(self._by_ns)]

    def nearest(self, stamp_ns: int, tolerance_ns: int) -> Any | None:
        """The value whose stamp is nearest stamp_ns if at most tolerance_ns (ns) away, else
        None; of two equally near, the earlier."""
        if not self._by_ns:
            return None
        best = min(self._by_ns, key=lambda s: (abs(s - stamp_ns), s))
        return self._by_ns[best] if abs(best - stamp_ns) <= tolerance_ns else None

    def newest_ns(self) -> int | None:
        """The latest stamp held (ns), or None when empty."""
        return max(self._by_ns) if self._by_ns else None

    def clear(self) -> None:
        self._by_ns.clear()

    def __getitem__(self, stamp_ns: int) -> Any:
        return self._by_ns[stamp_ns]

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_ns)

    def __len__(self) -> int:
        return len(self._by_ns)
