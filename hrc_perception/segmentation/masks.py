"""Instance masks as (region of interest, crop) pairs and back: numpy only.

The ROI is the tight pixel extent of the mask, in the convention of
``sensor_msgs/RegionOfInterest``: x_offset = x (column of the first mask pixel),
y_offset = y (row), width = w, height = h (pixels, so x + w is one past the last
column). An empty mask has the ROI (0, 0, 0, 0) and a [0, 0] crop.
"""
from __future__ import annotations

import numpy as np


def crop_mask(mask: np.ndarray) -> tuple[int, int, int, int, np.ndarray]:
    """Tight crop of a mask.

    mask: [H, W] bool (any dtype: nonzero = inside).
    Returns (x, y, w, h, crop) with crop = mask[y:y+h, x:x+w] as a new [h, w] bool
    array; (0, 0, 0, 0, [0, 0] array) when the mask is empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
    mask = mask.astype(bool, copy=False)
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return 0, 0, 0, 0, np.zeros((0, 0), bool)
    cols = np.flatnonzero(mask.any(axis=0))
    y, x = int(rows[0]), int(cols[0])
    h, w = int(rows[-1]) - y + 1, int(cols[-1]) - x + 1
    return x, y, w, h, mask[y:y + h, x:x + w].copy()


def paste_mask(crop: np.ndarray, x: int, y: int, H: int, W: int) -> np.ndarray:
    """Full-image mask [H, W] bool with ``crop`` ([h, w], nonzero = inside) placed with
    its top-left pixel at column x, row y; the inverse of :func:`crop_mask`.

    The crop must lie inside the image (ValueError otherwise: a crop that does not
    fit means the ROI and the image size disagree). An empty crop gives an empty mask.
    """
    crop = np.asarray(crop)
    if crop.ndim != 2:
        raise ValueError(f"crop must be [h, w], got shape {crop.shape}")
    x, y, H, W = int(x), int(y), int(H), int(W)
    if H < 0 or W < 0:
        raise ValueError(f"image size must be non-negative, got H={H}, W={W}")
    out = np.zeros((H, W), bool)
    h, w = crop.shape
    if h == 0 or w == 0:
        return out
    if x < 0 or y < 0 or x + w > W or y + h > H:
        raise ValueError(f"crop {w}x{h} at (x={x}, y={y}) does not fit in a {W}x{H} image")
    out[y:y + h, x:x + w] = crop.astype(bool, copy=False)
    return out
