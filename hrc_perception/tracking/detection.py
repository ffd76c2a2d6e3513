"""One detection in one image: the tracker's input."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    """A detected box with its class and appearance.

    Attributes:
        tlwh: [4] float64, ``(top-left x, top-left y, width, height)`` in pixels;
            width and height finite and > 0 (ValueError otherwise).
        score: detector confidence, 0..1.
        class_id: class index; with ``Tracker(per_class=True)`` a track only ever
            matches detections of its own class.
        feature: [D] float32 appearance descriptor (e.g. the segmentation network's pooled
            RoIAlign features), or None when the detector gives none. Need not be
            normalised; a zero or non-finite vector is treated as None.
        instance_id: id of the instance this came from (``Instance`` in the message), so
            a track can name the instance that last updated it; 0 when unknown.
    """

    tlwh: np.ndarray
    score: float = 1.0
    class_id: int = 0
    feature: np.ndarray | None = None
    instance_id: int = 0

    def __post_init__(self) -> None:
        self.tlwh = np.asarray(self.tlwh, dtype=np.float64).reshape(4)
        x, y, w, h = self.tlwh.tolist()
        if not all(map(math.isfinite, (x, y, w, h))) or w <= 0 or h <= 0:
            raise ValueError(f"Detection needs a finite tlwh box with w, h > 0, got {self.tlwh}")
        self.score = float(self.score)
        self.class_id = int(self.class_id)
        self.instance_id = int(self.instance_id)
        if self.feature is not None:
            f = np.asarray(self.feature, dtype=np.float32).reshape(-1)
            if f.size == 0 or not np.isfinite(f).all() or not f.any():
                f = None
            self.feature = f

    def to_tlbr(self) -> np.ndarray:
        """Box as ``(min x, min y, max x, max y)`` [4], pixels (``xyxy``)."""
        t = self.tlwh.copy()
        t[2:] += t[:2]
        return t

    def to_xyah(self) -> np.ndarray:
        """Box as ``(centre x, centre y, aspect w / h, height)`` [4]: the Kalman measurement."""
        t = self.tlwh.copy()
        t[:2] += t[2:] / 2
        t[2] /= t[3]
        return t
