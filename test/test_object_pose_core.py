"""DenseFusion core: crops and back-projection, point sampling, ADD / ADD-S, the
symmetric loss, pose composition in refinement, the networks' shapes, the model file."""
import numpy as np
import pytest
import torch

from hrc_perception.geometry import make_K, rot_z, rotation_about_axis, sample_surface_m
from hrc_perception.object_pose.data import (choose_pixels, crop_instance, crop_points_cam_m,
                                             square_window, valid_pixels)
from hrc_perception.object_pose.dataset import network_inputs
from hrc_perception.object_pose.loss import add_s_distance, densefusion_loss, posed_points
from hrc_perception.object_pose.metrics import add_m, adds_m, auc, rotation_error_deg, translation_error_m
from hrc_perception.object_pose.model import BuildConfig, load_model, save_model
from hrc_perception.object_pose.network import (PoseNet, PoseRefiner, compose_correction, quaternion_to_matrix,
                                                to_estimate_frame)

K = make_K(500.0, 500.0, 320.0, 240.0)


def _scene(h=480, w=640):
    rgb = np.zeros((h, w, 3), np.uint8)
    depth = np.zeros((h, w), np.float32)
    mask = np.zeros((h, w), bool)
    mask[100:140, 200:220] = True          # 40 rows x 20 columns
    depth[100:140, 200:220] = 0.8
    rgb[100:140, 200:220] = (200, 10, 10)
    return rgb, depth, mask


def test_square_window_is_centred_on_the_mask_box_with_margin():
    _, _, mask = _scene()
    x0, y0, side = square_window(mask, margin=0.5)
    assert side == pytest.approx(60.0)                  # the longer side (40) * 1.5
    assert x0 + side / 2 == pytest.approx(210.0) and y0 + side / 2 == pytest.approx(120.0)
    assert square_window(np.zeros((4, 4), bool)) is None


def test_crop_keeps_source_pixels_and_back_projects_like_the_full_image():
    rgb, depth, mask = _scene()
    crop = crop_instance(rgb, depth, mask, crop_px=16, window=(200.0, 100.0, 40.0))
    # nearest sampling: crop column j <- image column floor(200 + (j + 0.5) * 40 / 16)
    assert crop.src_uv_px[0].tolist() == [int(np.floor(200 + (j + 0.5) * 2.5)) for j in range(16)]
    valid = valid_pixels(crop)
    assert len(valid) == 16 * 8                       # columns 200..219 are half the window
    pts = crop_points_cam_m(crop, valid, K)
    rows, cols = np.divmod(valid, 16)
    u, v = crop.src_uv_px[0, cols], crop.src_uv_px[1, rows]
    np.testing.assert_allclose(pts[:, 0], (u - 320.0) / 500.0 * 0.8, atol=1e-9)
    np.testing.assert_allclose(pts[:, 1], (v - 240.0) / 500.0 * 0.8, atol=1e-9)
    np.testing.assert_allclose(pts[:, 2], 0.8)
    assert (crop.rgb.reshape(-1, 3)[valid] == (200, 10, 10)).all()


def test_crop_outside_the_image_is_empty_not_wrapped():
    rgb, depth, mask = _scene()
    crop = crop_instance(rgb, depth, mask, crop_px=8, window=(-20.0, -20.0, 16.0))
    assert not crop.mask.any() and (crop.depth_m == 0).all() and (crop.rgb == 0).all()
    with pytest.raises(ValueError, match="differ in size"):
        crop_instance(rgb, depth[:10], mask)


def test_nan_and_negative_depth_are_invalid():
    rgb, depth, mask = _scene()
    depth[100:120] = np.nan
    depth[120:130] = -1.0
    crop = crop_instance(rgb, depth, mask, crop_px=64)
    assert np.isfinite(crop.depth_m).all() and (crop.depth_m >= 0).all()
    pts = crop_points_cam_m(crop, valid_pixels(crop), K)
    assert np.allclose(pts[:, 2], 0.8)


def test_choose_pixels_subsets_repeats_and_is_deterministic_without_rng():
    valid = np.arange(10) * 3
    sub = choose_pixels(valid, 4, np.random.default_rng(0))
    assert len(set(sub.tolist())) == 4 and set(sub.tolist()) <= set(valid.tolist())
    assert choose_pixels(valid, 4, None).tolist() == [0, 9, 18, 27]
    fill = choose_pixels(valid[:3], 7, None)
    assert fill.tolist() == [0, 3, 6, 0, 3, 6, 0]
    with pytest.raises(ValueError):
        choose_pixels(valid[:0], 4, None)


def test_network_inputs_none_without_depth():
    rgb, depth, mask = _scene()
    crop = crop_instance(rgb, np.zeros_like(depth), mask)
    assert network_inputs(crop, K, 32) is None
    crop = crop_instance(rgb, depth, mask)
    arr, pts, choose = network_inputs(crop, K, 32)
    assert arr.shape == (3, 64, 64) and pts.shape == (32, 3) and choose.shape == (32,)


def test_surface_samples_lie_on_the_mesh_and_cover_it():
    # a unit square in z = 0 made of two triangles
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    p = sample_surface_m(v, f, 4000, seed=1)
    assert np.allclose(p[:, 2], 0) and (p[:, :2] >= -1e-6).all() and (p[:, :2] <= 1 + 1e-6).all()
    assert abs(p[:, 0].mean() - 0.5) < 0.02 and abs(p[:, 1].mean() - 0.5) < 0.02
    np.testing.assert_array_equal(p, sample_surface_m(v, f, 4000, seed=1))


# ----------------------------------------------------------------------------- metrics

def test_add_and_adds_hand_cases():
    pts = np.array([[0.1, 0, 0], [-0.1, 0, 0], [0, 0.1, 0], [0, -0.1, 0]])
    I, t0 = np.eye(3), np.zeros(3)
    assert add_m(pts, I, t0 + [0, 0, 0.01], I, t0) == pytest.approx(0.01)
    # a quarter turn about z maps this point set onto itself: ADD sees the turn, ADD-S does not
    Rz = rot_z(np.pi / 2)
    assert add_m(pts, Rz, t0, I, t0) == pytest.approx(0.1 * np.sqrt(2))
    assert adds_m(pts, Rz, t0, I, t0) == pytest.approx(0.0, abs=1e-12)
    assert rotation_error_deg(Rz, I) == pytest.approx(90.0)
    assert translation_error_m([0.03, 0.04, 0], t0) == pytest.approx(0.05)


def test_auc_of_known_distances():
    assert auc(np.zeros(5)) == pytest.approx(1.0, abs=1e-3)
    assert auc(np.full(5, 0.05)) == pytest.approx(0.5, abs=2e-3)     # correct for thresholds above 5 cm
    assert auc(np.array([np.nan, 0.0])) == pytest.approx(0.5, abs=2e-3)   # a failure counts as a miss
    assert auc(np.full(3, 1.0)) == 0.0


# ----------------------------------------------------------------------------- losses

def test_add_s_loss_is_invariant_to_the_parts_symmetry_and_add_is_not():
    # a ring of 12 points: symmetric under turns of 30 degrees about z
    ang = np.arange(12) * np.pi / 6
    ring = torch.tensor(np.stack([0.05 * np.cos(ang), 0.05 * np.sin(ang), np.zeros(12)], 1), dtype=torch.float32)
    R_gt = torch.tensor(rotation_about_axis(np.array([1.0, 1.0, 0.0]), 0.4), dtype=torch.float32)
    t_gt = torch.tensor([0.1, -0.2, 0.9])
    R_pred = (R_gt @ torch.tensor(rot_z(np.pi / 6), dtype=torch.float32))[None, None]      # the turned part
    gt = (ring @ R_gt.T + t_gt)[None]
    pred = posed_points(R_pred, t_gt[None, None], ring[None])
    d_sym = add_s_distance(pred, gt, torch.tensor([True]))
    d_asym = add_s_distance(pred, gt, torch.tensor([False]))
    assert d_sym.item() == pytest.approx(0.0, abs=1e-6)
    assert d_asym.item() == pytest.approx(2 * 0.05 * np.sin(np.pi / 12), rel=1e-4)   # chord of 30 degrees


def test_add_s_gradient_pulls_towards_the_closest_point():
    gt = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]])
    pred = torch.tensor([[[[0.1, 0, 0], [0.9, 0, 0]]]], requires_grad=True)
    add_s_distance(pred, gt, torch.tensor([True])).sum().backward()
    assert pred.grad[0, 0, 0, 0] > 0 and pred.grad[0, 0, 1, 0] < 0


def test_densefusion_loss_rewards_confidence_in_good_points():
    pts = torch.randn(1, 50, 3) * 0.05
    R = torch.eye(3)[None]
    t = torch.zeros(1, 3)
    R_pred = torch.eye(3).expand(1, 2, 3, 3)
    t_pred = torch.tensor([[[0.0, 0, 0], [0.05, 0, 0]]])       # point 0 right, point 1 off by 5 cm
    sym = torch.tensor([False])
    good, d = densefusion_loss(R_pred, t_pred, torch.tensor([[0.9, 0.1]]), pts, R, t, sym)
    bad, _ = densefusion_loss(R_pred, t_pred, torch.tensor([[0.1, 0.9]]), pts, R, t, sym)
    assert d[0].tolist() == pytest.approx([0.0, 0.05], abs=1e-6)
    assert good < bad


# ----------------------------------------------------------------------------- refinement geometry

def test_correction_composes_to_the_true_pose():
    rng = np.random.default_rng(3)
    R_est = torch.tensor(rotation_about_axis(rng.normal(size=3), 0.7), dtype=torch.float64)[None]
    t_est = torch.tensor([[0.05, -0.02, 0.8]], dtype=torch.float64)
    R_gt = torch.tensor(rotation_about_axis(rng.normal(size=3), 1.1), dtype=torch.float64)[None]
    t_gt = torch.tensor([[0.02, 0.01, 0.85]], dtype=torch.float64)
    model = torch.tensor(rng.normal(size=(1, 20, 3)) * 0.05)
    cloud = model @ R_gt.transpose(1, 2) + t_gt[:, None]
    # in the estimate's frame the cloud is the model under the correction T_est^-1 T_gt
    in_est = to_estimate_frame(cloud, R_est, t_est)
    R_corr = R_est.transpose(1, 2) @ R_gt
    t_corr = (R_est.transpose(1, 2) @ (t_gt - t_est)[..., None])[..., 0]
    torch.testing.assert_close(in_est, model @ R_corr.transpose(1, 2) + t_corr[:, None])
    R_new, t_new = compose_correction(R_est, t_est, R_corr, t_corr)
    torch.testing.assert_close(R_new, R_gt)
    torch.testing.assert_close(t_new, t_gt)


def test_quaternion_to_matrix_matches_numpy():
    from hrc_perception.geometry import matrix_from_quaternion
    q_xyzw = np.array([0.1, -0.3, 0.5, 0.8])
    q_xyzw /= np.linalg.norm(q_xyzw)
    R = quaternion_to_matrix(torch.tensor(np.r_[q_xyzw[3], q_xyzw[:3]]))
    np.testing.assert_allclose(R.numpy(), matrix_from_quaternion(q_xyzw), atol=1e-12)


# ----------------------------------------------------------------------------- networks and model file

def test_forward_shapes_and_the_refiner_starts_at_identity():
    net, ref = PoseNet(3).eval(), PoseRefiner(3).eval()
    B, N = 2, 40
    crop = torch.randn(B, 3, 64, 64)
    pts = torch.randn(B, N, 3) * 0.03 + torch.tensor([0.0, 0.0, 0.9])
    choose = torch.randint(0, 64 * 64, (B, N))
    cls = torch.tensor([0, 2])
    q, t, c, col = net(crop, pts, choose, cls)
    assert q.shape == (B, N, 4) and t.shape == (B, N, 3) and c.shape == (B, N) and col.shape == (B, 32, N)
    torch.testing.assert_close(q.norm(dim=2), torch.ones(B, N))
    assert ((c > 0) & (c < 1)).all()
    dq, dt = ref(pts - pts.mean(1, keepdim=True), col, cls)
    torch.testing.assert_close(dq, torch.tensor([[1.0, 0, 0, 0]] * B))
    torch.testing.assert_close(dt, torch.zeros(B, 3))


def test_model_file_round_trip_and_clear_errors(tmp_path):
    build = BuildConfig(num_classes=2, n_points=32)
    net, ref = build.build()
    path = tmp_path / "m.pt"
    save_model(path, build, net, ref, {"classes": ["gear", "bolt"]})
    b2, net2, ref2, card = load_model(path)
    assert b2 == build and card["classes"] == ["gear", "bolt"] and ref2 is not None
    for k, v in net.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(net2.state_dict()[k], v.half().float())
    save_model(path, build, net, ref, {"classes": ["gear"]})
    with pytest.raises(ValueError, match="1 classes"):
        load_model(path)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_valid_source_pixels_counts_image_pixels_not_upsampled_copies():
    rgb, depth, mask = _scene()
    small = np.zeros_like(mask)
    small[10:12, 10:13] = True
    depth[:] = 0.5
    depth[10, 10] = 0.0
    crop = crop_instance(rgb, depth, small, crop_px=64)
    from hrc_perception.object_pose.data import valid_source_pixels
    assert len(valid_pixels(crop)) > 100
    assert valid_source_pixels(crop) == 5           # 2 x 3 pixels, one without depth


def test_real_lmo_frame_clouds_lie_on_the_posed_meshes():
    """The real Linemod-Occluded frame with depth: rendered visible masks give crops
    whose back-projected depth lies on each object's mesh under its ground-truth pose."""
    from pathlib import Path

    from scipy.spatial import cKDTree

    from hrc_perception.object_pose.evaluate import real_scene_samples
    lmo = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "lmo"
    if not (lmo / "test" / "000002" / "depth").is_dir():
        pytest.skip("../shared/realdata/lmo not present")
    parts, samples, notes = real_scene_samples(lmo / "test" / "000002", lmo / "models", 64)
    assert notes["mask_source"] == "rendered ground truth"
    assert {s.image_id for s in samples} == {3} and len(samples) >= 6
    assert all(parts[s.obj_id].name == f"obj_{s.obj_id:06d}" for s in samples)
    for s in samples:
        cloud = crop_points_cam_m(s.crop, valid_pixels(s.crop), s.K)
        part = parts[s.obj_id]
        posed = part.points_m @ s.T_cam_obj[:3, :3].T + s.T_cam_obj[:3, 3]
        dist = cKDTree(posed).query(cloud)[0]
        assert np.median(dist) < 0.01, (part.name, np.median(dist))
