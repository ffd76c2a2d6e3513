"""Camera-to-robot refinement on the depth: surface samples and their normals, the
projective ICP on rendered noisy depth (from a perturbed pose, with an occluder, with
no robot in view), and the views the extrinsics window keeps for it."""
import numpy as np
import pytest
import trimesh

from hrc_perception.geometry import make_T, pose_error, rotation_about_axis, sample_surface_m
from hrc_perception.robot_pose.extrinsics import ExtrinsicsEstimator
from hrc_perception.robot_pose.predictor import depth_to_input_xyz
from hrc_perception.robot_pose.surface_fit import SurfaceView, refine_T_cam_base, robot_surface


def test_surface_normals_of_a_box_point_outwards_and_samples_lie_on_it():
    box = trimesh.creation.box((0.2, 0.4, 0.6))
    p, n = sample_surface_m(np.asarray(box.vertices), np.asarray(box.faces), 3000, seed=2, with_normals=True)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    on_face = np.isclose(np.abs(p), [0.1, 0.2, 0.3], atol=1e-6)          # each point on one face ...
    assert on_face.any(1).all()
    axis = on_face.argmax(1)                                            # ... whose normal is that axis, outwards
    np.testing.assert_allclose(n[np.arange(len(p)), axis], np.sign(p[np.arange(len(p)), axis]), atol=1e-6)
    np.testing.assert_array_equal(p, sample_surface_m(np.asarray(box.vertices), np.asarray(box.faces), 3000, seed=2))


def _views(frames):
    """Each frame's joint positions and the network's XYZ image of its noisy depth."""
    return [SurfaceView(f.robot.joint_positions_rad, *depth_to_input_xyz(f.depth_mm / 1000.0, f.K, (240, 320)))
            for f in frames]


def _perturbed(T, deg, shift_m, seed):
    """T turned by deg about a random axis through the robot base, shifted by shift_m
    in a random direction."""
    rng = np.random.default_rng(seed)
    axis, shift = rng.normal(size=(2, 3))
    out = T @ make_T(rotation_about_axis(axis / np.linalg.norm(axis), np.radians(deg)), np.zeros(3))
    out[:3, 3] += shift_m * shift / np.linalg.norm(shift)
    return out


@pytest.fixture(scope="module")
def cell_episode():
    """The default cell (640 x 480 camera about 3 m from the robot): 5 frames of one episode."""
    from hrc_perception.sim.config import CellConfig
    from hrc_perception.sim.generator import SynthRun
    run = SynthRun(CellConfig(), seed=79)
    return run.assets.robot, list(run.frames(5))


def test_refinement_recovers_the_camera_to_robot_pose_from_rendered_depth(cell_episode):
    robot, frames = cell_episode
    surface = robot_surface(robot)
    T_true = frames[0].robot.T_cam_base
    views = _views(frames[::2])
    for seed in range(3):
        T_init = _perturbed(T_true, 3.0, 0.03, seed)
        assert pose_error(T_init, T_true)[1] > 2.9
        fit = refine_T_cam_base(robot, surface, T_init, views)
        dt, dr = pose_error(fit.T, T_true)
        assert dt < 0.01 and dr < 1.0, (seed, dt, dr)
        assert fit.frames == 3 and fit.pairs > 1000 and fit.rms_m < 0.02

    # an occluder 40 cm in front of the robot's left third (a person's worth of depth)
    occluded = _views(frames[::2])
    for v, f in zip(occluded, frames[::2]):
        u = f.robot.keypoints.uv_px[:, 0]
        cols = slice(None, int(u.min() + (u.max() - u.min()) / 3) // 2)      # XYZ image: half the colour's width
        z = v.xyz_m[:, cols, 2:3]
        v.xyz_m[:, cols] *= np.where(z > 0, (z - 0.4).clip(0.1) / np.maximum(z, 1e-6), 0.0)
    fit_occluded = refine_T_cam_base(robot, surface, _perturbed(T_true, 3.0, 0.03, 0), occluded)
    dt, dr = pose_error(fit_occluded.T, T_true)
    assert dt < 0.015 and dr < 1.5, (dt, dr)
    assert fit_occluded.pairs < 0.9 * fit.pairs
    # from far outside the range it converges from, no pose rather than a wrong one
    for seed in range(3):
        far = refine_T_cam_base(robot, surface, _perturbed(T_true, 25.0, 0.2, seed), views)
        assert far is None, (seed, pose_error(far.T, T_true))


def test_no_refinement_without_the_robot_in_the_depth(small_run, small_frames):
    robot = small_run.assets.robot
    views = _views(small_frames[:2])
    for v in views:
        v.xyz_m[:] = 0.0                                                 # no depth at all
    assert refine_T_cam_base(robot, robot_surface(robot), small_frames[0].robot.T_cam_base, views) is None


def test_extrinsics_window_keeps_spaced_views_and_refines_from_them(cell_episode):
    robot, frames = cell_episode
    T_true = frames[0].robot.T_cam_base
    est = ExtrinsicsEstimator(window_s=1.0, robot=robot, surface=robot_surface(robot), max_views=4)
    for k, (f, view) in enumerate(zip(frames, _views(frames))):
        kp_base = robot.keypoints(f.robot.joint_positions_rad)
        est.add(0.1 * k, kp_base, f.robot.keypoints.xyz_cam_m, np.ones(len(kp_base)), np.ones(len(kp_base), bool),
                view)
    assert est.view_stamps == pytest.approx((0.0, 0.3))                  # at least window / max_views apart
    fit = est.refine(_perturbed(T_true, 3.0, 0.03, seed=1))
    assert fit.frames == 2 and pose_error(fit.T, T_true)[0] < 0.01
    est.add(5.0, kp_base, f.robot.keypoints.xyz_cam_m, np.ones(len(kp_base)), np.ones(len(kp_base), bool))
    assert est.view_stamps == () and est.refine(T_true) is None         # old views leave with their frames
    assert ExtrinsicsEstimator().refine(T_true) is None                  # no robot surface: no refinement
