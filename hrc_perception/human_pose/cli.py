"""``hrc-perception train|eval|bench human_pose``."""
from __future__ import annotations

import sys
from pathlib import Path

from hrc_perception.cli_args import (Commands, add_json, add_training_run, command_line, input_file, optional_path,
                                     write_json)
from hrc_perception.io.keypoint_layouts import LAYOUTS


def _train(args) -> int:
    from hrc_perception.human_pose.spdh_backend import train
    card = train(Path(args.data), Path(args.out), val=optional_path(args.val), steps=args.steps,
                 batch_size=args.batch_size, lr=args.lr, device=args.device, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=optional_path(args.init), hand_cut_p=args.hand_cut_p)
    print(f"wrote {Path(args.out) / card['weights']} and model_card.json")
    return 0


def _eval(args) -> int:
    from hrc_perception.human_pose.evaluate import evaluate_coco, evaluate_synthetic, print_report
    from hrc_perception.human_pose.mediapipe_backend import MediapipeBackend
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    from hrc_perception.training import machine_line
    for flag, value in (("--coco", args.coco), ("--people-2d", args.people_2d)):
        if value and not Path(value).is_file():
            print(f"eval human_pose: {flag} {value}: no such file: skipped ('' skips it without this note)",
                  file=sys.stderr)
    real = {name: Path(v) for name, v in (("coco", args.coco), ("people_2d", args.people_2d))
            if v and Path(v).is_file()}
    backend = MediapipeBackend()
    res = {"command": command_line(), "machine": machine_line("cpu")}
    for name, path in real.items():
        res[name] = evaluate_coco(backend, path, layout=args.keypoint_layout) | {"data": str(path)}
    if real and args.person_boxes:
        res["person_boxes"] = _person_boxes(args, real)
    if args.synthetic_frames > 0:
        backends = {"oracle_2d": None, "mediapipe": backend}
        if args.spdh_weights and Path(args.spdh_weights).is_file():
            from hrc_perception.human_pose.spdh_backend import SpdhBackend
            backends["spdh"] = SpdhBackend(args.spdh_weights)
            backends["spdh+face"] = backends["spdh"]
        elif args.spdh_weights:
            print(f"eval human_pose: no {args.spdh_weights}: the spdh backend is not evaluated", file=sys.stderr)
        run = SynthRun(load_cell_config(Path(args.config)), seed=args.seed)
        from hrc_perception.human_pose.front_back import FaceCheck
        checks = {"spdh+face": FaceCheck()} if "spdh+face" in backends else {}
        res["synthetic"] = evaluate_synthetic(backends, run.frames(args.synthetic_frames), front_checks=checks) | {
            "config": args.config, "seed": args.seed, "frames": args.synthetic_frames}
    if args.follow_episodes > 0:
        from hrc_perception.human_pose.evaluate import evaluate_following
        from hrc_perception.human_pose.spdh_backend import SpdhBackend
        if not (args.spdh_weights and Path(args.spdh_weights).is_file()):
            print(f"error: --follow-episodes needs the spdh model (--spdh-weights {args.spdh_weights!r})",
                  file=sys.stderr)
            return 2
        run = SynthRun(load_cell_config(Path(args.config)), seed=args.seed)
        res["following"] = evaluate_following(SpdhBackend(args.spdh_weights, engine="onnxruntime"), run,
                                              args.follow_episodes, args.follow_frames) | {
            "config": args.config, "seed": args.seed}
    backend.close()
    print_report(res)
    if args.json:
        write_json(res, Path(args.json))
    return 0


def _person_boxes(args, real: dict) -> dict:
    from hrc_perception.human_pose.person_boxes import (blazepose_detector, confirmed_detector,
                                                        evaluate_person_boxes, segmentation_detector)
    negatives = sorted(p for p in Path(args.negatives).glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
                       ) if args.negatives and Path(args.negatives).is_dir() else []
    if args.negatives and not negatives:
        print(f"eval human_pose: --negatives {args.negatives}: no images: the check without people is skipped",
              file=sys.stderr)
    tiles = tuple(float(v) for v in args.tile_scales.split(",") if v.strip())
    detectors = {"blazepose": blazepose_detector(())}
    if tiles:
        detectors["blazepose_tiles"] = blazepose_detector(tiles)
    if args.segmentation_weights and Path(args.segmentation_weights).is_file():
        detectors["segmentation"] = segmentation_detector(args.segmentation_weights)
        detectors["blazepose_tiles+segmentation"] = confirmed_detector(detectors["segmentation"], tiles)
    out = {"tile_scales": list(tiles), "negatives": args.negatives if negatives else None}
    for k, (name, path) in enumerate(real.items()):
        print(f"eval human_pose: person boxes on {path}", file=sys.stderr)
        out[name] = evaluate_person_boxes(detectors, path, negatives if k == 0 else [], log=sys.stderr)
    return out


def _bench(args) -> int:
    from hrc_perception.human_pose.bench import bench_human_pose
    bench_human_pose(frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def register(commands: Commands) -> None:
    t = commands.train.add_parser("human_pose", help="SPDH on person depth crops (the spdh backend; resumable)")
    t.add_argument("--data", required=True, help="synth output with person_crops/ (--dataset person_crops)")
    t.add_argument("--val", help="held-out synth output with person_crops/ (another seed): card metrics")
    t.add_argument("--out", default="models/human_pose", help="output directory (checkpoint, log, model, card)")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    add_training_run(t)
    t.add_argument("--init", help="start from this human_pose model (same build) when there is no checkpoint")
    t.add_argument("--hand-cut-p", type=float, default=0.0,
                   help="chance per crop of cutting the pixels around one wrist (masks that miss a hand)")
    t.set_defaults(func=_train)

    e = commands.eval.add_parser("human_pose", help="2D PCK@0.2 / OKS AP on real COCO person crops; 3D MPJPE / "
                                                    "PCK@10cm on synthetic frames (BlazePose + depth lifting, and "
                                                    "the lifting alone)")
    e.add_argument("--coco", default="../shared/realdata/coco_person/test_coco.json",
                   help="COCO person-keypoints json with its images beside it ('' = skip)")
    e.add_argument("--keypoint-layout", choices=sorted(LAYOUTS),
                   help="joint order of --coco's keypoints (default: from its joint names, else its joint count; "
                        "mapped to COCO-17)")
    e.add_argument("--people-2d", default="../shared/realdata/people_2d/annotations.json",
                   help="real people of several public sets (COCO json, images beside it, a 'source' per image): "
                        "2D joints and person boxes per source ('' = skip)")
    e.add_argument("--person-boxes", type=int, choices=(0, 1), default=1,
                   help="1: person boxes on the real images (BlazePose detector, with tiles, the segmentation "
                        "model's person class, and the two combined: segmentation boxes BlazePose confirms)")
    e.add_argument("--negatives", default="../shared/realdata/lmo/test/000002/rgb",
                   help="a folder of real images without people: persons reported there are false ('' = skip)")
    e.add_argument("--tile-scales", default="0.6",
                   help="comma-separated tile sides (fractions of the image's shorter side) of the tiled BlazePose "
                        "detector ('' = whole image only)")
    e.add_argument("--segmentation-weights", default="models/segmentation/model.pt",
                   help="the segmentation model whose person class is the peer ('' = skip)")
    e.add_argument("--synthetic-frames", type=int, default=300, help="synthetic frames (0 = skip)")
    e.add_argument("--config", type=input_file, default="config/cell_short_episodes.yaml",
                   help="cell YAML of the synthetic frames")
    e.add_argument("--seed", type=int, default=1300, help="seed of the synthetic frames (not a training seed)")
    e.add_argument("--spdh-weights", type=input_file, default="models/human_pose/model.pt",
                   help="the spdh backend's model ('' = mediapipe only)")
    e.add_argument("--follow-episodes", type=int, default=0,
                   help="spdh between detections (human_pose.follow) on this many episodes, beside true masks "
                        "(0 = skip)")
    e.add_argument("--follow-frames", type=int, default=15, help="frames followed after each detection")
    add_json(e)
    e.set_defaults(func=_eval)

    b = commands.bench.add_parser("human_pose", help="human_pose time per person (crop, BlazePose, lifting; "
                                                     "goal <= 40 ms)")
    b.add_argument("--frames", type=int, default=30)
    b.add_argument("--seed", type=int, default=960)
    add_json(b)
    b.set_defaults(func=_bench)
