"""MOTChallenge files and multi-object tracking metrics (CLEAR-MOT, IDF1) via motmetrics.

MOTChallenge text format, one box per line, comma separated::

    frame, id, bb_left, bb_top, bb_width, bb_height, conf, x, y, z

Frames count from 1; boxes are ``tlwh`` in pixels; ``id`` is -1 in detection files. In
ground truth of MOT16 and later a ``conf`` of 0 flags a box to ignore; MOT15 ground truth
has 1 everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hrc_perception.tracking.iou_matching import iou_matrix


@dataclass
class MotFrame:
    """Boxes of one frame: ids [N] int64, tlwh [N, 4] float64 (pixels), conf [N] float64."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tlwh: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    conf: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self.tlwh = np.asarray(self.tlwh, dtype=np.float64).reshape(-1, 4)
        if self.conf is None or len(self.conf) == 0:
            self.conf = np.ones(len(self.ids))
        self.conf = np.asarray(self.conf, dtype=np.float64).reshape(-1)
        if not len(self.ids) == len(self.tlwh) == len(self.conf):
            raise ValueError("MotFrame: ids, tlwh and conf differ in length")

    def __len__(self) -> int:
        return len(self.ids)


def load_mot_txt(path: str | Path, min_conf: float | None = None) -> dict[int, MotFrame]:
    """Read a MOTChallenge ``gt.txt`` / ``det.txt`` / result file: ``{frame: MotFrame}``.

    Rows with ``conf < min_conf`` are dropped when ``min_conf`` is given. Frames without
    rows are absent from the dict.
    """
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    if rows.size == 0:
        return {}
    if rows.shape[1] < 7:
        raise ValueError(f"{path}: expected >= 7 columns (frame, id, tlwh, conf), "
                         f"got {rows.shape[1]}")
    if min_conf is not None:
        rows = rows[rows[:, 6] >= min_conf]
    out: dict[int, MotFrame] = {}
    frames = rows[:, 0].astype(np.int64)
    for f in np.unique(frames):
        r = rows[frames == f]
        out[int(f)] = MotFrame(r[:, 1], r[:, 2:6], r[:, 6])
    return out


def load_mot_gt(path: str | Path) -> dict[int, MotFrame]:
    """Ground truth: ``load_mot_txt`` without the boxes flagged to ignore (``conf == 0``)."""
    return load_mot_txt(path, min_conf=0.5)


def write_mot_txt(path: str | Path, by_frame: Mapping[int, MotFrame]) -> None:
    """Write ``{frame: MotFrame}`` in MOTChallenge format (x, y, z = -1)."""
    lines = []
    for f in sorted(by_frame):
        fr = by_frame[f]
        for i, b, c in zip(fr.ids, fr.tlwh, fr.conf):
            lines.append(f"{f},{i},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{c:.4f},-1,-1,-1")
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


def iou_distance_matrix(gt_tlwh: np.ndarray, hyp_tlwh: np.ndarray,
                        iou_threshold: float = 0.5) -> np.ndarray:
    """[G, H] ``1 - IoU``, NaN (no match allowed) where IoU < ``iou_threshold``."""
    gt_tlwh = np.asarray(gt_tlwh, dtype=np.float64).reshape(-1, 4)
    hyp_tlwh = np.asarray(hyp_tlwh, dtype=np.float64).reshape(-1, 4)
    d = 1.0 - iou_matrix(gt_tlwh, hyp_tlwh)
    d[d > 1.0 - iou_threshold] = np.nan
    return d


_METRICS = {
    "mota": "mota", "motp": "motp", "idf1": "idf1", "idp": "idp", "idr": "idr",
    "precision": "precision", "recall": "recall",
    "id_switches": "num_switches", "fragmentations": "num_fragmentations",
    "mostly_tracked": "mostly_tracked", "partially_tracked": "partially_tracked",
    "mostly_lost": "mostly_lost", "false_positives": "num_false_positives",
    "misses": "num_misses", "num_objects": "num_unique_objects", "num_frames": "num_frames",
}
_INT_METRICS = {"id_switches", "fragmentations", "mostly_tracked", "partially_tracked",
                "mostly_lost", "false_positives", "misses", "num_objects", "num_frames"}


def _as_frame(x) -> MotFrame:
    if isinstance(x, MotFrame):
        return x
    ids, tlwh = x[0], x[1]
    return MotFrame(ids, tlwh if len(ids) else np.zeros((0, 4)))


def accumulate(gt_by_frame: Mapping[int, MotFrame | Sequence], hyp_by_frame: Mapping[int, MotFrame | Sequence],
               iou_threshold: float = 0.5):
    """A motmetrics accumulator of one sequence.

    gt_by_frame, hyp_by_frame: ``{frame: MotFrame}`` or ``{frame: (ids [N], tlwh [N, 4])}``;
    boxes ``tlwh`` in pixels. Every frame present in either is evaluated; a hypothesis
    can match a ground-truth box only at IoU >= ``iou_threshold``.
    """
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for f in sorted(set(gt_by_frame) | set(hyp_by_frame)):
        g = _as_frame(gt_by_frame.get(f, MotFrame()))
        h = _as_frame(hyp_by_frame.get(f, MotFrame()))
        acc.update(g.ids.tolist(), h.ids.tolist(),
                   iou_distance_matrix(g.tlwh, h.tlwh, iou_threshold), frameid=int(f))
    return acc


def summarize(accumulators: Sequence) -> dict[str, float]:
    """CLEAR-MOT and identity metrics over one or more accumulators (sequences; summed
    as motmetrics' OVERALL row when several): ``mota``, ``motp`` (mean 1 - IoU of
    matches), ``idf1``, ``idp``, ``idr``, ``precision``, ``recall`` (floats) and
    ``id_switches``, ``fragmentations``, ``mostly_tracked``, ``partially_tracked``,
    ``mostly_lost``, ``false_positives``, ``misses``, ``num_objects``, ``num_frames`` (ints).
    """
    import motmetrics as mm

    accumulators = list(accumulators)
    names = [f"seq{k}" for k in range(len(accumulators))]
    summary = mm.metrics.create().compute_many(accumulators, metrics=list(_METRICS.values()), names=names,
                                               generate_overall=len(accumulators) > 1)
    row = summary.loc["OVERALL" if len(accumulators) > 1 else names[0]]
    out: dict[str, float] = {}
    for key, mm_key in _METRICS.items():
        v = row[mm_key]
        out[key] = int(v) if key in _INT_METRICS else float(v)
    return out


def evaluate_mot(gt_by_frame: Mapping[int, MotFrame | Sequence],
                 hyp_by_frame: Mapping[int, MotFrame | Sequence],
                 iou_threshold: float = 0.5) -> dict[str, float]:
    """Metrics of one sequence: :func:`summarize` of :func:`accumulate`."""
    return summarize([accumulate(gt_by_frame, hyp_by_frame, iou_threshold)])
