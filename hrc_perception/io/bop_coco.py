"""COCO instance annotations of a real BOP scene, rendered from its ground-truth poses.

BOP scenes (e.g. Linemod-Occluded) give each object's pose (``scene_gt.json``:
``cam_R_m2c`` row-major, ``cam_t_m2c`` in the mesh unit) and the camera
(``scene_camera.json``: ``cam_K``), not instance masks. :func:`bop_scene_to_coco`
ray-casts every annotated object's mesh under its pose with the frame's intrinsics and
keeps, per object, the pixels where it is the nearest surface: the visible mask. The
annotated objects occlude each other; clutter without a mesh occludes only in frames
with a real depth image (``depth/``), where measured depth in front of the rendered
surface removes the pixel.
The output is a folder that ``hrc-perception eval segmentation --data`` reads:
``annotations.json`` + ``images/`` (copies of the real frames). Categories are named
like the synthetic cell names mesh-folder parts: the mesh file's stem (``obj_000001``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from hrc_perception.io.atomic import atomic_write_json
from hrc_perception.io.bop import gt_pose_T, scene_rgb_path
from hrc_perception.io.coco import encode_mask
from hrc_perception.sim.parts import UNIT_SCALES


def load_meshes(models_dir: Path, obj_ids: set[int], scale: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{obj_id: (vertices [V, 3] metres, faces [F, 3] int)} from ``obj_%06d.ply``."""
    import trimesh
    out = {}
    for oid in sorted(obj_ids):
        path = models_dir / f"obj_{oid:06d}.ply"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: mesh of object {oid} (named in scene_gt.json) not found")
        mesh = trimesh.load(str(path), force="mesh", process=False)
        out[oid] = (np.asarray(mesh.vertices, np.float64) * scale, np.asarray(mesh.faces, np.int64))
    return out


def visible_masks(K: np.ndarray, width: int, height: int,
                  posed: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  depth_m: np.ndarray | None = None, depth_tolerance_m: float = 0.015) -> np.ndarray:
    """Visible mask of each object [N, H, W] bool.

    K: [3, 3] intrinsics (pixels). posed: per object (vertices [V, 3] in the model frame,
    metres; faces [F, 3]; T_cam_obj [4, 4], translation metres). Pixel (u, v) is a ray
    through its centre (u + 0.5, v + 0.5); it belongs to the object it hits first.
    depth_m: the measured depth [H, W] (metres, 0 = none), when there is one: a pixel
    whose measured depth is more than ``depth_tolerance_m`` in front of the rendered
    surface is occluded by something without a mesh and belongs to no object.
    """
    import open3d as o3d
    scene = o3d.t.geometry.RaycastingScene()
    for verts, faces, T in posed:
        v_cam = verts @ T[:3, :3].T + T[:3, 3]
        scene.add_triangles(o3d.core.Tensor(v_cam.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    rays = np.concatenate([np.zeros_like(d), d], axis=-1).astype(np.float32)
    cast = scene.cast_rays(o3d.core.Tensor(rays))
    hit = cast["geometry_ids"].numpy().astype(np.int64)
    if depth_m is not None:
        z_render = cast["t_hit"].numpy() * d[..., 2]
        occluded = (depth_m > 0) & np.isfinite(z_render) & (depth_m < z_render - depth_tolerance_m)
        hit[occluded] = -1
    return np.stack([hit == k for k in range(len(posed))]) if posed else np.zeros((0, height, width), bool)


def bop_scene_to_coco(scene_dir: str | Path, models_dir: str | Path, out_dir: str | Path,
                      mesh_units: str = "mm", min_visible_px: int = 16) -> dict:
    """Write ``out_dir/annotations.json`` and ``out_dir/images/`` for every frame of a
    BOP scene that has an image in ``rgb/``; returns a summary (images, instances per
    class). Objects with fewer than ``min_visible_px`` visible pixels are left out."""
    scene_dir, models_dir, out_dir = Path(scene_dir), Path(models_dir), Path(out_dir)
    if mesh_units not in UNIT_SCALES:
        raise ValueError(f"mesh_units must be one of {sorted(UNIT_SCALES)}, got {mesh_units!r}")
    scale = UNIT_SCALES[mesh_units]
    for name in ("scene_gt.json", "scene_camera.json"):
        if not (scene_dir / name).is_file():
            raise FileNotFoundError(f"{scene_dir / name}: not found (a BOP scene folder has scene_gt.json, "
                                    f"scene_camera.json and rgb/)")
    scene_gt = json.loads((scene_dir / "scene_gt.json").read_text())
    cameras = json.loads((scene_dir / "scene_camera.json").read_text())
    meshes = load_meshes(models_dir, {int(o["obj_id"]) for objs in scene_gt.values() for o in objs}, scale)
    from PIL import Image
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, counts = [], [], {}
    for key in sorted(scene_gt, key=int):
        rgb = scene_rgb_path(scene_dir, int(key))
        if rgb is None:
            continue
        width, height = Image.open(rgb).size
        K = np.asarray(cameras[key]["cam_K"], np.float64).reshape(3, 3)
        posed, ids = [], []
        for obj in scene_gt[key]:
            verts, faces = meshes[int(obj["obj_id"])]
            posed.append((verts, faces, gt_pose_T(obj, scale)))
            ids.append(int(obj["obj_id"]))
        depth_png = scene_dir / "depth" / f"{int(key):06d}.png"
        depth_m = None
        if depth_png.is_file():   # BOP depth: uint16 times depth_scale, in the mesh unit
            depth_m = np.asarray(Image.open(depth_png), np.float64) * float(cameras[key].get("depth_scale", 1.0)) * scale
        image_id = int(key)
        shutil.copyfile(rgb, out_dir / "images" / rgb.name)
        images.append({"id": image_id, "file_name": f"images/{rgb.name}", "width": width, "height": height})
        for oid, mask in zip(ids, visible_masks(K, width, height, posed, depth_m)):
            if mask.sum() < min_visible_px:
                continue
            seg, area, bbox = encode_mask(mask)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": oid,
                                "segmentation": seg, "area": area, "bbox": bbox, "iscrowd": 0})
            counts[f"obj_{oid:06d}"] = counts.get(f"obj_{oid:06d}", 0) + 1
    categories = [{"id": oid, "name": f"obj_{oid:06d}", "supercategory": "part"} for oid in sorted(meshes)]
    atomic_write_json(out_dir / "annotations.json", {"images": images, "annotations": annotations,
                                                     "categories": categories})
    return {"images": len(images), "instances": counts}
