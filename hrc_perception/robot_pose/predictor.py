"""Robot skeleton from one depth frame: XYZ image -> SPDH network -> 3D joints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hrc_perception.engines import as_module
from hrc_perception.io.keypoints_npz import resized_K, sample_indices
from hrc_perception.robot_pose.dataset import heatmap_K
from hrc_perception.robot_pose.model import load_model
from hrc_perception.robot_pose.network import xyz_input
from hrc_perception.robot_pose.spdh import DecodedJoints, decode, decode_uv_depth, heatmaps_from_logits

METHODS = ("spdh", "uv_depth")


def depth_to_input_xyz(depth_m: np.ndarray, K: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(XYZ image [h, w, 3] float32, its intrinsics [3, 3]) of a depth image [H, W]
    (metres, 0 or non-finite = invalid) with intrinsics K, subsampled to input_hw by
    nearest neighbour exactly as the synthesizer's keypoints dataset stores it."""
    H, W = depth_m.shape
    rows, cols = sample_indices(H, input_hw[0]), sample_indices(W, input_hw[1])
    z = np.asarray(depth_m, dtype=np.float32)[rows[:, None], cols[None, :]]
    z = np.where(np.isfinite(z) & (z > 0), z, 0.0).astype(np.float32)
    x = (cols[None, :] - K[0, 2]) / K[0, 0] * z
    y = (rows[:, None] - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=-1).astype(np.float32), resized_K(K, (H, W), input_hw)


def xyz_on_grid(xyz_m: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """XYZ image [H, W, 3] resampled (nearest pixel centre) to hw = (h, w): the depth
    under each heatmap pixel, for the 2D + depth baseline."""
    return xyz_m[sample_indices(xyz_m.shape[0], hw[0])[:, None], sample_indices(xyz_m.shape[1], hw[1])[None, :]]


@dataclass
class RobotSkeleton:
    """A robot skeleton estimated from one frame.

    names: joint (URDF link) names [J]. xyz_cam_m: [J, 3] camera optical frame,
    metres. uv_px: [J, 2] pixels of the input depth/colour image. confidence: [J] in
    [0, 1], the lower heatmap peak times the presence probability. valid: [J] bool,
    confidence >= the predictor's min_confidence and finite: the joints to use (the
    others are not seen well enough to be trusted).
    """
    names: tuple[str, ...]
    xyz_cam_m: np.ndarray
    uv_px: np.ndarray
    confidence: np.ndarray
    valid: np.ndarray


class RobotPosePredictor:
    """weights: an SPDH model file. min_confidence: joints below it are not valid.
    method: 'spdh' (both planes) or 'uv_depth' (the baseline: uv plane + the depth at
    the peak pixel). engine: what runs the network (:mod:`hrc_perception.engines`)."""

    def __init__(self, weights: str | Path, device: str = "cpu", min_confidence: float = 0.3,
                 method: str = "spdh", engine: str = "torch"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.build, self.net, self.card = load_model(weights, map_location=device)
        self.net.to(device)
        self.net, self.engine = as_module(self.net, engine), engine
        self.device, self.min_confidence, self.method = device, float(min_confidence), method
        self.spec = self.build.heatmap_spec
        self.names = tuple(self.card["keypoints"])

    @torch.inference_mode()
    def heatmaps(self, xyz_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(heatmaps [2J, h, w] on the scale of spdh.encode, presence probability [J]) for
        an XYZ image [H_in, W_in, 3] of input_hw."""
        x = torch.from_numpy(xyz_input(xyz_m, self.spec.z_range_m))[None].to(self.device)
        logits, presence = self.net(x)
        return (heatmaps_from_logits(logits[0].float().cpu().numpy(), self.spec.sigma_px),
                torch.sigmoid(presence[0]).float().cpu().numpy())

    def predict_xyz(self, xyz_m: np.ndarray, K_xyz: np.ndarray, full_hw: tuple[int, int]) -> RobotSkeleton:
        """Skeleton from an XYZ image [h, w, 3] of input_hw with intrinsics K_xyz;
        pixels are given in an image of full_hw (H, W)."""
        if tuple(xyz_m.shape[:2]) != tuple(self.build.input_hw):
            raise ValueError(f"XYZ image must be {tuple(self.build.input_hw)}, got {xyz_m.shape[:2]}")
        hm, presence = self.heatmaps(xyz_m)
        K_hm = heatmap_K(K_xyz, tuple(xyz_m.shape[:2]), self.spec)
        if self.method == "spdh":
            d: DecodedJoints = decode(hm, K_hm, self.spec)
        else:
            d = decode_uv_depth(hm, K_hm, xyz_on_grid(xyz_m, self.spec.hw))
        confidence = d.confidence * presence
        scale = np.array([full_hw[1] / self.spec.hw[1], full_hw[0] / self.spec.hw[0]])
        uv_px = (d.uv_hm + 0.5) * scale - 0.5
        valid = (confidence >= self.min_confidence) & np.isfinite(d.xyz_cam_m).all(axis=1)
        return RobotSkeleton(self.names, d.xyz_cam_m, uv_px, confidence, valid)

    def predict(self, depth_m: np.ndarray, K: np.ndarray) -> RobotSkeleton:
        """Skeleton from a depth image [H, W] (metres, aligned to the colour camera)
        and its intrinsics K [3, 3]."""
        depth_m = np.asarray(depth_m)
        if depth_m.ndim != 2 or min(depth_m.shape) < 2:
            raise ValueError(f"depth must be a 2D image, got shape {depth_m.shape}")
        xyz, K_xyz = depth_to_input_xyz(depth_m, np.asarray(K, dtype=np.float64), self.build.input_hw)
        return self.predict_xyz(xyz, K_xyz, depth_m.shape)
