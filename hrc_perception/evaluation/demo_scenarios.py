"""The test scenarios through the node graph: ``python -m hrc_perception.evaluation.demo_scenarios``.

Each scenario of :data:`hrc_perception.safety.scenarios.SCENARIOS` (its cell YAML, its seed
or ``--seed``, its monitor settings) is rendered into a scenario bag and replayed at 15 Hz
through a graph of ``config/graphs.yaml`` by the demo (``hrc_perception.evaluation.demo``),
for its episode's length; each run's safety figures (OK while the truth stops, frames
judged, availability, camera-to-verdict latency, onset to first stop) go into one JSON.
The offline counterpart, without ROS: ``hrc-perception eval safety_scenarios``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KEPT = ("frames_with_truth", "ok_while_truth_stop", "truth_moves_frames", "availability",
        "camera_to_verdict_latency_ms_median", "camera_to_verdict_latency_ms_p95", "truth_stop_onsets",
        "stop_latency_ms_median", "stop_or_unknown_latency_ms_median", "levels")


def main(argv: list[str] | None = None) -> int:
    from hrc_perception.evaluation import demo
    from hrc_perception.resources import package_file
    from hrc_perception.safety.scenarios import SCENARIOS
    from hrc_perception.sim.config import load_cell_config

    p = argparse.ArgumentParser(prog="python -m hrc_perception.evaluation.demo_scenarios", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graph", default="demo_depth", help="graph of config/graphs.yaml")
    p.add_argument("--seed", type=int, default=2300, help="seed of the scripted scenarios (2300: tuning)")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME", help="these scenarios only")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE", help="for every run")
    p.add_argument("--out", default="out/demo_scenarios")
    p.add_argument("--json", required=True, help="the summary to write")
    args = p.parse_args(argv)
    names = [s.name for s in SCENARIOS]
    unknown = [n for n in args.only if n not in names]
    if unknown:
        print(f"error: --only {unknown[0]}: no such scenario (known: {', '.join(names)})", file=sys.stderr)
        return 2
    out: dict = {"graph": args.graph, "seed": args.seed, "sets": args.set, "scenarios": {},
                 "command": "python -m hrc_perception.evaluation.demo_scenarios " + " ".join(
                     argv if argv is not None else sys.argv[1:])}
    for sc in SCENARIOS:
        if args.only and sc.name not in args.only:
            continue
        cfg = load_cell_config(package_file(sc.config))
        seed = args.seed if sc.seed is None else sc.seed
        duration = cfg.sequence.episode_frames / cfg.sequence.fps
        sets = list(args.set) + [f"safety_monitor.{k}={v}" for k, v in sc.monitor]
        run_dir = Path(args.out) / args.graph / sc.name
        cmd = ["--graph", args.graph, "--config", str(package_file(sc.config)), "--seed", str(seed),
               "--duration", str(duration), "--out", str(run_dir)] + [a for s in sets for a in ("--set", s)]
        print(f"demo_scenarios: {sc.name}: seed {seed}, {duration:.0f} s", file=sys.stderr)
        rc = demo.main(cmd)
        safety = json.loads((run_dir / "safety.json").read_text()) if rc == 0 else {}
        out["scenarios"][sc.name] = {"rc": rc, "seed": seed, "duration_s": duration,
                                     **{k: safety.get(k) for k in KEPT}}
        row = out["scenarios"][sc.name]
        print(f"demo_scenarios: {sc.name}: OK while the truth stops {row['ok_while_truth_stop']} of "
              f"{row['frames_with_truth']} frames, camera-to-verdict {row['camera_to_verdict_latency_ms_median']} ms",
              file=sys.stderr)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r["rc"] == 0 for r in out["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
