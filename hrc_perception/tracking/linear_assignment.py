"""Assignment of detections to tracks: Hungarian matching, matching cascade, gating.

Every matcher takes the cost function as an argument::

    distance_fn(tracks, detections, track_indices, detection_indices) -> cost [T, D]

and returns ``(matches, unmatched_tracks, unmatched_detections)``: a list of
``(track_index, detection_index)`` pairs and two lists of indices into ``tracks`` and
``detections``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from hrc_perception.tracking.kalman import CHI2_95, KalmanFilter

#: Cost of a forbidden pair (gated out, other class); anything above ``max_distance``
#: means "no match".
INFTY_COST = 1e5

DistanceFn = Callable[[Sequence, Sequence, list, list], np.ndarray]
MatchResult = tuple[list[tuple[int, int]], list[int], list[int]]


def min_cost_matching(distance_fn: DistanceFn, max_distance: float, tracks: Sequence,
                      detections: Sequence, track_indices: Sequence[int] | None = None,
                      detection_indices: Sequence[int] | None = None) -> MatchResult:
    """Globally optimal (Hungarian) assignment; pairs costing more than ``max_distance``
    are left unmatched.

    Costs above ``max_distance`` are clipped to just above it before solving, so a
    forbidden pair never pulls the optimum towards it (as in Deep SORT).
    """
    track_indices = list(range(len(tracks)) if track_indices is None else track_indices)
    detection_indices = list(range(len(detections)) if detection_indices is None
                             else detection_indices)
    if not track_indices or not detection_indices:
        return [], track_indices, detection_indices

    cost = np.array(distance_fn(tracks, detections, track_indices, detection_indices),
                    dtype=np.float64)
    if cost.shape != (len(track_indices), len(detection_indices)):
        raise ValueError(f"distance_fn returned {cost.shape}, expected "
                         f"{(len(track_indices), len(detection_indices))}")
    cost[~np.isfinite(cost)] = INFTY_COST
    cost[cost > max_distance] = max_distance + 1e-5
    rows, cols = linear_sum_assignment(cost)

    matches: list[tuple[int, int]] = []
    matched_t: set[int] = set()
    matched_d: set[int] = set()
    for r, c in zip(rows, cols):
        if cost[r, c] > max_distance:
            continue
        matches.append((track_indices[r], detection_indices[c]))
        matched_t.add(track_indices[r])
        matched_d.add(detection_indices[c])
    unmatched_tracks = [i for i in track_indices if i not in matched_t]
    unmatched_detections = [j for j in detection_indices if j not in matched_d]
    return matches, unmatched_tracks, unmatched_detections


def matching_cascade(distance_fn: DistanceFn, max_distance: float, cascade_depth: int,
                     tracks: Sequence, detections: Sequence,
                     track_indices: Sequence[int] | None = None,
                     detection_indices: Sequence[int] | None = None) -> MatchResult:
    """Match in order of ``time_since_update``: tracks seen most recently pick first.

    Level ``k`` (0 .. ``cascade_depth - 1``) matches the tracks with
    ``time_since_update == k + 1`` against the detections still free, with
    ``min_cost_matching``. Tracks whose ``time_since_update`` is not in
    ``1 .. cascade_depth`` stay unmatched.
    """
    track_indices = list(range(len(tracks)) if track_indices is None else track_indices)
    unmatched_detections = list(range(len(detections)) if detection_indices is None
                                else detection_indices)
    matches: list[tuple[int, int]] = []
    for level in range(cascade_depth):
        if not unmatched_detections:
            break
        level_tracks = [i for i in track_indices if tracks[i].time_since_update == 1 + level]
        if not level_tracks:
            continue
        level_matches, _, unmatched_detections = min_cost_matching(
            distance_fn, max_distance, tracks, detections, level_tracks, unmatched_detections)
        matches += level_matches
    matched_t = {i for i, _ in matches}
    unmatched_tracks = [i for i in track_indices if i not in matched_t]
    return matches, unmatched_tracks, unmatched_detections


def gate_cost_matrix(kf: KalmanFilter, cost: np.ndarray, tracks: Sequence, detections: Sequence,
                     track_indices: Sequence[int], detection_indices: Sequence[int],
                     gated_cost: float = INFTY_COST, only_position: bool = False) -> np.ndarray:
    """Set ``cost[row, col] = gated_cost`` where the detection lies outside the track's
    95 % chi-square gate (squared Mahalanobis distance of ``xyah`` to the track's
    predicted measurement; 4 dof, or 2 dof with ``only_position``). Modifies and returns
    ``cost`` [len(track_indices), len(detection_indices)].
    """
    if len(track_indices) == 0 or len(detection_indices) == 0:
        return cost
    threshold = CHI2_95[2 if only_position else 4]
    measurements = np.stack([detections[j].to_xyah() for j in detection_indices])
    means = np.stack([tracks[i].mean for i in track_indices])
    covs = np.stack([tracks[i].cov for i in track_indices])
    d2 = kf.gating_distance(means, covs, measurements, only_position)  # [T, N]
    cost[d2 > threshold] = gated_cost
    return cost
