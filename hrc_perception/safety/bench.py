"""`hrc-perception bench safety`: time of one verdict (goal <= 2 ms per frame).

People of the default cell (true COCO-17 skeletons) around its robot, 1, 3 and 6 of
them per verdict. Timed: :func:`~hrc_perception.safety.monitor.assess` (capsules,
closest pairs, S_p, levels); in the same run the peer: the closest joint-to-joint
point distance (scipy cdist of the joints, no capsules), the cheapest distance a
monitor could use.

Then the frames' own people with only their visible joints known (the others
unknown, as a camera leaves them): the verdict with reach spheres carved by the
frame's depth (pooling the depth image included, as the node does once per frame),
against the same verdict with whole reach spheres.

Last, the depth-space path (:mod:`hrc_perception.safety.depth_space`) on the same
640x480 frames, each stage timed (the background learned first from empty-cell renders
of the episode), beside the skeleton capsule verdict with carving of the same frames.
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
    return {"median": round(1e3 * statistics.median(s), 4), "p95": round(1e3 * s[int(0.95 * (len(s) - 1))], 4)}


def bench_safety(frames: int = 60, seed: int = 970, repeat: int = 20, json_path: str | None = None) -> dict:
    from scipy.spatial.distance import cdist

    from hrc_perception.safety.monitor import MonitorParams, PersonState, RobotState, assess
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun

    from hrc_perception.safety.carving import pool_depth
    from hrc_perception.sim.frame import VIS_VISIBLE

    params = MonitorParams()
    robots, persons, seen = [], [], []
    for f in SynthRun(CellConfig(), seed).frames(frames):
        kp = f.robot.keypoints
        robots.append(RobotState(list(kp.names), kp.xyz_cam_m, 0.0, 0.5))
        persons += [h.keypoints.xyz_cam_m for h in f.humans]
        visible = [np.where((h.keypoints.visibility == VIS_VISIBLE)[:, None], h.keypoints.xyz_cam_m, np.nan)
                   for h in f.humans]
        visible = [PersonState(i + 1, p, 0.0, 0.3) for i, p in enumerate(visible)
                   if np.isfinite(p).all(axis=1).sum() >= params.min_person_joints]
        if visible:
            seen.append((robots[-1], visible, f.depth_mm, f.K))
    rng = np.random.default_rng(seed)
    res = {"frames": frames, "seed": seed, "repeat": repeat}
    for n in (1, 3, 6):
        t_ours, t_peer = [], []
        for robot in robots:
            picks = rng.integers(len(persons), size=n)
            people = [PersonState(i + 1, persons[k], 0.0, 0.3) for i, k in enumerate(picks)]
            for _ in range(repeat):
                t0 = time.perf_counter()
                assess(robot, people, 0.0, params)
                t1 = time.perf_counter()
                min(cdist(p.positions_m, robot.positions_m).min() for p in people)
                t2 = time.perf_counter()
                t_ours.append(t1 - t0)
                t_peer.append(t2 - t1)
        res[f"{n}_people"] = {"verdict_ms": _ms(t_ours), "peer_point_distance_ms": _ms(t_peer),
                              "ratio_ours_over_peer": round(statistics.median(t_ours) / statistics.median(t_peer), 1)}
    t_carved, t_whole = [], []
    for robot, people, depth_mm, K in seen:
        for _ in range(repeat):
            t0 = time.perf_counter()
            assess(robot, people, 0.0, params, depth=pool_depth(depth_mm.astype(np.float32) * np.float32(1e-3), K))
            t1 = time.perf_counter()
            assess(robot, people, 0.0, params)
            t2 = time.perf_counter()
            t_carved.append(t1 - t0)
            t_whole.append(t2 - t1)
    if seen:
        res["visible_joints_carved"] = {
            "frames": len(seen), "people_per_frame": round(float(np.mean([len(p) for _, p, _, _ in seen])), 2),
            "verdict_ms": _ms(t_carved), "peer_whole_spheres_ms": _ms(t_whole),
            "ratio_ours_over_peer": round(statistics.median(t_carved) / statistics.median(t_whole), 1)}
    if seen:
        res["depth_space"] = _bench_depth_space(seed, frames, repeat=max(1, repeat // 10),
                                                capsule_ms=res["visible_joints_carved"]["verdict_ms"]["median"])
    res |= {"goal_ms": 2.0, "command": "hrc-perception " + " ".join(sys.argv[1:]), "machine": machine_line("cpu")}
    print(f"bench safety: verdicts on {frames} frames of the default cell (seed {seed}), {res['machine']}")
    for n in (1, 3, 6):
        r = res[f"{n}_people"]
        print(f"  {n} people: verdict median {r['verdict_ms']['median']:.3f} ms (p95 {r['verdict_ms']['p95']:.3f}); "
              f"point-distance peer {r['peer_point_distance_ms']['median']:.3f} ms; x{r['ratio_ours_over_peer']}")
    if seen:
        r = res["visible_joints_carved"]
        print(f"  visible joints only, {r['frames']} frames, {r['people_per_frame']} people per frame: verdict with "
              f"depth carving (pooling included) median {r['verdict_ms']['median']:.3f} ms "
              f"(p95 {r['verdict_ms']['p95']:.3f}); whole reach spheres {r['peer_whole_spheres_ms']['median']:.3f} ms; "
              f"x{r['ratio_ours_over_peer']}")
    if "depth_space" in res:
        r = res["depth_space"]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stage_ms_median"].items())
        print(f"  depth-space path, {r['frames']} frames {r['image']}: {r['total_ms']['median']:.1f} ms per frame "
              f"(p95 {r['total_ms']['p95']:.1f}; {stages} ms); skeleton capsules with carving "
              f"{r['skeleton_capsules_carved_ms']:.2f} ms; x{r['ratio_depth_over_capsules']}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res


def _bench_depth_space(seed: int, frames: int, repeat: int, capsule_ms: float) -> dict:
    """Per-stage time of the depth-space distance on the default cell's frames."""
    from hrc_perception.safety.capsules import chain_capsules
    from hrc_perception.safety.depth_space import DepthSpaceParams, depth_space_distance
    from hrc_perception.safety.background_sources import episode_background, frame_depth_m, frame_robot_links
    from hrc_perception.safety.robot_surface import RobotSurface
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun

    run = SynthRun(CellConfig(), seed)
    params, model = DepthSpaceParams(), run.assets.robot
    surface = RobotSurface.from_model(model)
    bg = episode_background(run.episode(0), run.renderer, model, surface, 20, params)
    totals, stages = [], {}
    n = min(frames, run.cfg.sequence.episode_frames)
    for f in run.frames(n):
        kp = f.robot.keypoints
        depth_m = frame_depth_m(f)
        for _ in range(repeat):
            laps: dict[str, float] = {}
            t0 = time.perf_counter()
            posed = surface.posed(frame_robot_links(model, f))
            laps["surface_pose"] = (time.perf_counter() - t0) * 1e3
            caps = chain_capsules(list(kp.names), kp.xyz_cam_m, 0.10)
            depth_space_distance(depth_m, f.K, bg, caps, params, surface=(surface, posed), timings_ms=laps)
            totals.append(time.perf_counter() - t0)
            for k, v in laps.items():
                stages.setdefault(k, []).append(v)
    h, w = f.depth_mm.shape
    total = _ms(totals)
    return {"frames": n, "image": f"{w}x{h}", "total_ms": total,
            "stage_ms_median": {k: round(statistics.median(v), 3) for k, v in stages.items()},
            "skeleton_capsules_carved_ms": capsule_ms,
            "ratio_depth_over_capsules": round(total["median"] / capsule_ms, 1) if capsule_ms else None}
