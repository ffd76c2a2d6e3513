"""viz.draw: colours, depth colour map, masks, skeletons, axes, boxes, safety banner, latency table (no ROS)."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from hrc_perception.geometry import make_K, make_T, project
from hrc_perception.skeletons import chain_bones
from hrc_perception.viz.draw import (AXIS_COLORS, SAFETY_COLORS, VIS_OCCLUDED, VIS_OUTSIDE, VIS_VISIBLE,
                                     depth_colormap, draw_axes, draw_boxes, draw_latency_table, draw_mask_outlines,
                                     draw_masks, draw_safety_banner, draw_skeleton, id_color, instance_colors,
                                     safety_level_name)

H, W = 120, 160


def _canvas(value=40):
    return np.full((H, W, 3), value, np.uint8)


def _drawn(before: np.ndarray, after: Image.Image) -> np.ndarray:
    return np.any(np.asarray(after) != before, axis=2)


def test_instance_colors_are_distinct_and_background_black():
    c = instance_colors(40)
    assert c.shape == (40, 3) and c.dtype == np.uint8
    assert np.all(c[0] == 0)
    assert len({tuple(x) for x in c[1:]}) == 39
    # neighbouring ids clearly apart (golden-angle hues)
    assert np.all(np.abs(c[1:-1].astype(int) - c[2:].astype(int)).sum(axis=1) > 60)
    assert all(id_color(i) == tuple(int(v) for v in c[i]) for i in range(1, 40))
    assert instance_colors(0).shape == (0, 3)


def test_depth_colormap_black_where_invalid_near_red_far_blue():
    depth = np.tile(np.linspace(500, 3000, W).astype(np.uint16), (H, 1))
    depth[:, :10] = 0
    rgb = depth_colormap(depth)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert np.all(rgb[:, :10] == 0)
    assert np.all(rgb[:, 10:].max(axis=2) > 0)
    near, far = rgb[0, 12].astype(int), rgb[0, -1].astype(int)
    assert near[0] > near[2] and far[2] > far[0]
    assert np.all(depth_colormap(np.zeros((4, 5), np.uint16)) == 0)


def test_masks_tint_only_masked_pixels():
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), np.uint16)
    mask[10:40, 20:60] = 1
    mask[50:90, 80:150] = 7
    out = draw_masks(rgb, mask)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], rgb[mask == 0])
    changed = np.any(out != rgb, axis=2)
    assert changed[mask > 0].mean() > 0.95
    # the tint pulls towards the instance's colour
    c7 = instance_colors(8)[7].astype(float)
    before = np.abs(rgb[mask == 7].astype(float) - c7).sum(axis=1).mean()
    after = np.abs(out[mask == 7].astype(float) - c7).sum(axis=1).mean()
    assert after < 0.7 * before
    with pytest.raises(ValueError, match="does not match"):
        draw_masks(rgb, mask[:-1])


def test_mask_outlines_touch_only_the_boundary():
    rgb = _canvas()
    mask = np.zeros((H, W), np.uint16)
    mask[20:60, 30:90] = 3
    out = draw_mask_outlines(rgb, mask)
    changed = np.any(out != rgb, axis=2)
    assert changed[20, 30:90].all() and changed[59, 30:90].all() and changed[20:60, 30].all()
    assert not changed[21:59, 31:89].any() and not changed[mask == 0].any()
    assert np.all(out[20, 50] == instance_colors(4)[3])


def test_skeleton_drawn_near_joint_projections_only():
    K = make_K(150.0, 150.0, 80.0, 60.0)
    xyz = np.array([[-0.3, -0.2, 2.0], [0.0, 0.0, 2.0], [0.3, 0.1, 2.0], [0.2, 0.3, 2.0], [0.0, 0.3, 2.0]])
    uv = project(xyz, K)
    uv[4] = np.nan                                   # unknown joint
    vis = np.array([VIS_VISIBLE, VIS_OCCLUDED, VIS_VISIBLE, VIS_OUTSIDE, VIS_VISIBLE])
    base = _canvas(0)
    pil = Image.fromarray(base)
    n = draw_skeleton(ImageDraw.Draw(pil), uv, chain_bones(5), (255, 0, 255), visibility=vis)
    assert n == 3
    drawn = _drawn(base, pil)
    assert drawn.sum() > 50
    # every drawn pixel lies within radius + line width of a shown joint or a bone between shown joints
    rows, cols = np.nonzero(drawn)
    p = np.stack([cols, rows], 1).astype(float)

    def seg_dist(a, b):
        d = b - a
        t = np.clip(((p - a) @ d) / (d @ d), 0, 1)
        return np.linalg.norm(p - (a + t[:, None] * d), axis=1)
    dist = np.minimum(seg_dist(uv[0], uv[1]), seg_dist(uv[1], uv[2]))
    assert dist.max() <= 5.5
    for j in (0, 1, 2):                             # something at every shown joint
        u, v = np.round(uv[j]).astype(int)
        assert drawn[v - 4:v + 5, u - 4:u + 5].any()
    u, v = np.round(uv[3]).astype(int)               # the joint outside is not drawn
    assert not drawn[v - 2:v + 3, u - 2:u + 3].any()
    # filled dot at a visible joint, ring (centre untouched) at an occluded one
    assert drawn[int(round(uv[0][1])), int(round(uv[0][0]))]
    assert tuple(np.asarray(pil)[int(round(uv[2][1])), int(round(uv[2][0]))]) == (255, 0, 255)

    # confidence below the threshold hides a joint and its bones
    pil2 = Image.fromarray(base)
    n2 = draw_skeleton(ImageDraw.Draw(pil2), uv[:3], chain_bones(3), (255, 0, 255),
                       confidence=np.array([0.9, 0.1, 0.9]), min_confidence=0.3)
    assert n2 == 2
    d2 = _drawn(base, pil2)
    mid = ((uv[0] + uv[1]) / 2).round().astype(int)
    assert not d2[mid[1] - 1:mid[1] + 2, mid[0] - 1:mid[0] + 2].any()


def test_dashed_skeleton_has_gaps():
    base = _canvas(0)
    solid, dashed = Image.fromarray(base), Image.fromarray(base)
    uv = np.array([[10.0, 60.0], [150.0, 60.0]])
    draw_skeleton(ImageDraw.Draw(solid), uv, [(0, 1)], (255, 255, 255), width=1)
    draw_skeleton(ImageDraw.Draw(dashed), uv, [(0, 1)], (255, 255, 255), width=1, dashed=True)
    row_s, row_d = _drawn(base, solid)[60, 20:140], _drawn(base, dashed)[60, 20:140]
    assert row_s.all() and 0.4 < row_d.mean() < 0.9


def test_axes_project_to_the_right_colours_and_skip_points_behind():
    K = make_K(150.0, 150.0, 80.0, 60.0)
    T = make_T(np.eye(3), [0.0, 0.0, 1.0])
    base = _canvas(0)
    pil = Image.fromarray(base)
    assert draw_axes(ImageDraw.Draw(pil), T, K, length_m=0.2)
    a = np.asarray(pil)
    uv = project(np.array([[0.0, 0, 1.0], [0.2, 0, 1.0], [0, 0.2, 1.0]]), K)
    for k in (0, 1):          # x to the right, y down: half way along each axis is its colour
        u, v = ((uv[0] + uv[k + 1]) / 2).round().astype(int)
        assert tuple(a[v, u]) == AXIS_COLORS[k]
    behind = Image.fromarray(base)
    assert not draw_axes(ImageDraw.Draw(behind), make_T(np.eye(3), [0.0, 0.0, -1.0]), K)
    assert not draw_axes(ImageDraw.Draw(behind), make_T(np.eye(3), [np.nan, 0.0, 1.0]), K)
    assert not _drawn(base, behind).any()


def test_boxes_outline_and_label():
    base = _canvas(0)
    pil = Image.fromarray(base)
    n = draw_boxes(ImageDraw.Draw(pil), np.array([[30, 40, 50, 30], [0, 0, 0, 10], [10, 10, np.nan, 5]]),
                   labels=["7 gear", "x", "y"], colors=[(0, 255, 0)] * 3)
    assert n == 1
    a = np.asarray(pil)
    assert tuple(a[40, 55]) == (0, 255, 0) and tuple(a[69, 55]) == (0, 255, 0) and tuple(a[55, 30]) == (0, 255, 0)
    assert not _drawn(base, pil)[45:65, 35:75].any()     # inside stays
    assert _drawn(base, pil)[25:39, 30:80].any()         # the label above the box


@pytest.mark.parametrize("level, name", [(0, "OK"), (1, "WARNING"), (2, "PROTECTIVE_STOP"), (3, "UNKNOWN"),
                                         (9, "UNKNOWN"), ("WARNING", "WARNING")])
def test_safety_banner_colour_per_level(level, name):
    base = _canvas(0)
    pil = Image.fromarray(base)
    box = draw_safety_banner(pil, level, 0.734, "person near robot")
    assert safety_level_name(level) == name
    a = np.asarray(pil)
    assert box[0] == 0 and box[1] == 0 and box[2] == W - 1 and 8 < box[3] < 30
    assert tuple(a[2, W - 2]) == SAFETY_COLORS[name]
    assert np.array_equal(a[box[3] + 1:], base[box[3] + 1:])


def test_latency_table_in_corner_only():
    base = _canvas(200)
    pil = Image.fromarray(base)
    box = draw_latency_table(pil, [("camera", 0.004, 0.009, 30), ("humans", 0.120, float("nan"), 3),
                                   ("robot", 42.0, 43.0, 5)])
    x0, y0, x1, y1 = box
    assert x0 < 10 and y1 > H - 10 and x1 < W and y0 > 0
    drawn = _drawn(base, pil)
    outside = np.ones_like(drawn)
    outside[y0:y1 + 1, x0:x1 + 1] = False
    assert not drawn[outside].any() and drawn[y0:y1 + 1, x0:x1 + 1].all()   # darkened box
    assert draw_latency_table(Image.fromarray(base), []) is None
    tr = draw_latency_table(Image.fromarray(base), [("a", 0.1, 0.2, 1)], corner="top-right")
    assert tr[2] > W - 10 and tr[1] < 10


def test_depth_verdict_view_colours_what_the_depth_path_saw():
    from hrc_perception.safety.depth_space import LABEL_INVALID, LABEL_NONE, LABEL_ROBOT, LABEL_UNEXPLAINED
    from hrc_perception.viz.draw import DEPTH_LABEL_COLORS, draw_depth_verdict
    depth = np.full((60, 80), 3.0, np.float32)
    depth[:, :10] = 0.0
    labels = np.full((60, 80), LABEL_NONE, np.int8)
    labels[:, :10] = LABEL_INVALID
    labels[40:50, 20:30] = LABEL_ROBOT
    labels[40:50, 50:60] = LABEL_UNEXPLAINED
    rgb = draw_depth_verdict(depth, labels, 2, 0.3, "unexplained foreground", (55.0, 45.0))
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8
    assert np.argmax(rgb[44, 24]) == 2 and np.argmax(rgb[44, 54]) == 0     # robot blue, possible person red
    assert DEPTH_LABEL_COLORS[LABEL_UNEXPLAINED][0] > 200
    assert (rgb[30, 5] == 0).all() and rgb[30, 40, 0] == rgb[30, 40, 1] == rgb[30, 40, 2] > 0   # none black, wall grey
    with pytest.raises(ValueError):
        draw_depth_verdict(depth, labels[:10], 2)
