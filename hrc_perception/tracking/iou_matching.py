"""Intersection over union of boxes and the IoU matching cost (1 - IoU)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def iou_matrix(boxes_tlwh: np.ndarray, candidates_tlwh: np.ndarray) -> np.ndarray:
    """Pairwise IoU [M, N] of boxes [M, 4] and candidates [N, 4] (all ``tlwh``, pixels).

    Boxes are continuous rectangles ``[x, x + w] x [y, y + h]``; a zero-area union gives 0.
    """
    a = np.asarray(boxes_tlwh, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(candidates_tlwh, dtype=np.float64).reshape(1, -1, 4)
    tl = np.maximum(a[..., :2], b[..., :2])
    br = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    wh = np.clip(br - tl, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou(tlwh: np.ndarray, candidates_tlwh: np.ndarray) -> np.ndarray:
    """IoU [N] of one box ``tlwh`` [4] with candidates [N, 4] (all ``tlwh``, pixels)."""
    return iou_matrix(np.asarray(tlwh).reshape(1, 4), candidates_tlwh)[0]


def iou_cost(tracks: Sequence, detections: Sequence, track_indices: Sequence[int] | None = None,
             detection_indices: Sequence[int] | None = None) -> np.ndarray:
    """Cost matrix [len(track_indices), len(detection_indices)] of ``1 - IoU``.

    Tracks give their current (predicted) box through ``to_tlwh()``; detections through
    their ``tlwh`` attribute. Indices default to all tracks / all detections.
    """
    if track_indices is None:
        track_indices = range(len(tracks))
    if detection_indices is None:
        detection_indices = range(len(detections))
    if len(track_indices) == 0 or len(detection_indices) == 0:
        return np.ones((len(track_indices), len(detection_indices)))
    boxes = np.stack([tracks[i].to_tlwh() for i in track_indices])
    cand = np.stack([detections[j].tlwh for j in detection_indices])
    return 1.0 - iou_matrix(boxes, cand)
