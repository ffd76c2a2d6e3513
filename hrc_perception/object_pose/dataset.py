"""Network inputs of part instances, and the training augmentation.

:func:`network_inputs` turns one :class:`~hrc_perception.object_pose.data.InstanceCrop`
into the tensors the networks take (the node and the evaluation call it too);
:class:`PoseDataset` does the same for training samples, with augmentation: colour
jitter and pixel noise on the crop, mask erosion or dilation (segmentation errors),
a random subset of the points, noise on each point and a shift of the whole
instance in 3D (cloud and ground truth together).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from hrc_perception.object_pose.data import (InstanceCrop, PartInfo, PoseSample, choose_pixels, crop_points_cam_m,
                                             valid_pixels)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LOSS_MODEL_POINTS = 128
"""Model points per instance in the training loss (ADD-S compares all pairs)."""


def normalised_crop(rgb: np.ndarray) -> np.ndarray:
    """[S, S, 3] uint8 RGB -> [3, S, S] float32, ImageNet mean/std normalised."""
    return ((rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


def network_inputs(crop: InstanceCrop, K: np.ndarray, n_points: int, rng: np.random.Generator | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(crop [3, S, S] float32, points [n_points, 3] float32 camera metres, choose
    [n_points] int64 flat pixel indices) of an instance; None when no mask pixel has
    depth. rng None: evenly spaced pixels (deterministic)."""
    valid = valid_pixels(crop)
    if len(valid) == 0:
        return None
    choose = choose_pixels(valid, n_points, rng)
    return normalised_crop(crop.rgb), crop_points_cam_m(crop, choose, K).astype(np.float32), choose.astype(np.int64)


@dataclass(frozen=True)
class PoseAugment:
    """Training augmentation. jitter: brightness/contrast spread; noise_sigma: pixel
    noise std range (8-bit units); mask_px: erode (negative) or dilate (positive)
    the mask by up to this many crop pixels, with probability mask_p; point_sigma_m:
    std of noise on each point; shift_m: uniform shift of the instance per axis."""
    jitter: float = 0.3
    noise_sigma: tuple[float, float] = (0.0, 6.0)
    mask_px: int = 2
    mask_p: float = 0.5
    point_sigma_m: float = 0.002
    shift_m: float = 0.02


def _augment_crop(crop: InstanceCrop, aug: PoseAugment, rng: np.random.Generator) -> InstanceCrop:
    rgb = crop.rgb.astype(np.float32)
    gain = 1.0 + rng.uniform(-aug.jitter, aug.jitter)
    contrast = 1.0 + rng.uniform(-aug.jitter, aug.jitter)
    rgb = (rgb - rgb.mean()) * contrast + rgb.mean() * gain
    rgb += rng.normal(0.0, rng.uniform(*aug.noise_sigma), rgb.shape)
    mask = crop.mask
    if aug.mask_px > 0 and rng.random() < aug.mask_p:
        k = int(rng.integers(1, aug.mask_px + 1))
        changed = (ndimage.binary_dilation(mask, iterations=k) if rng.random() < 0.5
                   else ndimage.binary_erosion(mask, iterations=k))
        if (changed & (crop.depth_m > 0)).sum() >= 8:
            mask = changed
    return InstanceCrop(np.clip(rgb, 0, 255).astype(np.uint8), crop.depth_m, mask, crop.src_uv_px)


class PoseDataset(torch.utils.data.Dataset):
    """Training/evaluation items of PoseSamples.

    parts: {obj_id: PartInfo}; class index = position of the obj_id in ``obj_ids``
    (the model's class order). An item is a dict of tensors: crop [3, S, S], points
    [N, 3], choose [N], cls [], model_pts [LOSS_MODEL_POINTS, 3], R_gt [3, 3], t_gt [3]
    (metres), symmetric [] bool. augment None: no augmentation, evenly spaced points.
    """

    def __init__(self, samples: list[PoseSample], parts: dict[int, PartInfo], obj_ids: list[int], n_points: int,
                 augment: PoseAugment | None = None, seed: int = 0):
        self.samples = [s for s in samples if s.obj_id in obj_ids]
        self.parts = parts
        self.cls_of = {oid: i for i, oid in enumerate(obj_ids)}
        self.n_points = n_points
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.samples[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.augment is not None else None
        crop = _augment_crop(s.crop, self.augment, rng) if self.augment is not None else s.crop
        crop_arr, points, choose = network_inputs(crop, s.K, self.n_points, rng)
        R, t = s.T_cam_obj[:3, :3].astype(np.float32), s.T_cam_obj[:3, 3].astype(np.float32)
        if self.augment is not None:
            shift = rng.uniform(-self.augment.shift_m, self.augment.shift_m, 3).astype(np.float32)
            points = points + shift + rng.normal(0.0, self.augment.point_sigma_m, points.shape).astype(np.float32)
            t = t + shift
        part = self.parts[s.obj_id]
        pick = (rng.choice(len(part.points_m), LOSS_MODEL_POINTS, replace=False) if rng is not None
                else np.linspace(0, len(part.points_m) - 1, LOSS_MODEL_POINTS).round().astype(np.int64))
        return {"crop": torch.from_numpy(crop_arr), "points": torch.from_numpy(points.astype(np.float32)),
                "choose": torch.from_numpy(choose), "cls": torch.tensor(self.cls_of[s.obj_id]),
                "model_pts": torch.from_numpy(part.points_m[pick]), "R_gt": torch.from_numpy(R),
                "t_gt": torch.from_numpy(t), "symmetric": torch.tensor(part.symmetric)}
