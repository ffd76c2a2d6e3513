"""Render a synthetic scenario into an MCAP bag, to replay it at camera rate.

Rendering a 640x480 frame costs ~60 ms of a core, which a real camera does not: a graph
fed by the live synthetic source measures the simulator as much as the perception. This
writes, once, every message the synthetic ``rgbd_capture`` would publish for ``frames``
frames (colour, depth, camera_info, joint_states and ``ground_truth/*``, through the
node's own :func:`~hrc_perception.ros.rgbd_capture.frame_messages`), each record at its
header stamp, so ``hrc-perception replay BAG --restamp`` publishes them at the cell's
exact frame rate, stamped with the replay's clock, ground truth included.

    hrc-perception scenario --seed 0 --duration 10 --out out/scenario_seed0
    hrc-perception replay out/scenario_seed0 --restamp
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from hrc_perception.io.atomic import PartialDir
from hrc_perception.ros.bag_replay import BagError

FRAME_ID = "camera_color_optical_frame"


def _msgtype(msg) -> str:
    """'pkg/msg/Name' of a generated rclpy message instance."""
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


def render_scenario_bag(out: str | Path, config: str | None = None, seed: int = 0, duration_s: float = 10.0,
                        namespace: str = "/cell", frame_id: str = FRAME_ID, start_index: int = 0,
                        log=print) -> Path:
    """Write duration_s seconds of the synthetic cell (at least one frame, at its frame
    rate; config YAML or None: built-in; seed; from global frame start_index) to the MCAP
    bag directory ``out`` (must not exist; it appears only when complete). Returns ``out``.
    Progress every 25 frames via log."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from hrc_perception.capture.sources import SyntheticSource, frame_problem
    from hrc_perception.ros.bag_record import register_msgdef
    from hrc_perception.ros.rgbd_capture import frame_messages

    out = Path(out)
    if out.exists():
        raise BagError(f"{out}: exists already, not overwriting")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    prefix = "/" + namespace.strip("/")
    source = SyntheticSource(config or None, seed, start_index)
    frames = max(1, round(duration_s * source.fps))
    typestore = get_typestore(Stores.ROS2_KILTED)
    partial = PartialDir(out)
    writer = Writer(partial.path / out.name, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns: dict[str, object] = {}
    t0 = time.perf_counter()
    try:
        for k in range(frames):
            frame = source.next_frame()
            problem = frame_problem(frame)
            if problem:
                raise ValueError(f"frame {k}: {problem[1]}")
            msgs, gt_error = frame_messages(frame, int(frame.stamp_ns), frame_id)
            if gt_error:
                raise ValueError(f"frame {k}: ground truth: {gt_error}")
            for topic, msg in msgs.items():
                name = f"{prefix.rstrip('/')}/{topic}"
                if name not in conns:
                    register_msgdef(typestore, _msgtype(msg))
                    conns[name] = writer.add_connection(name, _msgtype(msg), typestore=typestore)
                stamp = msg.header.stamp
                writer.write(conns[name], stamp.sec * 1_000_000_000 + stamp.nanosec, serialize_message(msg))
            if (k + 1) % 25 == 0 or k + 1 == frames:
                log(f"scenario: {k + 1}/{frames} frames rendered ({time.perf_counter() - t0:.0f} s)")
        writer.close()
        os.replace(partial.path / out.name, out)     # the bag directory itself, complete
        partial.abort()
    except BaseException:
        writer.close()
        partial.abort()
        raise
    finally:
        source.close()
    return out
