"""`hrc-perception bench engines`: each shipped network run by torch, ONNX Runtime and
OpenVINO (:mod:`hrc_perception.engines`, fp32) on the same rendered frames of the default
cell, 640x480, on this machine.

Per network and engine: the whole predictor's time per input (median and p95, seconds; the
first call, which compiles the engine, timed apart as ``first_call_s``) and its agreement
with torch on every input: segmentation (trunk and feature pyramid by the engine; proposals,
heads and masks in torch) the detection count, the largest box corner difference (pixels)
and score difference; robot pose and the spdh person backend the largest joint difference
(millimetres) over the joints both call valid. int8 (NNCF) is not measured: nncf is not
installed, and this CPU has no VNNI.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from hrc_perception.training import machine_line


def _stats(ts: list[float]) -> dict:
    s = sorted(ts)
    return {"median_s": statistics.median(s), "p95_s": s[int(0.95 * (len(s) - 1))]}


def _timed(call, inputs) -> tuple[list, float, list[float]]:
    """(outputs per input, the first call's time, the times of a second pass)."""
    t0 = time.perf_counter()
    call(inputs[0])
    first = time.perf_counter() - t0
    outs, ts = [], []
    for x in inputs:
        t0 = time.perf_counter()
        outs.append(call(x))
        ts.append(time.perf_counter() - t0)
    return outs, first, ts


def bench_engines(frames: int = 10, seed: int = 980, threads: int = 2, json_path: str | None = None,
                  log=print) -> dict:
    import torch

    from hrc_perception.engines import ENGINES
    from hrc_perception.human_pose.evaluate import person_boxes
    from hrc_perception.human_pose.spdh_backend import SpdhBackend
    from hrc_perception.robot_pose.predictor import RobotPosePredictor
    from hrc_perception.segmentation.predictor import SegmentationPredictor
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun

    torch.set_num_threads(threads)
    shots = list(SynthRun(CellConfig(), seed).frames(frames))
    depths = [f.depth_mm.astype(np.float64) / 1000.0 for f in shots]
    people = [(d, f.K, box, mask) for f, d in zip(shots, depths) for _, mask, box in person_boxes(f, 6)]
    def segmentation(engine):
        return SegmentationPredictor("models/segmentation/model.pt", engine=engine).predict

    def robot_pose(engine):
        predictor = RobotPosePredictor("models/robot_pose/model.pt", engine=engine)
        return lambda x: predictor.predict(*x)

    def human_pose_spdh(engine):
        backend = SpdhBackend("models/human_pose/model.pt", engine=engine)
        return lambda x: backend.estimate_3d(*x)

    networks = {"segmentation": (segmentation, [f.rgb for f in shots]),
                "robot_pose": (robot_pose, [(d, f.K) for f, d in zip(shots, depths)]),
                "human_pose_spdh": (human_pose_spdh, people)}
    res: dict = {"frames": frames, "seed": seed, "threads": threads, "persons": len(people), "networks": {}}
    for name, (make, inputs) in networks.items():
        per = {}
        reference = None
        for engine in ENGINES:
            outs, first, ts = _timed(make(engine), inputs)
            row = {"first_call_s": first, **_stats(ts)}
            if reference is None:
                reference = outs
            else:
                row |= _agreement(name, outs, reference)
            per[engine] = row
            log(f"{name} {engine}: {row['median_s'] * 1e3:.1f} ms median (first call {first:.1f} s)"
                + (f", {_agreement_text(row)}" if engine != "torch" else ""))
        for engine in ENGINES:
            per[engine]["speedup_vs_torch"] = per["torch"]["median_s"] / per[engine]["median_s"]
        res["networks"][name] = per
    res["machine"] = machine_line("cpu")
    res["command"] = "hrc-perception " + " ".join(sys.argv[1:])
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res


def _agreement(name: str, outs: list, reference: list) -> dict:
    if name == "segmentation":
        same = all(len(a.scores) == len(b.scores) for a, b in zip(outs, reference))
        box = max((float(np.abs(a.boxes_xyxy - b.boxes_xyxy).max()) for a, b in zip(outs, reference)
                   if len(a.scores) and len(a.scores) == len(b.scores)), default=0.0)
        score = max((float(np.abs(a.scores - b.scores).max()) for a, b in zip(outs, reference)
                     if len(a.scores) and len(a.scores) == len(b.scores)), default=0.0)
        return {"same_detection_counts": same, "max_box_diff_px": box, "max_score_diff": score}
    if name == "robot_pose":
        pairs = [(a.xyz_cam_m[a.valid & b.valid], b.xyz_cam_m[a.valid & b.valid]) for a, b in zip(outs, reference)]
        valid_same = all(np.array_equal(a.valid, b.valid) for a, b in zip(outs, reference))
    else:
        pairs = [(a[0], b[0]) for a, b in zip(outs, reference)]
        pairs = [(p[np.isfinite(p).all(1) & np.isfinite(q).all(1)], q[np.isfinite(p).all(1) & np.isfinite(q).all(1)])
                 for p, q in pairs]
        valid_same = True
    diff = max((float(np.linalg.norm(p - q, axis=1).max()) for p, q in pairs if len(p)), default=0.0)
    return {"max_joint_diff_mm": 1e3 * diff, "same_valid_joints": valid_same}


def _agreement_text(row: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                     if k not in ("first_call_s", "median_s", "p95_s"))
