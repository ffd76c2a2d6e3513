"""The multi-target tracker: Deep SORT, or plain SORT with appearance off.

Per image, call ``predict(dt_s)`` (seconds since the previous image; ``0.0`` if none
passed) and then ``update(detections)``; an ``update`` without its ``predict`` leaves the
confirmed tracks out of matching. Ages (``max_age``, ``time_since_update``) count images,
i.e. ``predict`` calls; time gaps enter through ``dt_s`` in the Kalman filter.

Deep SORT matching (``use_appearance=True``):
1. Matching cascade over the confirmed tracks, most recently seen first, on the cosine
   appearance distance (``metric``), with pairs outside the Kalman 95 % chi-square gate
   (squared Mahalanobis distance, 4 dof) forbidden; accepted up to
   ``metric.matching_threshold``.
2. IoU matching (``1 - IoU <= max_iou_distance``) of the remaining detections with the
   tentative tracks and the confirmed tracks the cascade left unmatched: all of them
   with ``iou_for_lost_tracks`` (the default), else (the original Deep SORT) only those
   missed in this image alone (``time_since_update == 1``). Measured on the synthetic
   cell, where detections of small parts flicker and a part's appearance can change
   between images (``hrc-perception eval tracking``), the IoU fallback for tracks lost
   a few images keeps identities that appearance alone drops.
Detections without a feature, and tracks without a gallery, have the maximum appearance
distance, so they match in step 2 (IoU) only.

SORT (``use_appearance=False``): the same code with step 1 skipped and step 2 over all
tracks (any ``time_since_update``): motion and IoU only.

With ``per_class`` a track never matches a detection of another class, in either step.
Unmatched detections start new tentative tracks; ids are unique and increasing from 1.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from hrc_perception.tracking import iou_matching, linear_assignment
from hrc_perception.tracking.detection import Detection
from hrc_perception.tracking.kalman import KalmanFilter
from hrc_perception.tracking.nn_matching import (DEFAULT_MAX_COSINE_DISTANCE, DEFAULT_NN_BUDGET,
                                                MAX_COSINE_DISTANCE, NearestNeighborDistanceMetric)
from hrc_perception.tracking.track import Track


class Tracker:
    """Deep SORT / SORT multi-target tracker on image boxes (pixels, seconds).

    Args:
        metric: appearance metric; None gives ``NearestNeighborDistanceMetric`` with
            ``DEFAULT_MAX_COSINE_DISTANCE`` and ``DEFAULT_NN_BUDGET``.
            Not used when ``use_appearance`` is False.
        max_iou_distance: largest ``1 - IoU`` accepted in the IoU matching stage.
        max_age: images a confirmed track may go unmatched before it is deleted (also the
            depth of the matching cascade).
        n_init: detections needed to confirm a track.
        iou_for_lost_tracks: IoU stage over every confirmed track the cascade left
            unmatched (True) or only over those missed in this image alone (False).
        per_class: forbid matches between different ``class_id``.
        use_appearance: True: Deep SORT; False: SORT (IoU only).
        kf: the Kalman filter (its ``nominal_dt_s`` should be the camera frame interval).
    """

    def __init__(self, metric: NearestNeighborDistanceMetric | None = None,
                 max_iou_distance: float = 0.7, max_age: int = 30, n_init: int = 3,
                 per_class: bool = True, use_appearance: bool = True,
                 kf: KalmanFilter | None = None, iou_for_lost_tracks: bool = True) -> None:
        if max_age < 0 or n_init < 1:
            raise ValueError(f"need max_age >= 0 and n_init >= 1, got {max_age}, {n_init}")
        self.iou_for_lost_tracks = bool(iou_for_lost_tracks)
        if metric is None:
            metric = NearestNeighborDistanceMetric(DEFAULT_MAX_COSINE_DISTANCE, DEFAULT_NN_BUDGET)
        self.metric = metric
        self.max_iou_distance = float(max_iou_distance)
        self.max_age = int(max_age)
        self.n_init = int(n_init)
        self.per_class = bool(per_class)
        self.use_appearance = bool(use_appearance)
        self.kf = kf if kf is not None else KalmanFilter()
        self.tracks: list[Track] = []
        self._next_id = 1

    def predict(self, dt_s: float) -> None:
        """Advance every track by ``dt_s`` seconds (finite, >= 0; ValueError otherwise)."""
        dt_s = float(dt_s)
        if not math.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt_s must be a finite number of seconds >= 0, got {dt_s}")
        if not self.tracks:
            return
        # one batched filter step for all tracks (same result as Track.predict on each)
        means, covs = self.kf.predict(np.stack([t.mean for t in self.tracks]),
                                      np.stack([t.cov for t in self.tracks]), dt_s)
        for track, mean, cov in zip(self.tracks, means, covs):
            track.set_predicted(mean, cov)

    def update(self, detections: Sequence[Detection]) -> dict[int, int]:
        """Match, update, start and delete tracks with this image's detections.

        Returns ``{detection index: track_id}`` for every detection that updated or
        started a track (every detection, in fact).
        """
        detections = list(detections)
        matches, unmatched_tracks, unmatched_detections = self._match(detections)

        assigned: dict[int, int] = {}
        if matches:  # one batched filter update (same result as Track.update on each)
            means, covs = self.kf.update(
                np.stack([self.tracks[t].mean for t, _ in matches]),
                np.stack([self.tracks[t].cov for t, _ in matches]),
                np.stack([detections[d].to_xyah() for _, d in matches]))
            for (t, d), mean, cov in zip(matches, means, covs):
                self.tracks[t].set_updated(mean, cov, detections[d])
                assigned[d] = self.tracks[t].track_id
        for t in unmatched_tracks:
            self.tracks[t].mark_missed()
        for d in unmatched_detections:
            assigned[d] = self._initiate_track(detections[d])
        self.tracks = [t for t in self.tracks if not t.is_deleted()]

        # Move the confirmed tracks' new features into the gallery.
        if self.use_appearance:
            active = [t.track_id for t in self.tracks if t.is_confirmed()]
            features, targets = [], []
            for track in self.tracks:
                if track.is_confirmed():
                    features += track.features
                    targets += [track.track_id] * len(track.features)
                    track.features = []
            if features:
                dim = features[0].shape[0]
                keep = [k for k, f in enumerate(features) if f.shape[0] == dim]  # one size
                features = np.stack([features[k] for k in keep])
                targets = [targets[k] for k in keep]
            self.metric.partial_fit(np.asarray(features, dtype=np.float64), targets, active)
        else:
            for track in self.tracks:
                track.features = []
        return dict(sorted(assigned.items()))

    # -- internals --------------------------------------------------------------------
    def _class_mask(self, detections: Sequence[Detection], track_indices: Sequence[int],
                    detection_indices: Sequence[int]) -> np.ndarray:
        """[T, D] True where track and detection classes differ (and ``per_class``)."""
        if not self.per_class:
            return np.zeros((len(track_indices), len(detection_indices)), dtype=bool)
        tc = np.array([self.tracks[i].class_id for i in track_indices])
        dc = np.array([detections[j].class_id for j in detection_indices])
        return tc[:, None] != dc[None, :]

    def _appearance_cost(self, tracks, detections, track_indices, detection_indices):
        """Gated cosine cost [T, D]: ``INFTY_COST`` outside the Kalman gate and between
        classes; detections without a feature (or, in one image, of differing feature
        sizes) stay at ``MAX_COSINE_DISTANCE``."""
        cost = np.full((len(track_indices), len(detection_indices)), MAX_COSINE_DISTANCE)
        cols = [c for c, j in enumerate(detection_indices) if detections[j].feature is not None]
        if cols:
            dims = {detections[detection_indices[c]].feature.shape[0] for c in cols}
            if len(dims) == 1:
                feats = np.stack([detections[detection_indices[c]].feature for c in cols])
                targets = [tracks[i].track_id for i in track_indices]
                cost[:, cols] = self.metric.distance(feats, targets)
        cost = linear_assignment.gate_cost_matrix(
            self.kf, cost, tracks, detections, track_indices, detection_indices)
        cost[self._class_mask(detections, track_indices, detection_indices)] = \
            linear_assignment.INFTY_COST
        return cost

    def _iou_cost(self, tracks, detections, track_indices, detection_indices):
        cost = iou_matching.iou_cost(tracks, detections, track_indices, detection_indices)
        cost[self._class_mask(detections, track_indices, detection_indices)] = \
            linear_assignment.INFTY_COST
        return cost

    def _match(self, detections: Sequence[Detection]):
        all_tracks = list(range(len(self.tracks)))
        all_detections = list(range(len(detections)))
        if not self.use_appearance:
            return linear_assignment.min_cost_matching(
                self._iou_cost, self.max_iou_distance, self.tracks, detections,
                all_tracks, all_detections)

        confirmed = [i for i in all_tracks if self.tracks[i].is_confirmed()]
        unconfirmed = [i for i in all_tracks if not self.tracks[i].is_confirmed()]
        # A pair's gated appearance cost does not depend on the other pairs: compute it
        # once for every confirmed track and detection; each cascade level takes a slice.
        full_cost = self._appearance_cost(self.tracks, detections, confirmed, all_detections)
        row_of = {t: r for r, t in enumerate(confirmed)}

        def cascade_cost(_tracks, _detections, track_indices, detection_indices):
            return full_cost[np.ix_([row_of[t] for t in track_indices], detection_indices)]

        matches_a, unmatched_a, unmatched_detections = linear_assignment.matching_cascade(
            cascade_cost, self.metric.matching_threshold, self.max_age,
            self.tracks, detections, confirmed, all_detections)

        if self.iou_for_lost_tracks:
            iou_candidates, unmatched_a = unconfirmed + unmatched_a, []
        else:
            iou_candidates = unconfirmed + [i for i in unmatched_a if self.tracks[i].time_since_update == 1]
            unmatched_a = [i for i in unmatched_a if self.tracks[i].time_since_update != 1]
        matches_b, unmatched_b, unmatched_detections = linear_assignment.min_cost_matching(
            self._iou_cost, self.max_iou_distance, self.tracks, detections,
            iou_candidates, unmatched_detections)
        return matches_a + matches_b, unmatched_a + unmatched_b, unmatched_detections

    def _initiate_track(self, detection: Detection) -> int:
        track_id = self._next_id
        self._next_id += 1
        self.tracks.append(Track.from_detection(
            self.kf, detection, track_id, self.n_init, self.max_age))
        return track_id
