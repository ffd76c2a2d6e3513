"""People in one RGB-D frame -> 3D COCO-17 skeletons with identities: a 2D backend per
person crop, depth lifting, One Euro smoothing per identity."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrc_perception.human_pose.front_back import swap_left_right
from hrc_perception.human_pose.lifting import LiftingParams, lift_joints
from hrc_perception.human_pose.smoothing import OneEuroParams, SkeletonSmoother


@dataclass
class PersonInput:
    """A person to estimate: id (track id), box_xyxy [4] pixels, mask [H, W] bool or None."""
    id: int
    box_xyxy: np.ndarray
    mask: np.ndarray | None = None


@dataclass
class PersonSkeleton:
    """One person's skeleton (COCO-17 order): xyz_m [17, 3] camera optical frame, metres,
    smoothed (NaN = unknown); confidence [17] 0..1 (0 where unknown); uv_px [17, 2] the
    backend's 2D joints (NaN when it found no person); velocity_mps [17, 3] (NaN until a
    joint was seen twice); measured_xyz_m [17, 3] the joints of this frame before smoothing
    (None: not given)."""
    id: int
    xyz_m: np.ndarray
    confidence: np.ndarray
    uv_px: np.ndarray
    velocity_mps: np.ndarray
    measured_xyz_m: np.ndarray | None = None

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.xyz_m).all(axis=1)


class HumanPoseEstimator:
    """backend: a 2D backend, ``estimate(rgb, box_xyxy, person_id) -> (uv_px [17, 2], confidence [17])``,
    whose joints are lifted with the depth, or a 3D one (``three_d`` True),
    ``estimate_3d(depth_m, K, box_xyxy, mask) -> (xyz_m [17, 3], confidence [17], uv_px [17, 2])``.
    min_confidence: joints below it are unknown. front_check: a
    :class:`~hrc_perception.human_pose.front_back.FaceCheck` that swaps a 3D backend's
    left and right where a face is seen on a skeleton facing away (with a colour image;
    None: no check); ``swaps`` counts them."""

    def __init__(self, backend, lifting: LiftingParams = LiftingParams(), smoothing: OneEuroParams = OneEuroParams(),
                 min_confidence: float = 0.3, front_check=None):
        self.backend = backend
        self.front_check = front_check
        self.swaps = 0
        self.lifting = lifting
        self.smoother = SkeletonSmoother(smoothing)
        self.min_confidence = float(min_confidence)

    def joints(self, rgb: np.ndarray, depth_m: np.ndarray, K: np.ndarray, box_xyxy: np.ndarray,
               mask: np.ndarray | None, uv_px: np.ndarray | None = None, person_id: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One person's joints of one frame, before smoothing: (xyz_m [17, 3], NaN below
        min_confidence; confidence [17], 0 there; uv_px [17, 2]). uv_px given: those 2D
        joints (confidence 1) are lifted instead of the backend's (the evaluation's
        true-2D row). person_id: the person's identity across frames, for a backend that
        tracks (None: a single image)."""
        box = np.asarray(box_xyxy, dtype=np.float64)
        if uv_px is None and getattr(self.backend, "three_d", False):
            xyz, conf, uv = self.backend.estimate_3d(depth_m, K, box, mask)
            xyz, conf = np.array(xyz, dtype=np.float64), np.array(conf, dtype=np.float64)
            if rgb is not None and self.front_check is not None and self.front_check.check(rgb, K, xyz):
                xyz, conf, uv = swap_left_right(xyz, conf, uv)
                self.swaps += 1
        else:
            uv, conf2d = (self.backend.estimate(rgb, box, person_id) if uv_px is None
                          else (np.asarray(uv_px, dtype=np.float64), np.isfinite(uv_px).all(1).astype(np.float64)))
            xyz, conf = lift_joints(uv, conf2d, depth_m, K, self.lifting, mask=mask)
        low = conf < self.min_confidence
        xyz[low], conf[low] = np.nan, 0.0
        return xyz, conf, uv

    def estimate(self, rgb: np.ndarray, depth_m: np.ndarray, K: np.ndarray, people: list[PersonInput],
                 stamp_s: float) -> list[PersonSkeleton]:
        """Skeletons of ``people`` in one frame: rgb [H, W, 3] uint8 (None: a 3D backend's
        depth alone), depth_m [H, W] metres aligned to it, K [3, 3], stamp_s seconds
        (smoothing clock)."""
        if rgb is None and not getattr(self.backend, "three_d", False):
            raise ValueError("no colour image: this backend needs one")
        if rgb is not None and rgb.shape[:2] != depth_m.shape:
            raise ValueError(f"colour {rgb.shape[1]}x{rgb.shape[0]} and depth {depth_m.shape[1]}x{depth_m.shape[0]} "
                             "differ (depth must be aligned to colour)")
        out = []
        for person in people:
            xyz, conf, uv = self.joints(rgb, depth_m, K, person.box_xyxy, person.mask, person_id=person.id)
            xyz_s, vel = self.smoother(person.id, xyz, stamp_s)
            out.append(PersonSkeleton(int(person.id), xyz_s, conf, uv, vel, xyz))
        self.smoother.forget_older_than(stamp_s)
        return out
