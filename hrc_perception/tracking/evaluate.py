"""`hrc-perception eval tracking`: MOTA, IDF1, ID switches and fragmentations of the
trackers on synthetic cell sequences with ground-truth identities, and on MOT15.

Synthetic sequences are the episodes of a ``hrc-perception synth --dataset coco`` output
(one camera per episode; ground truth: each annotation's ``track_id`` and box). Two
inputs, the same for every tracker:

- ``noisy_gt``: the ground-truth boxes with Gaussian noise on each edge (a fraction of
  the box size) and random dropouts; appearance descriptors computed by the
  segmentation model on those boxes (:meth:`SegmentationPredictor.embed_boxes`);
- ``segmentation``: the segmentation model's own detections, embeddings and scores.

Trackers: this package's Deep SORT, its SORT mode (same code, appearance off), and the
PyPI ``deep-sort-realtime`` tracker given the same boxes, classes and descriptors.
Scoring is per class (a track of class c is compared with the ground truth of class c,
per episode) and summed over classes and episodes by motmetrics; wall time per frame
is the tracker's update alone.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hrc_perception.tracking.detection import Detection
from hrc_perception.tracking.kalman import KalmanFilter
from hrc_perception.tracking.mot import MotFrame, accumulate, load_mot_gt, load_mot_txt, summarize
from hrc_perception.tracking.nn_matching import (DEFAULT_MAX_COSINE_DISTANCE, DEFAULT_NN_BUDGET,
                                                NearestNeighborDistanceMetric)
from hrc_perception.tracking.tracker import Tracker

TRACKERS = ("deep_sort", "sort", "deep_sort_realtime")


@dataclass
class FrameInput:
    """Detections of one frame fed to every tracker: tlwh [N, 4] pixels, scores [N],
    class names, features [N, D] or None."""
    tlwh: np.ndarray
    scores: np.ndarray
    classes: list[str]
    features: np.ndarray | None = None


@dataclass
class GroundTruthFrame:
    """Ground truth of one frame: ids [N] (per episode), tlwh [N, 4] pixels, classes."""
    ids: np.ndarray
    tlwh: np.ndarray
    classes: list[str]


@dataclass
class Sequence:
    """One episode: frames in time order, their ground truth, frame interval (s)."""
    episode: int
    dt_s: float
    images: list[Path] = field(default_factory=list)
    gt: list[GroundTruthFrame] = field(default_factory=list)


def load_sequences(coco_root: Path, min_area_px: float = 16.0, fps: float | None = None) -> list[Sequence]:
    """Episodes of a synth COCO output (``coco_root`` holds annotations.json), ground
    truth without instances under ``min_area_px`` visible pixels. fps: frame rate;
    default from the sibling ``meta.json`` (else 15)."""
    ann = json.loads((coco_root / "annotations.json").read_text())
    if fps is None:
        meta = coco_root.parent / "meta.json"
        fps = float(json.loads(meta.read_text()).get("fps", 15.0)) if meta.is_file() else 15.0
    names = {c["id"]: c["name"] for c in ann["categories"]}
    by_image = defaultdict(list)
    for a in ann["annotations"]:
        if "track_id" not in a:
            raise ValueError(f"{coco_root}: annotations have no track_id (not a hrc-perception synth output)")
        if a["area"] >= min_area_px:
            by_image[a["image_id"]].append(a)
    seqs: dict[int, Sequence] = {}
    for im in sorted(ann["images"], key=lambda im: (im.get("episode", 0), im.get("stamp_ns", im["id"]))):
        ep = int(im.get("episode", 0))
        seq = seqs.setdefault(ep, Sequence(ep, 1.0 / fps))
        anns = by_image.get(im["id"], [])
        seq.images.append(coco_root / im["file_name"])
        seq.gt.append(GroundTruthFrame(np.array([a["track_id"] for a in anns], np.int64),
                                       np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4),
                                       [names[a["category_id"]] for a in anns]))
    return [seqs[k] for k in sorted(seqs)]


MOT15_FPS = {"TUD-Campus": 25.0}
"""Frame rates of MOT15 sequences whose seqinfo.ini gives none (reported, not guessed)."""

MOT_DEFAULT_FPS = 25.0
"""Frame rate (Hz) assumed for a MOTChallenge sequence with no ``--fps``, no frameRate in
its seqinfo.ini and no MOT15_FPS entry. It changes none of the figures: the trackers step
once per frame, and the Kalman filter's noise is defined per frame interval
(``nominal_dt_s`` = the step), so another rate only rescales the velocities (in pixels
per second) and gives the same tracks up to rounding (tested)."""


def mot15_frame_rate(seq_dir: Path, fps: float | None = None) -> tuple[float, str]:
    """Frame rate (Hz) of a MOTChallenge sequence folder and where it came from: ``fps``
    when given ("option"), else seqinfo.ini's frameRate ("seqinfo.ini"), else MOT15_FPS
    ("MOT15_FPS"), else MOT_DEFAULT_FPS ("default"). ValueError for a rate that is not
    a finite number > 0."""
    seq_dir = Path(seq_dir)
    source = "option"
    if fps is None:
        info = seq_dir / "seqinfo.ini"
        lines = info.read_text().splitlines() if info.is_file() else []
        rates = [ln.split("=", 1)[1].strip() for ln in lines if ln.strip().lower().startswith("framerate=")]
        if rates:
            fps, source = rates[-1], "seqinfo.ini"
        elif seq_dir.name in MOT15_FPS:
            fps, source = MOT15_FPS[seq_dir.name], "MOT15_FPS"
        else:
            fps, source = MOT_DEFAULT_FPS, "default"
    try:
        fps = float(fps)
    except ValueError:
        raise ValueError(f"{seq_dir / 'seqinfo.ini'}: frameRate {fps!r} is not a number") from None
    if not (np.isfinite(fps) and fps > 0):
        where = "--fps" if source == "option" else f"{seq_dir / 'seqinfo.ini'}: frameRate"
        raise ValueError(f"{where} {fps} is not a frame rate (a number of frames per second > 0)")
    return fps, source


def mot15_inputs(seq_dir: Path, min_det_conf: float = 0.5, fps: float | None = None
                 ) -> tuple[Sequence, list[FrameInput]]:
    """A MOTChallenge sequence folder (gt/gt.txt, det/det.txt): ground truth and the
    public detections (one class, ``person``; no appearance). fps: frame rate (Hz;
    None: :func:`mot15_frame_rate`'s)."""
    gt = load_mot_gt(seq_dir / "gt/gt.txt")
    det = load_mot_txt(seq_dir / "det/det.txt", min_conf=min_det_conf)
    n = max(max(gt, default=0), max(det, default=0))
    fps, _ = mot15_frame_rate(seq_dir, fps)
    seq = Sequence(0, 1.0 / fps)
    frames = []
    for f in range(1, n + 1):
        g, d = gt.get(f, MotFrame()), det.get(f, MotFrame())
        seq.images.append(None)
        seq.gt.append(GroundTruthFrame(g.ids, g.tlwh, ["person"] * len(g)))
        frames.append(FrameInput(d.tlwh, d.conf, ["person"] * len(d)))
    return seq, frames


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"))


def jittered_boxes_xyxy(tlwh: np.ndarray, rng: np.random.Generator, rel_sigma: float) -> np.ndarray:
    """Boxes tlwh [N, 4] (pixels) as xyxy [N, 4] with N(0, rel_sigma * box size) added to
    each edge, as a detector's boxes scatter; each at least 1 px wide and high."""
    tlwh = np.asarray(tlwh, np.float64).reshape(-1, 4)
    size = np.c_[tlwh[:, 2:], tlwh[:, 2:]]
    xyxy = np.c_[tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]] + rng.normal(0.0, rel_sigma, tlwh.shape) * size
    xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1.0)
    return xyxy


def noisy_gt_inputs(seq: Sequence, rng: np.random.Generator, predictor=None, box_noise: float = 0.05,
                    dropout: float = 0.1) -> list[FrameInput]:
    """Ground-truth boxes with N(0, box_noise * size) on each edge, each dropped with
    probability ``dropout``; features from ``predictor.embed_boxes`` (None: no features)."""
    out = []
    for path, gt in zip(seq.images, seq.gt):
        keep = rng.random(len(gt.ids)) >= dropout
        xyxy = jittered_boxes_xyxy(gt.tlwh[keep], rng, box_noise)
        feats = predictor.embed_boxes(_read_rgb(path), xyxy) if predictor is not None else None
        out.append(FrameInput(np.c_[xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], np.ones(len(xyxy)),
                              [c for c, k in zip(gt.classes, keep) if k], feats))
    return out


def segmentation_inputs(seq: Sequence, predictor) -> list[FrameInput]:
    """The segmentation model's detections on each frame."""
    out = []
    for path in seq.images:
        det = predictor.predict(_read_rgb(path))
        b = det.boxes_xyxy.astype(np.float64)
        out.append(FrameInput(np.c_[b[:, :2], b[:, 2:] - b[:, :2]].reshape(-1, 4), det.scores.astype(float),
                              list(det.class_names), det.embeddings))
    return out


Hypotheses = list[tuple[np.ndarray, np.ndarray, list[str]]]
"""Per frame: track ids [M], tlwh [M, 4], classes."""


DEFAULT_TRACKER_OPTIONS = {"max_cosine_distance": DEFAULT_MAX_COSINE_DISTANCE, "nn_budget": DEFAULT_NN_BUDGET,
                           "iou_for_lost_tracks": True}
"""The tracker node's defaults for the options ``eval tracking`` can vary (to tune them)."""


def _tracker(dt_s: float, use_appearance: bool, options: dict) -> Tracker:
    return Tracker(metric=NearestNeighborDistanceMetric(options["max_cosine_distance"], options["nn_budget"]),
                   use_appearance=use_appearance, iou_for_lost_tracks=options["iou_for_lost_tracks"],
                   kf=KalmanFilter(nominal_dt_s=dt_s))


def run_ours(frames: list[FrameInput], dt_s: float, use_appearance: bool,
             options: dict = DEFAULT_TRACKER_OPTIONS) -> tuple[Hypotheses, list[float]]:
    """This package's tracker (Deep SORT, or SORT without appearance) over a sequence,
    with ``options`` (keys of DEFAULT_TRACKER_OPTIONS): confirmed tracks updated in each
    frame, and the update time of each frame (s)."""
    tracker = _tracker(dt_s, use_appearance, options)
    class_ids: dict[str, int] = {}   # name -> tracker class id; class_names is its inverse
    class_names: dict[int, str] = {}
    hyp, times = [], []
    for fr in frames:
        for c in fr.classes:
            if c not in class_ids:
                class_ids[c] = len(class_ids) + 1
                class_names[class_ids[c]] = c
        dets = [Detection(b, s, class_ids[c],
                          fr.features[k] if fr.features is not None else None)
                for k, (b, s, c) in enumerate(zip(fr.tlwh, fr.scores, fr.classes)) if b[2] > 0 and b[3] > 0]
        t0 = time.perf_counter()
        tracker.predict(dt_s)
        tracker.update(dets)
        times.append(time.perf_counter() - t0)
        out = [t for t in tracker.tracks if t.is_confirmed() and t.time_since_update == 0]
        hyp.append((np.array([t.track_id for t in out], np.int64),
                    np.array([t.to_tlwh() for t in out]).reshape(-1, 4), [class_names[t.class_id] for t in out]))
    return hyp, times


def run_deep_sort_realtime(frames: list[FrameInput], dt_s: float) -> tuple[Hypotheses, list[float]]:
    """The PyPI deep-sort-realtime tracker (its embedder off, our descriptors in; the
    same max_age 30 and n_init 3); without descriptors it gets a constant one."""
    from deep_sort_realtime.deepsort_tracker import DeepSort
    tracker = DeepSort(max_age=30, n_init=3, embedder=None)
    hyp, times = [], []
    for fr in frames:
        raw = [(list(b), float(s), c) for b, s, c in zip(fr.tlwh, fr.scores, fr.classes)]
        embeds = list(fr.features) if fr.features is not None else [np.ones(8, np.float32)] * len(raw)
        t0 = time.perf_counter()
        tracks = tracker.update_tracks(raw, embeds=embeds)
        times.append(time.perf_counter() - t0)
        out = [t for t in tracks if t.is_confirmed() and t.time_since_update == 0]
        hyp.append((np.array([int(t.track_id) for t in out], np.int64),
                    np.array([t.to_ltwh() for t in out]).reshape(-1, 4), [t.det_class for t in out]))
    return hyp, times


def score(sequences: list[Sequence], hyps: list[Hypotheses], iou_threshold: float = 0.5) -> dict:
    """CLEAR-MOT and identity metrics (:func:`mot.summarize`) over every (episode, class):
    tracks of class c are scored against the ground truth of class c only."""
    accs = []
    for seq, hyp in zip(sequences, hyps):
        for cls in sorted({c for g in seq.gt for c in g.classes} | {c for h in hyp for c in h[2]}):
            gt, hy = {}, {}
            for f, (g, (hid, htlwh, hcls)) in enumerate(zip(seq.gt, hyp)):
                gm = np.array([c == cls for c in g.classes], bool).reshape(-1)
                hm = np.array([c == cls for c in hcls], bool).reshape(-1)
                gt[f] = MotFrame(g.ids[gm], g.tlwh[gm])
                hy[f] = MotFrame(hid[hm], htlwh[hm])
            accs.append(accumulate(gt, hy, iou_threshold))
    m = summarize(accs)
    return {k: m[k] for k in ("mota", "idf1", "precision", "recall", "id_switches", "fragmentations",
                              "false_positives", "misses", "num_objects")}


def _timing(times: list[float]) -> dict:
    t = np.asarray(times) * 1e3
    return {"median_ms": float(statistics.median(t)) if len(t) else None,
            "p95_ms": float(np.percentile(t, 95)) if len(t) else None}


def evaluate_trackers(sequences: list[Sequence], inputs: list[list[FrameInput]],
                      options: dict = DEFAULT_TRACKER_OPTIONS) -> dict:
    """Every tracker on the same inputs: metrics and update time per frame."""
    runners: dict[str, Callable] = {
        "deep_sort": lambda fr, dt: run_ours(fr, dt, True, options),
        "sort": lambda fr, dt: run_ours(fr, dt, False, options),
        "deep_sort_realtime": run_deep_sort_realtime,
    }
    out = {}
    for name in TRACKERS:
        hyps, times = [], []
        for seq, frames in zip(sequences, inputs):
            h, t = runners[name](frames, seq.dt_s)
            hyps.append(h)
            times += t
        out[name] = {**score(sequences, hyps), **_timing(times)}
    return out


def evaluate_tracking(data: Path | None, weights: Path | None, seed: int = 0, box_noise: float = 0.05,
                      dropout: float = 0.1, max_sequences: int | None = None,
                      score_threshold: float = 0.5, mot15: Path | None = None, log=None,
                      tracker_options: dict | None = None, mot15_fps: float | None = None) -> dict:
    """The two synthetic inputs x three trackers (see the module doc). data: a synth
    output with coco/ (or the coco folder); weights: segmentation model (None: only
    noisy ground truth, without appearance); tracker_options: some of
    DEFAULT_TRACKER_OPTIONS to change (this package's trackers only); mot15: a
    MOTChallenge sequence folder, mot15_fps its frame rate (Hz; None: see
    :func:`mot15_frame_rate`; the result gives the rate and its ``fps_source``)."""
    log = log or sys.stderr
    options = {**DEFAULT_TRACKER_OPTIONS, **(tracker_options or {})}
    t = _tracker(1.0, True, options)
    res: dict = {"tracker_options": {**options, "max_age": t.max_age, "n_init": t.n_init,
                                     "max_iou_distance": t.max_iou_distance}}
    if mot15 is not None:
        fps, fps_source = mot15_frame_rate(Path(mot15), mot15_fps)
        if fps_source == "default":
            print(f"eval tracking: note: {mot15}: no frameRate in seqinfo.ini and no --fps: {fps:g} Hz assumed "
                  "(the figures do not depend on it: the trackers step once per frame)", file=log)
        seq, frames = mot15_inputs(Path(mot15), fps=fps)
        res["mot15"] = {"sequence": Path(mot15).name, "frames": len(frames), "fps": fps, "fps_source": fps_source,
                        "trackers": evaluate_trackers([seq], [frames], options)}
    if data is None:
        return res
    from hrc_perception.segmentation.dataset import coco_dir
    root = coco_dir(data)
    sequences = load_sequences(root)[:max_sequences]
    if not sequences:
        raise ValueError(f"{data}: no sequences")
    predictor = None
    if weights is not None:
        from hrc_perception.segmentation.predictor import SegmentationPredictor
        predictor = SegmentationPredictor(weights, score_threshold=score_threshold)
    rng = np.random.default_rng(seed)
    n_frames = sum(len(s.images) for s in sequences)
    res.update({"data": str(data), "sequences": len(sequences), "frames": n_frames, "seed": seed,
                "noisy_gt": {"box_noise": box_noise, "dropout": dropout}})
    print(f"eval tracking: {len(sequences)} sequences, {n_frames} frames", file=log)
    noisy = [noisy_gt_inputs(s, rng, predictor, box_noise, dropout) for s in sequences]
    res["noisy_gt"]["trackers"] = evaluate_trackers(sequences, noisy, options)
    if predictor is not None:
        print("eval tracking: segmentation on every frame ...", file=log)
        seg = [segmentation_inputs(s, predictor) for s in sequences]
        res["segmentation"] = {"weights": str(weights), "score_threshold": score_threshold,
                               "trackers": evaluate_trackers(sequences, seg, options)}
    return res


def print_table(res: dict, file=None) -> None:
    file = file or sys.stdout
    for inp in ("noisy_gt", "segmentation", "mot15"):
        if inp not in res:
            continue
        print(f"{inp}:", file=file)
        print(f"  {'tracker':<20}{'MOTA':>7}{'IDF1':>7}{'IDsw':>6}{'frag':>6}{'FP':>6}{'miss':>6}{'ms/frame':>10}",
              file=file)
        for name, m in res[inp]["trackers"].items():
            print(f"  {name:<20}{m['mota']:7.3f}{m['idf1']:7.3f}{m['id_switches']:6d}{m['fragmentations']:6d}"
                  f"{m['false_positives']:6d}{m['misses']:6d}{m['median_ms']:10.2f}", file=file)
