"""A picture of SPDH at work: for a few held-out frames, the depth image with the
predicted robot skeleton (solid, green) and the true one (dashed, white), then the
network's uv-plane heatmaps (max over joints) and its uz-plane heatmaps (rows =
depth bins, near at the top) with the true (u, z) of each joint as a white ring.

Pure drawing: arrays in, an image file out (PIL), no ROS.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hrc_perception.geometry import project
from hrc_perception.robot_pose.dataset import heatmap_K, load_robot_frames
from hrc_perception.robot_pose.predictor import RobotPosePredictor
from hrc_perception.skeletons import chain_bones
from hrc_perception.viz.draw import depth_colormap, draw_label, draw_skeleton

PRED = (60, 220, 90)
TRUTH = (255, 255, 255)
TILE_W = 320


def _heat_rgb(hm: np.ndarray) -> np.ndarray:
    """[h, w] heatmap (about 0..1) -> [h, w, 3] uint8, black to yellow."""
    x = np.clip(hm, 0.0, 1.0)
    return (np.stack([x, x ** 0.7, 0.3 * x], axis=-1) * 255).astype(np.uint8)


def frame_row(predictor: RobotPosePredictor, xyz_m: np.ndarray, K_xyz: np.ndarray, K_full: np.ndarray,
              full_hw: tuple[int, int], truth_xyz_m: np.ndarray, truth_vis: np.ndarray) -> Image.Image:
    """One row of the figure (three TILE_W-wide tiles) for an XYZ image [h, w, 3] with
    intrinsics K_xyz, of a colour image of full_hw with intrinsics K_full."""
    sk = predictor.predict_xyz(xyz_m, K_xyz, full_hw)
    hm, _ = predictor.heatmaps(xyz_m)
    J = len(sk.names)
    spec = predictor.spec
    scale = TILE_W / full_hw[1]
    depth = Image.fromarray(depth_colormap((1000 * xyz_m[..., 2]).astype(np.uint16)))
    depth = depth.resize((TILE_W, round(TILE_W * xyz_m.shape[0] / xyz_m.shape[1])), Image.NEAREST)
    draw = ImageDraw.Draw(depth)
    uv_true = project(truth_xyz_m, K_full) * scale
    bones = chain_bones(J)
    draw_skeleton(draw, uv_true, bones, TRUTH, visibility=truth_vis, width=1, radius=3, dashed=True)
    draw_skeleton(draw, sk.uv_px * scale, bones, PRED, confidence=sk.confidence,
                  min_confidence=predictor.min_confidence, width=2, radius=3)
    inside = truth_vis > 0
    err = np.linalg.norm(sk.xyz_cam_m - truth_xyz_m, axis=1)[inside]
    draw_label(draw, (4, 4), f"mean joint error {100 * np.nanmean(err):.1f} cm" if len(err) else "robot out of view",
               fill=PRED)
    tiles = [depth]
    for plane, title in ((hm[:J].max(0), "uv plane (all joints)"), (hm[J:].max(0), "uz plane: rows = depth")):
        t = Image.fromarray(_heat_rgb(plane)).resize((TILE_W, round(TILE_W * spec.hw[0] / spec.hw[1])), Image.BILINEAR)
        d = ImageDraw.Draw(t)
        s = TILE_W / spec.hw[1]
        if title.startswith("uz"):
            K_hm = heatmap_K(K_xyz, xyz_m.shape[:2], spec)
            u = project(truth_xyz_m, K_hm)[:, 0]
            rows = spec.z_to_row(truth_xyz_m[:, 2])
            for j in np.flatnonzero(inside):
                x, y = (u[j] + 0.5) * s, (rows[j] + 0.5) * s
                d.ellipse((x - 4, y - 4, x + 4, y + 4), outline=TRUTH, width=1)
            title += f" ({spec.z_range_m[0]:.1f}-{spec.z_range_m[1]:.1f} m)"
        draw_label(d, (4, 4), title, fill=TRUTH)
        tiles.append(t)
    h = max(t.height for t in tiles)
    row = Image.new("RGB", (TILE_W * len(tiles), h))
    for k, t in enumerate(tiles):
        row.paste(t, (k * TILE_W, 0))
    return row


def draw_figure(weights: str | Path, data: str | Path, out_path: str | Path, frames: int = 6) -> Path:
    """Rows for ``frames`` evenly spaced frames of a keypoints dataset; JPEG or PNG by suffix."""
    predictor = RobotPosePredictor(weights)
    f = load_robot_frames(data)
    picks = np.linspace(0, len(f) - 1, min(frames, len(f))).round().astype(int)
    rows = [frame_row(predictor, f.xyz_m[i].astype(np.float32), f.K_xyz[i], f.K_full[i], f.full_hw,
                      f.robot_xyz_m[i], f.robot_vis[i]) for i in picks]
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)))
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path, quality=88)
    return out_path
