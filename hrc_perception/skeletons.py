"""Skeleton conventions shared by the simulator, datasets and drawing."""
from __future__ import annotations

# The 17 COCO person keypoints, in COCO order.
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle")

# The COCO person skeleton: limbs as 0-based index pairs into COCO17_NAMES
# (COCO's own annotation files use the same pairs 1-based).
COCO17_BONES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def chain_bones(num_joints: int) -> tuple[tuple[int, int], ...]:
    """0-based pairs (0, 1), (1, 2), ... of a serial chain (a robot arm's keypoints)."""
    return tuple((j, j + 1) for j in range(num_joints - 1))


# COCO17_FLIP[j]: the joint a mirror image (or a body turned around) puts where joint j was
# (left and right exchanged; nose itself)
COCO17_FLIP = tuple(COCO17_NAMES.index(n.replace("left", "@").replace("right", "left").replace("@", "right"))
                    for n in COCO17_NAMES)
