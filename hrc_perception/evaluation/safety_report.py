"""The safety monitor of a recorded run against ground truth (:mod:`hrc_perception.safety.evaluate`):
reads ``safety/status`` (with receive times), ``ground_truth/robot/skeleton``,
``ground_truth/humans/skeletons`` (with visibility), the camera_info and the depth
images from a bag; writes the figures (JSON) and the timeline plot."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader

STATUS = "safety/status"
GT_ROBOT = "ground_truth/robot/skeleton"
GT_HUMANS = "ground_truth/humans/skeletons"
HUMANS = "humans/skeletons"
CAMERA_INFO = "camera/color/camera_info"
DEPTH = "camera/depth/image_raw"


def read_safety_inputs(bag: Path, block_px: int = 8):
    """(statuses: [StatusRecord] in receive order, truth frames: [TruthFrame], camera frame
    stamps [s], stamps of the estimated people skeletons [s], depth images pooled over
    block_px squares {stamp s: PooledDepth})."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from hrc_perception.msg import SafetyStatus, Skeleton, SkeletonArray
    from hrc_perception.ros.convert import camera_info_to_K, depth_to_meters
    from hrc_perception.safety.carving import pool_depth
    from hrc_perception.safety.evaluate import StatusRecord, TruthFrame
    from hrc_perception.sim.frame import VIS_VISIBLE

    types = {STATUS: SafetyStatus, GT_ROBOT: Skeleton, GT_HUMANS: SkeletonArray, HUMANS: SkeletonArray,
             CAMERA_INFO: CameraInfo, DEPTH: Image}
    statuses, robots, humans, visible, frames, people, depths, camera = [], {}, {}, {}, set(), set(), {}, None
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if any(c.topic.endswith("/" + t) for t in types)]
        for conn, t_recv, raw in reader.messages(connections=conns):
            topic = max((t for t in types if conn.topic.endswith("/" + t)), key=len)
            msg = deserialize_message(bytes(raw), types[topic])
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            if topic == STATUS:
                statuses.append(StatusRecord(stamp, t_recv * 1e-9, int(msg.level), float(msg.min_distance_m),
                                             float(msg.data_age_s), float(msg.speed_scale)))
            elif topic == GT_ROBOT:
                robots[stamp] = (list(msg.joint_names), np.array([[p.x, p.y, p.z] for p in msg.positions]))
            elif topic == HUMANS:
                people.add(stamp)
            elif topic == GT_HUMANS:
                humans[stamp] = {int(s.id): np.array([[p.x, p.y, p.z] for p in s.positions]) for s in msg.skeletons}
                visible[stamp] = {int(s.id): np.asarray(s.visibility, np.uint8) == VIS_VISIBLE for s in msg.skeletons
                                  if len(s.visibility) == len(s.positions)}
            elif topic == DEPTH:
                depths[stamp] = pool_depth(depth_to_meters(msg), np.eye(3), block_px)
            else:
                frames.add(stamp)
                camera = camera or camera_info_to_K(msg)
    truth = [TruthFrame(s, robots[s][0], robots[s][1], humans[s], visible[s])
             for s in sorted(set(robots) & set(humans))]
    if camera is not None:     # K from the camera_info, for depth images of its size
        K, w, h = camera
        depths = {s: replace(d, K=K) for s, d in depths.items() if (d.width, d.height) == (w, h)}
    else:
        depths = {}
    return statuses, truth, sorted(frames), sorted(people), depths


def safety_evaluation(bag: Path, out_dir: Path, monitor_values: dict) -> dict | None:
    """Figures of the run (None when the bag has no safety status or no ground truth);
    writes out_dir/safety.json and out_dir/safety_timeline.png."""
    from hrc_perception.safety.evaluate import (availability_ceiling, compare, ground_truth_verdicts, occlusion_floor,
                                                timeline_figure)
    from hrc_perception.safety.monitor import monitor_params

    statuses, truth_frames, frame_stamps, people_stamps, depths = read_safety_inputs(
        bag, int(monitor_values.get("carve_block_px", 8)))
    if not statuses or not truth_frames:
        return None
    params = monitor_params(monitor_values)
    truth = ground_truth_verdicts(truth_frames, params)
    # the depth path judges every camera frame: its latency counts from each of them
    judged = frame_stamps if monitor_values.get("depth_path", "off") != "off" else people_stamps
    res = compare(statuses, truth, frame_stamps, judged)
    res["occlusion_floor"] = occlusion_floor(truth_frames, depths, params)
    res["statuses"] = len(statuses)
    res["data_age_s_median"] = float(np.nanmedian([s.data_age_s for s in statuses]))
    # what the monitor's own rule allows on perfect skeletons, at no age and at this run's median age
    age = res["data_age_s_median"] if np.isfinite(res["data_age_s_median"]) else 0.0
    res["availability_ceiling"] = {
        "rule_at_age_0": availability_ceiling(truth, ground_truth_verdicts(truth_frames, params, rule_age_s=0.0)),
        "rule_at_median_age": availability_ceiling(truth, ground_truth_verdicts(truth_frames, params,
                                                                                rule_age_s=age))}
    timeline_figure(statuses, truth, out_dir / "safety_timeline.png")
    (out_dir / "safety.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def report_lines(res: dict) -> list[str]:
    """Markdown lines of the report's safety section."""
    def f(x, fmt=".3f"):
        return "-" if x is None else format(x, fmt)

    lines = ["## Safety (speed and separation monitoring)", "",
             "Each camera frame's first `safety/status` against the verdict computed from the true skeletons "
             "(module `hrc_perception.safety.evaluate`). Plot: `safety_timeline.png`.", "",
             "| figure | value |", "|---|---|",
             f"| frames with ground truth | {res['frames_with_truth']} |",
             f"| OK while the truth is PROTECTIVE_STOP | {res['ok_while_truth_stop']} |",
             f"| availability: the robot may move where the truth lets it (at >= half its speed) | "
             f"{f(res['availability'], '.2f')} ({f(res['availability_at_half_speed'], '.2f')}) of "
             f"{res['truth_moves_frames']} frames |",
             f"| availability ceiling: the monitor's rule (its speed floors, uncertainty) on the true skeletons, at "
             f"age 0 / at the median data age | {f(res['availability_ceiling']['rule_at_age_0'], '.2f')} / "
             f"{f(res['availability_ceiling']['rule_at_median_age'], '.2f')} |",
             f"| closest distance error, median / p95 (m) | {f(res['distance_error_median_m'])} / "
             f"{f(res['distance_error_p95_m'])} ({res['distance_pairs']} frames) |",
             f"| camera-to-verdict latency, median / p95 (ms) | {f(res['camera_to_verdict_latency_ms_median'], '.0f')}"
             f" / {f(res['camera_to_verdict_latency_ms_p95'], '.0f')} |",
             f"| true PROTECTIVE_STOP onsets | {res['truth_stop_onsets']} |",
             f"| onset to first PROTECTIVE_STOP, median (ms / frames) | {f(res['stop_latency_ms_median'], '.0f')} / "
             f"{f(res['stop_latency_frames_median'], '.0f')} |",
             f"| onset to first PROTECTIVE_STOP or UNKNOWN, median (ms) | "
             f"{f(res['stop_or_unknown_latency_ms_median'], '.0f')} |"]
    floor = res.get("occlusion_floor")
    if floor and floor["frames"]:
        lines += [f"| occlusion floor: distance error from the true visible joints (others unknown), median / p95 "
                  f"(m) | {f(floor['distance_error_median_m'])} / {f(floor['distance_error_p95_m'])} "
                  f"({floor['frames']} frames; whole reach spheres: "
                  f"{f(floor['whole_spheres_distance_error_median_m'])}; farther than the truth: "
                  f"{floor['frames_farther_than_truth']}) |"]
    lines += ["",
             "Levels, estimate (rows) x truth (columns):", "",
             "| | " + " | ".join(res["levels"]) + " |", "|---" * (len(res["levels"]) + 1) + "|"]
    for e in res["levels"]:
        lines.append(f"| {e} | " + " | ".join(str(res["confusion_estimate_vs_truth"][f"{e}|{t}"])
                                              for t in res["levels"]) + " |")
    return lines + [""]
