"""rosbag2 (MCAP) export and read-back of synthetic frames, with `rosbags` (no ROS needed).

Topics (under a namespace, default ``/cell``), every header stamped with the
frame's stamp and the colour camera's optical frame unless noted:
- ``camera/color/image_raw`` sensor_msgs/Image rgb8
- ``camera/depth/image_raw`` sensor_msgs/Image 16UC1, millimetres, aligned to colour
- ``camera/color/camera_info`` sensor_msgs/CameraInfo (plumb_bob, zero distortion)
- ``joint_states`` sensor_msgs/JointState (frame_id empty)
- ``ground_truth/instance_mask`` sensor_msgs/Image 16UC1 instance ids (0 background)
- ``ground_truth/robot/base_pose`` geometry_msgs/PoseStamped: robot base in the camera frame
- ``ground_truth/robot/keypoints`` geometry_msgs/PoseArray: robot keypoint positions (identity orientation)
- ``ground_truth/parts/poses`` geometry_msgs/PoseArray: part poses (model to camera)
- ``ground_truth/humans/keypoints`` geometry_msgs/PoseArray: COCO-17 joints of every person, person after person
Reading (:func:`read_bag_frames`) accepts every colour and depth encoding of
``hrc_perception.io.image_codec`` (a camera driver's bgr8 colour, 32FC1 depth ...).
The order of entries in the PoseArrays, classes, identities and visibility are in
the ground-truth sidecar (``hrc_perception.io.ground_truth``), keyed by stamp.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from hrc_perception.geometry import quaternion_from_matrix
from hrc_perception.io.atomic import PartialDir
from hrc_perception.io.image_codec import decode, decode_depth_mm, decode_rgb, encode
from hrc_perception.sim.frame import Frame

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
CAMERA_FRAME_ID = "camera_color_optical_frame"


def deserialize(raw: bytes | memoryview, msgtype: str) -> object:
    """A CDR record as a rosbags message. Fast CDR (rclpy, rclcpp: what ``ros2 bag
    record`` and our recorder store) may end a message with alignment bytes past its last
    field (a JointState with empty velocity and effort: 8), which rosbags' size check
    refuses although every field reads the same: those are read without the check. Raises
    rosbags' SerdeError for a record that does not parse."""
    from rosbags.serde import SerdeError
    try:
        return TYPESTORE.deserialize_cdr(raw, msgtype)
    except SerdeError as e:
        if "size mismatch" not in str(e):
            raise
    msgdef = TYPESTORE.get_msgdef(msgtype)
    read = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    return read(raw[4:], 0, msgdef.cls, TYPESTORE)[0]

COLOR_TOPIC = "camera/color/image_raw"
DEPTH_TOPIC = "camera/depth/image_raw"
INFO_TOPIC = "camera/color/camera_info"
JOINT_STATES_TOPIC = "joint_states"
GT_MASK_TOPIC = "ground_truth/instance_mask"
GT_BASE_TOPIC = "ground_truth/robot/base_pose"
GT_ROBOT_KP_TOPIC = "ground_truth/robot/keypoints"
GT_PARTS_TOPIC = "ground_truth/parts/poses"
GT_HUMANS_TOPIC = "ground_truth/humans/keypoints"

MAX_PENDING_STAMPS = 64        # incomplete frames kept while reading a bag
MAX_KEPT_JOINT_STATES = 64     # recent joint states kept for pairing with frames

_T = TYPESTORE.types
Header, Time = _T["std_msgs/msg/Header"], _T["builtin_interfaces/msg/Time"]
Image, CameraInfo = _T["sensor_msgs/msg/Image"], _T["sensor_msgs/msg/CameraInfo"]
RegionOfInterest, JointState = _T["sensor_msgs/msg/RegionOfInterest"], _T["sensor_msgs/msg/JointState"]
Pose, PoseArray, PoseStamped = _T["geometry_msgs/msg/Pose"], _T["geometry_msgs/msg/PoseArray"], \
    _T["geometry_msgs/msg/PoseStamped"]
Point, Quaternion = _T["geometry_msgs/msg/Point"], _T["geometry_msgs/msg/Quaternion"]

_TOPIC_TYPES = {
    COLOR_TOPIC: "sensor_msgs/msg/Image", DEPTH_TOPIC: "sensor_msgs/msg/Image",
    INFO_TOPIC: "sensor_msgs/msg/CameraInfo", JOINT_STATES_TOPIC: "sensor_msgs/msg/JointState",
    GT_MASK_TOPIC: "sensor_msgs/msg/Image", GT_BASE_TOPIC: "geometry_msgs/msg/PoseStamped",
    GT_ROBOT_KP_TOPIC: "geometry_msgs/msg/PoseArray", GT_PARTS_TOPIC: "geometry_msgs/msg/PoseArray",
    GT_HUMANS_TOPIC: "geometry_msgs/msg/PoseArray",
}


def full_topic(namespace: str, topic: str) -> str:
    """'/cell' + 'camera/color/image_raw' -> '/cell/camera/color/image_raw'."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{topic}"


def _header(stamp_ns: int, frame_id: str):
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def image_msg(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """sensor_msgs/Image (rosbags) of an array (shapes and dtypes: ``image_codec.encode``),
    little endian, unpadded."""
    enc = encode(array, encoding)
    return Image(header=_header(stamp_ns, frame_id), height=enc.height, width=enc.width, encoding=enc.encoding,
                 is_bigendian=enc.is_bigendian, step=enc.step, data=np.frombuffer(enc.data, np.uint8))


def camera_info_msg(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str):
    P = np.zeros((3, 4))
    P[:, :3] = K
    return CameraInfo(header=_header(stamp_ns, frame_id), height=height, width=width, distortion_model="plumb_bob",
                      d=np.zeros(5), k=K.reshape(-1).astype(np.float64), r=np.eye(3).reshape(-1),
                      p=P.reshape(-1), binning_x=0, binning_y=0,
                      roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def _pose(T: np.ndarray):
    q = quaternion_from_matrix(T[:3, :3])
    return Pose(position=Point(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
                orientation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))


def _points_pose_array(points: np.ndarray, stamp_ns: int, frame_id: str):
    """PoseArray of positions [N, 3] (identity orientations)."""
    poses = [Pose(position=Point(x=float(x), y=float(y), z=float(z)), orientation=Quaternion(x=0.0, y=0.0, z=0.0,
                                                                                             w=1.0))
             for x, y, z in points]
    return PoseArray(header=_header(stamp_ns, frame_id), poses=poses)


def frame_messages(frame: Frame) -> dict[str, object]:
    """The bag messages (topic without namespace -> message) of one frame."""
    s, f = frame.stamp_ns, CAMERA_FRAME_ID
    h, w = frame.depth_mm.shape
    humans = np.concatenate([hg.keypoints.xyz_cam_m for hg in frame.humans]) if frame.humans else np.zeros((0, 3))
    return {
        COLOR_TOPIC: image_msg(frame.rgb, "rgb8", s, f),
        DEPTH_TOPIC: image_msg(frame.depth_mm, "16UC1", s, f),
        INFO_TOPIC: camera_info_msg(frame.K, w, h, s, f),
        JOINT_STATES_TOPIC: JointState(header=_header(s, ""), name=list(frame.robot.joint_names),
                                       position=frame.robot.joint_positions_rad.astype(np.float64),
                                       velocity=np.zeros(0), effort=np.zeros(0)),
        GT_MASK_TOPIC: image_msg(frame.instance_mask, "16UC1", s, f),
        GT_BASE_TOPIC: PoseStamped(header=_header(s, f), pose=_pose(frame.robot.T_cam_base)),
        GT_ROBOT_KP_TOPIC: _points_pose_array(frame.robot.keypoints.xyz_cam_m, s, f),
        GT_PARTS_TOPIC: PoseArray(header=_header(s, f), poses=[_pose(p.T_cam_obj) for p in frame.parts]),
        GT_HUMANS_TOPIC: _points_pose_array(humans, s, f),
    }


class BagWriter:
    """Writes frames to a rosbag2 MCAP directory ``path`` (created; must not exist).

    Frames go to ``<path>.partial/<name>/`` first; ``close()`` moves the bag to
    ``path``, so an interrupted export never looks like a complete bag.
    """

    def __init__(self, path: Path, namespace: str = "/cell"):
        self.path = Path(path)
        # rosbags names the .mcap file after its directory: build <path>.partial/<name>/
        self._work = PartialDir(self.path)
        self._writer = Writer(self._work.path / self.path.name, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {t: self._writer.add_connection(full_topic(namespace, t), ty, typestore=TYPESTORE)
                             for t, ty in _TOPIC_TYPES.items()}

    def add(self, frame: Frame) -> None:
        for topic, msg in frame_messages(frame).items():
            data = TYPESTORE.serialize_cdr(msg, _TOPIC_TYPES[topic])
            self._writer.write(self._connections[topic], frame.stamp_ns, data)

    def close(self) -> None:
        self._writer.close()
        bag = self._work.path / self.path.name
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(bag, self.path)
        self._work.abort()


@dataclass(frozen=True)
class JointStateSample:
    """The robot's joint positions as its driver published them: stamp_ns (integer
    ns, that message's own stamp), names [D], positions_rad [D] float64 (radians, or
    metres for prismatic joints)."""
    stamp_ns: int
    names: tuple[str, ...]
    positions_rad: np.ndarray


@dataclass
class BagFrame:
    """Images of one stamp read back from a bag: rgb [H, W, 3] uint8 RGB (of any colour
    encoding: rgb8, bgr8, rgba8, bgra8, mono8), depth_mm [H, W] uint16 millimetres, 0 =
    invalid (16UC1 / mono16 as recorded, 32FC1 metres rounded to mm), instance_mask
    [H, W] uint16 (None if absent), K [3, 3]; joint_state: the newest joint_states
    stamped at or before stamp_ns (None if none yet); has_joint_states: the bag has a
    joint_states topic."""
    stamp_ns: int
    rgb: np.ndarray
    depth_mm: np.ndarray
    instance_mask: np.ndarray | None
    K: np.ndarray
    joint_state: JointStateSample | None = None
    has_joint_states: bool = False


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def read_bag_frames(path: Path, namespace: str = "/cell") -> Iterator[BagFrame]:
    """Yield the frames of a bag written by BagWriter (or recorded with the same
    topics), in stamp order.

    A frame is colour + depth + camera_info (+ the instance mask where the bag has
    one) with one header stamp; it is given out once a message with a later stamp
    (or the end of the bag) shows that nothing more of its stamp can come, so the
    order of same-stamp records does not matter. joint_states are a stream of their
    own (a driver publishes them at its own rate): each frame gets the newest one
    stamped at or before the frame's stamp. A stamp still incomplete when
    MAX_PENDING_STAMPS newer ones are waiting is dropped.
    """
    want = {full_topic(namespace, t): t for t in (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, GT_MASK_TOPIC)}
    joints_topic = full_topic(namespace, JOINT_STATES_TOPIC)
    pending: dict[int, dict] = {}
    joint_states: list[JointStateSample] = []   # the recent ones, oldest first

    with Reader(Path(path)) as reader:
        conns = [c for c in reader.connections if c.topic in want or c.topic == joints_topic]
        if not any(want.get(c.topic) == COLOR_TOPIC for c in conns):
            raise ValueError(f"{path}: no {full_topic(namespace, COLOR_TOPIC)} topic "
                             f"(topics: {sorted(c.topic for c in reader.connections)})")
        required = {COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC} | (
            {GT_MASK_TOPIC} if any(want.get(c.topic) == GT_MASK_TOPIC for c in conns) else set())
        has_joints = any(c.topic == joints_topic for c in conns)

        def frame(st: int, entry: dict) -> BagFrame:
            before = [j for j in joint_states if j.stamp_ns <= st]
            mask = decode(entry[GT_MASK_TOPIC]) if GT_MASK_TOPIC in entry else None
            return BagFrame(st, decode_rgb(entry[COLOR_TOPIC]), decode_depth_mm(entry[DEPTH_TOPIC]), mask,
                            np.asarray(entry[INFO_TOPIC].k, dtype=np.float64).reshape(3, 3),
                            before[-1] if before else None, has_joints)

        def complete_before(stamp: int | None) -> Iterator[BagFrame]:
            for st in sorted(pending):
                if (stamp is None or st < stamp) and required <= pending[st].keys():
                    yield frame(st, pending.pop(st))

        for conn, _, raw in reader.messages(connections=conns):
            msg = deserialize(raw, conn.msgtype)
            st = _stamp_ns(msg)
            yield from complete_before(st)
            if conn.topic == joints_topic:
                joint_states.append(JointStateSample(st, tuple(msg.name), np.asarray(msg.position, np.float64)))
                del joint_states[:-MAX_KEPT_JOINT_STATES]
            else:
                pending.setdefault(st, {})[want[conn.topic]] = msg
                while len(pending) > MAX_PENDING_STAMPS:   # a frame that never completes (a lost record)
                    del pending[min(pending)]
        yield from complete_before(None)
