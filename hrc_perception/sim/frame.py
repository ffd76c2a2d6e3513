"""One rendered frame of the synthetic cell and its exact ground truth.

All 3D quantities are in metres in the camera optical frame unless a name says
otherwise (``T_world_cam``: camera pose in the world frame, z up, origin on the
floor under the table centre). Pixel coordinates are (u, v) = (column, row).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Keypoint visibility, as in COCO: 0 outside the image (not labelled), 1 inside
# the image but hidden behind something else, 2 visible.
VIS_OUTSIDE, VIS_OCCLUDED, VIS_VISIBLE = 0, 1, 2

CATEGORY_ROBOT, CATEGORY_PART, CATEGORY_PERSON = "robot", "part", "person"


@dataclass(frozen=True)
class ClassInfo:
    """One class of the run: class_id 1-based (0 is background), name ('panda',
    'person', 'gear', ...), category ('robot' / 'part' / 'person'), and the names of
    its skeleton joints for the robot and people (empty for parts)."""
    class_id: int
    name: str
    category: str
    keypoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instance:
    """One object instance visible to the instance mask.

    instance_id: value of its pixels in ``Frame.instance_mask`` (1..65535), stable
        for the whole episode (its identity); 0 is background.
    category: 'robot', 'part' or 'person'.
    class_name: e.g. 'panda', 'gear', 'person'.
    class_id: 1-based index into the run's class list (``SynthRun.classes``).
    """
    instance_id: int
    category: str
    class_name: str
    class_id: int


@dataclass
class Keypoints:
    """A named skeleton's joints.

    xyz_cam_m: [J, 3] float64, camera frame; uv_px: [J, 2] float64 projections;
    visibility: [J] int8 (VIS_OUTSIDE / VIS_OCCLUDED / VIS_VISIBLE).
    """
    names: tuple[str, ...]
    xyz_cam_m: np.ndarray
    uv_px: np.ndarray
    visibility: np.ndarray


@dataclass
class RobotGT:
    """joint_names / joint_positions_rad: the URDF's movable joints, in URDF order.
    T_cam_base: robot base link pose in the camera frame [4, 4]."""
    instance_id: int
    model: str
    joint_names: tuple[str, ...]
    joint_positions_rad: np.ndarray
    T_cam_base: np.ndarray
    keypoints: Keypoints


@dataclass
class PartGT:
    """T_cam_obj: part model frame to camera frame [4, 4] (BOP's cam_R_m2c, cam_t_m2c)."""
    instance_id: int
    class_name: str
    T_cam_obj: np.ndarray


@dataclass
class HumanGT:
    """A person, COCO-17 keypoints; identity = instance_id (stable in an episode)."""
    instance_id: int
    keypoints: Keypoints


@dataclass
class Frame:
    """Sensor images and ground truth of one time step.

    rgb: [H, W, 3] uint8. depth_mm: [H, W] uint16, the noisy sensor depth (z, mm,
    0 = invalid). depth_clean_m: [H, W] float32 exact z-depth (0 where no surface).
    instance_mask: [H, W] uint16 instance ids (0 background). K: [3, 3].
    """
    episode: int
    index: int
    time_s: float
    stamp_ns: int
    rgb: np.ndarray
    depth_mm: np.ndarray
    depth_clean_m: np.ndarray
    instance_mask: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    instances: list[Instance]
    robot: RobotGT
    parts: list[PartGT] = field(default_factory=list)
    humans: list[HumanGT] = field(default_factory=list)
