"""6D pose error measures (numpy): ADD, ADD-S, their AUC, rotation and translation error.

Poses are (R [3, 3], t [3] metres) mapping model to camera; model points [M, 3]
metres in the model frame.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

AUC_MAX_THRESHOLD_M = 0.10
"""The ADD(-S) AUC integrates accuracy over thresholds 0..10 cm (as PoseCNN and
DenseFusion report it on YCB-Video)."""


def add_m(points_m: np.ndarray, R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray) -> float:
    """ADD: mean distance between each model point under the estimate and the same
    point under the ground truth (metres)."""
    return float(np.linalg.norm(points_m @ (R_est - R_gt).T + (t_est - t_gt), axis=1).mean())


def adds_m(points_m: np.ndarray, R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray) -> float:
    """ADD-S: mean distance from each model point under the estimate to the closest
    model point under the ground truth (metres)."""
    est = points_m @ R_est.T + t_est
    gt = points_m @ R_gt.T + t_gt
    return float(cKDTree(gt).query(est, k=1)[0].mean())


def add_or_adds_m(points_m: np.ndarray, symmetric: bool, R_est, t_est, R_gt, t_gt) -> float:
    """ADD-S for symmetric parts, ADD otherwise."""
    return (adds_m if symmetric else add_m)(points_m, R_est, t_est, R_gt, t_gt)


def auc(distances_m: np.ndarray, max_threshold_m: float = AUC_MAX_THRESHOLD_M, steps: int = 1000) -> float:
    """Area under the accuracy-vs-threshold curve, thresholds 0..max_threshold_m,
    normalised to [0, 1] (1: every distance is 0). NaN distances count as failures."""
    d = np.asarray(distances_m, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    d = np.where(np.isfinite(d), d, np.inf)
    thresholds = np.linspace(0.0, max_threshold_m, steps + 1)
    acc = (d[None, :] < thresholds[:, None]).mean(axis=1)
    return float(np.trapezoid(acc, thresholds) / max_threshold_m)


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Angle of R_est R_gt^T in degrees."""
    c = (np.trace(R_est @ R_gt.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def translation_error_m(t_est: np.ndarray, t_gt: np.ndarray) -> float:
    """Euclidean distance between the translations (metres)."""
    return float(np.linalg.norm(np.asarray(t_est) - np.asarray(t_gt)))
