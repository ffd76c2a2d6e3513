"""The DenseFusion model file: both networks, their build arguments and the model card.

A model file is one ``torch.save`` dict (loads with ``weights_only=True``)::

    format      "hrc_perception.object_pose/1"
    build       num_classes, embed_dim, crop_px, n_points, refine_iterations
    posenet     PoseNet state dict (fp16 floats)
    refiner     PoseRefiner state dict (fp16 floats), or absent before the refiner stage
    model_card  JSON types; ``classes`` (part names, in class-index order),
                ``diameters_m`` and ``symmetric`` per class
    part_points_m  optional: per class, [M, 3] float32 points on the part's surface
                (model frame, metres), for pose verification (:mod:`.verify`)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hrc_perception.io.model_file import float_state, half_state, read_model_file, write_model_file
from hrc_perception.object_pose.network import EMBED_DIM, PoseNet, PoseRefiner

MODEL_FORMAT = "hrc_perception.object_pose/1"


@dataclass(frozen=True)
class BuildConfig:
    """num_classes: part classes; crop_px: crop side; n_points: points per instance;
    refine_iterations: refiner passes at inference (0: main network only)."""
    num_classes: int
    embed_dim: int = EMBED_DIM
    crop_px: int = 64
    n_points: int = 128
    refine_iterations: int = 2

    def build(self) -> tuple[PoseNet, PoseRefiner]:
        return PoseNet(self.num_classes, self.embed_dim), PoseRefiner(self.num_classes, self.embed_dim)

    def same_weights_as(self, other: "BuildConfig") -> bool:
        """Whether the weights of one build fit the other and mean the same: equal
        classes, embedding and crop side (points per instance and refiner passes
        do not change the weights)."""
        return (self.num_classes, self.embed_dim, self.crop_px) == (other.num_classes, other.embed_dim, other.crop_px)


def save_model(path: str | Path, build: BuildConfig, posenet: PoseNet, refiner: PoseRefiner | None,
               model_card: dict, part_points_m: list[np.ndarray] | None = None) -> None:
    """Write the model file atomically (weights in fp16). part_points_m: per class
    (``build.num_classes`` of them), [M, 3] surface points, model frame, metres."""
    blob = {"format": MODEL_FORMAT, "build": dict(build.__dict__), "posenet": half_state(posenet.state_dict()),
            "model_card": model_card}
    if refiner is not None:
        blob["refiner"] = half_state(refiner.state_dict())
    if part_points_m is not None:
        if len(part_points_m) != build.num_classes:
            raise ValueError(f"{len(part_points_m)} part point sets for {build.num_classes} classes")
        blob["part_points_m"] = [torch.from_numpy(np.asarray(p, np.float32).reshape(-1, 3)) for p in part_points_m]
    write_model_file(path, blob)


def load_part_points(path: str | Path) -> list[np.ndarray] | None:
    """Per class, the [M, 3] float32 surface points (model frame, metres) a model
    file carries, or None for a file written without them."""
    blob = read_model_file(path, MODEL_FORMAT, "object pose", "cpu")
    points = blob.get("part_points_m")
    return None if points is None else [p.numpy() for p in points]


def load_model(path: str | Path, map_location: str | torch.device = "cpu"
               ) -> tuple[BuildConfig, PoseNet, PoseRefiner | None, dict]:
    """(build, posenet, refiner or None, model_card) of a model file, in eval mode, fp32.
    FileNotFoundError / ValueError with the reason for a missing or foreign file."""
    blob = read_model_file(path, MODEL_FORMAT, "object pose", map_location)
    build = BuildConfig(**blob["build"])
    card = blob["model_card"]
    if len(card.get("classes", [])) != build.num_classes:
        raise ValueError(f"{path}: model card lists {len(card.get('classes', []))} classes, the network has "
                         f"{build.num_classes}")
    posenet, refiner = build.build()
    posenet.load_state_dict(float_state(blob["posenet"]))
    if "refiner" in blob:
        refiner.load_state_dict(float_state(blob["refiner"]))
    else:
        refiner = None
    posenet.eval()
    if refiner is not None:
        refiner.eval()
    return build, posenet, refiner, card
