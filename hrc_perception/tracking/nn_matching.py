"""Appearance metric: nearest-neighbour cosine distance to a per-track feature gallery.

Every feature is L2-normalised on the way in, so the cosine distance is
``1 - <a, b>``, in ``[0, 2]``. The distance of a track to a detection is the smallest
distance between the detection's feature and any feature in the track's gallery (the
last ``budget`` features seen for that track).

Missing appearance: a track with an empty gallery, or a detection feature that is zero
or non-finite, is at ``MAX_COSINE_DISTANCE`` (2.0) from everything. That is above any
sensible ``matching_threshold``, so such pairs never match on appearance; the tracker
then matches them by IoU only (see ``Tracker``).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

#: Distance given to pairs without an appearance feature on one side.
MAX_COSINE_DISTANCE = 2.0
#: Default matching threshold (the tracker's ``max_cosine_distance``) and gallery size,
#: chosen on a tuning set (synthetic episodes of another seed than the test set, the
#: shipped model's learned embedding): thresholds 0.3 and 0.4 gave the fewest identity
#: switches with the segmentation model as input; galleries of 30, 50 and 100 features
#: gave identical results, and 50 (more than the default max_age of 30 images) halves the
#: appearance cost per image against the Deep SORT paper's 100.
DEFAULT_MAX_COSINE_DISTANCE = 0.3
DEFAULT_NN_BUDGET = 50


def normalize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalise rows of x [N, D]; returns (normalised float64 [N, D], valid [N] bool).

    Rows with zero norm or non-finite values are invalid and come back as zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    finite = np.all(np.isfinite(x), axis=1)
    x = np.where(finite[:, None], x, 0.0)
    norm = np.linalg.norm(x, axis=1)
    valid = finite & (norm > 0)
    out = np.zeros_like(x)
    out[valid] = x[valid] / norm[valid, None]
    return out, valid


class NearestNeighborDistanceMetric:
    """Cosine nearest-neighbour distance with a per-target gallery.

    Args:
        matching_threshold: largest cosine distance accepted as a match (the tracker's
            ``max_distance`` for the appearance stage), e.g. 0.2.
        budget: keep at most this many most-recent features per target; None keeps all.
    """

    def __init__(self, matching_threshold: float, budget: int | None = None) -> None:
        if budget is not None and budget < 1:
            raise ValueError(f"budget must be >= 1 or None, got {budget}")
        self.matching_threshold = float(matching_threshold)
        self.budget = budget
        self.samples: dict[int, np.ndarray] = {}  # target -> [K, D] float32 unit rows, oldest first

    def partial_fit(self, features: np.ndarray, targets: Sequence[int],
                    active_targets: Iterable[int]) -> None:
        """Add features [N, D] for targets [N] (track ids); forget targets not active.

        Invalid features (zero or non-finite) are skipped.
        """
        features = np.asarray(features, dtype=np.float64)
        targets = np.asarray(targets).reshape(-1)
        if len(targets):
            feats, valid = normalize_rows(features.reshape(len(targets), -1))
            feats, targets = feats[valid].astype(np.float32), targets[valid]
            for t in dict.fromkeys(targets.tolist()):  # unique, in order
                new = feats[targets == t]
                g = self.samples.get(int(t))
                if g is not None and g.shape[1] == new.shape[1]:
                    new = np.concatenate([g, new])
                self.samples[int(t)] = new if self.budget is None else new[-self.budget:]
        active = {int(t) for t in active_targets}
        self.samples = {t: g for t, g in self.samples.items() if t in active}

    def distance(self, features: np.ndarray, targets: Sequence[int]) -> np.ndarray:
        """Cost matrix [len(targets), N]: smallest cosine distance of each feature [N, D]
        to each target's gallery; ``MAX_COSINE_DISTANCE`` where either side has none."""
        features = np.asarray(features, dtype=np.float64)
        n = features.shape[0] if features.ndim >= 1 else 0
        cost = np.full((len(targets), n), MAX_COSINE_DISTANCE)
        if n == 0:
            return cost
        feats, valid = normalize_rows(features.reshape(n, -1))
        if not valid.any():
            return cost
        q = feats[valid].astype(np.float32).T  # [D, n_valid]
        best = np.full((len(targets), q.shape[1]), np.nan, dtype=np.float32)  # best similarity
        for row, t in enumerate(targets):
            g = self.samples.get(int(t))
            if g is not None and g.shape[1] == q.shape[0]:
                # one small product per target: a single large one triggers multi-threaded
                # BLAS, which is far slower on a few shared cores
                best[row] = (g @ q).max(axis=0)
        known = ~np.isnan(best)
        cost[:, valid] = np.where(known, np.clip(1.0 - best, 0.0, 2.0), MAX_COSINE_DISTANCE)
        return cost
