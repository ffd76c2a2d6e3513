"""Conversions between rclpy messages and numpy arrays (pure functions, no node needed).

Images: a thin rclpy layer over :mod:`hrc_perception.io.image_codec`, the project's
only image <-> numpy path (the bag reader uses it too); its table gives the
encodings (rgb8, bgr8, rgba8, bgra8, mono8, 16UC1, mono16, 32FC1) and arrays. Where
``cv_bridge`` exists its results for those encodings are tested to be identical
(``test/test_ros_convert.py``), but it is never used at run time.

Reading honours ``step`` (row padding) and ``is_bigendian``; writing gives a
little-endian, unpadded message (``step = width * bytes_per_pixel``). Bad images
raise :class:`ImageConversionError`, bad camera models :class:`CameraInfoError`
(both ``ValueError``), never a bare numpy error.

Poses follow ``hrc_perception.geometry``: 4x4 float64 ``T_parent_child`` (maps
points of the child frame into the parent / header frame), quaternions (x, y, z, w),
metres. Stamps are integer nanoseconds.
"""
from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from hrc_perception.geometry import make_T, matrix_from_quaternion, quaternion_from_matrix
from hrc_perception.io import image_codec
from hrc_perception.io.image_codec import DEPTH_ENCODINGS, ENCODINGS, ImageConversionError  # noqa: F401 (re-exported)


class CameraInfoError(ValueError):
    """A CameraInfo message (or K) that does not describe a usable pinhole camera."""


_NS_PER_S = 1_000_000_000


# --------------------------------------------------------------------- images
# The readers take an rclpy Image (any object with its fields); see image_codec.

image_to_numpy = image_codec.decode      # array in the message's own channel order
image_to_rgb = image_codec.decode_rgb    # [H, W, 3] uint8 RGB of a colour image
depth_to_meters = image_codec.decode_depth_m   # [H, W] float32 metres, 0 = invalid


def _as_header(header: Header | None) -> Header:
    return Header() if header is None else header


def numpy_to_image(array_: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """rclpy Image of an array (shapes and dtypes: :func:`image_codec.encode`; nothing
    is cast). Little endian, ``step = width * bytes_per_pixel``; ``header`` is used as
    given. ImageConversionError for an unknown encoding, shape or dtype."""
    enc = image_codec.encode(array_, encoding)
    data = array.array("B")
    data.frombytes(enc.data)
    return Image(header=_as_header(header), height=enc.height, width=enc.width, encoding=enc.encoding,
                 is_bigendian=enc.is_bigendian, step=enc.step, data=data)


# ---------------------------------------------------------------- camera info

def _check_K(K: np.ndarray, width: int, height: int) -> None:
    if K.shape != (3, 3):
        raise CameraInfoError(f"K must be 3x3, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise CameraInfoError(f"K has non-finite entries: {K.tolist()}")
    if not np.any(K):
        raise CameraInfoError("K is all zero (camera not calibrated)")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoError(f"focal lengths must be > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise CameraInfoError(f"K's last row must be [0, 0, 1], got {K[2].tolist()}")
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"image size must be > 0, got width={width}, height={height}")


def camera_info_to_K(msg: CameraInfo) -> tuple[np.ndarray, int, int]:
    """(K [3, 3] float64 pixels, width, height) of a CameraInfo.

    Raises CameraInfoError for an all-zero or non-finite K, fx or fy <= 0, a last
    row other than [0, 0, 1], or a zero width or height.
    """
    K = np.array(msg.k, dtype=np.float64).reshape(3, 3)
    w, h = int(msg.width), int(msg.height)
    _check_K(K, w, h)
    return K, w, h


def K_to_camera_info(K: np.ndarray, width: int, height: int, header: Header | None = None) -> CameraInfo:
    """CameraInfo of an ideal pinhole camera: plumb_bob, zero D, R = I, P = [K | 0]."""
    K = np.asarray(K, dtype=np.float64)
    _check_K(K, int(width), int(height))
    P = np.zeros((3, 4))
    P[:, :3] = K
    return CameraInfo(header=_as_header(header), width=int(width), height=int(height),
                      distortion_model="plumb_bob", d=[0.0] * 5, k=K.reshape(-1),
                      r=np.eye(3).reshape(-1), p=P.reshape(-1))


# ---------------------------------------------------------------------- poses

def _rotation(q: Quaternion) -> np.ndarray:
    q_xyzw = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    n = np.linalg.norm(q_xyzw)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion (x, y, z, w) = {q_xyzw.tolist()} is not a rotation")
    return matrix_from_quaternion(q_xyzw)


def _check_T(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"expected a finite 4x4 transform, got shape {T.shape}")
    return T


def _quaternion(R: np.ndarray) -> Quaternion:
    x, y, z, w = quaternion_from_matrix(R)
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """T_parent_child [4, 4] float64 of a Pose (metres); the quaternion is normalised."""
    p = pose.position
    return make_T(_rotation(pose.orientation), [p.x, p.y, p.z])


def matrix_to_pose(T: np.ndarray) -> Pose:
    """Pose of a rigid T_parent_child [4, 4] (quaternion x, y, z, w with w >= 0)."""
    T = _check_T(T)
    return Pose(position=Point(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
                orientation=_quaternion(T[:3, :3]))


def transform_to_matrix(transform: Transform) -> np.ndarray:
    """T_parent_child [4, 4] float64 of a Transform (as in a TransformStamped)."""
    t = transform.translation
    return make_T(_rotation(transform.rotation), [t.x, t.y, t.z])


def matrix_to_transform(T: np.ndarray) -> Transform:
    """Transform of a rigid T_parent_child [4, 4]."""
    T = _check_T(T)
    return Transform(translation=Vector3(x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])),
                     rotation=_quaternion(T[:3, :3]))


# ---------------------------------------------------------------------- masks

def mask_to_roi_image(mask: np.ndarray, header: Header | None = None) -> tuple[RegionOfInterest, Image]:
    """(RegionOfInterest, mono8 Image) of a boolean mask [H, W] (pixels).

    The ROI is the mask's bounding box; the image is the mask cropped to it, 255
    inside and 0 outside. An empty mask gives an all-zero ROI and a 0x0 image.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ImageConversionError(f"a mask must be [H, W], got shape {m.shape}")
    m = m.astype(bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return RegionOfInterest(), numpy_to_image(np.zeros((0, 0), np.uint8), "mono8", header)
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = np.where(m[y0:y1, x0:x1], np.uint8(255), np.uint8(0))
    roi = RegionOfInterest(x_offset=x0, y_offset=y0, height=y1 - y0, width=x1 - x0, do_rectify=False)
    return roi, numpy_to_image(crop, "mono8", header)


def roi_image_to_mask(roi: RegionOfInterest, image: Image, height: int, width: int) -> np.ndarray:
    """Boolean mask [height, width] of a mono8 Image cropped to ``roi`` (nonzero = inside).

    Raises ImageConversionError when the image is not mono8, its size differs from
    the ROI's, or the ROI does not fit in height x width.
    """
    crop, rows, cols = roi_crop(roi, image, height, width)
    mask = np.zeros((height, width), dtype=bool)
    mask[rows, cols] = crop
    return mask


def roi_crop(roi: RegionOfInterest, image: Image, height: int, width: int) -> tuple[np.ndarray, slice, slice]:
    """The checked crop of a mask: bool [roi.height, roi.width] (True inside) and the
    (rows, cols) slices of the height x width image it covers. Raises
    ImageConversionError as roi_image_to_mask does."""
    if image.encoding != "mono8":
        raise ImageConversionError(f"a mask image must be mono8, got {image.encoding!r}")
    crop = image_to_numpy(image)
    x0, y0, rw, rh = int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)
    if crop.shape != (rh, rw):
        raise ImageConversionError(
            f"mask image is {crop.shape[1]}x{crop.shape[0]} but its ROI is {rw}x{rh}")
    if x0 + rw > width or y0 + rh > height:
        raise ImageConversionError(
            f"ROI x={x0} y={y0} {rw}x{rh} does not fit in a {width}x{height} image")
    return crop > 0, slice(y0, y0 + rh), slice(x0, x0 + rw)


# --------------------------------------------------------------------- stamps

def copy_header(header: Header) -> Header:
    """An independent copy (messages keep references: one shared object could be mutated)."""
    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec), frame_id=header.frame_id)


def duration_msg(seconds: float) -> Duration:
    """builtin_interfaces/Duration of non-negative seconds (e.g. a marker lifetime)."""
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


def stamp_to_ns(stamp: Time) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """builtin_interfaces/Time of integer nanoseconds (sec is int32)."""
    sec, nanosec = divmod(int(ns), _NS_PER_S)
    if not -2**31 <= sec < 2**31:
        raise ValueError(f"{ns} ns is outside the range of builtin_interfaces/Time")
    return Time(sec=sec, nanosec=nanosec)


def pose_parameter_to_matrix(values: list[str], name: str) -> np.ndarray | None:
    """T [4, 4] of a pose parameter [x, y, z, qx, qy, qz, qw] given as strings (metres,
    quaternion x, y, z, w, normalised here), or None when it is empty ([""]).
    ValueError naming the parameter for anything else."""
    from hrc_perception.geometry import make_T, matrix_from_quaternion
    if not [v for v in values if v]:
        return None
    try:
        x = np.array([float(v) for v in values])
    except ValueError:
        raise ValueError(f"{name}: not numbers: {values}") from None
    if x.shape != (7,) or not np.isfinite(x).all() or np.linalg.norm(x[3:]) < 1e-6:
        raise ValueError(f"{name}: need [x, y, z, qx, qy, qz, qw] with a non-zero quaternion, got {values}")
    return make_T(matrix_from_quaternion(x[3:] / np.linalg.norm(x[3:])), x[:3])


def skeleton_to_msg(header, model: str, id_: int, names, xyz_m: np.ndarray, known: np.ndarray,
                    confidence: np.ndarray, uv_px: np.ndarray, image_hw: tuple[int, int]):
    """hrc_perception/Skeleton of a skeleton: xyz_m [J, 3] camera frame (positions of joints
    not ``known`` [J] go out as NaN), confidence [J], uv_px [J, 2] pixels (NaN = none) in an
    image of image_hw (h, w). Visibility: VISIBLE where known, OCCLUDED where the pixel is
    inside the image, else OUTSIDE."""
    from hrc_perception.msg import Skeleton
    h, w = image_hw
    u, v = uv_px[:, 0], uv_px[:, 1]
    inside = np.isfinite(uv_px).all(1) & (u >= -0.5) & (u < w - 0.5) & (v >= -0.5) & (v < h - 0.5)
    vis = np.where(known, Skeleton.VIS_VISIBLE, np.where(inside, Skeleton.VIS_OCCLUDED, Skeleton.VIS_OUTSIDE))
    xyz = np.where(np.asarray(known, bool)[:, None], xyz_m, np.nan)
    return Skeleton(header=copy_header(header), model=model, id=int(id_), joint_names=list(names),
                    positions=[Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in xyz],
                    confidence=[float(c) for c in confidence], pixel_u=[float(x) for x in u],
                    pixel_v=[float(x) for x in v], visibility=[int(x) for x in vis])
