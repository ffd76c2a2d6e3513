"""The static background depth: learned from the empty cell, foreground against it, slow
updates that never absorb a person standing still, and its file."""
import numpy as np
import pytest

from hrc_perception.safety.background import BackgroundDepth, ForegroundTolerance, learn_background
from hrc_perception.safety.robot_surface import RobotSurface

H, W = 12, 16


def wall(z=3.0):
    return np.full((H, W), z, np.float32)


def test_learning_ignores_what_passes_and_what_moves():
    rng = np.random.default_rng(0)
    frames = []
    for k in range(20):
        d = wall() + rng.normal(0, 0.005, (H, W)).astype(np.float32)
        if k in (3, 4):
            d[2:6, 2:6] = 1.0                     # someone walking through, two frames of twenty
        moving = np.zeros((H, W), bool)
        d[8:, 8:] = 1.5                           # the robot, parked over this corner the whole time ...
        moving[8:, 8:] = True                     # ... and masked out by its pose
        if k == 7:
            d[0, 0], d[0, 1] = np.nan, np.inf     # invalid readings: ignored
        frames.append((d, moving))
    bg = learn_background(frames)
    assert bg.frames == 20
    assert np.abs(bg.depth_m[:8] - 3.0).max() < 0.02          # the passer-by is not background
    assert (bg.depth_m[8:, 8:] == 0).all()                     # never seen without the robot: no background
    assert bg.known_fraction == pytest.approx(1 - 4 * 8 / (H * W))
    with pytest.raises(ValueError, match="no depth frames"):
        learn_background([])
    with pytest.raises(ValueError, match="shape"):
        learn_background([(wall(), None), (np.zeros((H, W + 1)), None)])


def test_foreground_against_the_background():
    bg = BackgroundDepth(wall(), tolerance=ForegroundTolerance(0.04, 0.01))
    bg.depth_m[:3, :] = 0.0                                 # rows without background
    d = wall()
    d[5, 5] = 3.0 - 0.08                                    # within tolerance at 3 m (0.09 m): background
    d[5, 6] = 3.0 - 0.10                                    # nearer: foreground
    d[5, 7] = 0.0                                           # invalid: not foreground (holes are the caller's)
    d[5, 8] = 3.5                                           # farther: not foreground
    fg = bg.foreground(d)
    assert fg[:2].all()                                     # any valid reading without background around counts
    assert not fg[2].any()                                  # ... the row beside a background takes its depth
    assert fg[5, 6] and not fg[5, 5] and not fg[5, 7] and not fg[5, 8]
    assert fg[3:].sum() == 1
    # a static depth edge: a pixel reading the near side where its background is the far one is not foreground
    edge = wall()
    edge[:, 8:] = 2.0
    bg = BackgroundDepth(np.where(np.arange(W) >= 9, 2.0, 3.0).astype(np.float32) * np.ones((H, 1), np.float32))
    assert not bg.foreground(edge).any()


def test_a_person_standing_still_is_never_absorbed_quickly():
    bg = BackgroundDepth(wall())
    d = wall()
    d[4:8, 4:8] = 1.2                                       # someone standing still
    for t in np.arange(0.0, 60.0, 0.5):                     # a minute at 2 Hz
        assert bg.update(d, t) == 0
        assert bg.foreground(d)[4:8, 4:8].all()
    # ten minutes later: protected pixels (a tracked person) are never absorbed, others (a box put down) are
    protected = np.zeros((H, W), bool)
    protected[4:8, 4:8] = True
    assert bg.update(d, 600.0, protected=protected) == 0 and bg.foreground(d)[4:8, 4:8].all()
    assert bg.update(d, 601.0) == 0                        # unprotected: the clock starts again
    assert bg.update(d, 1201.0) == 16 and not bg.foreground(d).any()


def test_a_break_restarts_the_clock_and_farther_is_quick():
    bg = BackgroundDepth(wall())
    near = wall()
    near[0, 0] = 1.0
    bg.update(near, 0.0, absorb_after_s=10.0)
    bg.update(wall(), 5.0, absorb_after_s=10.0)            # gone for a frame
    bg.update(near, 6.0, absorb_after_s=10.0)
    assert bg.update(near, 12.0, absorb_after_s=10.0) == 0   # 6 s since it came back
    assert bg.update(near, 16.0, absorb_after_s=10.0) == 1
    # a static object taken away: the farther surface is background after reveal_after_s
    far = wall(4.0)
    assert bg.update(far, 20.0, reveal_after_s=2.0) == 0
    assert bg.update(far, 22.0, reveal_after_s=2.0) == H * W
    assert np.allclose(bg.depth_m, 4.0)
    with pytest.raises(ValueError):
        bg.update(far, float("nan"))


def test_save_and_load(tmp_path):
    bg = learn_background([(wall(2.3456), None)] * 6, tolerance=ForegroundTolerance(0.05, 0.02))
    path = bg.save(tmp_path / "bg.npz")
    back = BackgroundDepth.load(path)
    assert back.frames == 6 and back.tolerance == ForegroundTolerance(0.05, 0.02)
    assert np.abs(back.depth_m - bg.depth_m).max() <= 0.0005      # millimetres
    (tmp_path / "bad.npz").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="bad.npz"):
        BackgroundDepth.load(tmp_path / "bad.npz")


def test_robot_surface_explains_points_near_its_links():
    import trimesh

    class Model:                                              # the two attributes from_model reads
        link_meshes = [type("LM", (), {"link": "l1", "mesh": trimesh.creation.box((0.2, 0.2, 0.2))})()]

    surf = RobotSurface.from_model(Model(), spacing_m=0.01)
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.0, 2.0]
    pts = surf.posed({"l1": T})
    assert np.allclose(pts.mean(axis=0), [0, 0, 2.0], atol=0.01)
    probe = np.array([[0.0, 0.0, 2.0 - 0.1 - 0.03], [0.0, 0.0, 2.0 - 0.1 - 0.08], [0.13, 0.0, 2.0]])
    assert surf.explains(probe, pts, 0.04).tolist() == [True, False, True]
    assert surf.explains(probe, pts, np.array([0.01, 0.1, 0.01])).tolist() == [False, True, False]
    with pytest.raises(ValueError):
        RobotSurface({}, 0.0)


def test_background_command_writes_the_synthetic_empty_cell(small_cell_yaml, tmp_path):
    """`hrc-perception background`: the empty cell of a synthetic episode, loadable by the
    monitor; the robot's pixels (masked while learning) and the sky have none."""
    from hrc_perception.cli import main
    out = tmp_path / "bg.npz"
    assert main(["background", "--config", str(small_cell_yaml), "--seed", "3", "--frames", "4",
                 "--out", str(out)]) == 0
    bg = BackgroundDepth.load(out)
    assert bg.frames == 4 and bg.shape == (240, 320) and 0.2 < bg.known_fraction < 1.0
    assert bg.reliable().sum() > 0.5 * (bg.depth_m > 0).sum()     # most background reads in every frame


def test_background_from_a_recorded_empty_cell(small_run, tmp_path):
    """`hrc-perception background --bag`: a recording of the empty cell (here: the synthetic
    empty cell written as a bag), the robot masked at each frame's joint_states placed with
    --base-pose; it agrees with the one learned from the same frames directly."""
    from hrc_perception.cli import main
    from hrc_perception.geometry import quaternion_from_matrix
    from hrc_perception.io.bag import BagWriter
    from hrc_perception.safety.background_sources import episode_background
    from hrc_perception.safety.depth_space import DepthSpaceParams
    ep = small_run.episode(0)
    writer = BagWriter(tmp_path / "empty", namespace="/cell")
    n = ep.cfg.sequence.episode_frames
    for k in range(n):
        writer.add(ep.frame(k, small_run.renderer, people=False))
    writer.close()
    T = ep.frame(0, small_run.renderer, people=False).robot.T_cam_base
    pose = [str(v) for v in [*T[:3, 3], *quaternion_from_matrix(T[:3, :3])]]
    out = tmp_path / "bg.npz"
    assert main(["background", "--bag", str(tmp_path / "empty"), "--base-pose", *pose, "--frames", str(n),
                 "--out", str(out)]) == 0
    bag_bg = BackgroundDepth.load(out)
    model = small_run.assets.robot
    direct = episode_background(ep, small_run.renderer, model, RobotSurface.from_model(model), n, DepthSpaceParams())
    assert bag_bg.frames == n
    same = (bag_bg.depth_m > 0) == (direct.depth_m > 0)
    assert same.mean() > 0.99
    both = (bag_bg.depth_m > 0) & (direct.depth_m > 0)
    assert np.abs(bag_bg.depth_m[both] - direct.depth_m[both]).max() <= 0.001      # millimetres
    # without a base pose, or with a bag of nothing, a clear error
    assert main(["background", "--bag", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert main(["background", "--bag", str(tmp_path / "nothing"), "--base-pose", *pose, "--out", str(out)]) == 2
