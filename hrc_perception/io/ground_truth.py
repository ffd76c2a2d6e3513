"""Ground-truth sidecar: one JSON line per frame, keyed by header stamp.

Holds everything a frame knows except its images, so later tools (e.g. a
publisher of the package's own message types) can use the ground truth without
re-rendering. One record:
``{"stamp_ns", "index", "episode", "time_s", "K" [3x3], "T_world_cam" [4x4],
"instances": [{"instance_id", "category", "class_name", "class_id"}],
"robot": {"instance_id", "model", "joint_names", "joint_positions_rad",
"T_cam_base" [4x4], "keypoints": KP},
"parts": [{"instance_id", "class_name", "T_cam_obj" [4x4]}],
"humans": [{"instance_id", "keypoints": KP}]}`` with
``KP = {"names", "xyz_cam_m" [J][3], "uv_px" [J][2], "visibility" [J]}``.
Metres, camera optical frame; matrices as nested lists, row-major.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hrc_perception.sim.frame import Frame, Keypoints

DECIMALS = 6


def _r(a) -> list:
    return np.round(np.asarray(a, dtype=np.float64), DECIMALS).tolist()


def _kp(k: Keypoints) -> dict:
    return {"names": list(k.names), "xyz_cam_m": _r(k.xyz_cam_m), "uv_px": _r(k.uv_px),
            "visibility": [int(v) for v in k.visibility]}


def frame_record(frame: Frame) -> dict:
    """JSON-ready ground truth of a frame (floats rounded to 1e-6)."""
    r = frame.robot
    return {
        "stamp_ns": int(frame.stamp_ns), "index": int(frame.index), "episode": int(frame.episode),
        "time_s": round(float(frame.time_s), DECIMALS), "K": _r(frame.K), "T_world_cam": _r(frame.T_world_cam),
        "instances": [{"instance_id": i.instance_id, "category": i.category, "class_name": i.class_name,
                       "class_id": i.class_id} for i in frame.instances],
        "robot": {"instance_id": r.instance_id, "model": r.model, "joint_names": list(r.joint_names),
                  "joint_positions_rad": _r(r.joint_positions_rad), "T_cam_base": _r(r.T_cam_base),
                  "keypoints": _kp(r.keypoints)},
        "parts": [{"instance_id": p.instance_id, "class_name": p.class_name, "T_cam_obj": _r(p.T_cam_obj)}
                  for p in frame.parts],
        "humans": [{"instance_id": h.instance_id, "keypoints": _kp(h.keypoints)} for h in frame.humans],
    }


class GroundTruthWriter:
    """Appends records to ``<path>.partial``; close() renames it to path."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._f = open(self._tmp, "w")

    def add(self, frame: Frame) -> None:
        self._f.write(json.dumps(frame_record(frame), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._f.close()
        os.replace(self._tmp, self.path)


def read_ground_truth(path: Path) -> dict[int, dict]:
    """Records of a sidecar file by stamp_ns. Raises ValueError naming the line on bad JSON."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON record: {e}") from None
            out[rec["stamp_ns"]] = rec
    return out
