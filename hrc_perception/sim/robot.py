"""The robot arm: URDF loading (yourdfpy), forward kinematics, render meshes, IK.

Frames: ``base`` is the URDF's root link (for the Panda ``panda_link0``). All
transforms here are ``T_base_<link>`` unless named otherwise; metres, radians.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import trimesh
import yourdfpy

from hrc_perception.geometry import make_T, rotation_about_axis
from hrc_perception.sim.config import ConfigError, RobotConfig

PYBULLET_DATA_SCHEME = "pybullet_data://"
MAX_FACES_PER_LINK = 1000


def resolve_urdf_path(uri: str, config_dir: Path | None = None) -> Path:
    """File path of a URDF given as a path (relative to config_dir) or as
    ``pybullet_data://<relative path>`` (the data the pybullet package ships)."""
    if uri.startswith(PYBULLET_DATA_SCHEME):
        try:
            import pybullet_data
        except ImportError:
            raise ConfigError(f"robot.urdf: {uri} needs the 'pybullet' package (pip install pybullet)") from None
        return Path(pybullet_data.getDataPath()) / uri[len(PYBULLET_DATA_SCHEME):]
    path = Path(uri).expanduser()
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    return path


def _mesh_file(urdf_dir: Path, filename: str) -> Path:
    """Resolve a URDF mesh reference: plain relative path or ``package://pkg/rel``.

    For ``package://`` the first candidate under urdf_dir (or its parents) that
    exists wins, trying the path with and without its first component.
    """
    if not filename.startswith("package://"):
        p = Path(filename)
        return p if p.is_absolute() else urdf_dir / p
    rel = filename[len("package://"):]
    parts = Path(rel).parts
    candidates = [Path(rel)] + ([Path(*parts[1:])] if len(parts) > 1 else [])
    for base in [urdf_dir, *urdf_dir.parents][:4]:
        for c in candidates:
            if (base / c).exists():
                return base / c
    return urdf_dir / candidates[0]


def _decimate(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """Quadric decimation (open3d) of a mesh with more than max_faces faces."""
    if len(mesh.faces) <= max_faces:
        return mesh
    import open3d as o3d
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(mesh.vertices)),
                                  o3d.utility.Vector3iVector(np.asarray(mesh.faces)))
    m = m.merge_close_vertices(1e-6).simplify_quadric_decimation(max_faces)
    m.remove_unreferenced_vertices()
    return trimesh.Trimesh(np.asarray(m.vertices), np.asarray(m.triangles), process=False)


@dataclass(frozen=True)
class _Joint:
    """A URDF joint for forward kinematics: T_parent_child = origin @ motion(value),
    value = q[q_index] (actuated), or multiplier * q[q_index] + offset (mimic), or
    none (fixed, q_index -1)."""
    name: str
    kind: str
    parent: str
    child: str
    origin: np.ndarray
    axis: np.ndarray
    q_index: int
    multiplier: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class LinkMesh:
    """A link's render mesh in the link frame (visual origin applied), metres."""
    link: str
    mesh: trimesh.Trimesh


class RobotModel:
    """A URDF robot: joints, limits, forward kinematics, link meshes.

    joint_names: the actuated joints, URDF order; lower / upper: their limits [D].
    keypoint_links: links whose frame origins are the skeleton joints.
    """

    def __init__(self, cfg: RobotConfig, config_dir: Path | None = None, load_meshes: bool = True):
        path = resolve_urdf_path(cfg.urdf, config_dir)
        if not path.is_file():
            raise ConfigError(f"robot.urdf: URDF file not found: {path}")
        urdf_dir = path.parent
        try:  # yourdfpy silently recovers from broken XML: check it strictly first
            ElementTree.parse(path)
        except ElementTree.ParseError as e:
            raise ConfigError(f"robot.urdf: cannot parse URDF {path}: not well-formed XML ({e})") from None
        try:
            self._urdf = yourdfpy.URDF.load(
                str(path), load_meshes=False, build_scene_graph=True,
                filename_handler=lambda f: str(_mesh_file(urdf_dir, f)))
        except Exception as e:  # yourdfpy raises lxml, KeyError, ValueError ... on malformed files
            raise ConfigError(f"robot.urdf: cannot parse URDF {path}: {type(e).__name__}: {e}") from None
        self.name = cfg.name
        self.path = path
        self.base_link = self._urdf.base_link
        self.link_names = tuple(self._urdf.link_map)
        self.joint_names = tuple(self._urdf.actuated_joint_names)
        if not self.joint_names:
            raise ConfigError(f"robot.urdf: {path} has no movable joints")
        limits = [self._urdf.joint_map[j].limit for j in self.joint_names]
        self.lower = np.array([lim.lower if lim is not None and lim.lower is not None else -np.pi for lim in limits])
        self.upper = np.array([lim.upper if lim is not None and lim.upper is not None else np.pi for lim in limits])
        for field_name, links in (("robot.keypoints", cfg.keypoints), ("robot.gripper_link", (cfg.gripper_link,))):
            for link in links:
                if link not in self._urdf.link_map:
                    raise ConfigError(f"{field_name}: link {link!r} is not in {path.name} "
                                      f"(links: {', '.join(self.link_names)})")
        self.keypoint_links = tuple(cfg.keypoints)
        self.gripper_link = cfg.gripper_link
        # Arm joints: revolute/continuous joints that move the gripper (fingers excluded).
        self.arm_joint_mask = np.array([self._urdf.joint_map[j].type in ("revolute", "continuous")
                                        for j in self.joint_names])
        self._chain = self._joint_chain()
        self.link_meshes = self._load_link_meshes(path) if load_meshes else ()

    def _joint_chain(self) -> tuple[_Joint, ...]:
        """Joints in parent-before-child order, from the parsed URDF."""
        index = {name: k for k, name in enumerate(self.joint_names)}
        by_parent: dict[str, list] = {}
        for j in self._urdf.robot.joints:
            by_parent.setdefault(j.parent, []).append(j)
        chain, todo = [], [self.base_link]
        while todo:
            for j in by_parent.get(todo.pop(0), []):
                origin = np.eye(4) if j.origin is None else np.asarray(j.origin, dtype=np.float64)
                axis = np.array([1.0, 0, 0]) if j.axis is None else np.asarray(j.axis, dtype=np.float64)
                if j.type == "fixed":
                    chain.append(_Joint(j.name, "fixed", j.parent, j.child, origin, axis, -1))
                elif j.mimic is not None:
                    chain.append(_Joint(j.name, j.type, j.parent, j.child, origin, axis, index[j.mimic.joint],
                                        float(j.mimic.multiplier or 1.0), float(j.mimic.offset or 0.0)))
                else:
                    chain.append(_Joint(j.name, j.type, j.parent, j.child, origin, axis, index[j.name]))
                todo.append(j.child)
        return tuple(chain)

    def _load_link_meshes(self, urdf_path: Path) -> tuple[LinkMesh, ...]:
        out = []
        for link_name, link in self._urdf.link_map.items():
            for visual in link.visuals:
                geom = visual.geometry
                if geom.mesh is not None:
                    f = Path(self._urdf._filename_handler(geom.mesh.filename))
                    if not f.is_file():
                        raise ConfigError(f"robot.urdf: mesh of link {link_name!r} not found: {f} "
                                          f"(referenced by {urdf_path})")
                    try:
                        mesh = trimesh.load(str(f), force="mesh", process=False)
                    except Exception as e:
                        raise ConfigError(f"robot.urdf: cannot read mesh {f}: {e}") from None
                    if geom.mesh.scale is not None:
                        mesh.apply_scale(geom.mesh.scale)
                elif geom.box is not None:
                    mesh = trimesh.creation.box(geom.box.size)
                elif geom.cylinder is not None:
                    mesh = trimesh.creation.cylinder(geom.cylinder.radius, geom.cylinder.length, sections=24)
                elif geom.sphere is not None:
                    mesh = trimesh.creation.icosphere(2, geom.sphere.radius)
                else:
                    continue
                if len(mesh.faces) == 0 or not np.isfinite(mesh.vertices).all():
                    raise ConfigError(f"robot.urdf: mesh of link {link_name!r} is empty or not finite")
                mesh = _decimate(mesh, MAX_FACES_PER_LINK)
                if visual.origin is not None:
                    mesh.apply_transform(visual.origin)
                out.append(LinkMesh(link_name, mesh))
        return tuple(out)

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    def clip(self, q: np.ndarray, margin_rad: float = 0.0) -> np.ndarray:
        """q [D] clipped into the joint limits, shrunk by margin_rad where a joint's
        range is wide enough (a gripper's few centimetres are not shrunk)."""
        m = np.where(self.upper - self.lower > 4 * margin_rad, margin_rad, 0.0)
        return np.clip(q, self.lower + m, self.upper - m)

    def link_transforms(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """T_base_link [4, 4] of every link at joint positions q [D]."""
        T = {self.base_link: np.eye(4)}
        for j in self._chain:
            T_joint = T[j.parent] @ j.origin
            if j.q_index >= 0:
                value = j.multiplier * q[j.q_index] + j.offset
                if j.kind == "prismatic":
                    T_joint = T_joint @ make_T(np.eye(3), j.axis * value)
                else:
                    T_joint = T_joint @ make_T(rotation_about_axis(j.axis, value), np.zeros(3))
            T[j.child] = T_joint
        return T

    def link_transform(self, q: np.ndarray, link: str) -> np.ndarray:
        """T_base_link [4, 4] of one link at joint positions q [D]."""
        return self.link_transforms(q)[link]

    def keypoints(self, q: np.ndarray, T_frame_base: np.ndarray | None = None) -> np.ndarray:
        """Keypoint link origins [J, 3], metres, in the base frame or, given
        T_frame_base [4, 4], in that frame (e.g. T_world_base, T_cam_base)."""
        T = self.link_transforms(q)
        p = np.stack([T[link][:3, 3] for link in self.keypoint_links])
        return p if T_frame_base is None else p @ T_frame_base[:3, :3].T + T_frame_base[:3, 3]

    def solve_ik(self, T_base_target: np.ndarray, q_start: np.ndarray, margin_rad: float = 0.05,
                 iterations: int = 100, tol_m: float = 1e-3) -> np.ndarray | None:
        """Arm joints that put the gripper link at T_base_target [4, 4] (position and
        orientation), or None if not reached within tol_m and 3 degrees.

        Damped least squares on the geometric Jacobian of the arm's revolute joints,
        from q_start [D], inside the limits shrunk by margin_rad.
        """
        q = self.clip(np.array(q_start, dtype=np.float64), margin_rad)
        arm = [j for j in self._chain if j.q_index >= 0 and self.arm_joint_mask[j.q_index]
               and j.multiplier == 1.0 and j.kind in ("revolute", "continuous")]
        cols = np.array([j.q_index for j in arm])
        R_t, p_t = T_base_target[:3, :3], T_base_target[:3, 3]
        rot_weight = 0.3
        for _ in range(iterations):
            T = self.link_transforms(q)
            T_g = T[self.gripper_link]
            e_pos = p_t - T_g[:3, 3]
            e_rot = 0.5 * sum(np.cross(T_g[:3, k], R_t[:, k]) for k in range(3))
            if np.linalg.norm(e_pos) < 0.3 * tol_m and np.linalg.norm(e_rot) < np.deg2rad(0.5):
                break
            J = np.empty((6, len(arm)))
            for c, j in enumerate(arm):
                T_j = T[j.parent] @ j.origin
                a = T_j[:3, :3] @ j.axis
                J[:3, c] = np.cross(a, T_g[:3, 3] - T_j[:3, 3])
                J[3:, c] = rot_weight * a
            e = np.concatenate([e_pos, rot_weight * e_rot])
            step = J.T @ np.linalg.solve(J @ J.T + 1e-4 * np.eye(6), e)
            q[cols] += np.clip(step, -0.3, 0.3)
            q = self.clip(q, margin_rad)
        T_g = self.link_transform(q, self.gripper_link)
        if np.linalg.norm(T_g[:3, 3] - p_t) > tol_m:
            return None
        if np.trace(T_g[:3, :3].T @ R_t) < 1.0 + 2.0 * np.cos(np.deg2rad(3.0)):
            return None
        return q
