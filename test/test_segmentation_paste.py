"""Mask paste: the inverse of the mask head's training target (torchvision's own
``project_masks_on_boxes``), against hand-made masks, and inside the model."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torchvision.models.detection.roi_heads import (paste_masks_in_image,  # noqa: E402
                                                    project_masks_on_boxes)

from hrc_perception.segmentation.model import build_maskrcnn  # noqa: E402
from hrc_perception.segmentation.paste import paste_masks  # noqa: E402

M = 28


def _target_grid(mask: "torch.Tensor", box_xyxy) -> "torch.Tensor":
    """[1, 1, M, M] mask-head training target of ``mask`` [H, W] over the box."""
    box = torch.tensor([box_xyxy], dtype=torch.float32)
    return project_masks_on_boxes(mask[None].float(), box, torch.zeros(1, dtype=torch.int64), M)[:, None]


def _iou(a, b) -> float:
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize("x,y,w,h", [(10, 7, 5, 11), (3, 20, 17, 4), (30, 5, 9, 9), (0, 0, 6, 3), (2, 2, 45, 36),
                                     (49, 39, 1, 1)])
def test_rectangle_survives_training_target_and_paste_exactly(x, y, w, h):
    gt = torch.zeros(40, 50, dtype=torch.bool)
    gt[y:y + h, x:x + w] = True
    box = (x, y, x + w, y + h)   # pixel edges, as the training boxes
    pasted = paste_masks(_target_grid(gt, box), torch.tensor([box], dtype=torch.float32), (40, 50))
    assert pasted.shape == (1, 1, 40, 50)
    assert torch.equal(pasted[0, 0] > 0.5, gt)


def test_thin_slanted_bar_round_trip_beats_whole_pixel_paste():
    """A bolt-like bar, 4 px wide and 16 px long, at 30 degrees."""
    yy, xx = np.mgrid[0:40, 0:50]
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    u, v = (xx - 25) * c + (yy - 20) * s, -(xx - 25) * s + (yy - 20) * c
    gt = torch.from_numpy((np.abs(u) <= 8) & (np.abs(v) <= 2))
    rows, cols = torch.nonzero(gt, as_tuple=True)
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    grid = _target_grid(gt, box)
    boxes = torch.tensor([box], dtype=torch.float32)
    ours = _iou(paste_masks(grid, boxes, (40, 50))[0, 0] > 0.5, gt)
    torchvision_paste = _iou(paste_masks_in_image(grid, boxes, (40, 50))[0, 0] > 0.5, gt)
    assert ours > 0.95
    assert ours > torchvision_paste + 0.05


def test_zero_outside_the_box_and_degenerate_boxes():
    grid = torch.ones(4, 1, M, M)
    boxes = torch.tensor([[10.4, 5.6, 20.2, 15.0],     # fractional edges
                          [30.0, 30.0, 30.0, 35.0],    # zero width
                          [60.0, 50.0, 70.0, 60.0],    # outside the image
                          [-5.0, -3.0, 4.0, 2.0]])     # clipped by the image corner
    out = paste_masks(grid, boxes, (40, 50))
    assert out.shape == (4, 1, 40, 50)
    inside = torch.zeros(40, 50, dtype=torch.bool)
    inside[6:15, 11:21] = True                         # rows 5.6 <= r < 15, columns 10.4 <= c < 20.2
    assert torch.equal(out[0, 0] > 0, inside)
    torch.testing.assert_close(out[0, 0][inside], torch.ones(int(inside.sum())))
    assert not out[1].any() and not out[2].any()
    corner = torch.zeros(40, 50, dtype=torch.bool)
    corner[0:2, 0:4] = True
    assert torch.equal(out[3, 0] > 0, corner)
    assert paste_masks(torch.zeros(0, 1, M, M), torch.zeros(0, 4), (40, 50)).shape == (0, 1, 40, 50)


def test_model_pastes_its_masks_with_paste_masks():
    torch.manual_seed(0)
    model = build_maskrcnn(["a", "b"], input_short_side=96, pretrained_trunk=False).eval()
    model.roi_heads.score_thresh = 0.0
    model.roi_heads.detections_per_img = 5
    image = torch.rand(3, 72, 96, generator=torch.Generator().manual_seed(3))
    grids = {}
    model.roi_heads.mask_predictor.register_forward_hook(lambda mod, inp, out: grids.update(logits=out))
    with torch.inference_mode():
        out = model([image])[0]
    n = len(out["boxes"])
    assert n > 0
    probs = grids["logits"].sigmoid()[torch.arange(n), out["labels"]][:, None]
    torch.testing.assert_close(out["masks"], paste_masks(probs, out["boxes"], (72, 96)))
