"""BOP-format export of the parts (6D pose training data).

Layout of ``out_dir`` (published atomically on ``close()``), following the BOP
conventions (https://github.com/thodan/bop_toolkit/blob/master/docs/bop_datasets_format.md)::

    models/obj_{obj_id:06d}.ply            part meshes, millimetres, model frame
    models/models_info.json                {obj_id: diameter, min_*, size_*, symmetries_*}
    {split}/{episode:06d}/rgb/{i:06d}.jpg
    {split}/{episode:06d}/depth/{i:06d}.png        uint16 z-depth, mm (depth_scale 1.0)
    {split}/{episode:06d}/mask_visib/{i:06d}_{k:06d}.png   0/255 visible mask of GT k
    {split}/{episode:06d}/scene_gt.json
    {split}/{episode:06d}/scene_camera.json
    {split}/{episode:06d}/scene_gt_info.json

``obj_id`` is the position of the part model in the ``parts`` list + 1. One scene
folder per episode; ``i`` counts the frames of the episode from 0 in arrival
order (``scene_camera.json`` also records each image's ``frame_index`` and
``stamp_ns`` to link it to the COCO / keypoint exports). Only parts
(``frame.parts``) are exported; the robot and people are occluders.

Units and frames: rotations are row-major 3x3 (9 floats), translations in mm.
``cam_R_m2c``/``cam_t_m2c`` map model to camera (``PartGT.T_cam_obj``);
``cam_R_w2c``/``cam_t_w2c`` map world to camera (inverse of ``Frame.T_world_cam``).
Boxes are BOP-style [x, y, w, h] with w = x_max - x_min (pixel indices, as
bop_toolkit's ``calc_2d_bbox``; COCO boxes add 1), [-1, -1, -1, -1] when empty.

``px_count_all`` / ``bbox_obj`` describe the part's full silhouette ignoring
occluders, given by the optional ``silhouette_fn(frame, part_gt) -> bool [H, W]``;
without it the visible mask is used, so ``visib_fract`` is 1 for every part
with a visible pixel (and 0 for hidden ones). The visible pixels always count
as part of the full silhouette.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hrc_perception.geometry import invert_T
from hrc_perception.io.atomic import (DatasetWriter, atomic_write_bytes, json_bytes, jpeg_bytes,
                                      png_bytes)
from hrc_perception.sim.frame import ClassInfo, Frame, PartGT

M_TO_MM = 1000.0
SilhouetteFn = Callable[[Frame, PartGT], np.ndarray]


# ----------------------------------------------------------------------------- reading

def scene_rgb_path(scene_dir: str | os.PathLike, image_id: int) -> Path | None:
    """The colour image of ``image_id`` in a BOP scene folder (``rgb/{id:06d}.png`` or
    ``.jpg``), or None when it has none."""
    return next((p for p in (Path(scene_dir) / "rgb" / f"{int(image_id):06d}.{ext}" for ext in ("png", "jpg"))
                 if p.is_file()), None)


def gt_pose_T(entry: dict, unit_to_m: float = 1.0 / M_TO_MM) -> np.ndarray:
    """T_cam_obj [4, 4] (translation in metres) of one ``scene_gt.json`` entry
    (``cam_R_m2c`` row-major, ``cam_t_m2c`` in the mesh unit; ``unit_to_m`` metres per unit)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(entry["cam_R_m2c"], np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(entry["cam_t_m2c"], np.float64) * unit_to_m
    return T


# ----------------------------------------------------------------------------- models

def ply_bytes(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None = None,
              colors: np.ndarray | None = None) -> bytes:
    """Binary little-endian PLY of a triangle mesh, in the layout bop_toolkit reads.

    vertices [V, 3] and normals [V, 3] (float32 in the file), colors [V, 3] uint8,
    faces [F, 3] vertex indices."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"expected triangle faces [F, 3], got {faces.shape}")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if normals is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vert = np.zeros(len(vertices), dtype=fields)
    for axis, name in enumerate("xyz"):
        vert[name] = vertices[:, axis]
        if normals is not None:
            vert["n" + name] = normals[:, axis]
    if colors is not None:
        for c, name in enumerate(("red", "green", "blue")):
            vert[name] = colors[:, c]
    face = np.zeros(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face["n"] = 3
    face["idx"] = faces
    header = ["ply", "format binary_little_endian 1.0", "comment units: millimetres",
              f"element vertex {len(vert)}"]
    header += [f"property {'float' if t == '<f4' else 'uchar'} {n}" for n, t in fields]
    header += [f"element face {len(face)}", "property list uchar int vertex_indices", "end_header"]
    return ("\n".join(header) + "\n").encode("ascii") + vert.tobytes() + face.tobytes()


def part_ply_bytes(part) -> bytes:
    """PLY (millimetres, with vertex normals and, if the model has them, vertex colours)
    of a PartModel's mesh."""
    mesh = part.mesh
    colors = None
    if getattr(part, "vertex_colors", None) is not None:
        colors = np.clip(np.round(np.asarray(part.vertex_colors)[:, :3] * 255.0), 0, 255).astype(np.uint8)
    return ply_bytes(np.asarray(mesh.vertices) * M_TO_MM, np.asarray(mesh.faces),
                     normals=np.asarray(mesh.vertex_normals), colors=colors)


def _T_to_mm_list(T: np.ndarray) -> list[float]:
    """Row-major 16 floats of a 4x4 transform with its translation converted to mm."""
    T = np.array(T, dtype=np.float64)
    T[:3, 3] *= M_TO_MM
    return T.reshape(-1).tolist()


def model_info(part) -> dict:
    """models_info.json entry of a PartModel: diameter, bounding box (min_*, size_*)
    in mm, symmetries (keys left out when the model has none)."""
    lo, hi = np.asarray(part.mesh.bounds, dtype=np.float64) * M_TO_MM
    info = {"diameter": float(part.diameter_m) * M_TO_MM}
    for axis, name in enumerate("xyz"):
        info[f"min_{name}"] = lo[axis]
        info[f"size_{name}"] = hi[axis] - lo[axis]
    if len(part.symmetries_discrete):
        info["symmetries_discrete"] = [_T_to_mm_list(T) for T in part.symmetries_discrete]
    if len(part.symmetries_continuous):
        info["symmetries_continuous"] = [
            {"axis": np.asarray(axis, dtype=np.float64).tolist(),
             "offset": (np.asarray(offset, dtype=np.float64) * M_TO_MM).tolist()}
            for axis, offset in part.symmetries_continuous]
    return info


# ----------------------------------------------------------------------------- per frame

def bop_bbox(mask: np.ndarray) -> list[int]:
    """BOP box [x, y, w, h] (w = x_max - x_min) of a boolean mask; [-1]*4 if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return [-1, -1, -1, -1]
    cols = np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0]), int(rows[-1] - rows[0])]


def pose_entry(obj_id: int, T_cam_obj: np.ndarray) -> dict:
    """scene_gt.json entry: cam_R_m2c (9, row-major) and cam_t_m2c (3, mm)."""
    T = np.asarray(T_cam_obj, dtype=np.float64)
    return {"obj_id": obj_id, "cam_R_m2c": T[:3, :3].reshape(-1).tolist(),
            "cam_t_m2c": (T[:3, 3] * M_TO_MM).tolist()}


def camera_entry(frame: Frame) -> dict:
    """scene_camera.json entry: intrinsics, world-to-camera pose (mm) and, beyond
    BOP, the frame's index and time stamp."""
    T_cam_world = invert_T(np.asarray(frame.T_world_cam, dtype=np.float64))
    return {"cam_K": np.asarray(frame.K, dtype=np.float64).reshape(-1).tolist(),
            "depth_scale": 1.0,
            "cam_R_w2c": T_cam_world[:3, :3].reshape(-1).tolist(),
            "cam_t_w2c": (T_cam_world[:3, 3] * M_TO_MM).tolist(),
            "frame_index": frame.index, "stamp_ns": int(frame.stamp_ns)}


def gt_info_entry(visible: np.ndarray, silhouette: np.ndarray) -> dict:
    """scene_gt_info.json entry of one GT from its visible and full masks [H, W] bool."""
    px_visib = int(np.count_nonzero(visible))
    px_all = int(np.count_nonzero(silhouette))
    return {"bbox_obj": bop_bbox(silhouette), "bbox_visib": bop_bbox(visible),
            "px_count_all": px_all, "px_count_visib": px_visib,
            "visib_fract": px_visib / px_all if px_all > 0 else 0.0}


class _Scene:
    """Accumulated per-episode JSON of one scene folder."""

    def __init__(self, episode: int, path):
        self.episode, self.path = episode, path
        self.gt: dict[str, list] = {}
        self.camera: dict[str, dict] = {}
        self.gt_info: dict[str, list] = {}
        for sub in ("rgb", "depth", "mask_visib"):
            (path / sub).mkdir(parents=True)

    @property
    def num_images(self) -> int:
        return len(self.camera)

    def write_json(self) -> None:
        for name, doc in (("scene_gt", self.gt), ("scene_camera", self.camera),
                          ("scene_gt_info", self.gt_info)):
            atomic_write_bytes(self.path / f"{name}.json", json_bytes(doc))


class BopWriter(DatasetWriter):
    """Writes a BOP dataset of the parts in the frames given to :meth:`add`.

    out_dir: dataset root (replaced as a whole on close). classes: the run's
    classes (unused; same signature as the other writers). parts: PartModel list;
    obj_id = index + 1, matched to ``PartGT.class_name`` by ``PartModel.name``.
    silhouette_fn: optional full (unoccluded) silhouette of a part, see module doc.
    split: name of the image split folder.
    """

    def __init__(self, out_dir: str | os.PathLike, classes: Sequence[ClassInfo], parts: Sequence,
                 silhouette_fn: SilhouetteFn | None = None, split: str = "train",
                 jpeg_quality: int = 95):
        super().__init__(out_dir)
        self.parts = list(parts)
        self.obj_ids = {p.name: i + 1 for i, p in enumerate(self.parts)}
        if len(self.obj_ids) != len(self.parts):
            raise ValueError("part model names must be unique")
        self.silhouette_fn = silhouette_fn
        self.split = split
        self.jpeg_quality = jpeg_quality
        self._scene: _Scene | None = None
        self._done_episodes: set[int] = set()
        self._write_models()

    def _write_models(self) -> None:
        models = self.work / "models"
        models.mkdir()
        infos = {}
        for part in self.parts:
            obj_id = self.obj_ids[part.name]
            atomic_write_bytes(models / f"obj_{obj_id:06d}.ply", part_ply_bytes(part))
            infos[str(obj_id)] = model_info(part)
        atomic_write_bytes(models / "models_info.json", json_bytes(infos))

    def _scene_for(self, episode: int) -> _Scene:
        """The open scene of ``episode``, closing the previous one when it changes."""
        if self._scene is not None and self._scene.episode == episode:
            return self._scene
        if episode in self._done_episodes:
            raise ValueError(f"episode {episode} was already written; frames of an episode "
                             "must arrive together")
        self._close_scene()
        self._scene = _Scene(episode, self.work / self.split / f"{episode:06d}")
        return self._scene

    def _close_scene(self) -> None:
        if self._scene is not None:
            self._scene.write_json()
            self._done_episodes.add(self._scene.episode)
            self._scene = None

    def obj_id(self, class_name: str) -> int:
        """BOP obj_id of a part class name."""
        try:
            return self.obj_ids[class_name]
        except KeyError:
            raise KeyError(f"part {class_name!r} is not among the part models "
                           f"{sorted(self.obj_ids)}") from None

    def _add(self, frame: Frame) -> None:
        scene = self._scene_for(frame.episode)
        i = scene.num_images
        key = str(i)
        atomic_write_bytes(scene.path / "rgb" / f"{i:06d}.jpg", jpeg_bytes(frame.rgb, self.jpeg_quality))
        atomic_write_bytes(scene.path / "depth" / f"{i:06d}.png",
                           png_bytes(np.asarray(frame.depth_mm, dtype=np.uint16)))
        scene.camera[key] = camera_entry(frame)
        scene.gt[key], scene.gt_info[key] = [], []
        for k, part_gt in enumerate(frame.parts):
            visible = frame.instance_mask == part_gt.instance_id
            full = visible
            if self.silhouette_fn is not None:
                full = np.asarray(self.silhouette_fn(frame, part_gt), dtype=bool) | visible
            atomic_write_bytes(scene.path / "mask_visib" / f"{i:06d}_{k:06d}.png",
                               png_bytes(visible.astype(np.uint8) * 255))
            scene.gt[key].append(pose_entry(self.obj_id(part_gt.class_name), part_gt.T_cam_obj))
            scene.gt_info[key].append(gt_info_entry(visible, full))

    def _finalize(self) -> None:
        self._close_scene()
