"""BlazePose's two networks run directly (the `pose_detection` and `pose_landmark_full`
TFLite models inside the mediapipe 0.10.14 wheel, through the LiteRT interpreter), so that
every person of an image is found, not only the most confident one as in mediapipe's
single-person solution.

- :meth:`BlazePose.detect`: the person detector (224x224, SSD anchors) on the whole image
  letterboxed and on overlapping square tiles (small people), weighted non-maximum
  suppression; each detection carries the hip centre and a body-scale point.
- A detection (or a person box) gives a square, rotated region (:class:`Roi`): centred on
  the hips, side 2.5x the hip-to-scale-point distance, turned so that the body is upright.
- :meth:`BlazePose.landmarks`: the landmark network on that region: 33 landmarks (pixels of
  the image), their visibility, the person's presence score and a person mask (the mask's
  extent is the person's box, as a COCO box is the extent of the person's outline).
- :meth:`BlazePose.people`: every person of an image (detector -> regions -> landmarks),
  duplicates removed by mask-box IoU.

Image coordinates: pixel centres at integers, x right, y down. Shapes are documented per
function. Only numpy, opencv and the interpreter; no mediapipe graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
ROI_SCALE = 1.25          # region side = 2 x hip-to-scale-point distance x this
LANDMARKS = 33


def _models_dir() -> Path:
    try:
        import mediapipe
    except ImportError as e:
        raise ImportError("BlazePose needs the models inside mediapipe 0.10.14 "
                          "(pip install --no-deps -r requirements-mediapipe.txt)") from e
    return Path(mediapipe.__file__).parent / "modules"


def _interpreter(path: Path, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise ImportError("BlazePose needs the LiteRT interpreter (ai-edge-litert, "
                          "pip install --no-deps -r requirements-mediapipe.txt)") from e
    it = Interpreter(model_path=str(path), num_threads=int(threads))
    it.allocate_tensors()
    return it


def ssd_anchors() -> np.ndarray:
    """Anchor centres [2254, 2] (x, y) in 0..1 of the detector's input: strides 8, 16 and
    32 (three layers), two anchors per layer and cell, fixed size 1."""
    out = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        n = math.ceil(DETECTOR_SIZE / stride)
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(out)


@dataclass
class Detection:
    """A person found by the detector: score 0..1; box_xyxy [4] (the face region the
    detector regresses, pixels); keypoints_px [4, 2]: hip centre, body-scale point
    (circle through the body), shoulder centre, upper-body-scale point."""
    score: float
    box_xyxy: np.ndarray
    keypoints_px: np.ndarray


@dataclass
class Roi:
    """Square region of the landmark network: centre_px [2], side_px, rotation_rad (the
    region's x axis turned by it from the image's, counter-clockwise seen on screen is
    negative: image y points down)."""
    centre_px: np.ndarray
    side_px: float
    rotation_rad: float

    def affine(self, crop_size: int) -> np.ndarray:
        """[2, 3] affine map from image pixels to those of the crop_size x crop_size crop."""
        src = self.to_image(np.array([[-0.5, -0.5], [crop_size - 0.5, -0.5], [-0.5, crop_size - 0.5]]), crop_size)
        dst = np.array([[0, 0], [crop_size, 0], [0, crop_size]], np.float32) - 0.5
        return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))

    def to_image(self, crop_px: np.ndarray, crop_size: int) -> np.ndarray:
        """Points [N, 2] in pixels of the crop_size x crop_size crop -> image pixels [N, 2]."""
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        d = ((np.asarray(crop_px, np.float64) + 0.5) / crop_size - 0.5) * self.side_px
        return self.centre_px + d @ np.array([[c, s], [-s, c]])

    def crop(self, rgb: np.ndarray, crop_size: int) -> np.ndarray:
        """rgb [H, W, 3] resampled on the region: [crop_size, crop_size, 3], black outside.
        A region larger than the crop is first shrunk by area averaging (no aliasing)."""
        A = self.affine(crop_size).astype(np.float64)
        shrink = self.side_px / crop_size
        if shrink > 1.5:                        # cut the region's bounding square, shrink it, then warp
            half = 0.75 * self.side_px          # > side / sqrt(2): holds the region at any rotation
            x0, y0 = (int(np.floor(v - half)) for v in self.centre_px)
            side = int(np.ceil(2 * half)) + 1
            small = max(int(round(side / shrink)), 1)
            rgb = cv2.resize(crop_padded(rgb, x0, y0, side), (small, small), interpolation=cv2.INTER_AREA)
            k = side / small                    # small pixel u -> image pixel (u + 0.5) * k + x0 - 0.5
            A = A @ np.array([[k, 0, (0.5 * k) + x0 - 0.5], [0, k, (0.5 * k) + y0 - 0.5], [0, 0, 1]])
        return cv2.warpAffine(rgb, A, (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def roi_from_detection(det: Detection) -> Roi:
    """The region of a detection (:func:`roi_from_alignment` of its first two keypoints)."""
    return roi_from_alignment(det.keypoints_px[0], det.keypoints_px[1])


def roi_from_alignment(hip_px: np.ndarray, scale_px: np.ndarray) -> Roi:
    """The region of a body given its hip centre [2] and body-scale point [2] (pixels):
    centred on the hips, side 2 x ROI_SCALE x their distance, turned so that the
    hips-to-scale-point line points up in the region."""
    hip, scale_pt = np.asarray(hip_px, np.float64), np.asarray(scale_px, np.float64)
    side = 2.0 * float(np.linalg.norm(scale_pt - hip)) * ROI_SCALE
    angle = math.pi / 2 - math.atan2(-(scale_pt[1] - hip[1]), scale_pt[0] - hip[0])
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    return Roi(hip, max(side, 8.0), angle)


def roi_from_box(box_xyxy: np.ndarray, pad_fraction: float = 0.1) -> Roi:
    """An upright region around a person box [4] (pixels): its centre, side = its longer
    side grown by pad_fraction on each end."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * pad_fraction)
    return Roi(np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0]), max(side, 8.0), 0.0)


@dataclass
class PersonLandmarks:
    """BlazePose's output for one region: uv_px [33, 2] image pixels; visibility [33] 0..1;
    presence 0..1 (that the region holds a person); mask_box_xyxy [4] pixels (extent of
    the person mask, NaN when empty); mask [256, 256] float 0..1 in the region's pixels;
    roi the region; score (detector score x presence, or presence alone); alignment_px
    [2, 2] the hip centre and body-scale point the network found (the next frame's region);
    offset_px [2]: where the image these pixels refer to starts in a larger one (None: it
    is the image)."""
    uv_px: np.ndarray
    visibility: np.ndarray
    presence: float
    mask_box_xyxy: np.ndarray
    mask: np.ndarray
    roi: Roi
    score: float
    alignment_px: np.ndarray
    offset_px: np.ndarray | None = None

    def mask_in_image(self, shape_hw: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
        """The person mask in image pixels: [H, W] bool."""
        A = cv2.invertAffineTransform(self.roi.affine(LANDMARK_SIZE))
        h, w = shape_hw
        return cv2.warpAffine(self.mask.astype(np.float32), A, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) > threshold


def crop_padded(rgb: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """rgb [H, W, 3] uint8 cut to the square [y0, y0 + side) x [x0, x0 + side), black outside."""
    h, w = rgb.shape[:2]
    out = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU [N, M] of boxes a [N, 4] and b [M, 4] (xyxy, pixels): the tracker's
    :func:`~hrc_perception.tracking.iou_matching.iou_matrix` on them."""
    from hrc_perception.tracking.iou_matching import iou_matrix
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    return iou_matrix(np.concatenate([a[:, :2], a[:, 2:] - a[:, :2]], 1),
                      np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1))


def distinct(boxes_xyxy: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices of the boxes [N, 4] kept, most confident first: a box overlapping a kept one
    by more than iou is a duplicate of it."""
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores, float), kind="stable"):
        if not kept or box_iou(boxes_xyxy[i], boxes_xyxy[kept]).max() <= iou:
            kept.append(int(i))
    return kept


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou: float):
    """Weighted non-maximum suppression: the best remaining box and every box overlapping
    it by more than iou are merged into one (coordinates averaged by score, the best
    score kept). scores [N], boxes [N, 4], keypoints [N, K, 2] -> the same, merged."""
    order = np.argsort(-scores)
    scores, boxes, keypoints = scores[order], boxes[order], keypoints[order]
    alive = np.ones(len(scores), bool)
    out_s, out_b, out_k = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (box_iou(boxes[i:i + 1], boxes)[0] > iou)
        group[i] = True
        w = scores[group][:, None]
        out_s.append(scores[i])
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_k.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        alive &= ~group
    return np.array(out_s), np.array(out_b).reshape(-1, 4), np.array(out_k).reshape(-1, keypoints.shape[1], 2)


def square_tiles(h: int, w: int, scales: tuple[float, ...]) -> list[tuple[int, int, int]]:
    """(x0, y0, side) of square tiles of side scale x min(h, w), overlapping by at least a
    third of a tile, covering the image."""
    out = []
    for scale in scales:
        side = max(int(round(scale * min(h, w))), 32)
        for y0 in _starts(h, side):
            for x0 in _starts(w, side):
                out.append((x0, y0, side))
    return out


def _starts(length: int, side: int) -> list[int]:
    if side >= length:
        return [(length - side) // 2]
    n = math.ceil((length - side) / (side * 2 / 3)) + 1
    return [int(round(i * (length - side) / (n - 1))) for i in range(n)]


class BlazePose:
    """BlazePose's detector and landmark networks. threads: interpreter threads each;
    detection_score: detector score a detection needs; presence: landmark presence a person
    needs; tile_scales: tile sides (fractions of the image's shorter side) searched besides
    the whole image (() = the whole image only)."""

    def __init__(self, threads: int = 1, detection_score: float = 0.5, presence: float = 0.5,
                 nms_iou: float = 0.3, tile_scales: tuple[float, ...] = (0.6,)):
        models = _models_dir()
        self._det = _interpreter(models / "pose_detection" / "pose_detection.tflite", threads)
        self._lm = _interpreter(models / "pose_landmark" / "pose_landmark_full.tflite", threads)
        self._det_in = self._det.get_input_details()[0]["index"]
        outs = sorted(self._det.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._det_reg, self._det_score = outs[0]["index"], outs[1]["index"]
        self._lm_in = self._lm.get_input_details()[0]["index"]
        by_shape = {tuple(d["shape"]): d["index"] for d in self._lm.get_output_details()}
        self._lm_points = by_shape[(1, 195)]
        self._lm_presence = by_shape[(1, 1)]
        self._lm_mask = by_shape[(1, LANDMARK_SIZE, LANDMARK_SIZE, 1)]
        self._anchors = ssd_anchors()
        self.detection_score = float(detection_score)
        self.presence = float(presence)
        self.nms_iou = float(nms_iou)
        self.tile_scales = tuple(tile_scales)

    # -- detector ------------------------------------------------------------------------------------------------
    def _detect_square(self, rgb: np.ndarray, x0: int, y0: int, side: int):
        """Raw detections of the square [x0, x0 + side) x [y0, y0 + side) of rgb (black
        outside): (scores [N], boxes [N, 4], keypoints [N, 4, 2]) in image pixels."""
        img = cv2.resize(crop_padded(rgb, x0, y0, side), (DETECTOR_SIZE, DETECTOR_SIZE),
                         interpolation=cv2.INTER_AREA if side > DETECTOR_SIZE else cv2.INTER_LINEAR)
        self._det.set_tensor(self._det_in, (img.astype(np.float32) / 127.5 - 1.0)[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_reg)[0].astype(np.float64)
        scores = _sigmoid(self._det.get_tensor(self._det_score)[0, :, 0].astype(np.float64))
        keep = scores >= self.detection_score
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        c = raw[:, :2] / DETECTOR_SIZE + anchors
        half = raw[:, 2:4] / DETECTOR_SIZE / 2.0
        boxes = np.concatenate([c - half, c + half], axis=1)
        kps = raw[:, 4:12].reshape(-1, 4, 2) / DETECTOR_SIZE + anchors[:, None, :]
        to_px = lambda p: p * side + np.array([x0, y0]) - 0.5   # noqa: E731
        return scores, to_px(boxes.reshape(-1, 2, 2)).reshape(-1, 4), to_px(kps)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Every person the detector finds in rgb [H, W, 3] uint8: the whole image
        (letterboxed) and the tiles, merged by weighted NMS on the face boxes."""
        h, w = rgb.shape[:2]
        side = max(h, w)
        squares = [((w - side) // 2, (h - side) // 2, side)] + square_tiles(h, w, self.tile_scales)
        parts = [self._detect_square(rgb, *sq) for sq in squares]
        scores = np.concatenate([p[0] for p in parts])
        if not len(scores):
            return []
        boxes = np.concatenate([p[1] for p in parts])
        kps = np.concatenate([p[2] for p in parts])
        scores, boxes, kps = weighted_nms(scores, boxes, kps, self.nms_iou)
        return [Detection(float(s), b, k) for s, b, k in zip(scores, boxes, kps)]

    # -- landmarks -----------------------------------------------------------------------------------------------
    def landmarks(self, rgb: np.ndarray, roi: Roi, detection_score: float | None = None) -> PersonLandmarks:
        """The landmark network on one region of rgb [H, W, 3] uint8."""
        crop = roi.crop(rgb, LANDMARK_SIZE)
        self._lm.set_tensor(self._lm_in, (crop.astype(np.float32) / 255.0)[None])
        self._lm.invoke()
        allpts = self._lm.get_tensor(self._lm_points)[0].reshape(-1, 5).astype(np.float64)
        pts = allpts[:LANDMARKS]
        aux = roi.to_image(allpts[LANDMARKS:LANDMARKS + 2, :2] - 0.5, LANDMARK_SIZE)
        presence = float(np.clip(self._lm.get_tensor(self._lm_presence)[0, 0], 0.0, 1.0))
        mask = _sigmoid(self._lm.get_tensor(self._lm_mask)[0, :, :, 0])
        uv = roi.to_image(pts[:, :2] - 0.5, LANDMARK_SIZE)
        vis = _sigmoid(pts[:, 3])
        ys, xs = np.nonzero(mask > 0.5)
        if len(xs):
            corners = roi.to_image(np.stack([xs, ys], 1).astype(np.float64), LANDMARK_SIZE)
            mbox = np.concatenate([corners.min(0), corners.max(0)])
        else:
            mbox = np.full(4, np.nan)
        score = presence if detection_score is None else presence * float(detection_score)
        return PersonLandmarks(uv, vis, presence, mbox, mask, roi, score, aux)

    @staticmethod
    def tracking_roi(p: PersonLandmarks) -> Roi:
        """The region of the next frame for a person found in this one."""
        return roi_from_alignment(p.alignment_px[0], p.alignment_px[1])

    def people(self, rgb: np.ndarray, dedup_iou: float = 0.5) -> list[PersonLandmarks]:
        """Every person of rgb [H, W, 3] uint8, most confident first: detections ->
        regions -> landmarks; a person needs presence >= self.presence and a mask; of two
        whose mask boxes overlap by more than dedup_iou, the more confident one is kept."""
        rgb = np.ascontiguousarray(rgb)
        found = []
        for det in self.detect(rgb):
            p = self.landmarks(rgb, roi_from_detection(det), det.score)
            if p.presence >= self.presence and np.isfinite(p.mask_box_xyxy).all():
                found.append(p)
        if not found:
            return []
        keep = distinct(np.stack([p.mask_box_xyxy for p in found]), np.array([p.score for p in found]), dedup_iou)
        return [found[i] for i in keep]
