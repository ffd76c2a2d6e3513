"""Shared fixtures: a small, fast version of the default cell."""
from pathlib import Path

import pytest

SMALL_CELL_YAML = """\
camera: {width: 320, height: 240, fx: 307.5, fy: 307.5, cx: 160.0, cy: 120.0}
sequence: {fps: 15.0, episode_frames: 5}
humans: {count: [2, 2]}
parts: {count: [3, 3]}
"""


@pytest.fixture(scope="session")
def small_cell_yaml(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "small_cell.yaml"
    p.write_text(SMALL_CELL_YAML)
    return p


@pytest.fixture(scope="session")
def small_run(small_cell_yaml):
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    return SynthRun(load_cell_config(small_cell_yaml), seed=3)


@pytest.fixture(scope="session")
def small_frames(small_run):
    """Two episodes of the small cell: frames 0..9."""
    return list(small_run.frames(10))
