"""`hrc-perception bench object_pose`: time per part instance and per frame on this machine.

On synthetic close-up frames of the default parts (``config/cell_parts_closeup.yaml``,
a seed of its own): DenseFusion one instance at a time (main network, and main
network + refinement, and refined + verified; the last also per part, as only the
asymmetric parts are verified; render-and-compare's fit alone, from the refined pose
and from the verified one), DenseFusion per frame (all of the frame's parts in one
batch) and per batch of 6 parts, and in the same run the ICP baselines on the same instances, with each
method's ADD(-S) accuracy at 0.1 d so speed is compared at known accuracy.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from hrc_perception import resources
from hrc_perception.training import machine_line

BENCH_CONFIG = Path("config") / "cell_parts_closeup.yaml"   # in the package's share folder


def bench_object_pose(weights: str, frames: int = 12, seed: int = 900, threads: int = 2,
                      json_path: str | None = None) -> dict:
    from hrc_perception.object_pose.data import load_bop_split
    from hrc_perception.object_pose.evaluate import evaluate_samples, summarise
    from hrc_perception.object_pose.predictor import ObjectPosePredictor
    from hrc_perception.object_pose.render_compare import turned_starts
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.export import run_synth

    torch.set_num_threads(threads)
    predictor = ObjectPosePredictor(weights, render_compare=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = resources.share_dir() / BENCH_CONFIG
        run_synth(load_cell_config(config), seed, frames, Path(tmp), bag=False, datasets=["bop"],
                  config_dir=config.parent, config_path=str(BENCH_CONFIG), progress=False)
        parts_by_id, samples = load_bop_split(Path(tmp), crop_px=predictor.build.crop_px, quiet=True,
                                              with_views=True)
    predictor.estimate([(samples[0].crop, 0, samples[0].K)])       # warm-up
    rows = evaluate_samples(predictor, samples, parts_by_id, baselines=True, quiet=True)
    summary = summarise(rows, {p.name: p for p in parts_by_id.values()})

    by_frame: dict[tuple, list] = {}
    views_by_frame: dict[tuple, list] = {}
    for s in samples:
        name = parts_by_id[s.obj_id].name
        if name in predictor.classes:
            by_frame.setdefault((s.scene, s.image_id), []).append((s.crop, predictor.classes.index(name), s.K))
            views_by_frame.setdefault((s.scene, s.image_id), []).append(s.view)
    frame_times, frame_sizes, rc_together, rc_alone, rc_turns = [], [], [], [], []
    rc = predictor.render_compare
    for key, items in by_frame.items():
        t0 = time.perf_counter()
        poses = predictor.estimate(items)
        frame_times.append(time.perf_counter() - t0)
        frame_sizes.append(len(items))
        # render-and-compare from the verified poses: the frame's parts in one fit, and one by one
        jobs = [(it[1], v, p.T_cam_obj[None, :3, :3], p.T_cam_obj[None, :3, 3])
                for it, v, p in zip(items, views_by_frame[key], poses) if v is not None and not isinstance(p, str)]
        if jobs:
            t0 = time.perf_counter()
            rc.refine_many(jobs)
            rc_together.append((time.perf_counter() - t0) / len(jobs))
            t0 = time.perf_counter()
            for job in jobs:
                rc.refine(*job)
            rc_alone.append((time.perf_counter() - t0) / len(jobs))
        # the 'turns' starts (asymmetric parts only; symmetric ones keep the refined pose): one fit per frame
        refined = predictor.estimate(items, verify=False)
        turned = [(it[1], v, *turned_starts(p.T_cam_obj[:3, :3], p.T_cam_obj[:3, 3], rc.centroids_m[it[1]]))
                  for it, v, p in zip(items, views_by_frame[key], refined)
                  if v is not None and not isinstance(p, str) and not predictor.symmetric[it[1]]]
        if turned:
            t0 = time.perf_counter()
            rc.refine_many(turned)
            rc_turns.append((time.perf_counter() - t0) / len(turned))

    # The goal's "frame with 6 parts": batches of 6 consecutive instances (the cost
    # depends on the count, not on which frame the crops came from).
    known = [it for items in by_frame.values() for it in items]
    six_times = []
    for k in range(0, len(known) - 5, 6):
        t0 = time.perf_counter()
        predictor.estimate(known[k:k + 6])
        six_times.append(time.perf_counter() - t0)

    def med_ms(method):
        return summary[method]["all"]["ms_per_instance_median"]

    def acc(method):
        return summary[method]["all"]["add_s_accuracy_0.1d"]

    final = "densefusion_verified" if "densefusion_verified" in summary else "densefusion_refined"

    res = {
        "instances": len(samples), "frames": len(frame_times), "threads": threads, "weights": weights,
        "data": f"hrc-perception synth --config config/cell_parts_closeup.yaml --frames {frames} --seed {seed}",
        "per_instance_ms_median": {m: med_ms(m) for m in summary},
        "final_per_part_ms_median": {name: v["ms_per_instance_median"] for name, v in summary[final].items()
                                     if name != "all"},
        "add_s_accuracy_0.1d": {m: acc(m) for m in summary},
        "per_frame_ms_median": statistics.median(frame_times) * 1e3,
        "parts_per_frame_median": statistics.median(frame_sizes),
        "six_parts_ms_median": statistics.median(six_times) * 1e3,
        "render_compare_frame_batch_ms_per_instance_median": statistics.median(rc_together) * 1e3,
        "render_compare_one_by_one_ms_per_instance_median": statistics.median(rc_alone) * 1e3,
        "render_compare_turns_frame_batch_ms_per_asymmetric_instance_median": statistics.median(rc_turns) * 1e3,
        "final_method": final,
        "speedup_final_vs_icp_global": med_ms("icp_global") / med_ms(final),
        "speedup_final_vs_icp_centroid": med_ms("icp_centroid") / med_ms(final),
        "command": "hrc-perception " + " ".join(sys.argv[1:]),
        "machine": machine_line("cpu"),
    }
    print(f"bench object_pose: {len(samples)} instances in {len(frame_times)} frames, {threads} threads, "
          f"{res['machine']}")
    for m in summary:
        ms = "      -" if med_ms(m) is None else f"{med_ms(m):7.1f}"
        print(f"  {m:<24} median {ms} ms/instance   ADD(-S)<0.1d {acc(m):.3f}")
    print(f"  {final} by part: " + ", ".join(f"{n} {ms:.1f}" for n, ms in res["final_per_part_ms_median"].items())
          + " ms/instance")
    print(f"  {final} per frame ({res['parts_per_frame_median']:.0f} parts, one batch) median "
          f"{res['per_frame_ms_median']:.1f} ms")
    print(f"  {final} 6 parts in one batch: median {res['six_parts_ms_median']:.1f} ms")
    print(f"  render-and-compare from the verified poses, per instance: a frame's parts in one fit "
          f"{res['render_compare_frame_batch_ms_per_instance_median']:.1f} ms, one by one "
          f"{res['render_compare_one_by_one_ms_per_instance_median']:.1f} ms (medians over frames); from the "
          f"turns (14 starts), a frame's asymmetric parts in one fit "
          f"{res['render_compare_turns_frame_batch_ms_per_asymmetric_instance_median']:.1f} ms each")
    print(f"  ratio icp_global / {final}: {res['speedup_final_vs_icp_global']:.1f}x")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res

