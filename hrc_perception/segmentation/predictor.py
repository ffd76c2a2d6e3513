"""Segmentation predictor: numpy RGB in, :class:`Detections` out.

Loads :func:`~hrc_perception.segmentation.model.save_checkpoint` files (re-exported
here with ``load_checkpoint``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hrc_perception.engines import as_module
from hrc_perception.segmentation.model import (CHECKPOINT_FORMAT, EMBEDDING_DIM, build_maskrcnn,  # noqa: F401
                                               load_checkpoint, optimize_for_inference, save_checkpoint)

MASK_THRESHOLD = 0.5
DEFAULT_SHORT_SIDE = 320


@dataclass
class Detections:
    """Instances found in one image of H x W pixels (N of them, by decreasing score).

    boxes_xyxy: [N, 4] float32, pixels, pixel edges (x2 = last column + 1).
    labels: [N] int64, 1-based index into the predictor's class_names.
    class_names: N names, ``class_names[i]`` of detection i.
    scores: [N] float32 in [0, 1].
    masks: [N, H, W] bool, at the input's full resolution (probability > 0.5).
    embeddings: [N, D] float32, unit L2 norm (D = 128): appearance descriptors.
    """
    boxes_xyxy: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    scores: np.ndarray
    masks: np.ndarray
    embeddings: np.ndarray
    image_size_hw: tuple[int, int] = field(default=(0, 0))

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, height: int, width: int, embedding_dim: int = EMBEDDING_DIM) -> "Detections":
        """No detection, arrays of the right shapes and dtypes."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), [], np.zeros(0, np.float32),
                   np.zeros((0, height, width), bool), np.zeros((0, embedding_dim), np.float32),
                   (height, width))


class SegmentationPredictor:
    """Mask R-CNN instance segmentation of RGB images, one forward pass per image.

    weights_path: a :func:`save_checkpoint` file; None builds an untrained model
        (random heads and trunk, fixed seed; for tests and plumbing) for class_names.
    class_names: expected classes; with weights, they must equal the checkpoint's
        (ValueError otherwise); None takes the checkpoint's.
    device: 'cpu' or 'cuda[:k]'. score_threshold: keep detections with score >
        it (0..1). max_instances: at most this many detections per image (>= 1).
    input_short_side: short side (pixels) the model resizes to; None: the
        checkpoint's (320 for an untrained model).
    rpn_proposals: region proposals kept after the RPN's NMS (twice as many before
        it); None: the model's (150). More proposals find more objects in clutter, at
        the cost of the box and mask heads' time.
    optimize: fold BatchNorm into convolutions and use channels-last weights
        (same outputs, ~3x faster trunk on CPU).
    engine: what runs the trunk and feature pyramid (:mod:`hrc_perception.engines`:
        torch, onnxruntime, openvino; compiled on the first image of each size); the
        proposals, heads and masks stay in torch.
    """

    def __init__(self, weights_path: str | Path | None = None, class_names: list[str] | None = None,
                 device: str = "cpu", score_threshold: float = 0.5, max_instances: int = 50,
                 input_short_side: int | None = None, optimize: bool = True, engine: str = "torch",
                 rpn_proposals: int | None = None):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if weights_path is None:
            if not class_names:
                raise ValueError("class_names are required when no weights_path is given")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = build_maskrcnn(list(class_names), input_short_side or DEFAULT_SHORT_SIDE,
                                       pretrained_trunk=False)
            self.model_card: dict = {"class_names": list(model.hrc_config["class_names"]), "untrained": True}
        else:
            model, self.model_card = load_checkpoint(weights_path)
            trained = list(model.hrc_config["class_names"])
            if class_names is not None and list(class_names) != trained:
                raise ValueError(f"{weights_path}: the weights were trained for classes {trained}, "
                                 f"but class_names {list(class_names)} were given")
        self.class_names: list[str] = list(model.hrc_config["class_names"])
        self.model = model
        self.default_rpn_proposals = int(model.rpn._post_nms_top_n["testing"])
        self.set_options(score_threshold, max_instances, input_short_side or model.hrc_config["input_short_side"],
                         rpn_proposals)
        model.eval().to(self.device)
        if optimize:
            optimize_for_inference(model)
        model.backbone = as_module(model.backbone, engine)
        self.engine = engine
        self.embedding_dim = int(model.roi_heads.embedding.dim)

    def set_options(self, score_threshold: float, max_instances: int, input_short_side: int,
                    rpn_proposals: int | None = None) -> None:
        """Detection threshold (0..1), most instances per image (>= 1), the short
        side the image is resized to (pixels, >= 32) and the RPN proposals after NMS
        (>= 1; None keeps the current number); ValueError otherwise."""
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if int(max_instances) < 1:
            raise ValueError(f"max_instances must be >= 1, got {max_instances}")
        if int(input_short_side) < 32:
            raise ValueError(f"input_short_side must be >= 32 px, got {input_short_side}")
        if rpn_proposals is not None and int(rpn_proposals) < 1:
            raise ValueError(f"rpn_proposals must be >= 1, got {rpn_proposals}")
        self.score_threshold = float(score_threshold)
        self.max_instances = int(max_instances)
        if rpn_proposals is not None:
            self.model.rpn._post_nms_top_n["testing"] = int(rpn_proposals)
            self.model.rpn._pre_nms_top_n["testing"] = 2 * int(rpn_proposals)
        self.rpn_proposals = int(self.model.rpn._post_nms_top_n["testing"])
        self.input_short_side = int(input_short_side)
        self.model.transform.min_size = (self.input_short_side,)
        self.model.transform.max_size = max(self.model.transform.max_size, -(-self.input_short_side * 16 // 9))
        self.model.roi_heads.score_thresh = self.score_threshold
        self.model.roi_heads.detections_per_img = self.max_instances

    @staticmethod
    def _check_image(rgb) -> np.ndarray:
        if not isinstance(rgb, np.ndarray):
            raise ValueError(f"image must be a numpy array [H, W, 3] uint8, got {type(rgb).__name__}")
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"image must be [H, W, 3] RGB, got shape {rgb.shape}")
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ValueError(f"image is empty (shape {rgb.shape})")
        if rgb.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {rgb.dtype}")
        rgb = np.ascontiguousarray(rgb)
        return rgb if rgb.flags.writeable else rgb.copy()   # torch.from_numpy wants writable memory

    def predict(self, rgb: np.ndarray) -> Detections:
        """Instances of an RGB image rgb [H, W, 3] uint8 (ValueError on an empty image
        or a wrong shape / dtype); an image with nothing gives an empty Detections."""
        rgb = self._check_image(rgb)
        h, w = rgb.shape[:2]
        with torch.inference_mode():
            x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div_(255.0)
            out = self.model([x])[0]
            keep = out["scores"] > self.score_threshold
            if not bool(keep.any()):
                return Detections.empty(h, w, self.embedding_dim)
            labels = out["labels"][keep].cpu().numpy().astype(np.int64)
            return Detections(
                boxes_xyxy=out["boxes"][keep].float().cpu().numpy(),
                labels=labels,
                class_names=[self.class_names[k - 1] for k in labels],
                scores=out["scores"][keep].float().cpu().numpy(),
                masks=(out["masks"][keep, 0] > MASK_THRESHOLD).cpu().numpy(),
                embeddings=out["embeddings"][keep].float().cpu().numpy(),
                image_size_hw=(h, w))

    def embed_boxes(self, rgb: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Appearance descriptors [N, D] float32 (unit norm) of given boxes [N, 4] (xyxy,
        pixels) in rgb [H, W, 3] uint8: the same descriptor :meth:`predict` gives its own
        detections, for boxes from elsewhere (another detector, ground truth)."""
        rgb = self._check_image(rgb)
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        with torch.inference_mode():
            x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div_(255.0)
            images, targets = self.model.transform([x], [{"boxes": torch.from_numpy(boxes).to(self.device)}])
            features = self.model.backbone(images.tensors)
            heads = self.model.roi_heads
            reps = heads.box_representations(features, [targets[0]["boxes"]], images.image_sizes)
            return heads.embedding(reps).float().cpu().numpy()

