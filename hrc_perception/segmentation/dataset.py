"""COCO-format instance data (as `hrc-perception synth --dataset coco` writes it) for
Mask R-CNN training, with the augmentations of the training recipe.

A sample is (image [3, H, W] float32 in [0, 1], target) with target the torchvision
detection dict: boxes [N, 4] float32 xyxy pixels, labels [N] int64 (1-based index
into the dataset's class names), masks [N, H, W] uint8.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from pycocotools import mask as mask_utils

from hrc_perception.geometry import masks_to_boxes_xyxy


@dataclass(frozen=True)
class Augment:
    """Training augmentation (each draws from a per-sample generator).

    hflip_p: horizontal flip. scale_range: zoom factor (rescale, then crop or pad back
    to the frame size). jitter:
    brightness / contrast / saturation spread. blur_p, blur_radius_px: Gaussian
    blur. noise_sigma: std of additive pixel noise (8-bit units)."""
    hflip_p: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.25)
    jitter: float = 0.3
    blur_p: float = 0.3
    blur_radius_px: tuple[float, float] = (0.3, 1.5)
    noise_sigma: tuple[float, float] = (0.0, 6.0)


class CocoInstances(torch.utils.data.Dataset):
    """Images and instance annotations of a COCO dataset directory (annotations.json +
    images/). class_names: the model's classes (1-based labels follow this list);
    annotations of other categories are dropped; default: every category in file order."""

    def __init__(self, root: str | Path, class_names: list[str] | None = None, augment: Augment | None = None,
                 seed: int = 0, min_area_px: int = 16):
        self.root = Path(root)
        ann_file = self.root / "annotations.json"
        if not ann_file.is_file():
            raise FileNotFoundError(f"{self.root}: no annotations.json (a `hrc-perception synth --dataset coco` "
                                    f"output's coco/ folder)")
        coco = json.loads(ann_file.read_text())
        cats = sorted(coco["categories"], key=lambda c: c["id"])
        self.class_names = list(class_names) if class_names else [c["name"] for c in cats]
        label_of_cat = {c["id"]: self.class_names.index(c["name"]) + 1 for c in cats if c["name"] in self.class_names}
        self.images = sorted(coco["images"], key=lambda im: im["id"])
        self._anns: dict[int, list] = {im["id"]: [] for im in self.images}
        for a in coco["annotations"]:
            if a["category_id"] in label_of_cat and a["area"] >= min_area_px:
                if not a.get("segmentation"):
                    raise ValueError(f"{ann_file}: annotation {a.get('id')} has no mask (segmentation): Mask R-CNN "
                                     "training needs masks (`eval segmentation` scores box-only data by box AP)")
                self._anns[a["image_id"]].append((label_of_cat[a["category_id"]], a["segmentation"]))
        self.augment = augment
        self.seed = seed
        self.epoch = 0   # set by the trainer: augmentation differs per epoch, reproducibly

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int):
        info = self.images[k]
        img = Image.open(self.root / info["file_name"]).convert("RGB")
        h, w = info["height"], info["width"]
        labels = np.array([lab for lab, _ in self._anns[info["id"]]], dtype=np.int64)
        masks = np.stack([mask_utils.decode(seg) for _, seg in self._anns[info["id"]]]) if len(labels) \
            else np.zeros((0, h, w), np.uint8)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, k])
            img, masks = _augment(img, masks, self.augment, rng)
        boxes, keep = masks_to_boxes_xyxy(masks)
        image = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
        target = {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels[keep]),
                  "masks": torch.from_numpy(masks[keep]), "image_id": int(info["id"])}
        return image, target


def coco_dir(path: str | Path) -> Path:
    """The coco/ folder of a `hrc-perception synth` output, or the given folder itself."""
    path = Path(path)
    return path / "coco" if (path / "coco" / "annotations.json").is_file() else path


def _augment(img: Image.Image, masks: np.ndarray, aug: Augment, rng: np.random.Generator):
    """Flip, rescale, colour jitter, blur and noise; masks follow the geometry."""
    if rng.random() < aug.hflip_p:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        masks = masks[:, :, ::-1]
    s = rng.uniform(*aug.scale_range)
    if abs(s - 1.0) > 1e-3:
        img, masks = _zoom(img, masks, s, rng)
    a = np.asarray(img, dtype=np.float32)
    b, c, sat = 1 + rng.uniform(-aug.jitter, aug.jitter, 3)
    grey = a.mean(axis=2, keepdims=True)
    a = (grey + (a - grey) * sat - 128.0) * c + 128.0
    a = a * b
    if rng.random() < aug.blur_p:
        a = np.asarray(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(*aug.blur_radius_px))), dtype=np.float32)
    a = a + rng.normal(0.0, rng.uniform(*aug.noise_sigma), a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), np.ascontiguousarray(masks)


def _zoom(img: Image.Image, masks: np.ndarray, s: float, rng: np.random.Generator):
    """Rescale by ``s`` about a random point and crop / pad (grey) back to the input's
    W x H, so objects really change size in the frame (the model resizes every image to
    its input short side, which would undo a plain resize)."""
    w, h = img.size
    sw, sh = max(8, round(w * s)), max(8, round(h * s))
    img = img.resize((sw, sh), Image.Resampling.BILINEAR)
    masks = np.stack([np.asarray(Image.fromarray(m).resize((sw, sh), Image.Resampling.NEAREST)) for m in masks]) \
        if len(masks) else np.zeros((0, sh, sw), np.uint8)
    # offset of the scaled image in the output frame: crop when larger, pad when smaller
    ox = int(rng.integers(min(0, w - sw), max(0, w - sw) + 1))
    oy = int(rng.integers(min(0, h - sh), max(0, h - sh) + 1))
    out = Image.new("RGB", (w, h), (124, 116, 104))
    out.paste(img, (ox, oy))
    out_masks = np.zeros((len(masks), h, w), np.uint8)
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + sw, w), min(oy + sh, h)
    out_masks[:, y0:y1, x0:x1] = masks[:, y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return out, out_masks


def collate(batch):
    """torchvision detection batches: (list of images, list of targets)."""
    return tuple(zip(*batch))
