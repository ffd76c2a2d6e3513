"""Articulated human body for the synthetic cell: shape, skeleton and meshes.

Frames (right-handed; metres, radians):

* world: z up, origin on the floor under the table centre.
* body ("root"): origin on the floor between the feet, x forward (where the person
  faces), y to the person's left, z up. ``HumanPose.root_xy_m`` and ``yaw_rad``
  place it in the world; ``fall_angle_rad`` then tips it about a horizontal axis
  through the feet (0 upright, pi/2 lying on the floor).
* segment frames: origin at the segment's proximal joint. Limbs (upper arm,
  forearm, hand, thigh, shank) hang along -z; torso and neck rise along +z from the
  hip centre and the shoulder line; the head frame sits on top of the neck, x
  forward; a foot frame sits at the ankle, level with the body frame.

Positive shoulder or hip flexion swings the limb forward (-z towards +x, a rotation
about the limb frame's y axis), elbow flexion bends the forearm forward and knee
flexion bends the shank backward. The pelvis height follows from the legs: the
lower ankle always sits ``ankle_height_m`` above the body frame's floor, which gives
the vertical bob of a walking gait for free.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import trimesh

from hrc_perception.geometry import make_T, rot_x, rot_y, rot_z, rotation_about_axis
from hrc_perception.sim.config import HumansConfig
from hrc_perception.skeletons import COCO17_BONES, COCO17_NAMES  # noqa: F401 (re-exported)
from hrc_perception.sim.materials import Material, random_material

SEGMENT_NAMES: tuple[str, ...] = (
    "pelvis", "torso", "neck", "head",
    "left_upper_arm", "left_forearm", "left_hand", "right_upper_arm", "right_forearm", "right_hand",
    "left_thigh", "left_shank", "left_foot", "right_thigh", "right_shank", "right_foot")

HEAD_CENTRE_ABOVE_PIVOT = 0.55   # head ellipsoid centre above the neck top, in head z radii
IK_ARC_LIFT = np.array([0.0, 0.0, 0.15])   # mid-blend lift of the wrist path (over a table edge)
_CAPSULE_COUNT = [8, 8]
_FACE_POINT_DEPTH = 0.98         # face keypoints sit this fraction of the way to the head surface
# (direction from the head centre, head frame) of nose, eyes and ears
_FACE_DIRECTIONS = np.array([[1.0, 0.0, -0.3], [1.0, 0.38, 0.05], [1.0, -0.38, 0.05],
                             [-0.1, 1.0, -0.05], [-0.1, -1.0, -0.05]])


@dataclass(frozen=True)
class BodyShape:
    """One person's fixed body (metres). The vertical stack ankle + shank + thigh +
    spine + neck + (1 + HEAD_CENTRE_ABOVE_PIVOT) * head z radius equals height_m.

    spine_length_m: hip-joint centre to shoulder line; neck_length_m: shoulder line
    to the head pivot; head_radii_m: head ellipsoid (x depth, y width, z height).
    *_half_width_m: half the distance between the left and right joints; girths are
    capsule radii. Materials: skin (head, neck, hands, bare forearms), shirt (upper
    arms, torso unless a vest), sleeve (forearms: shirt or skin), torso, trousers
    (pelvis, thighs, shanks), shoes. The head has a face (eyes, brows, mouth, a nose
    that stands out of it) and hair of hair_rgb (None: bald) over its top and back,
    down to hair_reach (0 at the ears' height, 1 at the chin's).
    """
    height_m: float
    ankle_height_m: float
    shank_length_m: float
    thigh_length_m: float
    spine_length_m: float
    neck_length_m: float
    head_radii_m: tuple[float, float, float]
    hip_half_width_m: float
    shoulder_half_width_m: float
    upper_arm_length_m: float
    forearm_length_m: float
    hand_length_m: float
    foot_length_m: float
    upper_arm_radius_m: float
    forearm_radius_m: float
    hand_radius_m: float
    thigh_radius_m: float
    shank_radius_m: float
    foot_radius_m: float
    neck_radius_m: float
    torso_half_width_m: float
    torso_half_depth_m: float
    pelvis_radius_m: float
    skin: Material
    shirt: Material
    sleeve: Material
    torso: Material
    trousers: Material
    shoes: Material
    long_sleeves: bool
    hi_vis_vest: bool
    hair_rgb: tuple[float, float, float] | None = None
    hair_reach: float = 0.0


    @property
    def arm_length_m(self) -> float:
        """Shoulder to wrist with a straight elbow."""
        return self.upper_arm_length_m + self.forearm_length_m


@dataclass(frozen=True)
class ArmPose:
    """Shoulder flexion (forward), abduction (outward) and elbow flexion, radians.
    With wrist_target_m (world, metres) the arm is solved by two-bone IK instead,
    blended from the angle pose by ik_weight in [0, 1] (the wrist moves from where
    the angles put it towards the target on an arc raised by IK_ARC_LIFT at
    weight 1/2; the elbow points down and out)."""
    shoulder_flexion_rad: float = 0.0
    shoulder_abduction_rad: float = 0.12
    elbow_flexion_rad: float = 0.15
    wrist_target_m: tuple[float, float, float] | None = None
    ik_weight: float = 1.0


@dataclass(frozen=True)
class LegPose:
    """Hip flexion (thigh forward) and knee flexion (shank backward), radians."""
    hip_flexion_rad: float = 0.0
    knee_flexion_rad: float = 0.0


@dataclass(frozen=True)
class HumanPose:
    """Everything that moves. root_xy_m: body frame origin on the floor (world x, y);
    yaw_rad: heading about world z (0 faces +x); torso_pitch_rad: forward bend at
    the hips; head_yaw_rad / head_pitch_rad: head turn (left +) and nod (down +)
    relative to the torso; fall_angle_rad: tip about a horizontal axis through the
    feet (0 upright, pi/2 lying); fall_direction_rad: where the body tips to, in the
    body frame (0 forward, pi/2 to its left)."""
    root_xy_m: tuple[float, float] = (0.0, 0.0)
    yaw_rad: float = 0.0
    torso_pitch_rad: float = 0.0
    head_yaw_rad: float = 0.0
    head_pitch_rad: float = 0.0
    left_arm: ArmPose = ArmPose()
    right_arm: ArmPose = ArmPose()
    left_leg: LegPose = LegPose()
    right_leg: LegPose = LegPose()
    fall_angle_rad: float = 0.0
    fall_direction_rad: float = 0.0


# --- shape sampling ---------------------------------------------------------------

# Length ratios to body height (Drillis & Contini style anthropometry).
_VERTICAL = {"ankle": 0.039, "shank": 0.246, "thigh": 0.245, "spine": 0.288, "neck": 0.080, "head_z": 0.066}
_LENGTHS = {"shoulder_half": 0.105, "hip_half": 0.05, "upper_arm": 0.186, "forearm": 0.146, "hand": 0.108,
            "foot": 0.152, "head_x": 0.055, "head_y": 0.047}
_GIRTHS = {"upper_arm": 0.024, "forearm": 0.020, "hand": 0.014, "thigh": 0.040, "shank": 0.028,
           "foot": 0.024, "neck": 0.032, "torso_w": 0.094, "torso_d": 0.062, "pelvis": 0.053}
_LIGHT_SKIN, _DARK_SKIN = np.array([0.96, 0.80, 0.69]), np.array([0.30, 0.19, 0.13])
_TROUSER_COLOURS = ((0.15, 0.2, 0.35), (0.08, 0.08, 0.09), (0.35, 0.35, 0.36), (0.55, 0.48, 0.33),
                    (0.12, 0.25, 0.15), (0.25, 0.3, 0.5))
_HI_VIS = ((0.85, 0.95, 0.1), (1.0, 0.45, 0.05), (0.7, 1.0, 0.2))


def _jitter(rng: np.random.Generator, j: float, n: int | None = None):
    return rng.uniform(1.0 - j, 1.0 + j, n)


def _sample_materials(rng: np.random.Generator) -> dict:
    """Skin, shirt, sleeve, torso, trousers, shoes materials and the clothing flags."""
    tone = rng.uniform()
    skin_rgb = np.clip((1 - tone) * _LIGHT_SKIN + tone * _DARK_SKIN + rng.normal(0, 0.02, 3), 0, 1)
    skin = Material(tuple(float(c) for c in skin_rgb), texture="noise", texture_scale_m=0.02,
                    texture_contrast=float(rng.uniform(0.02, 0.1)), specular=float(rng.uniform(0.05, 0.25)),
                    shininess=float(rng.uniform(8, 24)))
    shirt = random_material(rng, specular_range=(0.0, 0.2))
    trouser_rgb = np.clip(np.array(_TROUSER_COLOURS[rng.integers(len(_TROUSER_COLOURS))]) * _jitter(rng, 0.25, 3), 0, 1)
    trousers = random_material(rng, albedo=trouser_rgb, specular_range=(0.0, 0.15),
                               textures=("plain", "noise", "stripes"))
    shoes = random_material(rng, albedo=rng.uniform(0.02, 0.18) * _jitter(rng, 0.2, 3),
                            specular_range=(0.1, 0.5), textures=("plain", "noise"))
    long_sleeves = bool(rng.random() < 0.5)
    vest = bool(rng.random() < 0.25)
    torso = shirt
    if vest:
        torso = Material(_HI_VIS[rng.integers(len(_HI_VIS))], texture="stripes",
                         texture_scale_m=float(rng.uniform(0.15, 0.3)), texture_contrast=float(rng.uniform(0.1, 0.4)),
                         specular=float(rng.uniform(0.1, 0.4)), shininess=20.0)
    return dict(skin=skin, shirt=shirt, sleeve=shirt if long_sleeves else skin, torso=torso, trousers=trousers,
                shoes=shoes, long_sleeves=long_sleeves, hi_vis_vest=vest)


_HAIR_COLOURS = ((0.05, 0.04, 0.03), (0.18, 0.11, 0.06), (0.35, 0.22, 0.12), (0.62, 0.48, 0.3),
                 (0.5, 0.5, 0.5), (0.75, 0.73, 0.7))


def _sample_hair(rng: np.random.Generator) -> dict:
    """Hair colour (None: bald, 1 in 10) and how far down the back of the head it reaches."""
    if rng.random() < 0.1:
        return dict(hair_rgb=None, hair_reach=0.0)
    rgb = np.clip(np.array(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]) * _jitter(rng, 0.2, 3), 0, 1)
    return dict(hair_rgb=tuple(float(c) for c in rgb), hair_reach=float(rng.uniform(0.0, 1.0)))


def _look_rng(rng: np.random.Generator) -> np.random.Generator:
    """A generator derived from rng's state without advancing it: the head's look is
    drawn without changing any other draw of the episode."""
    digest = hashlib.sha256(repr(rng.bit_generator.state).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def sample_body_shape(rng: np.random.Generator, cfg: HumansConfig) -> BodyShape:
    """A random person: height uniform in cfg.height_m, segment lengths from
    anthropometric ratios jittered by +-cfg.proportion_jitter (the vertical ones
    rescaled to sum to the height), a random build (girths) and clothing."""
    h = float(rng.uniform(*cfg.height_m))
    j = cfg.proportion_jitter
    v = {k: r * h * float(_jitter(rng, j)) for k, r in _VERTICAL.items()}
    scale = h / (v["ankle"] + v["shank"] + v["thigh"] + v["spine"] + v["neck"]
                 + (1 + HEAD_CENTRE_ABOVE_PIVOT) * v["head_z"])
    v = {k: x * scale for k, x in v.items()}
    ln = {k: r * h * float(_jitter(rng, j)) for k, r in _LENGTHS.items()}
    build = float(rng.uniform(0.88, 1.2))
    g = {k: r * h * build * float(_jitter(rng, j)) for k, r in _GIRTHS.items()}
    g["foot"] = max(g["foot"], 0.55 * v["ankle"])   # the ankle stays inside the foot
    return BodyShape(
        height_m=h, ankle_height_m=v["ankle"], shank_length_m=v["shank"], thigh_length_m=v["thigh"],
        spine_length_m=v["spine"], neck_length_m=v["neck"], head_radii_m=(ln["head_x"], ln["head_y"], v["head_z"]),
        hip_half_width_m=ln["hip_half"], shoulder_half_width_m=ln["shoulder_half"],
        upper_arm_length_m=ln["upper_arm"], forearm_length_m=ln["forearm"], hand_length_m=ln["hand"],
        foot_length_m=ln["foot"], upper_arm_radius_m=g["upper_arm"], forearm_radius_m=g["forearm"],
        hand_radius_m=g["hand"], thigh_radius_m=g["thigh"], shank_radius_m=g["shank"], foot_radius_m=g["foot"],
        neck_radius_m=g["neck"], torso_half_width_m=g["torso_w"], torso_half_depth_m=g["torso_d"],
        pelvis_radius_m=g["pelvis"], **_sample_materials(rng), **_sample_hair(_look_rng(rng)))


# --- kinematics -------------------------------------------------------------------

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Component of v [3] perpendicular to the unit vector axis [3]."""
    return v - np.dot(v, axis) * axis


def _any_perp(axis: np.ndarray) -> np.ndarray:
    """Some unit vector perpendicular to the unit vector axis."""
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    return _unit(np.cross(axis, helper))


def solve_two_bone_ik(shoulder: np.ndarray, target: np.ndarray, l1: float, l2: float,
                      pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and wrist positions [3] of a two-bone chain (lengths l1, l2) from
    shoulder towards target; the elbow bends towards the pole direction [3]. A target
    out of reach leaves the chain straight and pointing at it."""
    v = np.asarray(target, float) - shoulder
    d0 = np.linalg.norm(v)
    u = v / d0 if d0 > 1e-9 else _unit(pole)
    d = float(np.clip(d0, abs(l1 - l2) + 1e-9, l1 + l2))
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
    n = _perp(np.asarray(pole, float), u)
    n = n / np.linalg.norm(n) if np.linalg.norm(n) > 1e-9 else _any_perp(u)
    elbow = shoulder + l1 * (cos_a * u + np.sqrt(1 - cos_a * cos_a) * n)
    wrist = elbow + l2 * _unit(shoulder + d * u - elbow)
    return elbow, wrist


def _limb_rotation(b1: np.ndarray, b2: np.ndarray, pole: np.ndarray) -> tuple[np.ndarray, float]:
    """Frame [3, 3] of an upper limb along unit b1 (-z) whose lower limb (unit b2) bends
    towards +x, and the bend angle; the pole decides x when the limb is straight."""
    phi = float(np.arccos(np.clip(np.dot(b1, b2), -1.0, 1.0)))
    x = _perp(b2, b1)
    if np.linalg.norm(x) < 1e-7:
        x = -_perp(pole, b1)
        if np.linalg.norm(x) < 1e-9:
            x = _any_perp(b1)
    x = _unit(x)
    z = -b1
    return np.column_stack([x, np.cross(z, x), z]), phi


def _root_transform(shape: BodyShape, pose: HumanPose) -> np.ndarray:
    """T_world_body [4, 4]: floor position, yaw, then the fall about the feet (lifted
    so that a lying body rests on its back, front or side rather than in the floor)."""
    c, s = np.cos(pose.fall_direction_rad), np.sin(pose.fall_direction_rad)
    fall = pose.fall_angle_rad
    R_fall = rotation_about_axis(np.array([-s, c, 0.0]), fall)
    side = shape.shoulder_half_width_m + shape.upper_arm_radius_m
    lift = np.sin(fall) * (abs(c) * shape.torso_half_depth_m + abs(s) * side)
    x, y = pose.root_xy_m
    return make_T(rot_z(pose.yaw_rad), np.array([x, y, 0.0])) @ make_T(R_fall, np.array([0.0, 0.0, lift]))


def _foot_rotation(pose: HumanPose) -> np.ndarray:
    """R_world_foot [3, 3]: level with the body frame, except that in a forward fall
    the feet stay flat on the floor (the ankles extend) instead of tipping onto the toes."""
    c, s = np.cos(pose.fall_direction_rad), np.sin(pose.fall_direction_rad)
    tip = pose.fall_angle_rad * (1.0 - max(0.0, c))
    return rot_z(pose.yaw_rad) @ rotation_about_axis(np.array([-s, c, 0.0]), tip)


def _leg_drop(shape: BodyShape, leg: LegPose) -> float:
    """Vertical hip-to-ankle distance of a leg (body frame)."""
    h, k = leg.hip_flexion_rad, leg.knee_flexion_rad
    return shape.thigh_length_m * np.cos(h) + shape.shank_length_m * np.cos(h - k)


def _arm(shape: BodyShape, side: float, T_torso: np.ndarray, R_body: np.ndarray,
         arm: ArmPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shoulder position [3], upper arm and forearm rotations [3, 3] (world)."""
    l1, l2 = shape.upper_arm_length_m, shape.forearm_length_m
    S = T_torso[:3, :3] @ np.array([0.0, side * shape.shoulder_half_width_m, shape.spine_length_m]) + T_torso[:3, 3]
    R_ua = T_torso[:3, :3] @ rot_y(-arm.shoulder_flexion_rad) @ rot_x(side * arm.shoulder_abduction_rad)
    phi = arm.elbow_flexion_rad
    w = float(np.clip(arm.ik_weight, 0.0, 1.0))
    if arm.wrist_target_m is not None and w > 0:
        b1 = -R_ua[:, 2]
        W0 = S + l1 * b1 - l2 * (R_ua @ rot_y(-phi))[:, 2]
        target = W0 + w * (np.asarray(arm.wrist_target_m, float) - W0) + 4 * w * (1 - w) * IK_ARC_LIFT
        pole = (1 - w) * b1 + w * _unit(R_body @ np.array([-0.25, side * 0.6, -1.0]))
        if np.linalg.norm(pole) < 1e-6:
            pole = R_body @ np.array([0.0, side, 0.0])
        E, W = solve_two_bone_ik(S, target, l1, l2, pole)
        R_ua, phi = _limb_rotation((E - S) / l1, (W - E) / l2, pole)
    return S, R_ua, R_ua @ rot_y(-phi)


def _head_points(shape: BodyShape) -> np.ndarray:
    """Nose, eyes, ears [5, 3] in the head frame, just inside the head's surface (the nose:
    just inside the tip of the nose of :func:`head_mesh`)."""
    r = np.array(shape.head_radii_m)
    d = _FACE_DIRECTIONS / np.linalg.norm(_FACE_DIRECTIONS, axis=1, keepdims=True)
    s = 1.0 / np.sqrt(((d / r) ** 2).sum(axis=1))
    points = s[:, None] * d
    points[0] = (1.0 + _NOSE_HEIGHT) * d[0] * r          # the mesh's nose tip (its sphere direction, scaled)
    return _FACE_POINT_DEPTH * points + np.array([0.0, 0.0, HEAD_CENTRE_ABOVE_PIVOT * r[2]])


def pose_kinematics(shape: BodyShape, pose: HumanPose) -> tuple[list[np.ndarray], np.ndarray]:
    """T_world_segment [4, 4] for every SEGMENT_NAMES entry, and the COCO-17 joints
    [17, 3] (world, metres), of one pose."""
    T_body = _root_transform(shape, pose)
    R_body = T_body[:3, :3]
    hip_z = shape.ankle_height_m + max(_leg_drop(shape, pose.left_leg), _leg_drop(shape, pose.right_leg))
    pitch = pose.torso_pitch_rad
    T_pelvis = T_body @ make_T(rot_y(0.5 * pitch), np.array([0.0, 0.0, hip_z]))
    T_torso = T_body @ make_T(rot_y(pitch), np.array([0.0, 0.0, hip_z]))
    T_neck = T_torso @ make_T(np.eye(3), np.array([0.0, 0.0, shape.spine_length_m]))
    T_head = T_neck @ make_T(rot_z(pose.head_yaw_rad) @ rot_y(pose.head_pitch_rad),
                             np.array([0.0, 0.0, shape.neck_length_m]))
    frames = [T_pelvis, T_torso, T_neck, T_head]
    arm_joints, leg_joints = [], []
    for side, arm in ((1.0, pose.left_arm), (-1.0, pose.right_arm)):
        S, R_ua, R_fa = _arm(shape, side, T_torso, R_body, arm)
        E = S - shape.upper_arm_length_m * R_ua[:, 2]
        W = E - shape.forearm_length_m * R_fa[:, 2]
        frames += [make_T(R_ua, S), make_T(R_fa, E), make_T(R_fa, W)]
        arm_joints.append((S, E, W))
    R_foot = _foot_rotation(pose)
    for side, leg in ((1.0, pose.left_leg), (-1.0, pose.right_leg)):
        H = T_body[:3, :3] @ np.array([0.0, side * shape.hip_half_width_m, hip_z]) + T_body[:3, 3]
        R_th = R_body @ rot_y(-leg.hip_flexion_rad)
        R_sh = R_th @ rot_y(leg.knee_flexion_rad)
        K = H - shape.thigh_length_m * R_th[:, 2]
        A = K - shape.shank_length_m * R_sh[:, 2]
        frames += [make_T(R_th, H), make_T(R_sh, K), make_T(R_foot, A)]
        leg_joints.append((H, K, A))
    face = _head_points(shape) @ T_head[:3, :3].T + T_head[:3, 3]
    (ls, le, lw), (rs, re, rw) = arm_joints
    (lh, lk, la), (rh, rk, ra) = leg_joints
    joints = np.vstack([face, ls, rs, le, re, lw, rw, lh, rh, lk, rk, la, ra])
    return frames, joints


def joints_world(shape: BodyShape, pose: HumanPose) -> np.ndarray:
    """COCO-17 joints [17, 3] float64, world frame, metres, in COCO17_NAMES order."""
    return pose_kinematics(shape, pose)[1]


def segment_transforms(shape: BodyShape, pose: HumanPose) -> list[np.ndarray]:
    """T_world_segment [4, 4] for each entry of segment_meshes(shape), same order."""
    return pose_kinematics(shape, pose)[0]


# --- meshes -----------------------------------------------------------------------

def _capsule_z(radius: float, z0: float, z1: float) -> trimesh.Trimesh:
    """Capsule along z whose outer extent (caps included) is [z0, z1]."""
    m = trimesh.creation.capsule(height=max(z1 - z0 - 2 * radius, 1e-4), radius=radius, count=_CAPSULE_COUNT)
    m.apply_translation([0.0, 0.0, 0.5 * (z0 + z1)])
    return m


def _transformed(mesh: trimesh.Trimesh, scale=(1.0, 1.0, 1.0), R=np.eye(3), t=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    """mesh scaled about its origin, then rotated and translated."""
    S = np.diag(list(scale) + [1.0])
    mesh.apply_transform(make_T(R, np.asarray(t, float)) @ S)
    return mesh


def _limb(radius: float, length: float, flat: float = 1.0) -> trimesh.Trimesh:
    """A capsule hanging from the frame origin down to -length (joint centres at the
    cap centres); flat < 1 flattens it in x."""
    return _transformed(_capsule_z(radius, -length - radius, radius), scale=(flat, 1.0, 1.0))


_NOSE_HEIGHT = 0.18          # of the head's radius: how far the nose stands out of the face
_NOSE_WIDTH_RAD = 0.2


def _cone(d: np.ndarray, axis, half_angle_rad: float) -> np.ndarray:
    """[V] bool: unit directions d [V, 3] within half_angle_rad of axis."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    return d @ a > np.cos(half_angle_rad)


def head_mesh(shape: BodyShape) -> tuple[trimesh.Trimesh, np.ndarray]:
    """(head mesh in the head frame, vertex colours [V, 3]): the head ellipsoid with a
    nose standing out of the face (a depth cue of where the person faces), skin, dark
    eyes and brows, a mouth, and hair over the top and back (none when bald)."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    d = np.asarray(sphere.vertices, float)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    nose = _FACE_DIRECTIONS[0] / np.linalg.norm(_FACE_DIRECTIONS[0])
    angle = np.arccos(np.clip(d @ nose, -1.0, 1.0))
    r = 1.0 + _NOSE_HEIGHT * np.exp(-(angle / _NOSE_WIDTH_RAD) ** 2)
    rx, ry, rz = shape.head_radii_m
    v = d * r[:, None] * np.array([rx, ry, rz]) + np.array([0.0, 0.0, HEAD_CENTRE_ABOVE_PIVOT * rz])
    skin = np.asarray(shape.skin.albedo, float)
    colours = np.tile(skin, (len(d), 1))
    if shape.hair_rgb is not None:
        face = (d[:, 0] > 0.45) & (d[:, 2] < 0.5)
        hair = ~face & ((d[:, 2] > 0.45) | ((d[:, 0] < 0.1) & (d[:, 2] > -0.3 - 0.6 * shape.hair_reach)))
        colours[hair] = shape.hair_rgb
    brow = np.asarray(shape.hair_rgb if shape.hair_rgb is not None else 0.6 * skin)
    for side in (1.0, -1.0):
        colours[_cone(d, [1.0, 0.38 * side, 0.05], 0.13)] = 0.3 * skin * np.array([0.5, 0.45, 0.4])
        colours[_cone(d, [1.0, 0.38 * side, 0.3], 0.1)] = brow
    colours[_cone(d, [1.0, 0.0, -0.6], 0.14)] = skin * np.array([0.75, 0.45, 0.45])
    return trimesh.Trimesh(v, sphere.faces, process=False), np.clip(colours, 0.0, 1.0)


def segment_meshes(shape: BodyShape) -> list[tuple[str, trimesh.Trimesh, Material]]:
    """(segment name, low-poly mesh in the segment's frame, material) for every body
    segment, in SEGMENT_NAMES order; about 3,300 faces per person."""
    s = shape
    hw, tw, td = s.hip_half_width_m, s.torso_half_width_m, s.torso_half_depth_m
    pelvis = _transformed(_capsule_z(s.pelvis_radius_m, -hw - s.pelvis_radius_m, hw + s.pelvis_radius_m),
                          scale=(td / s.pelvis_radius_m, 1.0, 1.0), R=rot_x(-np.pi / 2))
    body = _transformed(_capsule_z(tw, 0.0, s.spine_length_m + 0.3 * tw), scale=(td / tw, 1.0, 1.0))
    r_sh = 1.25 * s.upper_arm_radius_m
    bar = _transformed(_capsule_z(r_sh, -s.shoulder_half_width_m, s.shoulder_half_width_m),
                       scale=(td / r_sh, 1.0, 1.0), R=rot_x(-np.pi / 2), t=(0, 0, s.spine_length_m - 0.3 * r_sh))
    torso = trimesh.util.concatenate([body, bar])
    rx, ry, rz = s.head_radii_m
    neck = _capsule_z(s.neck_radius_m, -0.2 * s.neck_radius_m, s.neck_length_m + 0.3 * rz)
    head, head_colours = head_mesh(s)
    hand_len = s.hand_length_m
    fr, fl = s.foot_radius_m, s.foot_length_m
    out = [("pelvis", pelvis, s.trousers), ("torso", torso, s.torso), ("neck", neck, s.skin),
           ("head", head, replace(s.skin, vertex_colors=head_colours))]
    for side in ("left", "right"):
        out += [(f"{side}_upper_arm", _limb(s.upper_arm_radius_m, s.upper_arm_length_m), s.shirt),
                (f"{side}_forearm", _limb(s.forearm_radius_m, s.forearm_length_m), s.sleeve),
                (f"{side}_hand", _transformed(_capsule_z(s.hand_radius_m, -hand_len, 0.2 * s.hand_radius_m),
                                              scale=(0.6, 1.0, 1.0)), s.skin)]
    for side in ("left", "right"):
        foot = _transformed(_capsule_z(fr, -0.22 * fl, 0.78 * fl), scale=(1.0, 0.85, 1.0), R=rot_y(np.pi / 2),
                            t=(0.0, 0.0, -s.ankle_height_m + fr))
        out += [(f"{side}_thigh", _limb(s.thigh_radius_m, s.thigh_length_m), s.trousers),
                (f"{side}_shank", _limb(s.shank_radius_m, s.shank_length_m), s.trousers),
                (f"{side}_foot", foot, s.shoes)]
    return out
