"""Robot model: URDF forward kinematics against Franka's published DH table, IK, errors."""

import numpy as np
import pytest

from hrc_perception.geometry import make_T, rot_x, rot_z
from hrc_perception.sim.config import ConfigError, RobotConfig
from hrc_perception.sim.robot import RobotModel


@pytest.fixture(scope="module")
def panda():
    return RobotModel(RobotConfig(), load_meshes=False)


# Franka Emika Panda, Craig's modified DH: (a_{i-1}, d_i, alpha_{i-1}) for joints 1..7, then the flange.
PANDA_DH = [(0.0, 0.333, 0.0), (0.0, 0.0, -np.pi / 2), (0.0, 0.316, np.pi / 2), (0.0825, 0.0, np.pi / 2),
            (-0.0825, 0.384, -np.pi / 2), (0.0, 0.0, np.pi / 2), (0.088, 0.0, np.pi / 2)]
FLANGE_D = 0.107


def dh_chain(q7):
    """Link frames T_base_link{1..7} and the flange (link8) from the DH table."""
    T = np.eye(4)
    out = []
    for (a, d, alpha), theta in zip(PANDA_DH, q7):
        T = T @ make_T(rot_x(alpha), np.zeros(3)) @ make_T(np.eye(3), [a, 0, 0]) \
            @ make_T(rot_z(theta), np.zeros(3)) @ make_T(np.eye(3), [0, 0, d])
        out.append(T)
    out.append(T @ make_T(np.eye(3), [0, 0, FLANGE_D]))
    return out


def test_fk_matches_dh_table(panda):
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(panda.lower, panda.upper)
        T = panda.link_transforms(q)
        for k, T_dh in enumerate(dh_chain(q[:7]), start=1):
            np.testing.assert_allclose(T[f"panda_link{k}"], T_dh, atol=1e-9)


def test_known_poses(panda):
    # All zeros: flange straight up at (0.088, 0, 0.926).
    np.testing.assert_allclose(panda.link_transform(np.zeros(8), "panda_link8")[:3, 3], [0.088, 0, 0.926],
                               atol=1e-9)
    # Franka's "ready" pose: grasp point 0.307 m ahead, 0.4853 m up, fingers down.
    ready = np.array([0, -np.pi / 4, 0, -3 * np.pi / 4, 0, np.pi / 2, np.pi / 4, 0.04])
    T = panda.link_transform(ready, "panda_grasptarget")
    np.testing.assert_allclose(T[:3, 3], [0.307, 0.0, 0.4853], atol=1e-3)
    np.testing.assert_allclose(T[:3, 2], [0, 0, -1], atol=1e-6)


def test_keypoints_in_any_frame(panda):
    q = np.zeros(8)
    kp = panda.keypoints(q)
    assert kp.shape == (8, 3)
    np.testing.assert_allclose(kp[0], 0.0)
    np.testing.assert_allclose(kp[-1], panda.link_transform(q, "panda_grasptarget")[:3, 3])
    T_cam_base = make_T(rot_z(0.7) @ rot_x(2.0), np.array([0.1, -0.2, 2.5]))
    kp_cam = panda.keypoints(q, T_cam_base)
    np.testing.assert_allclose(kp_cam, kp @ T_cam_base[:3, :3].T + T_cam_base[:3, 3])


def test_ik_reaches_target_within_limits(panda):
    ready = np.array([0, -0.6, 0, -2.2, 0, 1.7, 0.8, 0.04])
    target = make_T(rot_z(0.4) @ rot_x(np.pi), np.array([0.45, -0.2, 0.08]))
    q = panda.solve_ik(target, ready)
    assert q is not None
    T = panda.link_transform(q, "panda_grasptarget")
    assert np.linalg.norm(T[:3, 3] - target[:3, 3]) < 1e-3
    assert np.all(q >= panda.lower) and np.all(q <= panda.upper)
    assert panda.solve_ik(make_T(np.eye(3), np.array([2.0, 0, 0])), ready) is None  # out of reach


def test_link_meshes_are_decimated():
    robot = RobotModel(RobotConfig())
    links = {lm.link for lm in robot.link_meshes}
    assert {"panda_link0", "panda_link3", "panda_hand"} <= links
    assert all(0 < len(lm.mesh.faces) <= 2500 for lm in robot.link_meshes)


def test_missing_urdf(tmp_path):
    with pytest.raises(ConfigError, match=r"robot.urdf: URDF file not found: .*nope.urdf"):
        RobotModel(RobotConfig(urdf=str(tmp_path / "nope.urdf")))


def test_malformed_urdf(tmp_path):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'></robot")
    with pytest.raises(ConfigError, match=r"robot.urdf: cannot parse URDF .*bad.urdf"):
        RobotModel(RobotConfig(urdf=str(bad)))


def _arm_urdf(tmp_path, mesh_filename: str):
    """A one-joint arm whose base link shows the given mesh file."""
    urdf = tmp_path / "arm.urdf"
    urdf.write_text(f"""<robot name="arm">
      <link name="base"><visual><geometry><mesh filename="{mesh_filename}"/></geometry></visual></link>
      <link name="tip"/>
      <joint name="j1" type="revolute"><parent link="base"/><child link="tip"/><axis xyz="0 0 1"/>
        <limit lower="-1" upper="1" effort="1" velocity="1"/></joint></robot>""")
    return RobotConfig(urdf=str(urdf), keypoints=("base", "tip"), gripper_link="tip")


def test_urdf_with_missing_mesh(tmp_path):
    cfg = _arm_urdf(tmp_path, "package://arm/meshes/gone.obj")
    with pytest.raises(ConfigError, match=r"mesh of link 'base' not found: .*gone.obj"):
        RobotModel(cfg)
    model = RobotModel(cfg, load_meshes=False)
    assert model.joint_names == ("j1",)


def test_unknown_keypoint_link():
    with pytest.raises(ConfigError, match=r"robot.keypoints: link 'panda_elbow' is not in panda.urdf"):
        RobotModel(RobotConfig(keypoints=("panda_link0", "panda_elbow")), load_meshes=False)


def test_own_fk_matches_yourdfpy(panda):
    """The model's forward kinematics agrees with the URDF parser's own (mimic joints too)."""
    rng = np.random.default_rng(3)
    for _ in range(10):
        q = rng.uniform(panda.lower, panda.upper)
        T = panda.link_transforms(q)
        panda._urdf.update_cfg(q)
        for link in panda.link_names:
            np.testing.assert_allclose(T[link], panda._urdf.get_transform(link, panda.base_link), atol=1e-9)


def test_urdf_with_corrupt_mesh(tmp_path):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "base.obj").write_bytes(b"\x00\x01garbage\xff" * 10)
    with pytest.raises(ConfigError, match=r"robot.urdf: .*base"):
        RobotModel(_arm_urdf(tmp_path, "meshes/base.obj"))
