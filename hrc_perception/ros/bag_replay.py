"""Replay a rosbag2 bag (MCAP or sqlite3) onto live ROS 2 topics, without rosbag2.

The bag is read with the pure-Python ``rosbags`` package; every record's CDR
bytes are published unchanged (``Publisher.publish(bytes)``), so a replay is
bit-identical to what was recorded, header stamps included. Before anything is
published the bag is checked as a whole: it must open and every selected record
must read back (a truncated or corrupt file is a :class:`BagError` naming the
file), and every message type must import (the error lists all that do not).

Timing: records are published at their recorded (receive) times, ``rate`` times
faster (``rate=2``: twice as fast); ``rate=0`` or ``inf`` publishes as fast as
possible. Pacing uses the monotonic wall clock, never ROS time, so a replayer
publishing ``/clock`` does not pace itself on its own clock.

QoS: every topic is published reliable, keep-last depth 10, volatile -- camera
images too, unlike a live camera's sensor-data QoS. A replay is a test input:
a dropped frame would make two runs differ. A reliable publisher also matches
both reliable and best-effort subscribers; a best-effort publisher would not
match a reliable one. ``/clock`` uses the same QoS. Depth 10 is per topic: a
subscriber that falls more than 10 messages behind on one topic still loses the
oldest (this matters only for ``rate=0``).

``--restamp``: ``header.stamp`` is rewritten to
``t_start + (stamp - t0_bag) / rate`` (``rate`` taken as 1 for as-fast-as-possible),
where ``t_start`` is the node's clock when the pass started and ``t0_bag`` the
first record's time. The mapping depends on the original stamp only, so every
message of one original frame gets the same new stamp, and spacing is preserved
(scaled like the replay). Zero stamps (unset) stay zero; messages without a
top-level ``std_msgs/Header`` go out unchanged. Each loop pass restamps from its
own start, so stamps keep increasing across passes. When the header is the first
field (every standard stamped message) the 8 stamp bytes are patched in place in
the CDR record and every other byte stays as recorded; otherwise the message is
deserialized and reserialized with rclpy (whose CDR may differ in padding bytes).
"""
from __future__ import annotations

import importlib
import math
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

REPLAY_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
CLOCK_TOPIC = "/clock"
PROGRESS_PERIOD_S = 5.0   # wall seconds between progress log lines


class BagError(ValueError):
    """A bag that cannot be replayed or recorded; the message is one line naming the file."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def node_log(node: Node, level: str, message: str) -> None:
    """Log through the node's logger; once its context is shut down (Ctrl-C) rclpy
    cannot publish to /rosout any more and complains, so print to stderr instead."""
    if node.context.ok():
        getattr(node.get_logger(), level)(message)
    else:
        print(f"[{level.upper()}] [{node.get_name()}]: {message}", file=sys.stderr)


def resolve_message_type(msgtype: str) -> type:
    """The Python class of a ROS 2 message type name, ``pkg/msg/Name`` -> ``pkg.msg.Name``.

    Uses ``rosidl_runtime_py.utilities.get_message`` where installed, else imports
    ``<pkg>.msg`` directly; then loads the type support (the compiled library), so
    a type that would fail in ``create_publisher`` fails here. Raises ImportError
    (or ValueError for a malformed name)."""
    parts = msgtype.split("/")
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise ValueError(f"not a ROS 2 message type name (pkg/msg/Name): {msgtype!r}")
    try:
        from rosidl_runtime_py.utilities import get_message
    except ImportError:
        get_message = None
    if get_message is not None:
        try:
            cls = get_message(msgtype)
        except (AttributeError, ModuleNotFoundError, ValueError) as e:
            raise ImportError(f"{msgtype}: {e}") from e
    else:
        module = importlib.import_module(f"{parts[0]}.msg")
        cls = getattr(module, parts[2], None)
        if cls is None:
            raise ImportError(f"{parts[0]}.msg has no {parts[2]}")
    from rclpy.type_support import check_for_type_support
    check_for_type_support(cls)
    return cls


def _header_position(cls: type) -> tuple[bool, bool]:
    """(has a top-level ``header: std_msgs/Header`` field, it is the first field)."""
    fields = getattr(cls, "get_fields_and_field_types", lambda: {})()
    has = fields.get("header") == "std_msgs/Header"
    return has, has and next(iter(fields)) == "header"


def _normalize_topic(name: str) -> str:
    return name if name.startswith("/") else "/" + name


@dataclass
class _Topic:
    """One replayed topic: its type, the bag connections on it and its publisher."""
    name: str
    msgtype: str
    cls: type
    has_header: bool
    header_first: bool
    connection_ids: set[int] = field(default_factory=set)
    count: int = 0
    publisher: object = None


@dataclass
class BagInfo:
    """What a replay will publish: topics (name -> type), message count, the
    first and last record time (ns, the bag's receive-time axis) and the span (s)."""
    path: Path
    topics: dict[str, str]
    message_count: int
    start_ns: int
    end_ns: int

    @property
    def span_s(self) -> float:
        return (self.end_ns - self.start_ns) * 1e-9 if self.message_count else 0.0


def _open_reader(path: Path):
    from rosbags.rosbag2 import Reader
    reader = Reader(path)
    reader.open()
    return reader


def scan_bag(path: str | Path, topics: Iterable[str] | None = None,
             verify: bool = True) -> tuple[BagInfo, dict[str, _Topic]]:
    """Check that ``path`` (a rosbag2 directory, or a single .mcap / .db3 file) can
    be replayed: it opens, the selected ``topics`` exist (all topics when None),
    every type imports and (``verify``) every selected record reads back, in
    the count the bag's index announces. Raises :class:`BagError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        reader = _open_reader(path)
    except Exception as e:  # rosbags raises ReaderError, but also struct/yaml/zstd errors on bad data
        raise BagError(f"{path}: cannot read bag (truncated or corrupt?): "
                       f"{type(e).__name__}: {_one_line(e)}") from e
    try:
        conns = list(reader.connections)
        if topics is not None:
            wanted = {_normalize_topic(t) for t in topics}
            missing = sorted(wanted - {c.topic for c in conns})
            if missing:
                raise BagError(f"{path}: topics not in the bag: {', '.join(missing)} "
                               f"(bag has: {', '.join(sorted({c.topic for c in conns}))})")
            conns = [c for c in conns if c.topic in wanted]
        bad_format = sorted({c.topic for c in conns
                             if getattr(c.ext, "serialization_format", "cdr") != "cdr"})
        if bad_format:
            raise BagError(f"{path}: not CDR-serialized, cannot replay: {', '.join(bad_format)}")
        by_topic: dict[str, _Topic] = {}
        failed: dict[str, list[str]] = {}
        reasons: dict[str, str] = {}
        for c in conns:
            t = by_topic.get(c.topic)
            if t is not None:
                if t.msgtype != c.msgtype:
                    raise BagError(f"{path}: topic {c.topic} has two types: {t.msgtype}, {c.msgtype}")
                t.connection_ids.add(c.id)
                continue
            if c.msgtype in failed:
                failed[c.msgtype].append(c.topic)
                continue
            try:
                cls = resolve_message_type(c.msgtype)
            except Exception as e:
                failed[c.msgtype] = [c.topic]
                reasons[c.msgtype] = _one_line(e)
                continue
            by_topic[c.topic] = _Topic(c.topic, c.msgtype, cls, *_header_position(cls), {c.id})
        if failed:
            listing = "; ".join(f"{ty} (on {', '.join(sorted(ts))}: {reasons[ty]})"
                                for ty, ts in sorted(failed.items()))
            raise BagError(f"{path}: cannot import message types: {listing}; "
                           f"is the package that defines them built and on PYTHONPATH?")
        start = end = None
        count = 0
        if verify and conns:
            try:
                expected = sum(c.msgcount for c in conns)
                for conn, t_ns, _ in reader.messages(connections=conns):
                    start = t_ns if start is None else min(start, t_ns)
                    end = t_ns if end is None else max(end, t_ns)
                    count += 1
            except Exception as e:
                raise BagError(f"{path}: cannot read bag (truncated or corrupt?): "
                               f"{type(e).__name__}: {_one_line(e)}") from e
            if count != expected:
                raise BagError(f"{path}: bag index announces {expected} messages, {count} read back "
                               f"(truncated or corrupt?)")
        elif conns:
            count = sum(c.msgcount for c in conns)
            start, end = reader.start_time, reader.end_time
        info = BagInfo(path, {n: t.msgtype for n, t in sorted(by_topic.items())}, count,
                       start or 0, end or 0)
        return info, by_topic
    finally:
        reader.close()


class BagReplayer(Node):
    """Publishes the records of a rosbag2 bag on their topics, paced by their recorded times.

    Args:
        bag: rosbag2 directory (MCAP or sqlite3), or a single ``.mcap``/``.db3`` file.
        rate: speed factor (1 = real time, 2 = twice as fast); 0 or ``inf`` = as fast as possible.
        clock: also publish ``rosgraph_msgs/Clock`` on ``/clock`` with the bag time: at each
            record's time, and at ``clock_hz`` (wall) in between while waiting.
        loop: start over at the end until :meth:`stop`.
        restamp: rewrite ``header.stamp`` to the replay time (module docstring).
        topics: replay only these topics (absolute names; a relative name gets a leading /).
        clock_hz: rate of the in-between ``/clock`` messages (Hz, wall clock); 0: only at records.
        delay_s: wall seconds to wait before the first record (lets subscribers match).
        verify: read the whole bag once at construction, so a corrupt record is an error
            before anything is published (costs one extra read of the bag).
        node_name, **node_kwargs: passed to ``rclpy.node.Node`` (``context``, ``namespace``...).

    Raises :class:`BagError` (one line, names the file) before any publisher exists.
    Run with :meth:`play` (blocking) or :meth:`start` (background thread; the node
    needs no spinning to publish); :meth:`stop` ends either.
    """

    def __init__(self, bag: str | Path, *, rate: float = 1.0, clock: bool = False, loop: bool = False,
                 restamp: bool = False, topics: Iterable[str] | None = None, clock_hz: float = 40.0,
                 delay_s: float = 0.0, verify: bool = True, node_name: str = "bag_replayer", **node_kwargs):
        rate = float(rate)
        if math.isnan(rate) or rate < 0:
            raise ValueError(f"rate must be >= 0 (0 or inf: as fast as possible), got {rate}")
        if clock_hz < 0 or delay_s < 0:
            raise ValueError(f"clock_hz and delay_s must be >= 0, got {clock_hz}, {delay_s}")
        self.info, self._topics = scan_bag(bag, topics, verify=verify)
        super().__init__(node_name, **node_kwargs)
        self.rate = 0.0 if math.isinf(rate) else rate
        self.loop, self.restamp, self.clock_hz, self.delay_s = bool(loop), bool(restamp), float(clock_hz), delay_s
        self._by_conn: dict[int, _Topic] = {}
        for t in self._topics.values():
            t.publisher = self.create_publisher(t.cls, t.name, REPLAY_QOS)
            self._by_conn.update({cid: t for cid in t.connection_ids})
        self._clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock
            self._clock_cls = Clock
            self._clock_pub = self.create_publisher(Clock, CLOCK_TOPIC, REPLAY_QOS)
        self._last_clock_ns = -1
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        self.published = 0           # records published, all passes
        self.clocks_published = 0    # /clock messages published, all passes
        self.passes = 0              # completed passes over the bag
        self.error: str | None = None
        self.get_logger().info(
            f"bag {self.info.path}: {self.info.message_count} messages on {len(self._topics)} topics, "
            f"{self.info.span_s:.3f} s; rate {'max' if self.rate == 0 else self.rate}"
            f"{', /clock' if clock else ''}{', loop' if loop else ''}{', restamp' if restamp else ''}")

    # ----------------------------------------------------------------- control
    @property
    def topics(self) -> dict[str, str]:
        """Replayed topics: name -> message type."""
        return dict(self.info.topics)

    @property
    def finished(self) -> bool:
        """True once playback has ended (end of bag, :meth:`stop` or an error)."""
        return self._finished.is_set()

    def subscription_counts(self) -> dict[str, int]:
        """Matched subscriptions per replayed topic (``/clock`` included when published)."""
        counts = {n: t.publisher.get_subscription_count() for n, t in self._topics.items()}
        if self._clock_pub is not None:
            counts[CLOCK_TOPIC] = self._clock_pub.get_subscription_count()
        return counts

    def start(self) -> None:
        """Play in a background thread; returns at once. See :meth:`wait`, :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("BagReplayer.start() called twice")
        self._thread = threading.Thread(target=self.play, name=f"{self.get_name()}-play", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s (None: forever) for playback to end; True if it did."""
        return self._finished.wait(timeout)

    def stop(self) -> None:
        """End playback (waits for the background thread). Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()

    # ----------------------------------------------------------------- playback
    def play(self) -> int:
        """Publish the bag (every pass with ``loop``) in the calling thread; returns the
        number of records published. Errors while playing are logged and kept in
        :attr:`error` (they cannot happen for a verified bag unless it changes on disk)."""
        if not self._run_lock.acquire(blocking=False):
            raise RuntimeError("BagReplayer is already playing")
        t_begin = time.monotonic()
        try:
            if self.delay_s and self._stop.wait(self.delay_s):
                return self.published
            while not self._stop.is_set():
                self._play_pass()
                if self._stop.is_set():
                    break
                self.passes += 1
                if not self.loop or self.info.message_count == 0:
                    break
                self.get_logger().info(f"pass {self.passes} done, looping")
        except Exception as e:
            self.error = f"{self.info.path}: replay failed: {type(e).__name__}: {_one_line(e)}"
            node_log(self, "error", self.error)
        finally:
            self._finished.set()
            self._run_lock.release()
        node_log(self, "info", f"published {self.published} messages in {time.monotonic() - t_begin:.2f} s"
                               f"{' (stopped)' if self._stop.is_set() else ''}")
        return self.published

    def _play_pass(self) -> None:
        info = self.info
        if info.message_count == 0:
            self.get_logger().warning(f"{info.path}: nothing to replay (no messages on the selected topics)")
            return
        scale = self.rate if self.rate > 0 else 1.0
        reader = _open_reader(info.path)
        try:
            conns = [c for c in reader.connections if c.id in self._by_conn]
            t0 = info.start_ns
            wall0 = time.monotonic()
            ros0 = self.get_clock().now().nanoseconds
            self._last_clock_ns = -1
            next_progress = wall0 + PROGRESS_PERIOD_S
            done = 0
            for conn, t_ns, raw in reader.messages(connections=conns):
                if self.rate > 0 and not self._wait_until(wall0 + (t_ns - t0) * 1e-9 / self.rate, t_ns, t0, wall0):
                    return
                if self._stop.is_set():
                    return
                topic = self._by_conn[conn.id]
                data = raw if type(raw) is bytes else bytes(raw)
                if self.restamp and topic.has_header:
                    data = self._restamped(topic, data, ros0, t0, scale)
                self._publish_clock(t_ns)
                topic.publisher.publish(data)
                self.published += 1
                done += 1
                now = time.monotonic()
                if now >= next_progress:
                    next_progress = now + PROGRESS_PERIOD_S
                    self.get_logger().info(f"{done}/{info.message_count} messages, "
                                           f"bag time +{(t_ns - t0) * 1e-9:.1f} s of {info.span_s:.1f} s")
        finally:
            reader.close()

    def _wait_until(self, target_wall: float, t_next_ns: int, t0: int, wall0: float) -> bool:
        """Sleep until monotonic time ``target_wall``, publishing in-between ``/clock``
        ticks; False if stopped meanwhile."""
        period = 1.0 / self.clock_hz if (self._clock_pub is not None and self.clock_hz > 0) else math.inf
        while True:
            remaining = target_wall - time.monotonic()
            if remaining <= 0:
                return not self._stop.is_set()
            if self._stop.wait(min(remaining, period)):
                return False
            if period != math.inf:
                bag_now = t0 + int((time.monotonic() - wall0) * self.rate * 1e9)
                self._publish_clock(min(bag_now, t_next_ns))

    def _publish_clock(self, t_ns: int) -> None:
        if self._clock_pub is None or t_ns <= self._last_clock_ns:
            return
        self._last_clock_ns = t_ns
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
        self._clock_pub.publish(msg)
        self.clocks_published += 1

    @staticmethod
    def _restamped(topic: _Topic, data: bytes, ros0_ns: int, t0_ns: int, scale: float) -> bytes:
        """``data`` with ``header.stamp`` moved to the replay time (module docstring)."""
        def new_stamp(old_ns: int) -> int:
            return max(0, ros0_ns + round((old_ns - t0_ns) / scale))

        if topic.header_first and len(data) >= 12 and data[0] == 0 and data[1] in (0, 1):
            # plain CDR (big/little endian): the stamp is the first field, at bytes 4..12 (int32 sec,
            # uint32 nanosec). Patching it in place keeps every other byte as recorded and costs nothing.
            fmt = "<iI" if data[1] == 1 else ">iI"
            sec, nanosec = struct.unpack_from(fmt, data, 4)
            old = sec * 1_000_000_000 + nanosec
            if old == 0:
                return data
            out = bytearray(data)
            struct.pack_into(fmt, out, 4, *divmod(new_stamp(old), 1_000_000_000))
            return bytes(out)
        from rclpy.serialization import deserialize_message, serialize_message
        msg = deserialize_message(data, topic.cls)
        stamp = msg.header.stamp
        old = stamp.sec * 1_000_000_000 + stamp.nanosec
        if old == 0:
            return data
        stamp.sec, stamp.nanosec = divmod(new_stamp(old), 1_000_000_000)
        return serialize_message(msg)


def run_replay(bag: str | Path, rate: float = 1.0, clock: bool = False, loop: bool = False,
               restamp: bool = False, topics: list[str] | None = None, delay_s: float = 1.0) -> int:
    """The ``hrc-perception replay`` command: own ``rclpy.init``/``shutdown``; Ctrl-C or
    SIGTERM stops cleanly. Returns the exit status (0 ok, 1 playback error); a bad
    bag raises :class:`BagError` before anything is published."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init()
    node = None
    try:
        node = BagReplayer(bag, rate=rate, clock=clock, loop=loop, restamp=restamp, topics=topics,
                           delay_s=delay_s)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.start()
        try:
            while not node.finished and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            node_log(node, "info", "interrupted, stopping")
        node.stop()
        executor.shutdown()
        return 1 if node.error else 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
