"""``hrc-perception train|eval|bench segmentation`` and ``train embedding``."""
from __future__ import annotations

from pathlib import Path

from hrc_perception.cli_args import (Commands, add_json, add_training_run, command_line, input_file, optional_path,
                                     write_json)

WEIGHTS = "models/segmentation/model.pt"


def _train(args) -> int:
    from hrc_perception.segmentation.train import train
    card = train(Path(args.data), Path(args.out), optional_path(args.val), epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, input_short_side=args.input_short_side,
                 device=args.device, seed=args.seed, max_steps=args.max_steps,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=optional_path(args.init))
    print(f"wrote {args.out}/model.pt and model_card.json ({card['steps']} steps, {card['training_time_s']:.0f} s)")
    return 0


def _train_embedding(args) -> int:
    from hrc_perception.segmentation.reid import learn_embedding_for_weights
    out = Path(args.out) if args.out else Path(args.weights).parent
    card = learn_embedding_for_weights(Path(args.weights), Path(args.data), out, optional_path(args.val),
                                       max_images=args.images, steps=args.steps, seed=args.seed)
    sep = card["appearance_embedding"].get("separation_held_out", {}).get("learned")
    if sep:
        print(f"held-out: same object median cosine distance {sep['same_object'].get('median', float('nan')):.3f}, "
              f"other object of the class {sep['other_object_same_class'].get('median', float('nan')):.3f}")
    print(f"wrote {out}/model.pt and model_card.json")
    return 0


def _eval(args) -> int:
    from hrc_perception.segmentation.evaluate import evaluate, print_table
    metrics = evaluate(Path(args.weights), Path(args.data), device=args.device, max_images=args.max_images,
                       rpn_proposals=args.rpn_proposals, input_short_side=args.input_short_side)
    print_table(metrics)
    if args.json:
        write_json(metrics, Path(args.json), command=command_line(), weights=args.weights, data=args.data)
    return 0


def _bench(args) -> int:
    from hrc_perception.segmentation.bench import bench_segmentation
    bench_segmentation(args.weights, frames=args.frames, reference_frames=args.reference_frames,
                       json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    t = commands.train.add_parser("segmentation", help="Mask R-CNN on a synth output's COCO data (resumable)")
    t.add_argument("--data", required=True, help="synth output directory (with coco/) or a COCO folder")
    t.add_argument("--out", default="models/segmentation", help="output directory (checkpoint, log, model, card)")
    t.add_argument("--val", help="held-out synth output (another seed) for the model card's metrics")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--max-steps", type=int, help="stop after this many steps (overrides --epochs)")
    t.add_argument("--batch-size", type=int, default=2)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--input-short-side", type=int, default=320)
    add_training_run(t)
    t.add_argument("--init", help="start from these weights instead of ImageNet (other classes: the class-specific "
                   "output layers start fresh)")
    t.set_defaults(func=_train)

    m = commands.train.add_parser("embedding", help="learn a segmentation model's appearance embedding (Deep SORT's "
                                                    "descriptor) from the identities of a synth output; detector "
                                                    "unchanged")
    m.add_argument("--weights", type=input_file, default=WEIGHTS, help="trained segmentation model")
    m.add_argument("--data", required=True, help="synth output (with coco/ carrying episode and track_id)")
    m.add_argument("--val", help="held-out synth output (another seed) for the card's separation figures")
    m.add_argument("--out", help="output directory (default: the folder of --weights, replaced in place)")
    m.add_argument("--images", type=int, default=1200, help="training images sampled (evenly spaced)")
    m.add_argument("--steps", type=int, default=600)
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_train_embedding)

    e = commands.eval.add_parser("segmentation", help="COCO box and mask AP on held-out data")
    e.add_argument("--weights", type=input_file, default=WEIGHTS)
    e.add_argument("--data", required=True, help="held-out synth output (with coco/) or a COCO folder")
    e.add_argument("--device", default="cpu")
    e.add_argument("--max-images", type=int)
    e.add_argument("--rpn-proposals", type=int, help="region proposals kept after the RPN's NMS (default: the "
                   "model's, 150)")
    e.add_argument("--input-short-side", type=int, help="short side images are resized to (default: the model's)")
    add_json(e)
    e.set_defaults(func=_eval)

    b = commands.bench.add_parser("segmentation", help="segmentation time per 640x480 frame vs maskrcnn_resnet50_fpn")
    b.add_argument("--weights", type=input_file, default=WEIGHTS)
    b.add_argument("--frames", type=int, default=30)
    b.add_argument("--reference-frames", type=int, default=3)
    add_json(b)
    b.set_defaults(func=_bench)
