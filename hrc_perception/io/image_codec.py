"""sensor_msgs/Image bytes <-> numpy arrays: the project's one place that knows the
byte layout of each image encoding. Pure functions, no ROS needed.

Readers take any object with the fields of a sensor_msgs/Image -- ``encoding``,
``height``, ``width``, ``step`` (bytes per row, padding included), ``is_bigendian``
and ``data`` (anything with the buffer protocol: bytes, ``array.array('B')`` of an
rclpy message, the uint8 numpy array of a ``rosbags`` message, ...): an rclpy
message, a ``rosbags`` message or an :class:`EncodedImage`. The writer gives an
:class:`EncodedImage`, which the ROS side (``hrc_perception.ros.convert``) and the
bag writer (``hrc_perception.io.bag``) turn into their own message class.

| encoding              | array (:func:`decode`)   | :func:`decode_rgb`   | depth (:func:`decode_depth_m`) |
|-----------------------|--------------------------|----------------------|--------------------------------|
| ``rgb8``, ``bgr8``    | [H, W, 3] uint8          | RGB (bgr8 swapped)   | --                             |
| ``rgba8``, ``bgra8``  | [H, W, 4] uint8          | RGB, alpha dropped   | --                             |
| ``mono8``             | [H, W] uint8             | grey repeated 3 times| --                             |
| ``16UC1``, ``mono16`` | [H, W] uint16            | --                   | millimetres -> metres          |
| ``32FC1``             | [H, W] float32           | --                   | metres                         |

Arrays of :func:`decode` are in the message's own channel order. Reading honours
``step`` (row padding) and ``is_bigendian``; writing gives little-endian, unpadded
data (``step = width * bytes_per_pixel``). Every problem raises
:class:`ImageConversionError` (a ``ValueError``), never a bare numpy error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class ImageConversionError(ValueError):
    """An Image message (or array) that cannot be converted: encoding, sizes, dtype."""


class ImageLike(Protocol):
    """The fields of a sensor_msgs/Image that the readers use."""
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: Any


@dataclass(frozen=True)
class Encoding:
    """Pixel layout of an encoding: element dtype (native byte order) and channels per pixel."""
    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


ENCODINGS: dict[str, Encoding] = {
    "rgb8": Encoding(np.dtype(np.uint8), 3),
    "bgr8": Encoding(np.dtype(np.uint8), 3),
    "rgba8": Encoding(np.dtype(np.uint8), 4),
    "bgra8": Encoding(np.dtype(np.uint8), 4),
    "mono8": Encoding(np.dtype(np.uint8), 1),
    "16UC1": Encoding(np.dtype(np.uint16), 1),
    "mono16": Encoding(np.dtype(np.uint16), 1),
    "32FC1": Encoding(np.dtype(np.float32), 1),
}
# colour encoding -> the channels of its pixel that are R, G, B
RGB_CHANNELS: dict[str, tuple[int, int, int]] = {
    "rgb8": (0, 1, 2), "bgr8": (2, 1, 0), "rgba8": (0, 1, 2), "bgra8": (2, 1, 0), "mono8": (0, 0, 0)}
COLOR_ENCODINGS = tuple(RGB_CHANNELS)
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")   # 16-bit ones in millimetres, 32FC1 in metres
MM_PER_M = 1000.0


@dataclass(frozen=True)
class EncodedImage:
    """The wire form of an image (the fields of a sensor_msgs/Image but its header):
    little endian, ``step = width * bytes_per_pixel``, ``data`` of ``step * height`` bytes."""
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: bytes


def encoding_of(name: str) -> Encoding:
    """The layout of encoding ``name``; ImageConversionError naming the supported ones."""
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ImageConversionError(
            f"unsupported image encoding {name!r} (supported: {', '.join(ENCODINGS)})") from None


def _shape(enc: Encoding, h: int, w: int) -> tuple[int, ...]:
    return (h, w, enc.channels) if enc.channels > 1 else (h, w)


# --------------------------------------------------------------------- reading

def decode(image: ImageLike) -> np.ndarray:
    """Array of an image in its own channel order (see the module table).

    Returns a new, C-contiguous, native-byte-order array of the encoding's dtype:
    [H, W, C] for multi-channel encodings, [H, W] otherwise. Row padding
    (``step > width * bpp``) is skipped, big-endian data (``is_bigendian``) is
    swapped. Raises ImageConversionError for an unknown encoding,
    ``step < width * bpp`` or fewer than ``step * height`` data bytes.
    """
    enc = encoding_of(image.encoding)
    h, w, step = int(image.height), int(image.width), int(image.step)
    row_bytes = w * enc.bytes_per_pixel
    if h == 0 or w == 0:
        return np.zeros(_shape(enc, h, w), enc.dtype)
    if step < row_bytes:
        raise ImageConversionError(
            f"{image.encoding} image {w}x{h}: step {step} < width * bytes_per_pixel = "
            f"{w} * {enc.bytes_per_pixel} = {row_bytes}")
    data = np.frombuffer(image.data, np.uint8)
    if data.size < step * h:
        raise ImageConversionError(
            f"{image.encoding} image {w}x{h}: {data.size} data bytes < step * height = "
            f"{step} * {h} = {step * h}")
    raw = data[: step * h].reshape(h, step)[:, :row_bytes].copy()  # owned, unpadded rows
    pixels = raw.view(enc.dtype.newbyteorder(">" if image.is_bigendian else "<"))
    if pixels.dtype != enc.dtype:
        pixels = pixels.astype(enc.dtype)  # to native byte order
    return pixels.reshape(_shape(enc, h, w))


def decode_rgb(image: ImageLike) -> np.ndarray:
    """[H, W, 3] uint8 RGB of a colour image (rgb8, bgr8, rgba8, bgra8, mono8):
    blue-first encodings swapped, alpha dropped, mono repeated 3 times. A new array.
    ImageConversionError for any other encoding."""
    if image.encoding not in RGB_CHANNELS:
        raise ImageConversionError(
            f"{image.encoding!r} is not a colour encoding ({', '.join(COLOR_ENCODINGS)})")
    a = decode(image)
    pixels = a.reshape(a.shape[0], a.shape[1], encoding_of(image.encoding).channels)
    return np.ascontiguousarray(pixels[..., list(RGB_CHANNELS[image.encoding])])


def _depth(image: ImageLike) -> np.ndarray:
    """decode() of a depth image; ImageConversionError for any other encoding."""
    if image.encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError(
            f"{image.encoding!r} is not a depth encoding ({', '.join(DEPTH_ENCODINGS)})")
    return decode(image)


def decode_depth_m(image: ImageLike) -> np.ndarray:
    """[H, W] float32 z-depth in metres of a depth image; 0 marks invalid pixels.

    16UC1 / mono16 are millimetres (0 stays 0); 32FC1 is metres, with NaN, inf and
    negative values set to 0. Always a new array.
    """
    a = _depth(image)
    if a.dtype == np.uint16:
        return a.astype(np.float32) * np.float32(1.0 / MM_PER_M)
    return np.where(np.isfinite(a) & (a > 0), a, np.float32(0.0)).astype(np.float32)


def metres_to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """[H, W] uint16 millimetres (rounded to the nearest) of depth in metres [H, W]
    (any float dtype); 0 where the depth is NaN, inf, <= 0 or beyond 65.535 m
    (not representable), as a 16-bit depth image marks "no measurement"."""
    mm = np.rint(np.asarray(depth_m, dtype=np.float64) * MM_PER_M)
    valid = np.isfinite(mm) & (mm > 0) & (mm <= np.iinfo(np.uint16).max)
    return np.where(valid, mm, 0.0).astype(np.uint16)


def decode_depth_mm(image: ImageLike) -> np.ndarray:
    """[H, W] uint16 z-depth in millimetres of a depth image; 0 marks invalid pixels.

    16UC1 / mono16 come back exactly; 32FC1 metres are rounded to millimetres (see
    :func:`metres_to_millimetres`). Always a new array.
    """
    a = _depth(image)
    return a if a.dtype == np.uint16 else metres_to_millimetres(a)


# --------------------------------------------------------------------- writing

def encode(array: np.ndarray, encoding: str) -> EncodedImage:
    """The wire form of an array: [H, W, C] for multi-channel encodings (C = 3 for
    rgb8/bgr8, 4 for rgba8/bgra8), [H, W] (or [H, W, 1]) otherwise.

    The array's dtype must match the encoding (uint8, uint16, float32; any byte
    order); nothing is cast, channels are not reordered. The data is little endian
    and unpadded. ImageConversionError for an unknown encoding, shape or dtype.
    """
    enc = encoding_of(encoding)
    a = np.asarray(array)
    if enc.channels == 1 and a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    want_ndim = 3 if enc.channels > 1 else 2
    if a.ndim != want_ndim or (enc.channels > 1 and a.shape[2] != enc.channels):
        want = f"[H, W, {enc.channels}]" if enc.channels > 1 else "[H, W]"
        raise ImageConversionError(f"{encoding} needs an array of shape {want}, got {a.shape}")
    if a.dtype.newbyteorder("=") != enc.dtype.newbyteorder("="):
        raise ImageConversionError(f"{encoding} needs dtype {enc.dtype}, got {a.dtype}")
    h, w = a.shape[:2]
    data = np.ascontiguousarray(a, dtype=enc.dtype.newbyteorder("<")).tobytes()
    return EncodedImage(encoding=encoding, height=h, width=w, step=w * enc.bytes_per_pixel, is_bigendian=0,
                        data=data)
