"""Cell configuration: the shipped YAML equals the defaults; bad files give one clear error."""
from pathlib import Path

import pytest

from hrc_perception.sim.config import CellConfig, ConfigError, load_cell_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_yaml_equals_defaults():
    assert load_cell_config(REPO / "config" / "cell.yaml") == CellConfig()


def test_partial_file_keeps_other_defaults(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("humans:\n  count: [0, 0]\nsequence: {fps: 30}\n")
    cfg = load_cell_config(p)
    assert cfg.humans.count == (0, 0) and cfg.sequence.fps == 30.0
    assert cfg.camera == CellConfig().camera


@pytest.mark.parametrize("text, field, message", [
    ("camera:\n  widht: 640\n", "camera.widht", "unknown key"),
    ("camera:\n  depth_range_m: [-1.0, 6.0]\n", "camera.depth_range_m", "must be >= 0"),
    ("camera:\n  depth_range_m: [3.0, 1.0]\n", "camera.depth_range_m", "range low 3.0 > high 1.0"),
    ("camera:\n  fx: fast\n", "camera.fx", "expected a number"),
    ("parts:\n  names: []\n", "parts.names", "empty part list"),
    ("parts:\n  mesh_units: inch\n", "parts.mesh_units", "must be 'm' or 'mm'"),
    ("humans:\n  count: [3, 1]\n", "humans.count", "low <= high"),
    ("clutter:\n  count: [2, 100]\n", "clutter.count", "low <= high <= 60"),
    ("clutter:\n  size_m: [0.0, 0.1]\n", "clutter.size_m", "must be >= 0.005"),
    ("sequence:\n  episode_frames: 0\n", "sequence.episode_frames", "must be >= 1"),
    ("parts:\n  gap_m: -0.5\n", "parts.gap_m", "must be in [-0.2, 1.0] m"),
    ("appearance:\n  background_materials: shiny\n", "appearance.background_materials", "must be one of basic, rich"),
    ("camera:\n  effects:\n    jpeg_quality: [0, 90]\n", "camera.effects.jpeg_quality", "only as [0, 0]"),
    ("camera:\n  effects:\n    exposure_gain: [0.0, 2.0]\n", "camera.effects.exposure_gain", "must be >= 0.05"),
    ("camera:\n  effects:\n    vignetting: [0.5, 0.2]\n", "camera.effects.vignetting", "range low 0.5 > high 0.2"),
    ("camera:\n  pose:\n    distance_m: [1.0]\n", "camera.pose.distance_m", "expected 2 values"),
    ("table: 3\n", "table", "expected a mapping"),
])
def test_bad_values_name_file_and_field(tmp_path, text, field, message):
    p = tmp_path / "cell.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_cell_config(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: {field}"), msg
    assert message in msg


def test_malformed_yaml(tmp_path):
    p = tmp_path / "cell.yaml"
    p.write_text("camera: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"{p}: not valid YAML"):
        load_cell_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_cell_config(tmp_path / "none.yaml")


def test_a_file_extends_another_section_by_section(tmp_path):
    (tmp_path / "base.yaml").write_text("camera:\n  pose:\n    distance_m: [1.0, 2.0]\n    azimuth_deg: [-10, 10]\n"
                                        "sequence:\n  episode_frames: 45\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("extends: ../base.yaml\ncamera:\n  pose:\n    distance_m: [3.0, 4.0]\n")
    cfg = load_cell_config(tmp_path / "sub" / "child.yaml")
    assert cfg.camera.pose.distance_m == (3.0, 4.0)            # the child's value
    assert cfg.camera.pose.azimuth_deg == (-10.0, 10.0)        # the base's, same section
    assert cfg.sequence.episode_frames == 45                   # the base's, other section
    assert cfg.humans == CellConfig().humans                   # neither: the default
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_cell_config(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("extends: [a.yaml]\n")
    with pytest.raises(ConfigError, match="bad.yaml: extends: expected a file name"):
        load_cell_config(tmp_path / "bad.yaml")


def test_the_robot_pose_training_cell_is_the_robot_pose_cell_with_short_episodes():
    config_dir = Path(__file__).resolve().parents[1] / "config"
    train = load_cell_config(config_dir / "cell_robot_pose_train.yaml")
    held_out = load_cell_config(config_dir / "cell_robot_pose.yaml")
    assert train.sequence.episode_frames == 6 and held_out.sequence.episode_frames == 45
    assert train.camera == held_out.camera and train.robot == held_out.robot and train.humans == held_out.humans
