"""A picture of part poses on their frames: each estimated pose as the part's model
points projected into the image (green when its ADD(-S) is within 0.1 diameter, red
otherwise) and its axes (solid), the ground-truth axes dashed, and a label
"name ADD(-S) cm".

Pure drawing: poses in, RGB [H, W, 3] uint8 out (PIL), no ROS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from hrc_perception.geometry import project, transform_points
from hrc_perception.object_pose.data import PartInfo, PoseSample
from hrc_perception.object_pose.metrics import add_or_adds_m
from hrc_perception.viz.draw import draw_axes, draw_label

GOOD = (60, 220, 90)
BAD = (240, 70, 60)
POINTS_DRAWN = 400


def draw_frame_poses(rgb: np.ndarray, K: np.ndarray, items: Sequence[tuple[PartInfo, np.ndarray | None, np.ndarray]],
                     ) -> np.ndarray:
    """rgb [H, W, 3] uint8; K [3, 3] pixels; items: (part, T_cam_obj estimate [4, 4] or
    None when skipped, T_cam_obj ground truth [4, 4]), metres. Returns the drawing."""
    image = Image.fromarray(np.asarray(rgb, np.uint8))
    draw = ImageDraw.Draw(image)
    for part, T_est, T_gt in items:
        axis_m = 0.4 * part.diameter_m
        draw_axes(draw, T_gt, K, length_m=axis_m, width=1, dashed=True)
        if T_est is None or not np.isfinite(T_est).all():
            uv_gt = project(T_gt[:3, 3][None], K)[0]
            draw.ellipse((uv_gt[0] - 5, uv_gt[1] - 5, uv_gt[0] + 5, uv_gt[1] + 5), outline=BAD, width=2)
            draw_label(draw, (uv_gt[0] + 6, uv_gt[1] - 14), f"{part.name} skipped", fill=BAD)
            continue
        d = add_or_adds_m(part.points_m, part.symmetric, T_est[:3, :3], T_est[:3, 3], T_gt[:3, :3], T_gt[:3, 3])
        color = GOOD if d < 0.1 * part.diameter_m else BAD
        step = max(1, len(part.points_m) // POINTS_DRAWN)
        pts = transform_points(T_est, part.points_m[::step])
        for u, v in project(pts[pts[:, 2] > 0.05], K):
            draw.point((float(u), float(v)), fill=color)
        draw_axes(draw, T_est, K, length_m=axis_m, width=2)
        uv = project(T_est[:3, 3][None], K)[0]
        if np.isfinite(uv).all():
            draw_label(draw, (uv[0] + 6, uv[1] - 14), f"{part.name} {100 * d:.1f} cm", fill=color)
    return np.asarray(image)


def pose_figure(samples: Sequence[PoseSample], parts_by_id: dict[int, PartInfo],
                estimate: Callable[[PoseSample], np.ndarray | None], read_rgb: Callable[[PoseSample], np.ndarray],
                out_path: str | Path, frames: int = 4, columns: int = 2, width_px: int = 640) -> Path:
    """Tile ``frames`` evenly spaced frames of ``samples`` with their poses drawn; each
    tile resized to ``width_px`` wide. estimate gives a sample's T_cam_obj [4, 4] (or
    None), read_rgb its full colour image. Writes a JPEG or PNG (by suffix)."""
    by_frame: dict[tuple[str, int], list[int]] = {}
    for i, s in enumerate(samples):
        by_frame.setdefault((s.scene, s.image_id), []).append(i)
    keys = list(by_frame)
    if not keys:
        raise ValueError("no samples to draw")
    picks = [keys[j] for j in sorted(set(np.linspace(0, len(keys) - 1, min(frames, len(keys))).round().astype(int)))]
    tiles = []
    for key in picks:
        idx = by_frame[key]
        first = samples[idx[0]]
        drawn = draw_frame_poses(read_rgb(first), first.K,
                                 [(parts_by_id[samples[i].obj_id], estimate(samples[i]), samples[i].T_cam_obj) for i in idx])
        tile = Image.fromarray(drawn)
        tiles.append(tile.resize((width_px, round(tile.height * width_px / tile.width))))
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    h = max(t.height for t in tiles)
    sheet = Image.new("RGB", (columns * width_px, rows * h))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % columns) * width_px, (k // columns) * h))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path, quality=88)
    return out_path
