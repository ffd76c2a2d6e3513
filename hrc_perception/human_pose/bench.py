"""`hrc-perception bench human_pose`: time per person on this machine (goal <= 40 ms).

Rendered frames of the default cell (640x480); every person with at least 6 visible
joints, its box and mask from the ground truth, its identity the instance's. Timed per
person: the whole estimate (crop + BlazePose tracking the person + depth lifting +
smoothing, :class:`HumanPoseEstimator`), and its parts (BlazePose timed with a tracker of
its own, and on the crop as a single image: the detector every time); the spdh
backend's whole estimate (depth crop + network + decoding + smoothing); in the same run the
peer: BlazePose on the whole frame (no crop: the detector on the frame, the landmarks of
every detection), with the share of the people it found (a mask box at IoU >= 0.5).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from hrc_perception.training import machine_line


def _ms(ts: list[float]) -> dict:
    s = sorted(ts)
    return {"median": round(1e3 * statistics.median(s), 2), "p95": round(1e3 * s[int(0.95 * (len(s) - 1))], 2)}


def _found(people, box_xyxy: np.ndarray) -> bool:
    """Whether one of BlazePose's people has a mask box overlapping box_xyxy by IoU >= 0.5."""
    from hrc_perception.human_pose.blazepose import box_iou
    return bool(people) and float(box_iou(np.stack([p.mask_box_xyxy for p in people]), box_xyxy).max()) >= 0.5


def bench_human_pose(frames: int = 30, seed: int = 960, json_path: str | None = None,
                     spdh_weights: str | None = "models/human_pose/model.pt") -> dict:
    from hrc_perception.human_pose.estimator import HumanPoseEstimator, PersonInput
    from hrc_perception.human_pose.evaluate import person_boxes
    from hrc_perception.human_pose.lifting import LiftingParams, lift_joints
    from hrc_perception.human_pose.mediapipe_backend import MediapipeBackend
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun

    backend = MediapipeBackend()
    estimator = HumanPoseEstimator(backend)
    people = []
    for f in SynthRun(CellConfig(), seed).frames(frames):
        depth_m = f.depth_mm.astype(np.float64) / 1000.0
        people += [(f, depth_m, h, mask, box) for h, mask, box in person_boxes(f, 6)]
    if not people:
        raise RuntimeError("no person in the benchmark frames")
    f, depth_m, h, mask, box = people[0]
    estimator.estimate(f.rgb, depth_m, f.K, [PersonInput(1, box, mask)], 0.0)     # warm-up
    t_all, t_backend, t_single, t_lift, t_full_frame, found_full = [], [], [], [], [], 0
    for k, (f, depth_m, h, mask, box) in enumerate(people):
        t0 = time.perf_counter()
        estimator.estimate(f.rgb, depth_m, f.K, [PersonInput(h.instance_id, box, mask)], f.time_s)
        t1 = time.perf_counter()
        uv, conf = backend.estimate(f.rgb, box, person_id=10**6 + h.instance_id)
        t_backend.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        backend.estimate(f.rgb, box)
        t_single.append(time.perf_counter() - t2)
        t2 = time.perf_counter()
        lift_joints(uv, conf, depth_m, f.K, LiftingParams(), mask=mask)
        t3 = time.perf_counter()
        found_full += _found(backend.pose.people(f.rgb), box)
        t4 = time.perf_counter()
        t_all.append(t1 - t0)
        t_lift.append(t3 - t2)
        t_full_frame.append(t4 - t3)
    backend.close()
    t_spdh = []
    if spdh_weights and Path(spdh_weights).is_file():
        from hrc_perception.human_pose.spdh_backend import SpdhBackend
        spdh = HumanPoseEstimator(SpdhBackend(spdh_weights))
        spdh.estimate(people[0][0].rgb, people[0][1], people[0][0].K, [PersonInput(1, people[0][4], people[0][3])],
                      0.0)
        for f, depth_m, h, mask, box in people:
            t0 = time.perf_counter()
            spdh.estimate(f.rgb, depth_m, f.K, [PersonInput(h.instance_id, box, mask)], f.time_s)
            t_spdh.append(time.perf_counter() - t0)
    res = {"people": len(people), "frames": frames, "seed": seed, "image": "640x480",
           "per_person_ms": _ms(t_all), "backend_ms": _ms(t_backend), "backend_single_image_ms": _ms(t_single),
           "lifting_ms": _ms(t_lift),
           "peer_blazepose_full_frame_ms": _ms(t_full_frame),
           "ratio_full_frame_over_crop": round(statistics.median(t_full_frame) / statistics.median(t_backend), 2),
           "peer_found_a_person": round(found_full / len(people), 3),
           "spdh_per_person_ms": _ms(t_spdh) if t_spdh else None,
           "goal_ms": 40.0, "command": "hrc-perception " + " ".join(sys.argv[1:]), "machine": machine_line("cpu")}
    print(f"bench human_pose: {len(people)} people in {frames} frames (seed {seed}), {res['machine']}")
    for k in ("per_person_ms", "backend_ms", "backend_single_image_ms", "lifting_ms", "peer_blazepose_full_frame_ms"):
        print(f"  {k:<32} median {res[k]['median']:7.2f}  p95 {res[k]['p95']:7.2f}")
    if t_spdh:
        print(f"  {'spdh backend per person':<32} median {res['spdh_per_person_ms']['median']:7.2f}  "
              f"p95 {res['spdh_per_person_ms']['p95']:7.2f}")
    print(f"  the full-frame peer found {100 * res['peer_found_a_person']:.0f}% of the people "
          "(mask box IoU >= 0.5); the crops are estimated per person")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res
