"""hrc_perception.ros.convert on real rclpy message classes (no node, no mocks)."""
import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conftest import image_sample, image_wire
from geometry_msgs.msg import Pose, Quaternion, Transform
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from hrc_perception.geometry import make_K, make_T, rotation_about_axis
from hrc_perception.ros.convert import (
    ENCODINGS, CameraInfoError, ImageConversionError, K_to_camera_info, camera_info_to_K,
    depth_to_meters, image_to_numpy, image_to_rgb, mask_to_roi_image, matrix_to_pose,
    matrix_to_transform, ns_to_stamp, numpy_to_image, pose_to_matrix, roi_image_to_mask,
    stamp_to_ns, transform_to_matrix)

H, W = 5, 7
HEADER = Header(stamp=Time(sec=12, nanosec=345), frame_id="camera_color_optical_frame")


def sample(encoding: str, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """conftest.image_sample of H x W by default."""
    return image_sample(encoding, h, w, seed)


def raw_image(a: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False, extra: int = 0) -> Image:
    """An rclpy Image built by hand: ``pad`` bytes after each row, optional big-endian
    data, ``extra`` trailing bytes."""
    step, raw = image_wire(a, pad, big_endian, extra)
    data = array.array("B")
    data.frombytes(raw)
    return Image(header=HEADER, height=a.shape[0], width=a.shape[1], encoding=encoding,
                 is_bigendian=int(big_endian), step=step, data=data)


# ---------------------------------------------------------------------- images

@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    a = sample(encoding)
    msg = numpy_to_image(a, encoding, HEADER)
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (H, W, encoding, 0)
    assert msg.step == W * ENCODINGS[encoding].bytes_per_pixel
    assert len(msg.data) == msg.step * H
    assert msg.header == HEADER
    b = image_to_numpy(msg)
    assert b.dtype == a.dtype and b.shape == a.shape and b.flags.c_contiguous
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_message_round_trip_every_encoding(encoding):
    """message -> numpy -> message: the same fields and the same bytes."""
    msg = raw_image(sample(encoding, seed=2), encoding)
    again = numpy_to_image(image_to_numpy(msg), encoding, HEADER)
    for f in ("header", "height", "width", "encoding", "is_bigendian", "step"):
        assert getattr(again, f) == getattr(msg, f), f
    assert bytes(again.data) == bytes(msg.data)


def test_errors_are_the_codec_errors_nodes_catch():
    """Layouts, padding, byte order and every error: test_io_image_codec.py (on rclpy
    messages too); nodes catch this module's ImageConversionError."""
    from hrc_perception.io import image_codec
    assert ImageConversionError is image_codec.ImageConversionError and issubclass(ImageConversionError, ValueError)
    assert ENCODINGS is image_codec.ENCODINGS
    with pytest.raises(ImageConversionError, match="32FC1 needs dtype float32, got float64"):
        numpy_to_image(np.zeros((2, 2)), "32FC1")
    msg = numpy_to_image(sample("rgb8"), "rgb8")
    msg.encoding = "yuv422"
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        image_to_numpy(msg)


def test_image_to_rgb():
    rgb = sample("rgb8")
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(rgb, "rgb8")), rgb)
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(rgb[..., ::-1], "bgr8")), rgb)
    alpha = sample("mono8", seed=1)[..., None]
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(np.concatenate([rgb, alpha], 2), "rgba8")), rgb)
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(np.concatenate([rgb[..., ::-1], alpha], 2), "bgra8")),
                                  rgb)
    mono = sample("mono8")
    out = image_to_rgb(numpy_to_image(mono, "mono8"))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], mono)
    with pytest.raises(ImageConversionError, match="not a colour encoding"):
        image_to_rgb(numpy_to_image(sample("16UC1"), "16UC1"))


def test_empty_image():
    msg = numpy_to_image(np.zeros((0, 0), np.uint8), "mono8", HEADER)
    assert (msg.height, msg.width, msg.step, len(msg.data)) == (0, 0, 0, 0)
    assert image_to_numpy(msg).shape == (0, 0)
    assert image_to_numpy(Image(encoding="rgb8")).shape == (0, 0, 3)


def test_numpy_to_image_accepts_one_channel_and_non_native_input():
    a = sample("16UC1")
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(a[..., None], "16UC1")), a)
    msg = numpy_to_image(a.astype(">u2"), "16UC1")
    assert msg.is_bigendian == 0
    assert bytes(msg.data) == a.astype("<u2").tobytes()
    strided = sample("rgb8", h=10, w=14)[::2, ::2]
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(strided, "rgb8")), strided)


# ----------------------------------------------------------------------- depth

def test_depth_to_meters_of_node_messages():
    mm = np.array([[0, 1, 1000], [1234, 65535, 0]], np.uint16)
    np.testing.assert_array_equal(depth_to_meters(numpy_to_image(mm, "16UC1")),
                                  mm.astype(np.float32) * np.float32(1e-3))
    z = np.array([[1.5, np.nan, -0.2]], np.float32)
    np.testing.assert_array_equal(depth_to_meters(numpy_to_image(z, "32FC1")), np.array([[1.5, 0, 0]], np.float32))
    with pytest.raises(ImageConversionError, match="'rgb8' is not a depth encoding"):
        depth_to_meters(numpy_to_image(sample("rgb8"), "rgb8"))


# ----------------------------------------------------------------- camera info

K = make_K(615.0, 616.5, 320.5, 239.25)


def test_camera_info_round_trip():
    msg = K_to_camera_info(K, 640, 480, HEADER)
    assert isinstance(msg, CameraInfo)
    assert msg.header == HEADER and msg.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(np.array(msg.d), np.zeros(5))
    np.testing.assert_array_equal(np.array(msg.r).reshape(3, 3), np.eye(3))
    P = np.array(msg.p).reshape(3, 4)
    np.testing.assert_array_equal(P[:, :3], K)
    np.testing.assert_array_equal(P[:, 3], 0)
    K2, w, h = camera_info_to_K(msg)
    assert (w, h) == (640, 480) and K2.dtype == np.float64
    np.testing.assert_array_equal(K2, K)


def _info(K_, w=640, h=480) -> CameraInfo:
    return CameraInfo(width=w, height=h, k=np.asarray(K_, float).reshape(-1))


@pytest.mark.parametrize("info, match", [
    (CameraInfo(), "all zero"),
    (_info(np.zeros((3, 3))), "all zero"),
    (_info(make_K(0.0, 600.0, 320, 240)), "fx=0.0"),
    (_info(make_K(600.0, -1.0, 320, 240)), "fy=-1.0"),
    (_info(make_K(np.nan, 600.0, 320, 240)), "non-finite"),
    (_info(K, w=0), "width=0"),
    (_info(K, h=0), "height=0"),
    (_info(np.diag([600.0, 600.0, 0.0])), r"last row must be \[0, 0, 1\]"),
])
def test_camera_info_errors(info, match):
    with pytest.raises(CameraInfoError, match=match):
        camera_info_to_K(info)


def test_K_to_camera_info_validates():
    with pytest.raises(CameraInfoError, match="all zero"):
        K_to_camera_info(np.zeros((3, 3)), 640, 480)
    with pytest.raises(CameraInfoError, match="3x3"):
        K_to_camera_info(np.eye(4), 640, 480)


# ----------------------------------------------------------------------- poses

def _random_T(rng) -> np.ndarray:
    return make_T(rotation_about_axis(rng.normal(size=3), rng.uniform(-np.pi, np.pi)), rng.normal(size=3))


def test_pose_round_trip():
    rng = np.random.default_rng(4)
    for _ in range(20):
        T = _random_T(rng)
        pose = matrix_to_pose(T)
        assert isinstance(pose, Pose)
        q = pose.orientation
        assert q.w >= 0 and abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1) < 1e-12
        np.testing.assert_allclose(pose_to_matrix(pose), T, atol=1e-12)


def test_transform_round_trip():
    rng = np.random.default_rng(5)
    for _ in range(20):
        T = _random_T(rng)
        tf = matrix_to_transform(T)
        assert isinstance(tf, Transform)
        np.testing.assert_allclose(transform_to_matrix(tf), T, atol=1e-12)


def test_pose_conventions():
    np.testing.assert_array_equal(pose_to_matrix(Pose()), np.eye(4))
    # 90 degrees about z: quaternion (0, 0, sin 45, cos 45); x axis goes to y
    pose = Pose()
    pose.orientation = Quaternion(x=0.0, y=0.0, z=np.sqrt(0.5), w=np.sqrt(0.5))
    pose.position.x, pose.position.y, pose.position.z = 1.0, 2.0, 3.0
    T = pose_to_matrix(pose)
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_array_equal(T[:3, 3], [1, 2, 3])
    # a non-unit quaternion is normalised
    pose.orientation = Quaternion(x=0.0, y=0.0, z=2.0, w=2.0)
    np.testing.assert_allclose(pose_to_matrix(pose), T, atol=1e-12)


def test_pose_errors():
    pose = Pose()
    pose.orientation = Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)
    with pytest.raises(ValueError, match="not a rotation"):
        pose_to_matrix(pose)
    with pytest.raises(ValueError, match="4x4"):
        matrix_to_pose(np.eye(3))
    with pytest.raises(ValueError, match="4x4"):
        matrix_to_transform(np.full((4, 4), np.nan))


# ----------------------------------------------------------------------- masks

def test_mask_round_trip():
    rng = np.random.default_rng(6)
    for _ in range(20):
        mask = np.zeros((48, 64), bool)
        y, x = rng.integers(0, 40), rng.integers(0, 50)
        mask[y:y + rng.integers(1, 9), x:x + rng.integers(1, 15)] = rng.random() > 0.3
        mask &= rng.random(mask.shape) > 0.2
        roi, img = mask_to_roi_image(mask, HEADER)
        assert isinstance(roi, RegionOfInterest) and img.encoding == "mono8"
        assert (img.height, img.width) == (roi.height, roi.width)
        assert img.header == HEADER
        crop = image_to_numpy(img)
        assert set(np.unique(crop)) <= {0, 255}
        np.testing.assert_array_equal(roi_image_to_mask(roi, img, 48, 64), mask)


def test_mask_roi_is_the_bounding_box():
    mask = np.zeros((10, 12), bool)
    mask[2, 3] = mask[6, 9] = True
    roi, img = mask_to_roi_image(mask)
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (3, 2, 7, 5)
    crop = image_to_numpy(img)
    assert crop[0, 0] == 255 and crop[-1, -1] == 255 and crop.sum() == 2 * 255


def test_full_and_empty_masks():
    full = np.ones((4, 6), bool)
    roi, img = mask_to_roi_image(full)
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, 6, 4)
    np.testing.assert_array_equal(roi_image_to_mask(roi, img, 4, 6), full)
    roi, img = mask_to_roi_image(np.zeros((4, 6), bool), HEADER)
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, 0, 0)
    assert (img.height, img.width, len(img.data), img.encoding) == (0, 0, 0, "mono8")
    out = roi_image_to_mask(roi, img, 4, 6)
    assert out.shape == (4, 6) and out.dtype == bool and not out.any()


def test_mask_errors():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:7] = True
    roi, img = mask_to_roi_image(mask)
    with pytest.raises(ImageConversionError, match="does not fit in a 6x10 image"):
        roi_image_to_mask(roi, img, 10, 6)
    bad_roi = RegionOfInterest(x_offset=3, y_offset=2, width=5, height=3)
    with pytest.raises(ImageConversionError, match="mask image is 4x3 but its ROI is 5x3"):
        roi_image_to_mask(bad_roi, img, 10, 12)
    with pytest.raises(ImageConversionError, match="must be mono8"):
        roi_image_to_mask(roi, numpy_to_image(np.zeros((3, 4), np.uint16), "16UC1"), 10, 12)
    with pytest.raises(ImageConversionError, match=r"must be \[H, W\]"):
        mask_to_roi_image(np.zeros((2, 2, 2), bool))


# ---------------------------------------------------------------------- stamps

@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789, -1, -1_500_000_000])
def test_stamp_round_trip(ns):
    t = ns_to_stamp(ns)
    assert isinstance(t, Time) and 0 <= t.nanosec < 1_000_000_000
    assert stamp_to_ns(t) == ns


def test_stamp_values():
    assert stamp_to_ns(Time(sec=12, nanosec=345)) == 12_000_000_345
    t = ns_to_stamp(1_500_000_000)
    assert (t.sec, t.nanosec) == (1, 500_000_000)
    with pytest.raises(ValueError, match="outside the range"):
        ns_to_stamp(2**31 * 1_000_000_000)


# ---------------------------------------------- agreement with cv_bridge (system ROS)

@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_agrees_with_cv_bridge(encoding):
    cv_bridge = pytest.importorskip("cv_bridge")
    bridge = cv_bridge.CvBridge()
    a = sample(encoding, seed=11)
    ours, theirs = numpy_to_image(a, encoding, HEADER), bridge.cv2_to_imgmsg(a, encoding, HEADER)
    for f in ("height", "width", "encoding", "step", "header"):
        assert getattr(ours, f) == getattr(theirs, f), f
    assert bool(ours.is_bigendian) == bool(theirs.is_bigendian)
    assert bytes(ours.data) == bytes(theirs.data)
    bpp = ENCODINGS[encoding].bytes_per_pixel
    # cv_bridge reads padded rows correctly when the padding is whole pixels
    cases = [theirs, raw_image(a, encoding, pad=2 * bpp)]
    if ENCODINGS[encoding].dtype.itemsize > 1:
        cases.append(raw_image(a, encoding, pad=bpp, big_endian=True))
    for msg in cases:
        expected = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        got = image_to_numpy(msg)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_copy_header_is_independent_and_duration_msg_splits_seconds():
    from hrc_perception.ros.convert import copy_header, duration_msg
    h = Header(frame_id="camera_color_optical_frame")
    h.stamp.sec, h.stamp.nanosec = 12, 345
    c = copy_header(h)
    h.stamp.sec, h.frame_id = 99, "other"
    assert (c.stamp.sec, c.stamp.nanosec, c.frame_id) == (12, 345, "camera_color_optical_frame")
    d = duration_msg(2.25)
    assert (d.sec, d.nanosec) == (2, 250_000_000)
    assert (duration_msg(0.0).sec, duration_msg(0.0).nanosec) == (0, 0)
