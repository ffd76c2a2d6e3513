"""SPDH core: XYZ image, heatmap encode/decode, the 2D + depth baseline, rigid fits and
the extrinsics window, forward kinematics against the synthetic cell, the network
and the model file."""
import numpy as np
import pytest
import torch

from hrc_perception.geometry import make_K, make_T, pose_error, rotation_about_axis
from hrc_perception.io.keypoints_npz import resized_K, subsampled_xyz
from hrc_perception.robot_pose.dataset import RobotAugment, _augment, heatmap_K
from hrc_perception.robot_pose.extrinsics import (ExtrinsicsEstimator, robust_rigid_fit,
                                                  weighted_rigid_fit)
from hrc_perception.robot_pose.model import BuildConfig, load_model, save_model
from hrc_perception.robot_pose.network import SPDHNet, xyz_input
from hrc_perception.robot_pose.predictor import depth_to_input_xyz
from hrc_perception.robot_pose.spdh import HeatmapSpec, decode, decode_uv_depth, encode

SPEC = HeatmapSpec(hw=(60, 80), z_range_m=(0.5, 4.5), sigma_px=2.0)
K_HM = make_K(77.0, 77.0, 39.5, 29.5)


def _joints_inside(n=6, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(1.0, 4.0, n)
    u, v = rng.uniform(8, 72, n), rng.uniform(8, 52, n)
    return np.stack([(u - K_HM[0, 2]) * z / K_HM[0, 0], (v - K_HM[1, 2]) * z / K_HM[1, 1], z], axis=1)


def test_depth_to_input_xyz_is_the_datasets_xyz_image():
    rng = np.random.default_rng(1)
    depth_mm = rng.integers(300, 5000, (480, 640)).astype(np.uint16)
    depth_mm[rng.random((480, 640)) < 0.1] = 0
    K = make_K(615.0, 612.0, 321.0, 238.0)
    xyz, K_xyz = depth_to_input_xyz(depth_mm / 1000.0, K, (240, 320))
    np.testing.assert_allclose(xyz, subsampled_xyz(depth_mm, K, (240, 320)).astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(K_xyz, resized_K(K, (480, 640), (240, 320)))
    assert (xyz[xyz[..., 2] == 0] == 0).all()
    depth = np.full((480, 640), np.nan)              # NaN and negative depth: invalid, zero
    depth[:, :320] = -1.0
    xyz, _ = depth_to_input_xyz(depth, K, (240, 320))
    assert np.isfinite(xyz).all() and (xyz == 0).all()


def test_encode_decode_round_trip_is_exact_inside_the_planes():
    xyz = _joints_inside()
    hm = encode(xyz, K_HM, SPEC)
    assert hm.shape == (12, 60, 80) and hm.dtype == np.float32
    assert hm.max(axis=(1, 2)).min() > 0.8           # each joint's peak is near 1
    d = decode(hm, K_HM, SPEC)
    np.testing.assert_allclose(d.xyz_cam_m, xyz, atol=1e-6)
    assert (d.confidence > 0.8).all()
    # z is read from the uz plane alone: the row grid covers z_range_m in hw[0] bins
    np.testing.assert_allclose(SPEC.row_to_z(SPEC.z_to_row(xyz[:, 2])), xyz[:, 2])
    assert SPEC.z_bin_m == pytest.approx(4.0 / 60)


def test_encode_leaves_invalid_out_of_range_and_outside_joints_empty():
    xyz = _joints_inside(4)
    xyz[1, 2] = 6.0                                  # beyond z_range_m
    xyz[2, 0] = 40.0                                 # far outside the image
    hm = encode(xyz, K_HM, SPEC, valid=np.array([True, True, True, False]))
    peaks = hm.reshape(8, -1).max(1)
    assert peaks[0] > 0.8 and peaks[4] > 0.8
    assert (peaks[[1, 2, 3, 5, 6, 7]] == 0).all()
    d = decode(hm, K_HM, SPEC)
    assert (d.confidence[1:] == 0).all() and d.confidence[0] > 0.8
    with pytest.raises(ValueError, match="heatmaps must be"):
        decode(hm[:, :10], K_HM, SPEC)


def test_decoding_fuses_u_by_peak_height_and_takes_v_from_the_uv_plane():
    xyz = _joints_inside(1)
    hm = encode(xyz, K_HM, SPEC)
    moved = encode(xyz + np.array([[0.2, 0.0, 0.0]]), K_HM, SPEC)   # the uz plane's u further right
    d = decode(np.concatenate([hm[:1], moved[1:]]), K_HM, SPEC)
    u_a = K_HM[0, 0] * xyz[0, 0] / xyz[0, 2] + K_HM[0, 2]
    u_b = K_HM[0, 0] * (xyz[0, 0] + 0.2) / xyz[0, 2] + K_HM[0, 2]
    assert u_a < d.uv_hm[0, 0] < u_b
    np.testing.assert_allclose(d.z_m, xyz[:, 2], atol=1e-6)


def test_uv_depth_baseline_reads_the_surface_depth_at_the_peak():
    xyz = _joints_inside(2)
    hm = encode(xyz, K_HM, SPEC)
    surface = np.zeros((60, 80, 3), np.float32)
    surface[..., 2] = 1.7                            # a wall at 1.7 m in front of everything
    d = decode_uv_depth(hm, K_HM, surface)
    np.testing.assert_allclose(d.z_m, 1.7)
    np.testing.assert_allclose(d.uv_hm, decode(hm, K_HM, SPEC).uv_hm, atol=0.5)
    d = decode_uv_depth(hm, K_HM, np.zeros((60, 80, 3), np.float32))   # no depth: no joint
    assert np.isnan(d.xyz_cam_m).all() and (d.confidence == 0).all()


def test_flip_augmentation_mirrors_image_intrinsics_and_joints_together():
    xyz_img = np.zeros((60, 80, 3), np.float32)
    xyz_img[..., 2] = 2.0
    xyz_img[:, :10, 0] = -1.0
    joints = _joints_inside(3)
    K = K_HM.copy()
    rng = np.random.default_rng(0)
    img2, K2, j2 = _augment(xyz_img.copy(), K.copy(), joints.copy(), RobotAugment(flip_p=1.0, holes_p=0.0), rng)
    assert (img2[:, -10:, 0] == 1.0).all()
    np.testing.assert_allclose(j2[:, 0], -joints[:, 0])
    u = K[0, 0] * joints[:, 0] / joints[:, 2] + K[0, 2]
    u2 = K2[0, 0] * j2[:, 0] / j2[:, 2] + K2[0, 2]
    np.testing.assert_allclose(u2, 79 - u)           # the same joint in the mirrored image
    np.testing.assert_allclose(heatmap_K(K2, (60, 80), SPEC)[0, 2], 79 - heatmap_K(K, (60, 80), SPEC)[0, 2])


def _random_T(seed):
    rng = np.random.default_rng(seed)
    return make_T(rotation_about_axis(rng.normal(size=3), rng.uniform(0.2, 2.5)), rng.uniform(-2, 2, 3))


def test_weighted_rigid_fit_recovers_a_known_transform():
    T = _random_T(0)
    p = np.random.default_rng(1).uniform(-0.5, 0.5, (8, 3))
    q = p @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(weighted_rigid_fit(p, q), T, atol=1e-9)
    # a weight of zero ignores a point completely
    q_bad = q.copy()
    q_bad[0] += 1.0
    w = np.ones(8)
    w[0] = 0.0
    np.testing.assert_allclose(weighted_rigid_fit(p, q_bad, w), T, atol=1e-9)


def test_robust_fit_with_noise_and_outliers():
    T = _random_T(2)
    rng = np.random.default_rng(3)
    p = rng.uniform(-0.6, 0.6, (60, 3))
    q = p @ T[:3, :3].T + T[:3, 3] + rng.normal(0, 0.005, (60, 3))
    outliers = rng.choice(60, 15, replace=False)
    q[outliers] += rng.uniform(0.2, 0.5, (15, 3)) * rng.choice([-1, 1], (15, 3))
    fit = robust_rigid_fit(p, q, np.ones(60), inlier_m=0.03)
    dt, dr = pose_error(fit.T, T)
    assert dt < 0.005 and dr < 0.5
    assert not fit.inliers[outliers].any() and fit.num_inliers >= 40
    # the plain least-squares fit is pulled far off by the same outliers
    assert pose_error(weighted_rigid_fit(p, q), T)[0] > 3 * dt + 0.005
    assert robust_rigid_fit(p[:3], q[:3], min_points=4) is None          # too few points
    line = np.stack([np.linspace(0, 1, 6), np.zeros(6), np.zeros(6)], 1)
    assert robust_rigid_fit(line, line + 1.0) is None                    # collinear: no rotation
    two_spots = np.repeat(p[:2], 20, axis=0) + rng.normal(0, 0.002, (40, 3))   # two joints that never move
    assert robust_rigid_fit(two_spots, two_spots @ T[:3, :3].T + T[:3, 3]) is None


def test_extrinsics_window_pools_frames_and_drops_old_ones():
    T = _random_T(4)
    rng = np.random.default_rng(5)
    est = ExtrinsicsEstimator(window_s=1.0, min_points=6)
    assert est.estimate() is None
    for k in range(10):
        p = rng.uniform(-0.5, 0.5, (4, 3))           # 4 joints per frame: too few alone
        q = p @ T[:3, :3].T + T[:3, 3] + rng.normal(0, 0.003, (4, 3))
        valid = np.ones(4, bool)
        valid[3] = k % 2 == 0
        est.add(0.1 * k, p, q, np.full(4, 0.9), valid)
    assert est.num_frames == 10
    fit = est.estimate()
    assert fit.num_frames == 10 and pose_error(fit.T, T)[0] < 0.005
    est.add(5.0, p, q, np.full(4, 0.9), np.ones(4, bool))   # 4 s later: the others are out of the window
    assert est.num_frames == 1 and est.estimate() is None
    est.add(1.0, p, q, np.full(4, 0.9), np.ones(4, bool))   # a stale, out-of-order frame is not kept
    assert est.num_frames == 1
    p_nan = p.copy()
    p_nan[0] = np.nan
    assert est.add(5.1, p_nan, q, np.full(4, 0.9), np.ones(4, bool)) == 3


def test_forward_kinematics_matches_the_synthetic_cells_robot_keypoints(small_run, small_frames):
    robot = small_run.assets.robot
    for f in small_frames[:4]:
        kp = robot.keypoints(f.robot.joint_positions_rad, f.robot.T_cam_base)
        np.testing.assert_allclose(kp, f.robot.keypoints.xyz_cam_m, atol=1e-9)


def test_network_forward_and_model_file_round_trip(tmp_path):
    build = BuildConfig(num_joints=3, widths=(8, 8, 16, 16), input_hw=(48, 64))
    net = build.build().eval()
    x = torch.from_numpy(xyz_input(np.random.default_rng(0).uniform(0, 3, (48, 64, 3)), build.z_range_m))[None]
    assert x.shape == (1, 4, 48, 64)
    with torch.inference_mode():
        y, presence = net(x)
    assert y.shape == (1, 6, 24, 32) and presence.shape == (1, 3) and build.heatmap_spec.hw == (24, 32)
    card = {"keypoints": ["a", "b", "c"], "robot": {"name": "r"}}
    save_model(tmp_path / "m.pt", build, net, card)
    build2, net2, card2 = load_model(tmp_path / "m.pt")
    assert build2 == build and card2 == card and isinstance(net2, SPDHNet)
    with torch.inference_mode():
        y2 = net2(x)[0].numpy()     # fp16 weights: close, not equal (uz logits scale with 1 / spread^2)
    np.testing.assert_allclose(y2[:, :3], y.numpy()[:, :3], atol=2e-2)
    np.testing.assert_allclose(y2[:, 3:], y.numpy()[:, 3:], rtol=2e-2, atol=1.0)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable robot pose model"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a robot pose model file"):
        load_model(tmp_path / "other.pt")


def test_joint_positions_from_joint_states_names():
    from hrc_perception.robot_pose.extrinsics import joint_positions
    model = ("j1", "j2", "finger")
    required = np.array([True, True, False])
    q, why = joint_positions(model, ["j2", "x", "j1"], [0.5, 9.0, -0.25], required)
    assert why is None and q.tolist() == [-0.25, 0.5, 0.0]
    q, why = joint_positions(model, ["j1", "other"], [0.1, 0.2], required)
    assert q is None and "lacks j2" in why and "unknown names other" in why
    assert joint_positions(model, ["j1"], [0.1, 0.2])[1] == "1 names but 2 positions"
    assert "non-finite" in joint_positions(model, ["j1", "j2"], [np.nan, 0.0], required)[1]


def test_softmax_heatmaps_of_gaussian_logits_decode_exactly_with_peak_one():
    from hrc_perception.robot_pose.spdh import heatmaps_from_logits
    xyz = _joints_inside(3)
    target = encode(xyz, K_HM, SPEC)
    logits = np.log(np.maximum(target, 1e-30))        # log of a Gaussian: a quadratic
    hm = heatmaps_from_logits(logits, SPEC.sigma_px)
    np.testing.assert_allclose(hm.reshape(6, -1).sum(1), 2 * np.pi * SPEC.sigma_px ** 2, rtol=1e-6)
    d = decode(hm, K_HM, SPEC)
    np.testing.assert_allclose(d.xyz_cam_m, xyz, atol=1e-6)
    assert (np.abs(d.confidence - 1.0) < 0.15).all()
    flat = heatmaps_from_logits(np.zeros_like(logits), SPEC.sigma_px)   # no idea where: low confidence
    assert decode(flat, K_HM, SPEC).confidence.max() < 0.01


def test_spdh_loss_is_lowest_at_the_target_and_trains_presence():
    from hrc_perception.robot_pose.train import spdh_loss
    xyz = _joints_inside(2)
    xyz[1, 2] = 9.0                                   # joint 1 out of the depth range: no target
    target = torch.from_numpy(encode(xyz, K_HM, SPEC))[None]
    good = torch.log(target.clamp_min(1e-30))
    _, heat_good, _ = spdh_loss(good, torch.tensor([[9.0, -9.0]]), target)
    total_bad, heat_bad, pres_bad = spdh_loss(torch.zeros_like(good), torch.tensor([[-9.0, 9.0]]), target)
    assert heat_good < heat_bad and pres_bad > 5.0
    # only the channels with a target count: changing joint 1's logits changes nothing
    moved = good.clone()
    moved[0, 1] = 5.0 * torch.randn_like(moved[0, 1])
    moved[0, 3] = 5.0 * torch.randn_like(moved[0, 3])
    assert torch.isclose(spdh_loss(moved, torch.tensor([[9.0, -9.0]]), target)[1], heat_good)
