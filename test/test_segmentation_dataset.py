"""COCO training data for Mask R-CNN: masks and boxes match the synthetic ground truth; augmentation
moves image and masks together."""
import numpy as np
import pytest

from hrc_perception.cli import main
from hrc_perception.geometry import masks_to_boxes_xyxy
from hrc_perception.segmentation.dataset import Augment, CocoInstances


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory, small_cell_yaml):
    out = tmp_path_factory.mktemp("segdata") / "s"
    assert main(["synth", "--config", str(small_cell_yaml), "--frames", "3", "--seed", "8", "--out", str(out),
                 "--dataset", "coco", "--quiet"]) == 0
    return out / "coco"


def test_samples_match_ground_truth(coco_dir, small_cell_yaml):
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    ds = CocoInstances(coco_dir, min_area_px=1)
    assert len(ds) == 3 and ds.class_names[:2] == ["panda", "person"]
    frame = SynthRun(load_cell_config(small_cell_yaml), seed=8).frame(1)
    image, target = ds[1]
    assert image.shape == (3, 240, 320) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    by_class = {}
    for inst in frame.instances:
        m = frame.instance_mask == inst.instance_id
        if m.any():
            by_class.setdefault(ds.class_names.index(inst.class_name) + 1, []).append(m)
    assert sorted(target["labels"].tolist()) == sorted(k for k, v in by_class.items() for _ in v)
    for label, mask in zip(target["labels"].tolist(), target["masks"].numpy().astype(bool)):
        assert any(np.array_equal(mask, m) for m in by_class[label])
    boxes = target["boxes"].numpy()
    for (x0, y0, x1, y1), mask in zip(boxes, target["masks"].numpy()):
        rows, cols = np.nonzero(mask)
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_flip_moves_masks_with_the_image(coco_dir):
    plain = CocoInstances(coco_dir)
    flipped = CocoInstances(coco_dir, augment=Augment(hflip_p=1.0, scale_range=(1.0, 1.0), jitter=0.0, blur_p=0.0,
                                                      noise_sigma=(0.0, 0.0)))
    (im0, t0), (im1, t1) = plain[0], flipped[0]
    np.testing.assert_allclose(im1.numpy(), im0.numpy()[:, :, ::-1], atol=1 / 255)
    assert np.array_equal(t1["masks"].numpy(), t0["masks"].numpy()[:, :, ::-1])
    assert t1["labels"].tolist() == t0["labels"].tolist()


def _zoomed(coco_dir, s):
    return CocoInstances(coco_dir, augment=Augment(hflip_p=0.0, scale_range=(s, s), jitter=0.0, blur_p=0.0,
                                                   noise_sigma=(0.0, 0.0)))


def test_zoom_out_shrinks_objects_inside_the_same_frame(coco_dir):
    (im0, t0), (im1, t1) = CocoInstances(coco_dir)[0], _zoomed(coco_dir, 0.5)[0]
    assert im1.shape == im0.shape and t1["masks"].shape[1:] == t0["masks"].shape[1:]
    assert t1["labels"].tolist() == t0["labels"].tolist()          # nothing leaves the frame when zooming out
    area0, area1 = t0["masks"].sum(dim=(1, 2)).double(), t1["masks"].sum(dim=(1, 2)).double()
    big = area0 > 400
    assert big.any()
    np.testing.assert_allclose((area1[big] / area0[big]).numpy(), 0.25, rtol=0.15)
    # the box shrinks by the zoom factor too, and the masks sit on the scaled image
    w0 = t0["boxes"][big, 2] - t0["boxes"][big, 0]
    w1 = t1["boxes"][big, 2] - t1["boxes"][big, 0]
    np.testing.assert_allclose((w1 / w0).numpy(), 0.5, atol=0.1)
    covered = t1["masks"].bool().any(dim=0).numpy()
    pad = (im1.numpy() * 255).round() == np.array([124, 116, 104])[:, None, None]
    assert not pad.all(axis=0)[covered].any()                        # no mask pixel on the grey padding


def test_zoom_in_keeps_the_frame_size_and_crops(coco_dir):
    (im0, t0), (im1, t1) = CocoInstances(coco_dir)[0], _zoomed(coco_dir, 2.0)[0]
    assert im1.shape == im0.shape
    assert len(t1["boxes"]) == len(t1["labels"]) == len(t1["masks"]) <= len(t0["labels"])
    assert (t1["masks"].sum(dim=(1, 2)) > 0).all()


def test_augmentation_is_reproducible_per_epoch(coco_dir):
    a, b = CocoInstances(coco_dir, augment=Augment(), seed=1), CocoInstances(coco_dir, augment=Augment(), seed=1)
    assert np.array_equal(a[2][0].numpy(), b[2][0].numpy())
    b.epoch = 1
    assert not np.array_equal(a[2][0].numpy(), b[2][0].numpy())


def test_tiny_instances_are_dropped(coco_dir):
    all_, big = CocoInstances(coco_dir, min_area_px=1), CocoInstances(coco_dir, min_area_px=16)
    for k in range(3):
        areas = all_[k][1]["masks"].sum(dim=(1, 2)).tolist()
        assert len(big[k][1]["labels"]) == sum(a >= 16 for a in areas)


def test_boxes_of_empty_and_single_pixel_masks():
    masks = np.zeros((2, 5, 6), np.uint8)
    masks[1, 2, 3] = 1
    boxes, keep = masks_to_boxes_xyxy(masks)
    assert keep.tolist() == [False, True] and boxes[1].tolist() == [3, 2, 4, 3]


def test_missing_annotations_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no annotations.json"):
        CocoInstances(tmp_path)
