"""Part instances for DenseFusion: square crops, masked point clouds, part models.

One instance becomes an :class:`InstanceCrop`: the square window around its mask,
resampled (nearest pixel) to ``crop_px`` x ``crop_px``, keeping for every crop pixel
the image pixel it came from, so points back-project with the frame's own
intrinsics. Training (BOP files) and the node (ROS images) build crops the same
way, with :func:`crop_instance`.

Units: depth and points in metres, camera optical frame; pixels are integer
indices (column u, row v) of the full image.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from hrc_perception.geometry import backproject_pixels, sample_surface_m
from hrc_perception.io.bop import gt_pose_T, scene_rgb_path
from hrc_perception.object_pose.render_compare import RenderView, render_view

CROP_PX = 64
"""Side of the square colour/depth/mask crop fed to the network (pixels)."""
CROP_MARGIN = 0.15
"""The crop window is the mask's box side times (1 + CROP_MARGIN), centred on the box."""
MM_TO_M = 1e-3


@dataclass(frozen=True)
class InstanceCrop:
    """One instance, resampled to a square crop.

    rgb [S, S, 3] uint8, depth_m [S, S] float32 (0 = no depth), mask [S, S] bool,
    src_uv_px [2, S] int: image column of each crop column (row 0) and image row of
    each crop row (row 1); pixels outside the image have depth 0 and mask False.
    """
    rgb: np.ndarray
    depth_m: np.ndarray
    mask: np.ndarray
    src_uv_px: np.ndarray

    @property
    def size(self) -> int:
        return int(self.rgb.shape[0])


def square_window(mask: np.ndarray, margin: float = CROP_MARGIN) -> tuple[float, float, float] | None:
    """Square window (x0, y0, side), in pixel-edge coordinates, around the box of a
    [H, W] bool mask, enlarged by ``margin``; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1, y0, y1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    return (x0 + x1 - side) / 2.0, (y0 + y1 - side) / 2.0, float(side)


def crop_instance(rgb: np.ndarray, depth_m: np.ndarray, mask: np.ndarray, crop_px: int = CROP_PX,
                  window: tuple[float, float, float] | None = None) -> InstanceCrop | None:
    """Crop of one instance. rgb [H, W, 3] uint8, depth_m [H, W] float (metres, 0 or
    NaN = none), mask [H, W] bool (the instance's visible pixels). window: (x0, y0,
    side) pixel edges, default :func:`square_window` of the mask. None if the mask
    is empty. Nearest-pixel resampling: crop pixel j takes image column
    floor(x0 + (j + 0.5) * side / crop_px)."""
    if rgb.shape[:2] != depth_m.shape or mask.shape != depth_m.shape:
        raise ValueError(f"rgb {rgb.shape[:2]}, depth {depth_m.shape} and mask {mask.shape} differ in size")
    if window is None:
        window = square_window(mask)
        if window is None:
            return None
    x0, y0, side = window
    h, w = depth_m.shape
    steps = (np.arange(crop_px) + 0.5) * (side / crop_px)
    cols = np.floor(x0 + steps).astype(np.int64)
    rows = np.floor(y0 + steps).astype(np.int64)
    inside = (rows[:, None] >= 0) & (rows[:, None] < h) & (cols[None, :] >= 0) & (cols[None, :] < w)
    r = np.clip(rows, 0, h - 1)
    c = np.clip(cols, 0, w - 1)
    depth = np.nan_to_num(depth_m[np.ix_(r, c)].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    depth[~inside | (depth < 0)] = 0.0
    crop_rgb = rgb[np.ix_(r, c)].copy()
    crop_rgb[~inside] = 0
    crop_mask = mask[np.ix_(r, c)] & inside
    return InstanceCrop(crop_rgb, depth, crop_mask, np.stack([cols, rows]))


def valid_pixels(crop: InstanceCrop) -> np.ndarray:
    """Flat indices (into S*S, row-major) of crop pixels inside the mask with depth."""
    return np.flatnonzero((crop.mask & (crop.depth_m > 0)).reshape(-1))


def valid_source_pixels(crop: InstanceCrop) -> int:
    """Number of distinct image pixels behind the valid crop pixels (a small instance
    is repeated when upsampled to the crop; this counts what was measured)."""
    rows, cols = np.divmod(valid_pixels(crop), crop.size)
    return len(np.unique(crop.src_uv_px[1, rows] * (int(crop.src_uv_px[0].max()) + 1) + crop.src_uv_px[0, cols]))


def choose_pixels(valid: np.ndarray, n_points: int, rng: np.random.Generator | None) -> np.ndarray:
    """``n_points`` of the ``valid`` flat indices: a random subset without replacement
    when there are enough, otherwise all of them repeated to fill (the repetition
    cycles, so every valid pixel counts equally). rng None: evenly spaced, for
    deterministic inference. Empty ``valid``: ValueError."""
    if len(valid) == 0:
        raise ValueError("no valid pixels to choose from")
    if len(valid) >= n_points:
        if rng is None:
            return valid[np.linspace(0, len(valid) - 1, n_points).round().astype(np.int64)]
        return np.sort(rng.choice(valid, n_points, replace=False))
    reps = -(-n_points // len(valid))
    return np.tile(valid, reps)[:n_points]


def crop_points_cam_m(crop: InstanceCrop, flat_idx: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points [N, 3] (metres) of crop pixels ``flat_idx`` (flat, into
    S*S), back-projected from their image pixel (centre of the pixel, as the depth
    was measured) with intrinsics K [3, 3]."""
    s = crop.size
    rows, cols = np.divmod(flat_idx, s)
    uv = np.stack([crop.src_uv_px[0, cols], crop.src_uv_px[1, rows]], axis=-1).astype(np.float64)
    return backproject_pixels(uv, crop.depth_m.reshape(-1)[flat_idx].astype(np.float64), K)


# ----------------------------------------------------------------------------- part models

@dataclass(frozen=True)
class PartInfo:
    """A part model for pose training and scoring.

    name: class name. points_m [M, 3] float32: points on the surface, model frame,
    metres. diameter_m: largest extent. symmetric: the part has a symmetry (scored and
    trained with ADD-S)."""
    name: str
    points_m: np.ndarray
    diameter_m: float
    symmetric: bool


def load_bop_parts(models_dir: str | Path, names: dict[int, str] | None = None, n_points: int = 1000,
                   seed: int = 0) -> dict[int, PartInfo]:
    """{obj_id: PartInfo} of a BOP ``models/`` folder (``obj_%06d.ply`` in millimetres
    and ``models_info.json``). names: {obj_id: class name}, default the file stem
    (``obj_000001``), as the synthetic cell names mesh-folder parts."""
    import trimesh
    models_dir = Path(models_dir)
    info_file = models_dir / "models_info.json"
    if not info_file.is_file():
        raise FileNotFoundError(f"{models_dir}: no models_info.json (a BOP models folder)")
    info = json.loads(info_file.read_text())
    parts = {}
    for key, entry in sorted(info.items(), key=lambda kv: int(kv[0])):
        oid = int(key)
        path = models_dir / f"obj_{oid:06d}.ply"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: mesh of object {oid} (in models_info.json) not found")
        mesh = trimesh.load(str(path), force="mesh", process=False)
        verts = np.asarray(mesh.vertices, np.float64) * MM_TO_M
        symmetric = bool(entry.get("symmetries_discrete") or entry.get("symmetries_continuous"))
        parts[oid] = PartInfo(name=(names or {}).get(oid, path.stem),
                              points_m=sample_surface_m(verts, np.asarray(mesh.faces, np.int64), n_points, seed + oid),
                              diameter_m=float(entry["diameter"]) * MM_TO_M, symmetric=symmetric)
    return parts


def synth_part_names(synth_dir: str | Path) -> dict[int, str] | None:
    """{obj_id: part name} of a ``hrc-perception synth`` output (its meta.json lists the
    classes; BOP obj_id = position among the parts + 1); None without meta.json."""
    meta = Path(synth_dir) / "meta.json"
    if not meta.is_file():
        return None
    classes = json.loads(meta.read_text())["classes"]
    parts = [c["name"] for c in sorted(classes, key=lambda c: c["class_id"]) if c["category"] == "part"]
    return {i + 1: name for i, name in enumerate(parts)}


# ----------------------------------------------------------------------------- BOP scenes

@dataclass(frozen=True)
class PoseSample:
    """One annotated part instance: its crop, intrinsics K [3, 3], obj_id, the
    ground-truth pose T_cam_obj [4, 4] (metres), where it came from, and its view
    for render-and-compare (:func:`~hrc_perception.object_pose.render_compare.render_view`)."""
    crop: InstanceCrop
    K: np.ndarray
    obj_id: int
    T_cam_obj: np.ndarray
    scene: str
    image_id: int
    gt_index: int
    view: RenderView | None = None


def read_depth_m(path: Path, depth_scale: float) -> np.ndarray:
    """BOP depth png (uint16; value * depth_scale = millimetres) as float32 metres."""
    return np.asarray(Image.open(path), dtype=np.float32) * (depth_scale * MM_TO_M)


def bop_scene_dirs(split_dir: str | Path) -> list[Path]:
    """Scene folders (with scene_gt.json) of a BOP split folder, sorted."""
    split_dir = Path(split_dir)
    scenes = sorted(p for p in split_dir.iterdir() if (p / "scene_gt.json").is_file()) if split_dir.is_dir() else []
    if not scenes:
        raise FileNotFoundError(f"{split_dir}: no BOP scenes (folders with scene_gt.json)")
    return scenes


def iter_scene_samples(scene_dir: Path, crop_px: int = CROP_PX, min_visible_px: int = 50,
                       obj_ids: set[int] | None = None, masks: dict | None = None,
                       with_views: bool = False) -> Iterator[PoseSample]:
    """Annotated instances of one BOP scene folder (rgb/ or jpg, depth/, mask_visib/,
    scene_gt.json, scene_camera.json). Instances with fewer than ``min_visible_px``
    visible pixels, or whose obj_id is not in ``obj_ids``, are skipped. masks:
    {(image_id, gt_index): [H, W] bool} to use instead of mask_visib/ files (masks
    rendered from the poses, for real scenes that have none). with_views: also each
    sample's render-and-compare view (evaluation; training needs none)."""
    gt = json.loads((scene_dir / "scene_gt.json").read_text())
    cams = json.loads((scene_dir / "scene_camera.json").read_text())
    for key in sorted(gt, key=int):
        image_id = int(key)
        entries = gt[key]
        if obj_ids is not None and not any(e["obj_id"] in obj_ids for e in entries):
            continue
        rgb_path = scene_rgb_path(scene_dir, image_id)
        depth_path = scene_dir / "depth" / f"{image_id:06d}.png"
        if rgb_path is None or not depth_path.is_file():
            continue
        cam = cams[key]
        K = np.asarray(cam["cam_K"], np.float64).reshape(3, 3)
        rgb = np.asarray(Image.open(rgb_path).convert("RGB"))
        depth = read_depth_m(depth_path, float(cam.get("depth_scale", 1.0)))
        for k, e in enumerate(entries):
            if obj_ids is not None and e["obj_id"] not in obj_ids:
                continue
            if masks is not None:
                mask = masks.get((image_id, k))
                if mask is None:
                    continue
            else:
                mpath = scene_dir / "mask_visib" / f"{image_id:06d}_{k:06d}.png"
                if not mpath.is_file():
                    continue
                mask = np.asarray(Image.open(mpath)) > 127
            if mask.sum() < min_visible_px:
                continue
            crop = crop_instance(rgb, depth, mask, crop_px)
            if crop is None or len(valid_pixels(crop)) == 0:
                continue
            yield PoseSample(crop, K, int(e["obj_id"]), gt_pose_T(e), scene_dir.name, image_id, k,
                             render_view(mask, depth, K) if with_views else None)


def bop_root(synth_dir: Path) -> Path:
    """The BOP folder of a synth output (``OUT/bop``), or the folder itself."""
    return synth_dir / "bop" if (synth_dir / "bop" / "models").is_dir() else synth_dir


def load_bop_split(synth_dir: str | Path, split: str = "train", crop_px: int = CROP_PX, min_visible_px: int = 50,
                   quiet: bool = False, with_views: bool = False) -> tuple[dict[int, PartInfo], list[PoseSample]]:
    """(parts by obj_id, instances) of a ``hrc-perception synth --dataset bop`` output;
    with_views: as in :func:`iter_scene_samples`."""
    synth_dir = Path(synth_dir)
    root = bop_root(synth_dir)
    parts = load_bop_parts(root / "models", synth_part_names(synth_dir))
    scenes = bop_scene_dirs(root / split)
    samples: list[PoseSample] = []
    t0 = time.perf_counter()
    for i, scene in enumerate(scenes):
        samples.extend(iter_scene_samples(scene, crop_px, min_visible_px, with_views=with_views))
        if not quiet and ((i + 1) % 50 == 0 or i + 1 == len(scenes)):
            print(f"object_pose data: {i + 1}/{len(scenes)} scenes, {len(samples)} instances "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if not samples:
        raise ValueError(f"{root / split}: no part instances with at least {min_visible_px} visible pixels")
    return parts, samples
