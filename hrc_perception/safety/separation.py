"""ISO/TS 15066 speed and separation monitoring: the protective separation distance.

    S_p = S_h + S_r + S_s + C + Z_d + Z_r

S_h = v_h (T_r + T_s)   the person's approach while the robot reacts and stops
S_r = v_r T_r           the robot's travel during its reaction time
S_s = v_r T_s / 2       the robot's travel while braking (constant deceleration to rest
                        in T_s), unless a measured stopping distance is given
C                       intrusion distance (reach past the detected body)
Z_d, Z_r                position uncertainty of the person (the sensing) and the robot

v_h: the person's speed towards the robot (m/s; 1.6 m/s, the standard's value, when
not measured); v_r: the robot's speed towards the person (m/s). All distances in metres,
times in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

STANDARD_HUMAN_SPEED_MPS = 1.6
"""ISO/TS 15066 (after ISO 13855): the walking speed assumed when it is not measured."""


@dataclass(frozen=True)
class SeparationParams:
    """The cell's constants of the protective separation distance (see module doc)."""
    reaction_time_s: float = 0.1          # T_r: sensing + processing + controller reaction
    stopping_time_s: float = 0.3          # T_s: robot braking time from its current speed
    stopping_distance_m: float | None = None  # S_s measured for the robot; None: v_r T_s / 2
    intrusion_distance_m: float = 0.05    # C
    human_uncertainty_m: float = 0.10     # Z_d: the skeleton's position error
    robot_uncertainty_m: float = 0.05     # Z_r
    robot_max_speed_mps: float = 1.0      # the speed that speed_scale = 1 allows

    def __post_init__(self):
        for name in ("reaction_time_s", "stopping_time_s", "intrusion_distance_m", "human_uncertainty_m",
                     "robot_uncertainty_m"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.stopping_distance_m is not None and not self.stopping_distance_m >= 0.0:
            raise ValueError(f"stopping_distance_m must be >= 0 or None, got {self.stopping_distance_m}")
        if not self.robot_max_speed_mps > 0.0:
            raise ValueError(f"robot_max_speed_mps must be > 0, got {self.robot_max_speed_mps}")


@dataclass(frozen=True)
class SeparationTerms:
    """The terms of S_p (metres) and their sum."""
    human_m: float           # S_h
    robot_reaction_m: float  # S_r
    robot_stopping_m: float  # S_s
    constant_m: float        # C + Z_d + Z_r

    @property
    def total_m(self) -> float:
        return self.human_m + self.robot_reaction_m + self.robot_stopping_m + self.constant_m


def protective_separation(human_speed_mps: float, robot_speed_mps: float, p: SeparationParams) -> SeparationTerms:
    """S_p and its terms for a person approaching at human_speed_mps and a robot moving
    at robot_speed_mps (both >= 0; ValueError otherwise, NaN included)."""
    if not (human_speed_mps >= 0.0 and robot_speed_mps >= 0.0):
        raise ValueError(f"speeds must be >= 0 m/s, got human {human_speed_mps}, robot {robot_speed_mps}")
    t_r, t_s = p.reaction_time_s, p.stopping_time_s
    stopping = p.stopping_distance_m if p.stopping_distance_m is not None else 0.5 * robot_speed_mps * t_s
    return SeparationTerms(human_m=human_speed_mps * (t_r + t_s), robot_reaction_m=robot_speed_mps * t_r,
                           robot_stopping_m=stopping,
                           constant_m=p.intrusion_distance_m + p.human_uncertainty_m + p.robot_uncertainty_m)


def allowed_robot_speed(distance_m: float, human_speed_mps: float, p: SeparationParams) -> float:
    """The highest robot speed (m/s, >= 0) whose S_p does not exceed distance_m: the
    speed the controller may keep with a person at distance_m approaching at
    human_speed_mps. 0 when even a robot at rest is too close. With a fixed measured
    stopping distance S_s, that distance counts as a constant."""
    if not human_speed_mps >= 0.0:
        raise ValueError(f"human speed must be >= 0 m/s, got {human_speed_mps}")
    at_rest = protective_separation(human_speed_mps, 0.0, p).total_m
    slack = distance_m - at_rest
    per_mps = p.reaction_time_s + (0.5 * p.stopping_time_s if p.stopping_distance_m is None else 0.0)
    if not slack > 0.0:
        return 0.0
    return float("inf") if per_mps == 0.0 else slack / per_mps
