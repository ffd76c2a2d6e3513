"""A synthetic run: a config and a seed give a deterministic stream of frames.

Global frame index i belongs to episode i // episode_frames; every frame depends
only on (config, seed, i), so the same seed gives byte-identical output.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from hrc_perception.sim.config import CellConfig
from hrc_perception.sim.episode import Assets, Episode
from hrc_perception.sim.frame import Frame
from hrc_perception.sim.parts import load_parts
from hrc_perception.sim.renderer import Renderer
from hrc_perception.sim.robot import RobotModel


class SynthRun:
    """Frames of cfg with seed; config_dir resolves relative paths in cfg."""

    def __init__(self, cfg: CellConfig, seed: int, config_dir: Path | None = None):
        self.cfg, self.seed = cfg, int(seed)
        self.assets = Assets.build(RobotModel(cfg.robot, config_dir), load_parts(cfg.parts, config_dir))
        self.renderer = Renderer(cfg.camera.width, cfg.camera.height)
        self._episode: Episode | None = None

    @property
    def classes(self):
        return self.assets.classes

    def episode(self, index: int) -> Episode:
        """Episode `index` (the last one is cached: frames come in order)."""
        if self._episode is None or self._episode.index != index:
            n = self.cfg.sequence.episode_frames
            self._episode = Episode(self.cfg, self.assets, self.seed, index, index * n)
        return self._episode

    def frame(self, index: int) -> Frame:
        n = self.cfg.sequence.episode_frames
        return self.episode(index // n).frame(index % n, self.renderer)

    def frames(self, count: int, start: int = 0) -> Iterator[Frame]:
        for i in range(start, start + count):
            yield self.frame(i)
