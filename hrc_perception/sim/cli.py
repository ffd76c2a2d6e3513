"""``hrc-perception synth``, ``preview`` and ``bench synth``: the synthetic cell's commands."""
from __future__ import annotations

import sys
from pathlib import Path

from hrc_perception.cli_args import Commands, add_json, input_file


def load_config(path: str | None):
    """(CellConfig, the folder its relative paths start from) of a cell YAML; the built-in cell for None."""
    from hrc_perception.sim.config import CellConfig, load_cell_config
    if path is None:
        return CellConfig(), None
    return load_cell_config(path), Path(path).resolve().parent


def _synth(args) -> int:
    from hrc_perception.sim.export import run_synth
    cfg, config_dir = load_config(args.config)
    datasets = [d.strip() for d in args.dataset.split(",") if d.strip()] if args.dataset else []
    if not args.bag and not datasets:
        print("note: neither --bag nor --dataset given: writing ground_truth.jsonl only", file=sys.stderr)
    meta = run_synth(cfg, args.seed, args.frames, Path(args.out), args.bag, datasets, args.namespace,
                     config_dir, args.config, progress=not args.quiet)
    print(f"wrote {meta['frames']} frames ({meta['episodes']} episodes) to {args.out}: "
          f"{', '.join(meta['outputs'])}")
    return 0


def _preview(args) -> int:
    from hrc_perception.sim.preview import contact_sheet
    out = Path(args.out) if args.out else Path(args.dir) / "preview.png"
    sheet = contact_sheet(Path(args.dir), rows=args.rows)
    tmp = out.with_name(out.name + ".partial.png")
    sheet.save(tmp)
    tmp.replace(out)
    print(f"wrote {out} ({sheet.size[0]}x{sheet.size[1]})")
    return 0


def _bench(args) -> int:
    from hrc_perception.sim.bench import bench_synth
    cfg, config_dir = load_config(args.config)
    bench_synth(cfg, config_dir, frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    s = commands.top.add_parser("synth", help="render synthetic frames with ground truth; write a bag and datasets")
    s.add_argument("--config", type=input_file,
                   help="cell YAML (default: the built-in cell, same as config/cell.yaml)")
    s.add_argument("--frames", type=int, required=True, help="number of frames")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical output)")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--bag", action="store_true", help="write a rosbag2 MCAP bag to OUT/bag")
    s.add_argument("--dataset", default="", help="comma-separated: coco, bop, keypoints, person_crops")
    s.add_argument("--namespace", default="/cell", help="topic namespace in the bag (default /cell)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_synth)

    v = commands.top.add_parser("preview", help="contact sheet PNG of a synth output with ground truth drawn")
    v.add_argument("dir", help="a synth output directory (with bag/)")
    v.add_argument("--out", help="PNG path (default DIR/preview.png)")
    v.add_argument("--rows", type=int, default=6, help="frames in the sheet")
    v.set_defaults(func=_preview)

    b = commands.bench.add_parser("synth", help="synthetic frames/s: robot, 6 parts, 2 people, all ground truth")
    b.add_argument("--config", type=input_file, help="cell YAML (default: built-in)")
    b.add_argument("--frames", type=int, default=60)
    b.add_argument("--seed", type=int, default=0)
    add_json(b)
    b.set_defaults(func=_bench)
