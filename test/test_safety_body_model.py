"""The safety body model against the synthetic cell's people: its capsules enclose every
rendered body part, its bone lengths bound every joint-to-joint distance, and unknown
joints are covered (a model of the visible joints is never farther from anything than the
whole body)."""
import numpy as np
import pytest

from hrc_perception.geometry import transform_points
from hrc_perception.safety.capsules import Capsules, HumanBodyModel, closest_pair, segment_closest_params
from hrc_perception.sim.config import HumansConfig
from hrc_perception.sim.humans import (ArmPose, HumanPose, LegPose, joints_world, sample_body_shape, segment_meshes,
                                       segment_transforms)
from hrc_perception.skeletons import COCO17_NAMES


def random_people(n: int, seed: int):
    """(shape, pose) of n people of the cell's population in random poses: arms raised,
    spread and bent, legs kicked and bent, head turned, torso bent."""
    rng = np.random.default_rng(seed)
    cfg = HumansConfig()

    def arm():
        return ArmPose(shoulder_flexion_rad=rng.uniform(-0.5, 2.5), shoulder_abduction_rad=rng.uniform(0, 1.5),
                       elbow_flexion_rad=rng.uniform(0, 2.3))

    def leg():
        return LegPose(hip_flexion_rad=rng.uniform(-0.3, 1.5), knee_flexion_rad=rng.uniform(0, 2.0))

    for _ in range(n):
        yield sample_body_shape(rng, cfg), HumanPose(
            head_yaw_rad=rng.uniform(-1.2, 1.2), head_pitch_rad=rng.uniform(-0.6, 0.9),
            torso_pitch_rad=rng.uniform(0, 1.2), left_arm=arm(), right_arm=arm(), left_leg=leg(), right_leg=leg())


def outside_m(points: np.ndarray, caps: Capsules) -> np.ndarray:
    """How far each point [P, 3] lies outside the union of the capsules (< 0: inside)."""
    _, t = segment_closest_params(points[:, None], points[:, None], caps.a[None], caps.b[None])
    cp = caps.a[None] + t[..., None] * (caps.b - caps.a)[None]
    return (np.linalg.norm(points[:, None] - cp, axis=-1) - caps.radius[None]).min(axis=1)


def test_capsules_enclose_every_rendered_body_part():
    body = HumanBodyModel()
    worst = {}
    for shape, pose in random_people(150, seed=3):
        caps = body.capsules(joints_world(shape, pose))
        for (name, mesh, _), T in zip(segment_meshes(shape), segment_transforms(shape, pose)):
            out = outside_m(transform_points(T, np.asarray(mesh.vertices)), caps)
            worst[name] = max(worst.get(name, -1.0), float(out.max()))
    assert max(worst.values()) <= 0.0, {k: round(v, 3) for k, v in worst.items() if v > 0}


def test_bones_bound_every_joint_distance():
    body = HumanBodyModel()
    bound = body.bone_distances
    assert np.isfinite(bound).all()               # the bones join every joint
    for shape, pose in random_people(400, seed=4):
        p = joints_world(shape, pose)
        d = np.linalg.norm(p[:, None] - p[None], axis=-1)
        assert (d <= bound + 1e-9).all(), [(COCO17_NAMES[i], COCO17_NAMES[j]) for i, j in zip(*np.nonzero(d > bound))]


@pytest.mark.parametrize("seed", range(4))
def test_unknown_joints_never_move_the_person_away(seed):
    """Any subset of joints unknown (at least one known): the covered model's distance to
    any probe is never more than the whole body's."""
    rng = np.random.default_rng(seed)
    body = HumanBodyModel()
    farther_without_cover = 0
    for shape, pose in random_people(40, seed=10 + seed):
        p = joints_world(shape, pose)
        full = body.capsules(p)
        probe = Capsules(rng.normal(p.mean(0), 1.0, (1, 3)), rng.normal(p.mean(0), 1.0, (1, 3)), np.array([0.1]),
                         ["a"], ["b"])
        truth = closest_pair(full, probe).distance_m
        unknown = rng.random(17) < rng.uniform(0.1, 0.9)
        unknown[rng.integers(17)] = False
        q = np.where(unknown[:, None], np.nan, p)
        assert closest_pair(body.capsules(q), probe).distance_m <= truth + 1e-9
        farther_without_cover += closest_pair(HumanBodyModel(cover_unknown=False).capsules(q), probe).distance_m > \
            truth + 0.01
    assert farther_without_cover > 0      # what covering prevents: the known joints alone look farther
