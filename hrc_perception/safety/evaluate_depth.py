"""The depth-space path alone against ground truth, on synthetic episodes (no ROS, no network).

Per episode: the background is learned from ``empty_frames`` renders of the same cell
with nobody in it (the robot moving, other sensor noise: a recording of the empty cell),
the robot's pixels masked by its link surfaces; then every ``frame_step``-th frame with
its people is judged by :func:`~hrc_perception.safety.monitor.assess_depth` with the true
joint positions and camera-to-robot pose (what joint_states and the calibrated extrinsic
give), inputs ``age_s`` old. The same frames without people are judged too (the empty
cell: the truth is OK throughout).

Figures (as :func:`~hrc_perception.safety.evaluate.compare`, from per-frame pairs):
confusion estimate x truth, OK while the truth says PROTECTIVE_STOP (must be 0; and of those,
the frames where the truth's closest person shows no joint to the camera),
availability (of the frames where the truth lets the robot move, those where the
estimate does, and those where it also allows at least half the truth's speed), the
distance error where the truth's closest human joint is visible to the camera and
where it is hidden, the estimate minus the distance to the body surface the camera
sees (noise-free render depth of the people's pixels: the estimate must not be farther
than what it sees, beyond the sensor's noise), the availability ceiling (of the frames where the truth lets the
robot move, the share where the monitor's own rule on perfect skeletons does: with its
speed floors and position uncertainty, at age 0 and at ``age_s``: the share a skeleton
estimate can reach at best), the empty cell's OK/WARNING fraction, the frames with a part in
the robot's gripper, and each stage's time per frame (milliseconds, this machine).
"""
from __future__ import annotations

import time
from dataclasses import replace
import numpy as np

from hrc_perception.safety.background_sources import episode_background, frame_depth_m, frame_robot_links
from hrc_perception.geometry import mask_points_cam_m
from hrc_perception.safety.capsules import point_segment_distances
from hrc_perception.safety.depth_space import DepthSpaceParams, depth_space_distance
from hrc_perception.safety.evaluate import TruthFrame, availability_ceiling, ground_truth_verdicts
from hrc_perception.safety.monitor import (ARM_SPEED_MPS, LEVEL_NAMES, OK, PROTECTIVE_STOP, WARNING, MonitorParams,
                                           RobotState, assess_depth, robot_capsules)
from hrc_perception.safety.robot_surface import RobotSurface
from hrc_perception.skeletons import COCO17_NAMES

MOVES = (OK, WARNING)


def evaluate_depth_path(run, episodes: list[int], monitor: MonitorParams, params: DepthSpaceParams,
                        empty_frames: int = 30, frame_step: int = 1, age_s: float = 0.0, skeletons: bool = False,
                        log=print) -> dict:
    """Figures of the module doc over the given episodes of a SynthRun. skeletons: each
    person's true visible joints explain their foreground (perfect skeletons of what the
    camera sees: the bound skeletons can give), at the person's true speed (finite
    differences of the true joints over the step) raised to the monitor's floors."""
    explain_body = replace(monitor.body, cover_unknown=False)
    model = run.assets.robot
    surface = RobotSurface.from_model(model)
    fps = run.cfg.sequence.fps
    pairs, empty_levels, errors = [], [], {"visible": [], "hidden": [], "surface": []}
    truth_all, rule_now, rule_at_age, carried, ok_stop_unseen = {}, {}, {}, 0, 0
    stage_ms = {"depth_space": [], "surface_pose": [], "verdict": []}
    for e in episodes:
        ep = run.episode(e)
        t0 = time.perf_counter()
        bg = episode_background(ep, run.renderer, model, surface, empty_frames, params)
        log(f"episode {e}: background from {empty_frames} empty frames ({bg.known_fraction:.0%} of pixels known) "
            f"in {time.perf_counter() - t0:.1f} s")
        truth_frames, estimates = [], {}
        n = run.cfg.sequence.episode_frames
        carried += sum(any(tr.phase_at(k / fps)[0] == "carried" for tr in ep.robot_script.part_tracks)
                       for k in range(0, n, frame_step))
        prev_robot, prev_people = None, {}
        for k in range(0, n, frame_step):
            speed = 0.0
            for people_in in (True, False):         # the same instant, the robot's speed from the first
                f = ep.frame(k, run.renderer, people=people_in)
                kp = f.robot.keypoints
                stamp = f.stamp_ns / 1e9
                if people_in and prev_robot is not None:
                    speed = float(np.linalg.norm(kp.xyz_cam_m - prev_robot, axis=1).max() * fps / frame_step)
                t = time.perf_counter()
                posed = surface.posed(frame_robot_links(model, f))
                t1 = time.perf_counter()
                caps = robot_capsules(list(kp.names), kp.xyz_cam_m, monitor)
                people, speeds = [], {}
                if skeletons and people_in:
                    for hgt in f.humans:
                        xyz = hgt.keypoints.xyz_cam_m
                        seen = np.where((hgt.keypoints.visibility == 2)[:, None], xyz, np.nan)
                        if np.isfinite(seen).all(axis=1).sum() >= monitor.min_person_joints:
                            people.append((hgt.instance_id, explain_body.cover(seen)[0]))
                        prev = prev_people.get(hgt.instance_id)
                        v = (float(np.linalg.norm(xyz - prev, axis=1).max() * fps / frame_step)
                             if prev is not None else ARM_SPEED_MPS)
                        speeds[hgt.instance_id] = max(v, monitor.min_human_speed_mps, monitor.min_arm_speed_mps)
                res = depth_space_distance(frame_depth_m(f), f.K, bg, caps, params, surface=(surface, posed),
                                           people=people)
                t2 = time.perf_counter()
                robot = RobotState(list(kp.names), kp.xyz_cam_m, stamp, speed, "cam")
                v = assess_depth(robot, res, stamp, "cam", stamp + age_s, monitor, person_speed_mps=speeds)
                t3 = time.perf_counter()
                if people_in:      # not timed: the evaluation's own check
                    d_surface = visible_surface_distance_m(f, caps)
                    if np.isfinite(d_surface) and np.isfinite(res.distance_m):
                        errors["surface"].append(res.distance_m - d_surface)
                if not people_in:
                    empty_levels.append(v.level)
                    continue
                stage_ms["surface_pose"].append((t1 - t) * 1e3)
                stage_ms["depth_space"].append((t2 - t1) * 1e3)
                stage_ms["verdict"].append((t3 - t2) * 1e3)
                estimates[stamp] = v
                truth_frames.append(TruthFrame(stamp, list(kp.names), kp.xyz_cam_m,
                                               {h.instance_id: h.keypoints.xyz_cam_m for h in f.humans},
                                               {h.instance_id: h.keypoints.visibility == 2 for h in f.humans}))
                prev_robot = kp.xyz_cam_m
                prev_people = {hgt.instance_id: hgt.keypoints.xyz_cam_m for hgt in f.humans}
        truth = ground_truth_verdicts(truth_frames, monitor)
        truth_all |= truth
        rule_now |= ground_truth_verdicts(truth_frames, monitor, rule_age_s=0.0)
        rule_at_age |= ground_truth_verdicts(truth_frames, monitor, rule_age_s=age_s)
        visible = {tf.stamp_s: tf.people_visible for tf in truth_frames}
        for s, v in estimates.items():
            tv = truth[s]
            pairs.append((v, tv))
            if v.level == OK and tv.level == PROTECTIVE_STOP and not np.any(visible[s].get(tv.closest_human_id, False)):
                ok_stop_unseen += 1
            if np.isfinite(v.min_distance_m) and np.isfinite(tv.min_distance_m) and tv.closest_human_id:
                seen = visible[s].get(tv.closest_human_id)
                j = COCO17_NAMES.index(tv.closest_human_joint) if tv.closest_human_joint in COCO17_NAMES else None
                key = "visible" if seen is not None and j is not None and seen[j] else "hidden"
                errors[key].append(v.min_distance_m - tv.min_distance_m)
        log(f"episode {e}: {len(estimates)} frames judged")
    out = summarise(pairs, empty_levels, errors, stage_ms)
    out["frames_part_carried"] = int(carried)
    out["ok_while_truth_stop_person_unseen"] = ok_stop_unseen
    out["availability_ceiling"] = {"rule_at_age_0": availability_ceiling(truth_all, rule_now),
                                   "rule_at_eval_age": availability_ceiling(truth_all, rule_at_age)}
    return out


def visible_surface_distance_m(frame, robot_caps) -> float:
    """The distance (metres) from the robot's capsules to the nearest body surface point
    the camera sees: every person pixel of the frame's noise-free render depth,
    back-projected (NaN without one). The depth path's distance must not exceed it by more
    than the sensor's noise: farther would be optimistic about a body it sees."""
    ids = [h.instance_id for h in frame.humans]
    m = np.isin(frame.instance_mask, ids) & (frame.depth_clean_m > 0) & np.isfinite(frame.depth_clean_m)
    if not m.any() or not len(robot_caps):
        return float("nan")
    _, _, pts = mask_points_cam_m(m, frame.depth_clean_m, frame.K)
    d = point_segment_distances(pts[:, None], robot_caps.a[None], robot_caps.b[None]) - robot_caps.radius[None]
    return float(d.min())


def summarise(pairs, empty_levels, errors, stage_ms) -> dict:
    confusion = {f"{LEVEL_NAMES[a]}|{LEVEL_NAMES[b]}": 0 for a in LEVEL_NAMES for b in LEVEL_NAMES}
    for v, t in pairs:
        confusion[f"{LEVEL_NAMES[v.level]}|{LEVEL_NAMES[t.level]}"] += 1
    may_move = [(v, t) for v, t in pairs if t.level in MOVES]
    moved = [(v, t) for v, t in may_move if v.level in MOVES]
    half = [(v, t) for v, t in moved if v.speed_scale >= 0.5 * t.speed_scale]

    def stats(values):
        a = np.abs(np.asarray(values, dtype=np.float64))
        return {"frames": int(len(a)), "abs_median_m": float(np.median(a)) if len(a) else None,
                "abs_p95_m": float(np.percentile(a, 95)) if len(a) else None,
                "bias_median_m": float(np.median(values)) if len(a) else None}
    return {
        "frames": len(pairs), "confusion_estimate_vs_truth": confusion,
        "ok_while_truth_stop": confusion[f"{LEVEL_NAMES[OK]}|{LEVEL_NAMES[PROTECTIVE_STOP]}"],
        "truth_moves_frames": len(may_move),
        "availability": len(moved) / len(may_move) if may_move else None,
        "availability_at_half_speed": len(half) / len(may_move) if may_move else None,
        "distance_error_visible": stats(errors["visible"]), "distance_error_hidden": stats(errors["hidden"]),
        "distance_minus_visible_surface": stats(errors["surface"]) | {
            "max_m": float(np.max(errors["surface"])) if errors["surface"] else None,
            "frames_farther_than_2cm": int(np.sum(np.asarray(errors["surface"]) > 0.02))},
        "empty_cell_frames": len(empty_levels),
        "empty_cell_moves": (sum(lv in MOVES for lv in empty_levels) / len(empty_levels)) if empty_levels else None,
        "stage_ms_median": {k: float(np.median(v)) if v else None for k, v in stage_ms.items()},
    }

