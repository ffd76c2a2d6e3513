"""Mask R-CNN instance segmentation: model (MobileNetV2 + FPN trunk, per-detection
appearance embedding), predictor, checkpoints, mask crop/paste.

``masks`` is numpy only; the torch modules are imported on first use of their
names, so ``from hrc_perception.segmentation.masks import crop_mask`` stays light.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "build_maskrcnn": "model", "load_mobilenet_v2_trunk": "model", "optimize_for_inference": "model",
    "EMBEDDING_DIM": "model", "learn_embedding": "reid",
    "SegmentationPredictor": "predictor", "Detections": "predictor", "save_checkpoint": "model",
    "load_checkpoint": "model",
    "crop_mask": "masks", "paste_mask": "masks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
