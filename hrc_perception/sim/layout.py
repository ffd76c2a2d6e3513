"""Where things stand in one episode of the cell (sampled once per episode)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CellLayout:
    """Static geometry of an episode, world frame (z up, metres).

    table_size_m: (x length, y width) of the table top, centred on the world origin.
    table_height_m: height of the table top above the floor.
    T_world_base: robot base pose [4, 4] (on the table top).
    reach_targets_m: [N, 3] points people reach towards (parts on the table, the
        robot's working area).
    floor_bounds_m: ((x_min, x_max), (y_min, y_max)) of the floor people walk on;
        a person outside it has left the cell.
    """
    table_size_m: tuple[float, float]
    table_height_m: float
    T_world_base: np.ndarray
    reach_targets_m: np.ndarray
    floor_bounds_m: tuple[tuple[float, float], tuple[float, float]] = ((-2.5, 3.5), (-3.0, 3.0))

    @property
    def table_x_m(self) -> tuple[float, float]:
        return (-self.table_size_m[0] / 2, self.table_size_m[0] / 2)

    @property
    def table_y_m(self) -> tuple[float, float]:
        return (-self.table_size_m[1] / 2, self.table_size_m[1] / 2)
