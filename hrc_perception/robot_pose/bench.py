"""`hrc-perception bench robot_pose`: time per frame of the robot pose predictor on this machine.

Frames of the default cell (640x480 depth, rendered in-process with a seed of their
own). Timed per frame: depth -> XYZ input image, the network, decoding, and the whole
predictor (the goal: <= 50 ms); in the same run the 2D + depth baseline decoding on
the same heatmaps, so the two decoders are compared side by side. Then the
camera-to-robot fit over those frames (a 30-frame window): the keypoint fit and its
refinement on the depth of up to 8 of the frames, each timed over repeated calls.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hrc_perception.training import machine_line


def _ms(ts: list[float]) -> dict:
    s = sorted(ts)
    return {"median": round(1e3 * statistics.median(s), 2), "p95": round(1e3 * s[int(0.95 * (len(s) - 1))], 2)}


def bench_robot_pose(weights: str, frames: int = 30, seed: int = 950, threads: int = 2,
                     json_path: str | None = None) -> dict:
    from hrc_perception.robot_pose.dataset import heatmap_K
    from hrc_perception.robot_pose.predictor import RobotPosePredictor, depth_to_input_xyz, xyz_on_grid
    from hrc_perception.robot_pose.spdh import decode, decode_uv_depth
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun

    torch.set_num_threads(threads)
    predictor = RobotPosePredictor(weights)
    run = SynthRun(CellConfig(), seed)
    sim_frames = list(run.frames(frames))
    depth_frames = [(f.depth_mm.astype(np.float32) / 1000.0, f.K) for f in sim_frames]
    predictor.predict(*depth_frames[0])     # warm-up
    t_xyz, t_net, t_dec, t_base, t_all = [], [], [], [], []
    spec, input_hw = predictor.spec, predictor.build.input_hw
    for depth_m, K in depth_frames:
        t0 = time.perf_counter()
        xyz, K_xyz = depth_to_input_xyz(depth_m, K, input_hw)
        t1 = time.perf_counter()
        hm, _ = predictor.heatmaps(xyz)
        t2 = time.perf_counter()
        K_hm = heatmap_K(K_xyz, input_hw, spec)
        decode(hm, K_hm, spec)
        t3 = time.perf_counter()
        decode_uv_depth(hm, K_hm, xyz_on_grid(xyz, spec.hw))
        t4 = time.perf_counter()
        predictor.predict(depth_m, K)
        t5 = time.perf_counter()
        t_xyz.append(t1 - t0)
        t_net.append(t2 - t1)
        t_dec.append(t3 - t2)
        t_base.append(t4 - t3)
        t_all.append(t5 - t4)
    kp_ms, refine_ms, refined_from, views = _time_calibration(predictor, sim_frames, depth_frames)
    res = {
        "frames": frames, "threads": threads, "weights": weights, "image_size": list(depth_frames[0][0].shape),
        "input_hw": list(input_hw), "heatmap_hw": list(spec.hw),
        "data": f"SynthRun(default cell, seed {seed}), {frames} frames",
        "ms_per_frame": {"xyz_image": _ms(t_xyz), "network": _ms(t_net), "spdh_decoding": _ms(t_dec),
                         "uv_depth_decoding": _ms(t_base), "predictor_total": _ms(t_all)},
        "ms_per_calibration": {"keypoint_fit": kp_ms, "depth_refinement": refine_ms},
        "depth_refinement_from": refined_from, "depth_views": views,
        "command": "hrc-perception " + " ".join(sys.argv[1:]), "machine": machine_line("cpu"),
    }
    print(f"bench robot_pose: {frames} frames 640x480, {threads} threads, {res['machine']}")
    for k, v in res["ms_per_frame"].items():
        print(f"  {k:<18} median {v['median']:7.2f} ms   p95 {v['p95']:7.2f} ms")
    print(f"camera-to-robot over {frames} frames (refinement from {refined_from}, {views} depth views):")
    for k, v in res["ms_per_calibration"].items():
        print(f"  {k:<18} median {v['median']:7.2f} ms   p95 {v['p95']:7.2f} ms")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res


def _time_calibration(predictor, sim_frames, depth_frames, repeats: int = 10) -> tuple[dict, dict, str, int]:
    """(keypoint fit ms, depth refinement ms, what the refinement started from, depth
    views it aligned to): repeats calls each over one window holding every frame,
    filled as the node fills it. The refinement starts from the keypoint fit, or from
    the true pose where the network gave too few keypoints for one."""
    from hrc_perception.robot_pose.evaluate import robot_model_of_card
    from hrc_perception.robot_pose.extrinsics import ExtrinsicsEstimator
    from hrc_perception.robot_pose.predictor import depth_to_input_xyz
    from hrc_perception.robot_pose.surface_fit import SurfaceView, robot_surface
    robot = robot_model_of_card(predictor.card, load_meshes=True)
    est = ExtrinsicsEstimator(window_s=len(sim_frames), robot=robot, surface=robot_surface(robot))
    for k, (f, (depth_m, K)) in enumerate(zip(sim_frames, depth_frames)):
        xyz, K_xyz = depth_to_input_xyz(depth_m, K, predictor.build.input_hw)
        sk = predictor.predict_xyz(xyz, K_xyz, depth_m.shape)
        q = f.robot.joint_positions_rad
        est.add(float(k), robot.keypoints(q), sk.xyz_cam_m, sk.confidence, sk.valid, SurfaceView(q, xyz, K_xyz))
    t_kp, t_refine = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit = est.estimate()
        t1 = time.perf_counter()
        T_init = sim_frames[0].robot.T_cam_base if fit is None else fit.T
        est.refine(T_init)
        t_refine.append(time.perf_counter() - t1)
        t_kp.append(t1 - t0)
    return (_ms(t_kp), _ms(t_refine), "the true pose (no keypoint fit)" if fit is None else "the keypoint fit",
            est.num_views)
