"""Following a person between detections: this frame's crop from the person's last skeleton.

Segmentation and tracking run at whatever rate the safety path leaves (about 1 Hz on two
cores, a second late); the skeletons should come at camera rate. Between two track
arrays, each tracked person is found again in every depth frame near where their last
skeleton was: the person's pixels of this frame are the depth pixels (of the foreground,
where the caller knows the cell's background) whose 3D points lie within
``body_radius_m + max_speed_mps * age_s`` of the last skeleton's bones (COCO-17 limbs
between two known joints, and every known joint on none), ``age_s`` being that skeleton's
age, inside the box those bones' grown bounds project to. The depth backend (SPDH) then
estimates the skeleton from that crop, as it does from a segmentation mask.

The crop is for the skeleton's accuracy, not a safety bound: ``max_speed_mps`` is a
typical speed (chosen on a tuning seed, README), not ISO 13855's worst case; the safety
monitor's depth path counts whatever the crop misses.

What this cannot do: find a person the last skeleton does not place (fewer than
``min_joints`` known joints, or a skeleton older than ``max_age_s``), or tell apart two
people who touch; such a person gets no crop (the caller lists them with an unknown
skeleton, and the safety monitor's depth path sees their surface).

Frames: camera optical frame, metres; pixels with centres at integer coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrc_perception.geometry import project
from hrc_perception.human_pose.estimator import PersonInput
from hrc_perception.safety.capsules import point_segment_distances
from hrc_perception.skeletons import COCO17_BONES


GRID_PX = 128
"""The distances are computed on about this many pixels across the person's box."""


@dataclass(frozen=True)
class FollowParams:
    max_speed_mps: float = 1.0     # the crop grows this fast with the skeleton's age (tuned; not a worst case)
    body_radius_m: float = 0.25    # the body's surface lies within this of its bones (arm, torso, head)
    max_age_s: float = 0.5         # a last skeleton older than this is not followed
    min_joints: int = 4            # a last skeleton with fewer known joints is not followed

    def __post_init__(self):
        if not (self.max_speed_mps >= 0 and self.body_radius_m > 0 and self.max_age_s >= 0
                and self.min_joints >= 1):
            raise ValueError(f"invalid follow parameters: {self}")


def bone_segments(xyz_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a [S, 3], b [S, 3]) of a skeleton xyz_m [17, 3] (NaN = unknown): every COCO-17 bone
    with both joints known, and every known joint on no such bone as a segment of length 0."""
    known = np.isfinite(xyz_m).all(axis=1)
    bones = [(i, j) for i, j in COCO17_BONES if known[i] and known[j]]
    on_bone = {k for bone in bones for k in bone}
    idx = [k for k in np.flatnonzero(known) if k not in on_bone]
    a = np.concatenate([xyz_m[[i for i, _ in bones]].reshape(-1, 3), xyz_m[idx]])
    b = np.concatenate([xyz_m[[j for _, j in bones]].reshape(-1, 3), xyz_m[idx]])
    return a, b


def follow_input(person_id: int, xyz_m: np.ndarray, age_s: float, depth_m: np.ndarray, K: np.ndarray,
                 params: FollowParams = FollowParams(), foreground: np.ndarray | None = None) -> PersonInput | None:
    """The crop of one person in this frame from their skeleton xyz_m [17, 3] (camera frame
    of this depth image, metres, NaN = unknown) of ``age_s`` seconds ago: box_xyxy [4]
    pixels and mask [H, W] bool (see the module doc); depth_m [H, W] metres (0 / NaN =
    none), K [3, 3]; foreground [H, W] bool or None (every pixel): the pixels that may be
    the person. None when the skeleton cannot be followed or no pixel of this frame lies
    where the person can be."""
    xyz = np.asarray(xyz_m, dtype=np.float64).reshape(-1, 3)
    known = np.isfinite(xyz).all(axis=1)
    if not (known.sum() >= params.min_joints and np.isfinite(age_s) and 0 <= age_s <= params.max_age_s):
        return None
    reach_m = params.body_radius_m + params.max_speed_mps * float(age_s)
    lo, hi = xyz[known].min(axis=0) - reach_m, xyz[known].max(axis=0) + reach_m
    if hi[2] <= 0:
        return None                                  # wholly behind the camera
    corners = np.array([[x, y, max(z, 0.05)] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    uv = project(corners, K)
    H, W = depth_m.shape
    x0, y0 = (int(max(np.floor(v), 0)) for v in uv.min(axis=0))
    x1, y1 = int(min(np.ceil(uv[:, 0].max()) + 1, W)), int(min(np.ceil(uv[:, 1].max()) + 1, H))
    if x1 <= x0 or y1 <= y0:
        return None
    z = np.asarray(depth_m[y0:y1, x0:x1], dtype=np.float64)
    candidate = np.isfinite(z) & (z > lo[2]) & (z < hi[2])
    if foreground is not None:
        candidate &= foreground[y0:y1, x0:x1]
    # the distances on a grid of every step-th pixel (the crop samples about 128 pixels across
    # the box anyway); each grid pixel decides for its step x step square
    step = max(1, max(x1 - x0, y1 - y0) // GRID_PX)
    vv, uu = np.nonzero(candidate[::step, ::step])
    zz = z[vv * step, uu * step]
    pts = np.stack([(uu * step + x0 - K[0, 2]) * zz / K[0, 0], (vv * step + y0 - K[1, 2]) * zz / K[1, 1], zz],
                   axis=-1)
    inside = ((pts >= lo) & (pts <= hi)).all(axis=1)           # the grown bounds in 3D, not only in depth
    vv, uu, pts = vv[inside], uu[inside], pts[inside]
    a, b = bone_segments(xyz)
    near = np.zeros(len(pts), bool)
    for s in range(len(a)):                          # one bone at a time: memory O(pixels)
        rest = ~near
        near[rest] = point_segment_distances(pts[rest], a[s], b[s]) <= reach_m
    if not near.any():
        return None
    grid = np.zeros(candidate[::step, ::step].shape, bool)
    grid[vv[near], uu[near]] = True
    box_mask = np.repeat(np.repeat(grid, step, axis=0), step, axis=1)[:y1 - y0, :x1 - x0] & candidate
    if not box_mask.any():
        return None
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = box_mask
    rows, cols = np.nonzero(box_mask)
    box = np.array([cols.min() + x0, rows.min() + y0, cols.max() + x0 + 1, rows.max() + y0 + 1], dtype=np.float64)
    return PersonInput(int(person_id), box, mask)
