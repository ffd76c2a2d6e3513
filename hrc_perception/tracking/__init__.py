"""Deep SORT multi-object tracking (numpy/scipy only, no ROS, no torch).

Small modules, one job each, after the shape of the reference Deep SORT:

- ``kalman``: constant-velocity Kalman filter on ``xyah`` boxes; holds no per-track state.
- ``detection``: one detection (``tlwh`` box in pixels, score, class, appearance feature).
- ``iou_matching`` / ``nn_matching``: the IoU cost and the cosine appearance metric.
- ``linear_assignment``: Hungarian matching, the matching cascade, Mahalanobis gating.
- ``track`` / ``tracker``: track life cycle and the multi-target tracker
  (``use_appearance=False`` gives plain SORT with the same code).
- ``mot``: MOTChallenge files and CLEAR-MOT / IDF1 evaluation (motmetrics).
- ``evaluate``: ``hrc-perception eval tracking``: the trackers on synthetic episodes and
  MOT15 (it imports the segmentation model, and torch, only when given weights).

Units: pixels for boxes, seconds for time steps (``Tracker.predict(dt_s)``).
"""
from hrc_perception.tracking.detection import Detection
from hrc_perception.tracking.kalman import CHI2_95, KalmanFilter
from hrc_perception.tracking.nn_matching import NearestNeighborDistanceMetric
from hrc_perception.tracking.track import Track, TrackState
from hrc_perception.tracking.tracker import Tracker

__all__ = [
    "CHI2_95",
    "Detection",
    "KalmanFilter",
    "NearestNeighborDistanceMetric",
    "Track",
    "TrackState",
    "Tracker",
]
