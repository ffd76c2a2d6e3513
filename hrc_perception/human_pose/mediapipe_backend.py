"""2D COCO-17 joints of one person in a box with BlazePose (the detector and landmark
networks inside the mediapipe 0.10.14 wheel, run by :mod:`hrc_perception.human_pose.blazepose`;
offline, on CPU).

The person's box is grown by ``pad_fraction`` on every side and made square (black
outside the image); an underexposed crop is brightened first (:func:`normalise_exposure`).
In the crop, the landmark network runs on the regions of the detector's best detections
and on an upright region around the box itself; the person kept is the one whose mask
fills the given box best (presence x IoU of its mask box with the box), so that in a
crowd the box's own person is estimated, not the most visible one beside it.
BlazePose's 33 landmarks map to COCO-17 by name; its per-landmark visibility is the joint
confidence.

A person with an identity (a track id) is tracked: the next frame starts from the region
of the previous landmarks' alignment points and the search above runs only when that
region no longer holds the person.
"""
from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from hrc_perception.human_pose.blazepose import (BlazePose, PersonLandmarks, Roi, box_iou, crop_padded, roi_from_box,
                                                 roi_from_detection)

# BlazePose landmark index of each COCO-17 joint (COCO order).
BLAZEPOSE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
TRACK_FIT = 0.3          # a tracked region whose fit to the box is below this is searched again
DARK_P99 = 64            # a crop whose 99th percentile of grey is below this is underexposed (0..255)
TARGET_P99 = 220.0


def square_crop_box(box_xyxy: np.ndarray, pad_fraction: float) -> tuple[int, int, int]:
    """(x0, y0, side) in pixels of the square crop around box_xyxy [4] grown by
    pad_fraction of its size on every side."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * pad_fraction)
    side = max(int(round(side)), 8)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def normalise_exposure(rgb: np.ndarray) -> np.ndarray:
    """rgb [H, W, 3] uint8 as an auto-exposing camera would have taken it when it is
    underexposed (99th percentile of grey < DARK_P99): gain to put that percentile at
    TARGET_P99, gamma 0.5 for the shadows, a 3x3 median against the amplified noise.
    Other images are returned unchanged."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 16384)))     # ~16k pixels sampled
    p99 = float(np.percentile(rgb[::step, ::step].mean(axis=2), 99))
    if p99 >= DARK_P99:
        return rgb
    x = np.clip(rgb.astype(np.float32) / max(p99, 1.0) * (TARGET_P99 / 255.0), 0.0, 1.0) ** 0.5
    return cv2.medianBlur((x * 255.0).astype(np.uint8), 3)


class MediapipeBackend:
    """BlazePose on person boxes. ImportError with the install hint when mediapipe or the
    LiteRT interpreter is missing. max_tracked: people tracked at once (the least recently
    seen one is let go first); candidates: detector detections tried per box; threads:
    interpreter threads."""

    name = "mediapipe"

    def __init__(self, pad_fraction: float = 0.25, min_presence: float = 0.5, max_tracked: int = 8,
                 candidates: int = 3, threads: int = 1):
        self.pad_fraction = float(pad_fraction)
        self.max_tracked = int(max_tracked)
        self.candidates = int(candidates)
        self.pose = BlazePose(threads=threads, presence=min_presence, tile_scales=())
        self._tracked: OrderedDict[int, Roi] = OrderedDict()

    def close(self) -> None:
        self._tracked.clear()

    def _fit(self, p: PersonLandmarks, box_xyxy: np.ndarray) -> float:
        if p.presence < self.pose.presence or not np.isfinite(p.mask_box_xyxy).all():
            return 0.0
        return p.presence * float(box_iou(p.mask_box_xyxy, box_xyxy)[0, 0])

    def person(self, rgb: np.ndarray, box_xyxy: np.ndarray, person_id: int | None = None
               ) -> PersonLandmarks | None:
        """BlazePose's person in box_xyxy [4] (pixels) of rgb [H, W, 3] uint8, in the
        crop's pixels (the crop: :func:`square_crop_box`), with the crop's (x0, y0) as
        ``offset``; None when no region holds a person that overlaps the box."""
        x0, y0, side = square_crop_box(box_xyxy, self.pad_fraction)
        crop = normalise_exposure(crop_padded(rgb, x0, y0, side))
        box = np.asarray(box_xyxy, np.float64) - [x0, y0, x0, y0]
        best, best_fit = None, 0.0
        prev = self._tracked.pop(int(person_id), None) if person_id is not None else None
        if prev is not None:
            roi = Roi(prev.centre_px - [x0, y0], prev.side_px, prev.rotation_rad)
            p = self.pose.landmarks(crop, roi)
            best, best_fit = p, self._fit(p, box)
        if best_fit < TRACK_FIT:
            rois = [roi_from_detection(d) for d in self.pose.detect(crop)[:self.candidates]] + [roi_from_box(box)]
            for roi in rois:
                p = self.pose.landmarks(crop, roi)
                fit = self._fit(p, box)
                if fit > best_fit:
                    best, best_fit = p, fit
        if best is None or best_fit <= 0.0:
            return None
        if person_id is not None:
            nxt = self.pose.tracking_roi(best)
            self._tracked[int(person_id)] = Roi(nxt.centre_px + [x0, y0], nxt.side_px, nxt.rotation_rad)
            while len(self._tracked) > self.max_tracked:
                self._tracked.popitem(last=False)
        best.offset_px = np.array([x0, y0], np.float64)
        return best

    def estimate(self, rgb: np.ndarray, box_xyxy: np.ndarray, person_id: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(uv_px [17, 2] in the full image, NaN when no person was found; confidence [17]
        in 0..1) of the person in box_xyxy [4] (pixels) of rgb [H, W, 3] uint8; person_id:
        the person's identity across frames (None: a single image)."""
        p = self.person(rgb, box_xyxy, person_id)
        if p is None:
            return np.full((17, 2), np.nan), np.zeros(17)
        idx = list(BLAZEPOSE_TO_COCO17)
        return p.uv_px[idx] + p.offset_px, np.clip(p.visibility[idx], 0.0, 1.0)
