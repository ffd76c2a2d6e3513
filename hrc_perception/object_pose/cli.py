"""``hrc-perception train|eval|bench object_pose``."""
from __future__ import annotations

from pathlib import Path

from hrc_perception.cli_args import (Commands, add_json, add_training_run, command_line, input_file, optional_path,
                                     write_json)

WEIGHTS = "models/object_pose/model.pt"


def _train(args) -> int:
    from hrc_perception.object_pose.train import train
    card = train(Path(args.data), Path(args.out), optional_path(args.val), steps=args.steps,
                 refine_steps=args.refine_steps, batch_size=args.batch_size, lr=args.lr, refine_lr=args.refine_lr,
                 n_points=args.points, refine_iterations=args.refine_iterations, device=args.device, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=optional_path(args.init), fresh_refiner=args.fresh_refiner)
    print(f"wrote {args.out}/model.pt and model_card.json ({card['steps']} + {card['refine_steps']} steps)")
    return 0


def _eval(args) -> int:
    from hrc_perception.object_pose.evaluate import evaluate, print_table
    from hrc_perception.training import machine_line
    res = evaluate(Path(args.weights), Path(args.data), device=args.device, baselines=not args.no_baselines,
                   max_instances=args.max_instances, models=optional_path(args.models),
                   seg_weights=optional_path(args.seg_weights), figure=optional_path(args.figure),
                   render_compare=not args.no_render_compare, seg_rpn_proposals=args.seg_rpn_proposals)
    print_table(res["summary"])
    if "figure" in res:
        print(f"wrote {res['figure']}")
    if "notes" in res:
        print(f"masks: {res['notes']['mask_source']}; objects without a matching detection: "
              f"{res['notes']['missed'] or 'none'}")
    if args.json:
        write_json(res, Path(args.json), command=command_line(), weights=args.weights, data=args.data,
                   machine=machine_line(args.device))
    return 0


def _bench(args) -> int:
    from hrc_perception.object_pose.bench import bench_object_pose
    bench_object_pose(args.weights, frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    t = commands.train.add_parser("object_pose", help="DenseFusion (pose network, then refiner) on a synth output's "
                                                      "BOP data (resumable)")
    t.add_argument("--data", required=True, help="synth output directory (with bop/)")
    t.add_argument("--out", default="models/object_pose", help="output directory (checkpoint, log, model, card)")
    t.add_argument("--val", help="held-out synth output (another seed) for the model card's metrics")
    t.add_argument("--steps", type=int, default=6000, help="pose network steps")
    t.add_argument("--refine-steps", type=int, default=3000, help="refiner steps (pose network frozen)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--refine-lr", type=float, default=3e-4)
    t.add_argument("--points", type=int, default=128, help="points (masked pixels with depth) per instance")
    t.add_argument("--refine-iterations", type=int, default=2, help="refiner passes (training and inference)")
    add_training_run(t)
    t.add_argument("--init", help="start both networks from this model file (same parts and crop; --points may "
                   "differ)")
    t.add_argument("--fresh-refiner", action="store_true", help="with --init: the refiner starts from scratch")
    t.set_defaults(func=_train)

    e = commands.eval.add_parser("object_pose", help="ADD(-S) accuracy and AUC per part: DenseFusion with and "
                                                     "without refinement, and ICP baselines, on held-out data")
    e.add_argument("--weights", type=input_file, default=WEIGHTS)
    e.add_argument("--data", required=True, help="held-out synth output (with bop/) or a BOP folder")
    e.add_argument("--device", default="cpu")
    e.add_argument("--max-instances", type=int, help="an evenly spaced subset of this many instances")
    e.add_argument("--no-baselines", action="store_true", help="DenseFusion only (no ICP)")
    e.add_argument("--no-render-compare", action="store_true", help="without the render-and-compare rows")
    e.add_argument("--models", help="--data is a real BOP scene folder (e.g. ../shared/realdata/lmo/test/000002) "
                   "and this its models folder; masks rendered from the ground-truth poses")
    e.add_argument("--seg-weights", type=input_file,
                   help="with --models: use this segmentation model's masks instead")
    e.add_argument("--seg-rpn-proposals", type=int, help="with --seg-weights: its RPN proposals (default: the "
                   "model's, 150)")
    add_json(e)
    e.add_argument("--figure", help="also draw the refined poses on 4 frames into this image (.jpg/.png)")
    e.set_defaults(func=_eval)

    b = commands.bench.add_parser("object_pose", help="DenseFusion time per part instance and per frame vs ICP "
                                                      "baselines")
    b.add_argument("--weights", type=input_file, default=WEIGHTS)
    b.add_argument("--frames", type=int, default=12, help="synthetic close-up frames (about 5 parts each)")
    b.add_argument("--seed", type=int, default=900)
    add_json(b)
    b.set_defaults(func=_bench)
