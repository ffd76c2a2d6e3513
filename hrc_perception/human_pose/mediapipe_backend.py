"""2D COCO-17 joints of one person from an RGB crop with BlazePose (mediapipe 0.10.14,
the `pose_landmark_full` model that ships inside the wheel; runs offline on CPU).

The person's box is grown by ``pad_fraction`` on every side and made square (the
detector inside BlazePose expects context around the body); parts outside the image
are filled with black. BlazePose's 33 landmarks map to COCO-17 by name; its
per-landmark visibility is the joint confidence.

A person with an identity (a track id) gets BlazePose in tracking mode, one instance per
person: after a confident frame the landmark model starts from the previous landmarks'
region of the crop and the person detector is skipped (the crop is re-centred on the
person every frame, so that region stays put). Without an identity, or for a person
not seen before, the detector runs.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

# BlazePose landmark index of each COCO-17 joint (COCO order).
BLAZEPOSE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def square_crop_box(box_xyxy: np.ndarray, pad_fraction: float) -> tuple[int, int, int]:
    """(x0, y0, side) in pixels of the square crop around box_xyxy [4] grown by
    pad_fraction of its size on every side."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * pad_fraction)
    side = max(int(round(side)), 8)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_padded(rgb: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """rgb [H, W, 3] uint8 cut to the square [y0, y0 + side) x [x0, x0 + side), black outside."""
    h, w = rgb.shape[:2]
    out = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


class MediapipeBackend:
    """BlazePose on person crops. ImportError with the install hint when mediapipe is
    missing. model_complexity 1 (`full`) is the only model the wheel ships. max_tracked:
    people tracked at once (the least recently seen one's tracker is closed first)."""

    name = "mediapipe"

    def __init__(self, pad_fraction: float = 0.25, min_detection_confidence: float = 0.5, max_tracked: int = 8):
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as e:
            raise ImportError("the mediapipe backend needs mediapipe 0.10.14 "
                              "(pip install --no-deps -r requirements-mediapipe.txt)") from e
        self.pad_fraction = float(pad_fraction)
        self.max_tracked = int(max_tracked)
        self._mp_pose = mp_pose
        self._min_detection = float(min_detection_confidence)
        self._pose = mp_pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                  min_detection_confidence=self._min_detection)
        self._tracked: OrderedDict[int, object] = OrderedDict()

    def close(self) -> None:
        self._pose.close()
        for pose in self._tracked.values():
            pose.close()
        self._tracked.clear()

    def _tracker(self, person_id: int):
        """The tracking-mode BlazePose of one person (made on first use; landmarks not
        smoothed here: the estimator smooths in 3D)."""
        pose = self._tracked.pop(person_id, None)
        if pose is None:
            pose = self._mp_pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=False,
                                      enable_segmentation=False, min_detection_confidence=self._min_detection)
            while len(self._tracked) >= self.max_tracked:
                self._tracked.popitem(last=False)[1].close()
        self._tracked[person_id] = pose
        return pose

    def finds_person_in(self, rgb: np.ndarray) -> bool:
        """BlazePose on a whole image rgb [H, W, 3] uint8, no crop (the benchmark's peer):
        whether it found a person (one at most)."""
        return self._pose.process(np.ascontiguousarray(rgb)).pose_landmarks is not None

    def estimate(self, rgb: np.ndarray, box_xyxy: np.ndarray, person_id: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(uv_px [17, 2] in the full image, NaN when no person was found; confidence [17]
        in 0..1) of the person in box_xyxy [4] (pixels) of rgb [H, W, 3] uint8; person_id:
        the person's identity across frames (None: a single image)."""
        x0, y0, side = square_crop_box(box_xyxy, self.pad_fraction)
        crop = crop_padded(rgb, x0, y0, side)
        pose = self._pose if person_id is None else self._tracker(int(person_id))
        result = pose.process(crop)
        if result.pose_landmarks is None:
            return np.full((17, 2), np.nan), np.zeros(17)
        lm = result.pose_landmarks.landmark
        uv = np.array([[x0 + lm[i].x * side - 0.5, y0 + lm[i].y * side - 0.5] for i in BLAZEPOSE_TO_COCO17])
        conf = np.clip(np.array([lm[i].visibility for i in BLAZEPOSE_TO_COCO17]), 0.0, 1.0)
        return uv, conf
