"""`hrc-perception bench synth`: how fast the synthetic cell renders.

The scene: the configured cell with exactly 6 parts and 2 people, 640x480, all
ground truth (masks, depth noise, keypoints, visibility, poses). Figures:
median seconds per frame and frames/s for frame generation alone, and with each
export written (bag, COCO, BOP, keypoints, all of them; mean over the run); the same run's ray casting alone
(scene build + cast of the same frames) is the peer the ratio is quoted against.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import open3d as o3d

from hrc_perception.sim.config import CellConfig
from hrc_perception.sim.generator import SynthRun


def _bench_config(cfg: CellConfig) -> CellConfig:
    return dataclasses.replace(cfg, parts=dataclasses.replace(cfg.parts, count=(6, 6)),
                               humans=dataclasses.replace(cfg.humans, count=(2, 2)))


def _raycast_only_s(run: SynthRun, index: int) -> float:
    """Seconds to build the ray-casting scene of frame `index` and cast its rays."""
    ep = run.episode(index // run.cfg.sequence.episode_frames)
    items = ep.render_items(index % run.cfg.sequence.episode_frames)
    rays = run.renderer.camera_rays(ep.K, ep.T_world_cam)
    t0 = time.perf_counter()
    scene = o3d.t.geometry.RaycastingScene()
    for it in items:
        scene.add_triangles(o3d.core.Tensor(it.vertices_world_m), o3d.core.Tensor(it.faces))
    scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    return time.perf_counter() - t0


def bench_synth(cfg: CellConfig, config_dir: Path | None, frames: int = 60, seed: int = 0,
                json_path: str | None = None) -> dict:
    cfg = _bench_config(cfg)
    t0 = time.perf_counter()
    run = SynthRun(cfg, seed, config_dir)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run.episode(0)
    plan_s = time.perf_counter() - t0
    run.frame(0)  # warm-up

    gen, cast, people = [], [], []
    for i in range(1, frames + 1):
        t0 = time.perf_counter()
        f = run.frame(i)
        gen.append(time.perf_counter() - t0)
        cast.append(_raycast_only_s(run, i))
        people.append(len(f.humans))

    from hrc_perception.sim.export import run_synth
    export_fps = {}
    for bag, datasets in [(True, []), (False, ["coco"]), (False, ["bop"]), (False, ["keypoints"]),
                          (True, ["coco", "bop", "keypoints"])]:
        name = "+".join((["bag"] if bag else []) + datasets)
        tmp = Path(tempfile.mkdtemp(prefix="hrc_bench_"))
        try:
            t0 = time.perf_counter()
            run_synth(cfg, seed, frames, tmp, bag=bag, datasets=datasets, config_dir=config_dir, progress=False)
            export_fps[name] = frames / (time.perf_counter() - t0 - load_s - plan_s)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    med_gen, med_cast = statistics.median(gen), statistics.median(cast)
    res = {
        "frames": frames, "width": cfg.camera.width, "height": cfg.camera.height, "parts": 6, "people": 2,
        "mean_people_in_view": float(np.mean(people)),
        "generate_median_s": round(med_gen, 4), "generate_fps": round(1.0 / med_gen, 2),
        "raycast_only_median_s": round(med_cast, 4),
        "generate_over_raycast": round(med_gen / med_cast, 2),
        "generate_and_write_fps": {k: round(v, 2) for k, v in export_fps.items()},
        "episode_plan_s": round(plan_s, 3), "assets_load_s": round(load_s, 3),
        "command": "hrc-perception " + " ".join(sys.argv[1:]), "seed": seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
    }
    rows = [("frame generation (median)", f"{med_gen * 1e3:.1f} ms", f"{1 / med_gen:.1f} frames/s"),
            ("ray casting alone (median)", f"{med_cast * 1e3:.1f} ms", f"ratio {med_gen / med_cast:.2f}x"),
            *[(f"generation + writing {name}", f"{1e3 / fps:.1f} ms", f"{fps:.1f} frames/s")
              for name, fps in export_fps.items()],
            ("episode planning (once per episode)", f"{plan_s * 1e3:.0f} ms", ""),
            ("people in view (mean)", f"{np.mean(people):.2f}", "")]
    print(f"bench synth: {frames} frames {cfg.camera.width}x{cfg.camera.height}, robot + 6 parts + 2 people, "
          f"seed {seed}, {res['machine']}")
    width = max(len(r[0]) for r in rows)
    for name, a, b in rows:
        print(f"  {name:<{width}}  {a:>10}  {b}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res
