"""Robot pick-and-place plans: within limits, continuous, parts carried and put down on the table."""
import numpy as np
import pytest

from hrc_perception.geometry import make_T, rot_z
from hrc_perception.sim.config import RobotConfig
from hrc_perception.sim.parts import procedural_part
from hrc_perception.sim.robot import RobotModel
from hrc_perception.sim.robot_motion import plan_robot_script

TABLE_Z = 0.75


@pytest.fixture(scope="module")
def plan():
    robot = RobotModel(RobotConfig(), load_meshes=False)
    T_world_base = make_T(rot_z(0.05), np.array([-0.6, 0.0, TABLE_Z]))
    names = ["gear", "bolt", "housing", "pipe"]
    parts = [procedural_part(n) for n in names]
    xy = [(-0.3, -0.2), (-0.2, 0.2), (0.0, -0.1), (0.05, 0.2)]
    poses = [make_T(rot_z(0.3 * k), np.array([x, y, TABLE_Z + p.rest_height_m]))
             for k, ((x, y), p) in enumerate(zip(xy, parts))]
    script = plan_robot_script(np.random.default_rng(4), robot, T_world_base, poses,
                               [p.diameter_m / 2 for p in parts],
                               [float(p.mesh.vertices[:, 2].max()) for p in parts],
                               TABLE_Z, (-0.35, 0.15), (-0.3, 0.3), duration_s=30.0, speed_rad_s=1.0,
                               margin_rad=0.1)
    return robot, script, parts


def test_trajectory_within_limits_and_smooth(plan):
    robot, script, _ = plan
    ts = np.arange(0.0, 30.0, 0.01)
    q = np.array([script.trajectory.q_at(t) for t in ts])
    assert np.all(q >= robot.lower - 1e-9) and np.all(q <= robot.upper + 1e-9)
    speed = np.abs(np.diff(q[:, robot.arm_joint_mask], axis=0)) / 0.01
    assert speed.max() <= 1.0 + 1e-6          # the configured joint speed limit
    assert speed.max() > 0.3                  # and it moves


def test_parts_are_picked_carried_and_put_down(plan):
    robot, script, parts = plan
    carried = [k for k, track in enumerate(script.part_tracks) if any(ph[1] == "carried" for ph in track.phases)]
    assert len(carried) >= 2
    for k in carried:
        for t0, kind, _ in script.part_tracks[k].phases[1:]:
            before = script.part_pose(robot, t0 - 1e-6, k)
            after = script.part_pose(robot, t0 + 1e-6, k)
            np.testing.assert_allclose(before[:3, 3], after[:3, 3], atol=2e-3)   # no jump at grasp/release
            if kind == "rest":   # put down upright on the table, where it belongs
                assert after[2, 3] == pytest.approx(TABLE_Z + parts[k].rest_height_m, abs=3e-3)
                assert after[2, 2] > np.cos(np.deg2rad(3))
        # while carried the part follows the gripper: it leaves the table
        carry = [(t0, t1) for (t0, kind, _), (t1, _, _) in zip(script.part_tracks[k].phases,
                                                             script.part_tracks[k].phases[1:]) if kind == "carried"]
        t0, t1 = carry[0]
        mid = script.part_pose(robot, 0.5 * (t0 + t1), k)
        assert mid[2, 3] > TABLE_Z + parts[k].rest_height_m + 0.03


def test_gripper_stays_above_the_table(plan):
    robot, script, _ = plan
    for t in np.arange(0.0, 30.0, 0.1):
        T = script.T_world_base @ robot.link_transform(script.trajectory.q_at(t), robot.gripper_link)
        assert T[2, 3] > TABLE_Z - 0.005
