"""`hrc-perception eval segmentation`: COCO box and mask AP of a model on a COCO dataset.

    hrc-perception eval segmentation --weights models/segmentation/model.pt --data SYNTH_OUT [--json FILE]

Metrics (pycocotools): AP (IoU 0.50:0.95), AP50 and AP75 for boxes and masks, and
box and mask AP50 per class; boxes only when the ground truth has no masks. The data must
not be the training data (another seed).
"""
from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from PIL import Image

from hrc_perception.segmentation.dataset import coco_dir


def predictions(predictor, coco: COCO, root: Path, max_images: int | None = None) -> tuple[list[dict], list[float]]:
    """COCO result dicts (bbox and segmentation) of every image, and seconds per image."""
    name_to_cat = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    results, times = [], []
    for img_id in sorted(coco.getImgIds())[:max_images]:
        info = coco.loadImgs(img_id)[0]
        rgb = np.asarray(Image.open(root / info["file_name"]).convert("RGB"))
        t0 = time.perf_counter()
        det = predictor.predict(rgb)
        times.append(time.perf_counter() - t0)
        for box, name, score, mask in zip(det.boxes_xyxy, det.class_names, det.scores, det.masks):
            if name not in name_to_cat:
                continue
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append({"image_id": img_id, "category_id": name_to_cat[name], "score": float(score),
                            "bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": rle})
    return results, times


def annotations_without_mask(coco: COCO) -> int:
    """Number of ground-truth annotations with no (or an empty) ``segmentation``."""
    return sum(not a.get("segmentation") for a in coco.dataset.get("annotations", []))


def coco_metrics(coco: COCO, results: list[dict], img_ids: list[int], iou_types=("bbox", "segm")) -> dict:
    """AP, AP50, AP75 for boxes and masks, and per-class box and mask AP50 (None for a
    class with no ground truth in the data); iou_types: the kinds scored ("bbox" alone
    for ground truth without masks)."""
    out = {}
    if not results:
        for t in iou_types:
            out.update({f"{t}_AP": 0.0, f"{t}_AP50": 0.0, f"per_class_{t}_AP50": {}})
        return out
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
        dt = coco.loadRes(results)
    for iou_type in iou_types:
        ev = COCOeval(coco, dt, iou_type)
        ev.params.imgIds = img_ids
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out[f"{iou_type}_AP"], out[f"{iou_type}_AP50"], out[f"{iou_type}_AP75"] = (float(v) for v in ev.stats[:3])
        # precision [T, R, K, A, M]: IoU 0.5 is T=0, area all A=0, maxDets 100 M=-1
        prec = ev.eval["precision"][0, :, :, 0, -1]
        per = {}
        for k, cat_id in enumerate(ev.params.catIds):
            p = prec[:, k]
            per[coco.cats[int(cat_id)]["name"]] = float(p[p > -1].mean()) if (p > -1).any() else None
        out[f"per_class_{iou_type}_AP50"] = per
    return out


def evaluate(weights: Path, data: Path, device: str = "cpu", score_threshold: float = 0.05,
             max_images: int | None = None, log=None, rpn_proposals: int | None = None,
             input_short_side: int | None = None) -> dict:
    """Metrics of a model file on a COCO dataset directory (or a synth output with coco/).
    Ground truth with boxes but no masks (an annotation without ``segmentation``): box AP
    only, the mask metrics None, ``masks_absent`` true and a note to ``log`` (stderr).
    rpn_proposals, input_short_side: the predictor's (None: the model's)."""
    from hrc_perception.segmentation.predictor import SegmentationPredictor
    root = coco_dir(data)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(root / "annotations.json"))
    no_mask = annotations_without_mask(coco)
    if no_mask:
        print(f"eval segmentation: note: {root / 'annotations.json'}: {no_mask} of {len(coco.dataset['annotations'])} "
              "annotations have no mask (segmentation): box AP only, no mask AP", file=log or sys.stderr)
    predictor = SegmentationPredictor(weights, device=device, score_threshold=score_threshold,
                                      rpn_proposals=rpn_proposals, input_short_side=input_short_side)
    results, times = predictions(predictor, coco, root, max_images)
    img_ids = sorted(coco.getImgIds())[:max_images]
    metrics = coco_metrics(coco, results, img_ids, ("bbox",) if no_mask else ("bbox", "segm"))
    if no_mask:
        metrics.update({"segm_AP": None, "segm_AP50": None, "segm_AP75": None, "per_class_segm_AP50": None})
    metrics["masks_absent"] = bool(no_mask)
    metrics["images"] = len(img_ids)
    metrics["rpn_proposals"] = predictor.rpn_proposals
    metrics["input_short_side"] = predictor.input_short_side
    metrics["seconds_per_image_median"] = float(np.median(times)) if times else None
    return metrics


def print_table(metrics: dict, file=None) -> None:
    file = file or sys.stdout
    print(f"{'metric':<24}{'value':>8}", file=file)
    for k in ("bbox_AP", "bbox_AP50", "bbox_AP75", "segm_AP", "segm_AP50", "segm_AP75"):
        if metrics.get(k) is not None:
            print(f"{k:<24}{metrics[k]:>8.3f}", file=file)
    for kind in ("segm", "bbox"):
        for name, v in (metrics.get(f"per_class_{kind}_AP50") or {}).items():
            label = f"{kind}_AP50 {name}"
            print(f"{label:<24}{v:>8.3f}" if v is not None else f"{label:<24}{'-':>8}", file=file)
    print(f"{'images':<24}{metrics.get('images', 0):>8d}", file=file)
    if metrics.get("masks_absent"):
        print("note: the ground truth has no masks: box AP only", file=file)
