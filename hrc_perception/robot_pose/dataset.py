"""Robot keypoint frames of a ``hrc-perception synth --dataset keypoints`` output, and
the training dataset (network input, SPDH targets, augmentation).

A frame's XYZ image is the one the synthesizer stored (the sensor's noisy depth,
nearest-neighbour subsampled, :mod:`hrc_perception.io.keypoints_npz`); the
predictor computes the same image from a depth frame with :func:`depth_to_xyz_input`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from hrc_perception.geometry import invert_T
from hrc_perception.io.keypoints_npz import resized_K
from hrc_perception.robot_pose.network import xyz_input
from hrc_perception.robot_pose.spdh import HeatmapSpec, encode


@dataclass
class RobotFrames:
    """N frames of robot keypoints with their XYZ images.

    xyz_m: [N, H, W, 3] float16 camera frame, metres (0 = no depth). K_xyz: [N, 3, 3]
    intrinsics of that H x W image. robot_xyz_m: [N, J, 3] camera frame. robot_vis:
    [N, J] (0 outside, 1 occluded, 2 visible). q_rad: [N, D] joint positions.
    T_cam_base: [N, 4, 4]. episode, frame_index, stamp_ns: [N]. K_full, full_hw: the
    colour image's intrinsics [N, 3, 3] and size (H, W).
    """
    xyz_m: np.ndarray
    K_xyz: np.ndarray
    robot_xyz_m: np.ndarray
    robot_vis: np.ndarray
    q_rad: np.ndarray
    T_cam_base: np.ndarray
    episode: np.ndarray
    frame_index: np.ndarray
    stamp_ns: np.ndarray
    K_full: np.ndarray
    full_hw: tuple[int, int]
    keypoint_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.xyz_m)

    def keypoints_base_m(self) -> np.ndarray:
        """Ground-truth keypoints [N, J, 3] in the robot base frame."""
        T = np.stack([invert_T(t) for t in self.T_cam_base])
        return np.einsum("nij,nkj->nki", T[:, :3, :3], self.robot_xyz_m) + T[:, None, :3, 3]


def keypoints_dir(synth_dir: Path) -> Path:
    """The keypoints folder of a synth output (``OUT/keypoints``), or the folder itself."""
    synth_dir = Path(synth_dir)
    return synth_dir / "keypoints" if (synth_dir / "keypoints" / "index.json").is_file() else synth_dir


def load_robot_frames(synth_dir: str | Path, max_frames: int | None = None, quiet: bool = True) -> RobotFrames:
    """Every frame (or the first max_frames) of a keypoints dataset; ValueError when
    the folder is not one."""
    root = keypoints_dir(Path(synth_dir))
    index_path = root / "index.json"
    if not index_path.is_file():
        raise ValueError(f"{synth_dir}: no keypoints dataset (expected {index_path}; "
                         f"make one with `hrc-perception synth --dataset keypoints`)")
    index = json.loads(index_path.read_text())
    keys = ("xyz_m", "K_xyz", "robot_xyz_m", "robot_vis", "robot_joint_positions_rad", "T_cam_base", "episode",
            "frame_index", "stamp_ns", "K")
    parts: dict[str, list] = {k: [] for k in keys}
    n = 0
    for chunk in index["chunks"]:
        with np.load(root / chunk["file"]) as z:
            take = chunk["num_frames"] if max_frames is None else min(chunk["num_frames"], max_frames - n)
            for k in keys:
                parts[k].append(z[k][:take])
        n += take
        if not quiet:
            print(f"robot_pose data: {n}/{index['num_frames']} frames", file=sys.stderr)
        if max_frames is not None and n >= max_frames:
            break
    if n == 0:
        raise ValueError(f"{root}: the keypoints dataset has no frames")
    a = {k: np.concatenate(v) for k, v in parts.items()}
    full_hw = _full_size(a["K"][0], a["K_xyz"][0], a["xyz_m"].shape[1:3])
    return RobotFrames(a["xyz_m"], a["K_xyz"], a["robot_xyz_m"].astype(np.float64), a["robot_vis"],
                       a["robot_joint_positions_rad"], a["T_cam_base"], a["episode"], a["frame_index"],
                       a["stamp_ns"], a["K"], full_hw, tuple(index["robot_keypoint_names"]))


def concat_robot_frames(parts: list[RobotFrames]) -> RobotFrames:
    """The frames of several keypoints datasets, in order; ValueError when their
    keypoints, XYZ image size or full image size differ. Episode numbers are offset
    so that episodes of different datasets stay apart."""
    first = parts[0]
    for f in parts[1:]:
        if (f.keypoint_names, f.xyz_m.shape[1:], f.full_hw) != (first.keypoint_names, first.xyz_m.shape[1:],
                                                                 first.full_hw):
            raise ValueError(f"keypoints datasets differ: {first.keypoint_names} {first.xyz_m.shape[1:]} "
                             f"{first.full_hw} vs {f.keypoint_names} {f.xyz_m.shape[1:]} {f.full_hw}")
    if len(parts) == 1:
        return first
    offsets = np.cumsum([0] + [int(f.episode.max()) + 1 for f in parts[:-1]])
    per_frame = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
                 for f in fields(RobotFrames) if f.name not in ("episode", "full_hw", "keypoint_names")}
    return RobotFrames(**per_frame, episode=np.concatenate([p.episode + o for p, o in zip(parts, offsets)]),
                       full_hw=first.full_hw, keypoint_names=first.keypoint_names)


def _full_size(K_full: np.ndarray, K_small: np.ndarray, small_hw: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the full image, from fx_small = fx * w / W (resized_K)."""
    W = int(round(small_hw[1] * K_full[0, 0] / K_small[0, 0]))
    H = int(round(small_hw[0] * K_full[1, 1] / K_small[1, 1]))
    return H, W


def heatmap_K(K_input: np.ndarray, input_hw: tuple[int, int], spec: HeatmapSpec) -> np.ndarray:
    """Intrinsics of the heatmap grid of a network input with intrinsics K_input."""
    return resized_K(K_input, input_hw, spec.hw)


@dataclass(frozen=True)
class RobotAugment:
    """flip_p: chance of a left-right mirror (x negated, cx mirrored); holes_p: chance
    of 1-4 rectangular holes (no depth) of up to holes_max_frac of the image side."""
    flip_p: float = 0.5
    holes_p: float = 0.3
    holes_max_frac: float = 0.25


class RobotPoseDataset(torch.utils.data.Dataset):
    """(input [4, H, W], target heatmaps [2J, h, w], joint depths [J] metres) of RobotFrames.

    Joints outside the image (visibility 0) get all-zero heatmaps: the network
    learns not to invent them. augment None: no augmentation."""

    def __init__(self, frames: RobotFrames, spec: HeatmapSpec, augment: RobotAugment | None = None, seed: int = 0):
        self.frames, self.spec, self.augment, self.seed = frames, spec, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int):
        f = self.frames
        xyz = f.xyz_m[i].astype(np.float32)
        K = f.K_xyz[i].copy()
        joints = f.robot_xyz_m[i].copy()
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            xyz, K, joints = _augment(xyz, K, joints, self.augment, rng)
        hw = xyz.shape[:2]
        target = encode(joints, heatmap_K(K, hw, self.spec), self.spec, valid=f.robot_vis[i] > 0)
        return (torch.from_numpy(xyz_input(xyz, self.spec.z_range_m)), torch.from_numpy(target),
                torch.from_numpy(joints[:, 2].astype(np.float32)))


def mirror_xyz(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Left-right mirror of an XYZ image xyz [H, W, 3] (camera frame: x negated); K [3, 3]
    of the image is mirrored in place (cx). Returns the new image."""
    xyz = xyz[:, ::-1].copy()
    xyz[..., 0] *= -1
    K[0, 2] = xyz.shape[1] - 1 - K[0, 2]
    return xyz


def cut_holes(xyz: np.ndarray, rng: np.random.Generator, max_frac: float, max_holes: int) -> None:
    """Zero 1..max_holes rectangles of an XYZ image xyz [H, W, 3] in place, each side
    5%..max_frac of the image's (no depth there)."""
    H, W = xyz.shape[:2]
    for _ in range(int(rng.integers(1, max_holes + 1))):
        h = int(rng.uniform(0.05, max_frac) * H)
        w = int(rng.uniform(0.05, max_frac) * W)
        r, c = int(rng.integers(0, H - h)), int(rng.integers(0, W - w))
        xyz[r:r + h, c:c + w] = 0


def _augment(xyz: np.ndarray, K: np.ndarray, joints: np.ndarray, aug: RobotAugment, rng: np.random.Generator):
    if rng.random() < aug.flip_p:
        xyz = mirror_xyz(xyz, K)
        joints[:, 0] *= -1
    if rng.random() < aug.holes_p:
        cut_holes(xyz, rng, aug.holes_max_frac, 4)
    return xyz, K, joints
