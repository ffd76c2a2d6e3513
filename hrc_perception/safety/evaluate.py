"""The safety monitor's verdicts against ground truth, and the timeline figure.

Ground-truth verdict of a frame: :func:`~hrc_perception.safety.monitor.assess` on the
true skeletons of the robot and every person in the cell (all 17 joints, seen or not),
with the person's and robot's true speeds (finite differences between frames), no input
age and no position uncertainty (Z_d = Z_r = 0: the truth has none); every other
constant as the monitor's.

Figures: the distance error (estimated minus true closest distance, metres, where both
are known), the confusion of levels (estimate x truth), the count of OK verdicts in
frames whose truth is PROTECTIVE_STOP (must be 0), availability (of the frames whose
truth lets the robot move, OK or WARNING, those where the estimate does too, and those
where it also allows at least half the truth's speed_scale), the latency from each true
PROTECTIVE_STOP onset to the first estimated PROTECTIVE_STOP (and to the first
verdict that stops the robot: PROTECTIVE_STOP or UNKNOWN) in camera frames and in
milliseconds (receive time of that status minus the onset frame's stamp), and the
camera-to-verdict latency (for each frame whose people skeletons reached the monitor,
its first status's receive time minus the frame's stamp).

The occlusion floor (:func:`occlusion_floor`): the distance error left with perfect
skeletons of what the camera sees, i.e. what no skeleton estimator can remove.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hrc_perception.safety.capsules import chain_capsules, closest_pair
from hrc_perception.safety.carving import PooledDepth, closest_pair_carved
from hrc_perception.safety.monitor import (LEVEL_NAMES, OK, PROTECTIVE_STOP, UNKNOWN, WARNING, MonitorParams,
                                           PersonState, RobotState, Verdict, assess, person_speeds_mps)


@dataclass
class StatusRecord:
    """One received SafetyStatus: stamp_s (the camera frame it is about), recv_s (when it
    arrived), level, min_distance_m (NaN if none), data_age_s, speed_scale (NaN: not read)."""
    stamp_s: float
    recv_s: float
    level: int
    min_distance_m: float
    data_age_s: float
    speed_scale: float = float("nan")


@dataclass
class TruthFrame:
    """Ground truth of one camera frame: stamp_s, robot joint names and positions [J, 3]
    (camera frame, metres), people {id: COCO-17 positions [17, 3]}, and which of each
    person's joints the camera sees, people_visible {id: bool [17]} (empty: not known)."""
    stamp_s: float
    robot_names: list[str]
    robot_m: np.ndarray
    people: dict[int, np.ndarray]
    people_visible: dict[int, np.ndarray] = field(default_factory=dict)


def _velocity(prev: np.ndarray | None, cur: np.ndarray, dt: float) -> np.ndarray | None:
    """Per-joint velocity [J, 3] (m/s) between two frames, or None without a previous one."""
    if prev is None or dt <= 0 or prev.shape != cur.shape:
        return None
    return (cur - prev) / dt


def _max_speed(prev: np.ndarray | None, cur: np.ndarray, dt: float) -> float | None:
    vel = _velocity(prev, cur, dt)
    v = np.linalg.norm(vel, axis=1) if vel is not None else np.zeros(0)
    v = v[np.isfinite(v)]
    return float(v.max()) if len(v) else None


def ground_truth_verdicts(frames: list[TruthFrame], params: MonitorParams,
                          rule_age_s: float | None = None) -> dict[float, Verdict]:
    """stamp_s -> ground-truth verdict of every frame (frames in time order): each body
    part at its true speed (no speed floors; the standard's speeds in the first frame,
    which has no previous one), no position uncertainty.

    rule_age_s: instead, the monitor's own rule on perfect data (the true skeletons, every
    joint, with the monitor's speed floors and position uncertainty, inputs rule_age_s
    old): what a monitor with perfect perception at that latency allows, the ceiling of
    availability that no estimator can pass."""
    if rule_age_s is None:
        truth_params = replace(params, separation=replace(params.separation, human_uncertainty_m=0.0,
                                                          robot_uncertainty_m=0.0),
                               min_human_speed_mps=0.0, min_arm_speed_mps=0.0, require_tracks=False)
        age = 0.0
    else:
        truth_params, age = replace(params, require_tracks=False), float(rule_age_s)
    out, prev = {}, None
    for f in sorted(frames, key=lambda f: f.stamp_s):
        dt = f.stamp_s - prev.stamp_s if prev is not None else 0.0
        robot = RobotState(f.robot_names, f.robot_m, f.stamp_s,
                           _max_speed(prev.robot_m if prev else None, f.robot_m, dt) or 0.0)
        people = []
        for i, p in sorted(f.people.items()):
            vel = _velocity(prev.people.get(i) if prev else None, p, dt)
            body, arm = person_speeds_mps(vel, params.body) if vel is not None else (None, None)
            people.append(PersonState(i, p, f.stamp_s, body, arm))
        out[f.stamp_s] = assess(robot, people, f.stamp_s + age, truth_params, people_stamp_s=f.stamp_s)
        prev = f
    return out


def availability_ceiling(truth: dict[float, Verdict], rule: dict[float, Verdict]) -> float | None:
    """Of the frames where the truth lets the robot move, the share where the monitor's
    own rule on perfect data (``ground_truth_verdicts(..., rule_age_s=...)``) does too;
    None without such frames."""
    moves = [s for s, t in truth.items() if t.level in (OK, WARNING)]
    return sum(rule[s].level in (OK, WARNING) for s in moves) / len(moves) if moves else None


def _onsets(truth: dict[float, Verdict]) -> list[float]:
    """Stamps where the truth enters PROTECTIVE_STOP."""
    stamps = sorted(truth)
    return [s for k, s in enumerate(stamps)
            if truth[s].level == PROTECTIVE_STOP and (k == 0 or truth[stamps[k - 1]].level != PROTECTIVE_STOP)]


def compare(statuses: list[StatusRecord], truth: dict[float, Verdict], frame_stamps: list[float],
            people_stamps: list[float]) -> dict:
    """Figures of the module doc. statuses in receive order; frame_stamps: every camera
    frame's stamp (for latencies in frames); people_stamps: the stamps of the people
    skeletons the monitor received (the frames whose verdict latency is measured)."""
    by_stamp = {}
    for s in statuses:
        by_stamp.setdefault(round(s.stamp_s, 6), s)          # the first status about each frame
    truth_r = {round(k, 6): v for k, v in truth.items()}
    paired = [(s, truth_r[k]) for k, s in by_stamp.items() if k in truth_r]
    names = [LEVEL_NAMES[k] for k in sorted(LEVEL_NAMES)]
    confusion = {f"{LEVEL_NAMES[e]}|{LEVEL_NAMES[t]}": 0 for e in LEVEL_NAMES for t in LEVEL_NAMES}
    for s, t in paired:
        confusion[f"{LEVEL_NAMES[s.level]}|{LEVEL_NAMES[t.level]}"] += 1
    d_err = np.array([s.min_distance_m - t.min_distance_m for s, t in paired
                      if np.isfinite(s.min_distance_m) and np.isfinite(t.min_distance_m)])
    latency = np.array([(by_stamp[k].recv_s - by_stamp[k].stamp_s) * 1e3
                        for k in {round(p, 6) for p in people_stamps} if k in by_stamp])
    frames = np.array(sorted(frame_stamps))
    onset_rows = []
    for onset in _onsets(truth):
        row = {"onset_s": onset}
        for key, stops in (("stop", (PROTECTIVE_STOP,)), ("stop_or_unknown", (PROTECTIVE_STOP, UNKNOWN))):
            hit = next((s for s in statuses if s.stamp_s >= onset - 1e-9 and s.level in stops), None)
            row[f"{key}_latency_ms"] = None if hit is None else (hit.recv_s - onset) * 1e3
            row[f"{key}_latency_frames"] = None if hit is None else int(
                np.searchsorted(frames, hit.stamp_s - 1e-9) - np.searchsorted(frames, onset - 1e-9))
        onset_rows.append(row)

    def med(values):
        v = [x for x in values if x is not None]
        return float(np.median(v)) if v else None

    may_move = [(s, t) for s, t in paired if t.level in (OK, WARNING)]
    moved = [(s, t) for s, t in may_move if s.level in (OK, WARNING)]
    return {
        "frames_with_truth": len(paired), "levels": names, "confusion_estimate_vs_truth": confusion,
        "truth_moves_frames": len(may_move),
        "availability": len(moved) / len(may_move) if may_move else None,
        "availability_at_half_speed": (sum(s.speed_scale >= 0.5 * t.speed_scale for s, t in moved) / len(may_move)
                                       if may_move else None),
        "ok_while_truth_stop": confusion[f"{LEVEL_NAMES[OK]}|{LEVEL_NAMES[PROTECTIVE_STOP]}"],
        "distance_pairs": int(len(d_err)),
        "distance_error_median_m": float(np.median(np.abs(d_err))) if len(d_err) else None,
        "distance_error_p95_m": float(np.percentile(np.abs(d_err), 95)) if len(d_err) else None,
        "distance_bias_median_m": float(np.median(d_err)) if len(d_err) else None,
        "camera_to_verdict_latency_ms_median": float(np.median(latency)) if len(latency) else None,
        "camera_to_verdict_latency_ms_p95": float(np.percentile(latency, 95)) if len(latency) else None,
        "truth_stop_onsets": len(onset_rows),
        "stop_latency_ms_median": med(r["stop_latency_ms"] for r in onset_rows),
        "stop_latency_frames_median": med(r["stop_latency_frames"] for r in onset_rows),
        "stop_or_unknown_latency_ms_median": med(r["stop_or_unknown_latency_ms"] for r in onset_rows),
        "onsets": onset_rows,
    }


def occlusion_floor(frames: list[TruthFrame], depths: dict[float, PooledDepth], params: MonitorParams) -> dict:
    """The closest distance the monitor computes from perfect skeletons of what the camera
    sees (each person's true joints where ``people_visible``, the others unknown: reach
    spheres), carved by the frame's depth (``depths``: stamp_s -> pooled depth) and with
    whole spheres, against the true closest distance (every true joint); frames with a person of fewer than
    ``min_person_joints`` visible joints (UNKNOWN) or without depth or visibility are left
    out. Figures: frames, the absolute error's median and p95 with carving, its median
    with whole spheres, and the frames where carving is farther than the truth by more
    than 1 cm (must be 0: carving never crosses a real limb)."""
    carved_err, whole_err, over = [], [], 0
    for f in frames:
        depth = depths.get(f.stamp_s)
        if depth is None or not f.people or set(f.people_visible) != set(f.people):
            continue
        seen = {i: np.where(f.people_visible[i][:, None], p, np.nan) for i, p in f.people.items()}
        if any(np.isfinite(p).all(axis=1).sum() < params.min_person_joints for p in seen.values()):
            continue
        robot = chain_capsules(f.robot_names, f.robot_m, params.robot_link_radius_m)
        true_m = min(closest_pair(params.body.capsules(p), robot).distance_m for p in f.people.values())
        carved = min(closest_pair_carved(*params.body.cover(p), robot, depth, params.carve_margin_m).distance_m
                     for p in seen.values())
        whole = min(closest_pair(params.body.capsules(p), robot).distance_m for p in seen.values())
        carved_err.append(carved - true_m)
        whole_err.append(whole - true_m)
        over += int(carved > true_m + 0.01)
    c, w = np.abs(carved_err), np.abs(whole_err)
    return {"frames": len(c),
            "distance_error_median_m": float(np.median(c)) if len(c) else None,
            "distance_error_p95_m": float(np.percentile(c, 95)) if len(c) else None,
            "whole_spheres_distance_error_median_m": float(np.median(w)) if len(w) else None,
            "frames_farther_than_truth": over}


def timeline_figure(statuses: list[StatusRecord], truth: dict[float, Verdict], path) -> None:
    """Two panels over time: the closest distance (estimate, truth) with the truth's S_p,
    and the level (estimate, truth)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not statuses:
        raise ValueError("no safety status to plot")
    t0 = min(s.stamp_s for s in statuses)
    ts = sorted(truth)
    fig, (ax_d, ax_l) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax_d.plot([s.stamp_s - t0 for s in statuses], [s.min_distance_m for s in statuses], ".", ms=3,
              color="tab:blue", label="estimated closest distance")
    ax_d.plot([t - t0 for t in ts], [truth[t].min_distance_m for t in ts], "-", color="black", lw=1.2,
              label="true closest distance")
    ax_d.plot([t - t0 for t in ts], [truth[t].separation_m for t in ts], "--", color="tab:red", lw=1,
              label="true S_p")
    ax_d.set_ylabel("distance (m)")
    ax_d.legend(loc="upper right", fontsize=8)
    ax_d.grid(alpha=0.3)
    ax_l.step([s.stamp_s - t0 for s in statuses], [s.level for s in statuses], where="post", color="tab:blue",
              label="estimate")
    ax_l.step([t - t0 for t in ts], [truth[t].level for t in ts], where="post", color="black", lw=1.2,
              linestyle=":", label="truth")
    ax_l.set_yticks(sorted(LEVEL_NAMES), [LEVEL_NAMES[k] for k in sorted(LEVEL_NAMES)], fontsize=8)
    ax_l.set_xlabel("time (s, camera stamps)")
    ax_l.legend(loc="upper right", fontsize=8)
    ax_l.grid(alpha=0.3)
    fig.suptitle("Speed and separation monitoring: estimate vs ground truth")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
