"""The soft splatting renderer against open3d's ray casting of the same mesh, and
render-and-compare refinement of a perturbed pose on a ray-cast view."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

torch = pytest.importorskip("torch")
o3d = pytest.importorskip("open3d")
trimesh = pytest.importorskip("trimesh")

from hrc_perception.geometry import sample_surface_m  # noqa: E402
from hrc_perception.object_pose.render_compare import (RenderCompareRefiner, axis_angle_to_matrix,  # noqa: E402
                                                       render_view)
from hrc_perception.render.splat import area_per_point_m2, splat  # noqa: E402

K = np.array([[572.4, 0.0, 325.3], [0.0, 573.6, 242.0], [0.0, 0.0, 1.0]])
W, H = 640, 480


def _l_mesh():
    """A flat L: a 10 x 2 x 2 cm bar with a 2 x 6 x 2 cm arm at one end (no symmetry),
    model frame, metres: (vertices, faces)."""
    bar = trimesh.creation.box(extents=[0.10, 0.02, 0.02])
    arm = trimesh.creation.box(extents=[0.02, 0.06, 0.02])
    arm.apply_translation([0.04, 0.04, 0.0])
    mesh = trimesh.util.concatenate([bar, arm])
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)


def _ray_cast(V, F, R, t):
    """Exact depth [H, W] (metres, 0 = miss) of the mesh posed by R, t."""
    scene = o3d.t.geometry.RaycastingScene()
    mesh = o3d.t.geometry.TriangleMesh()
    mesh.vertex.positions = o3d.core.Tensor((V @ R.T + t).astype(np.float32))
    mesh.triangle.indices = o3d.core.Tensor(F.astype(np.int32))
    scene.add_triangles(mesh)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    dirs = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    hit = scene.cast_rays(o3d.core.Tensor(np.concatenate([np.zeros_like(dirs), dirs], -1)
                                          .reshape(-1, 6).astype(np.float32)))["t_hit"].numpy().reshape(H, W)
    return np.where(np.isfinite(hit), hit * dirs[..., 2], 0.0).astype(np.float32)


POSES = [(Rotation.from_euler("xyz", a, degrees=True).as_matrix(), np.array(t))
         for a, t in [([30, -20, 10], [0.02, -0.01, 0.8]), ([120, 40, -60], [-0.05, 0.03, 1.1]),
                      ([-70, 10, 150], [0.0, 0.05, 0.9])]]


@pytest.mark.parametrize("R,t", POSES)
def test_splatted_silhouette_and_depth_match_ray_casting(R, t):
    V, F = _l_mesh()
    depth = _ray_cast(V, F, R, t)
    view = render_view(depth > 0, depth, K)
    points = sample_surface_m(V, F, 500, 0)
    sil, depth_r, _ = splat(torch.from_numpy(points), area_per_point_m2(points),
                                 torch.tensor(R[None], dtype=torch.float32), torch.tensor(t[None], dtype=torch.float32),
                                 torch.tensor(K, dtype=torch.float32), view.window)
    sil, depth_r = sil[0].numpy(), depth_r[0].numpy()
    inside, rendered = view.mask > 0.5, sil > 0.5
    iou = (inside & rendered).sum() / (inside | rendered).sum()
    assert iou > 0.75, iou
    both = rendered & (view.depth_m > 0)
    assert np.median(np.abs(depth_r[both] - view.depth_m[both])) < 0.003


def test_points_behind_the_camera_give_no_splats_and_gradients_are_finite():
    V, F = _l_mesh()
    points = torch.from_numpy(sample_surface_m(V, F, 300, 0))
    depth = _ray_cast(V, F, *POSES[0])
    view = render_view(depth > 0, depth, K)
    R = torch.eye(3).repeat(2, 1, 1)
    t = torch.tensor([[0.0, 0.0, 0.8], [0.0, 0.0, -0.5]], requires_grad=True)
    sil, depth_r, _ = splat(points, 1e-5, R, t, torch.tensor(K, dtype=torch.float32), view.window)
    assert float(sil[1].detach().abs().sum()) == 0.0 and float(depth_r[1].detach().abs().sum()) == 0.0
    (sil.sum() + depth_r.sum()).backward()
    assert torch.isfinite(t.grad).all() and float(t.grad[0].abs().sum()) > 0


def test_axis_angle_to_matrix_is_rodrigues():
    w = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.9], [1e-6, 0.0, 0.0]], dtype=torch.float64)
    np.testing.assert_allclose(axis_angle_to_matrix(w).numpy(), Rotation.from_rotvec(w.numpy()).as_matrix(),
                               atol=1e-9)


def _add_m(points, R_a, t_a, R_b, t_b):
    return float(np.linalg.norm((points @ R_a.T + t_a) - (points @ R_b.T + t_b), axis=1).mean())


@pytest.mark.parametrize("R,t", POSES)
def test_refinement_brings_a_perturbed_pose_back(R, t):
    """Start 8 degrees and 8 mm off: the fit ends within a quarter of the start's ADD,
    and its loss is lower than the start's."""
    V, F = _l_mesh()
    depth = _ray_cast(V, F, R, t)
    view = render_view(depth > 0, depth, K)
    points = sample_surface_m(V, F, 1000, 0)
    refiner = RenderCompareRefiner([points], [0.11], iterations=30)
    dR = Rotation.from_rotvec(np.radians(8.0) * np.array([0.6, -0.48, 0.64])).as_matrix()
    R0, t0 = dR @ R, t + np.array([0.006, -0.004, 0.004])
    Rr, tr, loss = refiner.refine(0, view, R0[None], t0[None])
    start = _add_m(points, R0, t0, R, t)
    assert _add_m(points, Rr[0], tr[0], R, t) < 0.25 * start
    start_loss = float(refiner.losses(0, view, torch.tensor(R0[None], dtype=torch.float32),
                                      torch.tensor(t0[None], dtype=torch.float32))[0])
    assert loss[0] < start_loss


def test_non_finite_starts_come_back_unchanged_with_infinite_loss():
    V, F = _l_mesh()
    depth = _ray_cast(V, F, *POSES[0])
    view = render_view(depth > 0, depth, K)
    refiner = RenderCompareRefiner([sample_surface_m(V, F, 500, 0)], [0.11], iterations=3)
    R0 = np.stack([POSES[0][0], np.full((3, 3), np.nan)])
    t0 = np.stack([POSES[0][1], POSES[0][1]])
    Rr, tr, loss = refiner.refine(0, view, R0, t0)
    assert np.isfinite(loss[0]) and np.isinf(loss[1])
    assert np.isnan(Rr[1]).all()


def test_view_covers_the_mask_with_its_margin():
    mask = np.zeros((H, W), bool)
    mask[100:140, 600:640] = True                   # at the image's right edge
    depth = np.where(mask, 0.9, 0.0).astype(np.float32)
    view = render_view(mask, depth, K, size=32)
    assert view.window.side == 64 and view.mask.shape == (32, 32)
    # the share of the mask in crop pixels, times the crop pixel's area, is the mask's area
    assert view.mask.sum() * (view.window.side / 32) ** 2 == pytest.approx(mask.sum(), rel=1e-3)
    assert (view.depth_m[view.mask == 0] == 0).all() and (view.depth_m[view.mask == 1] == pytest.approx(0.9))
    assert render_view(np.zeros((H, W), bool), depth, K) is None


def test_a_frames_parts_fitted_together_as_each_alone():
    """refine_many: two parts of different classes (different point counts, padded), each
    with its own view and starts, end where each ends fitted alone; no jobs, no results."""
    V, F = _l_mesh()
    box = trimesh.creation.box((0.08, 0.05, 0.03))
    parts = [sample_surface_m(V, F, 1000, 0), sample_surface_m(np.asarray(box.vertices), np.asarray(box.faces), 300, 1)]
    refiner = RenderCompareRefiner(parts, [0.11, 0.1], iterations=6)
    views, starts = [], []
    for k, (mesh, (R, t)) in enumerate(zip([(V, F), (np.asarray(box.vertices), np.asarray(box.faces))], POSES)):
        depth = _ray_cast(*mesh, R, t)
        views.append(render_view(depth > 0, depth, K))
        dR = Rotation.from_rotvec(np.radians(6.0 + 4 * k) * np.array([0.6, -0.48, 0.64])).as_matrix()
        starts.append((np.stack([dR @ R, dR.T @ R]), np.stack([t + 0.005, t - 0.004])))
    together = refiner.refine_many([(k, views[k], *starts[k]) for k in range(2)])
    for k in range(2):
        alone = refiner.refine(k, views[k], *starts[k])
        for a, b in zip(together[k], alone):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert together[k][0].shape == (2, 3, 3) and np.isfinite(together[k][2]).all()
    assert refiner.refine_many([]) == []
