"""Person boxes on real images: BlazePose's detector (whole image, and with tiles) beside
the synthetic-trained segmentation model's ``person`` class, scored against ground-truth
boxes.

Per source of a COCO-format json (the image's ``source`` key; one source otherwise):
recall at IoU 0.5 of the people each detector reports (greedy matching, most confident
first), AP50 (pycocotools bbox evaluation, all areas, 100 detections), false persons
(reported, matched to nobody: some may be people the annotation left out), and seconds per
image. On images without people (``negatives``): the persons reported.

A detector is a callable ``rgb [H, W, 3] uint8 -> (boxes_xyxy [N, 4] pixels, scores [N])``
of the people it reports.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np

from hrc_perception.human_pose.blazepose import box_iou, distinct

IOU = 0.5


def blazepose_detector(tile_scales: tuple[float, ...] = (), threads: int = 1):
    """BlazePose's people (:meth:`BlazePose.people`, the models' own thresholds 0.5) as a
    detector: mask boxes, score = detector score x presence."""
    from hrc_perception.human_pose.blazepose import BlazePose
    pose = BlazePose(threads=threads, tile_scales=tile_scales)

    def detect(rgb):
        people = pose.people(rgb)
        return (np.array([p.mask_box_xyxy for p in people]).reshape(-1, 4),
                np.array([p.score for p in people], np.float64))
    return detect


def segmentation_detector(weights: str | Path, score_threshold: float = 0.5):
    """The segmentation model's ``person`` detections above score_threshold."""
    from hrc_perception.segmentation.predictor import SegmentationPredictor
    pred = SegmentationPredictor(weights, score_threshold=score_threshold)
    if "person" not in pred.class_names:
        raise ValueError(f"{weights}: no person class in {pred.class_names}")

    def detect(rgb):
        d = pred.predict(rgb)
        keep = np.array([n == "person" for n in d.class_names], bool)
        return d.boxes_xyxy[keep].astype(np.float64).reshape(-1, 4), d.scores[keep].astype(np.float64)
    return detect


def confirmed_detector(proposals, tile_scales: tuple[float, ...] = (0.6,), threads: int = 1,
                       confirm_iou: float = 0.5, dedup_iou: float = 0.5):
    """Two image models combined: BlazePose's people (with tiles) and every box of
    ``proposals`` (another detector, e.g. :func:`segmentation_detector`) that BlazePose's
    landmark network confirms: run on an upright region around the box, it finds a person
    (presence >= 0.5, the network's own threshold) whose mask box overlaps the box by
    confirm_iou. Boxes: the mask boxes; duplicates (IoU > dedup_iou) merged, the more
    confident kept."""
    from hrc_perception.human_pose.blazepose import BlazePose, roi_from_box
    pose = BlazePose(threads=threads, tile_scales=tile_scales)

    def detect(rgb):
        rgb = np.ascontiguousarray(rgb)
        found = [(p.mask_box_xyxy, p.score) for p in pose.people(rgb)]
        for box, _ in zip(*proposals(rgb)):
            p = pose.landmarks(rgb, roi_from_box(box))
            if (p.presence >= pose.presence and np.isfinite(p.mask_box_xyxy).all()
                    and box_iou(p.mask_box_xyxy, box)[0, 0] >= confirm_iou):
                found.append((p.mask_box_xyxy, p.presence * 0.5))   # below BlazePose's own detections
        boxes = np.array([f[0] for f in found]).reshape(-1, 4)
        scores = np.array([f[1] for f in found], np.float64)
        keep = distinct(boxes, scores, dedup_iou)
        return boxes[keep], scores[keep]
    return detect


def matched(gt_xyxy: np.ndarray, boxes_xyxy: np.ndarray, scores: np.ndarray, iou: float = IOU) -> np.ndarray:
    """[G] bool: ground-truth boxes matched by a detection at IoU >= iou, detections taken
    most confident first, each matching at most one box."""
    hit = np.zeros(len(gt_xyxy), bool)
    if not len(gt_xyxy) or not len(boxes_xyxy):
        return hit
    ious = box_iou(boxes_xyxy, gt_xyxy)
    for i in np.argsort(-scores):
        free = np.where(hit, -1.0, ious[i])
        j = int(np.argmax(free))
        if free[j] >= iou:
            hit[j] = True
    return hit


def _ap50(dataset: dict, results: list[dict], img_ids: list[int]) -> float | None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.params.imgIds = img_ids
        ev.params.catIds = [1]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


def evaluate_person_boxes(detectors: dict, coco_json: Path, negatives: list[Path] = (), log=None) -> dict:
    """Per detector: per source recall / AP50 / false persons / time, and persons reported
    on the negative images (see the module docstring)."""
    from PIL import Image
    coco_json = Path(coco_json)
    data = json.loads(coco_json.read_text())
    person_cat = [c["id"] for c in data["categories"] if c["name"] == "person"]
    if not person_cat:
        raise ValueError(f"{coco_json}: no person category")
    anns = [a for a in data["annotations"] if a["category_id"] == person_cat[0] and not a.get("iscrowd", 0)]
    dataset = {"images": data["images"], "categories": [{"id": 1, "name": "person"}],
               "annotations": [dict(a, category_id=1, area=a.get("area", a["bbox"][2] * a["bbox"][3]))
                               for a in anns]}
    images = [(im, np.asarray(Image.open(coco_json.parent / im["file_name"]).convert("RGB"))) for im in data["images"]]
    negative_images = [np.asarray(Image.open(p).convert("RGB")) for p in negatives]
    out = {}
    for name, detect in detectors.items():
        results, per_source = [], {}
        for im, rgb in images:
            t0 = time.perf_counter()
            boxes, scores = detect(rgb)
            dt = time.perf_counter() - t0
            gt = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                           for a in anns if a["image_id"] == im["id"]]).reshape(-1, 4)
            hit = matched(gt, boxes, scores)
            on_nobody = (box_iou(boxes, gt).max(axis=1) < IOU) if len(gt) else np.ones(len(boxes), bool)
            s = per_source.setdefault(str(im.get("source", "all")),
                                      {"images": [], "people": 0, "found": 0, "false_persons": 0, "seconds": []})
            s["images"].append(im["id"])
            s["people"] += len(gt)
            s["found"] += int(hit.sum())
            s["false_persons"] += int(on_nobody.sum())
            s["seconds"].append(dt)
            results += [{"image_id": im["id"], "category_id": 1, "score": float(sc),
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                        for b, sc in zip(boxes, scores)]
        neg = [len(detect(rgb)[0]) for rgb in negative_images]
        res = {"per_source": {}}
        for src, s in sorted(per_source.items()):
            res["per_source"][src] = {
                "people": s["people"], "recall_iou0.5": s["found"] / s["people"] if s["people"] else None,
                "ap50": _ap50(dataset, [r for r in results if r["image_id"] in s["images"]], s["images"]),
                "false_persons": s["false_persons"], "seconds_per_image_median": float(np.median(s["seconds"]))}
        people = sum(s["people"] for s in per_source.values())
        res["recall_iou0.5"] = sum(s["found"] for s in per_source.values()) / people if people else None
        res["ap50"] = _ap50(dataset, results, [im["id"] for im, _ in images])
        res["negative_images"] = len(negative_images)
        res["persons_on_negative_images"] = int(sum(neg))
        out[name] = res
        if log is not None:
            print(f"  person boxes {name:<28} recall {res['recall_iou0.5']:.2f}  AP50 {res['ap50']:.2f}  "
                  f"{res['persons_on_negative_images']} persons on {len(negative_images)} images without people",
                  file=log)
    return out
