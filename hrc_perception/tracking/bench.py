"""`hrc-perception bench tracking`: time per frame of the trackers on the same inputs.

20 objects of 2 classes move on smooth random paths for N frames (640x480, 15 fps)
with 128-d appearance features (a fixed vector per object plus noise) and 5% of
detections dropped. Timed on identical detections: this package's Deep SORT, its
SORT mode (appearance off), and the PyPI ``deep-sort-realtime`` tracker given the
same features (its embedder off). Median and p95 ms per frame, ratio of medians.
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

from hrc_perception.tracking.detection import Detection
from hrc_perception.tracking.tracker import Tracker

DT_S = 1.0 / 15.0


def synthetic_detections(frames: int, objects: int = 20, seed: int = 0) -> list[list[tuple]]:
    """Per frame: (tlwh [4], score, class_id, feature [128]) of the visible objects."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([50, 50], [550, 380], (objects, 2))
    vel = rng.normal(0, 40, (objects, 2))
    size = rng.uniform([30, 60], [80, 160], (objects, 2))
    feats = rng.normal(size=(objects, 128))
    cls = np.arange(objects) % 2 + 1
    out = []
    for _ in range(frames):
        vel += rng.normal(0, 10, vel.shape) * DT_S
        pos = np.clip(pos + vel * DT_S, [0, 0], [560, 320])
        frame = []
        for i in range(objects):
            if rng.random() < 0.05:
                continue
            f = feats[i] + rng.normal(0, 0.3, 128)
            frame.append((np.r_[pos[i], size[i]], 0.9, int(cls[i]), (f / np.linalg.norm(f)).astype(np.float32)))
        out.append(frame)
    return out


def _time_ours(dets, use_appearance: bool) -> list[float]:
    tracker = Tracker(use_appearance=use_appearance)
    times = []
    for frame in dets:
        t0 = time.perf_counter()
        tracker.predict(DT_S)
        tracker.update([Detection(tlwh, score, c, feat) for tlwh, score, c, feat in frame])
        times.append(time.perf_counter() - t0)
    return times


def _time_peer(dets) -> list[float]:
    from deep_sort_realtime.deepsort_tracker import DeepSort
    tracker = DeepSort(max_age=30, n_init=3, embedder=None)
    times = []
    for frame in dets:
        raw = [(list(tlwh), score, c) for tlwh, score, c, _ in frame]
        embeds = [feat for *_, feat in frame]
        t0 = time.perf_counter()
        tracker.update_tracks(raw, embeds=embeds)
        times.append(time.perf_counter() - t0)
    return times


def bench_tracking(frames: int = 300, json_path: str | None = None) -> dict:
    dets = synthetic_detections(frames)
    results = {}
    for name, fn in (("deep_sort", lambda: _time_ours(dets, True)), ("sort", lambda: _time_ours(dets, False)),
                     ("deep_sort_realtime", lambda: _time_peer(dets))):
        t = fn()[10:]   # tracks exist from here on
        results[name] = {"median_ms": statistics.median(t) * 1e3, "p95_ms": float(np.percentile(t, 95)) * 1e3}
    res = {"frames": frames, "objects": 20, "feature_dim": 128, **results,
           "deep_sort_realtime_over_ours": results["deep_sort_realtime"]["median_ms"]
           / results["deep_sort"]["median_ms"],
           "command": "hrc-perception " + " ".join(sys.argv[1:]),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"}
    print(f"bench tracking: {frames} frames, 20 objects, 128-d features, {res['machine']}")
    for name in ("deep_sort", "sort", "deep_sort_realtime"):
        print(f"  {name:<20} median {results[name]['median_ms']:6.2f} ms   p95 {results[name]['p95_ms']:6.2f} ms")
    print(f"  deep-sort-realtime / ours: {res['deep_sort_realtime_over_ours']:.1f}x")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res
