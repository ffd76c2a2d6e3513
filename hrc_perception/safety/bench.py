"""`hrc-perception bench safety`: time of one verdict (goal <= 2 ms per frame).

People of the default cell (true COCO-17 skeletons) around its robot, 1, 3 and 6 of
them per verdict. Timed: :func:`~hrc_perception.safety.monitor.assess` (capsules,
closest pairs, S_p, levels); in the same run the peer: the closest joint-to-joint
point distance (scipy cdist of the joints, no capsules), the cheapest distance a
monitor could use.
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

    params = MonitorParams()
    robots, persons = [], []
    for f in SynthRun(CellConfig(), seed).frames(frames):
        kp = f.robot.keypoints
        robots.append(RobotState(list(kp.names), kp.xyz_cam_m, 0.0, 0.5))
        persons += [h.keypoints.xyz_cam_m for h in f.humans]
    rng = np.random.default_rng(seed)
    res = {"frames": frames, "seed": seed, "repeat": repeat}
    for n in (1, 3, 6):
        t_ours, t_peer = [], []
        for robot in robots:
            people = [PersonState(i + 1, persons[k], 0.0, 0.3) for i, k in enumerate(rng.integers(len(persons), size=n))]
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
    res |= {"goal_ms": 2.0, "command": "hrc-perception " + " ".join(sys.argv[1:]), "machine": machine_line("cpu")}
    print(f"bench safety: verdicts on {frames} frames of the default cell (seed {seed}), {res['machine']}")
    for n in (1, 3, 6):
        r = res[f"{n}_people"]
        print(f"  {n} people: verdict median {r['verdict_ms']['median']:.3f} ms (p95 {r['verdict_ms']['p95']:.3f}); "
              f"point-distance peer {r['peer_point_distance_ms']['median']:.3f} ms; x{r['ratio_ours_over_peer']}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
    return res
