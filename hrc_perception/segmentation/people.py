"""People from a real-trained model beside the segmentation model's: BlazePose's people
(:meth:`hrc_perception.human_pose.blazepose.BlazePose.people`) added to a frame's
detections as ``person`` instances where the segmentation model has no person.

The segmentation model is trained on synthetic people and finds about a third of the people
in real images (README, *People in real images*); BlazePose is trained on real people. A
person only adds: a segmentation person is never removed (a person missed by one model is
still a person), so the tracker and the safety monitor see more people, never fewer.
"""
from __future__ import annotations

import numpy as np

from hrc_perception.human_pose.blazepose import box_iou

SAME_PERSON_IOU = 0.5      # a BlazePose person overlapping a segmentation person's box by more is that person


def add_people(det, people: list, person_label: int, embed, same_iou: float = SAME_PERSON_IOU):
    """``det`` (a :class:`~hrc_perception.segmentation.predictor.Detections` of an image of
    H x W) with every person of ``people`` (BlazePose's, in the image's pixels) whose mask
    box overlaps no ``person`` detection of det (box IoU <= same_iou) and no person added
    before it, as a detection of label person_label: box = its mask box (pixel edges), mask =
    its person mask in the image, score = its score, embedding = ``embed(boxes_xyxy [K, 4])
    -> [K, D]`` (the segmentation model's appearance descriptor of the box). Detections stay
    sorted by decreasing score."""
    from hrc_perception.segmentation.predictor import Detections
    h, w = det.image_size_hw
    is_person = np.asarray(det.labels) == int(person_label)
    taken = [np.asarray(b, np.float64) for b in det.boxes_xyxy[is_person]]
    boxes, masks, scores = [], [], []
    for p in people:
        box = np.array([p.mask_box_xyxy[0], p.mask_box_xyxy[1], p.mask_box_xyxy[2] + 1.0, p.mask_box_xyxy[3] + 1.0])
        box = np.clip(box, 0.0, [w, h, w, h])
        if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            continue
        if taken and box_iou(box, np.stack(taken)).max() > same_iou:
            continue
        mask = p.mask_in_image((h, w))
        if not mask.any():
            continue
        taken.append(box)
        boxes.append(box)
        masks.append(mask)
        scores.append(float(p.score))
    if not boxes:
        return det
    new_boxes = np.array(boxes, np.float32)
    emb = np.asarray(embed(new_boxes), np.float32).reshape(len(boxes), -1)
    if len(det) and emb.shape[1] != det.embeddings.shape[1]:
        raise ValueError(f"embeddings of {emb.shape[1]} values beside the detections' {det.embeddings.shape[1]}")
    name = "person"
    all_scores = np.concatenate([det.scores, np.array(scores, np.float32)])
    order = np.argsort(-all_scores, kind="stable")
    return Detections(
        boxes_xyxy=np.concatenate([det.boxes_xyxy.reshape(-1, 4), new_boxes])[order],
        labels=np.concatenate([det.labels, np.full(len(boxes), int(person_label), np.int64)])[order],
        class_names=[(list(det.class_names) + [name] * len(boxes))[i] for i in order],
        scores=all_scores[order],
        masks=np.concatenate([det.masks.reshape(-1, h, w), np.stack(masks)])[order],
        embeddings=np.concatenate([det.embeddings.reshape(len(det), -1) if len(det) else
                                   np.zeros((0, emb.shape[1]), np.float32), emb])[order],
        image_size_hw=(h, w))
