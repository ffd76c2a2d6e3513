"""`hrc-perception bench segmentation`: time per 640x480 frame on this machine.

The shipped model (or --weights) on synthetic frames, against torchvision's
``maskrcnn_resnet50_fpn`` (random weights, its default 800 px size) on the same
frames in the same run: median and p95 seconds, and the ratio of the medians.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _times(fn, images, repeat: int = 1) -> list[float]:
    out = []
    for img in images:
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(img)
            out.append(time.perf_counter() - t0)
    return out


def bench_segmentation(weights: str, frames: int = 30, reference_frames: int = 3, threads: int = 2,
                       json_path: str | None = None) -> dict:
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from hrc_perception.segmentation.predictor import SegmentationPredictor
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun

    torch.set_num_threads(threads)
    images = [f.rgb for f in SynthRun(CellConfig(), seed=7).frames(frames)]
    predictor = SegmentationPredictor(weights)
    predictor.predict(images[0])   # warm-up
    ours = _times(predictor.predict, images)
    counts = [len(predictor.predict(im).scores) for im in images[:3]]

    reference = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()

    def run_reference(img):
        with torch.inference_mode():
            reference([torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0])

    run_reference(images[0])
    ref = _times(run_reference, images[:reference_frames])
    res = {
        "frames": frames, "image": "640x480", "threads": threads, "weights": weights,
        "ours_median_s": statistics.median(ours), "ours_p95_s": float(np.percentile(ours, 95)),
        "ours_detections_first_frames": counts,
        "reference": "torchvision maskrcnn_resnet50_fpn, default size (800 px), random weights",
        "reference_median_s": statistics.median(ref), "reference_frames": reference_frames,
        "speedup": statistics.median(ref) / statistics.median(ours),
        "command": "hrc-perception " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
    }
    print(f"bench segmentation: {frames} synthetic 640x480 frames, {threads} threads, {res['machine']}")
    print(f"  ours (short side {predictor.input_short_side})  median {res['ours_median_s'] * 1e3:7.1f} ms  "
          f"p95 {res['ours_p95_s'] * 1e3:7.1f} ms")
    print(f"  maskrcnn_resnet50_fpn      median {res['reference_median_s'] * 1e3:7.1f} ms  "
          f"({reference_frames} frames)   ratio {res['speedup']:.1f}x")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res
