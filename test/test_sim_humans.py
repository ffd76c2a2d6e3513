"""Unit tests of the human body model (sim/humans.py) and motion scripts (sim/human_motion.py)."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from hrc_perception.geometry import make_T
from hrc_perception.sim import humans as H
from hrc_perception.sim.config import HumansConfig
from hrc_perception.sim.human_motion import plan_human_script
from hrc_perception.sim.layout import CellLayout

CFG = HumansConfig()
NAMES = {n: i for i, n in enumerate(H.COCO17_NAMES)}
LIMB_BONES = [("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
              ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
              ("right_hip", "right_knee"), ("right_knee", "right_ankle")]


def make_layout() -> CellLayout:
    targets = np.array([[0.0, 0.2, 0.78], [0.3, -0.25, 0.78], [0.5, 0.0, 0.8], [-0.2, -0.3, 0.78]])
    return CellLayout((1.6, 0.9), 0.75, make_T(np.eye(3), np.array([-0.6, 0.0, 0.75])), targets)


LAYOUT = make_layout()


def shape_of(seed: int) -> H.BodyShape:
    return H.sample_body_shape(np.random.default_rng(seed), CFG)


def plan(seed: int, duration: float = 10.0, fall: float = 0.1, avoid=()):
    rng = np.random.default_rng(seed)
    shape = H.sample_body_shape(rng, CFG)
    cfg = HumansConfig(fall_probability=fall)
    return shape, plan_human_script(rng, shape, cfg, LAYOUT, duration, avoid_xy_m=avoid)


def sampled_joints(shape, script, hz: float = 100.0) -> np.ndarray:
    ts = np.arange(0.0, script.duration_s + 1e-9, 1.0 / hz)
    return np.array([H.joints_world(shape, script.pose_at(t)) for t in ts])


def world_meshes(shape, pose) -> list[trimesh.Trimesh]:
    transforms = H.segment_transforms(shape, pose)
    return [m.copy().apply_transform(T) for (_, m, _), T in zip(H.segment_meshes(shape), transforms)]


def footprint_distance(xy: np.ndarray) -> np.ndarray:
    """Distance [N] of points [N, 2] outside the table rectangle (0 inside)."""
    (x0, x1), (y0, y1) = LAYOUT.table_x_m, LAYOUT.table_y_m
    dx = np.maximum(np.maximum(x0 - xy[:, 0], xy[:, 0] - x1), 0.0)
    dy = np.maximum(np.maximum(y0 - xy[:, 1], xy[:, 1] - y1), 0.0)
    return np.hypot(dx, dy)


def test_neutral_pose_joints_feet_head_and_sides():
    for seed in range(5):
        shape = shape_of(seed)
        for yaw in (0.0, np.pi / 2):
            pose = H.HumanPose(root_xy_m=(1.4, -0.3), yaw_rad=yaw)
            j = H.joints_world(shape, pose)
            assert j.shape == (17, 3) and j.dtype == np.float64 and np.all(np.isfinite(j))
            for ankle in ("left_ankle", "right_ankle"):
                assert 0.05 <= j[NAMES[ankle], 2] <= 0.12
            meshes = world_meshes(shape, pose)
            head = meshes[H.SEGMENT_NAMES.index("head")]
            assert abs(head.vertices[:, 2].max() - shape.height_m) < 0.03 * shape.height_m
            assert min(m.vertices[:, 2].min() for m in meshes) == pytest.approx(0.0, abs=0.01)   # feet on the floor
            lateral = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
            root = np.array([1.4, -0.3, 0.0])
            for name, i in NAMES.items():
                if name.startswith("left_"):
                    assert (j[i] - root) @ lateral > 0.02
                    assert (j[NAMES["right_" + name[5:]]] - root) @ lateral < -0.02
            assert (j[NAMES["nose"]] - root) @ np.array([np.cos(yaw), np.sin(yaw), 0.0]) > 0.05   # faces forward


def test_meshes_and_transforms_match():
    shape = shape_of(1)
    meshes = H.segment_meshes(shape)
    assert [m[0] for m in meshes] == list(H.SEGMENT_NAMES)
    assert sum(len(m.faces) for _, m, _ in meshes) <= 3500
    Ts = H.segment_transforms(shape, H.HumanPose())
    assert len(Ts) == len(meshes) and all(T.shape == (4, 4) for T in Ts)
    for T in Ts:
        assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)


def test_bone_lengths_are_rigid():
    shape, script = plan(3, fall=1.0)
    poses = [script.pose_at(t) for t in np.linspace(0, script.duration_s, 150)]
    poses += [H.HumanPose(left_arm=H.ArmPose(wrist_target_m=(0.5, 0.3, 0.9)),
                          right_arm=H.ArmPose(wrist_target_m=(3.0, -1.0, 0.2), ik_weight=0.4),
                          torso_pitch_rad=0.7, left_leg=H.LegPose(0.5, 1.0), fall_angle_rad=0.3)]
    lengths = np.array([[np.linalg.norm(j[NAMES[a]] - j[NAMES[b]]) for a, b in LIMB_BONES]
                        for j in (H.joints_world(shape, p) for p in poses)])
    assert np.abs(lengths - lengths[0]).max() < 1e-9
    expected = [shape.upper_arm_length_m, shape.forearm_length_m] * 2 + [shape.thigh_length_m, shape.shank_length_m] * 2
    assert np.allclose(lengths[0], expected, atol=1e-12)


def test_joints_lie_inside_the_body():
    shape, script = plan(5, fall=1.0)
    poses = [H.HumanPose(),
             H.HumanPose(yaw_rad=1.0, torso_pitch_rad=0.6, left_arm=H.ArmPose(wrist_target_m=(0.6, 0.4, 0.8)),
                         head_yaw_rad=0.4, head_pitch_rad=0.3),
             H.HumanPose(torso_pitch_rad=1.3, left_leg=H.LegPose(0.6, 1.2), right_leg=H.LegPose(0.6, 1.2),
                         left_arm=H.ArmPose(1.1, 0.1, 0.6), right_arm=H.ArmPose(1.1, 0.1, 0.6)),
             H.HumanPose(fall_angle_rad=np.pi / 2, fall_direction_rad=2.0)]
    poses += [script.pose_at(t) for t in (0.0, 3.3, script.duration_s)]
    for pose in poses:
        j = H.joints_world(shape, pose)
        depth = np.max([trimesh.proximity.signed_distance(m, j) for m in world_meshes(shape, pose)], axis=0)
        assert np.all(depth > -0.02), [H.COCO17_NAMES[i] for i in np.flatnonzero(depth <= -0.02)]
        face = depth[:5]   # nose, eyes, ears: on the head surface, just inside
        assert np.all(face < 0.02)


def test_two_bone_ik_reaches_or_points():
    shape = shape_of(2)
    base = H.HumanPose(root_xy_m=(1.3, 0.0), yaw_rad=np.pi)
    shoulder = H.joints_world(shape, base)[NAMES["right_shoulder"]]
    reach = 0.9 * shape.arm_length_m
    target = shoulder + reach * np.array([-0.6, -0.3, -0.74]) / np.linalg.norm([-0.6, -0.3, -0.74])
    pose = H.HumanPose(root_xy_m=(1.3, 0.0), yaw_rad=np.pi, right_arm=H.ArmPose(wrist_target_m=tuple(target)))
    j = H.joints_world(shape, pose)
    assert np.linalg.norm(j[NAMES["right_wrist"]] - target) < 0.01
    assert j[NAMES["right_elbow"], 2] < 0.5 * (j[NAMES["right_shoulder"], 2] + target[2]) + 1e-6   # elbow down

    far = shoulder + 3.0 * np.array([-0.8, 0.1, -0.2])
    j = H.joints_world(shape, H.HumanPose(root_xy_m=(1.3, 0.0), yaw_rad=np.pi,
                                          right_arm=H.ArmPose(wrist_target_m=tuple(far))))
    s, e, w = j[NAMES["right_shoulder"]], j[NAMES["right_elbow"]], j[NAMES["right_wrist"]]
    direction = (far - s) / np.linalg.norm(far - s)
    assert (w - s) @ direction / np.linalg.norm(w - s) > 0.9999
    assert np.linalg.norm(w - s) == pytest.approx(shape.arm_length_m, abs=1e-3)
    assert (e - s) @ direction / np.linalg.norm(e - s) > 0.999


@pytest.mark.parametrize("seed", [0, 4, 11])
def test_script_is_continuous(seed):
    shape, script = plan(seed, fall=0.5)
    J = sampled_joints(shape, script)
    assert np.all(np.isfinite(J))
    assert np.linalg.norm(np.diff(J, axis=0), axis=2).max() < 0.1


def test_falling_script_is_continuous():
    shape, script = plan(7, fall=1.0)
    assert script.fall_time_s is not None
    J = sampled_joints(shape, script)
    assert np.linalg.norm(np.diff(J, axis=0), axis=2).max() < 0.1


def test_people_stay_off_the_table_and_vanish_when_out():
    exited = 0
    for seed in range(12):
        _, script = plan(seed, duration=25.0, fall=0.0)
        ts = np.arange(0.0, script.duration_s + 1e-9, 0.05)
        xy = np.array([script.pose_at(t).root_xy_m for t in ts])
        assert footprint_distance(xy).min() >= 0.15
        (bx0, bx1), (by0, by1) = LAYOUT.floor_bounds_m
        inside = (xy[:, 0] >= bx0) & (xy[:, 0] <= bx1) & (xy[:, 1] >= by0) & (xy[:, 1] <= by1)
        present = np.array([script.present_at(t) for t in ts])
        assert np.array_equal(present, inside)
        assert np.all(xy[inside, 0] > LAYOUT.table_x_m[0])     # never at the robot's -x end
        if any(name == "exit" for _, name in script.events) and not present[-1]:
            exited += 1
            assert present.any()
            last_in = np.flatnonzero(present).max()
            assert not present[last_in + 1:].any()      # once out, stays out
    assert exited >= 1


def test_fall_happens_only_when_asked():
    for seed in range(4):
        shape, script = plan(seed, fall=1.0)
        J = sampled_joints(shape, script, hz=20)
        hip_z = J[:, [NAMES["left_hip"], NAMES["right_hip"]], 2].mean(axis=1)
        assert script.fall_time_s is not None and hip_z.min() < 0.4
        assert hip_z[-1] < 0.4    # stays down
        shape, script = plan(seed, fall=0.0)
        J = sampled_joints(shape, script, hz=20)
        assert script.fall_time_s is None
        assert J[:, [NAMES["left_hip"], NAMES["right_hip"]], 2].mean(axis=1).min() > 0.45


def test_deterministic():
    s1, a = plan(21)
    s2, b = plan(21)
    _, c = plan(22)
    assert s1 == s2
    for t in np.linspace(0, 10, 23):
        assert a.pose_at(t) == b.pose_at(t)
        assert np.array_equal(H.joints_world(s1, a.pose_at(t)), H.joints_world(s2, b.pose_at(t)))
    assert any(not np.allclose(H.joints_world(s1, a.pose_at(t)), H.joints_world(s1, c.pose_at(t)))
               for t in np.linspace(0, 10, 23))


def test_people_keep_apart_at_their_spots():
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        spots = []
        for _ in range(3):
            shape = H.sample_body_shape(rng, CFG)
            script = plan_human_script(rng, shape, CFG, LAYOUT, 10.0, avoid_xy_m=list(spots))
            spots += script.standing_spots_xy_m
        d = [np.hypot(p[0] - q[0], p[1] - q[1]) for i, p in enumerate(spots) for q in spots[:i]]
        assert min(d) >= 0.7
        assert footprint_distance(np.array(spots)).min() >= 0.2


def test_people_reach_and_stand_at_their_spot():
    seed = next(s for s in range(30) if sum(n == "reach" for t, n in plan(s, fall=0.0)[1].events if t >= 0) >= 2)
    shape, script = plan(seed, fall=0.0)
    poses = [script.pose_at(t) for t in np.arange(0.0, 10.0, 0.05)]
    xy = np.array([p.root_xy_m for p in poses])
    assert np.linalg.norm(xy - np.array(script.standing_spot_xy_m), axis=1).min() < 1e-6
    reaching = [p for p in poses if max(p.left_arm.ik_weight, p.right_arm.ik_weight) > 0.999]
    assert reaching
    for pose in reaching[::5]:
        j = H.joints_world(shape, pose)
        for arm, wrist in ((pose.left_arm, "left_wrist"), (pose.right_arm, "right_wrist")):
            if arm.ik_weight > 0.999:
                s = j[NAMES[wrist.replace("wrist", "shoulder")]]
                if np.linalg.norm(np.array(arm.wrist_target_m) - s) < 0.99 * shape.arm_length_m:
                    assert np.linalg.norm(j[NAMES[wrist]] - arm.wrist_target_m) < 0.01


def test_body_shapes_vary():
    shapes = [shape_of(s) for s in range(10)]
    heights = [s.height_m for s in shapes]
    assert len(set(heights)) == 10
    assert all(CFG.height_m[0] <= h <= CFG.height_m[1] for h in heights)
    assert len({s.shirt.albedo for s in shapes}) == 10
    assert len({s.trousers.albedo for s in shapes}) == 10
    assert len({s.skin.albedo for s in shapes}) == 10
    ratios = np.array([[s.thigh_length_m / s.height_m, s.upper_arm_length_m / s.height_m] for s in shapes])
    assert np.ptp(ratios, axis=0).min() > 0.005
    for s in shapes:
        assert s.sleeve == (s.shirt if s.long_sleeves else s.skin)
        assert (s.torso != s.shirt) == s.hi_vis_vest


def scripted(name: str, seed: int, duration: float = 10.0, speed=(2.0, 2.0), avoid=()):
    rng = np.random.default_rng(seed)
    shape = H.sample_body_shape(rng, CFG)
    cfg = HumansConfig(script=name, walk_speed_m_s=speed)
    return shape, plan_human_script(rng, shape, cfg, LAYOUT, duration, avoid_xy_m=avoid)


def test_scripted_walker_comes_straight_at_the_robot_at_its_speed():
    base = LAYOUT.T_world_base[:2, 3]
    sides = set()
    for seed in range(6):
        shape, script = scripted("walk_at_robot", seed)
        ts = np.arange(0.0, script.duration_s, 1 / 30)
        xy = np.array([script.pose_at(t).root_xy_m for t in ts])
        assert not script.present_at(0.0) and script.present_at(script.duration_s)
        speed = np.linalg.norm(np.diff(xy, axis=0), axis=1) * 30
        assert 1.95 <= speed.max() <= 2.05
        d = np.linalg.norm(xy - base, axis=1)
        moving = speed > 0.1
        assert np.all(np.diff(d)[moving] < 0)          # every step while walking brings them nearer
        heading = (xy[1:] - xy[:-1])[moving]
        to_base = (base - xy[:-1])[moving]
        cos = np.sum(heading * to_base, axis=1) / np.linalg.norm(heading, axis=1) / np.linalg.norm(to_base, axis=1)
        assert cos.min() > 0.99                        # straight at the base
        assert d[-1] < 0.8 and footprint_distance(xy).min() >= 0.15
        sides.add(tuple(np.sign(np.round(xy[0] - base, 3))))
        assert script.fall_time_s is None
    assert len(sides) >= 2


def test_scripted_reacher_puts_a_hand_over_the_table_in_front_of_the_robot():
    base = LAYOUT.T_world_base[:3, 3]
    for seed in range(4):
        shape, script = scripted("reach_over_table", seed)
        J = sampled_joints(shape, script, hz=20)
        assert script.present_at(0.0)
        wrists = J[:, [NAMES["left_wrist"], NAMES["right_wrist"]]].reshape(-1, 3)
        over = footprint_distance(wrists[:, :2]) == 0
        assert over.mean() > 0.2                      # a hand over the table much of the time
        assert np.all(wrists[over, 2] > LAYOUT.table_height_m)
        assert np.linalg.norm(wrists[over] - base, axis=1).min() < 0.5
        root = np.array([script.pose_at(t).root_xy_m for t in np.arange(0, 10, 0.1)])
        assert np.ptp(root, axis=0).max() < 1e-9      # standing at one spot


def test_scripted_stand_still_does_not_move_and_people_keep_apart():
    shape, script = scripted("stand_still", 3, duration=30.0)
    J = sampled_joints(shape, script, hz=5)
    assert np.ptp(J, axis=0).max() < 1e-9
    assert np.linalg.norm(np.array(script.standing_spot_xy_m) - LAYOUT.T_world_base[:2, 3]) < 1.0
    _, other = scripted("stand_still", 4, avoid=[script.standing_spot_xy_m])
    assert np.hypot(*np.subtract(other.standing_spot_xy_m, script.standing_spot_xy_m)) >= 0.7


def test_the_head_has_a_face_a_nose_and_hair_at_the_back():
    """The head's nose stands out in front (a depth cue of where the person faces), its eyes
    are dark, its hair (when not bald) covers the back and not the face; the look is drawn
    without changing any other draw of the body."""
    shape = shape_of(1)
    if shape.hair_rgb is None:
        shape = next(s for s in (shape_of(k) for k in range(2, 40)) if s.hair_rgb is not None)
    mesh, colours = H.head_mesh(shape)
    v = np.asarray(mesh.vertices)
    rx = shape.head_radii_m[0]
    assert v[:, 0].max() > 1.08 * rx and v[:, 0].min() > -1.01 * rx        # in front only
    assert colours.shape == (len(v), 3) and np.isfinite(colours).all()
    front = v[:, 0] > 0.9 * rx
    back = v[:, 0] < -0.9 * rx
    assert np.allclose(colours[back], shape.hair_rgb)
    assert not np.allclose(colours[front], shape.hair_rgb)
    assert colours.sum(1).min() < 0.5 * np.sum(shape.skin.albedo)           # the eyes
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    look = H._look_rng(rng)
    assert rng.bit_generator.state == state                                 # the body's generator did not move
    assert look.random() == H._look_rng(np.random.default_rng(7)).random()  # and the look is reproducible
