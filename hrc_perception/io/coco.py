"""COCO instance-segmentation + keypoint export of synthetic frames.

Layout of ``out_dir`` (published atomically on ``close()``)::

    images/{frame.index:06d}.jpg    RGB, JPEG quality 95
    annotations.json                COCO: images, categories, annotations

``file_name`` is relative to ``out_dir`` (use ``out_dir`` as the image root).

Beyond standard COCO: ``images[*]`` carry ``episode`` and ``stamp_ns``;
``annotations[*]`` carry ``track_id`` (the instance id, stable within an
episode) and ``episode`` so (episode, track_id) is an identity across frames.
Robot and person annotations carry ``keypoints`` [x, y, v] * J (full-resolution
pixels, pixel centres at integers as in ``hrc_perception.geometry``; v is the
COCO visibility 0/1/2 and x = y = 0 where v = 0) and ``num_keypoints``.
``segmentation`` is compressed RLE (pycocotools), ``bbox`` [x, y, w, h] the
pixel extent of the visible mask (w = x_max - x_min + 1) and ``area`` its pixel
count. Instances with no visible pixel get no annotation.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from hrc_perception.io.atomic import DatasetWriter, atomic_write_bytes, json_bytes, jpeg_bytes
from hrc_perception.skeletons import COCO17_BONES, COCO17_NAMES, chain_bones
from hrc_perception.sim.frame import (CATEGORY_PERSON, CATEGORY_ROBOT, ClassInfo, Frame,
                                      Keypoints, VIS_OUTSIDE)

COCO17_KEYPOINTS = COCO17_NAMES
COCO17_SKELETON: tuple[tuple[int, int], ...] = tuple((a + 1, b + 1) for a, b in COCO17_BONES)
"""The COCO person skeleton as COCO files write it: 1-based keypoint index pairs."""

KEYPOINT_DECIMALS = 2


def category_entry(info: ClassInfo) -> dict:
    """COCO category dict of a class; robot and person classes with keypoint names
    get ``keypoints`` and ``skeleton`` (COCO-17 for people, a chain for robots)."""
    cat = {"id": info.class_id, "name": info.name, "supercategory": info.category}
    if info.keypoints:
        if info.category == CATEGORY_PERSON:
            if len(info.keypoints) != len(COCO17_KEYPOINTS):
                raise ValueError(f"person class {info.name!r} has {len(info.keypoints)} "
                                 f"keypoints, COCO-17 needs {len(COCO17_KEYPOINTS)}")
            skeleton = [list(p) for p in COCO17_SKELETON]
        else:
            skeleton = [[a + 1, b + 1] for a, b in chain_bones(len(info.keypoints))]
        cat["keypoints"] = list(info.keypoints)
        cat["skeleton"] = skeleton
    return cat


def encode_mask(mask: np.ndarray) -> tuple[dict, int, list[float]]:
    """Compressed RLE (JSON-ready: ``counts`` as str), area (pixels) and bbox
    [x, y, w, h] of a boolean mask [H, W]."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    bbox = [float(b) for b in mask_utils.toBbox(rle)]
    area = int(np.count_nonzero(mask))
    segmentation = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
    return segmentation, area, bbox


def keypoints_entry(kp: Keypoints) -> tuple[list, int]:
    """COCO ``keypoints`` [x1, y1, v1, x2, ...] (x, y rounded to 2 decimals, 0 where
    v = 0) and ``num_keypoints`` (joints with v > 0)."""
    out: list = []
    vis = np.asarray(kp.visibility).astype(int)
    for (u, v), flag in zip(np.asarray(kp.uv_px, dtype=np.float64), vis):
        if flag == VIS_OUTSIDE:
            out += [0, 0, 0]
        else:
            out += [round(float(u), KEYPOINT_DECIMALS), round(float(v), KEYPOINT_DECIMALS), int(flag)]
    return out, int(np.count_nonzero(vis > 0))


def _frame_keypoints(frame: Frame) -> dict[int, Keypoints]:
    """instance_id -> skeleton of the robot and the people of a frame."""
    out = {frame.robot.instance_id: frame.robot.keypoints} if frame.robot is not None else {}
    out.update({h.instance_id: h.keypoints for h in frame.humans})
    return out


class CocoWriter(DatasetWriter):
    """Writes a COCO dataset of the frames given to :meth:`add` (see module doc).

    out_dir: dataset directory (replaced as a whole on close). classes: the run's
    classes (categories). parts: the part models (unused here; same signature as
    the other writers). Image ids are ``frame.index`` and must be unique.
    """

    def __init__(self, out_dir: str | os.PathLike, classes: Sequence[ClassInfo],
                 parts: Sequence = (), jpeg_quality: int = 95):
        super().__init__(out_dir)
        self.classes = list(classes)
        self.categories = [category_entry(c) for c in sorted(self.classes, key=lambda c: c.class_id)]
        self._keypoint_classes = {c.class_id for c in self.classes if c.keypoints}
        self._class_ids = {c.class_id for c in self.classes}
        self.jpeg_quality = jpeg_quality
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self._image_ids: set[int] = set()
        (self.work / "images").mkdir()

    def _add(self, frame: Frame) -> None:
        if frame.index in self._image_ids:
            raise ValueError(f"COCO image id {frame.index} (frame.index) is already used")
        self._image_ids.add(frame.index)
        file_name = f"images/{frame.index:06d}.jpg"
        atomic_write_bytes(self.work / file_name, jpeg_bytes(frame.rgb, self.jpeg_quality))
        h, w = frame.instance_mask.shape
        self.images.append({"id": frame.index, "file_name": file_name, "width": w, "height": h,
                            "episode": frame.episode, "stamp_ns": int(frame.stamp_ns)})
        skeletons = _frame_keypoints(frame)
        for inst in frame.instances:
            ann = self._annotation(frame, inst, skeletons.get(inst.instance_id))
            if ann is not None:
                self.annotations.append(ann)

    def _annotation(self, frame: Frame, inst, kp: Keypoints | None) -> dict | None:
        """Annotation dict of one instance, or None when it has no visible pixel."""
        mask = frame.instance_mask == inst.instance_id
        if not mask.any():
            return None
        if inst.class_id not in self._class_ids:
            raise ValueError(f"instance {inst.instance_id} has unknown class_id {inst.class_id}")
        segmentation, area, bbox = encode_mask(mask)
        ann = {"id": len(self.annotations) + 1, "image_id": frame.index,
               "category_id": inst.class_id, "segmentation": segmentation, "area": area,
               "bbox": bbox, "iscrowd": 0, "track_id": inst.instance_id, "episode": frame.episode}
        if inst.category in (CATEGORY_ROBOT, CATEGORY_PERSON) and kp is not None:
            ann["keypoints"], ann["num_keypoints"] = keypoints_entry(kp)
        elif inst.class_id in self._keypoint_classes:
            n = len(next(c for c in self.classes if c.class_id == inst.class_id).keypoints)
            ann["keypoints"], ann["num_keypoints"] = [0] * (3 * n), 0
        return ann

    def _finalize(self) -> None:
        doc = {"info": {"description": "hrc_perception synthetic work cell", "version": "1.0"},
               "licenses": [], "images": self.images, "categories": self.categories,
               "annotations": self.annotations}
        atomic_write_bytes(self.work / "annotations.json", json_bytes(doc))
