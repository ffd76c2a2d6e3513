"""Ground truth of the synthetic cell as the package's own messages (pure functions, no node).

The synthetic source publishes, beside the camera topics, the exact ground truth in
the same message types the perception nodes publish, so any consumer (evaluation,
rviz, the safety monitor in a test) can treat ground truth and estimates alike.
Relative topic names (a launch file puts them under a namespace, default ``/cell``):

| topic                                  | type              |
|----------------------------------------|-------------------|
| ``ground_truth/robot/skeleton``        | Skeleton          |
| ``ground_truth/robot/base_pose``       | geometry_msgs/PoseStamped (robot base in the camera frame; absent without a robot) |
| ``ground_truth/humans/skeletons``      | SkeletonArray     |
| ``ground_truth/objects/poses``         | ObjectPoseArray   |
| ``ground_truth/segmentation/instances``| InstanceArray     |

Every message of one frame carries the same ``std_msgs/Header``: stamp = the frame's
``stamp_ns``, frame_id = the colour camera's optical frame (z forward, x right,
y down). Positions are metres in that frame, pixel coordinates (u, v) = (column,
row) of the colour image, poses ``T_cam_obj`` (model frame -> camera frame).
Ground truth is certain: every confidence and score is 1.

Inputs are either a simulator :class:`~hrc_perception.sim.frame.Frame` or a
ground-truth sidecar record (:mod:`hrc_perception.io.ground_truth`, the same content
without images; its floats are rounded to 1e-6), so a bag's ground truth can be
republished without re-rendering. Two inverses (:func:`skeleton_to_arrays`,
:func:`instances_to_mask`) serve tests and evaluation.
"""
from __future__ import annotations

import array
from typing import Any, Sequence

import numpy as np
from geometry_msgs.msg import Point, PoseStamped
from scipy import ndimage
from std_msgs.msg import Header

from hrc_perception.msg import Instance as InstanceMsg
from hrc_perception.msg import (InstanceArray, ObjectPose, ObjectPoseArray, Skeleton,
                                SkeletonArray)
from hrc_perception.ros.convert import (ImageConversionError, copy_header, mask_to_roi_image, matrix_to_pose,
                                        ns_to_stamp, roi_crop)
from hrc_perception.sim.frame import Frame, HumanGT, Instance, Keypoints, PartGT, RobotGT

GT_ROBOT_SKELETON_TOPIC = "ground_truth/robot/skeleton"
GT_ROBOT_BASE_POSE_TOPIC = "ground_truth/robot/base_pose"
GT_HUMAN_SKELETONS_TOPIC = "ground_truth/humans/skeletons"
GT_OBJECT_POSES_TOPIC = "ground_truth/objects/poses"
GT_INSTANCES_TOPIC = "ground_truth/segmentation/instances"

HUMAN_MODEL = "coco17"


# -------------------------------------------------------------------- headers

def make_header(stamp_ns: int, frame_id: str) -> Header:
    """Header of one frame: stamp from integer nanoseconds, frame_id the camera optical frame."""
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=str(frame_id))


# ------------------------------------------------------------------ skeletons

def _skeleton(model: str, id_: int, kp: Keypoints, header: Header) -> Skeleton:
    xyz = np.asarray(kp.xyz_cam_m, dtype=np.float64).reshape(-1, 3)
    uv = np.asarray(kp.uv_px, dtype=np.float64).reshape(-1, 2)
    vis = np.asarray(kp.visibility).reshape(-1)
    n = len(kp.names)
    if not (xyz.shape[0] == uv.shape[0] == vis.shape[0] == n):
        raise ValueError(f"skeleton {model!r} id {id_}: {n} joint names but xyz {xyz.shape}, "
                         f"uv {uv.shape}, visibility {vis.shape}")
    if np.any((vis < 0) | (vis > Skeleton.VIS_VISIBLE)):
        raise ValueError(f"skeleton {model!r} id {id_}: visibility must be 0, 1 or 2, got {vis.tolist()}")
    return Skeleton(
        header=copy_header(header), model=str(model), id=int(id_),
        joint_names=[str(s) for s in kp.names],
        positions=[Point(x=x, y=y, z=z) for x, y, z in xyz.tolist()],
        confidence=array.array("f", np.ones(n, np.float32).tobytes()),
        pixel_u=array.array("f", np.ascontiguousarray(uv[:, 0], np.float32).tobytes()),
        pixel_v=array.array("f", np.ascontiguousarray(uv[:, 1], np.float32).tobytes()),
        visibility=array.array("B", vis.astype(np.uint8).tobytes()))


def robot_skeleton_msg(robot: RobotGT | None, header: Header) -> Skeleton:
    """Skeleton of the robot's keypoints.

    model = ``robot.model`` (e.g. 'panda'), id = ``robot.instance_id``; per joint J:
    position = ``keypoints.xyz_cam_m`` (metres, camera optical frame), pixel_u/v =
    ``keypoints.uv_px`` (pixels, float32), visibility (VIS_OUTSIDE / VIS_OCCLUDED /
    VIS_VISIBLE), confidence 1. ``robot=None`` gives a skeleton with the header and
    no joints (model '', id 0).
    """
    if robot is None:
        return Skeleton(header=copy_header(header))
    return _skeleton(robot.model, robot.instance_id, robot.keypoints, header)


def human_skeletons_msg(humans: Sequence[HumanGT], header: Header) -> SkeletonArray:
    """SkeletonArray of every person (model 'coco17', id = identity = instance_id),
    in the given order; joints as in :func:`robot_skeleton_msg`. No humans: an empty
    array with the header."""
    return SkeletonArray(header=copy_header(header),
                         skeletons=[_skeleton(HUMAN_MODEL, h.instance_id, h.keypoints, header)
                                    for h in humans])


# ---------------------------------------------------------------------- parts

def part_poses_msg(parts: Sequence[PartGT], header: Header) -> ObjectPoseArray:
    """ObjectPoseArray of the parts: instance_id, class_name, pose = ``T_cam_obj``
    (model frame in the camera optical frame, metres, quaternion x, y, z, w with
    w >= 0), confidence 1. No parts: an empty array with the header."""
    return ObjectPoseArray(header=copy_header(header), poses=[
        ObjectPose(instance_id=int(p.instance_id), class_name=str(p.class_name),
                   pose=matrix_to_pose(p.T_cam_obj), confidence=1.0) for p in parts])


# ------------------------------------------------------------------ instances

def instances_msg(instance_mask: np.ndarray, instances: Sequence[Instance], header: Header) -> InstanceArray:
    """InstanceArray of the instance mask.

    instance_mask: [H, W] integer (uint16) instance ids, 0 background.
    instances: the frame's instance list; one Instance message per entry that owns
    at least one pixel, in list order: id = instance_id, class_name, class_id,
    score 1, roi = bounding box (pixels), mask = mono8 crop of the roi (255 inside),
    made by :func:`~hrc_perception.ros.convert.mask_to_roi_image`, with the header;
    empty embedding. Pixels of ids not in the list are ignored.

    All bounding boxes come from one pass over the mask
    (``scipy.ndimage.find_objects``); each instance then only touches its own box.
    """
    m = np.asarray(instance_mask)
    if m.ndim != 2 or m.dtype.kind not in "ui":
        raise ValueError(f"instance_mask must be an [H, W] integer array, got {m.dtype} {m.shape}")
    out = InstanceArray(header=copy_header(header))
    ids = [int(i.instance_id) for i in instances if int(i.instance_id) > 0]
    if not ids or m.size == 0:
        return out
    if m.dtype.kind == "i" or m.dtype.itemsize > 4:
        m = m.astype(np.int64)  # find_objects ignores labels <= 0
    boxes = ndimage.find_objects(m, max_label=max(ids))
    for inst in instances:
        iid = int(inst.instance_id)
        if iid <= 0 or boxes[iid - 1] is None:
            continue
        rows, cols = boxes[iid - 1]
        roi, image = mask_to_roi_image(m[rows, cols] == iid, copy_header(header))
        roi.x_offset += cols.start
        roi.y_offset += rows.start
        out.instances.append(InstanceMsg(id=iid, class_name=str(inst.class_name),
                                         class_id=int(inst.class_id), score=1.0, roi=roi, mask=image))
    return out


def instances_to_mask(msg: InstanceArray, height: int, width: int) -> np.ndarray:
    """[height, width] uint16 instance-id mask of an InstanceArray (0 background).

    Each instance's mono8 crop (nonzero = inside) is pasted at its roi with value
    ``id``; where instances overlap the later one wins. Instances without a mask
    (an empty image) are skipped. Raises ImageConversionError for a mask that is not
    mono8, whose size differs from its roi, or whose roi leaves the image.
    """
    out = np.zeros((int(height), int(width)), np.uint16)
    for inst in msg.instances:
        if inst.mask.width == 0 or inst.mask.height == 0:
            continue
        try:
            crop, rows, cols = roi_crop(inst.roi, inst.mask, height, width)
        except ImageConversionError as e:
            raise ImageConversionError(f"instance {inst.id}: {e}") from None
        out[rows, cols][crop] = inst.id
    return out


def skeleton_to_arrays(msg: Skeleton) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(names, xyz [J, 3] float64 metres in header.frame_id, uv [J, 2] float64 pixels
    (u = column, v = row), visibility [J] uint8, confidence [J] float32) of a Skeleton."""
    names = tuple(msg.joint_names)
    xyz = np.array([(p.x, p.y, p.z) for p in msg.positions], np.float64).reshape(-1, 3)
    uv = np.stack([np.asarray(msg.pixel_u, np.float32), np.asarray(msg.pixel_v, np.float32)],
                  axis=1).astype(np.float64).reshape(-1, 2)
    vis = np.asarray(msg.visibility, np.uint8).reshape(-1)
    conf = np.asarray(msg.confidence, np.float32).reshape(-1)
    return names, xyz, uv, vis, conf


# ---------------------------------------------------------------- whole frame

def _all(header: Header, robot: RobotGT | None, humans, parts, mask, instances) -> dict[str, Any]:
    out = {
        GT_ROBOT_SKELETON_TOPIC: robot_skeleton_msg(robot, header),
        GT_HUMAN_SKELETONS_TOPIC: human_skeletons_msg(humans, header),
        GT_OBJECT_POSES_TOPIC: part_poses_msg(parts, header),
    }
    if robot is not None:
        out[GT_ROBOT_BASE_POSE_TOPIC] = PoseStamped(header=copy_header(header), pose=matrix_to_pose(robot.T_cam_base))
    if mask is not None:
        out[GT_INSTANCES_TOPIC] = instances_msg(mask, instances, header)
    return out


def frame_ground_truth_msgs(frame: Frame, frame_id: str) -> dict[str, Any]:
    """Ground-truth messages of a simulator Frame by relative topic name (the
    ``GT_*_TOPIC``s), all with header stamp = ``frame.stamp_ns``, frame_id = frame_id."""
    return _all(make_header(frame.stamp_ns, frame_id), frame.robot, frame.humans, frame.parts,
                frame.instance_mask, frame.instances)


def _keypoints_from_record(kp: dict) -> Keypoints:
    names = tuple(kp["names"])
    n = len(names)
    return Keypoints(names=names,
                     xyz_cam_m=np.asarray(kp["xyz_cam_m"], np.float64).reshape(n, 3),
                     uv_px=np.asarray(kp["uv_px"], np.float64).reshape(n, 2),
                     visibility=np.asarray(kp["visibility"], np.int8).reshape(n))


def record_ground_truth_msgs(record: dict, frame_id: str, instance_mask: np.ndarray | None = None) -> dict[str, Any]:
    """The messages of :func:`frame_ground_truth_msgs` from a ground-truth sidecar
    record (:func:`hrc_perception.io.ground_truth.frame_record`; values rounded to
    1e-6). ``ground_truth/segmentation/instances`` only when instance_mask ([H, W]
    uint16, e.g. the bag's ``ground_truth/instance_mask`` image) is given."""
    r = record.get("robot")
    robot = None if r is None else RobotGT(
        instance_id=int(r["instance_id"]), model=str(r["model"]), joint_names=tuple(r["joint_names"]),
        joint_positions_rad=np.asarray(r["joint_positions_rad"], np.float64),
        T_cam_base=np.asarray(r["T_cam_base"], np.float64), keypoints=_keypoints_from_record(r["keypoints"]))
    humans = [HumanGT(instance_id=int(h["instance_id"]), keypoints=_keypoints_from_record(h["keypoints"]))
              for h in record.get("humans", [])]
    parts = [PartGT(instance_id=int(p["instance_id"]), class_name=str(p["class_name"]),
                    T_cam_obj=np.asarray(p["T_cam_obj"], np.float64)) for p in record.get("parts", [])]
    instances = [Instance(instance_id=int(i["instance_id"]), category=str(i["category"]),
                          class_name=str(i["class_name"]), class_id=int(i["class_id"]))
                 for i in record.get("instances", [])]
    return _all(make_header(int(record["stamp_ns"]), frame_id), robot, humans, parts,
                instance_mask, instances)
