"""``hrc-perception eval|bench tracking``."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from hrc_perception.cli_args import Commands, add_json, command_line, input_file, optional_path, write_json
from hrc_perception.tracking.nn_matching import DEFAULT_MAX_COSINE_DISTANCE, DEFAULT_NN_BUDGET


def _eval(args) -> int:
    from hrc_perception.tracking.evaluate import evaluate_tracking, print_table
    if args.data is None and args.mot15 is None:
        print("eval tracking: give --data (a synth output) and/or --mot15 (a MOTChallenge sequence)", file=sys.stderr)
        return 2
    weights = None if args.no_segmentation or args.data is None else Path(args.weights)
    res = evaluate_tracking(optional_path(args.data), weights, seed=args.seed,
                            box_noise=args.box_noise, dropout=args.dropout, max_sequences=args.max_sequences,
                            mot15=optional_path(args.mot15), mot15_fps=args.fps,
                            tracker_options={"max_cosine_distance": args.max_cosine_distance,
                                             "nn_budget": args.nn_budget or None,
                                             "iou_for_lost_tracks": not args.original_iou_rule})
    print_table(res)
    if args.json:
        write_json(res, args.json, command=command_line(),
                   machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    return 0


def _bench(args) -> int:
    from hrc_perception.tracking.bench import bench_tracking
    bench_tracking(frames=args.frames, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    e = commands.eval.add_parser("tracking", help="MOTA / IDF1 of Deep SORT, SORT and deep-sort-realtime on the "
                                                  "same inputs")
    e.add_argument("--data", help="synth output with coco/ (episodes with ground-truth identities)")
    e.add_argument("--weights", type=input_file, default="models/segmentation/model.pt",
                   help="segmentation model: detections for the second input, descriptors for both")
    e.add_argument("--no-segmentation", action="store_true", help="noisy ground truth only, no appearance")
    e.add_argument("--mot15", help="a MOTChallenge sequence folder (gt/, det/), e.g. "
                   "../shared/realdata/mot15/TUD-Campus")
    e.add_argument("--fps", type=float, help="frame rate of the --mot15 sequence, Hz (default: its seqinfo.ini "
                   "frameRate, a known MOT15 sequence's rate, else 25 with a note; no figure depends on it)")
    e.add_argument("--box-noise", type=float, default=0.05, help="noise on each box edge, fraction of the box size")
    e.add_argument("--dropout", type=float, default=0.1, help="share of ground-truth boxes dropped")
    e.add_argument("--max-sequences", type=int)
    e.add_argument("--max-cosine-distance", type=float, default=DEFAULT_MAX_COSINE_DISTANCE,
                   help="Deep SORT appearance threshold (the tracker node's max_cosine_distance)")
    e.add_argument("--nn-budget", type=int, default=DEFAULT_NN_BUDGET, help="features kept per track; 0 = all")
    e.add_argument("--original-iou-rule", action="store_true",
                   help="IoU stage only for tracks missed in the last image (iou_for_lost_tracks false)")
    e.add_argument("--seed", type=int, default=0)
    add_json(e)
    e.set_defaults(func=_eval)

    b = commands.bench.add_parser("tracking", help="tracker time per frame: Deep SORT, SORT, deep-sort-realtime")
    b.add_argument("--frames", type=int, default=300)
    add_json(b)
    b.set_defaults(func=_bench)
