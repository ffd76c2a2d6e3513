"""Skeleton + XYZ-image export for SPDH-style pose networks (robot and people).

Layout of ``out_dir`` (published atomically on ``close()``)::

    {chunk:06d}.npz              up to ``chunk_frames`` consecutive frames each
    index.json                   chunk files, frame counts, sizes, keypoint names

Arrays of a chunk of N frames (camera optical frame, metres, full-resolution
pixels with pixel centres at integer coordinates, as in ``hrc_perception.geometry``):

=============================  ================  ==========================================
key                            shape, dtype      meaning
=============================  ================  ==========================================
frame_index, episode           [N] int64         ``Frame.index``, ``Frame.episode``
stamp_ns                       [N] int64         ``Frame.stamp_ns``
K                              [N,3,3] float64   intrinsics of the full image
xyz_m                          [N,h,w,3] float16 XYZ image subsampled to ``xyz_size`` (h, w)
K_xyz                          [N,3,3] float64   intrinsics of the (h, w) image
robot_xyz_m                    [N,Jr,3] float32  robot skeleton joints
robot_uv_px                    [N,Jr,2] float32  their projections (full-res pixels)
robot_vis                      [N,Jr] int8       0 outside / 1 occluded / 2 visible
robot_joint_positions_rad      [N,Dof] float64   URDF movable joints, URDF order
T_cam_base                     [N,4,4] float64   robot base pose in the camera frame
human_xyz_m                    [N,P,17,3] f32    people (P = most people in a frame of
human_uv_px                    [N,P,17,2] f32      the chunk; NaN where padded)
human_vis                      [N,P,17] int8     visibility, -1 where padded
human_id                       [N,P] int32       instance id (identity), -1 where padded
robot_keypoint_names           [Jr] str
human_keypoint_names           [17] str
=============================  ================  ==========================================

``xyz_m`` is ``geometry.xyz_image(depth_mm / 1000, K)`` (the sensor depth;
invalid depth gives (0, 0, 0)) sampled by nearest neighbour: small pixel (r, c)
takes full-res pixel (rows[r], cols[c]) of :func:`sample_indices`, the pixel
nearest to its centre. ``K_xyz`` (:func:`resized_K`) is the exact intrinsics of
an image of the same camera with (h, w) pixels, so a 3D point projects to
``(uv_full + 0.5) * (w / W, h / H) - 0.5`` in the small image; the sampled points
lie within half a small pixel of their pixel centre.

Rebuilding the full-resolution XYZ image of a row from the BOP export
(:mod:`hrc_perception.io.bop`) of the same frames: find the scene
``train/{episode:06d}/`` and the image key ``i`` whose ``scene_camera.json``
entry has this ``frame_index``; then::

    depth_mm = np.asarray(PIL.Image.open(f"depth/{i:06d}.png"))      # uint16, mm
    K = np.reshape(scene_camera[str(i)]["cam_K"], (3, 3))           # == npz K[n]
    xyz_full = geometry.xyz_image(depth_mm * scene_camera[str(i)]["depth_scale"] / 1000.0, K)
    xyz_small = xyz_full[rows][:, cols]   # rows, cols = sample_indices(...); == xyz_m[n]
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from hrc_perception.geometry import xyz_image
from hrc_perception.io.atomic import DatasetWriter, atomic_write_bytes, json_bytes, npz_bytes
from hrc_perception.io.coco import COCO17_KEYPOINTS
from hrc_perception.sim.frame import CATEGORY_PERSON, CATEGORY_ROBOT, ClassInfo, Frame, Keypoints


def sample_indices(full: int, small: int) -> np.ndarray:
    """Full-resolution pixel index [small] int64 nearest to the centre of each pixel
    of a ``small``-pixel resampling of ``full`` pixels.

    Small pixel c spans full-res coordinates [(c) s - 0.5, (c + 1) s - 0.5) with
    s = full / small; its centre (c + 0.5) s - 0.5 is nearest to full-res pixel
    floor((c + 0.5) s) (exact integer arithmetic)."""
    c = np.arange(small, dtype=np.int64)
    return np.minimum(((2 * c + 1) * full) // (2 * small), full - 1)


def resized_K(K: np.ndarray, full_hw: tuple[int, int], small_hw: tuple[int, int]) -> np.ndarray:
    """Intrinsics [3, 3] of the same camera imaged with ``small_hw`` (h, w) pixels
    instead of ``full_hw`` (H, W), with pixel centres at integers in both:
    u_small = (u_full + 0.5) * w / W - 0.5 (likewise v)."""
    sy, sx = small_hw[0] / full_hw[0], small_hw[1] / full_hw[1]
    A = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return A @ np.asarray(K, dtype=np.float64)


def subsampled_xyz(depth_mm: np.ndarray, K: np.ndarray, xyz_size: tuple[int, int]) -> np.ndarray:
    """XYZ image [h, w, 3] float16 (camera frame, m) of a uint16 depth image in mm,
    nearest-neighbour subsampled to ``xyz_size`` = (h, w)."""
    H, W = depth_mm.shape
    rows, cols = sample_indices(H, xyz_size[0]), sample_indices(W, xyz_size[1])
    xyz = xyz_image(np.asarray(depth_mm, dtype=np.float64) / 1000.0, np.asarray(K, dtype=np.float64))
    return xyz[rows[:, None], cols[None, :]].astype(np.float16)


def _class_keypoints(classes: Sequence[ClassInfo], category: str) -> tuple[str, ...]:
    """Keypoint names of the first class of ``category`` that has some, else ()."""
    return next((c.keypoints for c in classes if c.category == category and c.keypoints), ())


class KeypointsWriter(DatasetWriter):
    """Writes chunked ``.npz`` skeleton + XYZ-image files (see module doc).

    out_dir: dataset directory (replaced as a whole on close); files go to
    ``out_dir``. classes: the run's classes (keypoint names of the robot
    and person classes; people default to COCO-17). parts: unused (same signature
    as the other writers). xyz_size: (h, w) of ``xyz_m``. chunk_frames: frames per file.
    """

    def __init__(self, out_dir: str | os.PathLike, classes: Sequence[ClassInfo], parts: Sequence = (),
                 xyz_size: tuple[int, int] = (240, 320), chunk_frames: int = 100):
        super().__init__(out_dir)
        if chunk_frames < 1:
            raise ValueError("chunk_frames must be >= 1")
        self.xyz_size = (int(xyz_size[0]), int(xyz_size[1]))
        self.chunk_frames = int(chunk_frames)
        self.robot_names: tuple[str, ...] = tuple(_class_keypoints(classes, CATEGORY_ROBOT))
        self.human_names: tuple[str, ...] = tuple(_class_keypoints(classes, CATEGORY_PERSON)
                                                  or COCO17_KEYPOINTS)
        self.dir = self.work
        self._rows: list[dict] = []
        self._chunks: list[dict] = []

    def _check_names(self, kp: Keypoints, expected: tuple[str, ...], what: str) -> None:
        if tuple(kp.names) != expected:
            raise ValueError(f"{what} keypoints {tuple(kp.names)} differ from {expected}")

    def _add(self, frame: Frame) -> None:
        robot = frame.robot
        if not self.robot_names:
            self.robot_names = tuple(robot.keypoints.names)
        self._check_names(robot.keypoints, self.robot_names, "robot")
        for h in frame.humans:
            self._check_names(h.keypoints, self.human_names, f"person {h.instance_id}")
        self._rows.append({
            "frame_index": frame.index, "episode": frame.episode, "stamp_ns": int(frame.stamp_ns),
            "K": np.asarray(frame.K, dtype=np.float64),
            "xyz_m": subsampled_xyz(frame.depth_mm, frame.K, self.xyz_size),
            "K_xyz": resized_K(frame.K, frame.depth_mm.shape, self.xyz_size),
            "robot_xyz_m": robot.keypoints.xyz_cam_m, "robot_uv_px": robot.keypoints.uv_px,
            "robot_vis": robot.keypoints.visibility,
            "robot_joint_positions_rad": robot.joint_positions_rad, "T_cam_base": robot.T_cam_base,
            "humans": [(h.instance_id, h.keypoints) for h in frame.humans],
        })
        if len(self._rows) == self.chunk_frames:
            self._flush()

    def _human_arrays(self, rows: list[dict]) -> dict[str, np.ndarray]:
        """People of the rows padded to the chunk's largest count P."""
        n, jh = len(rows), len(self.human_names)
        p = max(len(r["humans"]) for r in rows)
        xyz = np.full((n, p, jh, 3), np.nan, dtype=np.float32)
        uv = np.full((n, p, jh, 2), np.nan, dtype=np.float32)
        vis = np.full((n, p, jh), -1, dtype=np.int8)
        ids = np.full((n, p), -1, dtype=np.int32)
        for i, r in enumerate(rows):
            for j, (instance_id, kp) in enumerate(r["humans"]):
                xyz[i, j], uv[i, j], vis[i, j] = kp.xyz_cam_m, kp.uv_px, kp.visibility
                ids[i, j] = instance_id
        return {"human_xyz_m": xyz, "human_uv_px": uv, "human_vis": vis, "human_id": ids}

    def _chunk_arrays(self, rows: list[dict]) -> dict[str, np.ndarray]:
        """Stacked arrays of one chunk (see module doc)."""
        def stack(key, dtype):
            return np.stack([np.asarray(r[key]) for r in rows]).astype(dtype)

        arrays = {
            "frame_index": stack("frame_index", np.int64), "episode": stack("episode", np.int64),
            "stamp_ns": stack("stamp_ns", np.int64), "K": stack("K", np.float64),
            "xyz_m": stack("xyz_m", np.float16), "K_xyz": stack("K_xyz", np.float64),
            "robot_xyz_m": stack("robot_xyz_m", np.float32),
            "robot_uv_px": stack("robot_uv_px", np.float32), "robot_vis": stack("robot_vis", np.int8),
            "robot_joint_positions_rad": stack("robot_joint_positions_rad", np.float64),
            "T_cam_base": stack("T_cam_base", np.float64),
            "robot_keypoint_names": np.array(self.robot_names, dtype=np.str_),
            "human_keypoint_names": np.array(self.human_names, dtype=np.str_),
        }
        arrays.update(self._human_arrays(rows))
        return arrays

    def _flush(self) -> None:
        """Write the buffered frames as the next chunk."""
        if not self._rows:
            return
        name = f"{len(self._chunks):06d}.npz"
        atomic_write_bytes(self.dir / name, npz_bytes(self._chunk_arrays(self._rows)))
        self._chunks.append({"file": name, "num_frames": len(self._rows),
                             "first_frame_index": self._rows[0]["frame_index"],
                             "last_frame_index": self._rows[-1]["frame_index"],
                             "episodes": sorted({r["episode"] for r in self._rows})})
        self._rows = []

    def _finalize(self) -> None:
        self._flush()
        index = {"chunks": self._chunks, "num_frames": sum(c["num_frames"] for c in self._chunks),
                 "chunk_frames": self.chunk_frames, "xyz_size_hw": list(self.xyz_size),
                 "robot_keypoint_names": list(self.robot_names),
                 "human_keypoint_names": list(self.human_names)}
        atomic_write_bytes(self.dir / "index.json", json_bytes(index, indent=1))
