"""The `hrc-perception` command.

    hrc-perception synth   --config config/cell.yaml --frames N --seed S --out DIR [--bag] [--dataset coco,bop,keypoints,person_crops]
    hrc-perception preview DIR [--out FILE.png] [--rows N]
    hrc-perception bench synth [--frames N] [--json FILE]
    hrc-perception record  --out BAG_DIR [--topics T ...] [--duration S] [--namespace NS]
    hrc-perception replay  BAG [--rate R] [--clock] [--loop] [--restamp] [--topics T ...] [--delay S]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hrc_perception.io.keypoint_layouts import LAYOUTS
from hrc_perception.resources import package_file
from hrc_perception.sim.config import CellConfig, ConfigError, load_cell_config
from hrc_perception.tracking.nn_matching import DEFAULT_MAX_COSINE_DISTANCE, DEFAULT_NN_BUDGET


def _package_file(path: str) -> str:
    """argparse type of an input file: as given, else the same relative path in the package's
    share folder (``models/...``, ``config/...`` work from any directory and from an install)."""
    return str(package_file(path))


def _load_config(path: str | None) -> tuple[CellConfig, Path | None]:
    if path is None:
        return CellConfig(), None
    return load_cell_config(path), Path(path).resolve().parent


def cmd_synth(args) -> int:
    from hrc_perception.sim.export import run_synth
    cfg, config_dir = _load_config(args.config)
    datasets = [d.strip() for d in args.dataset.split(",") if d.strip()] if args.dataset else []
    if not args.bag and not datasets:
        print("note: neither --bag nor --dataset given: writing ground_truth.jsonl only", file=sys.stderr)
    meta = run_synth(cfg, args.seed, args.frames, Path(args.out), args.bag, datasets, args.namespace,
                     config_dir, args.config, progress=not args.quiet)
    print(f"wrote {meta['frames']} frames ({meta['episodes']} episodes) to {args.out}: "
          f"{', '.join(meta['outputs'])}")
    return 0


def cmd_preview(args) -> int:
    from hrc_perception.sim.preview import contact_sheet
    out = Path(args.out) if args.out else Path(args.dir) / "preview.png"
    sheet = contact_sheet(Path(args.dir), rows=args.rows)
    tmp = out.with_name(out.name + ".partial.png")
    sheet.save(tmp)
    tmp.replace(out)
    print(f"wrote {out} ({sheet.size[0]}x{sheet.size[1]})")
    return 0


def cmd_bench(args) -> int:
    from hrc_perception.sim.bench import bench_synth
    cfg, config_dir = _load_config(args.config)
    bench_synth(cfg, config_dir, frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def cmd_record(args) -> int:
    from hrc_perception.ros.bag_record import run_record
    return run_record(Path(args.out), topics=args.topics, duration_s=args.duration, topic_namespace=args.namespace)


def cmd_replay(args) -> int:
    from hrc_perception.ros.bag_replay import run_replay
    return run_replay(Path(args.bag), rate=args.rate, clock=args.clock, loop=args.loop, restamp=args.restamp,
                      topics=args.topics, delay_s=args.delay)


def cmd_bench_segmentation(args) -> int:
    from hrc_perception.segmentation.bench import bench_segmentation
    bench_segmentation(args.weights, frames=args.frames, reference_frames=args.reference_frames,
                       json_path=args.json)
    return 0


def cmd_bench_object_pose(args) -> int:
    from hrc_perception.object_pose.bench import bench_object_pose
    bench_object_pose(args.weights, frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def cmd_bench_robot_pose(args) -> int:
    from hrc_perception.robot_pose.bench import bench_robot_pose
    bench_robot_pose(args.weights, frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def cmd_bench_tracking(args) -> int:
    from hrc_perception.tracking.bench import bench_tracking
    bench_tracking(frames=args.frames, json_path=args.json)
    return 0


def cmd_bench_ros(args) -> int:
    from hrc_perception.evaluation.bench_transport import bench_ros
    bench_ros(frames=args.frames, json_path=args.json)
    return 0


def cmd_train_segmentation(args) -> int:
    from hrc_perception.segmentation.train import train
    card = train(Path(args.data), Path(args.out), Path(args.val) if args.val else None, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, input_short_side=args.input_short_side,
                 device=args.device, seed=args.seed, max_steps=args.max_steps,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=Path(args.init) if args.init else None)
    print(f"wrote {args.out}/model.pt and model_card.json ({card['steps']} steps, {card['training_time_s']:.0f} s)")
    return 0


def cmd_train_embedding(args) -> int:
    from hrc_perception.segmentation.reid import learn_embedding_for_weights
    out = Path(args.out) if args.out else Path(args.weights).parent
    card = learn_embedding_for_weights(Path(args.weights), Path(args.data), out, Path(args.val) if args.val else None,
                                       max_images=args.images, steps=args.steps, seed=args.seed)
    sep = card["appearance_embedding"].get("separation_held_out", {}).get("learned")
    if sep:
        print(f"held-out: same object median cosine distance {sep['same_object'].get('median', float('nan')):.3f}, "
              f"other object of the class {sep['other_object_same_class'].get('median', float('nan')):.3f}")
    print(f"wrote {out}/model.pt and model_card.json")
    return 0


def cmd_train_object_pose(args) -> int:
    from hrc_perception.object_pose.train import train
    card = train(Path(args.data), Path(args.out), Path(args.val) if args.val else None, steps=args.steps,
                 refine_steps=args.refine_steps, batch_size=args.batch_size, lr=args.lr, refine_lr=args.refine_lr,
                 n_points=args.points, refine_iterations=args.refine_iterations, device=args.device, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=Path(args.init) if args.init else None, fresh_refiner=args.fresh_refiner)
    print(f"wrote {args.out}/model.pt and model_card.json ({card['steps']} + {card['refine_steps']} steps)")
    return 0


def cmd_train_robot_pose(args) -> int:
    from hrc_perception.robot_pose.train import train
    card = train([Path(d) for d in args.data], Path(args.out), Path(args.val) if args.val else None,
                 steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=Path(args.init) if args.init else None)
    print(f"wrote {args.out}/model.pt and model_card.json ({card['steps']} steps, {card['training_time_s']:.0f} s)")
    return 0


def cmd_bench_human_pose(args) -> int:
    from hrc_perception.human_pose.bench import bench_human_pose
    bench_human_pose(frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def cmd_bench_safety(args) -> int:
    from hrc_perception.safety.bench import bench_safety
    bench_safety(frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def cmd_train_human_pose(args) -> int:
    from hrc_perception.human_pose.spdh_backend import train
    card = train(Path(args.data), Path(args.out), val=Path(args.val) if args.val else None, steps=args.steps,
                 batch_size=args.batch_size, lr=args.lr, device=args.device, seed=args.seed,
                 checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
                 init=Path(args.init) if args.init else None, hand_cut_p=args.hand_cut_p)
    print(f"wrote {Path(args.out) / card['weights']} and model_card.json")
    return 0


def cmd_eval_human_pose(args) -> int:
    from hrc_perception.human_pose.evaluate import evaluate_coco, evaluate_synthetic, print_report, write_json
    from hrc_perception.human_pose.mediapipe_backend import MediapipeBackend
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    from hrc_perception.training import machine_line
    backend = MediapipeBackend()
    res = {"command": "hrc-perception " + " ".join(sys.argv[1:]), "machine": machine_line("cpu")}
    if args.coco:
        if not Path(args.coco).is_file():
            print(f"error: --coco {args.coco}: no such file (the real COCO person crops; '' skips them)",
                  file=sys.stderr)
            return 2
        res["coco"] = evaluate_coco(backend, Path(args.coco), layout=args.keypoint_layout) | {"data": args.coco}
    if args.synthetic_frames > 0:
        backends = {"oracle_2d": None, "mediapipe": backend}
        if args.spdh_weights and Path(args.spdh_weights).is_file():
            from hrc_perception.human_pose.spdh_backend import SpdhBackend
            backends["spdh"] = SpdhBackend(args.spdh_weights)
        elif args.spdh_weights:
            print(f"eval human_pose: no {args.spdh_weights}: the spdh backend is not evaluated", file=sys.stderr)
        run = SynthRun(load_cell_config(Path(args.config)), seed=args.seed)
        res["synthetic"] = evaluate_synthetic(backends, run.frames(args.synthetic_frames)) | {
            "config": args.config, "seed": args.seed, "frames": args.synthetic_frames}
    backend.close()
    print_report(res)
    if args.json:
        write_json(res, Path(args.json))
    return 0


def cmd_eval_safety(args) -> int:
    from hrc_perception.ros.graph import load_graph, node_parameters
    from hrc_perception.evaluation.safety_report import report_lines, safety_evaluation
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


def cmd_eval_robot_pose(args) -> int:
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
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def cmd_eval_object_pose(args) -> int:
    from hrc_perception.object_pose.evaluate import evaluate, print_table
    from hrc_perception.segmentation.evaluate import write_json
    from hrc_perception.training import machine_line
    res = evaluate(Path(args.weights), Path(args.data), device=args.device, baselines=not args.no_baselines,
                   max_instances=args.max_instances, models=Path(args.models) if args.models else None,
                   seg_weights=Path(args.seg_weights) if args.seg_weights else None,
                   figure=Path(args.figure) if args.figure else None)
    print_table(res["summary"])
    if "figure" in res:
        print(f"wrote {res['figure']}")
    if "notes" in res:
        print(f"masks: {res['notes']['mask_source']}; objects without a matching detection: "
              f"{res['notes']['missed'] or 'none'}")
    if args.json:
        write_json(res, Path(args.json), command="hrc-perception " + " ".join(sys.argv[1:]),
                   weights=args.weights, data=args.data, machine=machine_line(args.device))
    return 0


def cmd_eval_segmentation(args) -> int:
    from hrc_perception.segmentation.evaluate import evaluate, print_table, write_json
    metrics = evaluate(Path(args.weights), Path(args.data), device=args.device, max_images=args.max_images)
    print_table(metrics)
    if args.json:
        write_json(metrics, Path(args.json), command="hrc-perception " + " ".join(sys.argv[1:]),
                   weights=args.weights, data=args.data)
    return 0


def cmd_eval_tracking(args) -> int:
    import json
    import os
    import platform

    from hrc_perception.tracking.evaluate import evaluate_tracking, print_table
    if args.data is None and args.mot15 is None:
        print("eval tracking: give --data (a synth output) and/or --mot15 (a MOTChallenge sequence)", file=sys.stderr)
        return 2
    weights = None if args.no_segmentation or args.data is None else Path(args.weights)
    res = evaluate_tracking(Path(args.data) if args.data else None, weights, seed=args.seed,
                            box_noise=args.box_noise, dropout=args.dropout, max_sequences=args.max_sequences,
                            mot15=Path(args.mot15) if args.mot15 else None, mot15_fps=args.fps,
                            tracker_options={"max_cosine_distance": args.max_cosine_distance,
                                             "nn_budget": args.nn_budget or None,
                                             "iou_for_lost_tracks": not args.original_iou_rule})
    print_table(res)
    if args.json:
        res["command"] = "hrc-perception " + " ".join(sys.argv[1:])
        res["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def cmd_bop2coco(args) -> int:
    from hrc_perception.io.bop_coco import bop_scene_to_coco
    summary = bop_scene_to_coco(Path(args.scene), Path(args.models), Path(args.out), mesh_units=args.mesh_units)
    print(f"wrote {args.out}/annotations.json: {summary['images']} images, instances {summary['instances']}")
    return 0


def _add_training_run_args(p: argparse.ArgumentParser) -> None:
    """Options every training command shares: device, seed, checkpoints, loader and threads."""
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--threads", type=int, help="torch CPU threads")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hrc-perception", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="render synthetic frames with ground truth; write a bag and datasets")
    s.add_argument("--config", type=_package_file,
                   help="cell YAML (default: the built-in cell, same as config/cell.yaml)")
    s.add_argument("--frames", type=int, required=True, help="number of frames")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical output)")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--bag", action="store_true", help="write a rosbag2 MCAP bag to OUT/bag")
    s.add_argument("--dataset", default="", help="comma-separated: coco, bop, keypoints, person_crops")
    s.add_argument("--namespace", default="/cell", help="topic namespace in the bag (default /cell)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_synth)

    v = sub.add_parser("preview", help="contact sheet PNG of a synth output with ground truth drawn")
    v.add_argument("dir", help="a synth output directory (with bag/)")
    v.add_argument("--out", help="PNG path (default DIR/preview.png)")
    v.add_argument("--rows", type=int, default=6, help="frames in the sheet")
    v.set_defaults(func=cmd_preview)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="what", required=True)
    bs = bsub.add_parser("synth", help="synthetic frames/s: robot, 6 parts, 2 people, all ground truth")
    bs.add_argument("--config", type=_package_file, help="cell YAML (default: built-in)")
    bs.add_argument("--frames", type=int, default=60)
    bs.add_argument("--seed", type=int, default=0)
    bs.add_argument("--json", help="also write the figures to this JSON file")
    bs.set_defaults(func=cmd_bench)
    bg = bsub.add_parser("segmentation", help="segmentation time per 640x480 frame vs maskrcnn_resnet50_fpn")
    bg.add_argument("--weights", type=_package_file, default="models/segmentation/model.pt")
    bg.add_argument("--frames", type=int, default=30)
    bg.add_argument("--reference-frames", type=int, default=3)
    bg.add_argument("--json", help="also write the figures to this JSON file")
    bg.set_defaults(func=cmd_bench_segmentation)
    bo = bsub.add_parser("object_pose", help="DenseFusion time per part instance and per frame vs ICP baselines")
    bo.add_argument("--weights", type=_package_file, default="models/object_pose/model.pt")
    bo.add_argument("--frames", type=int, default=12, help="synthetic close-up frames (about 5 parts each)")
    bo.add_argument("--seed", type=int, default=900)
    bo.add_argument("--json", help="also write the figures to this JSON file")
    bo.set_defaults(func=cmd_bench_object_pose)
    bp = bsub.add_parser("robot_pose", help="SPDH robot pose time per 640x480 depth frame (goal <= 50 ms)")
    bp.add_argument("--weights", type=_package_file, default="models/robot_pose/model.pt")
    bp.add_argument("--frames", type=int, default=30)
    bp.add_argument("--seed", type=int, default=950)
    bp.add_argument("--json", help="also write the figures to this JSON file")
    bp.set_defaults(func=cmd_bench_robot_pose)
    bh = bsub.add_parser("human_pose", help="human_pose time per person (crop, BlazePose, lifting; goal <= 40 ms)")
    bh.add_argument("--frames", type=int, default=30)
    bh.add_argument("--seed", type=int, default=960)
    bh.add_argument("--json", help="also write the figures to this JSON file")
    bh.set_defaults(func=cmd_bench_human_pose)
    bs = bsub.add_parser("safety", help="safety verdict time per frame with 1, 3, 6 people (goal <= 2 ms)")
    bs.add_argument("--frames", type=int, default=60)
    bs.add_argument("--seed", type=int, default=970)
    bs.add_argument("--json", help="also write the figures to this JSON file")
    bs.set_defaults(func=cmd_bench_safety)
    bt = bsub.add_parser("tracking", help="tracker time per frame: Deep SORT, SORT, deep-sort-realtime")
    bt.add_argument("--frames", type=int, default=300)
    bt.add_argument("--json", help="also write the figures to this JSON file")
    bt.set_defaults(func=cmd_bench_tracking)
    br = bsub.add_parser("ros", help="640x480 colour + depth through rclpy: frames/s and latency, "
                                     "one process and two")
    br.add_argument("--frames", type=int, default=200)
    br.add_argument("--json", help="also write the figures to this JSON file")
    br.set_defaults(func=cmd_bench_ros)

    t = sub.add_parser("train", help="train a learned component")
    tsub = t.add_subparsers(dest="what", required=True)
    ts = tsub.add_parser("segmentation", help="Mask R-CNN on a synth output's COCO data (resumable)")
    ts.add_argument("--data", required=True, help="synth output directory (with coco/) or a COCO folder")
    ts.add_argument("--out", default="models/segmentation", help="output directory (checkpoint, log, model, card)")
    ts.add_argument("--val", help="held-out synth output (another seed) for the model card's metrics")
    ts.add_argument("--epochs", type=int, default=12)
    ts.add_argument("--max-steps", type=int, help="stop after this many steps (overrides --epochs)")
    ts.add_argument("--batch-size", type=int, default=2)
    ts.add_argument("--lr", type=float, default=0.01)
    ts.add_argument("--input-short-side", type=int, default=320)
    _add_training_run_args(ts)
    ts.add_argument("--init", help="start from these weights instead of ImageNet (other classes: the class-specific "
                    "output layers start fresh)")
    ts.set_defaults(func=cmd_train_segmentation)
    tm = tsub.add_parser("embedding", help="learn a segmentation model's appearance embedding (Deep SORT's "
                                           "descriptor) from the identities of a synth output; detector unchanged")
    tm.add_argument("--weights", type=_package_file, default="models/segmentation/model.pt",
                    help="trained segmentation model")
    tm.add_argument("--data", required=True, help="synth output (with coco/ carrying episode and track_id)")
    tm.add_argument("--val", help="held-out synth output (another seed) for the card's separation figures")
    tm.add_argument("--out", help="output directory (default: the folder of --weights, replaced in place)")
    tm.add_argument("--images", type=int, default=1200, help="training images sampled (evenly spaced)")
    tm.add_argument("--steps", type=int, default=600)
    tm.add_argument("--seed", type=int, default=0)
    tm.set_defaults(func=cmd_train_embedding)

    to = tsub.add_parser("object_pose", help="DenseFusion (pose network, then refiner) on a synth output's BOP "
                                             "data (resumable)")
    to.add_argument("--data", required=True, help="synth output directory (with bop/)")
    to.add_argument("--out", default="models/object_pose", help="output directory (checkpoint, log, model, card)")
    to.add_argument("--val", help="held-out synth output (another seed) for the model card's metrics")
    to.add_argument("--steps", type=int, default=6000, help="pose network steps")
    to.add_argument("--refine-steps", type=int, default=3000, help="refiner steps (pose network frozen)")
    to.add_argument("--batch-size", type=int, default=16)
    to.add_argument("--lr", type=float, default=1e-3)
    to.add_argument("--refine-lr", type=float, default=3e-4)
    to.add_argument("--points", type=int, default=128, help="points (masked pixels with depth) per instance")
    to.add_argument("--refine-iterations", type=int, default=2, help="refiner passes (training and inference)")
    _add_training_run_args(to)
    to.add_argument("--init", help="start both networks from this model file (same parts and crop; --points may "
                    "differ)")
    to.add_argument("--fresh-refiner", action="store_true", help="with --init: the refiner starts from scratch")
    to.set_defaults(func=cmd_train_object_pose)

    th = tsub.add_parser("human_pose", help="SPDH on person depth crops (the spdh backend; resumable)")
    th.add_argument("--data", required=True, help="synth output with person_crops/ (--dataset person_crops)")
    th.add_argument("--val", help="held-out synth output with person_crops/ (another seed): card metrics")
    th.add_argument("--out", default="models/human_pose", help="output directory (checkpoint, log, model, card)")
    th.add_argument("--steps", type=int, default=3000)
    th.add_argument("--batch-size", type=int, default=16)
    th.add_argument("--lr", type=float, default=2e-3)
    th.add_argument("--device", default="cpu")
    th.add_argument("--seed", type=int, default=0)
    th.add_argument("--checkpoint-every", type=int, default=200)
    th.add_argument("--workers", type=int, default=1)
    th.add_argument("--threads", type=int)
    th.add_argument("--init", help="start from this human_pose model (same build) when there is no checkpoint")
    th.add_argument("--hand-cut-p", type=float, default=0.0,
                    help="chance per crop of cutting the pixels around one wrist (masks that miss a hand)")
    th.set_defaults(func=cmd_train_human_pose)
    tr = tsub.add_parser("robot_pose", help="SPDH heatmap network on a synth output's keypoints data (resumable)")
    tr.add_argument("--data", required=True, nargs="+",
                    help="synth output directories (with keypoints/; several are trained on together)")
    tr.add_argument("--out", default="models/robot_pose", help="output directory (checkpoint, log, model, card)")
    tr.add_argument("--val", help="held-out synth output (another seed) for the model card's metrics")
    tr.add_argument("--steps", type=int, default=3000)
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--lr", type=float, default=2e-3)
    _add_training_run_args(tr)
    tr.add_argument("--init", help="start from this model file (same keypoints and build)")
    tr.set_defaults(func=cmd_train_robot_pose)

    bc = sub.add_parser("bop2coco", help="COCO masks of a real BOP scene, rendered from its ground-truth poses")
    bc.add_argument("--scene", required=True, help="BOP scene folder (scene_gt.json, scene_camera.json, rgb/)")
    bc.add_argument("--models", required=True, help="folder of obj_NNNNNN.ply meshes")
    bc.add_argument("--mesh-units", default="mm", choices=["m", "mm"])
    bc.add_argument("--out", required=True, help="output folder (annotations.json, images/)")
    bc.set_defaults(func=cmd_bop2coco)

    e = sub.add_parser("eval", help="evaluate a learned component")
    esub = e.add_subparsers(dest="what", required=True)
    es = esub.add_parser("segmentation", help="COCO box and mask AP on held-out data")
    es.add_argument("--weights", type=_package_file, default="models/segmentation/model.pt")
    es.add_argument("--data", required=True, help="held-out synth output (with coco/) or a COCO folder")
    es.add_argument("--device", default="cpu")
    es.add_argument("--max-images", type=int)
    es.add_argument("--json", help="also write the figures to this JSON file")
    es.set_defaults(func=cmd_eval_segmentation)
    eo = esub.add_parser("object_pose", help="ADD(-S) accuracy and AUC per part: DenseFusion with and without "
                                            "refinement, and ICP baselines, on held-out data")
    eo.add_argument("--weights", type=_package_file, default="models/object_pose/model.pt")
    eo.add_argument("--data", required=True, help="held-out synth output (with bop/) or a BOP folder")
    eo.add_argument("--device", default="cpu")
    eo.add_argument("--max-instances", type=int, help="an evenly spaced subset of this many instances")
    eo.add_argument("--no-baselines", action="store_true", help="DenseFusion only (no ICP)")
    eo.add_argument("--models", help="--data is a real BOP scene folder (e.g. ../shared/realdata/lmo/test/000002) "
                    "and this its models folder; masks rendered from the ground-truth poses")
    eo.add_argument("--seg-weights", type=_package_file,
                    help="with --models: use this segmentation model's masks instead")
    eo.add_argument("--json", help="also write the figures to this JSON file")
    eo.add_argument("--figure", help="also draw the refined poses on 4 frames into this image (.jpg/.png)")
    eo.set_defaults(func=cmd_eval_object_pose)
    er = esub.add_parser("robot_pose", help="3D joint error, mAP at 2-10 cm and camera-to-robot error: SPDH and "
                                           "the 2D + depth baseline on held-out data")
    er.add_argument("--weights", type=_package_file, default="models/robot_pose/model.pt")
    er.add_argument("--data", required=True, help="held-out synth output (with keypoints/)")
    er.add_argument("--device", default="cpu")
    er.add_argument("--max-frames", type=int)
    er.add_argument("--calib-frames", type=int, default=45, help="frames per episode for the camera-to-robot fit")
    er.add_argument("--surface-frames", type=int, default=8,
                    help="most frames of that window whose depth refines the fit (robot surface ICP)")
    er.add_argument("--min-confidence", type=float, default=0.3, help="joints below it are not used in the fit")
    er.add_argument("--json", help="also write the figures to this JSON file")
    er.add_argument("--figure", help="also draw predicted and true skeletons on 6 frames into this image")
    er.set_defaults(func=cmd_eval_robot_pose)
    eh = esub.add_parser("human_pose", help="2D PCK@0.2 / OKS AP on real COCO person crops; 3D MPJPE / PCK@10cm "
                                           "on synthetic frames (BlazePose + depth lifting, and the lifting alone)")
    eh.add_argument("--coco", default="../shared/realdata/coco_person/test_coco.json",
                    help="COCO person-keypoints json with its images beside it ('' = skip)")
    eh.add_argument("--keypoint-layout", choices=sorted(LAYOUTS),
                    help="joint order of --coco's keypoints (default: from its joint names, else its joint count; "
                         "mapped to COCO-17)")
    eh.add_argument("--synthetic-frames", type=int, default=300, help="synthetic frames (0 = skip)")
    eh.add_argument("--config", type=_package_file, default="config/cell_short_episodes.yaml",
                    help="cell YAML of the synthetic frames")
    eh.add_argument("--seed", type=int, default=1300, help="seed of the synthetic frames (not a training seed)")
    eh.add_argument("--spdh-weights", type=_package_file, default="models/human_pose/model.pt",
                    help="the spdh backend's model ('' = mediapipe only)")
    eh.add_argument("--json", help="also write the figures to this JSON file")
    eh.set_defaults(func=cmd_eval_human_pose)
    esf = esub.add_parser("safety", help="a recorded run's safety/status against verdicts of the true skeletons "
                                         "(confusion, distance error, latencies, timeline plot)")
    esf.add_argument("--bag", required=True, help="a recording with safety/status and ground truth (make demo's "
                     "out/demo/demo.mcap)")
    esf.add_argument("--graph", default="demo", help="graph whose safety_monitor parameters made the run")
    esf.add_argument("--out", default="out/safety", help="where safety.json and safety_timeline.png go")
    esf.set_defaults(func=cmd_eval_safety)
    et = esub.add_parser("tracking", help="MOTA / IDF1 of Deep SORT, SORT and deep-sort-realtime on the same inputs")
    et.add_argument("--data", help="synth output with coco/ (episodes with ground-truth identities)")
    et.add_argument("--weights", type=_package_file, default="models/segmentation/model.pt",
                    help="segmentation model: detections for the second input, descriptors for both")
    et.add_argument("--no-segmentation", action="store_true", help="noisy ground truth only, no appearance")
    et.add_argument("--mot15", help="a MOTChallenge sequence folder (gt/, det/), e.g. ../shared/realdata/mot15/TUD-Campus")
    et.add_argument("--fps", type=float, help="frame rate of the --mot15 sequence, Hz (default: its seqinfo.ini "
                    "frameRate, a known MOT15 sequence's rate, else 25 with a note; no figure depends on it)")
    et.add_argument("--box-noise", type=float, default=0.05, help="noise on each box edge, fraction of the box size")
    et.add_argument("--dropout", type=float, default=0.1, help="share of ground-truth boxes dropped")
    et.add_argument("--max-sequences", type=int)
    et.add_argument("--max-cosine-distance", type=float, default=DEFAULT_MAX_COSINE_DISTANCE,
                    help="Deep SORT appearance threshold (the tracker node's max_cosine_distance)")
    et.add_argument("--nn-budget", type=int, default=DEFAULT_NN_BUDGET, help="features kept per track; 0 = all")
    et.add_argument("--original-iou-rule", action="store_true",
                    help="IoU stage only for tracks missed in the last image (iou_for_lost_tracks false)")
    et.add_argument("--seed", type=int, default=0)
    et.add_argument("--json", help="also write the figures to this JSON file")
    et.set_defaults(func=cmd_eval_tracking)

    r = sub.add_parser("record", help="record live ROS 2 topics into an MCAP bag (rclpy, no rosbag2)")
    r.add_argument("--out", required=True, help="bag directory to create (written as OUT.partial until stopped)")
    r.add_argument("--topics", nargs="+", metavar="T", help="topics to record (relative names: under --namespace); "
                   "default: every topic under --namespace, polled for new ones while recording")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    r.add_argument("--namespace", default="/", help="namespace to record (default /: all topics)")
    r.set_defaults(func=cmd_record)

    y = sub.add_parser("replay", help="publish a rosbag2 bag (MCAP or sqlite3) on its topics (rclpy, no rosbag2)")
    y.add_argument("bag", help="bag directory, or a single .mcap / .db3 file")
    y.add_argument("--rate", type=float, default=1.0, metavar="R",
                   help="speed factor (default 1; 0 or inf: as fast as possible)")
    y.add_argument("--clock", action="store_true", help="also publish /clock with the bag time")
    y.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    y.add_argument("--restamp", action="store_true", help="rewrite header stamps to the replay time")
    y.add_argument("--topics", nargs="+", metavar="T", help="replay only these topics")
    y.add_argument("--delay", type=float, default=1.0, metavar="S",
                   help="seconds to wait before the first message, for subscribers to connect (default 1)")
    y.set_defaults(func=cmd_replay)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"hrc-perception {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
