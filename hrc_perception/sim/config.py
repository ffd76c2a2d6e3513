"""The synthetic cell's description (``config/cell.yaml``), loaded and validated.

Every section is a frozen dataclass; ``load_cell_config`` reads a YAML file,
rejects unknown keys, wrong types and impossible ranges with a ``ConfigError``
that names the file and the field (``cell.yaml: camera.depth_range_m: ...``).
A file may give only some keys: the rest come from the dataclass defaults, which
are the same as the shipped ``config/cell.yaml``. ``extends: OTHER.yaml`` (a path
relative to the file) starts from another file's keys, which this file's override
section by section (a list or value replaces the other file's).

Units: metres, seconds; angles in degrees where the name ends in ``_deg``.
Ranges are ``[low, high]`` pairs sampled uniformly once per episode.
World frame: z up, origin on the floor under the table centre, +x from the
robot's side of the table towards the far side.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A cell description that cannot be used; the message names file and field."""


Range = tuple[float, float]
Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class DepthNoiseConfig:
    """Stereo depth camera noise (a D435-like active stereo sensor).

    disparity_sigma_px: Gaussian noise on disparity; depth noise then grows as z^2.
    subpixel: disparity quantization step in pixels.
    hole_rate: fraction of pixels dropped in random blobs; hole_blob_px: blob size.
    grazing_cos_min: surfaces seen at |cos(incidence)| below this are invalid.
    flying_pixel_prob: chance that a pixel on a depth edge gets a depth between
        foreground and background.
    edge_threshold_m: depth jump that counts as an edge.
    """
    disparity_sigma_px: Range = (0.05, 0.12)
    subpixel: float = 0.125
    hole_rate: Range = (0.002, 0.02)
    hole_blob_px: Range = (2.0, 8.0)
    grazing_cos_min: float = 0.12
    flying_pixel_prob: float = 0.5
    edge_threshold_m: float = 0.05


@dataclass(frozen=True)
class CameraPoseConfig:
    """Camera placement: looks at look_at_m (+- jitter) from distance_m, at an
    azimuth about the world z axis (0 = on the +y side of the table) and an
    elevation above the horizontal; then rolls about its optical axis."""
    look_at_m: Vec3 = (0.0, 0.0, 0.9)
    look_at_jitter_m: Vec3 = (0.15, 0.15, 0.1)
    distance_m: Range = (2.6, 3.4)
    azimuth_deg: Range = (-35.0, 35.0)
    elevation_deg: Range = (25.0, 45.0)
    roll_deg: Range = (-4.0, 4.0)


@dataclass(frozen=True)
class CameraEffectsConfig:
    """What a real colour camera adds to the rendered image (sim/camera_effects.py), all off
    by default. Drawn per episode from their own generator (a cell without them renders the
    same frames as before), the smear's direction per frame.

    exposure_gain: gain on linear light (under- and over-exposure; clipped highlights).
    vignetting: fraction of light lost in the image corners. defocus_sigma_px: Gaussian
    blur sigma. motion_blur_px: length of a straight smear. jpeg_quality: JPEG quality
    (1..95; 0: no JPEG)."""
    exposure_gain: Range = (1.0, 1.0)
    vignetting: Range = (0.0, 0.0)
    defocus_sigma_px: Range = (0.0, 0.0)
    motion_blur_px: Range = (0.0, 0.0)
    jpeg_quality: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class CameraConfig:
    """A colour camera with depth aligned to it; intrinsics in pixels.

    intrinsics_jitter: relative +- on fx, fy, and (x width/height) on cx, cy.
    depth_range_m: depth outside [near, far] is invalid (0).
    baseline_m: stereo baseline of the depth sensor (noise and occlusion shadows).
    """
    width: int = 640
    height: int = 480
    fx: float = 615.0
    fy: float = 615.0
    cx: float = 320.0
    cy: float = 240.0
    intrinsics_jitter: float = 0.02
    depth_range_m: Range = (0.28, 6.0)
    baseline_m: float = 0.05
    pose: CameraPoseConfig = field(default_factory=CameraPoseConfig)
    depth_noise: DepthNoiseConfig = field(default_factory=DepthNoiseConfig)
    effects: CameraEffectsConfig = field(default_factory=CameraEffectsConfig)


@dataclass(frozen=True)
class SequenceConfig:
    """fps: frame rate; episode_frames: frames per episode. Each episode draws a new
    camera, lighting, layout, parts and people; time is continuous inside it."""
    fps: float = 15.0
    episode_frames: int = 150


@dataclass(frozen=True)
class TableConfig:
    """A table centred on the world origin; size_m = (x length, y width)."""
    size_m: tuple[float, float] = (1.6, 0.9)
    height_m: Range = (0.72, 0.8)


@dataclass(frozen=True)
class RobotConfig:
    """urdf: a path, or ``pybullet_data://<relative path>`` for the URDFs that the
    pybullet package ships. base_xy_m: base position on the table top.
    base_yaw_deg: base yaw range about world z. keypoints: link names whose frame
    origins are the robot's skeleton joints. joint_limit_margin_rad: targets keep
    this far from the URDF limits. max_joint_speed_rad_s: pick-and-place speed.
    gripper_link: link that carries grasped parts. random_move_probability: chance
    that the next move goes to a random free configuration instead of a pick."""
    urdf: str = "pybullet_data://franka_panda/panda.urdf"
    name: str = "panda"
    base_xy_m: tuple[float, float] = (-0.6, 0.0)
    base_yaw_deg: Range = (-10.0, 10.0)
    keypoints: tuple[str, ...] = (
        "panda_link0", "panda_link2", "panda_link3", "panda_link4",
        "panda_link5", "panda_link7", "panda_hand", "panda_grasptarget",
    )
    gripper_link: str = "panda_grasptarget"
    joint_limit_margin_rad: float = 0.1
    max_joint_speed_rad_s: float = 1.0
    random_move_probability: float = 0.2


@dataclass(frozen=True)
class PartsConfig:
    """source: 'procedural' (the repo's own parts) or a folder of .ply/.obj meshes.
    names: which procedural parts (ignored for a folder: every mesh is a part).
    mesh_units: units of a mesh folder ('m' or 'mm').
    count: instances per episode [low, high], drawn from the classes (repeats allowed).
    area_x_m, area_y_m: where parts lie on the table (world x, y).
    gap_m: clearance between the parts' bounding circles (radius half the diameter); negative
    lets the circles overlap by that much, so parts stand close and hide one another (a
    circle is wider than most footprints; meshes may touch)."""
    source: str = "procedural"
    names: tuple[str, ...] = ("bracket", "gear", "flange", "bolt", "housing", "pipe")
    mesh_units: str = "m"
    count: tuple[int, int] = (4, 6)
    area_x_m: Range = (-0.35, 0.15)
    area_y_m: Range = (-0.3, 0.3)
    gap_m: float = 0.02


@dataclass(frozen=True)
class ClutterConfig:
    """Unmodelled objects on the table among the parts (background: instance id 0, no
    class), as real work cells and the LM-O scenes have them. count: objects per
    episode [low, high] (default none); size_m: their longest side's range. Shapes:
    boxes, cylinders, spheres, capsules and random convex lumps, each with a random
    material; drawn from their own generator (a cell without clutter renders the same
    frames as before)."""
    count: tuple[int, int] = (0, 0)
    size_m: Range = (0.03, 0.2)


BACKGROUND_MATERIALS = ("basic", "rich")


@dataclass(frozen=True)
class AppearanceConfig:
    """background_materials: 'basic' (flat colours with faint patterns, the default) or
    'rich' (sim/materials.py rich_material: wood, brushed metal, plastic, printed paper,
    marker squares, two-colour paint, matte to glossy) for everything that is not an
    instance: floor, walls, table, distractors, clutter. Rich materials come from their own
    generator: the layout and everything else stay as with 'basic'."""
    background_materials: str = "basic"


@dataclass(frozen=True)
class HumansConfig:
    """count: people per episode [low, high]. height_m: body height range.
    proportion_jitter: relative +- on segment lengths and girths.
    fall_probability: chance that a person falls during an episode (random script only).
    walk_speed_m_s: walking speed range.
    script: what people do, one of HUMAN_SCRIPTS: 'random' (a random plan of
    behaviours at the table) or a scripted test scenario (sim/human_motion.py):
    'walk_at_robot' (from outside the cell straight at the robot's base at
    walk_speed_m_s, stopping at the table), 'reach_over_table' (standing at a long
    side next to the robot, reaching over the table into its work area again and
    again), 'stand_still' (standing next to the robot from the start, not moving)."""
    count: tuple[int, int] = (1, 2)
    height_m: Range = (1.55, 1.95)
    proportion_jitter: float = 0.08
    fall_probability: float = 0.1
    walk_speed_m_s: Range = (0.8, 1.4)
    script: str = "random"


HUMAN_SCRIPTS = ("random", "walk_at_robot", "reach_over_table", "stand_still")


@dataclass(frozen=True)
class LightingConfig:
    """count: point lights [low, high]; ambient: ambient fraction range;
    intensity: light intensity range; height_m: light height range."""
    count: tuple[int, int] = (1, 3)
    ambient: Range = (0.15, 0.45)
    intensity: Range = (0.6, 1.2)
    height_m: Range = (2.2, 3.5)


@dataclass(frozen=True)
class CellConfig:
    camera: CameraConfig = field(default_factory=CameraConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    table: TableConfig = field(default_factory=TableConfig)
    robot: RobotConfig = field(default_factory=RobotConfig)
    parts: PartsConfig = field(default_factory=PartsConfig)
    clutter: ClutterConfig = field(default_factory=ClutterConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    humans: HumansConfig = field(default_factory=HumansConfig)
    lighting: LightingConfig = field(default_factory=LightingConfig)


def load_cell_config(path: str | Path) -> CellConfig:
    """Read and validate a cell YAML file. Raises ConfigError naming file and field."""
    path = Path(path)
    cfg = _build(CellConfig, _read_yaml(path, ()), f"{path}: ", "")
    validate(cfg, f"{path}: ")
    return cfg


def _read_yaml(path: Path, seen: tuple[Path, ...]) -> dict:
    """The keys of a cell YAML file, with those of the file it ``extends`` under them."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: extends itself (through {', '.join(str(p) for p in seen)})")
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    data = {} if data is None else data
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_name = data.pop("extends")
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: extends: expected a file name, got {base_name!r}")
    return _merged(_read_yaml(path.parent / base_name, seen + (path.resolve(),)), data)


def _merged(base: dict, over: dict) -> dict:
    """base with over's keys on top, mapping by mapping."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def config_to_dict(cfg) -> dict:
    """Plain dict (lists, not tuples) of a config dataclass, for JSON/YAML output."""
    def plain(x):
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x
    return plain(dataclasses.asdict(cfg))


def _build(cls, data, file_prefix: str, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{file_prefix}{where or 'top level'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{file_prefix}{where + '.' if where else ''}{unknown[0]}: unknown key "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _convert(hints[name], value, file_prefix, key)
    return cls(**kwargs)


def _convert(tp, value, file_prefix: str, key: str):
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, file_prefix, key)
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{file_prefix}{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, file_prefix, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{file_prefix}{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, file_prefix, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{file_prefix}{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{file_prefix}{key}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{file_prefix}{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"config field {key} has unsupported type {tp}")


def _check(ok: bool, prefix: str, key: str, msg: str):
    if not ok:
        raise ConfigError(f"{prefix}{key}: {msg}")


def validate(cfg: CellConfig, prefix: str = "") -> None:
    """Reject impossible values. Raises ConfigError naming the field."""
    def rng(key, r, lo=None, hi=None):
        _check(r[0] <= r[1], prefix, key, f"range low {r[0]} > high {r[1]}")
        if lo is not None:
            _check(r[0] >= lo, prefix, key, f"must be >= {lo}, got {r[0]}")
        if hi is not None:
            _check(r[1] <= hi, prefix, key, f"must be <= {hi}, got {r[1]}")

    c = cfg.camera
    _check(16 <= c.width <= 4096 and 16 <= c.height <= 4096, prefix, "camera.width",
           f"image size {c.width}x{c.height} outside 16..4096")
    for k in ("fx", "fy"):
        _check(getattr(c, k) > 0, prefix, f"camera.{k}", "must be > 0")
    _check(0 <= c.intrinsics_jitter < 0.5, prefix, "camera.intrinsics_jitter", "must be in [0, 0.5)")
    rng("camera.depth_range_m", c.depth_range_m, lo=0.0)
    _check(c.depth_range_m[0] < c.depth_range_m[1], prefix, "camera.depth_range_m", "near must be < far")
    _check(c.depth_range_m[1] <= 65.535, prefix, "camera.depth_range_m", "far must fit uint16 mm (<= 65.535)")
    _check(c.baseline_m > 0, prefix, "camera.baseline_m", "must be > 0")
    p = c.pose
    rng("camera.pose.distance_m", p.distance_m, lo=0.1)
    rng("camera.pose.azimuth_deg", p.azimuth_deg, lo=-180, hi=180)
    rng("camera.pose.elevation_deg", p.elevation_deg, lo=-89, hi=89)
    rng("camera.pose.roll_deg", p.roll_deg, lo=-180, hi=180)
    _check(all(j >= 0 for j in p.look_at_jitter_m), prefix, "camera.pose.look_at_jitter_m", "must be >= 0")
    n = c.depth_noise
    rng("camera.depth_noise.disparity_sigma_px", n.disparity_sigma_px, lo=0.0)
    _check(n.subpixel >= 0, prefix, "camera.depth_noise.subpixel", "must be >= 0")
    rng("camera.depth_noise.hole_rate", n.hole_rate, lo=0.0, hi=1.0)
    rng("camera.depth_noise.hole_blob_px", n.hole_blob_px, lo=0.5)
    _check(0 <= n.grazing_cos_min < 1, prefix, "camera.depth_noise.grazing_cos_min", "must be in [0, 1)")
    _check(0 <= n.flying_pixel_prob <= 1, prefix, "camera.depth_noise.flying_pixel_prob", "must be in [0, 1]")
    _check(n.edge_threshold_m > 0, prefix, "camera.depth_noise.edge_threshold_m", "must be > 0")
    e = c.effects
    rng("camera.effects.exposure_gain", e.exposure_gain, lo=0.05, hi=20.0)
    rng("camera.effects.vignetting", e.vignetting, lo=0.0, hi=0.95)
    rng("camera.effects.defocus_sigma_px", e.defocus_sigma_px, lo=0.0, hi=20.0)
    rng("camera.effects.motion_blur_px", e.motion_blur_px, lo=0.0, hi=50.0)
    rng("camera.effects.jpeg_quality", e.jpeg_quality, lo=0, hi=95)
    _check(e.jpeg_quality[0] > 0 or e.jpeg_quality[1] == 0, prefix, "camera.effects.jpeg_quality",
           "0 (no JPEG) only as [0, 0]")

    s = cfg.sequence
    _check(0 < s.fps <= 1000, prefix, "sequence.fps", "must be in (0, 1000]")
    _check(s.episode_frames >= 1, prefix, "sequence.episode_frames", "must be >= 1")

    t = cfg.table
    _check(all(v > 0 for v in t.size_m), prefix, "table.size_m", "must be > 0")
    rng("table.height_m", t.height_m, lo=0.1, hi=2.0)

    r = cfg.robot
    _check(bool(r.urdf), prefix, "robot.urdf", "must name a URDF file")
    _check(len(r.keypoints) >= 2, prefix, "robot.keypoints", "need at least 2 links")
    _check(r.joint_limit_margin_rad >= 0, prefix, "robot.joint_limit_margin_rad", "must be >= 0")
    _check(r.max_joint_speed_rad_s > 0, prefix, "robot.max_joint_speed_rad_s", "must be > 0")
    rng("robot.base_yaw_deg", r.base_yaw_deg, lo=-180, hi=180)
    _check(0 <= r.random_move_probability <= 1, prefix, "robot.random_move_probability", "must be in [0, 1]")

    pc = cfg.parts
    _check(bool(pc.source), prefix, "parts.source", "must be 'procedural' or a mesh folder")
    if pc.source == "procedural":
        _check(len(pc.names) > 0, prefix, "parts.names", "empty part list")
    _check(pc.mesh_units in ("m", "mm"), prefix, "parts.mesh_units", f"must be 'm' or 'mm', got {pc.mesh_units!r}")
    _check(0 <= pc.count[0] <= pc.count[1] <= 60, prefix, "parts.count", "must be 0 <= low <= high <= 60")
    _check(0 <= cfg.clutter.count[0] <= cfg.clutter.count[1] <= 60, prefix, "clutter.count",
           "must be 0 <= low <= high <= 60")
    rng("clutter.size_m", cfg.clutter.size_m, lo=0.005, hi=1.0)
    _check(cfg.appearance.background_materials in BACKGROUND_MATERIALS, prefix, "appearance.background_materials",
           f"must be one of {', '.join(BACKGROUND_MATERIALS)}, got {cfg.appearance.background_materials!r}")
    _check(-0.2 <= pc.gap_m <= 1.0, prefix, "parts.gap_m", f"must be in [-0.2, 1.0] m, got {pc.gap_m}")
    rng("parts.area_x_m", pc.area_x_m)
    rng("parts.area_y_m", pc.area_y_m)

    h = cfg.humans
    _check(0 <= h.count[0] <= h.count[1] <= 8, prefix, "humans.count", "must be 0 <= low <= high <= 8")
    rng("humans.height_m", h.height_m, lo=0.5, hi=2.5)
    _check(0 <= h.proportion_jitter < 0.5, prefix, "humans.proportion_jitter", "must be in [0, 0.5)")
    _check(0 <= h.fall_probability <= 1, prefix, "humans.fall_probability", "must be in [0, 1]")
    rng("humans.walk_speed_m_s", h.walk_speed_m_s, lo=0.05)
    _check(h.script in HUMAN_SCRIPTS, prefix, "humans.script",
           f"must be one of {', '.join(HUMAN_SCRIPTS)}, got {h.script!r}")

    li = cfg.lighting
    _check(1 <= li.count[0] <= li.count[1] <= 8, prefix, "lighting.count", "must be 1 <= low <= high <= 8")
    rng("lighting.ambient", li.ambient, lo=0.0, hi=1.0)
    rng("lighting.intensity", li.intensity, lo=0.0)
    rng("lighting.height_m", li.height_m, lo=0.0)
