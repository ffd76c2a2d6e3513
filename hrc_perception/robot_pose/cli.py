"""``hrc-perception train|eval|bench robot_pose``."""
from __future__ import annotations

from pathlib import Path

from hrc_perception.cli_args import Commands, add_json, add_training_run, input_file, optional_path, write_json

WEIGHTS = "models/robot_pose/model.pt"


def _train(args) -> int:
    from hrc_perception.robot_pose.train import train
    card = train([Path(d) for d in args.data], Path(args.out), optional_path(args.val),
                 steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=optional_path(args.init))
    print(f"wrote {args.out}/model.pt and model_card.json ({card['steps']} steps, {card['training_time_s']:.0f} s)")
    return 0


def _eval(args) -> int:
    from hrc_perception.robot_pose.evaluate import evaluate, print_table
    res = evaluate(Path(args.weights), Path(args.data), device=args.device, max_frames=args.max_frames,
                   calib_frames=args.calib_frames, min_confidence=args.min_confidence,
                   surface_frames=args.surface_frames, quiet=False)
    print_table(res)
    if args.figure:
        from hrc_perception.robot_pose.figure import draw_figure
        draw_figure(Path(args.weights), Path(args.data), Path(args.figure))
        print(f"wrote {args.figure}")
    if args.json:
        write_json(res, args.json)
    return 0


def _bench(args) -> int:
    from hrc_perception.robot_pose.bench import bench_robot_pose
    bench_robot_pose(args.weights, frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    t = commands.train.add_parser("robot_pose", help="SPDH heatmap network on a synth output's keypoints data "
                                                     "(resumable)")
    t.add_argument("--data", required=True, nargs="+",
                   help="synth output directories (with keypoints/; several are trained on together)")
    t.add_argument("--out", default="models/robot_pose", help="output directory (checkpoint, log, model, card)")
    t.add_argument("--val", help="held-out synth output (another seed) for the model card's metrics")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=2e-3)
    add_training_run(t)
    t.add_argument("--init", help="start from this model file (same keypoints and build)")
    t.set_defaults(func=_train)

    e = commands.eval.add_parser("robot_pose", help="3D joint error, mAP at 2-10 cm and camera-to-robot error: SPDH "
                                                    "and the 2D + depth baseline on held-out data")
    e.add_argument("--weights", type=input_file, default=WEIGHTS)
    e.add_argument("--data", required=True, help="held-out synth output (with keypoints/)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--max-frames", type=int)
    e.add_argument("--calib-frames", type=int, default=45, help="frames per episode for the camera-to-robot fit")
    e.add_argument("--surface-frames", type=int, default=8,
                   help="most frames of that window whose depth refines the fit (robot surface ICP)")
    e.add_argument("--min-confidence", type=float, default=0.3, help="joints below it are not used in the fit")
    add_json(e)
    e.add_argument("--figure", help="also draw predicted and true skeletons on 6 frames into this image")
    e.set_defaults(func=_eval)

    b = commands.bench.add_parser("robot_pose", help="SPDH robot pose time per 640x480 depth frame (goal <= 50 ms)")
    b.add_argument("--weights", type=input_file, default=WEIGHTS)
    b.add_argument("--frames", type=int, default=30)
    b.add_argument("--seed", type=int, default=950)
    add_json(b)
    b.set_defaults(func=_bench)
