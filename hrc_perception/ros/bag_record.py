"""Record live ROS 2 topics into a rosbag2 MCAP bag, without rosbag2.

Subscriptions are raw (``raw=True``): each message's CDR bytes go to the bag as
received, header stamps untouched; the record's timestamp is the receive time on
the node's clock (ns; ROS time, or sim time with ``use_sim_time``).

Topics: either a given list, or every topic under a namespace, found by polling
the ROS graph (``get_topic_names_and_types``) every ``discovery_period_s``
during the whole recording, so topics that appear later are recorded too. A topic
is subscribed once it has a publisher; the subscription's QoS follows the
publishers (reliable only if all of them are, transient-local only if all of
them are, so every publisher matches), keep-last ``depth``.

Message definitions (MCAP needs them) come from the ``rosbags`` typestore for
standard types; other types are registered from the ``.msg`` files of the
installed package (``share/<pkg>/msg/<Name>.msg``, found with ament_index, else
next to the Python package), nested types included. A topic whose definition
cannot be found is skipped with a warning.

The bag is written into ``<out>.partial/<name>/`` and moved to ``<out>`` only by
:meth:`BagRecorder.stop` (Ctrl-C, SIGTERM, duration reached): a recorder that
dies leaves a ``.partial`` directory, never a bag that looks complete.
"""
from __future__ import annotations

import importlib.util
import os
import threading
import time
from functools import partial
from pathlib import Path
from typing import Iterable

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from hrc_perception.io.atomic import PartialDir
from hrc_perception.ros.bag_replay import BagError, node_log, resolve_message_type

IGNORED_TOPICS = frozenset({"/rosout", "/parameter_events"})  # never discovered (can still be listed)


def _find_msg_file(msgtype: str) -> Path:
    """``share/<pkg>/msg/<Name>.msg`` of an installed message package, via
    ament_index, else in an ancestor of the Python package's directory (the venv or
    install prefix). Raises LookupError."""
    pkg, _, name = msgtype.split("/")
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory(pkg)))
    except Exception:  # not installed, or AMENT_PREFIX_PATH unset (PyPI wheels)
        pass
    spec = importlib.util.find_spec(pkg)
    if spec is not None and spec.origin:
        candidates += [p / "share" / pkg for p in Path(spec.origin).resolve().parents]
    for share in candidates:
        f = share / "msg" / f"{name}.msg"
        if f.is_file():
            return f
    raise LookupError(f"no {pkg}/msg/{name}.msg in an installed share directory")


def _named_types(tree) -> set[str]:
    """Message type names referenced in a rosbags field-definition tree."""
    if isinstance(tree, str):
        return {tree} if tree.count("/") == 2 else set()
    if isinstance(tree, (tuple, list)):
        return set().union(*(_named_types(x) for x in tree)) if tree else set()
    return set()


def register_msgdef(typestore, msgtype: str) -> None:
    """Make ``msgtype`` and the types it nests known to ``typestore`` (a rosbags
    Typestore, modified in place) from the installed ``.msg`` files. No-op for
    types it already has. Raises LookupError if a definition is missing."""
    from rosbags.typesys import get_types_from_msg
    found: dict = {}
    todo = [msgtype]
    while todo:
        t = todo.pop()
        if t in typestore.fielddefs or t in found:
            continue
        found.update(get_types_from_msg(_find_msg_file(t).read_text(), t))
        todo.extend(_named_types(found[t][1]))
    if found:
        typestore.register(found)


def _publisher_qos(infos, depth: int) -> QoSProfile:
    reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagRecorder(Node):
    """Records topics into the MCAP bag directory ``out`` (which must not exist).

    Args:
        out: final bag directory; the bag is ``<out>/<out name>.mcap`` + ``metadata.yaml``.
        topics: topics to record; relative names are taken under ``topic_namespace``.
            None: every topic under ``topic_namespace`` (hidden topics, ``/rosout`` and
            ``/parameter_events`` excepted).
        topic_namespace: namespace for discovery and relative names (default ``/``: all).
        duration_s: stop by itself after this many wall seconds (None: until :meth:`stop`).
        discovery_period_s: wall seconds between polls of the ROS graph.
        depth: keep-last depth of each subscription (messages buffered per topic).
        node_name, **node_kwargs: passed to ``rclpy.node.Node``.

    The node must be spun (any executor). :meth:`stop` finishes the bag; :attr:`finished`
    tells when (also after ``duration_s``). Destroying the node without :meth:`stop`
    leaves only the ``.partial`` directory.
    """

    def __init__(self, out: str | Path, *, topics: Iterable[str] | None = None, topic_namespace: str = "/",
                 duration_s: float | None = None, discovery_period_s: float = 0.2, depth: int = 100,
                 node_name: str = "bag_recorder", **node_kwargs):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.out = Path(out)
        if self.out.exists():
            raise BagError(f"{self.out}: exists already, not overwriting")
        if duration_s is not None and duration_s <= 0:
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        if depth < 1 or discovery_period_s <= 0:
            raise ValueError(f"depth must be >= 1 and discovery_period_s > 0, got {depth}, {discovery_period_s}")
        ns = "/" + topic_namespace.strip("/")
        self._prefix = "" if ns == "/" else ns
        self._wanted = None if topics is None else {
            t if t.startswith("/") else f"{self._prefix}/{t}" for t in topics}
        super().__init__(node_name, **node_kwargs)
        self.depth, self.duration_s = depth, duration_s
        self._typestore = get_typestore(Stores.ROS2_KILTED)   # our own copy: registering types is local
        stale = self.out.with_name(self.out.name + ".partial")
        if stale.exists():
            self.get_logger().warning(f"removing {stale}, left by a recorder that did not stop cleanly")
        try:
            self._partial = PartialDir(self.out)
            self._bag_dir = self._partial.path / self.out.name
            self._writer = Writer(self._bag_dir, version=9, storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
        except Exception:
            super().destroy_node()
            raise
        self._lock = threading.Lock()
        self._closed = False
        self._finished = threading.Event()
        self._subs: dict[str, object] = {}
        self._skipped: set[str] = set()
        self.counts: dict[str, int] = {}       # messages written per topic
        self._t_start = time.monotonic()
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # not sim time: must tick without /clock
        self._timer = self.create_timer(discovery_period_s, self._on_timer, clock=steady)
        what = (f"topics {', '.join(sorted(self._wanted))}" if self._wanted is not None
                else f"all topics under {ns}")
        self.get_logger().info(f"recording {what} into {self._partial.path}"
                               f"{f' for {duration_s} s' if duration_s else ''}")
        self._discover()

    @property
    def finished(self) -> bool:
        """True once the bag is closed (by :meth:`stop`, ``duration_s``, or :meth:`abort`)."""
        return self._finished.is_set()

    @property
    def subscribed_topics(self) -> dict[str, str]:
        """Topics recorded so far: name -> message type."""
        return {c.topic: c.msgtype for c in self._writer.connections}

    @property
    def partial_path(self) -> Path:
        """The working directory (``<out>.partial``) while recording."""
        return self._partial.path

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for the recording to finish; True if it has."""
        return self._finished.wait(timeout)

    def _on_timer(self) -> None:
        if self._closed:
            return
        if self.duration_s is not None and time.monotonic() - self._t_start >= self.duration_s:
            self.get_logger().info(f"duration {self.duration_s} s reached")
            self.stop()
            return
        self._discover()

    def _wants(self, name: str) -> bool:
        if self._wanted is not None:
            return name in self._wanted
        if name in IGNORED_TOPICS or "/_" in name:
            return False
        return not self._prefix or name.startswith(self._prefix + "/")

    def _discover(self) -> None:
        """Subscribe to wanted topics that have appeared (with a publisher) since the last poll."""
        for name, types in self.get_topic_names_and_types():
            if name in self._subs or name in self._skipped or not self._wants(name):
                continue
            if len(types) != 1:
                self._skip(name, f"published with several types {types}")
                continue
            infos = self.get_publishers_info_by_topic(name)
            if not infos:
                continue   # only subscribers so far: QoS unknown, look again later
            msgtype = types[0]
            try:
                cls = resolve_message_type(msgtype)
            except Exception as e:
                self._skip(name, f"type {msgtype} does not import: {e}")
                continue
            try:
                register_msgdef(self._typestore, msgtype)
            except Exception as e:
                self._skip(name, f"no message definition for {msgtype}: {e}")
                continue
            with self._lock:
                if self._closed:
                    return
                conn = self._writer.add_connection(name, msgtype, typestore=self._typestore)
            self.counts[name] = 0
            self._subs[name] = self.create_subscription(
                cls, name, partial(self._on_message, conn), _publisher_qos(infos, self.depth), raw=True)
            self.get_logger().info(f"recording {name} ({msgtype})")

    def _skip(self, name: str, why: str) -> None:
        self._skipped.add(name)
        self.get_logger().warning(f"not recording {name}: {why}")

    def _on_message(self, conn, data: bytes) -> None:
        t_ns = self.get_clock().now().nanoseconds
        with self._lock:
            if self._closed:
                return
            self._writer.write(conn, t_ns, data)
        self.counts[conn.topic] += 1

    def stop(self) -> Path | None:
        """Finish the bag and move it to ``out``; returns ``out`` (None if already
        closed). Safe from any thread and idempotent."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            self._timer.cancel()
            self._writer.close()
            os.replace(self._bag_dir, self.out)
            self._partial.abort()
        self._finished.set()
        total = sum(self.counts.values())
        node_log(self, "info", f"wrote {self.out}: {total} messages on {len(self.counts)} topics")
        return self.out

    def abort(self) -> None:
        """Close the bag without publishing it: ``<out>.partial`` stays (its bag is
        readable but was not stopped cleanly). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._timer.cancel()
            try:
                self._writer.close()
            except Exception:   # best effort: the point is to leave no complete-looking bag
                pass
        self._finished.set()
        node_log(self, "warning", f"recording aborted; partial data left in {self._partial.path}")

    def destroy_node(self) -> None:
        self.abort()
        super().destroy_node()


def run_record(out: str | Path, topics: list[str] | None = None, duration_s: float | None = None,
               topic_namespace: str = "/") -> int:
    """The ``hrc-perception record`` command: own ``rclpy.init``/``shutdown``; records
    until ``duration_s`` or Ctrl-C/SIGTERM, then finishes the bag. Returns the exit status."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init()
    node = None
    try:
        node = BagRecorder(out, topics=topics, topic_namespace=topic_namespace, duration_s=duration_s)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not node.finished and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        node.stop()
        executor.shutdown()
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
