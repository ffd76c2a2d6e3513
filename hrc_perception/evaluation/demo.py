"""`make demo`: the synthetic cell through the node graph, recorded and reported.

Runs the ``demo`` graph of config/graphs.yaml, one process per node (real rclpy,
real DDS), for a number of seconds while a recorder writes every topic of the
namespace to ``OUT/demo.mcap``. By default the cell is rendered into a bag first
(:mod:`hrc_perception.ros.scenario_bag`) and replayed at its frame rate (15 Hz) in place
of rgbd_capture, as a camera would deliver it: rendering costs ~60 ms of a core per frame,
which a camera does not (``--source live``: rgbd_capture renders while the graph runs).
Then it reads the bag back and writes

- ``OUT/report.md``: per-topic message counts and rates, per-topic latency
  (receive time at the recorder minus header stamp: median and p95) and, for
  every output that has ground truth, its accuracy (``ACCURACY_CHECKS``);
- ``OUT/overview.mp4`` and ``OUT/contact_sheet.png``: the visualizer's overlay
  images (or, without a visualizer in the graph, the colour images);
- ``OUT/safety.json`` and ``OUT/safety_timeline.png``: the safety monitor against the
  verdicts of the true skeletons, the latencies (:mod:`hrc_perception.evaluation.safety_report`).

    python -m hrc_perception.evaluation.demo --out out/demo --duration 10
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader

from hrc_perception.evaluation.safety_report import safety_evaluation

ACCURACY_CHECKS: dict = {
    ("segmentation/instances", "ground_truth/segmentation/instances"): "segmentation_accuracy",
    ("tracking/tracks", "ground_truth/segmentation/instances"): "tracking_accuracy",
    ("objects/poses", "ground_truth/objects/poses"): "object_pose_accuracy",
    ("robot/skeleton", "ground_truth/robot/skeleton"): "robot_skeleton_accuracy",
    ("robot/base_pose", "ground_truth/robot/base_pose"): "robot_base_pose_accuracy",
    ("humans/skeletons", "ground_truth/humans/skeletons"): "human_skeleton_accuracy",
}
"""(estimate topic, ground-truth topic) -> name of a function of
:mod:`hrc_perception.evaluation.accuracy` taking (pairs of deserialized messages with the
same header stamp, image height, image width) and returning metric name -> value."""

OVERLAY_TOPIC = "visualizer/debug_image"
DEPTH_VIEW_TOPIC = "safety_monitor/depth_debug_image"    # a graph without colour networks (demo_depth)
COLOR_TOPIC = "camera/color/image_raw"


SOURCE_EXECUTABLES = ("rgbd_capture",)
"""Started last (once the other nodes are up) and stopped first."""




def _node_process(graph_name: str, node_name: str, overrides: dict, env: dict, nice: int = 0) -> subprocess.Popen:
    sets = [f"--set={node_name}.{k}={json.dumps(v)}" for k, v in overrides.get(node_name, {}).items()]  # YAML reads JSON
    cmd = [sys.executable, "-m", "hrc_perception.ros.bringup", graph_name, "--only", node_name, *sets]
    return subprocess.Popen(cmd, env=env, preexec_fn=(lambda: os.nice(nice)) if nice else None)


def _stop(procs: list[subprocess.Popen], timeout_s: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def graph_context():
    """(an rclpy context on this run's DDS domain, localhost only; the environment for the
    node processes of the graph on that domain)."""
    import rclpy
    domain = int(os.environ.get("ROS_DOMAIN_ID", 60 + os.getpid() % 40))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain)
    return context, env


def _wait_active(node, namespace: str, names: list[str], t0: float, timeout_s: float, procs: list) -> None:
    """Wait until every node of names (lifecycle nodes, all of them) is active: discovered is
    not enough, a node loads its model while it configures (tens of seconds on 2 cores with
    every node loading at once)."""
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState
    ns = "/" + namespace.strip("/")
    pending = {n: node.create_client(GetState, f"{ns}/{n}/get_state") for n in names}
    futures: dict = {}
    while pending:
        if time.monotonic() - t0 > timeout_s or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"demo: nodes {sorted(pending)} did not become active "
                               f"(exit codes {[p.poll() for p in procs]})")
        for n, client in list(pending.items()):
            f = futures.get(n)
            if f is None:
                if client.service_is_ready():
                    futures[n] = client.call_async(GetState.Request())
            elif f.done():
                del futures[n]
                if f.result() is not None and f.result().current_state.id == State.PRIMARY_STATE_ACTIVE:
                    node.destroy_client(pending.pop(n))
        time.sleep(0.2)


def run_graph_and_record(out_bag_dir: Path, duration_s: float, namespace: str, overrides: dict,
                         graph_name: str = "demo", start_timeout_s: float = 300.0,
                         scenario_bag: Path | None = None, nice_others: int = 0) -> None:
    """Run each node of the demo graph in its own process (``bringup --only``, as
    ``ros2 launch`` would) and a recorder of ``namespace`` in this one, for duration_s
    seconds from the source's first camera frame. The source starts once every other node is
    active, so no frame is lost to a node still loading its model. scenario_bag: a bag
    of :mod:`hrc_perception.ros.scenario_bag` replayed (``hrc-perception replay
    --restamp``) in place of the graph's rgbd_capture; the run ends with it.
    nice_others: the niceness of every node process but the safety ones (``SAFETY_EXECUTABLES``),
    so that on a busy machine the verdict is computed first (a node's own ``nice`` in the
    graph, when higher, stays)."""
    from rclpy.executors import SingleThreadedExecutor

    from hrc_perception.ros.bag_record import BagRecorder
    from hrc_perception.ros.graph import SAFETY_EXECUTABLES, load_graph

    graph = load_graph(graph_name)
    context, env = graph_context()
    executor = SingleThreadedExecutor(context=context)
    recorder = BagRecorder(out_bag_dir, topic_namespace=namespace, context=context)
    executor.add_node(recorder)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    sources = [n for n in graph.nodes if n.executable in SOURCE_EXECUTABLES]
    others = [n for n in graph.nodes if n.executable not in SOURCE_EXECUTABLES]
    procs_others, procs_sources = [], []
    try:
        procs_others = [_node_process(graph.name, n.name, overrides, env,
                                      0 if n.executable in SAFETY_EXECUTABLES else max(n.nice, nice_others))
                        for n in others]
        wanted = {n.name for n in others}
        t0 = time.monotonic()
        while not wanted <= set(recorder.get_node_names()):
            if time.monotonic() - t0 > start_timeout_s or any(p.poll() is not None for p in procs_others):
                raise RuntimeError(f"demo: nodes {sorted(wanted - set(recorder.get_node_names()))} did not come up "
                                   f"(exit codes {[p.poll() for p in procs_others]})")
            time.sleep(0.2)
        _wait_active(recorder, namespace, sorted(wanted), t0, start_timeout_s, procs_others)
        what = f"a replay of {scenario_bag}" if scenario_bag else ", ".join(n.name for n in sources)
        print(f"demo: {', '.join(sorted(wanted))} active after {time.monotonic() - t0:.1f} s; starting "
              f"{what} for {duration_s:.0f} s", file=sys.stderr)
        if scenario_bag:
            procs_sources = [subprocess.Popen([sys.executable, "-m", "hrc_perception.cli", "replay", str(scenario_bag),
                                               "--restamp", "--delay", "0.5"], env=env)]
        else:
            procs_sources = [_node_process(graph.name, n.name, overrides, env) for n in sources]
        # the duration counts from the first camera frame: on a small machine the source
        # itself takes seconds to start while the other nodes still load their models
        first = f"{namespace.rstrip('/')}/{COLOR_TOPIC}"
        t0 = time.monotonic()
        while recorder.counts.get(first, 0) == 0:
            if time.monotonic() - t0 > start_timeout_s or any(p.poll() is not None for p in procs_sources):
                raise RuntimeError(f"demo: no {first} within {start_timeout_s:.0f} s of starting the source")
            time.sleep(0.2)
        print(f"demo: first camera frame {time.monotonic() - t0:.1f} s after starting the source; recording "
              f"{duration_s:.0f} s", file=sys.stderr)
        t_end = time.monotonic() + duration_s
        while time.monotonic() < t_end:
            if scenario_bag and all(p.poll() == 0 for p in procs_sources):
                break                      # the scenario's end
            if any(p.poll() is not None for p in procs_sources + procs_others):
                raise RuntimeError(f"demo: a node process exited early (exit codes: sources "
                                   f"{[p.poll() for p in procs_sources]}, others {[p.poll() for p in procs_others]})")
            time.sleep(0.2)
        _stop(procs_sources)
        time.sleep(1.0)   # the last frames through the pipeline
        _stop(procs_others)
        recorder.stop()
    finally:
        _stop(procs_sources + procs_others)
        executor.shutdown()
        spinner.join(timeout=5)
        recorder.destroy_node()
        context.try_shutdown()


def _header_stamp_ns(raw: bytes) -> int | None:
    """Header stamp of a CDR message whose first field is a std_msgs/Header."""
    if len(raw) < 12:
        return None
    sec, nanosec = struct.unpack_from("<iI", raw, 4)   # after the 4-byte CDR encapsulation
    return sec * 1_000_000_000 + nanosec


def topic_statistics(bag: Path) -> list[dict]:
    """Per topic: type, count, rate (Hz), latency median / p95 (ms) from header stamps."""
    rows = []
    with Reader(bag) as reader:
        for conn in sorted(reader.connections, key=lambda c: c.topic):
            recv, stamps = [], []
            for _, t_recv, raw in reader.messages(connections=[conn]):
                recv.append(t_recv)
                stamps.append(_header_stamp_ns(bytes(raw)))
            row = {"topic": conn.topic, "type": conn.msgtype, "count": len(recv)}
            span = (max(recv) - min(recv)) / 1e9 if len(recv) > 1 else 0.0
            row["rate_hz"] = (len(recv) - 1) / span if span > 0 and len(recv) >= 3 else float("nan")
            lat = [(r - s) / 1e6 for r, s in zip(recv, stamps) if s]
            plausible = [x for x in lat if -1e3 < x < 60e3]   # stamped messages only
            row["latency_ms_median"] = float(np.median(plausible)) if plausible else float("nan")
            row["latency_ms_p95"] = float(np.percentile(plausible, 95)) if plausible else float("nan")
            rows.append(row)
    return rows


def _images(bag: Path, topic_suffix: str):
    """(stamp_ns, rgb [H, W, 3] uint8) of a colour image topic of the bag, in order."""
    from hrc_perception.io.bag import deserialize
    from hrc_perception.io.image_codec import decode_rgb
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic.endswith("/" + topic_suffix)]
        for conn, t, raw in reader.messages(connections=conns):
            msg = deserialize(raw, conn.msgtype)
            yield t, decode_rgb(msg)


def write_video_and_sheet(bag: Path, out_dir: Path, fps: float) -> tuple[str, int]:
    """overview.mp4 and contact_sheet.png from the visualizer's overlay, else the depth path's
    view, else the colour images."""
    import imageio_ffmpeg
    from PIL import Image

    with Reader(bag) as reader:
        recorded = {c.topic for c in reader.connections}
    topic = next((t for t in (OVERLAY_TOPIC, DEPTH_VIEW_TOPIC) if any(r.endswith("/" + t) for r in recorded)),
                 COLOR_TOPIC)
    frames = [img for _, img in _images(bag, topic)]
    if not frames:
        raise RuntimeError(f"{bag}: no {topic} images recorded")
    h, w = frames[0].shape[:2]
    tmp = out_dir / "overview.partial.mp4"
    writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=16, quality=7)
    writer.send(None)
    for f in frames:
        if f.shape[:2] == (h, w):
            writer.send(np.ascontiguousarray(f))
    writer.close()
    tmp.replace(out_dir / "overview.mp4")
    pick = np.linspace(0, len(frames) - 1, min(6, len(frames))).round().astype(int)
    tiles = [Image.fromarray(frames[i]).resize((w // 2, h // 2)) for i in pick]
    sheet = Image.new("RGB", (w, (h // 2) * ((len(tiles) + 1) // 2)))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % 2) * (w // 2), (k // 2) * (h // 2)))
    sheet.save(out_dir / "contact_sheet.png")
    return topic, len(frames)


def accuracy(bag: Path) -> dict[tuple[str, str], dict]:
    """Run every ACCURACY_CHECKS entry whose two topics are in the bag."""
    import importlib

    from rclpy.serialization import deserialize_message

    from hrc_perception.evaluation import accuracy as checks

    def msg_class(msgtype: str):   # 'pkg/msg/Name' -> the generated Python class
        pkg, _, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{pkg}.msg"), name)

    wanted = {t for pair in ACCURACY_CHECKS for t in pair} | {"camera/color/camera_info"}
    by_topic: dict[str, dict[int, object]] = {t: {} for t in wanted}
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if any(c.topic.endswith("/" + t) for t in wanted)]
        for conn, _, raw in reader.messages(connections=conns):
            # the longest match: ".../ground_truth/segmentation/instances" also ends in "/segmentation/instances"
            topic = max((t for t in wanted if conn.topic.endswith("/" + t)), key=len)
            msg = deserialize_message(bytes(raw), msg_class(conn.msgtype))
            by_topic[topic][msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = msg
    infos = list(by_topic["camera/color/camera_info"].values())
    if not infos:
        return {}
    height, width = int(infos[0].height), int(infos[0].width)
    out = {}
    for (est, gt), fn in ACCURACY_CHECKS.items():
        stamps = sorted(set(by_topic[est]) & set(by_topic[gt]))
        if stamps:
            out[(est, gt)] = getattr(checks, fn)([(by_topic[est][s], by_topic[gt][s]) for s in stamps],
                                                 height, width)
    return out


def write_report(out_dir: Path, stats: list[dict], video_topic: str, video_frames: int, duration_s: float,
                 command: str, scores: dict[tuple[str, str], dict] | None = None,
                 safety: dict | None = None, graph_name: str = "demo") -> Path:
    lines = ["# hrc_perception demo report", "",
             f"- command: `{command}`",
             f"- graph: `{graph_name}` (config/graphs.yaml), {duration_s:.0f} s, machine: {platform.machine()}, "
             f"{os.cpu_count()} cores, {platform.platform()}",
             f"- bag: `demo.mcap` ({sum(r['count'] for r in stats)} messages); video: `overview.mp4` "
             f"({video_frames} frames of `{video_topic}`), `contact_sheet.png`", "",
             "## Topics", "",
             "Latency: time the recorder received a message minus its header stamp (the stamp of the camera "
             "frame it belongs to), so for results it is the pipeline delay up to that node.", "",
             "| topic | type | messages | rate (Hz) | latency median (ms) | latency p95 (ms) |",
             "|---|---|---|---|---|---|"]
    for r in stats:
        lines.append(f"| `{r['topic']}` | {r['type']} | {r['count']} | {r['rate_hz']:.1f} | "
                     f"{r['latency_ms_median']:.1f} | {r['latency_ms_p95']:.1f} |")
    lines += ["", "## Accuracy against ground truth", ""]
    if scores:
        lines += ["Every estimate whose header stamp has ground truth (the frames the node processed).", ""]
        for (est, gt), metrics in scores.items():
            lines += [f"### `{est}` vs `{gt}`", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
            lines.append("")
    else:
        lines.append("No estimate with ground truth was recorded.")
    if safety:
        from hrc_perception.evaluation.safety_report import report_lines
        lines += [""] + report_lines(safety)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _graph_parameters(graph_name: str, node_name: str) -> dict:
    from hrc_perception.ros.graph import load_graph, node_parameters
    return next((node_parameters(gn) for gn in load_graph(graph_name).nodes if gn.name == node_name), {})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hrc_perception.evaluation.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/demo", help="output directory")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of running graph")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic cell")
    p.add_argument("--graph", default="demo", help="graph of config/graphs.yaml (demo_depth: the depth path alone)")
    p.add_argument("--config", default="", help="cell YAML (default: built-in)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="parameter override, e.g. human_pose.weights=out/humans/model/model.pt")
    p.add_argument("--source", choices=("scenario", "live"), default="scenario",
                   help="scenario: render the cell into a bag first (OUT/scenario), then replay it at the cell's "
                        "frame rate in place of rgbd_capture (the run measures the perception, not the renderer); "
                        "live: the graph's rgbd_capture renders while the graph runs")
    p.add_argument("--nice-others", type=int, default=0, metavar="N",
                   help="niceness of every node process but safety_monitor and safety_watchdog (0: all equal)")
    p.add_argument("--camera-hz", type=float, default=0.0,
                   help="live: publish the synthetic camera at this rate, stamped on arrival (a machine that "
                        "cannot keep up with the cell's 15 fps: the cell then moves in slow motion); 0 = the "
                        "cell's own rate, in real time")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bag_dir, scenario = out / "demo_bag", out / "scenario"
    for stale in (bag_dir, out / "demo.mcap", scenario):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    from hrc_perception.ros.bringup import parse_sets
    overrides = {"rgbd_capture": {"seed": args.seed, "config": args.config}}
    if args.camera_hz > 0:
        overrides["rgbd_capture"] |= {"realtime": False, "rate_hz": args.camera_hz}
    for node, params in parse_sets(args.set).items():
        overrides.setdefault(node, {}).update(params)
    monitor = _graph_parameters(args.graph, "safety_monitor") | overrides.get("safety_monitor", {})
    humans = _graph_parameters(args.graph, "human_pose") | overrides.get("human_pose", {})
    # the empty cell the camera will show, for the nodes that take a background and were given none
    need = [node for node, params, wants in (("safety_monitor", monitor, monitor.get("depth_path", "off") != "off"),
                                             ("human_pose", humans, bool(humans.get("follow"))))
            if wants and not params.get("background_file")]
    if need:
        from hrc_perception.safety.cli import synthetic_background
        print("demo: " + synthetic_background(args.config, args.seed, 0, 30, str(out / "background.npz")),
              file=sys.stderr)
        for node in need:
            overrides.setdefault(node, {})["background_file"] = str((out / "background.npz").resolve())
        monitor = monitor | overrides.get("safety_monitor", {})
    if args.source == "scenario":
        from hrc_perception.ros.scenario_bag import render_scenario_bag
        render_scenario_bag(scenario, args.config or None, args.seed, args.duration,
                            log=lambda m: print("demo: " + m, file=sys.stderr))
    run_graph_and_record(bag_dir, args.duration, "/cell", overrides, args.graph,
                         scenario_bag=scenario if args.source == "scenario" else None, nice_others=args.nice_others)
    mcap = next(bag_dir.glob("*.mcap"))
    mcap.replace(out / "demo.mcap")
    shutil.rmtree(bag_dir)
    if scenario.exists():
        shutil.rmtree(scenario)      # hundreds of MB of raw frames; the recording has them
    bag = out / "demo.mcap"
    stats = topic_statistics(bag)
    topic, n = write_video_and_sheet(bag, out, fps=15.0)
    safety = safety_evaluation(bag, out, monitor)
    report = write_report(out, stats, topic, n, args.duration,
                          "python -m hrc_perception.evaluation.demo " + " ".join(argv if argv is not None else sys.argv[1:]),
                          accuracy(bag), safety, args.graph)
    print(f"demo: wrote {bag}, {report}, {out / 'overview.mp4'}, {out / 'contact_sheet.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
