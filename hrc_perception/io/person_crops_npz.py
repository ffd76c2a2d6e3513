"""Person depth crops + COCO-17 skeletons for the SPDH human pose backend.

Layout of ``out_dir`` (published atomically on ``close()``)::

    {chunk:06d}.npz     up to ``chunk_crops`` crops each
    index.json          chunk files, crop counts, crop size, keypoint names

One crop per person of a frame with at least ``min_visible_joints`` visible joints,
cut around the ground-truth instance mask's box
(:func:`hrc_perception.human_pose.crops.person_crop`, the sensor depth, the person's
own pixels). Arrays of a chunk of N crops (camera optical frame, metres):

=================  ====================  ==========================================
key                shape, dtype          meaning
=================  ====================  ==========================================
xyz_m              [N,S,S,3] float16     the crop's XYZ image (0 = not the person)
K_crop             [N,3,3] float64       intrinsics of the S x S crop
ref_m              [N,3] float32         reference point (median of the person's points)
box                [N,3] int32           x0, y0, side of the crop in the full image
joints_m           [N,17,3] float32      the person's joints (camera frame)
vis                [N,17] int8           0 outside / 1 occluded / 2 visible
frame_index        [N] int64             ``Frame.index``
episode            [N] int64
instance_id        [N] int32             the person's identity
keypoint_names     [17] str
=================  ====================  ==========================================
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from hrc_perception.io.atomic import DatasetWriter, atomic_write_bytes, json_bytes, npz_bytes
from hrc_perception.io.coco import COCO17_KEYPOINTS
from hrc_perception.sim.frame import ClassInfo, Frame


class PersonCropsWriter(DatasetWriter):
    """Writes chunked person-crop ``.npz`` files (see module doc). classes, parts: unused
    (the signature of the other writers). crop_size: S. chunk_crops: crops per file."""

    def __init__(self, out_dir: str | os.PathLike, classes: Sequence[ClassInfo] = (), parts: Sequence = (),
                 crop_size: int = 128, chunk_crops: int = 200, min_visible_joints: int = 6):
        super().__init__(out_dir)
        if chunk_crops < 1 or crop_size < 8:
            raise ValueError("chunk_crops must be >= 1 and crop_size >= 8")
        self.crop_size = int(crop_size)
        self.chunk_crops = int(chunk_crops)
        self.min_visible_joints = int(min_visible_joints)
        self.dir = self.work
        self._rows: list[dict] = []
        self._chunks: list[dict] = []

    def _add(self, frame: Frame) -> None:
        from hrc_perception.human_pose.crops import person_crop
        from hrc_perception.human_pose.evaluate import person_boxes
        for h in frame.humans:
            if tuple(h.keypoints.names) != tuple(COCO17_KEYPOINTS):
                raise ValueError(f"person {h.instance_id}: keypoints {tuple(h.keypoints.names)} are not COCO-17")
        depth_m = frame.depth_mm.astype(np.float64) / 1000.0
        for h, mask, box in person_boxes(frame, self.min_visible_joints):
            kp = h.keypoints
            crop = person_crop(depth_m, frame.K, mask, box, self.crop_size)
            if crop is None:
                continue
            self._rows.append({"xyz_m": crop.xyz_m.astype(np.float16), "K_crop": crop.K_crop,
                               "ref_m": crop.ref_m.astype(np.float32), "box": np.array(crop.box, np.int32),
                               "joints_m": kp.xyz_cam_m.astype(np.float32), "vis": kp.visibility.astype(np.int8),
                               "frame_index": frame.index, "episode": frame.episode,
                               "instance_id": h.instance_id})
            if len(self._rows) == self.chunk_crops:
                self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        arrays = {k: np.stack([np.asarray(r[k]) for r in self._rows]) for k in self._rows[0]}
        arrays["frame_index"] = arrays["frame_index"].astype(np.int64)
        arrays["episode"] = arrays["episode"].astype(np.int64)
        arrays["instance_id"] = arrays["instance_id"].astype(np.int32)
        arrays["keypoint_names"] = np.array(COCO17_KEYPOINTS, dtype=np.str_)
        name = f"{len(self._chunks):06d}.npz"
        atomic_write_bytes(self.dir / name, npz_bytes(arrays))
        self._chunks.append({"file": name, "num_crops": len(self._rows),
                             "episodes": sorted({int(r["episode"]) for r in self._rows})})
        self._rows = []

    def _finalize(self) -> None:
        self._flush()
        index = {"chunks": self._chunks, "num_crops": sum(c["num_crops"] for c in self._chunks),
                 "crop_size": self.crop_size, "min_visible_joints": self.min_visible_joints,
                 "keypoint_names": list(COCO17_KEYPOINTS)}
        atomic_write_bytes(self.dir / "index.json", json_bytes(index, indent=1))
