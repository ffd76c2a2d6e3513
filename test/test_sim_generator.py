"""The synthetic cell end to end: rendered geometry agrees with the ground truth."""
import numpy as np
import open3d as o3d

from hrc_perception.geometry import backproject_pixels, invert_T, project, transform_points
from hrc_perception.sim.config import load_cell_config
from hrc_perception.sim.episode import keypoint_visibility
from hrc_perception.sim.frame import VIS_OCCLUDED, VIS_OUTSIDE, VIS_VISIBLE
from hrc_perception.sim.generator import SynthRun
from hrc_perception.sim.humans import COCO17_BONES


def _surface_distance_m(vertices, faces, points) -> np.ndarray:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, np.float32)), o3d.core.Tensor(np.asarray(faces, np.uint32)))
    return scene.compute_distance(o3d.core.Tensor(np.asarray(points, np.float32))).numpy()


def _pixels_3d(frame, instance_id, rng, n=300):
    """Camera-frame points [M, 3] of up to n random pixels of an instance (exact depth)."""
    rows, cols = np.nonzero(frame.instance_mask == instance_id)
    if len(rows) > n:
        pick = rng.choice(len(rows), n, replace=False)
        rows, cols = rows[pick], cols[pick]
    uv = np.stack([cols, rows], 1).astype(float)
    return backproject_pixels(uv, frame.depth_clean_m[rows, cols].astype(float), frame.K)


def test_masks_have_depth(small_frames):
    for f in small_frames:
        assert f.rgb.shape == (240, 320, 3) and f.rgb.dtype == np.uint8
        assert f.depth_mm.dtype == np.uint16 and f.instance_mask.dtype == np.uint16
        assert np.all(f.depth_clean_m[f.instance_mask > 0] > 0)
        assert {i.instance_id for i in f.instances} >= set(np.unique(f.instance_mask)) - {0}


def test_part_pixels_lie_on_the_part_mesh(small_run, small_frames):
    """Every sampled part pixel, back-projected with the exact depth and moved into the
    model frame with the ground-truth pose, lies on that part's mesh."""
    rng = np.random.default_rng(0)
    meshes = {p.name: p.mesh for p in small_run.assets.parts}
    checked = 0
    for f in small_frames:
        for part in f.parts:
            pts = _pixels_3d(f, part.instance_id, rng)
            if len(pts) == 0:
                continue
            mesh = meshes[part.class_name]
            d = _surface_distance_m(mesh.vertices, mesh.faces, transform_points(invert_T(part.T_cam_obj), pts))
            assert np.percentile(d, 99) < 1e-3, (part.class_name, d.max())
            checked += 1
    assert checked >= 5


def test_robot_pixels_lie_on_the_posed_robot(small_run, small_frames):
    """Robot pixels lie on the link meshes posed by the ground-truth joint angles and base pose."""
    robot = small_run.assets.robot
    rng = np.random.default_rng(1)
    for f in small_frames[::3]:
        T_link = robot.link_transforms(f.robot.joint_positions_rad)
        verts, faces, off = [], [], 0
        for lm in robot.link_meshes:
            verts.append(transform_points(f.robot.T_cam_base @ T_link[lm.link], np.asarray(lm.mesh.vertices)))
            faces.append(np.asarray(lm.mesh.faces) + off)
            off += len(lm.mesh.vertices)
        pts = _pixels_3d(f, f.robot.instance_id, rng)
        assert len(pts) > 100
        d = _surface_distance_m(np.concatenate(verts), np.concatenate(faces), pts)
        assert np.percentile(d, 99) < 1e-3, d.max()


def _point_segment_distance(p, a, b):
    ab = b - a
    s = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
    return np.linalg.norm(p - (a + s[:, None] * ab), axis=1)


def test_person_pixels_surround_their_skeleton(small_frames):
    rng = np.random.default_rng(2)
    seen = 0
    for f in small_frames:
        for h in f.humans:
            pts = _pixels_3d(f, h.instance_id, rng)
            if len(pts) < 20:
                continue
            xyz = h.keypoints.xyz_cam_m
            d = np.min([_point_segment_distance(pts, xyz[a], xyz[b]) for a, b in COCO17_BONES], axis=0)
            # torso front and head top lie up to ~0.2 m from the COCO bones; a wrong pose is metres off
            assert np.percentile(d, 95) < 0.25, np.percentile(d, 95)
            seen += 1
    assert seen >= 3


def test_keypoint_projection_round_trip(small_frames):
    """3D joint -> pixel -> (pixel, depth) -> 3D; visible joints sit just behind the surface."""
    for f in small_frames:
        for kp, tol in [(f.robot.keypoints, 0.12)] + [(h.keypoints, 0.18) for h in f.humans]:
            uv = project(kp.xyz_cam_m, f.K)
            np.testing.assert_allclose(uv, kp.uv_px, atol=1e-6)
            np.testing.assert_allclose(backproject_pixels(uv, kp.xyz_cam_m[:, 2], f.K), kp.xyz_cam_m, atol=1e-9)
            for j in np.flatnonzero(kp.visibility == VIS_VISIBLE):
                c, r = np.floor(uv[j] + 0.5).astype(int)
                window = f.depth_clean_m[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
                assert window.max() >= kp.xyz_cam_m[j, 2] - tol
            h, w = f.depth_mm.shape
            inside = (uv[:, 0] > -0.5) & (uv[:, 0] < w - 0.5) & (uv[:, 1] > -0.5) & (uv[:, 1] < h - 0.5)
            assert np.array_equal(kp.visibility != VIS_OUTSIDE, inside & (kp.xyz_cam_m[:, 2] > 0))


def test_keypoint_visibility_rules():
    mask = np.zeros((10, 10), np.uint16)
    depth = np.full((10, 10), 3.0, np.float32)
    mask[:, :5], depth[:, :5] = 7, 2.0       # instance 7 on the left at 2 m
    mask[:, 5:], depth[:, 5:] = 9, 1.0       # instance 9 on the right, nearer
    xyz = np.array([[0, 0, 2.1], [0, 0, 2.1], [0, 0, 2.1], [0, 0, -1.0]])
    uv = np.array([[1.0, 1.0], [8.0, 8.0], [12.0, 3.0], [1.0, 1.0]])
    vis = keypoint_visibility(xyz, uv, 7, mask, depth, tol_m=0.15)
    assert vis.tolist() == [VIS_VISIBLE, VIS_OCCLUDED, VIS_OUTSIDE, VIS_OUTSIDE]


def test_noisy_depth_follows_clean_depth(small_run, small_frames):
    """Sensor depth errors are stereo-like: small in disparity (depth error ~ z^2)."""
    baseline = small_run.cfg.camera.baseline_m
    for f in small_frames:
        valid = f.depth_mm > 0
        assert valid.mean() > 0.6
        assert not np.any(valid & (f.depth_clean_m == 0))
        z = f.depth_clean_m[valid].astype(float)
        fb = f.K[0, 0] * baseline
        disparity_err_px = np.abs(fb / (f.depth_mm[valid] / 1000.0) - fb / z)
        # sigma <= 0.12 px plus 1/8 px quantization; flying pixels at edges are rare outliers
        assert np.median(disparity_err_px) < 0.15
        assert np.mean(disparity_err_px < 0.5) > 0.97


def test_identities_stable_within_an_episode(small_frames):
    ep0 = [f for f in small_frames if f.episode == 0]
    assert len(ep0) == 5
    parts0 = [(p.instance_id, p.class_name) for p in ep0[0].parts]
    for a, b in zip(ep0, ep0[1:]):
        assert [(p.instance_id, p.class_name) for p in b.parts] == parts0
        assert b.robot.instance_id == a.robot.instance_id
        for hb in b.humans:
            ha = next((h for h in a.humans if h.instance_id == hb.instance_id), None)
            if ha is not None:  # the same person moved a little, not another person
                assert np.max(np.linalg.norm(hb.keypoints.xyz_cam_m - ha.keypoints.xyz_cam_m, axis=1)) < 0.35
        # parts move only when carried, and then continuously
        for pa, pb in zip(a.parts, b.parts):
            assert np.linalg.norm(pb.T_cam_obj[:3, 3] - pa.T_cam_obj[:3, 3]) < 0.3


def test_deterministic_and_order_independent(small_cell_yaml, small_frames):
    cfg = load_cell_config(small_cell_yaml)
    other = SynthRun(cfg, seed=3)
    f7 = other.frame(7)          # straight to the second episode
    f2 = other.frame(2)          # and back
    for a, b in [(f7, small_frames[7]), (f2, small_frames[2])]:
        assert a.stamp_ns == b.stamp_ns
        for name in ("rgb", "depth_mm", "instance_mask"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        np.testing.assert_array_equal(a.robot.joint_positions_rad, b.robot.joint_positions_rad)
    different = SynthRun(cfg, seed=4).frame(2)
    assert not np.array_equal(different.rgb, small_frames[2].rgb)


def test_episodes_differ(small_frames):
    a, b = small_frames[4], small_frames[5]
    assert a.episode == 0 and b.episode == 1
    assert not np.allclose(a.T_world_cam, b.T_world_cam)
    assert b.stamp_ns > a.stamp_ns


def test_an_empty_cell_frame_is_the_same_instant_without_people(small_run):
    """Episode.frame(people=False): what a recording of the empty cell would see (the
    background of the depth-space safety path is learned from such frames)."""
    ep = small_run.episode(0)
    full, empty = ep.frame(2, small_run.renderer), ep.frame(2, small_run.renderer, people=False)
    people = {i.instance_id for i in full.instances if i.category == "person"}
    assert people and full.humans and not empty.humans
    assert not np.isin(empty.instance_mask, list(people)).any() and np.isin(full.instance_mask, list(people)).any()
    assert np.array_equal(empty.robot.joint_positions_rad, full.robot.joint_positions_rad)
    assert np.array_equal(empty.robot.T_cam_base, full.robot.T_cam_base)
    # where a person stood, the empty cell sees what was behind them: farther
    where = np.isin(full.instance_mask, list(people)) & (empty.depth_clean_m > 0)
    assert (empty.depth_clean_m[where] > full.depth_clean_m[where]).all()


def test_table_clutter_is_background_among_the_parts_and_moves_no_other_draw(small_cell_yaml, small_frames):
    """A cell with clutter (unmodelled objects on the table) renders the same parts, robot,
    people and camera as without it: the clutter has its own generator; its pixels are
    background (instance id 0) and lie on the table among the parts, clear of them."""
    import dataclasses

    from hrc_perception.sim.config import ClutterConfig
    cfg = load_cell_config(small_cell_yaml)
    run = SynthRun(dataclasses.replace(cfg, clutter=ClutterConfig(count=(6, 6), size_m=(0.05, 0.15))), seed=3)
    ep, plain_ep = run.episode(0), SynthRun(cfg, seed=3).episode(0)
    assert len(ep.static_items) > len(plain_ep.static_items)
    a, b = run.frame(2), small_frames[2]
    np.testing.assert_array_equal(a.T_world_cam, b.T_world_cam)
    np.testing.assert_array_equal(a.robot.joint_positions_rad, b.robot.joint_positions_rad)
    assert [(i.instance_id, i.class_name) for i in a.instances] == [(i.instance_id, i.class_name) for i in b.instances]
    for pa, pb in zip(a.parts, b.parts):
        np.testing.assert_array_equal(pa.T_cam_obj, pb.T_cam_obj)
    # the clutter shows: background pixels nearer to the camera than the plain cell's there
    nearer = (a.instance_mask == 0) & (b.instance_mask == 0) & (a.depth_clean_m > 0) & (
        a.depth_clean_m < b.depth_clean_m - 0.02)
    assert nearer.sum() > 200
    # and stands on the table top, clear of the parts
    clutter = ep.static_items[len(plain_ep.static_items):]
    part_xy = np.array([T[:2, 3] for T in ep.scene(0).part_T_world])
    for item in clutter:
        assert item.instance_id == 0
        assert abs(float(item.vertices_world_m[:, 2].min()) - ep.layout.table_height_m) < 1e-4
        centre_xy = item.vertices_world_m[:, :2].mean(axis=0)
        if len(part_xy):
            assert np.linalg.norm(part_xy - centre_xy, axis=1).min() > 0.02


def test_rich_materials_and_camera_effects_change_only_the_looks(small_cell_yaml, small_frames):
    """Rich background materials and camera effects come from their own generators: the
    same camera, robot, parts, people, masks and depth as the plain cell; the background's
    colours differ (rich materials) and so does the whole image (effects)."""
    import dataclasses

    from hrc_perception.sim.config import AppearanceConfig, CameraEffectsConfig
    cfg = load_cell_config(small_cell_yaml)
    rich = dataclasses.replace(cfg, appearance=AppearanceConfig(background_materials="rich"))
    a, b = SynthRun(rich, seed=3).frame(2), small_frames[2]
    np.testing.assert_array_equal(a.T_world_cam, b.T_world_cam)
    np.testing.assert_array_equal(a.instance_mask, b.instance_mask)
    np.testing.assert_array_equal(a.depth_clean_m, b.depth_clean_m)
    np.testing.assert_array_equal(a.robot.joint_positions_rad, b.robot.joint_positions_rad)
    bg = b.instance_mask == 0
    changed = np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max(axis=2) > 8
    assert changed[bg].mean() > 0.5
    ep = SynthRun(rich, seed=3).episode(0)
    assert all(it.instance_id == 0 for it in ep.static_items)
    assert len({it.material.texture for it in ep.static_items}) >= 2
    fx = CameraEffectsConfig(exposure_gain=(1.5, 1.5), defocus_sigma_px=(1.0, 1.0), jpeg_quality=(50, 50))
    c = SynthRun(dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, effects=fx)), seed=3).frame(2)
    np.testing.assert_array_equal(c.instance_mask, b.instance_mask)
    np.testing.assert_array_equal(c.depth_mm, b.depth_mm)
    assert c.rgb.mean() > b.rgb.mean() + 5           # brighter
    assert np.abs(np.diff(c.rgb.astype(float), axis=1)).mean() < np.abs(np.diff(b.rgb.astype(float), axis=1)).mean()


def test_parts_gap_packs_the_parts(small_cell_yaml):
    """parts.gap_m: the clearance between the parts' bounding circles (default 0.02 m);
    negative lets them stand closer than their circles allow."""
    import dataclasses
    cfg = load_cell_config(small_cell_yaml)

    def closest(gap_m, seed):
        pc = dataclasses.replace(cfg.parts, count=(6, 6), area_x_m=(-0.2, 0.0), area_y_m=(-0.1, 0.1), gap_m=gap_m)
        ep = SynthRun(dataclasses.replace(cfg, parts=pc), seed=seed).episode(0)
        xy = np.array([T[:2, 3] for T in ep.scene(0).part_T_world])
        r = np.array([0.5 * ep.assets.parts[c].diameter_m for c in ep.part_class])
        clear = [np.hypot(*(xy[i] - xy[j])) - r[i] - r[j] for i in range(len(xy)) for j in range(i)]
        return min(clear) if clear else np.inf

    assert all(closest(0.02, s) > 0.02 for s in range(3))
    assert min(closest(-0.05, s) for s in range(3)) < 0.0
    assert all(closest(-0.05, s) > -0.05 for s in range(3))
