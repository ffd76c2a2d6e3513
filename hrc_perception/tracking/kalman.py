"""Constant-velocity Kalman filter for image boxes in ``xyah`` format.

State (8): ``[x, y, a, h, vx, vy, va, vh]``
    ``x, y``: box centre, pixels; ``a``: aspect ratio width / height (unitless);
    ``h``: box height, pixels; ``vx, vy, vh``: pixels per second; ``va``: 1 / second.
Measurement (4): ``[x, y, a, h]`` (``Detection.to_xyah()``).

The filter holds no per-track state: every method takes a mean and covariance and
returns new ones; the track owns them.

Noise follows Deep SORT: the standard deviations of position and velocity are
proportional to the box height (a near object moves more pixels than a far one), with
weights ``std_weight_position = 1/20`` and ``std_weight_velocity = 1/160`` per frame.
Here the time step is in seconds, so "per frame" means per ``nominal_dt_s`` (the camera's
frame interval). The process noise is a random walk whose variance grows linearly with
``dt_s``: a step of exactly ``nominal_dt_s`` gives Deep SORT's per-frame noise, a gap of
several frames gives proportionally more, ``dt_s = 0`` gives none.
"""
from __future__ import annotations

import numpy as np

#: 0.95 quantile of the chi-square distribution by degrees of freedom: the gate on a
#: squared Mahalanobis distance (``only_position``: 2 dof; full ``xyah``: 4 dof).
CHI2_95 = {
    1: 3.8415,
    2: 5.9915,
    3: 7.8147,
    4: 9.4877,
    5: 11.070,
    6: 12.592,
    7: 14.067,
    8: 15.507,
    9: 16.919,
}

NDIM = 4  # measurement dimension (x, y, a, h)


class KalmanFilter:
    """Constant-velocity Kalman filter on ``xyah`` boxes (pixels, seconds).

    Args:
        nominal_dt_s: the frame interval, seconds, at which the per-frame noise weights
            apply (1/30 for a 30 fps camera).
        std_weight_position: position noise std as a fraction of the box height, per frame.
        std_weight_velocity: velocity noise std as a fraction of the box height, per frame
            (pixels per frame per frame; converted to pixels per second internally).
        std_aspect / std_aspect_velocity: process noise std of ``a`` (unitless) and ``va``
            (per frame), independent of the height.
        std_aspect_measurement: measurement noise std of ``a`` (unitless).
    """

    def __init__(
        self,
        nominal_dt_s: float = 1.0 / 30.0,
        std_weight_position: float = 1.0 / 20.0,
        std_weight_velocity: float = 1.0 / 160.0,
        std_aspect: float = 1e-2,
        std_aspect_velocity: float = 1e-5,
        std_aspect_measurement: float = 1e-1,
    ) -> None:
        if not (np.isfinite(nominal_dt_s) and nominal_dt_s > 0):
            raise ValueError(f"nominal_dt_s must be > 0 seconds, got {nominal_dt_s}")
        self.nominal_dt_s = float(nominal_dt_s)
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)
        self.std_aspect = float(std_aspect)
        self.std_aspect_velocity = float(std_aspect_velocity)
        self.std_aspect_measurement = float(std_aspect_measurement)

    # -- helpers ----------------------------------------------------------------------
    def motion_matrix(self, dt_s: float) -> np.ndarray:
        """State transition F [8, 8] for a step of ``dt_s`` seconds."""
        F = np.eye(2 * NDIM)
        F[:NDIM, NDIM:] = dt_s * np.eye(NDIM)
        return F

    def _process_var(self, h: np.ndarray) -> np.ndarray:
        """Per-frame process variances [..., 8] (per-second units) at heights h [...]."""
        T = self.nominal_dt_s
        wp = self.std_weight_position * h
        wv = self.std_weight_velocity * h / T
        a = np.broadcast_to(self.std_aspect, h.shape)
        va = np.broadcast_to(self.std_aspect_velocity / T, h.shape)
        return np.stack([wp, wp, a, wp, wv, wv, va, wv], axis=-1) ** 2

    def process_noise(self, mean: np.ndarray, dt_s: float) -> np.ndarray:
        """Process noise Q [..., 8, 8] for a step of ``dt_s`` seconds at states [..., 8].

        Diagonal; per-frame stds (position: ``w_p * h``, velocity: ``w_v * h`` pixels per
        frame) turned into per-second units and scaled by ``dt_s / nominal_dt_s``.
        """
        var = self._process_var(np.asarray(mean)[..., 3]) * (dt_s / self.nominal_dt_s)
        return var[..., None, :] * np.eye(2 * NDIM)

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        """Measurement noise R [..., 4, 4] at states [..., 8] (pixels; unitless for ``a``)."""
        wp = self.std_weight_position * np.asarray(mean)[..., 3]
        a = np.broadcast_to(self.std_aspect_measurement, wp.shape)
        var = np.stack([wp, wp, a, wp], axis=-1) ** 2
        return var[..., None, :] * np.eye(NDIM)

    # -- filter -----------------------------------------------------------------------
    # predict, project, update and gating_distance accept a batch: mean [..., 8] and
    # cov [..., 8, 8] with the same leading dimensions (one track: [8], [8, 8]).
    def initiate(self, measurement_xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New track from one measurement ``[x, y, a, h]`` (pixels; ``a`` = w / h).

        Returns (mean [8], cov [8, 8]): zero velocity, position std ``2 * w_p * h``,
        velocity std ``10 * w_v * h`` pixels per frame (expressed per second).
        """
        z = np.asarray(measurement_xyah, dtype=np.float64).reshape(NDIM)
        mean = np.concatenate([z, np.zeros(NDIM)])
        std_scale = np.array([2, 2, 1, 2, 10, 10, 1, 10], dtype=np.float64)
        return mean, np.diag(self._process_var(z[3]) * std_scale ** 2)

    def predict(self, mean: np.ndarray, cov: np.ndarray, dt_s: float
                ) -> tuple[np.ndarray, np.ndarray]:
        """Propagate (mean [..., 8], cov [..., 8, 8]) by ``dt_s`` seconds (>= 0, finite).

        Raises ValueError for a negative or non-finite ``dt_s`` (out-of-order input is the
        caller's to handle).
        """
        dt_s = float(dt_s)
        if not np.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt_s must be a finite number of seconds >= 0, got {dt_s}")
        F = self.motion_matrix(dt_s)
        Q = self.process_noise(mean, dt_s)
        return mean @ F.T, F @ cov @ F.T + Q

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space distribution: (mean [..., 4] ``xyah``,
        innovation covariance S [..., 4, 4] = H P H^T + R), with H = [I 0]."""
        return mean[..., :NDIM].copy(), cov[..., :NDIM, :NDIM] + self.measurement_noise(mean)

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement_xyah: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Correct (mean [..., 8], cov [..., 8, 8]) with measurements [..., 4] ``xyah``."""
        z = np.asarray(measurement_xyah, dtype=np.float64)
        z_pred, S = self.project(mean, cov)
        PHt = cov[..., :, :NDIM]  # P H^T [..., 8, 4]
        # K = P H^T S^-1, solved as S K^T = (P H^T)^T (S symmetric positive definite).
        K = np.swapaxes(np.linalg.solve(S, np.swapaxes(PHt, -1, -2)), -1, -2)
        new_mean = mean + (K @ (z - z_pred)[..., None])[..., 0]
        new_cov = cov - K @ S @ np.swapaxes(K, -1, -2)
        return new_mean, 0.5 * (new_cov + np.swapaxes(new_cov, -1, -2))

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, measurements_xyah: np.ndarray,
                        only_position: bool = False) -> np.ndarray:
        """Squared Mahalanobis distance [..., N] between states and measurements [N, 4] ``xyah``.

        One state (mean [8]) gives [N]; a batch (mean [T, 8]) gives [T, N].
        With ``only_position`` only the centre ``(x, y)`` is used (compare with
        ``CHI2_95[2]``); otherwise all four measurement dimensions (``CHI2_95[4]``).
        """
        z_pred, S = self.project(mean, cov)
        Z = np.asarray(measurements_xyah, dtype=np.float64).reshape(-1, NDIM)
        k = 2 if only_position else NDIM
        z_pred, S, Z = z_pred[..., :k], S[..., :k, :k], Z[:, :k]
        d = Z - z_pred[..., None, :]  # [..., N, k]
        sol = np.linalg.solve(S, np.swapaxes(d, -1, -2))  # [..., k, N]
        return np.sum(np.swapaxes(d, -1, -2) * sol, axis=-2)
