"""Fault injection on the running demo graph: each node in its own process, killed
(SIGKILL: a crash, no last word) and restarted one at a time, mid-run; then the safety
monitor itself, with the watchdog left to notice.

For each victim it measures, from the kill (monotonic seconds, this process's receive
times of ``safety/status`` and ``safety/status_guarded``):

- ``to_unknown_s``: the first UNKNOWN status (the monitor noticed the loss), to compare
  with the graph's ``max_age_s`` plus one check period; ``unknown_share_3s_before``: the
  share of UNKNOWN statuses in the 3 s before the kill (a loaded machine's inputs may
  already be near ``max_age_s``: then the first UNKNOWN comes sooner than the loss alone);
- ``permissive_after_kill``: OK or WARNING statuses between the kill and that UNKNOWN
  (inputs already on their way may still be judged); ``permissive_while_down``: OK or
  WARNING statuses after it while the node is down (must be 0);
- ``recovered_s``: from the restart to the first status that is not UNKNOWN (the
  pipeline works again; OK only if the scene allows it);
- for the monitor: ``watchdog_stop_s``, the first PROTECTIVE_STOP the watchdog publishes.

    python -m hrc_perception.evaluation.fault_injection --out out/faults --json benchmarks/results/faults.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path

VICTIMS = ("human_pose", "segmentation", "tracker", "robot_pose", "rgbd_capture")
OK, WARNING, PROTECTIVE_STOP, UNKNOWN = 0, 1, 2, 3


class _Listener:
    """safety/status and safety/status_guarded with their receive times (monotonic s)."""

    def __init__(self, context, namespace: str):
        import rclpy.node
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from hrc_perception.msg import SafetyStatus
        self.node = rclpy.node.Node("fault_injection", context=context)
        self.status: list[tuple[float, int, str]] = []
        self.guarded: list[tuple[float, int, str]] = []
        self.lock = threading.Lock()
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic, store in (("safety/status", self.status), ("safety/status_guarded", self.guarded)):
            self.node.create_subscription(SafetyStatus, f"{namespace.rstrip('/')}/{topic}",
                                          lambda m, s=store: self._add(s, m), qos)

    def _add(self, store, msg) -> None:
        with self.lock:
            store.append((time.monotonic(), int(msg.level), msg.reason))

    def after(self, store, t0: float) -> list[tuple[float, int, str]]:
        with self.lock:
            return [s for s in store if s[0] >= t0]

    def wait_for(self, store, t0: float, predicate, timeout_s: float) -> float | None:
        """Seconds from t0 to the first status after t0 that satisfies predicate, or None."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for t, level, reason in self.after(store, t0):
                if predicate(level, reason):
                    return t - t0
            time.sleep(0.02)
        return None


def run(out: Path, warmup_timeout_s: float, recover_timeout_s: float) -> dict:
    from rclpy.executors import SingleThreadedExecutor

    from hrc_perception.evaluation.demo import _graph_parameters, _node_process, _stop, graph_context
    from hrc_perception.ros.graph import load_graph

    graph = load_graph("demo")
    context, env = graph_context()
    listener = _Listener(context, graph.namespace)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener.node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    monitor = _graph_parameters("demo", "safety_monitor")
    watchdog = _graph_parameters("demo", "safety_watchdog")
    res: dict = {"max_age_s": monitor["max_age_s"], "check_period_s": 1.0 / monitor["check_rate_hz"],
                 "watchdog_deadline_s": watchdog["deadline_s"], "victims": {}}
    procs = {n.name: _node_process(graph.name, n.name, {}, env) for n in graph.nodes}

    def working(level, reason):
        return level != UNKNOWN

    try:
        t0 = time.monotonic()
        up = listener.wait_for(listener.status, t0, working, warmup_timeout_s)
        if up is None:
            raise RuntimeError(f"fault_injection: no status other than UNKNOWN within {warmup_timeout_s:.0f} s")
        print(f"fault_injection: graph working after {up:.1f} s", file=sys.stderr)
        time.sleep(3.0)
        for victim in VICTIMS:
            t_kill = time.monotonic()
            before = listener.after(listener.status, t_kill - 3.0)
            unknown_before = sum(lv == UNKNOWN for _, lv, _ in before) / max(len(before), 1)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            to_unknown = listener.wait_for(listener.status, t_kill, lambda lv, r: lv == UNKNOWN, 30.0)
            t_unknown = t_kill + (to_unknown if to_unknown is not None else 30.0)
            permissive = [s for s in listener.after(listener.status, t_kill)
                          if s[0] <= t_unknown and s[1] in (OK, WARNING)]
            time.sleep(2.0)
            t_restart = time.monotonic()
            permissive_while_down = [s for s in listener.after(listener.status, t_unknown)
                                     if s[0] < t_restart and s[1] in (OK, WARNING)]
            procs[victim] = _node_process(graph.name, victim, {}, env)
            recovered = listener.wait_for(listener.status, t_restart, working, recover_timeout_s)
            reason = next((r for t, lv, r in listener.after(listener.status, t_kill) if lv == UNKNOWN), "")
            res["victims"][victim] = {"unknown_share_3s_before": unknown_before, "to_unknown_s": to_unknown,
                                      "permissive_after_kill": len(permissive),
                                      "permissive_while_down": len(permissive_while_down),
                                      "unknown_reason": reason, "recovered_s": recovered}
            print(f"fault_injection: {victim}: UNKNOWN after {to_unknown} s ({reason}); recovered after "
                  f"{recovered} s", file=sys.stderr)
            time.sleep(3.0)
        t_kill = time.monotonic()
        procs["safety_monitor"].send_signal(signal.SIGKILL)
        procs["safety_monitor"].wait()
        stop = listener.wait_for(listener.guarded, t_kill, lambda lv, r: lv == PROTECTIVE_STOP and "watchdog" in r,
                                 30.0)
        res["victims"]["safety_monitor"] = {"watchdog_stop_s": stop}
        print(f"fault_injection: safety_monitor killed: watchdog stop after {stop} s", file=sys.stderr)
    finally:
        _stop(list(procs.values()))
        executor.shutdown()
        spinner.join(timeout=5)
        listener.node.destroy_node()
        context.try_shutdown()
    res["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    out.mkdir(parents=True, exist_ok=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/faults"))
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--warmup-timeout", type=float, default=240.0)
    ap.add_argument("--recover-timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    res = run(args.out, args.warmup_timeout, args.recover_timeout)
    args_used = argv if argv is not None else sys.argv[1:]
    res["command"] = "python -m hrc_perception.evaluation.fault_injection " + " ".join(args_used)
    text = json.dumps(res, indent=2) + "\n"
    (args.out / "faults.json").write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(f"{'victim':<16} {'UNKNOWN before':>14} {'to UNKNOWN s':>12} {'OK after kill':>13} {'OK while down':>13} "
          f"{'recovered s':>11}")
    for name, r in res["victims"].items():
        if name == "safety_monitor":
            print(f"{name:<16} watchdog stop after {r['watchdog_stop_s']} s")
        else:
            f = (lambda x: "-" if x is None else f"{x:.2f}")
            print(f"{name:<16} {r['unknown_share_3s_before']:>14.2f} {f(r['to_unknown_s']):>12} "
                  f"{r['permissive_after_kill']:>13} {r['permissive_while_down']:>13} {f(r['recovered_s']):>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
