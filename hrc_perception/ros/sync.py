"""Approximate-time synchronisation of N message streams.

``ApproximateTimeSync`` is the project's own synchroniser, used where
``message_filters`` is not installed (the PyPI ROS 2 wheels have none). It is a
pure-Python class (no node, no rclpy) fed with ``add(stream, msg, stamp_ns)``.
``make_synchronizer`` subscribes a node to N topics and uses
``message_filters.ApproximateTimeSynchronizer`` where it imports, this class
otherwise; both call ``callback(msg_0, ..., msg_{N-1})``.

The policy is the adaptive "approximate time" algorithm of ROS message_filters
(the C++ ``sync_policies::ApproximateTime``), with ``slop`` as its maximum set
size. The *size* of a set (one message per stream) is its latest stamp minus its
earliest. Emitted sets satisfy:

- each message is used at most once; unused messages are dropped;
- sets do not cross: for two emitted sets S before T, S_i < T_i on every stream i;
- sets are contiguous: the dropped messages between two emitted sets cannot form
  a set;
- each set is of minimal size among the sets contiguous to the previous one;
- size <= slop (sets larger than slop are never emitted);
- the output depends only on the stamps, not on the arrival order across streams
  (given a queue_size that holds the arrival delays).

How: the earliest unused message of every stream forms the first window; its
latest message is the *pivot*. Every set contiguous to the previous one holds the
pivot, so windows are slid forward, always advancing the stream with the earliest
message, until the pivot is the earliest; the smallest window seen is emitted. A
set is emitted as soon as no future message can give a smaller one, so a set can
wait for the next message of some stream (one frame of latency for jittered
stamps; exact matches go out at once).

Differences from the Python ``message_filters.ApproximateTimeSynchronizer``: it
uses a greedy rule, not this policy (it emits the first set found within slop as
soon as it exists, keeps unmatched older messages until the queue overflows, and
takes ``size < slop`` where this class takes ``size <= slop``). The two agree on
streams of the same rate with jitter within slop (the camera case, tested where
message_filters is installed); with different rates this class picks the closest
message, message_filters the first within slop. Here a stamp not later than the
previous one of its stream is dropped and counted (``dropped_out_of_order``).
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

_NS_PER_S = 1_000_000_000


class ApproximateTimeSync:
    """Approximate-time synchroniser of ``num_streams`` streams (pure Python).

    Args:
        num_streams: N >= 1 streams, indexed 0..N-1.
        queue_size: most messages kept per stream (>= 1); the oldest is dropped
            beyond it (``dropped_overflow``).
        slop: largest set size in seconds (>= 0): latest minus earliest stamp.
        callback: called as ``callback(msg_0, ..., msg_{N-1})`` for each set, outside
            the internal lock; in stamp order while ``add`` is called from one
            thread at a time (as rclpy's single-threaded executor does).

    Counters (ints, for logs and diagnostics): ``emitted``, ``dropped_out_of_order``,
    ``dropped_overflow``, ``dropped_unmatched``. Thread-safe.
    """

    def __init__(self, num_streams: int, queue_size: int, slop: float, callback: Callable[..., Any]):
        if num_streams < 1:
            raise ValueError(f"num_streams must be >= 1, got {num_streams}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not slop >= 0.0:
            raise ValueError(f"slop must be >= 0 seconds, got {slop}")
        self.num_streams = num_streams
        self.queue_size = queue_size
        self.slop = float(slop)
        self._slop_ns = round(float(slop) * _NS_PER_S)
        self._callback = callback
        self._lock = threading.Lock()
        # Per stream: kept (stamp_ns, msg) in stamp order. While a candidate set
        # exists, _buf[k][0] is its message of stream k and _pos[k] indexes the
        # stream's message in the window being examined (== len: not arrived yet).
        self._buf: list[list[tuple[int, Any]]] = [[] for _ in range(num_streams)]
        self._pos = [0] * num_streams
        self._last_ns: list[int | None] = [None] * num_streams
        self._overflowed = [False] * num_streams
        self._pivot: int | None = None       # stream of the pivot; None: no candidate
        self._pivot_ns = 0
        self._best_size_ns = 0               # size of the candidate set
        self.emitted = 0
        self.dropped_out_of_order = 0
        self.dropped_overflow = 0
        self.dropped_unmatched = 0

    # ------------------------------------------------------------------ public

    def add(self, stream_index: int, msg: Any, stamp_ns: int) -> None:
        """Add ``msg`` of stream ``stream_index`` stamped ``stamp_ns`` (integer ns)."""
        if not 0 <= stream_index < self.num_streams:
            raise IndexError(f"stream_index {stream_index} not in 0..{self.num_streams - 1}")
        ready: list[tuple] = []
        with self._lock:
            self._add(stream_index, msg, int(stamp_ns), ready)
        for msgs in ready:
            self._callback(*msgs)

    def pending(self) -> list[int]:
        """Number of messages held per stream."""
        with self._lock:
            return [len(b) for b in self._buf]

    # ---------------------------------------------------------------- internal

    def _add(self, k: int, msg: Any, t: int, ready: list) -> None:
        last = self._last_ns[k]
        if last is not None and t <= last:
            self.dropped_out_of_order += 1
            return
        self._last_ns[k] = t
        self._buf[k].append((t, msg))
        self._search(ready)
        if len(self._buf[k]) > self.queue_size:
            # Forget the candidate (it may hold the dropped message) and search anew.
            # A stream that lost messages may not give the next pivot: a lost,
            # earlier message might have made a better one.
            self._pos = [0] * self.num_streams
            self._pivot = None
            del self._buf[k][0]
            self.dropped_overflow += 1
            self._overflowed[k] = True
            self._search(ready)

    def _window(self, pos: Sequence[int], virtual_ns: int | None = None) -> tuple[int, int, int, int]:
        """(earliest stream, earliest stamp, latest stream, latest stamp) of a window.

        Ties: the earliest is the lowest stream index, the latest the highest.
        Streams at their end read ``virtual_ns`` (the optimistic next stamp).
        """
        stamps = [self._buf[k][p][0] if p < len(self._buf[k]) else virtual_ns
                  for k, p in enumerate(pos)]
        first = min(range(len(stamps)), key=lambda k: (stamps[k], k))
        last = max(range(len(stamps)), key=lambda k: (stamps[k], k))
        return first, stamps[first], last, stamps[last]

    def _complete(self) -> bool:
        return all(p < len(b) for p, b in zip(self._pos, self._buf))

    def _search(self, ready: list) -> None:
        """Slide the window while every stream has a message in it; emit proven sets."""
        while self._complete():
            first, t_first, last, t_last = self._window(self._pos)
            for k in range(self.num_streams):
                if k != last:
                    self._overflowed[k] = False
            if self._pivot is None:
                if t_last - t_first > self._slop_ns or self._overflowed[last]:
                    del self._buf[first][0]          # pos are all 0 without a candidate
                    self.dropped_unmatched += 1
                    continue
                self._take_candidate(t_last - t_first)
                self._pivot, self._pivot_ns = last, t_last
            elif t_last - t_first < self._best_size_ns:
                self._take_candidate(t_last - t_first)
            self._pos[first] += 1
            if first == self._pivot or self._cannot_improve(t_last):
                self._emit(ready)
            elif not self._complete() and self._virtual_cannot_improve():
                self._emit(ready)

    def _cannot_improve(self, t_last: int) -> bool:
        """Every later window holds the pivot and ends at or after t_last."""
        return t_last - self._pivot_ns >= self._best_size_ns

    def _virtual_cannot_improve(self) -> bool:
        """Whether the candidate is optimal whatever the missing messages bring.

        Streams at their end are assumed to get their next message at the pivot
        stamp (the most favourable stamp); the window is slid on over the messages
        already here. Nothing is changed.
        """
        pos = list(self._pos)
        while True:
            first, t_first, _, t_last = self._window(pos, virtual_ns=self._pivot_ns)
            if self._cannot_improve(t_last):
                return True
            if t_last - t_first < self._best_size_ns:
                return False
            pos[first] += 1   # a real message: a virtual earliest decides one test above

    def _take_candidate(self, size_ns: int) -> None:
        """Make the current window the candidate; drop the messages passed over."""
        for k, p in enumerate(self._pos):
            if p:
                del self._buf[k][:p]
                self.dropped_unmatched += p
        self._pos = [0] * self.num_streams
        self._best_size_ns = size_ns

    def _emit(self, ready: list) -> None:
        ready.append(tuple(b.pop(0)[1] for b in self._buf))
        self._pos = [0] * self.num_streams
        self._pivot = None
        self.emitted += 1


# ------------------------------------------------------------------- ROS glue

def _import_message_filters():
    """The message_filters module, or None where it is not installed."""
    try:
        return importlib.import_module("message_filters")
    except ImportError:
        return None


@dataclass
class SyncHandle:
    """What make_synchronizer built; keep it alive as long as the synchroniser.

    ``backend`` is ``"message_filters"`` or ``"hrc_perception"``; ``synchronizer``
    the message_filters.ApproximateTimeSynchronizer or ApproximateTimeSync;
    ``subscriptions`` the message_filters.Subscriber or rclpy Subscription objects.
    """
    backend: str
    synchronizer: Any
    subscriptions: list = field(default_factory=list)

    def destroy(self, node) -> None:
        """Destroy the subscriptions on ``node``."""
        for s in self.subscriptions:
            node.destroy_subscription(getattr(s, "sub", s))
        self.subscriptions = []


def make_synchronizer(node, topics_and_types: Sequence[tuple[str, type]], queue_size: int, slop: float,
                      callback: Callable[..., Any], qos=10, backend: str = "auto") -> SyncHandle:
    """Subscribe ``node`` to N topics and call ``callback(msg_0, ..., msg_{N-1})`` per matched set.

    Args:
        node: an rclpy Node (or LifecycleNode).
        topics_and_types: [(topic, message class)], in callback argument order;
            every type must have a ``header`` (headerless types are refused).
        queue_size, slop: as in ApproximateTimeSync (slop in seconds).
        qos: QoSProfile or history depth for every subscription.
        backend: ``"auto"`` (message_filters where it imports, else the project's
            own), ``"message_filters"`` or ``"hrc_perception"``.
    """
    if backend not in ("auto", "message_filters", "hrc_perception"):
        raise ValueError(f"backend must be auto, message_filters or hrc_perception, got {backend!r}")
    for topic, msg_type in topics_and_types:
        if "header" not in msg_type.get_fields_and_field_types():
            raise ValueError(f"{topic}: {msg_type.__name__} has no header; it cannot be synchronised by stamp")
    mf = _import_message_filters() if backend != "hrc_perception" else None
    if backend == "message_filters" and mf is None:
        raise ImportError("backend='message_filters' but message_filters is not installed")
    if mf is not None:
        subs = [mf.Subscriber(node, msg_type, topic, qos_profile=qos) for topic, msg_type in topics_and_types]
        sync = mf.ApproximateTimeSynchronizer(subs, queue_size, slop)
        sync.registerCallback(callback)
        return SyncHandle("message_filters", sync, subs)

    from hrc_perception.ros.convert import stamp_to_ns

    sync = ApproximateTimeSync(len(topics_and_types), queue_size, slop, callback)
    logger = node.get_logger()

    def on_message(index: int, topic: str):
        def cb(msg):
            before = sync.dropped_out_of_order
            sync.add(index, msg, stamp_to_ns(msg.header.stamp))
            if sync.dropped_out_of_order != before:
                logger.warning(f"{topic}: stamp not later than the previous one, message dropped "
                               f"({sync.dropped_out_of_order} out-of-order drops so far)",
                               throttle_duration_sec=5.0)
        return cb

    subs = [node.create_subscription(msg_type, topic, on_message(i, topic), qos)
            for i, (topic, msg_type) in enumerate(topics_and_types)]
    return SyncHandle("hrc_perception", sync, subs)
