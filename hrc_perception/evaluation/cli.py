"""``hrc-perception eval safety`` (a recorded run of the graph) and ``bench ros`` (transport)."""
from __future__ import annotations

import sys
from pathlib import Path

from hrc_perception.cli_args import Commands, add_json


def _eval_safety(args) -> int:
    from hrc_perception.evaluation.safety_report import report_lines, safety_evaluation
    from hrc_perception.ros.graph import load_graph, node_parameters
    values = next(node_parameters(gn) for gn in load_graph(args.graph).nodes if gn.name == "safety_monitor")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = safety_evaluation(Path(args.bag), out, values)
    if res is None:
        print(f"error: {args.bag}: no safety/status or no ground truth (ground_truth/robot/skeleton and "
              "ground_truth/humans/skeletons) recorded", file=sys.stderr)
        return 2
    print("\n".join(report_lines(res)))
    print(f"wrote {out / 'safety.json'} and {out / 'safety_timeline.png'}")
    return 0


def _bench_ros(args) -> int:
    from hrc_perception.evaluation.bench_transport import bench_ros
    bench_ros(frames=args.frames, json_path=args.json)
    return 0


def _bench_engines(args) -> int:
    from hrc_perception.evaluation.bench_engines import bench_engines
    bench_engines(frames=args.frames, seed=args.seed, threads=args.threads, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    e = commands.eval.add_parser("safety", help="a recorded run's safety/status against verdicts of the true "
                                                "skeletons (confusion, distance error, latencies, timeline plot)")
    e.add_argument("--bag", required=True, help="a recording with safety/status and ground truth (make demo's "
                   "out/demo/demo.mcap)")
    e.add_argument("--graph", default="demo", help="graph whose safety_monitor parameters made the run")
    e.add_argument("--out", default="out/safety", help="where safety.json and safety_timeline.png go")
    e.set_defaults(func=_eval_safety)

    b = commands.bench.add_parser("ros", help="640x480 colour + depth through rclpy: frames/s and latency, "
                                              "one process and two")
    b.add_argument("--frames", type=int, default=200)
    add_json(b)
    b.set_defaults(func=_bench_ros)

    g = commands.bench.add_parser("engines", help="each shipped network by torch, ONNX Runtime and OpenVINO (fp32): "
                                                  "time per input and agreement with torch")
    g.add_argument("--frames", type=int, default=10)
    g.add_argument("--seed", type=int, default=980)
    g.add_argument("--threads", type=int, default=2, help="CPU threads of every engine")
    add_json(g)
    g.set_defaults(func=_bench_engines)
