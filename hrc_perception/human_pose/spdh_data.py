"""The SPDH human backend's training data: person depth crops (``synth --dataset
person_crops``, :mod:`hrc_perception.io.person_crops_npz`) as network inputs and SPDH
targets.

Per crop: the input is the person relative to its reference point
(:func:`~hrc_perception.human_pose.crops.shifted_xyz`, z shifted by
``Z_SHIFT_M``) through :func:`~hrc_perception.robot_pose.network.xyz_input` with the
network's depth range ``(Z_SHIFT_M - 1, Z_SHIFT_M + 1)``; the targets are SPDH
heatmaps of the joints in the same shifted frame (the uz rows cover +-1 m around the
reference depth), joints outside the crop or that range get none.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hrc_perception.human_pose.crops import Z_SHIFT_M, shifted_xyz
from hrc_perception.robot_pose.dataset import cut_holes, heatmap_K, mirror_xyz
from hrc_perception.robot_pose.network import xyz_input
from hrc_perception.robot_pose.spdh import HeatmapSpec, encode
from hrc_perception.skeletons import COCO17_FLIP, COCO17_NAMES  # noqa: F401 (COCO17_FLIP re-exported)

NETWORK_Z_RANGE_M = (Z_SHIFT_M - 1.0, Z_SHIFT_M + 1.0)
# COCO-17 index of each joint's mirror image (left <-> right)


@dataclass
class PersonCrops:
    """All crops of a person_crops dataset (arrays as in its module doc)."""
    xyz_m: np.ndarray       # [N, S, S, 3] float16
    K_crop: np.ndarray      # [N, 3, 3]
    ref_m: np.ndarray       # [N, 3]
    joints_m: np.ndarray    # [N, 17, 3]
    vis: np.ndarray         # [N, 17]
    episode: np.ndarray     # [N]

    def __len__(self) -> int:
        return len(self.ref_m)


def person_crops_dir(synth_dir: Path) -> Path:
    d = Path(synth_dir)
    return d / "person_crops" if (d / "person_crops" / "index.json").is_file() else d


def load_person_crops(synth_dir: str | Path, max_crops: int | None = None) -> PersonCrops:
    """Every crop of a synth output's person_crops/ (or of that folder itself)."""
    d = person_crops_dir(Path(synth_dir))
    index_path = d / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{synth_dir}: no person_crops/index.json (hrc-perception synth --dataset "
                                "person_crops)")
    index = json.loads(index_path.read_text())
    if index["keypoint_names"] != list(COCO17_NAMES):
        raise ValueError(f"{d}: keypoints {index['keypoint_names']} are not COCO-17")
    parts: dict[str, list] = {k: [] for k in ("xyz_m", "K_crop", "ref_m", "joints_m", "vis", "episode")}
    n = 0
    for chunk in index["chunks"]:
        with np.load(d / chunk["file"]) as z:
            for k in parts:
                parts[k].append(z[k])
        n += chunk["num_crops"]
        if max_crops is not None and n >= max_crops:
            break
    arrays = {k: np.concatenate(v)[:max_crops] for k, v in parts.items()}
    return PersonCrops(**arrays)


def crop_input(xyz_m: np.ndarray, ref_m: np.ndarray) -> np.ndarray:
    """Network input [4, S, S] of a crop's XYZ image (0 = no pixel) and its reference point."""
    return xyz_input(shifted_xyz(xyz_m, ref_m), NETWORK_Z_RANGE_M)


def crop_spec(spec: HeatmapSpec, ref_z_m: float) -> HeatmapSpec:
    """The network's heatmap spec with its uz rows in camera depth for a crop whose
    reference depth is ref_z_m (decode with it to get camera-frame joints)."""
    return HeatmapSpec(spec.hw, (ref_z_m - 1.0, ref_z_m + 1.0), spec.sigma_px)


@dataclass(frozen=True)
class CropAugment:
    """flip_p: mirror (x negated, cx mirrored, left and right joints swapped); holes_p:
    chance of 1-3 rectangular holes of up to holes_max_frac of the side; drop_p: chance
    of dropping a random 0-20% of the person's pixels (sensor dropouts, mask errors);
    hand_cut_p: chance of removing the pixels around one wrist (a disc of
    hand_cut_radius_px around its projection: a segmentation mask that stops short of a
    hand over the robot), the wrist's target kept."""
    flip_p: float = 0.5
    holes_p: float = 0.3
    holes_max_frac: float = 0.3
    drop_p: float = 0.3
    hand_cut_p: float = 0.0
    hand_cut_radius_px: tuple[float, float] = (6.0, 14.0)


class PersonCropDataset(torch.utils.data.Dataset):
    """(input [4, S, S], target heatmaps [34, S/2, S/2], joint depths [17] in the
    network's shifted depth) of PersonCrops. augment None: none."""

    def __init__(self, crops: PersonCrops, spec: HeatmapSpec, augment: CropAugment | None = None, seed: int = 0):
        self.crops, self.spec, self.augment, self.seed = crops, spec, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int):
        c = self.crops
        xyz = c.xyz_m[i].astype(np.float32)
        K = c.K_crop[i].copy()
        joints = c.joints_m[i].astype(np.float64)
        vis = c.vis[i].copy()
        ref = c.ref_m[i].astype(np.float64)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            xyz, K, joints, vis, ref = _augment(xyz, K, joints, vis, ref, self.augment, rng)
        size = xyz.shape[:2]
        spec = crop_spec(self.spec, float(ref[2]))
        target = encode(joints, heatmap_K(K, size, self.spec), spec, valid=vis > 0)
        z_shifted = (joints[:, 2] - ref[2] + Z_SHIFT_M).astype(np.float32)
        return torch.from_numpy(crop_input(xyz, ref)), torch.from_numpy(target), torch.from_numpy(z_shifted)


def _augment(xyz, K, joints, vis, ref, aug: CropAugment, rng: np.random.Generator):
    S = xyz.shape[0]
    if rng.random() < aug.flip_p:
        xyz = mirror_xyz(xyz, K)
        joints = joints[list(COCO17_FLIP)] * np.array([-1.0, 1.0, 1.0])
        vis = vis[list(COCO17_FLIP)]
        ref = ref * np.array([-1.0, 1.0, 1.0])
    if rng.random() < aug.holes_p:
        cut_holes(xyz, rng, aug.holes_max_frac, 3)
    if rng.random() < aug.drop_p:
        xyz[rng.random((S, S)) < rng.uniform(0.0, 0.2)] = 0
    if rng.random() < aug.hand_cut_p:
        j = COCO17_NAMES.index("left_wrist" if rng.random() < 0.5 else "right_wrist")
        if vis[j] > 0 and joints[j, 2] > 0:
            u = K[0, 0] * joints[j, 0] / joints[j, 2] + K[0, 2]
            v = K[1, 1] * joints[j, 1] / joints[j, 2] + K[1, 2]
            r = rng.uniform(*aug.hand_cut_radius_px)
            yy, xx = np.mgrid[0:S, 0:S]
            xyz[(xx - u) ** 2 + (yy - v) ** 2 <= r * r] = 0
    return xyz, K, joints, vis, ref
