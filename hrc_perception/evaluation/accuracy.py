"""Accuracy of the nodes' recorded outputs against the recorded ground truth.

Inputs are deserialized messages as a bag reader gives them (rosbags or rclpy types:
the same field names), paired by header stamp: ``pairs`` = [(estimate, ground truth)].
Each function returns a flat dict of metric name -> number for the demo report.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

from hrc_perception.ros.convert import roi_image_to_mask

MIN_GT_AREA_PX = 16
"""Ground-truth instances with fewer visible pixels are not scored (as in training)."""


def _area_px(inst) -> int:
    """Pixels inside an Instance's mask (0 without a mask)."""
    return int(np.count_nonzero(np.asarray(inst.mask.data))) if inst.mask.width and inst.mask.height else 0


def _tlwh(roi) -> list[float]:
    return [float(roi.x_offset), float(roi.y_offset), float(roi.width), float(roi.height)]


def segmentation_accuracy(pairs: list, height: int, width: int) -> dict:
    """COCO mask and box AP / AP50 of InstanceArray estimates against ground-truth
    InstanceArrays ([height, width] images), plus per-class mask AP50. Ground truth
    under MIN_GT_AREA_PX is a don't-care region (COCO ``iscrowd``)."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    from hrc_perception.segmentation.evaluate import coco_metrics

    names = sorted({i.class_name for _, gt in pairs for i in gt.instances}
                   | {i.class_name for est, _ in pairs for i in est.instances})
    cat = {n: k + 1 for k, n in enumerate(names)}
    images, anns, results = [], [], []
    for img_id, (est, gt) in enumerate(pairs):
        images.append({"id": img_id, "height": height, "width": width})
        for inst in gt.instances:
            if not _area_px(inst):
                continue
            m = roi_image_to_mask(inst.roi, inst.mask, height, width)
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat[inst.class_name],
                         "segmentation": rle, "area": float(m.sum()), "bbox": _tlwh(inst.roi),
                         "iscrowd": int(m.sum() < MIN_GT_AREA_PX)})   # tiny: don't care
        for inst in est.instances:
            if not _area_px(inst):
                continue
            m = roi_image_to_mask(inst.roi, inst.mask, height, width)
            results.append({"image_id": img_id, "category_id": cat[inst.class_name], "score": float(inst.score),
                            "segmentation": mask_utils.encode(np.asfortranarray(m.astype(np.uint8))),
                            "bbox": _tlwh(inst.roi)})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns,
                    "categories": [{"id": v, "name": n} for n, v in cat.items()]}
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
        coco.createIndex()
    m = coco_metrics(coco, results, [im["id"] for im in images])
    out = {"frames": len(pairs), "segm_AP50": m["segm_AP50"], "segm_AP": m["segm_AP"],
           "bbox_AP50": m["bbox_AP50"]}
    out.update({f"segm_AP50 {k}": v for k, v in m.get("per_class_segm_AP50", {}).items() if v is not None})
    return out


def tracking_accuracy(pairs: list, height: int, width: int) -> dict:
    """MOTA, IDF1, ID switches of TrackArray estimates (confirmed tracks matched in
    that image) against ground-truth InstanceArrays (instance ids as identities),
    per class, summed over classes (motmetrics). Ground truth under MIN_GT_AREA_PX is
    a don't-care region: tracks on it (box IoU >= 0.5) are neither hits nor false positives."""
    del height, width
    from hrc_perception.tracking.iou_matching import iou_matrix
    from hrc_perception.tracking.mot import MotFrame, accumulate, summarize

    classes = sorted({i.class_name for _, gt in pairs for i in gt.instances})
    accs = []
    for cls in classes:
        gt_frames, hyp_frames = {}, {}
        for f, (est, gt) in enumerate(pairs):
            g_all = [(i, _area_px(i) >= MIN_GT_AREA_PX) for i in gt.instances if i.class_name == cls]
            g = [i for i, big in g_all if big]
            small = np.array([_tlwh(i.roi) for i, big in g_all if not big]).reshape(-1, 4)
            h = [t for t in est.tracks if t.class_name == cls and t.state == t.CONFIRMED and t.time_since_update == 0]
            if len(small) and h:
                on_small = (iou_matrix(np.array([_tlwh(t.roi) for t in h]), small) >= 0.5).any(axis=1)
                h = [t for t, drop in zip(h, on_small) if not drop]
            gt_frames[f] = MotFrame([i.id for i in g], [_tlwh(i.roi) for i in g] or np.zeros((0, 4)))
            hyp_frames[f] = MotFrame([t.track_id for t in h], [_tlwh(t.roi) for t in h] or np.zeros((0, 4)))
        accs.append(accumulate(gt_frames, hyp_frames))
    if not accs:
        return {"frames": len(pairs)}
    m = summarize(accs)
    return {"frames": len(pairs), "mota": m["mota"], "idf1": m["idf1"], "id_switches": m["id_switches"],
            "objects": m["num_objects"]}


def _part_models(names) -> dict:
    """{name: PartInfo} of the procedural parts among ``names`` (the synthetic cell's
    default parts); other names are left out."""
    from hrc_perception.geometry import sample_surface_m
    from hrc_perception.object_pose.data import PartInfo
    from hrc_perception.sim.parts import procedural_part
    out = {}
    for name in names:
        try:
            part = procedural_part(name)
        except (KeyError, ValueError):
            continue
        pts = sample_surface_m(np.asarray(part.mesh.vertices), np.asarray(part.mesh.faces), 500, seed=0)
        out[name] = PartInfo(name, pts, float(part.diameter_m),
                             bool(len(part.symmetries_continuous) or len(part.symmetries_discrete)))
    return out


def object_pose_accuracy(pairs: list, height: int, width: int) -> dict:
    """Part poses (ObjectPoseArray) against ground truth: each estimate is matched to the
    unmatched ground-truth part of its class nearest in translation (within one
    diameter; greedy, nearest pairs first); per part and overall, the share of matched
    estimates with ADD(-S) under 10% of the diameter (ADD-S for symmetric parts), the
    median translation error (cm), and how many ground-truth parts got an estimate."""
    del height, width
    from hrc_perception.object_pose.metrics import add_or_adds_m
    from hrc_perception.ros.convert import pose_to_matrix

    models = _part_models({p.class_name for _, gt in pairs for p in gt.poses})
    rows, gt_count = [], {}
    for est, gt in pairs:
        g = [(p.class_name, pose_to_matrix(p.pose)) for p in gt.poses if p.class_name in models]
        for name, _ in g:
            gt_count[name] = gt_count.get(name, 0) + 1
        e = [(p.class_name, pose_to_matrix(p.pose)) for p in est.poses if p.class_name in models]
        cand = sorted((float(np.linalg.norm(Te[:3, 3] - Tg[:3, 3])), i, j) for i, (ne, Te) in enumerate(e)
                      for j, (ng, Tg) in enumerate(g) if ne == ng)
        used_e, used_g = set(), set()
        for dist, i, j in cand:
            name = e[i][0]
            if i in used_e or j in used_g or dist > models[name].diameter_m:
                continue
            used_e.add(i)
            used_g.add(j)
            m, Te, Tg = models[name], e[i][1], g[j][1]
            d = add_or_adds_m(m.points_m, m.symmetric, Te[:3, :3], Te[:3, 3], Tg[:3, :3], Tg[:3, 3])
            rows.append((name, d < 0.1 * m.diameter_m, dist))
    out = {"frames": len(pairs), "parts": sum(gt_count.values()), "matched": len(rows)}
    if rows:
        out["add_s_accuracy_0.1d"] = float(np.mean([r[1] for r in rows]))
        out["t_err_median_cm"] = float(np.median([r[2] for r in rows]) * 100)
    for name in sorted(gt_count):
        sel = [r for r in rows if r[0] == name]
        out[f"matched {name}"] = f"{len(sel)}/{gt_count[name]}"
        if sel:
            out[f"add_s_accuracy_0.1d {name}"] = float(np.mean([r[1] for r in sel]))
    return out


def robot_skeleton_accuracy(pairs: list, height: int, width: int) -> dict:
    """Robot skeletons (Skeleton) against ground truth, over the joints inside the image
    (ground-truth visibility 1 or 2): the share the node placed (finite position), the
    mean and median 3D error (cm) of those, and the share within 4 cm of all of them
    (an unplaced joint counts as a miss)."""
    del height, width
    from hrc_perception.ros.ground_truth_msgs import skeleton_to_arrays
    errs, inside = [], 0
    for est, gt in pairs:
        names_g, xyz_gt, _, vis_gt, _ = skeleton_to_arrays(gt)
        names_e, xyz_e, _, _, _ = skeleton_to_arrays(est)
        if names_e != names_g:
            continue
        sel = vis_gt > 0
        inside += int(sel.sum())
        errs += list(np.linalg.norm(xyz_e[sel] - xyz_gt[sel], axis=1))
    e = np.array(errs, dtype=np.float64)
    placed = np.isfinite(e)
    out = {"frames": len(pairs), "joints_in_view": inside}
    if inside:
        out["placed"] = float(placed.mean())
        out["acc_4cm"] = float(np.mean(np.where(placed, e, np.inf) < 0.04))
    if placed.any():
        out["mean_err_cm"] = float(100 * e[placed].mean())
        out["median_err_cm"] = float(100 * np.median(e[placed]))
    return out


def robot_base_pose_accuracy(pairs: list, height: int, width: int) -> dict:
    """Camera-to-robot estimates (PoseStamped) against the true base pose: median and
    last translation (cm) and rotation (deg) error."""
    del height, width
    from hrc_perception.geometry import pose_error
    from hrc_perception.ros.convert import pose_to_matrix
    errs = np.array([pose_error(pose_to_matrix(e.pose), pose_to_matrix(g.pose)) for e, g in pairs])
    return {"estimates": len(pairs), "t_err_median_cm": float(100 * np.median(errs[:, 0])),
            "r_err_median_deg": float(np.median(errs[:, 1])), "t_err_last_cm": float(100 * errs[-1, 0]),
            "r_err_last_deg": float(errs[-1, 1])}


def human_skeleton_accuracy(pairs: list, height: int, width: int) -> dict:
    """People skeletons (SkeletonArray) against ground truth. Each true person with a
    visible joint is matched to the estimated skeleton nearest to it (median 3D distance
    over the joints both have, under 0.5 m; one estimate per person). Over the visible
    joints of the people: the share placed by a matched skeleton, the mean (MPJPE) and
    median 3D error (mm) of those, and the share within 10 cm of all of them (PCK@10cm;
    a joint not placed counts as a miss)."""
    del height, width
    from hrc_perception.ros.ground_truth_msgs import skeleton_to_arrays
    errs, visible, people, matched = [], 0, 0, 0
    for est, gt in pairs:
        estimates = [skeleton_to_arrays(s)[1] for s in est.skeletons if s.model == "coco17"]
        used: set[int] = set()
        for g in gt.skeletons:
            _, xyz_gt, _, vis_gt, _ = skeleton_to_arrays(g)
            sel = vis_gt == 2
            if not sel.any():
                continue
            people += 1
            visible += int(sel.sum())
            best, best_d = None, 0.5
            for k, xyz in enumerate(estimates):
                both = np.isfinite(xyz).all(1) & np.isfinite(xyz_gt).all(1)
                if k in used or not both.any():
                    continue
                d = float(np.median(np.linalg.norm(xyz[both] - xyz_gt[both], axis=1)))
                if d < best_d:
                    best, best_d = k, d
            if best is None:
                errs += [np.nan] * int(sel.sum())
                continue
            used.add(best)
            matched += 1
            errs += list(np.linalg.norm(estimates[best][sel] - xyz_gt[sel], axis=1))
    e = np.array(errs, dtype=np.float64)
    placed = np.isfinite(e)
    out = {"frames": len(pairs), "people_in_view": people, "people_matched": matched, "visible_joints": visible}
    if visible:
        out["placed"] = float(placed.mean())
        out["pck_10cm"] = float(np.mean(np.where(placed, e, np.inf) < 0.10))
    if placed.any():
        out["mpjpe_mm"] = float(1000 * e[placed].mean())
        out["median_err_mm"] = float(1000 * np.median(e[placed]))
    return out
