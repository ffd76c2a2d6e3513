"""Where RGB-D frames come from: the synthetic cell, a rosbag2 bag, a folder of images, a RealSense.

Every source follows :class:`FrameSource`: ``next_frame()`` returns the next
:class:`CaptureFrame` or ``None`` at the end (a looping or live source never
ends), ``close()`` releases files and devices. Opening a source checks what can
be checked up front and raises :class:`SourceError` with one line naming the
source and what is missing or wrong; ``next_frame`` raises it for one bad frame
(the next call goes on with the frame after it).

Images: colour ``rgb`` [H, W, 3] uint8 RGB; ``depth_mm`` [H, W] uint16 z-depth in
millimetres, aligned to (registered to, same size as) the colour image, 0 = no
measurement; ``K`` [3, 3] float64 pinhole intrinsics of the colour camera in
pixels (optical frame: z forward, x right, y down). Stamps are integer
nanoseconds; ``None`` means "no recorded stamp: stamp it on publication".

Heavy or optional dependencies (the simulator, rosbags, Pillow, pyrealsense2) are
imported by the source that needs them, when it is opened.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol, runtime_checkable

import numpy as np

from hrc_perception.io.bag import JointStateSample

if TYPE_CHECKING:
    from hrc_perception.sim.frame import Frame


class SourceError(RuntimeError):
    """A source that cannot be opened, or a frame that cannot be read; one line naming the source."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


@dataclass(frozen=True)
class CaptureFrame:
    """One RGB-D frame.

    stamp_ns: capture time, integer ns (a bag's recorded header stamp, the
        simulator's stamp), or None for "stamp it when publishing".
    rgb: [H, W, 3] uint8 RGB. depth_mm: [H, W] uint16 millimetres, aligned to rgb,
        0 = invalid. K: [3, 3] float64 colour intrinsics (pixels).
    ground_truth: the simulator's Frame (exact poses, masks, skeletons), or None.
    joint_state: the robot's joint_states at this frame (the simulated robot's, or
        the newest recorded at or before the frame in a bag), or None.
    """
    stamp_ns: int | None
    rgb: np.ndarray
    depth_mm: np.ndarray
    K: np.ndarray
    ground_truth: Frame | None = None
    joint_state: JointStateSample | None = None


@runtime_checkable
class FrameSource(Protocol):
    """name: for log lines. has_ground_truth: frames carry ``ground_truth``.
    has_joint_states: frames may carry ``joint_state``.
    timed: frames carry recorded stamps (spacing can be replayed in real time).
    live: ``next_frame`` waits for a device, which sets the pace."""
    name: str
    has_ground_truth: bool
    has_joint_states: bool
    timed: bool
    live: bool

    def next_frame(self) -> CaptureFrame | None: ...

    def close(self) -> None: ...


def frame_problem(frame: CaptureFrame) -> tuple[str, str] | None:
    """(kind, message) of what makes a frame unpublishable, or None if it is fine.

    kinds: 'bad_image' (wrong shape or dtype), 'size_mismatch' (colour and depth
    sizes differ), 'bad_camera_info' (K not a usable pinhole matrix).
    """
    rgb, depth, K = np.asarray(frame.rgb), np.asarray(frame.depth_mm), np.asarray(frame.K)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        return "bad_image", f"colour image must be [H, W, 3] uint8, got {list(rgb.shape)} {rgb.dtype}"
    if depth.ndim != 2 or depth.dtype != np.uint16:
        return "bad_image", f"depth image must be [H, W] uint16 millimetres, got {list(depth.shape)} {depth.dtype}"
    if rgb.shape[:2] != depth.shape:
        return "size_mismatch", (f"colour image is {rgb.shape[1]}x{rgb.shape[0]} but depth is "
                                 f"{depth.shape[1]}x{depth.shape[0]} (depth must be aligned to colour)")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        return "bad_image", "empty image (0 pixels)"
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        return "bad_camera_info", f"K must be a finite 3x3 matrix, got shape {list(K.shape)}"
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0.0, 0.0, 1.0]):
        return "bad_camera_info", f"K is not a pinhole matrix (fx, fy > 0, last row 0 0 1): {K.tolist()}"
    return None


# ----------------------------------------------------------------- synthetic

class SyntheticSource:
    """Frames of the simulated cell (``hrc_perception.sim``), with exact ground truth.

    config_path: cell YAML (None or '' = the built-in cell); seed: the run's seed;
    start_index: first global frame index. Never ends. Stamps are the simulator's
    (1 s + index / fps), so ``timed``; ``fps`` is the cell's frame rate (Hz).
    """
    has_ground_truth = True
    has_joint_states = True
    timed = True
    live = False

    def __init__(self, config_path: str | Path | None = None, seed: int = 0, start_index: int = 0):
        from hrc_perception.sim.config import CellConfig, ConfigError, load_cell_config
        from hrc_perception.sim.generator import SynthRun
        try:
            if config_path:
                cfg, config_dir = load_cell_config(config_path), Path(config_path).resolve().parent
            else:
                cfg, config_dir = CellConfig(), None
        except ConfigError as e:
            raise SourceError(f"synthetic: {_one_line(e)}") from e
        try:
            self.run = SynthRun(cfg, seed, config_dir)
        except Exception as e:   # robot URDF, part meshes: name what failed
            raise SourceError(f"synthetic: cannot build the cell: {type(e).__name__}: {_one_line(e)}") from e
        self.fps = float(cfg.sequence.fps)
        self.index = int(start_index)
        self.name = f"synthetic cell ({config_path or 'built-in'}, seed {seed})"

    def next_frame(self) -> CaptureFrame:
        f = self.run.frame(self.index)
        self.index += 1
        joints = JointStateSample(f.stamp_ns, tuple(f.robot.joint_names),
                                  np.asarray(f.robot.joint_positions_rad, dtype=np.float64))
        return CaptureFrame(f.stamp_ns, f.rgb, f.depth_mm, f.K, f, joints)

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------- bag

class BagSource:
    """Camera frames of a rosbag2 bag (MCAP or sqlite3) written like ``hrc_perception.io.bag``.

    path: the bag directory (or a file in it); namespace: of the bag's camera topics
    (``<namespace>/camera/color/image_raw`` ...). A frame is colour + depth +
    camera_info with the same header stamp; when the bag has ``<namespace>/joint_states``
    (the robot driver's, recorded with the camera), each frame carries the newest
    joint state stamped at or before it (``has_joint_states``). loop: start again
    after the last frame. restamp: give ``stamp_ns=None`` (stamp on publication)
    instead of the recorded stamp. The first frame is read on opening, so an
    unreadable bag or one without camera frames fails here; a bag that breaks later
    ends the source.
    """
    has_ground_truth = False
    live = False

    def __init__(self, path: str | Path, namespace: str = "/cell", loop: bool = False, restamp: bool = False):
        if not str(path):
            raise SourceError("bag: no path given (a rosbag2 directory or a .mcap/.db3 file in one)")
        p = Path(path)
        if not p.exists():
            raise SourceError(f"bag {p}: no such file or directory")
        if p.is_file() and (p.parent / "metadata.yaml").is_file():
            p = p.parent
        self.path, self.namespace, self.loop, self.restamp = p, namespace, bool(loop), bool(restamp)
        self.timed = not self.restamp
        self.name = f"bag {p}"
        self.frames_read = 0
        self._broken = False
        self._frames = self._open()
        self._peeked = self._read()
        self.has_joint_states = self._peeked is not None and self._peeked.has_joint_states
        if self._peeked is None:
            self.close()
            raise SourceError(f"bag {p}: no camera frames (colour, depth and camera_info with the same stamp) "
                              f"under namespace {namespace!r}")

    def _open(self) -> Iterator:
        from hrc_perception.io.bag import read_bag_frames
        return read_bag_frames(self.path, self.namespace)

    def _read(self):
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except Exception as e:   # rosbags' reader errors, CDR errors of a corrupt record
            self._broken = True
            raise SourceError(f"bag {self.path}: cannot read: {type(e).__name__}: {_one_line(e)}") from e

    def next_frame(self) -> CaptureFrame | None:
        if self._peeked is not None:
            bf, self._peeked = self._peeked, None
        elif self._broken:
            return None
        else:
            bf = self._read()
            if bf is None and self.loop and self.frames_read > 0:
                self._frames.close()
                self._frames = self._open()
                bf = self._read()
            if bf is None:
                return None
        self.frames_read += 1
        return CaptureFrame(None if self.restamp else bf.stamp_ns, bf.rgb, bf.depth_mm, bf.K, None, bf.joint_state)

    def close(self) -> None:
        self._frames.close()   # closes the bag reader inside the generator


# -------------------------------------------------------------------- folder

COLOR_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIXES = (".png",)
INTRINSICS_FILES = ("intrinsics.yaml", "camera_info.yaml")
INTRINSICS_KEYS = ("fx", "fy", "cx", "cy", "width", "height")
_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I")


def _natural_key(stem: str) -> list:
    """'frame10' after 'frame9': digit runs compare as numbers."""
    return [int(t) if i % 2 else t for i, t in enumerate(re.split(r"(\d+)", stem))]


def _names(stems: list[str], limit: int = 5) -> str:
    shown = ", ".join(stems[:limit])
    return shown + (f" and {len(stems) - limit} more" if len(stems) > limit else "")


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes:
            if p.stem in files:
                raise SourceError(f"folder {folder.parent}: {folder.name}/ has two images named "
                                  f"{p.stem!r} ({files[p.stem].name}, {p.name})")
            files[p.stem] = p
    return files


def read_intrinsics(path: Path) -> tuple[np.ndarray, int, int]:
    """(K [3, 3] pixels, width, height) of an intrinsics YAML file.

    Either flat keys ``fx, fy, cx, cy, width, height`` (pixels) or a ROS camera
    calibration file (``image_width``, ``image_height``, ``camera_matrix.data``).
    """
    import yaml
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SourceError(f"{path}: cannot read: {_one_line(e)}") from e
    if not isinstance(data, dict):
        raise SourceError(f"{path}: expected a mapping with keys {', '.join(INTRINSICS_KEYS)}")
    try:
        if "camera_matrix" in data:
            K = np.asarray(data["camera_matrix"]["data"], dtype=np.float64).reshape(3, 3)
            width, height = data["image_width"], data["image_height"]
        else:
            missing = [k for k in INTRINSICS_KEYS if k not in data]
            if missing:
                raise SourceError(f"{path}: missing {', '.join(missing)} "
                                  f"(needs {', '.join(INTRINSICS_KEYS)}, pixels)")
            K = np.array([[data["fx"], 0.0, data["cx"]], [0.0, data["fy"], data["cy"]], [0.0, 0.0, 1.0]],
                         dtype=np.float64)
            width, height = data["width"], data["height"]
    except (KeyError, TypeError, ValueError) as e:
        raise SourceError(f"{path}: malformed intrinsics: {type(e).__name__}: {_one_line(e)}") from e
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise SourceError(f"{path}: width and height must be positive integers, got {width!r}, {height!r}")
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise SourceError(f"{path}: fx and fy must be > 0 and every value finite, got K = {K.tolist()}")
    return K, int(width), int(height)


class FolderSource:
    """Frames from image files: ``color/<name>.png|jpg`` + ``depth/<name>.png`` (16-bit, mm).

    Colour and depth are paired by file name (stem) and read in natural order of
    the names; ``intrinsics.yaml`` (or ``camera_info.yaml``) gives the colour
    camera (see :func:`read_intrinsics`). Opening checks the pairing, the
    intrinsics, every image's size (colour = intrinsics size = depth) and that
    depth is 16-bit, reading only file headers. No stamps (``stamp_ns=None``).
    loop: start again after the last pair.
    """
    has_ground_truth = False
    has_joint_states = False
    timed = False
    live = False

    def __init__(self, folder: str | Path, loop: bool = False):
        if not str(folder):
            raise SourceError("folder: no path given (a folder with color/, depth/ and intrinsics.yaml)")
        from PIL import Image
        root = Path(folder)
        if not root.is_dir():
            raise SourceError(f"folder {root}: not a directory")
        missing = [f"{d}/" for d in ("color", "depth") if not (root / d).is_dir()]
        if missing:
            raise SourceError(f"folder {root}: missing {' and '.join(missing)} "
                              "(expected color/*.png|jpg and depth/*.png paired by file name)")
        colors = _files_by_stem(root / "color", COLOR_SUFFIXES)
        depths = _files_by_stem(root / "depth", DEPTH_SUFFIXES)
        if not colors:
            raise SourceError(f"folder {root}: no colour images in color/ (*.png, *.jpg)")
        no_depth = sorted(set(colors) - set(depths), key=_natural_key)
        if no_depth:
            raise SourceError(f"folder {root}: no depth image depth/<name>.png for colour image(s) {_names(no_depth)}")
        no_color = sorted(set(depths) - set(colors), key=_natural_key)
        if no_color:
            raise SourceError(f"folder {root}: no colour image color/<name>.png|jpg for depth image(s) "
                              f"{_names(no_color)}")
        intrinsics = next((root / n for n in INTRINSICS_FILES if (root / n).is_file()), None)
        if intrinsics is None:
            raise SourceError(f"folder {root}: no {' or '.join(INTRINSICS_FILES)} "
                              f"(keys {', '.join(INTRINSICS_KEYS)})")
        self.K, self.width, self.height = read_intrinsics(intrinsics)
        self.stems = sorted(colors, key=_natural_key)
        self._pairs = [(colors[s], depths[s]) for s in self.stems]
        for color, depth in self._pairs:
            try:
                with Image.open(color) as c, Image.open(depth) as d:
                    color_size, depth_size, depth_mode = c.size, d.size, d.mode
            except OSError as e:
                raise SourceError(f"folder {root}: cannot read {_one_line(e)}") from e
            rel_c, rel_d = color.relative_to(root), depth.relative_to(root)
            if color_size != (self.width, self.height):
                raise SourceError(f"folder {root}: {rel_c} is {color_size[0]}x{color_size[1]} but "
                                  f"{intrinsics.name} says {self.width}x{self.height}")
            if depth_size != color_size:
                raise SourceError(f"folder {root}: {rel_c} is {color_size[0]}x{color_size[1]} but {rel_d} is "
                                  f"{depth_size[0]}x{depth_size[1]} (depth must be aligned to colour)")
            if depth_mode not in _DEPTH_MODES:
                raise SourceError(f"folder {root}: {rel_d} is a {depth_mode!r} image; depth must be a 16-bit "
                                  "greyscale PNG in millimetres")
        self.root, self.loop, self.index = root, bool(loop), 0
        self.name = f"folder {root} ({len(self._pairs)} frames)"

    def __len__(self) -> int:
        return len(self._pairs)

    def next_frame(self) -> CaptureFrame | None:
        if self.index >= len(self._pairs):
            if not self.loop:
                return None
            self.index = 0
        color, depth = self._pairs[self.index]
        self.index += 1
        from PIL import Image
        try:
            with Image.open(color) as c:
                rgb = np.asarray(c.convert("RGB"), dtype=np.uint8).copy()
            with Image.open(depth) as d:
                raw = np.asarray(d)
        except OSError as e:
            raise SourceError(f"folder {self.root}: cannot read {_one_line(e)}") from e
        if raw.dtype.kind not in "ui" or raw.ndim != 2 or raw.min(initial=0) < 0 or raw.max(initial=0) > 65535:
            raise SourceError(f"folder {self.root}: {depth.relative_to(self.root)} is not 16-bit depth "
                              f"(got {raw.dtype} {list(raw.shape)})")
        return CaptureFrame(None, rgb, raw.astype(np.uint16), self.K.copy(), None)

    def close(self) -> None:
        pass


# ----------------------------------------------------------------- RealSense

NO_REALSENSE = "no RealSense device found"


class RealSenseSource:
    """A connected Intel RealSense (D4xx): colour rgb8 and depth z16 at width x height, fps,
    depth aligned to colour by librealsense, converted to millimetres with the
    device's depth scale; K from the colour stream's intrinsics. ``next_frame``
    waits up to ``timeout_s`` for a frameset (the camera sets the pace). No
    recorded stamps: frames are stamped on publication.

    Needs the ``pyrealsense2`` package (imported here, not at module import) and a
    device; otherwise SourceError "no RealSense device found: <why>".
    """
    has_ground_truth = False
    has_joint_states = False
    timed = False
    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, timeout_s: float = 2.0):
        try:
            import pyrealsense2 as rs
        except ImportError as e:
            raise SourceError(f"{NO_REALSENSE}: the pyrealsense2 package is not installed "
                              f"(pip install pyrealsense2) ({_one_line(e)})") from e
        devices = rs.context().query_devices()
        if len(devices) == 0:
            raise SourceError(f"{NO_REALSENSE}: pyrealsense2 sees no connected camera "
                              "(check the USB 3 cable and the udev rules)")
        self._rs, self.timeout_s = rs, float(timeout_s)
        self._pipeline = rs.pipeline()
        config = rs.config()
        config.enable_stream(rs.stream.color, int(width), int(height), rs.format.rgb8, int(fps))
        config.enable_stream(rs.stream.depth, int(width), int(height), rs.format.z16, int(fps))
        try:
            profile = self._pipeline.start(config)
        except RuntimeError as e:
            raise SourceError(f"RealSense: cannot stream colour + depth at {width}x{height}, {fps} fps: "
                              f"{_one_line(e)}") from e
        self._mm_per_unit = float(profile.get_device().first_depth_sensor().get_depth_scale()) * 1000.0
        intr = profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics()
        self.K = np.array([[intr.fx, 0.0, intr.ppx], [0.0, intr.fy, intr.ppy], [0.0, 0.0, 1.0]])
        self._align = rs.align(rs.stream.color)
        device = profile.get_device()
        self.name = (f"RealSense {device.get_info(rs.camera_info.name)} "
                     f"({device.get_info(rs.camera_info.serial_number)}) {width}x{height} @ {fps} fps")

    def next_frame(self) -> CaptureFrame:
        try:
            frames = self._pipeline.wait_for_frames(int(self.timeout_s * 1000))
        except RuntimeError as e:
            raise SourceError(f"RealSense: no frames within {self.timeout_s} s: {_one_line(e)}") from e
        aligned = self._align.process(frames)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            raise SourceError("RealSense: incomplete frameset (colour or depth missing)")
        rgb = np.asanyarray(color.get_data()).copy()
        raw = np.asanyarray(depth.get_data())
        if abs(self._mm_per_unit - 1.0) < 1e-9:
            depth_mm = raw.astype(np.uint16, copy=True)
        else:
            depth_mm = np.clip(np.rint(raw * self._mm_per_unit), 0, 65535).astype(np.uint16)
        return CaptureFrame(None, rgb, depth_mm, self.K.copy(), None)

    def close(self) -> None:
        try:
            self._pipeline.stop()
        except RuntimeError:   # not started or already stopped
            pass
