"""The empty cell's background from its sources: a synthetic episode, or a recorded bag.

Both mask the robot by its link surfaces (:class:`~hrc_perception.safety.robot_surface.
RobotSurface`, margin 0) posed at the frame's joints with the camera-to-robot pose, drop
depth edges as the depth path does, and learn with
:func:`~hrc_perception.safety.background.learn_background` (a pixel needs 5 readings
without the robot, fewer for a short recording).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hrc_perception.safety.background import BackgroundDepth, learn_background
from hrc_perception.geometry import mask_points_cam_m
from hrc_perception.safety.depth_space import DepthSpaceParams, remove_depth_edges
from hrc_perception.safety.robot_surface import RobotSurface


def robot_in_camera(model, q: np.ndarray, T_cam_base: np.ndarray) -> dict[str, np.ndarray]:
    """T_cam_link [4, 4] of every link of model (a RobotModel) at joints q [D]."""
    return {link: T_cam_base @ T for link, T in model.link_transforms(q).items()}


def masked_frame(depth_m: np.ndarray, K: np.ndarray, surface: RobotSurface, surface_m: np.ndarray | None,
                 params: DepthSpaceParams) -> tuple[np.ndarray, np.ndarray]:
    """(depth without edges [H, W], the robot's pixels [H, W] bool) of one empty-cell frame;
    surface_m: the robot's surface points in the camera frame (None: nothing masked)."""
    d = remove_depth_edges(np.where(np.isfinite(depth_m), depth_m, 0.0).astype(np.float32), K[0, 0],
                           params.stereo_baseline_m, params.edge_disparity_px)
    moving = np.zeros(d.shape, bool)
    if surface_m is not None:
        rows, cols, points = mask_points_cam_m(d > 0, d, K)
        moving[rows, cols] = surface.explains(points, surface_m, 0.0)
    return d, moving


def learn_from_frames(pairs: list[tuple[np.ndarray, np.ndarray]]) -> BackgroundDepth:
    """The background of masked frames (:func:`masked_frame`): 5 readings without the robot
    per pixel, fewer for a short recording (a third of its frames)."""
    return learn_background(pairs, min_samples=max(1, min(5, len(pairs) // 3)))


def frame_depth_m(frame) -> np.ndarray:
    """A synthetic or bag frame's sensor depth (depth_mm) in metres [H, W] float32 (0 = invalid)."""
    return frame.depth_mm.astype(np.float32) / np.float32(1000.0)


def frame_robot_links(model, frame) -> dict[str, np.ndarray]:
    """T_cam_link of every link at a synthetic frame's true joints and camera-to-robot pose."""
    return robot_in_camera(model, frame.robot.joint_positions_rad, frame.robot.T_cam_base)


def episode_background(episode, renderer, model, surface: RobotSurface, frames: int,
                       params: DepthSpaceParams) -> BackgroundDepth:
    """One synthetic episode's cell from ``frames`` empty-cell renders spread over it."""
    n = episode.cfg.sequence.episode_frames
    pairs = []
    for k in np.linspace(0, n - 1, frames).round().astype(int):
        f = episode.frame(int(k), renderer, people=False)
        pairs.append(masked_frame(frame_depth_m(f), f.K, surface, surface.posed(frame_robot_links(model, f)), params))
    return learn_from_frames(pairs)


def bag_background(path: str | Path, model, T_cam_base: np.ndarray, frames: int, params: DepthSpaceParams,
                   namespace: str = "/cell", log=print) -> BackgroundDepth:
    """A recording of the empty cell (depth, camera_info, joint_states: ``hrc-perception
    record``), ``frames`` of its frames spread evenly (all when fewer), the robot masked at
    each frame's joint_states placed with T_cam_base [4, 4] (the robot base in the camera's
    optical frame: the cell's calibration). ValueError when the bag has no usable frame or
    its joint_states do not name the model's joints."""
    from hrc_perception.io.bag import read_bag_frames
    from hrc_perception.robot_pose.extrinsics import joint_positions
    surface = RobotSurface.from_model(model)
    all_frames = list(read_bag_frames(Path(path), namespace))
    if not all_frames:
        raise ValueError(f"{path}: no colour + depth + camera_info frames under {namespace}")
    picks = np.unique(np.linspace(0, len(all_frames) - 1, min(frames, len(all_frames))).round().astype(int))
    pairs = []
    for k in picks:
        f = all_frames[k]
        if f.joint_state is None:
            raise ValueError(f"{path}: frame at {f.stamp_ns} ns has no joint_states before it: the robot "
                             "cannot be masked (record joint_states with the camera)")
        q, why = joint_positions(model.joint_names, list(f.joint_state.names), list(f.joint_state.positions_rad),
                                 model.arm_joint_mask)
        if q is None:
            raise ValueError(f"{path}: {why}")
        posed = surface.posed(robot_in_camera(model, q, T_cam_base))
        pairs.append(masked_frame(frame_depth_m(f), f.K, surface, posed, params))
    log(f"{path}: {len(pairs)} of {len(all_frames)} frames")
    return learn_from_frames(pairs)
