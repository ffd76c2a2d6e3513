"""Pure drawing functions: numpy arrays and Pillow images in, pixels out (no rclpy).

Conventions: images are [H, W, 3] uint8 RGB arrays or ``PIL.Image`` RGB images;
pixel coordinates are (u, v) = (column, row) with pixel centres at integers (as
:func:`hrc_perception.geometry.project`); 3D points are metres in the camera
optical frame (z forward, x right, y down); ``K`` is the [3, 3] pinhole matrix in
pixels; ``T_cam_obj`` a [4, 4] rigid transform, object (model) frame -> camera
frame. Functions taking an ``ImageDraw`` draw in place on its image.

Functions that are handed data they cannot draw (non-finite coordinates, a point
behind the camera) skip that element and say so in their return value; they raise
``ValueError`` only for arguments of the wrong shape.

Styles: estimates are drawn solid; ``dashed=True`` gives the thin, dashed style the
visualizer uses for ground truth so both can be told apart on one image.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hrc_perception.geometry import project, transform_points

# Joint visibility, as Skeleton.VIS_* and hrc_perception.sim.frame (COCO's 0 / 1 / 2).
VIS_OUTSIDE, VIS_OCCLUDED, VIS_VISIBLE = 0, 1, 2

# Part axes: x red, y green, z blue.
AXIS_COLORS: tuple[tuple[int, int, int], ...] = ((255, 0, 0), (0, 255, 0), (0, 90, 255))

# Safety levels, in SafetyStatus order (OK=0, WARNING=1, PROTECTIVE_STOP=2, UNKNOWN=3).
SAFETY_LEVELS: tuple[str, ...] = ("OK", "WARNING", "PROTECTIVE_STOP", "UNKNOWN")
SAFETY_COLORS: dict[str, tuple[int, int, int]] = {
    "OK": (40, 170, 70),               # green
    "WARNING": (255, 176, 0),          # amber
    "PROTECTIVE_STOP": (220, 30, 30),  # red
    "UNKNOWN": (128, 128, 128),        # grey
}
_SAFETY_TEXT = {"OK": (255, 255, 255), "WARNING": (0, 0, 0), "PROTECTIVE_STOP": (255, 255, 255),
                "UNKNOWN": (255, 255, 255)}

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 pixels, inclusive


# ----------------------------------------------------------------------- colours

def _golden_colors(ids: np.ndarray) -> np.ndarray:
    """[N, 3] uint8 colours of integer ids: golden-angle hues, brightened."""
    h = (np.asarray(ids, np.float64) * 0.618034) % 1.0
    rgb = np.stack([np.abs(h * 6 - 3) - 1, 2 - np.abs(h * 6 - 2), 2 - np.abs(h * 6 - 4)], -1)
    return ((np.clip(rgb, 0, 1) * 0.75 + 0.25) * 255).astype(np.uint8)


def instance_colors(n: int) -> np.ndarray:
    """[n, 3] uint8 distinct colours (golden-angle hues) indexed by instance id; colour 0 is black."""
    out = _golden_colors(np.arange(int(n)))
    if len(out):
        out[0] = 0
    return out


def id_color(instance_id: int) -> Color:
    """Colour of one id, the same as ``instance_colors(id + 1)[id]`` (light grey for id 0)."""
    if int(instance_id) <= 0:
        return (200, 200, 200)
    return tuple(int(c) for c in _golden_colors(np.array([int(instance_id)]))[0])


def depth_colormap(depth_mm: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 rainbow colour map of a depth image [H, W] in millimetres.

    Near red .. far blue, spread over the 2nd..98th percentile of the valid depths
    (a spread of at least 1 mm); 0 = invalid: black.
    """
    depth_mm = np.asarray(depth_mm)
    if depth_mm.ndim != 2:
        raise ValueError(f"depth_mm must be [H, W], got shape {depth_mm.shape}")
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


# ------------------------------------------------------------------------- masks

def _check_mask(rgb: np.ndarray, mask_ids: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
    if mask_ids.shape != rgb.shape[:2]:
        raise ValueError(f"mask {mask_ids.shape} does not match the image {rgb.shape[:2]}")


def _palette(mask_ids: np.ndarray, colors: np.ndarray | None) -> np.ndarray:
    top = int(mask_ids.max()) if mask_ids.size else 0
    if colors is None:
        return instance_colors(top + 1)
    colors = np.asarray(colors)
    if colors.ndim != 2 or colors.shape[1] != 3 or len(colors) <= top:
        raise ValueError(f"colors must be [N > {top}, 3] for mask ids up to {top}, got {colors.shape}")
    return colors


def draw_masks(rgb: np.ndarray, mask_ids: np.ndarray, colors: np.ndarray | None = None,
               alpha: float = 0.45) -> np.ndarray:
    """Instance masks blended onto an image; returns a new [H, W, 3] uint8 array.

    rgb: [H, W, 3] uint8. mask_ids: [H, W] integer instance ids, 0 = background
    (left untouched). colors: [N, 3] colour per id (default :func:`instance_colors`).
    Each masked pixel becomes ``(1 - alpha) * pixel + alpha * colors[id]``.
    """
    rgb, mask_ids = np.asarray(rgb), np.asarray(mask_ids)
    _check_mask(rgb, mask_ids)
    img = rgb.astype(np.float32)
    m = mask_ids > 0
    if m.any():
        pal = _palette(mask_ids, colors).astype(np.float32)
        img[m] = np.float32(1.0 - alpha) * img[m] + np.float32(alpha) * pal[mask_ids[m]]
    return img.astype(np.uint8)


def draw_mask_outlines(rgb: np.ndarray, mask_ids: np.ndarray, colors: np.ndarray | None = None) -> np.ndarray:
    """Instance outlines (1 px, inside each instance) on an image; returns a new [H, W, 3] uint8 array.

    A pixel of id > 0 is on the outline when one of its 4 neighbours has another id
    or lies outside the image. Interiors and background keep their pixels.
    """
    rgb, mask_ids = np.asarray(rgb), np.asarray(mask_ids)
    _check_mask(rgb, mask_ids)
    out = rgb.astype(np.uint8, copy=True)
    if not (mask_ids > 0).any():
        return out
    pal = _palette(mask_ids, colors)
    p = np.pad(mask_ids.astype(np.int64), 1, mode="constant", constant_values=-1)
    c = p[1:-1, 1:-1]
    edge = (c > 0) & ((p[:-2, 1:-1] != c) | (p[2:, 1:-1] != c) | (p[1:-1, :-2] != c) | (p[1:-1, 2:] != c))
    out[edge] = pal[mask_ids[edge]]
    return out


# ------------------------------------------------------------------ lines, text

def _finite(*points) -> bool:
    return all(math.isfinite(float(x)) for p in points for x in p)


def _line(draw: ImageDraw.ImageDraw, p0, p1, fill: Color, width: int, dashed: bool = False,
          dash_px: float = 6.0, gap_px: float = 4.0) -> None:
    p0 = (float(p0[0]), float(p0[1]))
    p1 = (float(p1[0]), float(p1[1]))
    if not dashed:
        draw.line([p0, p1], fill=tuple(fill), width=width)
        return
    length = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    if length < 1e-6:
        return
    dx, dy = (p1[0] - p0[0]) / length, (p1[1] - p0[1]) / length
    s = 0.0
    while s < length:
        e = min(s + dash_px, length)
        draw.line([(p0[0] + dx * s, p0[1] + dy * s), (p0[0] + dx * e, p0[1] + dy * e)], fill=tuple(fill),
                  width=width)
        s = e + gap_px


@lru_cache(maxsize=8)
def font(size: int = 10) -> ImageFont.ImageFont:
    """Pillow's built-in font at ``size`` pixels (the bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):  # older Pillow / no FreeType
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, fnt) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=fnt)
    return int(math.ceil(x1)), int(math.ceil(y1))


def draw_label(draw: ImageDraw.ImageDraw, xy, text: str, fill: Color = (255, 255, 255),
               background: Color | None = (0, 0, 0), size: int = 10) -> Box:
    """Text with its top-left corner at xy (pixels) on an optional filled box; returns the box."""
    fnt = font(size)
    w, h = _text_size(draw, text, fnt)
    x, y = int(round(xy[0])), int(round(xy[1]))
    box = (x, y, x + w + 3, y + h + 2)
    if background is not None:
        draw.rectangle(box, fill=tuple(background))
    draw.text((x + 2, y + 1), text, fill=tuple(fill), font=fnt)
    return box


def _darken(image: Image.Image, box: Box, factor: float = 0.35) -> None:
    """Scale the pixels inside box (clipped to the image) by factor, in place."""
    x0, y0 = max(box[0], 0), max(box[1], 0)
    x1, y1 = min(box[2] + 1, image.width), min(box[3] + 1, image.height)
    if x1 <= x0 or y1 <= y0:
        return
    region = np.asarray(image.crop((x0, y0, x1, y1)), np.float32) * factor
    image.paste(Image.fromarray(region.astype(np.uint8)), (x0, y0))


# --------------------------------------------------------------------- skeletons

def draw_dot(draw: ImageDraw.ImageDraw, uv, filled: bool, color: Color, radius: int = 4, ring_width: int = 2) -> None:
    """A joint at uv (pixels): a filled dot with a black rim, or a ring."""
    box = [uv[0] - radius, uv[1] - radius, uv[0] + radius, uv[1] + radius]
    if filled:
        draw.ellipse(box, fill=tuple(color), outline=(0, 0, 0))
    else:
        draw.ellipse(box, outline=tuple(color), width=ring_width)


def draw_skeleton(draw: ImageDraw.ImageDraw, uv_px: np.ndarray, bones: Sequence[tuple[int, int]], color: Color,
                  visibility: np.ndarray | None = None, confidence: np.ndarray | None = None,
                  min_confidence: float = 0.3, width: int = 3, radius: int = 4, dashed: bool = False,
                  label: str | None = None) -> int:
    """Bones then joints of one skeleton; returns the number of joints drawn.

    uv_px: [J, 2] pixel coordinates (u, v) of the joints. bones: 0-based joint index
    pairs (``hrc_perception.skeletons.COCO17_BONES``, ``chain_bones(J)``); pairs
    out of range are ignored. A joint is drawn when its uv is finite, its
    visibility (if given, [J] 0/1/2) is not VIS_OUTSIDE and its confidence (if
    given, [J] 0..1) is >= min_confidence: a filled dot when visible (or when no
    visibility is given), a ring when occluded. A bone is drawn when both its
    joints are. ``dashed``: dashed bones (the ground-truth style). ``label`` is
    written next to the first drawn joint.
    """
    uv = np.asarray(uv_px, np.float64).reshape(-1, 2)
    n = len(uv)
    show = np.all(np.isfinite(uv), axis=1)
    vis = None
    if visibility is not None:
        vis = np.asarray(visibility).reshape(-1)
        if len(vis) != n:
            raise ValueError(f"{n} joints but {len(vis)} visibility values")
        show &= vis != VIS_OUTSIDE
    if confidence is not None:
        conf = np.asarray(confidence, np.float64).reshape(-1)
        if len(conf) != n:
            raise ValueError(f"{n} joints but {len(conf)} confidence values")
        show &= np.nan_to_num(conf, nan=-1.0) >= min_confidence
    for a, b in bones:
        if 0 <= a < n and 0 <= b < n and show[a] and show[b]:
            _line(draw, uv[a], uv[b], color, width, dashed)
    for j in np.flatnonzero(show):
        draw_dot(draw, uv[j], vis is None or vis[j] == VIS_VISIBLE, color, radius, 1 if dashed else 2)
    if label and show.any():
        j = int(np.flatnonzero(show)[0])
        draw_label(draw, (uv[j, 0] + radius + 2, uv[j, 1] - radius - 12), label, fill=tuple(color))
    return int(show.sum())


# -------------------------------------------------------------------------- axes

def draw_axes(draw: ImageDraw.ImageDraw, T_cam_obj: np.ndarray, K: np.ndarray, length_m: float = 0.06,
              label: str | None = None, width: int = 3, dashed: bool = False, min_z_m: float = 0.05) -> bool:
    """The object frame's x (red), y (green), z (blue) axes, ``length_m`` metres long.

    T_cam_obj: [4, 4] object -> camera optical frame (metres). K: [3, 3] pixels.
    Nothing is drawn (returns False) when T or K is not finite or an axis end is
    closer than ``min_z_m`` to the camera plane (z); True otherwise. ``label`` is
    written at the origin's projection + (4, 4) pixels.
    """
    T = np.asarray(T_cam_obj, np.float64)
    K = np.asarray(K, np.float64)
    if T.shape != (4, 4) or K.shape != (3, 3):
        raise ValueError(f"T_cam_obj must be [4, 4] and K [3, 3], got {T.shape} and {K.shape}")
    if not (np.all(np.isfinite(T)) and np.all(np.isfinite(K))):
        return False
    pts = transform_points(T, np.vstack([np.zeros(3), np.eye(3) * length_m]))
    if np.any(pts[:, 2] <= min_z_m):
        return False
    uv = project(pts, K)
    if not np.all(np.isfinite(uv)):
        return False
    for k, c in enumerate(AXIS_COLORS):
        _line(draw, uv[0], uv[k + 1], c, width, dashed)
    if label:
        draw.text((uv[0][0] + 4, uv[0][1] + 4), label, fill=(255, 255, 255))
    return True


# ------------------------------------------------------------------------- boxes

def draw_boxes(draw: ImageDraw.ImageDraw, rois_xywh: np.ndarray, labels: Sequence[str] | None = None,
               colors: Sequence[Color] | None = None, width: int = 2, dashed: Sequence[bool] | None = None) -> int:
    """Boxes with a label on top (tracks: "id class"); returns the number drawn.

    rois_xywh: [N, 4] pixels, (x, y) = top-left corner, w, h (a ROI's x_offset,
    y_offset, width, height). labels, colors, dashed: one per box (default: no
    label, :func:`id_color` of the index + 1, solid). Boxes with a non-finite or
    non-positive size are skipped.
    """
    rois = np.asarray(rois_xywh, np.float64).reshape(-1, 4)
    drawn = 0
    for i, (x, y, w, h) in enumerate(rois):
        if not _finite((x, y, w, h)) or w <= 0 or h <= 0:
            continue
        color = tuple(colors[i]) if colors is not None else id_color(i + 1)
        x1, y1 = x + w - 1, y + h - 1
        corners = [(x, y), (x1, y), (x1, y1), (x, y1), (x, y)]
        if dashed is not None and dashed[i]:
            for a, b in zip(corners[:-1], corners[1:]):
                _line(draw, a, b, color, max(1, width - 1), True)
        else:
            draw.rectangle([x, y, x1, y1], outline=color, width=width)
        if labels is not None and labels[i]:
            fnt = font(10)
            _, th = _text_size(draw, labels[i], fnt)
            ty = y - th - 3 if y - th - 3 >= 0 else y + width
            draw_label(draw, (x, ty), labels[i], fill=(0, 0, 0), background=color)
        drawn += 1
    return drawn


# ------------------------------------------------------------------------ safety

def safety_level_name(level: int | str) -> str:
    """'OK', 'WARNING', 'PROTECTIVE_STOP' or 'UNKNOWN' of a SafetyStatus level (int or name);
    anything else is 'UNKNOWN'."""
    if isinstance(level, str):
        return level if level in SAFETY_COLORS else "UNKNOWN"
    try:
        return SAFETY_LEVELS[int(level)]
    except (IndexError, ValueError, TypeError):
        return "UNKNOWN"


def draw_safety_banner(image: Image.Image, level: int | str, min_distance_m: float = float("nan"),
                       reason: str = "", note: str = "", size: int = 12) -> Box:
    """A full-width banner across the top of ``image`` (in place); returns its box.

    Colour by level: OK green, WARNING amber, PROTECTIVE_STOP red, UNKNOWN (and
    any unknown level) grey. Text: level, min distance in metres (when finite),
    reason, then ``note`` (e.g. "stale 0.20 s").
    """
    name = safety_level_name(level)
    parts = [name]
    if min_distance_m is not None and math.isfinite(float(min_distance_m)):
        parts.append(f"min {float(min_distance_m):.2f} m")
    if reason:
        parts.append(str(reason))
    if note:
        parts.append(f"({note})")
    text = "   ".join(parts)
    draw = ImageDraw.Draw(image)
    fnt = font(size)
    _, th = _text_size(draw, "Ag", fnt)
    box = (0, 0, image.width - 1, min(th + 6, image.height) - 1)
    draw.rectangle(box, fill=SAFETY_COLORS[name])
    draw.text((6, 2), text, fill=_SAFETY_TEXT[name], font=fnt)
    return box


# ----------------------------------------------------------------------- tables

def _ms(seconds: float) -> str:
    if seconds is None or not math.isfinite(float(seconds)):
        return "-"
    ms = float(seconds) * 1e3
    return f"{float(seconds):.0f}s" if abs(ms) >= 1e4 else f"{ms:.1f}"


def draw_latency_table(image: Image.Image, rows: Sequence[tuple[str, float, float, int]],
                       corner: str = "bottom-left", title: str = "latency ms", size: int = 10,
                       margin: int = 4) -> Box | None:
    """A per-topic latency table on a darkened box in a corner of ``image`` (in place).

    rows: (name, median_s, p95_s, count) per topic, latency in seconds (shown in
    milliseconds, "-" when not finite; >= 10 s shown in seconds). corner:
    'bottom-left', 'bottom-right', 'top-left' or 'top-right'. Returns the box
    (pixels, inclusive), or None without rows.
    """
    if not rows:
        return None
    if corner not in ("bottom-left", "bottom-right", "top-left", "top-right"):
        raise ValueError(f"unknown corner {corner!r}")
    draw = ImageDraw.Draw(image)
    fnt = font(size)
    table = [(title, "med", "p95", "n")] + [(str(n), _ms(m), _ms(p), str(int(c))) for n, m, p, c in rows]
    col_w = [max(_text_size(draw, r[k], fnt)[0] for r in table) for k in range(4)]
    _, line_h = _text_size(draw, "Ag", fnt)
    line_h += 2
    gap = 8
    w = sum(col_w) + 3 * gap + 8
    h = line_h * len(table) + 6
    x0 = margin if corner.endswith("left") else image.width - margin - w
    y0 = margin if corner.startswith("top") else image.height - margin - h
    box = (x0, y0, x0 + w - 1, y0 + h - 1)
    _darken(image, box)
    for i, row in enumerate(table):
        y = y0 + 3 + i * line_h
        x = x0 + 4
        for k, cell in enumerate(row):
            tw = _text_size(draw, cell, fnt)[0]
            cx = x if k == 0 else x + col_w[k] - tw      # names left, numbers right aligned
            draw.text((cx, y), cell, fill=(255, 255, 0) if i == 0 else (255, 255, 255), font=fnt)
            x += col_w[k] + gap
    return box


def draw_text_block(image: Image.Image, lines: Sequence[str], xy=(4, 4), fill: Color = (255, 255, 255),
                    size: int = 10) -> Box | None:
    """Lines of text on a darkened box with its top-left corner at xy (in place);
    returns the box, or None without lines."""
    if not lines:
        return None
    draw = ImageDraw.Draw(image)
    fnt = font(size)
    sizes = [_text_size(draw, s, fnt) for s in lines]
    _, line_h = _text_size(draw, "Ag", fnt)
    line_h += 2
    x0, y0 = int(xy[0]), int(xy[1])
    box = (x0, y0, x0 + max(w for w, _ in sizes) + 7, y0 + line_h * len(lines) + 3)
    _darken(image, box)
    for i, s in enumerate(lines):
        draw.text((x0 + 4, y0 + 2 + i * line_h), s, fill=tuple(fill), font=fnt)
    return box


# --------------------------------------------------------------- depth path view

DEPTH_LABEL_COLORS = {2: (60, 110, 230), 3: (60, 200, 90), 4: (235, 50, 40)}   # robot, a skeleton's, unexplained


def draw_depth_verdict(depth_m: np.ndarray, label_image: np.ndarray, level: int | str,
                       min_distance_m: float = float("nan"), reason: str = "",
                       pixel_uv: tuple[float, float] | None = None) -> np.ndarray:
    """The depth path's view of one frame, needing no colour image: [H, W, 3] uint8.

    depth_m [H, W] (metres, 0 = none) as grey (near bright, no reading black);
    label_image [H, W] (``depth_space.LABEL_*``): the robot's pixels blue, a fresh
    skeleton's green, unexplained foreground (possibly a person) red, blended over the grey;
    the deciding pixel ringed; the verdict's banner across the top.
    """
    d = np.asarray(depth_m, dtype=np.float32)
    labels = np.asarray(label_image)
    if d.ndim != 2 or labels.shape != d.shape:
        raise ValueError(f"depth {d.shape} and labels {labels.shape} must be the same [H, W]")
    valid = d > 0
    grey = np.zeros(d.shape, np.float32)
    if valid.any():
        lo, hi = np.percentile(d[valid], [2, 98])
        grey[valid] = 230.0 - 170.0 * np.clip((d[valid] - lo) / max(hi - lo, 1e-3), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for label, color in DEPTH_LABEL_COLORS.items():
        m = labels == label
        rgb[m] = 0.35 * rgb[m] + 0.65 * np.array(color, np.float32)
    image = Image.fromarray(rgb.astype(np.uint8))
    if pixel_uv is not None and _finite(pixel_uv):
        draw = ImageDraw.Draw(image)
        u, v = pixel_uv
        for r, c in ((12, (255, 255, 255)), (10, (0, 0, 0))):
            draw.ellipse((u - r, v - r, u + r, v + r), outline=c, width=2)
    draw_safety_banner(image, level, min_distance_m, reason)
    return np.asarray(image)
