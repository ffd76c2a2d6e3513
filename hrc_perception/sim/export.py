"""`hrc-perception synth`: render a run and write its bag, datasets and ground truth.

Output directory layout::

    meta.json             run description: config, seed, frames, classes, outputs (written last)
    ground_truth.jsonl    per-frame ground truth keyed by stamp (hrc_perception.io.ground_truth)
    bag/                  rosbag2 MCAP (hrc_perception.io.bag), with --bag
    coco/ bop/ keypoints/ person_crops/ training datasets, with --dataset

Every output is written under a temporary name and renamed when complete; a
``meta.json`` is present only when the whole run finished.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import open3d as o3d

from hrc_perception.geometry import project, transform_points
from hrc_perception.io.atomic import atomic_write_json
from hrc_perception.io.bag import BagWriter
from hrc_perception.io.bop import BopWriter
from hrc_perception.io.coco import CocoWriter
from hrc_perception.io.ground_truth import GroundTruthWriter
from hrc_perception.io.keypoints_npz import KeypointsWriter
from hrc_perception.io.person_crops_npz import PersonCropsWriter
from hrc_perception.sim.config import CellConfig, config_to_dict
from hrc_perception.sim.frame import Frame, PartGT
from hrc_perception.sim.generator import SynthRun

DATASETS = ("coco", "bop", "keypoints", "person_crops")
WRITE_QUEUE_FRAMES = 4   # frames rendered ahead of the writer thread


def part_silhouette(mesh, T_cam_obj: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Full silhouette [H, W] bool of a mesh at T_cam_obj, ignoring every occluder.

    Rays are cast only inside the bounding box of the projected vertices."""
    v = transform_points(T_cam_obj, np.asarray(mesh.vertices))
    out = np.zeros((height, width), dtype=bool)
    if np.any(v[:, 2] <= 1e-3):
        return out
    uv = project(v, K)
    u0, v0 = np.clip(np.floor(uv.min(0)).astype(int) - 1, 0, [width, height])
    u1, v1 = np.clip(np.ceil(uv.max(0)).astype(int) + 2, 0, [width, height])
    if u1 <= u0 or v1 <= v0:
        return out
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)),
                        o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.uint32)))
    uu, vv = np.meshgrid(np.arange(u0, u1), np.arange(v0, v1))
    d = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu, dtype=float)], -1)
    rays = np.concatenate([np.zeros_like(d), d], axis=-1).reshape(-1, 6).astype(np.float32)
    hit = np.isfinite(scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy())
    out[v0:v1, u0:u1] = hit.reshape(vv.shape)
    return out


def run_synth(cfg: CellConfig, seed: int, frames: int, out_dir: Path, bag: bool, datasets: list[str],
              namespace: str = "/cell", config_dir: Path | None = None, config_path: str | None = None,
              progress: bool = True, xyz_size: tuple[int, int] = (240, 320)) -> dict:
    """Render `frames` frames and write the requested outputs; returns meta.json's content."""
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise ValueError(f"--dataset: unknown format {unknown[0]!r} (known: {', '.join(DATASETS)})")
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "meta.json"
    if meta_path.exists():
        meta_path.unlink()   # the directory is being rewritten: it is not complete any more
    run = SynthRun(cfg, seed, config_dir)
    parts_by_name = {p.name: p for p in run.assets.parts}
    h, w = cfg.camera.height, cfg.camera.width

    def silhouette(frame: Frame, part: PartGT) -> np.ndarray:
        return part_silhouette(parts_by_name[part.class_name].mesh, part.T_cam_obj, frame.K, w, h)

    writers = [GroundTruthWriter(out_dir / "ground_truth.jsonl")]
    if bag:
        writers.append(BagWriter(out_dir / "bag", namespace))
    for name in datasets:
        if name == "coco":
            writers.append(CocoWriter(out_dir / "coco", run.classes, run.assets.parts))
        elif name == "bop":
            writers.append(BopWriter(out_dir / "bop", run.classes, run.assets.parts, silhouette_fn=silhouette))
        elif name == "keypoints":
            writers.append(KeypointsWriter(out_dir / "keypoints", run.classes, run.assets.parts, xyz_size=xyz_size))
        elif name == "person_crops":
            writers.append(PersonCropsWriter(out_dir / "person_crops"))

    t0 = time.perf_counter()
    bar = _progress(frames, progress)
    # Encoding and writing (JPEG, PNG, zlib: they release the GIL) run in one
    # background thread, in frame order, while the next frames render.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: deque = deque()
        for frame in run.frames(frames):
            pending.append(pool.submit(_write_frame, writers, frame))
            while len(pending) > WRITE_QUEUE_FRAMES or (pending and pending[0].done()):
                pending.popleft().result()
                bar.update(1)
        while pending:
            pending.popleft().result()
            bar.update(1)
    bar.close()
    for wr in writers:
        wr.close()
    elapsed = time.perf_counter() - t0
    meta = {
        "command": " ".join(["hrc-perception"] + sys.argv[1:]) if sys.argv else "",
        "config_path": config_path, "config": config_to_dict(cfg), "seed": seed, "frames": frames,
        "episodes": -(-frames // cfg.sequence.episode_frames), "fps": cfg.sequence.fps, "namespace": namespace,
        "classes": [{"class_id": c.class_id, "name": c.name, "category": c.category,
                     "keypoints": list(c.keypoints)} for c in run.classes],
        "outputs": ["ground_truth.jsonl"] + (["bag"] if bag else []) + list(datasets),
        "render_seconds": round(elapsed, 2), "machine": platform.platform(),
    }
    atomic_write_json(meta_path, _deterministic(meta), indent=2)
    return meta


def _write_frame(writers, frame: Frame) -> None:
    for wr in writers:
        wr.add(frame)


def _deterministic(meta: dict) -> dict:
    """meta.json without the wall-clock figure, so equal runs give equal bytes."""
    return {k: v for k, v in meta.items() if k != "render_seconds"}


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, unit="frame", disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                desc="synth")


def read_meta(out_dir: Path) -> dict:
    """meta.json of a finished run; ValueError if the run is missing or unfinished."""
    p = Path(out_dir) / "meta.json"
    if not p.is_file():
        raise ValueError(f"{out_dir}: no meta.json (not a finished `hrc-perception synth` output)")
    return json.loads(p.read_text())
