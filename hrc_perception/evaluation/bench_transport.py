"""`hrc-perception bench ros`: 640x480 colour + depth through rclpy and Fast DDS.

A publisher sends N pairs (rgb8 + 16UC1, ~1.5 MB a pair) as fast as the
subscriber keeps up (reliable, depth 10); the subscriber measures frames/s and
per-message latency (receive time minus the header stamp written just before
publishing). Two set-ups measured in the same run: both nodes in one process,
and the subscriber in a second process.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TOPIC_COLOR, TOPIC_DEPTH = "bench/color", "bench/depth"


def _qos():
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


class _Receiver:
    """Subscribes to both topics; records (receive ns, stamp ns) of depth images."""

    def __init__(self, node, expected: int):
        from sensor_msgs.msg import Image
        self.samples: list[tuple[int, int]] = []
        self.colors = 0
        self.expected = expected
        self.done = threading.Event()
        node.create_subscription(Image, TOPIC_COLOR, self._color, _qos())
        node.create_subscription(Image, TOPIC_DEPTH, self._depth, _qos())

    def _color(self, msg):
        self.colors += 1

    def _depth(self, msg):
        now = time.time_ns()
        self.samples.append((now, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec))
        if len(self.samples) >= self.expected:
            self.done.set()

    def summary(self) -> dict:
        if len(self.samples) < 2:
            return {"received": len(self.samples)}
        recv = [r for r, _ in self.samples]
        lat_ms = [(r - s) / 1e6 for r, s in self.samples]
        return {"received": len(self.samples), "colors": self.colors,
                "frames_per_s": (len(recv) - 1) / ((recv[-1] - recv[0]) / 1e9),
                "latency_ms_median": statistics.median(lat_ms),
                "latency_ms_p95": float(np.percentile(lat_ms, 95))}


def _publish(node, n: int, wait_for_subscribers: int = 1) -> None:
    from sensor_msgs.msg import Image

    from hrc_perception.ros.convert import ns_to_stamp, numpy_to_image
    pub_c = node.create_publisher(Image, TOPIC_COLOR, _qos())
    pub_d = node.create_publisher(Image, TOPIC_DEPTH, _qos())
    end = time.monotonic() + 10
    while (pub_d.get_subscription_count() < wait_for_subscribers) and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    depth = rng.integers(300, 5000, (480, 640), dtype=np.uint16)
    color_msg, depth_msg = numpy_to_image(rgb, "rgb8"), numpy_to_image(depth, "16UC1")
    for _ in range(n):
        stamp = ns_to_stamp(time.time_ns())
        color_msg.header.stamp = stamp
        depth_msg.header.stamp = stamp
        pub_c.publish(color_msg)
        pub_d.publish(depth_msg)
        time.sleep(0.001)


def _domain() -> int:
    return 150 + os.getpid() % 50


def bench_in_process(n: int) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=_domain())
    pub_node, sub_node = Node("bench_pub", context=ctx), Node("bench_sub", context=ctx)
    rx = _Receiver(sub_node, n)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(sub_node)
    def spin():
        while not rx.done.is_set():
            ex.spin_once(timeout_sec=0.05)
    spin = threading.Thread(target=spin, daemon=True)
    spin.start()
    _publish(pub_node, n)
    if not rx.done.wait(timeout=60):
        rx.done.set()     # stop the spin thread; the summary shows what arrived
    spin.join(timeout=5)
    ex.shutdown()
    pub_node.destroy_node()
    sub_node.destroy_node()
    ctx.try_shutdown()
    return rx.summary()


def _subscriber_process(n: int, out: str, domain: int) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = Node("bench_sub_remote", context=ctx)
    rx = _Receiver(node, n)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    end = time.monotonic() + 60
    while not rx.done.is_set() and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    Path(out).write_text(json.dumps(rx.summary()))
    node.destroy_node()
    ctx.try_shutdown()


def bench_two_processes(n: int) -> dict:
    import rclpy
    from rclpy.node import Node
    out = Path(tempfile.mkdtemp()) / "sub.json"
    domain = _domain()
    child = subprocess.Popen([sys.executable, "-m", "hrc_perception.evaluation.bench_transport", "--subscriber",
                              str(n), str(out), str(domain)], env=dict(os.environ))
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = Node("bench_pub_remote", context=ctx)
    _publish(node, n)
    child.wait(timeout=90)
    node.destroy_node()
    ctx.try_shutdown()
    return json.loads(out.read_text()) if out.exists() else {"received": 0}


def bench_ros(frames: int = 200, json_path: str | None = None) -> dict:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    res = {"frames": frames, "image": "640x480 rgb8 + 16UC1", "qos": "reliable, depth 10",
           "one_process": bench_in_process(frames), "two_processes": bench_two_processes(frames),
           "command": "hrc-perception " + " ".join(sys.argv[1:]),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"}
    print(f"bench ros: {frames} colour+depth pairs, 640x480, {res['qos']}, {res['machine']}")
    for name in ("one_process", "two_processes"):
        r = res[name]
        print(f"  {name:<14} {r.get('frames_per_s', float('nan')):6.1f} frames/s   latency median "
              f"{r.get('latency_ms_median', float('nan')):6.2f} ms  p95 {r.get('latency_ms_p95', float('nan')):6.2f} ms"
              f"   ({r['received']}/{frames} received)")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--subscriber":
        _subscriber_process(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
