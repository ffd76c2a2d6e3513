"""One episode of the cell: everything sampled at its start, then frames at any time.

An episode fixes the camera, lights, table, room, robot base, parts (classes,
materials, starting poses), people (bodies, motion scripts) and the robot's
pick-and-place plan, all drawn from one seed. ``Episode.frame(k)`` renders time
k / fps with exact ground truth; it depends only on (run seed, episode, k), so
frames can be made in any order with identical results.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hrc_perception.geometry import invert_T, look_at, make_K, make_T, project, rot_z, transform_points
from hrc_perception.sim import humans as hum
from hrc_perception.sim.camera_effects import apply_camera_effects, sample_camera_effects
from hrc_perception.sim.config import CellConfig
from hrc_perception.sim.depth_noise import sample_depth_noise_params, stereo_depth_mm
from hrc_perception.sim.environment import clutter_items, room_items, table_items
from hrc_perception.sim.frame import (CATEGORY_PART, CATEGORY_PERSON, CATEGORY_ROBOT, VIS_OCCLUDED,
                                      VIS_OUTSIDE, VIS_VISIBLE, ClassInfo, Frame, HumanGT, Instance,
                                      Keypoints, PartGT, RobotGT)
from hrc_perception.sim.human_motion import plan_human_script
from hrc_perception.sim.layout import CellLayout
from hrc_perception.sim.materials import Material, rich_material
from hrc_perception.sim.parts import PartModel, random_part_material
from hrc_perception.sim.renderer import Lighting, PointLight, Renderer, placed_item
from hrc_perception.sim.robot import RobotModel
from hrc_perception.sim.robot_motion import plan_robot_script

ROBOT_INSTANCE_ID = 1
# A keypoint is visible when a pixel next to its projection shows its own body no
# more than this far in front of the joint (joints lie inside limbs and links).
ROBOT_VISIBILITY_TOL_M = 0.12
HUMAN_VISIBILITY_TOL_M = 0.18
STAMP_ORIGIN_NS = 1_000_000_000
CLUTTER_STREAM = 7
"""Third word of the table clutter's seed sequence (seed, episode index, CLUTTER_STREAM)."""
APPEARANCE_STREAM = 8
"""Third word of the rich background materials' seed sequence."""
EFFECTS_STREAM = 9
"""Last word of the camera effects' seed sequences: (seed, episode index, EFFECTS_STREAM) for
the episode's camera, (seed, episode index, frame, EFFECTS_STREAM) for a frame's smear."""


@dataclass(frozen=True)
class Assets:
    """What every episode of a run shares: the robot model, part models, classes."""
    robot: RobotModel
    parts: list[PartModel]
    classes: list[ClassInfo]

    @staticmethod
    def build(robot: RobotModel, parts: list[PartModel]) -> "Assets":
        classes = [ClassInfo(1, robot.name, CATEGORY_ROBOT, tuple(robot.keypoint_links)),
                   ClassInfo(2, "person", CATEGORY_PERSON, tuple(hum.COCO17_NAMES))]
        classes += [ClassInfo(3 + i, p.name, CATEGORY_PART) for i, p in enumerate(parts)]
        return Assets(robot, parts, classes)

    def class_of(self, name: str) -> ClassInfo:
        return next(c for c in self.classes if c.name == name)


def stamp_ns(index: int, fps: float) -> int:
    """Header stamp of global frame `index` (frames are 1/fps apart, from t = 1 s)."""
    return STAMP_ORIGIN_NS + int(round(index * 1e9 / fps))


def keypoint_visibility(xyz_cam_m: np.ndarray, uv_px: np.ndarray, instance_id: int,
                        instance_mask: np.ndarray, depth_m: np.ndarray, tol_m: float) -> np.ndarray:
    """Visibility [J] int8 of joints xyz_cam_m [J, 3] projecting to uv_px [J, 2].

    VIS_OUTSIDE: behind the camera or outside the image. VIS_VISIBLE: a pixel in the
    3x3 neighbourhood of the projection shows this instance at a depth no more than
    tol_m in front of the joint. VIS_OCCLUDED otherwise.
    """
    h, w = instance_mask.shape
    vis = np.full(len(xyz_cam_m), VIS_OUTSIDE, dtype=np.int8)
    col = np.floor(uv_px[:, 0] + 0.5)
    row = np.floor(uv_px[:, 1] + 0.5)
    inside = (xyz_cam_m[:, 2] > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    for j in np.flatnonzero(inside):
        r, c = int(row[j]), int(col[j])
        m = instance_mask[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        d = depth_m[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        own = (m == instance_id) & (d >= xyz_cam_m[j, 2] - tol_m)
        vis[j] = VIS_VISIBLE if own.any() else VIS_OCCLUDED
    return vis


def _keypoints(names, xyz_world, T_cam_world, K, instance_id, out, tol) -> Keypoints:
    xyz_cam = transform_points(T_cam_world, xyz_world)
    uv = project(xyz_cam, K)
    vis = keypoint_visibility(xyz_cam, uv, instance_id, out.instance_mask, out.depth_m, tol)
    return Keypoints(tuple(names), xyz_cam, uv, vis)


def _robot_material(rng: np.random.Generator, link: str) -> Material:
    """Panda-like: white links, dark hand and joint caps; 15% of episodes another paint."""
    dark = any(k in link for k in ("hand", "finger", "link7", "link0"))
    if dark:
        albedo = np.full(3, rng.uniform(0.05, 0.3))
    else:
        albedo = np.full(3, rng.uniform(0.7, 0.95)) * rng.uniform(0.95, 1.05, 3)
    return Material(albedo=tuple(float(a) for a in np.clip(albedo, 0, 1)), specular=float(rng.uniform(0.1, 0.5)),
                    shininess=float(rng.uniform(10, 60)))


@dataclass
class SceneState:
    """The cell at one instant: time_s, robot joints q [D], T_base_link per link,
    part poses T_world_obj, people present as (instance_id, COCO-17 joints [17, 3]
    world), and the render items of everything that moves (robot, parts, people)."""
    time_s: float
    q: np.ndarray
    T_base_link: dict
    part_T_world: list
    humans: list
    items: list


class Episode:
    """A sampled episode of cfg, seeded by (seed, index)."""

    def __init__(self, cfg: CellConfig, assets: Assets, seed: int, index: int, first_frame_index: int):
        self.cfg, self.assets, self.seed, self.index = cfg, assets, seed, index
        self.first_frame_index = first_frame_index
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        cam = cfg.camera
        self.duration_s = cfg.sequence.episode_frames / cfg.sequence.fps

        jit = cam.intrinsics_jitter
        self.K = make_K(cam.fx * (1 + rng.uniform(-jit, jit)), cam.fy * (1 + rng.uniform(-jit, jit)),
                        cam.cx + cam.width * rng.uniform(-jit, jit) / 4,
                        cam.cy + cam.height * rng.uniform(-jit, jit) / 4)
        self.T_world_cam = self._sample_camera_pose(rng)
        self.T_cam_world = invert_T(self.T_world_cam)

        table_h = float(rng.uniform(*cfg.table.height_m))
        base_xy = np.array(cfg.robot.base_xy_m)
        self.T_world_base = make_T(rot_z(np.deg2rad(rng.uniform(*cfg.robot.base_yaw_deg))),
                                   np.array([base_xy[0], base_xy[1], table_h]))
        self.static_items = room_items(rng, cfg.table.size_m) + table_items(rng, cfg.table.size_m, table_h)

        robot = assets.robot
        self.robot_materials = [_robot_material(rng, lm.link) for lm in robot.link_meshes]

        # Parts: classes drawn with repeats, spread over the table without overlaps.
        n_parts = int(rng.integers(cfg.parts.count[0], cfg.parts.count[1] + 1)) if assets.parts else 0
        self.part_class = [int(rng.integers(len(assets.parts))) for _ in range(n_parts)]
        self.part_materials = [random_part_material(rng, assets.parts[c]) for c in self.part_class]
        radii = [0.5 * assets.parts[c].diameter_m for c in self.part_class]
        poses = self._place_parts(rng, radii, table_h)
        self.part_class = self.part_class[:len(poses)]
        radii = radii[:len(poses)]
        tops = [float(np.asarray(assets.parts[c].mesh.vertices)[:, 2].max()) for c in self.part_class]
        self.robot_script = plan_robot_script(
            rng, robot, self.T_world_base, poses, radii, tops, table_h, cfg.parts.area_x_m, cfg.parts.area_y_m,
            self.duration_s, cfg.robot.max_joint_speed_rad_s, cfg.robot.joint_limit_margin_rad,
            cfg.robot.random_move_probability)

        cc = cfg.clutter
        if cc.count[1] > 0:   # its own generator: the draws above and below stay as without clutter
            crng = np.random.default_rng(np.random.SeedSequence([seed, index, CLUTTER_STREAM]))
            margin = 0.1
            self.static_items = self.static_items + clutter_items(
                crng, int(crng.integers(cc.count[0], cc.count[1] + 1)), cc.size_m,
                (cfg.parts.area_x_m[0] - margin, cfg.parts.area_x_m[1] + margin),
                (cfg.parts.area_y_m[0] - margin, cfg.parts.area_y_m[1] + margin), table_h,
                [(float(p[0, 3]), float(p[1, 3]), r) for p, r in zip(poses, radii)])

        if cfg.appearance.background_materials == "rich":   # own generator: the layout stays as with basic
            arng = np.random.default_rng(np.random.SeedSequence([seed, index, APPEARANCE_STREAM]))
            self.static_items = [replace(it, material=rich_material(arng)) for it in self.static_items]

        targets = [p[:3, 3] for p in poses] + [transform_points(self.T_world_base, np.array([0.4, s, 0.2]))
                                              for s in (-0.2, 0.2)]
        self.layout = CellLayout(cfg.table.size_m, table_h, self.T_world_base, np.array(targets))

        n_humans = int(rng.integers(cfg.humans.count[0], cfg.humans.count[1] + 1))
        self.human_shapes, self.human_scripts, self.human_meshes = [], [], []
        spots: list[tuple[float, float]] = []
        for _ in range(n_humans):
            shape = hum.sample_body_shape(rng, cfg.humans)
            script = plan_human_script(rng, shape, cfg.humans, self.layout, self.duration_s, avoid_xy_m=spots)
            spots.append(tuple(script.standing_spot_xy_m))
            self.human_shapes.append(shape)
            self.human_scripts.append(script)
            self.human_meshes.append(hum.segment_meshes(shape))

        # Instance ids: robot 1, parts 2.., people after the parts; fixed for the episode.
        self.part_ids = [ROBOT_INSTANCE_ID + 1 + i for i in range(len(self.part_class))]
        self.human_ids = [ROBOT_INSTANCE_ID + 1 + len(self.part_class) + i for i in range(n_humans)]

        self.lighting = self._sample_lighting(rng)
        self.noise_params = sample_depth_noise_params(cam.depth_noise, rng)
        self.camera_effects = sample_camera_effects(
            cam.effects, np.random.default_rng(np.random.SeedSequence([seed, index, EFFECTS_STREAM])))

    # -- sampling ---------------------------------------------------------------
    def _sample_camera_pose(self, rng) -> np.ndarray:
        p = self.cfg.camera.pose
        target = np.array(p.look_at_m) + rng.uniform(-1, 1, 3) * np.array(p.look_at_jitter_m)
        az = np.deg2rad(rng.uniform(*p.azimuth_deg))
        el = np.deg2rad(rng.uniform(*p.elevation_deg))
        dist = rng.uniform(*p.distance_m)
        direction = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
        return look_at(target + dist * direction, target, roll_rad=np.deg2rad(rng.uniform(*p.roll_deg)))

    def _place_parts(self, rng, radii, table_h) -> list[np.ndarray]:
        pc = self.cfg.parts
        poses: list[np.ndarray] = []
        for k, c in enumerate(self.part_class):
            for _ in range(40):
                x, y = rng.uniform(*pc.area_x_m), rng.uniform(*pc.area_y_m)
                if all(np.hypot(x - q[0, 3], y - q[1, 3]) > radii[k] + radii[j] + pc.gap_m
                       for j, q in enumerate(poses)):
                    z = table_h + self.assets.parts[c].rest_height_m
                    poses.append(make_T(rot_z(rng.uniform(-np.pi, np.pi)), np.array([x, y, z])))
                    break
            else:
                break  # table full: fewer parts this episode
        return poses

    def _sample_lighting(self, rng) -> Lighting:
        li = self.cfg.lighting
        lights = []
        for _ in range(int(rng.integers(li.count[0], li.count[1] + 1))):
            pos = np.array([rng.uniform(-2.5, 2.5), rng.uniform(-2.5, 2.5), rng.uniform(*li.height_m)])
            warm = rng.uniform(-0.15, 0.15)
            lights.append(PointLight(pos, float(rng.uniform(*li.intensity)), np.array([1 + warm, 1.0, 1 - warm])))
        ambient = float(rng.uniform(*li.ambient))
        # auto-exposure: a white surface facing the lights lands around mid to high grey
        exposure = float(rng.uniform(0.55, 0.95)) / (ambient + 0.6 * sum(light.intensity for light in lights))
        return Lighting(tuple(lights), ambient=ambient, exposure=exposure,
                        white_balance=rng.uniform(0.9, 1.1, 3).astype(np.float32),
                        noise_sigma=float(rng.uniform(0.5, 4.0)),
                        background_rgb=rng.uniform(0.0, 0.3, 3).astype(np.float32))

    # -- per frame --------------------------------------------------------------
    def instances(self, present_human_ids: set[int]) -> list[Instance]:
        """The robot, every part and the people present (by instance id)."""
        a = self.assets
        robot_cls = a.classes[0]
        out = [Instance(ROBOT_INSTANCE_ID, CATEGORY_ROBOT, robot_cls.name, robot_cls.class_id)]
        for iid, c in zip(self.part_ids, self.part_class):
            cls = a.class_of(a.parts[c].name)
            out.append(Instance(iid, CATEGORY_PART, cls.name, cls.class_id))
        out += [Instance(iid, CATEGORY_PERSON, "person", 2) for iid in self.human_ids if iid in present_human_ids]
        return out

    def scene(self, k: int) -> "SceneState":
        """Where everything is at frame k (0-based within the episode), and its render items."""
        t = k / self.cfg.sequence.fps
        robot = self.assets.robot
        q = self.robot_script.trajectory.q_at(t)
        T_base_link = robot.link_transforms(q)
        items = []
        for lm, mat in zip(robot.link_meshes, self.robot_materials):
            items.append(placed_item(lm.mesh, self.T_world_base @ T_base_link[lm.link], ROBOT_INSTANCE_ID, mat))
        T_world_grip = self.T_world_base @ T_base_link[robot.gripper_link]
        part_T_world = []
        for i, (c, iid, mat) in enumerate(zip(self.part_class, self.part_ids, self.part_materials)):
            kind, T = self.robot_script.part_tracks[i].phase_at(t)
            T_world_obj = T if kind == "rest" else T_world_grip @ T
            part_T_world.append(T_world_obj)
            items.append(placed_item(self.assets.parts[c].mesh, T_world_obj, iid, mat))
        humans = []
        for shape, script, meshes, iid in zip(self.human_shapes, self.human_scripts, self.human_meshes,
                                              self.human_ids):
            if not script.present_at(t):
                continue
            T_world_segments, joints = hum.pose_kinematics(shape, script.pose_at(t))
            for (_, mesh, mat), T_ws in zip(meshes, T_world_segments):
                items.append(placed_item(mesh, T_ws, iid, mat))
            humans.append((iid, joints))
        return SceneState(t, q, T_base_link, part_T_world, humans, items)

    def render_items(self, k: int) -> list:
        """Everything to render at frame k: the still background and the moving items."""
        return self.static_items + self.scene(k).items

    def frame(self, k: int, renderer: Renderer, people: bool = True) -> Frame:
        """Render frame k (0-based within the episode) with ground truth; people=False: the
        same instant with nobody in the cell (the robot and parts as they are; what a
        recording of the empty cell would see)."""
        st = self.scene(k)
        if not people:
            gone = set(self.human_ids)
            st = replace(st, humans=[], items=[it for it in st.items if it.instance_id not in gone])
        robot, cam = self.assets.robot, self.cfg.camera
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.index, k, 1 if people else 2]))
        out = renderer.render((self.seed, self.index), self.static_items, st.items, self.K, self.T_world_cam,
                              self.lighting, rng)
        depth_mm = stereo_depth_mm(out.depth_m, out.cos_incidence, float(self.K[0, 0]), cam.baseline_m,
                                   cam.depth_range_m, self.noise_params, rng)
        robot_kp_world = transform_points(self.T_world_base, np.stack(
            [st.T_base_link[link][:3, 3] for link in robot.keypoint_links]))
        robot_gt = RobotGT(ROBOT_INSTANCE_ID, robot.name, robot.joint_names, st.q,
                           self.T_cam_world @ self.T_world_base,
                           _keypoints(robot.keypoint_links, robot_kp_world, self.T_cam_world, self.K,
                                      ROBOT_INSTANCE_ID, out, ROBOT_VISIBILITY_TOL_M))
        parts_gt = [PartGT(iid, self.assets.parts[c].name, self.T_cam_world @ T)
                    for iid, c, T in zip(self.part_ids, self.part_class, st.part_T_world)]
        humans_gt = [HumanGT(iid, _keypoints(hum.COCO17_NAMES, joints, self.T_cam_world, self.K, iid, out,
                                             HUMAN_VISIBILITY_TOL_M)) for iid, joints in st.humans]
        index = self.first_frame_index + k
        rgb = out.rgb
        if self.camera_effects.active:
            rgb = apply_camera_effects(rgb, self.camera_effects, np.random.default_rng(
                np.random.SeedSequence([self.seed, self.index, k, EFFECTS_STREAM])))
        return Frame(
            episode=self.index, index=index, time_s=st.time_s, stamp_ns=stamp_ns(index, self.cfg.sequence.fps),
            rgb=rgb, depth_mm=depth_mm, depth_clean_m=out.depth_m, instance_mask=out.instance_mask,
            K=self.K.copy(), T_world_cam=self.T_world_cam.copy(),
            instances=self.instances({iid for iid, _ in st.humans}),
            robot=robot_gt, parts=parts_gt, humans=humans_gt)
