"""Robot pick-and-place scripts and the parts it moves, continuous in time.

The planner works once per episode: it picks parts lying on the table, carries
them to free spots and puts them down, now and then moving to a random free
configuration. The result is a joint trajectory (quintic segments between
waypoints, zero velocity at each) and, for each part, a piecewise track (resting
pose, or rigidly attached to the gripper link). World frame: z up, metres.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hrc_perception.geometry import invert_T, make_T, rot_x, rot_z
from hrc_perception.sim.robot import RobotModel

APPROACH_HEIGHT_M = 0.12      # pre-grasp / pre-place height above the grip pose
GRIP_DEPTH_M = 0.015          # how far below a part's top the fingers close
GRIPPER_OPEN_M = 0.04
DWELL_S = 0.4                 # time to close or open the gripper


def _quintic(s: float) -> float:
    """Time scaling with zero velocity and acceleration at s = 0 and 1."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


@dataclass
class JointTrajectory:
    """Waypoints times_s [N] (increasing) and q [N, D]; q_at interpolates."""
    times_s: list[float] = field(default_factory=list)
    q: list[np.ndarray] = field(default_factory=list)

    def add(self, t_s: float, q: np.ndarray) -> None:
        self.times_s.append(float(t_s))
        self.q.append(np.array(q, dtype=np.float64))

    def q_at(self, t_s: float) -> np.ndarray:
        """Joint positions [D] at time t_s (held constant outside the waypoints)."""
        ts = self.times_s
        if t_s <= ts[0]:
            return self.q[0].copy()
        if t_s >= ts[-1]:
            return self.q[-1].copy()
        k = int(np.searchsorted(ts, t_s, side="right")) - 1
        s = _quintic((t_s - ts[k]) / (ts[k + 1] - ts[k]))
        return self.q[k] + s * (self.q[k + 1] - self.q[k])


@dataclass
class PartTrack:
    """Where one part is over time: a list of phases (t_start_s, kind, T).

    kind 'rest': T = T_world_obj. kind 'carried': T = T_grip_obj (gripper link
    frame to object), valid until the next phase starts.
    """
    phases: list[tuple[float, str, np.ndarray]]

    def phase_at(self, t_s: float) -> tuple[str, np.ndarray]:
        k = 0
        for i, (t0, _, _) in enumerate(self.phases):
            if t_s >= t0:
                k = i
        return self.phases[k][1], self.phases[k][2]


@dataclass
class RobotScript:
    """A planned episode: the robot's trajectory and every part's track."""
    trajectory: JointTrajectory
    part_tracks: list[PartTrack]
    T_world_base: np.ndarray

    def part_pose(self, robot: RobotModel, t_s: float, index: int, q: np.ndarray | None = None) -> np.ndarray:
        """T_world_obj [4, 4] of part `index` at time t_s (q: the robot's joints then)."""
        kind, T = self.part_tracks[index].phase_at(t_s)
        if kind == "rest":
            return T
        if q is None:
            q = self.trajectory.q_at(t_s)
        return self.T_world_base @ robot.link_transform(q, robot.gripper_link) @ T


def _segment_duration(q_from: np.ndarray, q_to: np.ndarray, speed_rad_s: float) -> float:
    # A quintic peaks at 1.875x the mean speed: keep the peak under the limit.
    return max(0.4, 1.875 * float(np.max(np.abs(q_to - q_from))) / speed_rad_s)


def _grip_frame(T_world_obj: np.ndarray, top_height_m: float, yaw_rad: float) -> np.ndarray:
    """T_world_grip above a part: fingers down (gripper z = world -z), at the
    part's top minus GRIP_DEPTH_M, rotated yaw_rad about world z."""
    R = rot_z(yaw_rad) @ rot_x(np.pi)
    p = T_world_obj[:3, 3] + np.array([0.0, 0.0, max(top_height_m - GRIP_DEPTH_M, 0.005)])
    return make_T(R, p)


def _lifted(T: np.ndarray, dz_m: float) -> np.ndarray:
    out = T.copy()
    out[2, 3] += dz_m
    return out


def plan_robot_script(rng: np.random.Generator, robot: RobotModel, T_world_base: np.ndarray,
                      part_poses: list[np.ndarray], part_radii_m: list[float], part_tops_m: list[float],
                      table_z_m: float, area_x_m: tuple[float, float], area_y_m: tuple[float, float],
                      duration_s: float, speed_rad_s: float, margin_rad: float,
                      random_move_probability: float = 0.2) -> RobotScript:
    """Plan pick-and-place over [0, duration_s]; each move is, with probability
    random_move_probability (always when no part is left), to a random free configuration.

    part_poses: initial T_world_obj of each part (resting on the table).
    part_radii_m: footprint radius of each part (keeps put-down spots apart).
    part_tops_m: height of each part's top above its origin (in its resting pose).
    """
    T_base_world = invert_T(T_world_base)
    finger = ~robot.arm_joint_mask
    ready = np.zeros(robot.dof)
    ready[robot.arm_joint_mask] = [0.0, -0.6, 0.0, -2.2, 0.0, 1.7, 0.8][: int(robot.arm_joint_mask.sum())] \
        if robot.arm_joint_mask.sum() == 7 else 0.0
    q = robot.clip(ready + rng.normal(0.0, 0.25, robot.dof) * robot.arm_joint_mask, margin_rad)
    q[finger] = GRIPPER_OPEN_M
    traj = JointTrajectory()
    t = -float(rng.uniform(0.0, 3.0))          # start mid-motion, not always at rest
    traj.add(t, q)
    poses = [p.copy() for p in part_poses]
    tracks = [PartTrack([(-np.inf, "rest", p.copy())]) for p in part_poses]

    def move(q_to, slow=1.0):
        nonlocal t, q
        t += _segment_duration(q, q_to, speed_rad_s / slow)
        q = q_to
        traj.add(t, q)

    def ik(T_world_target, q_seed):
        return robot.solve_ik(T_base_world @ T_world_target, q_seed, margin_rad)

    failures = 0
    while t < duration_s and failures < 20:
        if not poses or rng.random() < random_move_probability:
            q_rand = robot.clip(rng.uniform(robot.lower, robot.upper), margin_rad)
            q_rand[finger] = q[finger]
            kp_z = robot.keypoints(q_rand, T_world_base)[:, 2]
            if np.all(kp_z[1:] > table_z_m + 0.15):
                move(q_rand)
            else:
                failures += 1
            continue
        i = int(rng.integers(len(poses)))
        yaw = float(rng.uniform(-np.pi / 2, np.pi / 2))
        T_grip = _grip_frame(poses[i], part_tops_m[i], yaw + np.arctan2(poses[i][1, 0], poses[i][0, 0]))
        q_pre = ik(_lifted(T_grip, APPROACH_HEIGHT_M), q)
        q_grip = ik(T_grip, q_pre) if q_pre is not None else None
        place = _free_spot(rng, poses, part_radii_m, i, area_x_m, area_y_m)
        if q_grip is None or place is None:
            failures += 1
            continue
        T_obj_place = make_T(rot_z(float(rng.uniform(-np.pi, np.pi))) @ poses[i][:3, :3],
                             np.array([place[0], place[1], poses[i][2, 3]]))
        T_grip_obj = invert_T(T_world_base @ robot.link_transform(q_grip, robot.gripper_link)) @ poses[i]
        T_place_grip = T_obj_place @ invert_T(T_grip_obj)
        q_pre_place = ik(_lifted(T_place_grip, APPROACH_HEIGHT_M), q_pre)
        q_place = ik(T_place_grip, q_pre_place) if q_pre_place is not None else None
        if q_place is None:
            failures += 1
            continue
        width = float(np.clip(part_radii_m[i] * 0.6, 0.0, GRIPPER_OPEN_M))
        move(q_pre)
        move(q_grip, slow=2.0)
        closed = q_grip.copy()
        closed[finger] = width
        t += DWELL_S
        q = closed
        traj.add(t, q)
        # Attach with the grip actually reached (IK is exact to ~1 mm).
        T_grip_obj = invert_T(T_world_base @ robot.link_transform(q_grip, robot.gripper_link)) @ poses[i]
        tracks[i].phases.append((t, "carried", T_grip_obj))
        lift = q_pre.copy()
        lift[finger] = width
        move(lift, slow=2.0)
        pre_place = q_pre_place.copy()
        pre_place[finger] = width
        move(pre_place)
        down = q_place.copy()
        down[finger] = width
        move(down, slow=2.0)
        T_rest = T_world_base @ robot.link_transform(down, robot.gripper_link) @ T_grip_obj
        tracks[i].phases.append((t, "rest", T_rest))
        poses[i] = T_rest
        opened = down.copy()
        opened[finger] = GRIPPER_OPEN_M
        t += DWELL_S
        q = opened
        traj.add(t, q)
        retreat = q_pre_place.copy()
        retreat[finger] = GRIPPER_OPEN_M
        move(retreat, slow=2.0)
    if traj.times_s[-1] < duration_s:
        traj.add(duration_s + 1.0, q)
    return RobotScript(traj, tracks, T_world_base)


def _free_spot(rng, poses, radii, moving, area_x, area_y, tries: int = 30):
    """A table position (x, y) for part `moving` clear of the other parts."""
    for _ in range(tries):
        x, y = rng.uniform(*area_x), rng.uniform(*area_y)
        ok = all(np.hypot(x - p[0, 3], y - p[1, 3]) > radii[moving] + radii[j] + 0.02
                 for j, p in enumerate(poses) if j != moving)
        if ok:
            return x, y
    return None
