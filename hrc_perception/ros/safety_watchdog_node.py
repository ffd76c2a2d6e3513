"""The safety_watchdog node: ``safety/status`` passed on to ``safety/status_guarded``
while it keeps coming; a stop there when it does not (:mod:`hrc_perception.safety.watchdog`).

Subscribes ``safety/status`` (SafetyStatus) with a deadline and MANUAL_BY_TOPIC
liveliness of ``deadline_s`` (the monitor's ``status_deadline_s`` must not exceed it:
the QoS would be incompatible, reported as ``incompatible_qos``). Publishes
``safety/status_guarded`` (SafetyStatus, reliable, the same deadline and liveliness):
each status as it arrives (an unknown level or a speed scale outside 0..1 turned into
PROTECTIVE_STOP), and at ``check_rate_hz``, while no status came for ``deadline_s`` or
the monitor's liveliness is lost, a PROTECTIVE_STOP (speed 0) whose reason says why.
A robot controller reads the guarded topic; the QoS deadline event of its own
subscription tells it when the watchdog itself goes quiet. Before the watchdog
deactivates or exits it publishes a last stop.

    ros2 run hrc_perception safety_watchdog --ros-args -r __ns:=/cell
"""
from __future__ import annotations

import time

from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from hrc_perception.msg import SafetyStatus
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.safety.watchdog import PROTECTIVE_STOP, StatusWatchdog

STATUS_TOPIC = "safety/status"
GUARDED_TOPIC = "safety/status_guarded"


def status_qos(deadline_s: float) -> QoSProfile:
    """Reliable, depth 10, deadline and MANUAL_BY_TOPIC liveliness lease of deadline_s."""
    d = Duration(seconds=deadline_s)
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                      deadline=d, liveliness=LivelinessPolicy.MANUAL_BY_TOPIC, liveliness_lease_duration=d)


class SafetyWatchdogNode(HrcNode):
    """See the module doc. After construction: ``stops_published`` (count)."""

    PARAMS = (
        ParamSpec("deadline_s", 0.3, "a status later than this after the previous one is a stop (s); at least the "
                  "monitor's status_deadline_s", min_value=0.002, max_value=60.0, read_only=True),
        ParamSpec("check_rate_hz", 20.0, "stops repeated at this rate while the monitor is silent (Hz)",
                  min_value=1.0, max_value=1000.0, read_only=True),
    )

    def __init__(self, node_name: str = "safety_watchdog", **kwargs):
        self.stops_published = 0
        self._watchdog: StatusWatchdog | None = None
        self._pub = self._sub = self._timer = None
        self._last_header = Header()
        super().__init__(node_name, **kwargs)

    def on_configure_hook(self) -> None:
        deadline = self.param("deadline_s")
        self._watchdog = StatusWatchdog(deadline)
        qos = status_qos(deadline)
        self._pub = self.create_publisher(SafetyStatus, GUARDED_TOPIC, qos)
        events = SubscriptionEventCallbacks(deadline=self.guarded(self._on_deadline_missed),
                                            liveliness=self.guarded(self._on_liveliness),
                                            incompatible_qos=self.guarded(self._on_incompatible))
        self._sub = self.create_subscription(SafetyStatus, STATUS_TOPIC, self.guarded(self._on_status), qos,
                                             event_callbacks=events)
        self._timer = self.create_timer(1.0 / self.param("check_rate_hz"), self.guarded(self._on_timer))

    def on_deactivate_hook(self) -> None:
        self._stop("watchdog deactivating")

    def on_cleanup_hook(self) -> None:
        self._stop("watchdog shutting down")
        for destroy, handle in ((self.destroy_subscription, self._sub), (self.destroy_publisher, self._pub),
                                (self.destroy_timer, self._timer)):
            if handle is not None:
                destroy(handle)
        self._pub = self._sub = self._timer = None

    def before_exit(self) -> None:
        self._stop("watchdog exiting")

    def _on_status(self, msg: SafetyStatus) -> None:
        if not self.is_active:
            return
        level, scale, prefix = self._watchdog.on_status(int(msg.level), float(msg.speed_scale), time.monotonic())
        self._last_header = msg.header
        if prefix:
            self.report("invalid_status", prefix + msg.reason)
        msg.level, msg.speed_scale, msg.reason = level, scale, prefix + msg.reason
        self._pub.publish(msg)

    def _on_deadline_missed(self, event) -> None:
        self.report("deadline_missed", f"{STATUS_TOPIC}: no status within {self.param('deadline_s')} s "
                    f"(x{event.total_count})")
        self._on_timer()

    def _on_liveliness(self, event) -> None:
        if event.alive_count == 0:
            self._watchdog.on_liveliness_lost()
            self.report("liveliness_lost", f"{STATUS_TOPIC}: the safety monitor's liveliness was lost")
            self._on_timer()

    def _on_incompatible(self, event) -> None:
        self.report("incompatible_qos", f"{STATUS_TOPIC}: a publisher's QoS does not offer this deadline or "
                    "liveliness (its status_deadline_s must be at most this deadline_s)")

    def _on_timer(self) -> None:
        if self.is_active:
            why = self._watchdog.check(time.monotonic())
            if why:
                self._stop(why)

    def _stop(self, reason: str) -> None:
        if self._pub is None or not self.context.ok():
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._last_header.frame_id)
        self._pub.publish(SafetyStatus(header=header, level=PROTECTIVE_STOP, speed_scale=0.0,
                                       min_distance_m=float("nan"), protective_separation_distance_m=float("nan"),
                                       data_age_s=float("nan"), reason=reason))
        self.stops_published += 1

    def diagnostic_values(self) -> dict[str, str]:
        silent = self._watchdog.silent_for(time.monotonic()) if self._watchdog else float("inf")
        return {"stops_published": str(self.stops_published), "silent_s": f"{silent:.3f}"}


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception safety_watchdog``. Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(SafetyWatchdogNode, args)
