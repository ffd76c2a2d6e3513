"""hrc_perception.io.image_codec without ROS: on its own EncodedImage and on real
``rosbags`` sensor_msgs/Image messages (as the bag reader gets them)."""
import array

import numpy as np
import pytest
from conftest import image_sample, image_wire

from hrc_perception.io.bag import TYPESTORE, Header, Image, Time
from hrc_perception.io.image_codec import (COLOR_ENCODINGS, DEPTH_ENCODINGS, ENCODINGS, EncodedImage,
                                           ImageConversionError, decode, decode_depth_m, decode_depth_mm,
                                           decode_rgb, encode, metres_to_millimetres)

H, W = 4, 6
HEADER = Header(stamp=Time(sec=3, nanosec=7), frame_id="camera_color_optical_frame")


def sample(encoding: str, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """conftest.image_sample of H x W by default."""
    return image_sample(encoding, h, w, seed)


def bag_image(a: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False, extra: int = 0):
    """A rosbags sensor_msgs/Image laid out by hand (conftest.image_wire), serialized to
    CDR and read back, as read_bag_frames gets it."""
    step, raw = image_wire(a, pad, big_endian, extra)
    msg = Image(header=HEADER, height=a.shape[0], width=a.shape[1], encoding=encoding,
                is_bigendian=int(big_endian), step=step, data=np.frombuffer(raw, np.uint8))
    return TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image"), "sensor_msgs/msg/Image")


def rclpy_image(a: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False, extra: int = 0):
    """The same as an rclpy sensor_msgs/Image (data: array.array('B')), as a node gets it."""
    msg_module = pytest.importorskip("sensor_msgs.msg")
    step, raw = image_wire(a, pad, big_endian, extra)
    return msg_module.Image(height=a.shape[0], width=a.shape[1], encoding=encoding, is_bigendian=int(big_endian),
                            step=step, data=array.array("B", raw))


@pytest.fixture(params=[bag_image, rclpy_image], ids=["rosbags", "rclpy"])
def message(request):
    """A maker (array, encoding, pad=0, big_endian=False, extra=0) -> a real Image message laid out by hand."""
    return request.param


def test_the_encodings_the_nodes_accept():
    assert set(ENCODINGS) == {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "16UC1", "mono16", "32FC1"}
    assert set(COLOR_ENCODINGS) | set(DEPTH_ENCODINGS) == set(ENCODINGS)


# ------------------------------------------------------------------ round trips

@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_numpy_to_wire_to_numpy_is_exact(encoding):
    a = sample(encoding)
    enc = encode(a, encoding)
    assert (enc.encoding, enc.height, enc.width, enc.is_bigendian) == (encoding, H, W, 0)
    assert enc.step == W * ENCODINGS[encoding].bytes_per_pixel and len(enc.data) == enc.step * H
    assert enc.data == a.astype(a.dtype.newbyteorder("<")).tobytes()      # little endian, unpadded
    b = decode(enc)
    assert b.dtype == a.dtype and b.shape == a.shape and b.flags.c_contiguous
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_message_to_numpy_to_message_is_exact(encoding, message):
    msg = message(sample(encoding, seed=1), encoding)
    enc = encode(decode(msg), encoding)
    assert (enc.height, enc.width, enc.step, enc.is_bigendian) == (msg.height, msg.width, msg.step, msg.is_bigendian)
    assert enc.data == bytes(msg.data)


@pytest.mark.parametrize("data", [bytes, bytearray, lambda b: array.array("B", b),
                                  lambda b: np.frombuffer(b, np.uint8)])
def test_any_byte_container(data):
    a = sample("16UC1", seed=2)
    enc = encode(a, "16UC1")
    wire = EncodedImage(enc.encoding, enc.height, enc.width, enc.step, enc.is_bigendian, data(enc.data))
    np.testing.assert_array_equal(decode(wire), a)


def test_decode_gives_an_owned_copy(message):
    a = sample("32FC1", seed=3)
    msg = message(a, "32FC1")
    b = decode(msg)
    b[:] = 0
    np.testing.assert_array_equal(decode(msg), a)


# ---------------------------------------------------------------- wire layouts

@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("pad", [1, 3, 8])
def test_row_padding_is_skipped(encoding, pad, message):
    a = sample(encoding, seed=pad)
    msg = message(a, encoding, pad=pad, extra=5)
    assert msg.step == W * ENCODINGS[encoding].bytes_per_pixel + pad
    np.testing.assert_array_equal(decode(msg), a)


@pytest.mark.parametrize("encoding", ["16UC1", "mono16", "32FC1"])
@pytest.mark.parametrize("pad", [0, 2])
def test_big_endian_is_swapped(encoding, pad, message):
    a = sample(encoding, seed=7)
    msg = message(a, encoding, pad=pad, big_endian=True)
    assert bytes(msg.data[:2]) == a.astype(a.dtype.newbyteorder(">")).tobytes()[:2]
    b = decode(msg)
    assert b.dtype == a.dtype and b.dtype.isnative
    np.testing.assert_array_equal(b, a)


def test_big_endian_flag_does_not_matter_for_bytes(message):
    a = sample("bgra8")
    np.testing.assert_array_equal(decode(message(a, "bgra8", big_endian=True)), a)


# ---------------------------------------------------------------------- colour

def test_rgb_of_every_colour_encoding(message):
    rgb = sample("rgb8", seed=4)
    alpha = sample("mono8", seed=5)[..., None]
    wire = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.concatenate([rgb, alpha], 2),
            "bgra8": np.concatenate([rgb[..., ::-1], alpha], 2)}
    assert set(wire) | {"mono8"} == set(COLOR_ENCODINGS)
    for encoding, a in wire.items():
        out = decode_rgb(message(a, encoding, pad=2))
        assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous, encoding
        np.testing.assert_array_equal(out, rgb, err_msg=encoding)
    mono = rgb[..., 1]
    np.testing.assert_array_equal(decode_rgb(message(mono, "mono8")), np.stack([mono] * 3, axis=2))


def test_rgb_of_an_empty_image():
    assert decode_rgb(EncodedImage("bgra8", 0, 0, 0, 0, b"")).shape == (0, 0, 3)
    assert decode_rgb(EncodedImage("mono8", 0, 5, 5, 0, b"")).shape == (0, 5, 3)


@pytest.mark.parametrize("encoding", DEPTH_ENCODINGS)
def test_rgb_rejects_depth(encoding, message):
    with pytest.raises(ImageConversionError, match=f"'{encoding}' is not a colour encoding"):
        decode_rgb(message(sample(encoding), encoding))


# ----------------------------------------------------------------------- depth

def test_16bit_depth_is_millimetres(message):
    mm = np.array([[0, 1, 1000], [1234, 65535, 0]], np.uint16)
    for encoding in ("16UC1", "mono16"):
        msg = message(mm, encoding, pad=2, big_endian=True)
        m = decode_depth_m(msg)
        assert m.dtype == np.float32 and m.shape == (2, 3)
        np.testing.assert_array_equal(m, mm.astype(np.float32) * np.float32(0.001))
        assert m[0, 0] == 0 and m[1, 2] == 0                          # 0 = invalid stays 0
        got = decode_depth_mm(msg)
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, mm)                        # exactly as recorded


def test_32fc1_depth_is_metres_invalid_values_become_zero(message):
    z = np.array([[1.5, np.nan, np.inf], [-np.inf, -0.2, 0.0], [0.25, 65.535, 65.6]], np.float32)
    msg = message(z, "32FC1", pad=4, big_endian=True)
    m = decode_depth_m(msg)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, np.array([[1.5, 0, 0], [0, 0, 0], [0.25, 65.535, 65.6]], np.float32))
    mm = decode_depth_mm(msg)
    assert mm.dtype == np.uint16
    np.testing.assert_array_equal(mm, [[1500, 0, 0], [0, 0, 0], [250, 65535, 0]])   # > 65.535 m: not representable


def test_metres_to_millimetres_rounds_to_the_nearest():
    mm = np.arange(1, 65536, dtype=np.uint16).reshape(255, 257)
    np.testing.assert_array_equal(metres_to_millimetres(mm.astype(np.float32) / np.float32(1000)), mm)
    np.testing.assert_array_equal(metres_to_millimetres(np.array([0.0004, 0.0006, 1.2344, 1.2346])), [0, 1, 1234, 1235])


@pytest.mark.parametrize("encoding", COLOR_ENCODINGS)
def test_depth_rejects_colour(encoding, message):
    for read in (decode_depth_m, decode_depth_mm):
        with pytest.raises(ImageConversionError, match=f"'{encoding}' is not a depth encoding"):
            read(message(sample(encoding), encoding))


# ---------------------------------------------------------------------- errors

def test_unsupported_encoding(message):
    for name in ("yuv422", "8UC3", ""):
        msg = message(sample("rgb8"), name)
        with pytest.raises(ImageConversionError, match=rf"unsupported image encoding '{name}' \(supported: rgb8, "):
            decode(msg)
        with pytest.raises(ImageConversionError, match=f"unsupported image encoding '{name}'"):
            encode(sample("rgb8"), name)


def test_fewer_data_bytes_than_step_times_height():
    a = sample("32FC1")
    step, raw = image_wire(a)
    short = EncodedImage("32FC1", H, W, step, 0, raw[:-1])
    with pytest.raises(ImageConversionError, match=r"32FC1 image 6x4: 95 data bytes < step \* height = 24 \* 4 = 96"):
        decode(short)


def test_step_smaller_than_a_row():
    step, raw = image_wire(sample("bgr8"))
    with pytest.raises(ImageConversionError, match=r"bgr8 image 6x4: step 17 < width \* bytes_per_pixel = 6 \* 3 = 18"):
        decode(EncodedImage("bgr8", H, W, step - 1, 0, raw))


def test_corrupt_sizes_never_raise_numpy_errors():
    """Random sizes, steps and data lengths: an array of the declared shape or ImageConversionError."""
    rng = np.random.default_rng(1)
    names = list(ENCODINGS)
    for trial in range(300):
        encoding = names[trial % len(names)]
        data = encode(sample(encoding, seed=trial), encoding).data
        wire = EncodedImage(encoding, int(rng.integers(0, 9)), int(rng.integers(0, 9)), int(rng.integers(0, 40)),
                            int(rng.integers(0, 2)), data[: int(rng.integers(0, len(data) + 1))])
        try:
            a = decode(wire)
        except ImageConversionError:
            continue
        assert a.shape[:2] == (wire.height, wire.width)


@pytest.mark.parametrize("array_, encoding, match", [
    (np.zeros((2, 2)), "32FC1", "32FC1 needs dtype float32, got float64"),
    (np.zeros((2, 2), np.uint16), "mono8", "mono8 needs dtype uint8, got uint16"),
    (np.zeros((2, 2), np.int16), "16UC1", "16UC1 needs dtype uint16, got int16"),
    (np.zeros((2, 2), bool), "mono8", "mono8 needs dtype uint8, got bool"),
    (np.zeros((2, 2), np.uint8), "rgb8", r"rgb8 needs an array of shape \[H, W, 3\], got \(2, 2\)"),
    (np.zeros((2, 2, 3), np.uint8), "bgra8", r"bgra8 needs an array of shape \[H, W, 4\], got \(2, 2, 3\)"),
    (np.zeros((2, 2, 2), np.uint16), "mono16", r"mono16 needs an array of shape \[H, W\], got \(2, 2, 2\)"),
])
def test_encode_checks_dtype_and_shape(array_, encoding, match):
    with pytest.raises(ImageConversionError, match=match):
        encode(array_, encoding)


def test_encode_takes_one_channel_strided_and_non_native_arrays():
    a = sample("16UC1")
    assert encode(a[..., None], "16UC1") == encode(a, "16UC1")
    assert encode(a.astype(">u2"), "16UC1").data == a.astype("<u2").tobytes()
    strided = sample("rgba8", h=8, w=12)[::2, ::2]
    np.testing.assert_array_equal(decode(encode(strided, "rgba8")), strided)
