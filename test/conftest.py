"""Shared fixtures: a small, fast version of the default cell."""
from pathlib import Path

import pytest

SMALL_CELL_YAML = """\
camera: {width: 320, height: 240, fx: 307.5, fy: 307.5, cx: 160.0, cy: 120.0}
sequence: {fps: 15.0, episode_frames: 5}
humans: {count: [2, 2]}
parts: {count: [3, 3]}
"""


@pytest.fixture(scope="session")
def small_cell_yaml(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "small_cell.yaml"
    p.write_text(SMALL_CELL_YAML)
    return p


@pytest.fixture(scope="session")
def small_run(small_cell_yaml):
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    return SynthRun(load_cell_config(small_cell_yaml), seed=3)


@pytest.fixture(scope="session")
def small_frames(small_run):
    """Two episodes of the small cell: frames 0..9."""
    return list(small_run.frames(10))


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one CPU thread for a module's tests (the setting is restored after). On the
    2 shared cores, busy with other work, two OpenMP threads waiting on each other made the
    shipped-model evaluations 5-30 times slower (object_pose's slice: 87 s against 2.8 s)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ros_context():
    """A private rclpy context on a DDS domain of this test process, localhost only."""
    import os
    rclpy = pytest.importorskip("rclpy")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=30 + os.getpid() % 60)
    yield ctx
    # Finalise any node a test left for the garbage collector while its context is still
    # up: a node finalised after the context's shutdown (during a later module) can leave
    # Fast DDS spinning forever in the participant's teardown.
    import gc
    gc.collect()
    ctx.try_shutdown()


def spin_until(executor, predicate, timeout_s: float = 5.0) -> bool:
    """Spin an executor until predicate() is true or timeout_s passes; returns predicate()."""
    import time
    end = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def image_sample(encoding: str, h: int, w: int, seed: int = 0):
    """A random array [h, w] or [h, w, C] of an image encoding's dtype (values use every byte)."""
    import numpy as np

    from hrc_perception.io.image_codec import ENCODINGS
    rng = np.random.default_rng(seed)
    enc = ENCODINGS[encoding]
    shape = (h, w, enc.channels) if enc.channels > 1 else (h, w)
    if enc.dtype.kind == "f":
        return rng.uniform(-1e3, 1e3, shape).astype(enc.dtype)
    return rng.integers(0, np.iinfo(enc.dtype).max, shape, endpoint=True).astype(enc.dtype)


def image_wire(a, pad: int = 0, big_endian: bool = False, extra: int = 0) -> tuple[int, bytes]:
    """(step, data) of an image array [H, W] or [H, W, C] laid out by hand the way a
    sensor_msgs/Image carries it (not by the code under test): elements big or little
    endian, ``pad`` bytes 0xAB after each row, ``extra`` bytes 0xCD at the end."""
    import numpy as np
    wire = a.astype(a.dtype.newbyteorder(">" if big_endian else "<"))
    h = a.shape[0]
    rows = wire.reshape(h, -1).view(np.uint8) if h else np.zeros((0, 0), np.uint8)
    padded = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return padded.shape[1], padded.tobytes() + b"\xcd" * extra


@pytest.fixture(scope="session")
def tiny_seg_data(tmp_path_factory, small_cell_yaml):
    """Synth COCO outputs of the small cell: train/ (4 frames, seed 11), val/ (seed 12)."""
    from hrc_perception.cli import main
    root = tmp_path_factory.mktemp("segdata")
    for name, seed in (("train", 11), ("val", 12)):
        assert main(["synth", "--config", str(small_cell_yaml), "--frames", "4", "--seed", str(seed),
                     "--out", str(root / name), "--dataset", "coco", "--quiet"]) == 0
    return root


try:   # ROS test helpers (rclpy is there wherever the ROS tests run)
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
except ImportError:
    QOS = None


class Harness:
    """A node under test, a publisher/listener node, and one executor for both."""

    def __init__(self, ctx, node, in_topic, in_type, outputs):
        import rclpy.node
        from rclpy.executors import SingleThreadedExecutor
        self.node = node
        self.io = rclpy.node.Node(f"{node.get_name()}_test_io", context=ctx)
        self.pub = self.io.create_publisher(in_type, in_topic, QOS)
        self.received = {topic: [] for topic in outputs}
        for topic, msg_type in outputs.items():
            self.io.create_subscription(msg_type, topic, self.received[topic].append, QOS)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(node)
        self.ex.add_node(self.io)
        assert spin_until(self.ex, lambda: self.pub.get_subscription_count() > 0
                          and all(self.io.count_publishers(t) > 0 for t in outputs), 10.0)

    def send(self, msg, topic, timeout_s=10.0):
        """Publish msg; the first new message on topic (None if none within timeout_s)."""
        n = len(self.received[topic])
        self.pub.publish(msg)
        spin_until(self.ex, lambda: len(self.received[topic]) > n, timeout_s)
        return self.received[topic][n] if len(self.received[topic]) > n else None

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()
