"""`hrc-perception preview`: a contact sheet of a synth output, ground truth drawn on it.

Each row is one frame read back from the bag: colour with instance masks, robot
and human skeletons (filled dots: visible joints, rings: occluded) and part
axes (x red, y green, z blue) drawn from the ground-truth sidecar; the noisy
depth as a colour map; the instance mask.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hrc_perception.geometry import project, transform_points
from hrc_perception.io.bag import read_bag_frames
from hrc_perception.io.ground_truth import read_ground_truth
from hrc_perception.sim.export import read_meta
from hrc_perception.sim.frame import VIS_OUTSIDE, VIS_VISIBLE
from hrc_perception.skeletons import COCO17_BONES, chain_bones

PANEL_SCALE = 0.5
AXIS_LENGTH_M = 0.06

def instance_colors(n: int) -> np.ndarray:
    """[n, 3] uint8 distinct colours (golden-angle hues); colour 0 is black."""
    h = (np.arange(n) * 0.618034) % 1.0
    rgb = np.stack([np.abs(h * 6 - 3) - 1, 2 - np.abs(h * 6 - 2), 2 - np.abs(h * 6 - 4)], -1)
    out = (np.clip(rgb, 0, 1) * 0.75 + 0.25) * 255
    out[0] = 0
    return out.astype(np.uint8)


def depth_colormap(depth_mm: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 rainbow colour map of a depth image (near red .. far blue,
    spread over the 2nd..98th percentile of the valid depths; 0 = invalid: black)."""
    valid = depth_mm > 0
    rgb = np.zeros(depth_mm.shape + (3,), dtype=np.uint8)
    if not valid.any():
        return rgb
    lo, hi = np.percentile(depth_mm[valid], [2, 98])
    x = np.clip((depth_mm.astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1)
    stops = np.linspace(0.0, 1.0, 5)      # red, yellow, green, cyan, blue
    colors = np.array([[230, 40, 40], [240, 220, 40], [40, 200, 60], [40, 200, 230], [50, 60, 230]])
    for c in range(3):
        rgb[..., c][valid] = np.interp(x[valid], stops, colors[:, c]).astype(np.uint8)
    return rgb


def _dot(draw, uv, visible, color, r=4):
    box = [uv[0] - r, uv[1] - r, uv[0] + r, uv[1] + r]
    if visible:
        draw.ellipse(box, fill=tuple(color), outline=(0, 0, 0))
    else:
        draw.ellipse(box, outline=tuple(color), width=2)


def _skeleton(draw, kp: dict, limbs, color):
    uv = np.asarray(kp["uv_px"])
    vis = np.asarray(kp["visibility"])
    for a, b in limbs:
        if vis[a] != VIS_OUTSIDE and vis[b] != VIS_OUTSIDE:
            draw.line([tuple(uv[a]), tuple(uv[b])], fill=tuple(color), width=3)
    for j in range(len(uv)):
        if vis[j] != VIS_OUTSIDE:
            _dot(draw, uv[j], vis[j] == VIS_VISIBLE, color)


def overlay(rgb: np.ndarray, mask: np.ndarray | None, record: dict) -> Image.Image:
    """Colour image with ground truth drawn on it (full resolution)."""
    img = rgb.astype(np.float32)
    if mask is not None:
        colors = instance_colors(int(mask.max()) + 1).astype(np.float32)
        m = mask > 0
        img[m] = 0.55 * img[m] + 0.45 * colors[mask[m]]
    pil = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    K = np.asarray(record["K"])
    robot_kp = record["robot"]["keypoints"]
    n = len(robot_kp["names"])
    _skeleton(draw, robot_kp, chain_bones(n), (255, 140, 0))
    for hum in record["humans"]:
        _skeleton(draw, hum["keypoints"], COCO17_BONES, (0, 255, 255))
    for part in record["parts"]:
        T = np.asarray(part["T_cam_obj"])
        pts = transform_points(T, np.vstack([np.zeros(3), np.eye(3) * AXIS_LENGTH_M]))
        if np.any(pts[:, 2] <= 0.05):
            continue
        uv = project(pts, K)
        for k, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 90, 255)]):
            draw.line([tuple(uv[0]), tuple(uv[k + 1])], fill=c, width=3)
        draw.text((uv[0][0] + 4, uv[0][1] + 4), part["class_name"], fill=(255, 255, 255))
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
