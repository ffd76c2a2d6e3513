"""``hrc-perception bench safety``."""
from __future__ import annotations

from hrc_perception.cli_args import Commands, add_json


def _bench(args) -> int:
    from hrc_perception.safety.bench import bench_safety
    bench_safety(frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    b = commands.bench.add_parser("safety", help="safety verdict time per frame with 1, 3, 6 people (goal <= 2 ms)")
    b.add_argument("--frames", type=int, default=60)
    b.add_argument("--seed", type=int, default=970)
    add_json(b)
    b.set_defaults(func=_bench)
