"""`hrc-perception preview`: a contact sheet of a synth output, ground truth drawn on it.

Each row is one frame read back from the bag: colour with instance masks, robot
and human skeletons (filled dots: visible joints, rings: occluded) and part
axes (x red, y green, z blue) drawn from the ground-truth sidecar; the noisy
depth as a colour map; the instance mask. The drawing itself is
:mod:`hrc_perception.viz.draw` (shared with the visualizer node).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hrc_perception.io.bag import read_bag_frames
from hrc_perception.io.ground_truth import read_ground_truth
from hrc_perception.sim.export import read_meta
from hrc_perception.skeletons import COCO17_BONES, chain_bones
from hrc_perception.viz.draw import depth_colormap, draw_axes, draw_masks, draw_skeleton, instance_colors

PANEL_SCALE = 0.5
AXIS_LENGTH_M = 0.06
ROBOT_COLOR = (255, 140, 0)
HUMAN_COLOR = (0, 255, 255)

__all__ = ["contact_sheet", "overlay", "instance_colors", "depth_colormap"]


def overlay(rgb: np.ndarray, mask: np.ndarray | None, record: dict) -> Image.Image:
    """Colour image with ground truth drawn on it (full resolution).

    rgb: [H, W, 3] uint8; mask: [H, W] instance ids or None; record: a ground-truth
    sidecar record (K, robot and human keypoints in pixels, part poses T_cam_obj).
    """
    pil = Image.fromarray(draw_masks(rgb, mask) if mask is not None else np.asarray(rgb, np.uint8))
    draw = ImageDraw.Draw(pil)
    K = np.asarray(record["K"])
    robot_kp = record["robot"]["keypoints"]
    n = len(robot_kp["names"])
    draw_skeleton(draw, robot_kp["uv_px"], chain_bones(n), ROBOT_COLOR, visibility=robot_kp["visibility"])
    for hum in record["humans"]:
        kp = hum["keypoints"]
        draw_skeleton(draw, kp["uv_px"], COCO17_BONES, HUMAN_COLOR, visibility=kp["visibility"])
    for part in record["parts"]:
        draw_axes(draw, np.asarray(part["T_cam_obj"]), K, AXIS_LENGTH_M, label=part["class_name"])
    return pil


def contact_sheet(out_dir: Path, rows: int = 6, namespace: str | None = None) -> Image.Image:
    """Contact sheet of `rows` frames spread over a synth output directory."""
    out_dir = Path(out_dir)
    meta = read_meta(out_dir)
    if not (out_dir / "bag").is_dir():
        raise ValueError(f"{out_dir}: no bag/ (run `hrc-perception synth ... --bag`)")
    gt = read_ground_truth(out_dir / "ground_truth.jsonl")
    stamps = sorted(gt)
    pick = set(stamps[i] for i in np.linspace(0, len(stamps) - 1, min(rows, len(stamps))).round().astype(int))
    panels = []
    for bf in read_bag_frames(out_dir / "bag", namespace if namespace is not None else meta["namespace"]):
        if bf.stamp_ns not in pick:
            continue
        rec = gt[bf.stamp_ns]
        row = [overlay(bf.rgb, bf.instance_mask, rec), Image.fromarray(depth_colormap(bf.depth_mm))]
        if bf.instance_mask is not None:
            row.append(Image.fromarray(instance_colors(int(bf.instance_mask.max()) + 1)[bf.instance_mask]))
        label = f"episode {rec['episode']}  frame {rec['index']}  t={rec['time_s']:.2f}s  " \
                f"people {len(rec['humans'])}  parts {len(rec['parts'])}"
        ImageDraw.Draw(row[0]).text((8, 8), label, fill=(255, 255, 255))
        panels.append(row)
    if not panels:
        raise ValueError(f"{out_dir}: the bag holds none of the ground-truth stamps")
    w, h = panels[0][0].size
    pw, ph = int(w * PANEL_SCALE), int(h * PANEL_SCALE)
    cols = max(len(r) for r in panels)
    sheet = Image.new("RGB", (cols * pw, len(panels) * ph), (20, 20, 20))
    for r, row in enumerate(panels):
        for c, im in enumerate(row):
            sheet.paste(im.resize((pw, ph), Image.Resampling.LANCZOS), (c * pw, r * ph))
    return sheet
