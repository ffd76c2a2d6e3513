"""One track: Kalman state, life cycle, appearance features awaiting the gallery."""
from __future__ import annotations

from enum import IntEnum

import numpy as np

from hrc_perception.tracking.detection import Detection
from hrc_perception.tracking.kalman import KalmanFilter


class TrackState(IntEnum):
    """Life-cycle state; the numbers are those of ``Track.msg``."""

    TENTATIVE = 0  # new; confirmed after n_init consecutive detections
    CONFIRMED = 1
    DELETED = 2  # to be removed from the tracker


class Track:
    """A tracked object.

    Attributes:
        mean: [8] Kalman state ``[x, y, a, h, vx, vy, va, vh]`` (pixels, pixels per second;
            see ``kalman``).
        cov: [8, 8] state covariance.
        track_id: unique identity (the tracker hands them out increasing, from 1).
        class_id: class of the detection that started the track.
        hits: number of detections matched so far (1 at creation).
        age: number of ``predict`` calls (images) since creation, plus one.
        time_since_update: ``predict`` calls (images) since the last matched detection.
        state: ``TrackState``.
        features: appearance features [D] received since the tracker last moved them into
            its gallery (the tracker empties this list).
        instance_id: ``instance_id`` of the last matched detection.
        score: score of the last matched detection.

    Life cycle: TENTATIVE at creation; CONFIRMED once ``hits >= n_init``; a tentative track
    is DELETED at its first miss; a confirmed one coasts through up to ``max_age``
    consecutive missed images and is DELETED at the next miss
    (``time_since_update > max_age``).
    """

    def __init__(self, mean: np.ndarray, cov: np.ndarray, track_id: int, n_init: int,
                 max_age: int, class_id: int = 0, feature: np.ndarray | None = None,
                 instance_id: int = 0, score: float = 1.0) -> None:
        self.mean = mean
        self.cov = cov
        self.track_id = int(track_id)
        self.class_id = int(class_id)
        self.hits = 1
        self.age = 1
        self.time_since_update = 0
        self.state = TrackState.TENTATIVE
        self.features: list[np.ndarray] = [] if feature is None else [feature]
        self.instance_id = int(instance_id)
        self.score = float(score)
        self._n_init = int(n_init)
        self._max_age = int(max_age)
        if self.hits >= self._n_init:
            self.state = TrackState.CONFIRMED

    @classmethod
    def from_detection(cls, kf: KalmanFilter, detection: Detection, track_id: int,
                       n_init: int, max_age: int) -> Track:
        """New tentative track initiated from one detection."""
        mean, cov = kf.initiate(detection.to_xyah())
        return cls(mean, cov, track_id, n_init, max_age, detection.class_id,
                   detection.feature, detection.instance_id, detection.score)

    # -- boxes ------------------------------------------------------------------------
    def to_tlwh(self) -> np.ndarray:
        """Current box [4] ``(top-left x, top-left y, width, height)``, pixels."""
        x, y, a, h = self.mean[:4]
        w = a * h
        return np.array([x - w / 2, y - h / 2, w, h])

    def to_tlbr(self) -> np.ndarray:
        """Current box [4] ``(min x, min y, max x, max y)``, pixels."""
        t = self.to_tlwh()
        t[2:] += t[:2]
        return t

    def velocity_px_s(self) -> np.ndarray:
        """Box-centre velocity [2] ``(vx, vy)``, pixels per second."""
        return self.mean[4:6].copy()

    # -- life cycle -------------------------------------------------------------------
    def predict(self, kf: KalmanFilter, dt_s: float) -> None:
        """Propagate the state by ``dt_s`` seconds; one more image without (yet) a match."""
        self.set_predicted(*kf.predict(self.mean, self.cov, dt_s))

    def set_predicted(self, mean: np.ndarray, cov: np.ndarray) -> None:
        """``predict`` with the state already propagated (the tracker batches the filter)."""
        self.mean, self.cov = mean, cov
        self.age += 1
        self.time_since_update += 1

    def update(self, kf: KalmanFilter, detection: Detection) -> None:
        """Correct with a matched detection; keep its feature, instance id and score."""
        self.set_updated(*kf.update(self.mean, self.cov, detection.to_xyah()), detection)

    def set_updated(self, mean: np.ndarray, cov: np.ndarray, detection: Detection) -> None:
        """``update`` with the corrected state already computed (the tracker batches)."""
        self.mean, self.cov = mean, cov
        if detection.feature is not None:
            self.features.append(detection.feature)
        self.instance_id = detection.instance_id
        self.score = detection.score
        self.hits += 1
        self.time_since_update = 0
        if self.state == TrackState.TENTATIVE and self.hits >= self._n_init:
            self.state = TrackState.CONFIRMED

    def mark_missed(self) -> None:
        """No detection this image: delete a tentative track or one missed too long."""
        if self.state == TrackState.TENTATIVE or self.time_since_update > self._max_age:
            self.state = TrackState.DELETED

    def is_tentative(self) -> bool:
        return self.state == TrackState.TENTATIVE

    def is_confirmed(self) -> bool:
        return self.state == TrackState.CONFIRMED

    def is_deleted(self) -> bool:
        return self.state == TrackState.DELETED
