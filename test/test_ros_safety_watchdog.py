"""safety_watchdog over real rclpy and DDS, beside a real safety_monitor: statuses pass
through to safety/status_guarded; when the monitor deactivates it says UNKNOWN last and
the watchdog stops; when the monitor stalls or dies (no status, no last word) the
watchdog stops on its own; QoS deadline events reach the subscriber."""
import rclpy.node
from conftest import QOS, spin_until
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from hrc_perception.msg import SafetyStatus
from hrc_perception.ros.safety_monitor_node import SafetyMonitorNode
from hrc_perception.ros.safety_watchdog_node import GUARDED_TOPIC, STATUS_TOPIC, SafetyWatchdogNode, status_qos


def _pair(ctx):
    monitor = SafetyMonitorNode(context=ctx, parameter_overrides=[
        Parameter("check_rate_hz", value=20.0), Parameter("status_deadline_s", value=0.25)])
    watchdog = SafetyWatchdogNode(context=ctx, parameter_overrides=[Parameter("deadline_s", value=0.3)])
    io = rclpy.node.Node("watchdog_test_io", context=ctx)
    guarded, raw, missed = [], [], []
    io.create_subscription(SafetyStatus, GUARDED_TOPIC, guarded.append, QOS)
    io.create_subscription(SafetyStatus, STATUS_TOPIC, raw.append, status_qos(0.3),
                           event_callbacks=SubscriptionEventCallbacks(deadline=missed.append))
    return monitor, watchdog, io, guarded, raw, missed


def test_statuses_pass_and_a_silent_monitor_becomes_a_stop(ros_context):
    monitor, watchdog, io, guarded, raw, missed = _pair(ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    for n in (monitor, watchdog, io):
        ex.add_node(n)
    try:
        # the monitor's UNKNOWN (no input yet) statuses pass through; on a busy machine the watchdog
        # may stop first, before the monitor's first status: a stop, never anything else
        assert spin_until(ex, lambda: sum("no input" in s.reason for s in guarded) >= 5, 30.0)
        assert all((s.level == SafetyStatus.UNKNOWN and "no input" in s.reason)
                   or (s.level == SafetyStatus.PROTECTIVE_STOP and "watchdog: no safety status" in s.reason)
                   for s in guarded), [(s.level, s.reason) for s in guarded]
        # the monitor deactivates: its last word is UNKNOWN, then the watchdog stops the robot
        monitor.trigger_deactivate()
        assert spin_until(ex, lambda: any("deactivating" in s.reason for s in guarded), 30.0)
        assert spin_until(ex, lambda: any("no safety status for" in s.reason for s in guarded), 30.0)
        stop = next(s for s in guarded if "no safety status for" in s.reason)
        assert stop.level == SafetyStatus.PROTECTIVE_STOP and stop.speed_scale == 0.0
        # the subscriber of safety/status got its QoS deadline event
        assert spin_until(ex, lambda: len(missed) > 0, 30.0)
        # back: statuses pass again
        monitor.trigger_activate()
        n = len(guarded)
        assert spin_until(ex, lambda: any("no input" in s.reason for s in guarded[n:]), 30.0)
        # the monitor stalls (never spun again, no last word): the watchdog stops on its own
        ex.remove_node(monitor)
        n = len(guarded)
        assert spin_until(ex, lambda: any("no safety status for" in s.reason for s in guarded[n:]), 30.0)
        assert all(s.level == SafetyStatus.PROTECTIVE_STOP for s in guarded[n:] if "watchdog" in s.reason)
        assert watchdog.stops_published > 1 and watchdog.lifecycle_state == "active"
    finally:
        ex.shutdown()
        for n in (monitor, watchdog, io):
            n.destroy_node()
