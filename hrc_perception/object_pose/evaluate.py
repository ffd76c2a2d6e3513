"""`hrc-perception eval object_pose`: 6D pose accuracy per part on held-out BOP data.

    hrc-perception eval object_pose --weights models/object_pose/model.pt --data SYNTH_OUT [--json FILE]

Methods, on the same instances (ground-truth visible masks): DenseFusion without
and with refinement, refined and verified (:mod:`.verify`; a model file with its
parts' surface points), render-and-compare (:mod:`.render_compare`) from the refined
pose and its turns about the part's axes (:func:`.render_compare.turned_starts`; best
final loss; symmetric parts kept as refined) and from the verified pose, and the classical
baseline (:mod:`.baseline`: point-to-plane ICP from the cloud's centroid, and FPFH +
RANSAC global registration then ICP).
Per part and overall: ADD(-S) accuracy at 10% of the diameter (ADD-S for
symmetric parts), ADD(-S) AUC over 0-10 cm, median translation error, median
rotation error (asymmetric parts only: a symmetric part's rotation is ambiguous),
and time per instance. The data must not be the training data (another seed).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from hrc_perception.geometry import make_T
from hrc_perception.object_pose.data import PartInfo, PoseSample, crop_points_cam_m, valid_pixels
from hrc_perception.object_pose.metrics import add_or_adds_m, auc, rotation_error_deg, translation_error_m
from hrc_perception.object_pose.render_compare import turned_starts

METHODS = ("densefusion", "densefusion_refined", "densefusion_verified", "render_compare", "verified_render_compare",
           "icp_centroid", "icp_global")
BASELINE_MAX_POINTS = 1000


def summarise(rows: list[dict], parts: dict[str, PartInfo]) -> dict:
    """Per-method, per-part and overall figures of result rows (one per instance
    and method: method, part, add_s_m, t_err_m, r_err_deg, seconds; seconds None where
    the method ran nothing for the instance: left out of the time median, None if all are)."""
    out: dict = {}
    for method in sorted({r["method"] for r in rows}, key=lambda m: METHODS.index(m) if m in METHODS else 99):
        per = {}
        mrows = [r for r in rows if r["method"] == method]
        for name in [n for n in parts if any(r["part"] == n for r in mrows)] + ["all"]:
            sel = [r for r in mrows if name == "all" or r["part"] == name]
            d = np.array([r["add_s_m"] for r in sel])
            thr = np.array([parts[r["part"]].diameter_m * 0.1 for r in sel])
            rot = [r["r_err_deg"] for r in sel if r["r_err_deg"] is not None]
            times = [r["seconds"] for r in sel if r["seconds"] is not None]      # None: nothing was run
            per[name] = {"instances": len(sel), "add_s_accuracy_0.1d": float(np.mean(np.nan_to_num(d, nan=np.inf) < thr)),
                         "add_s_auc": auc(d), "t_err_median_cm": float(np.nanmedian([r["t_err_m"] for r in sel]) * 100),
                         "r_err_median_deg": float(np.median(rot)) if rot else None,
                         "ms_per_instance_median": float(np.median(times) * 1000) if times else None}
        out[method] = per
    return out


def _row(method: str, part: PartInfo, sample: PoseSample, T: np.ndarray | None, seconds: float | None) -> dict:
    R_gt, t_gt = sample.T_cam_obj[:3, :3], sample.T_cam_obj[:3, 3]
    if T is None or not np.isfinite(T).all():
        return {"method": method, "part": part.name, "add_s_m": float("nan"), "t_err_m": float("nan"),
                "r_err_deg": None, "seconds": seconds}
    return {"method": method, "part": part.name, "seconds": seconds,
            "add_s_m": add_or_adds_m(part.points_m, part.symmetric, T[:3, :3], T[:3, 3], R_gt, t_gt),
            "t_err_m": translation_error_m(T[:3, 3], t_gt),
            "r_err_deg": None if part.symmetric else rotation_error_deg(T[:3, :3], R_gt)}


def evaluate_samples(predictor, samples: list[PoseSample], parts_by_id: dict[int, PartInfo],
                     baselines: bool = True, quiet: bool = False) -> list[dict]:
    """Result rows of every sample whose part the model knows (see :func:`summarise`).
    DenseFusion runs one instance at a time (as timed); the refined pose is timed as
    the main network plus refinement, the verified one as all three stages; the
    render-and-compare rows as the fit alone, each as the predictor's starts give it
    (``render_compare``: 'turns', the refined pose's turns, :func:`.render_compare.turned_starts`,
    symmetric parts kept as refined with no fit (no time); ``verified_render_compare``:
    'verified', 1 start, the verified pose)."""
    from hrc_perception.object_pose.baseline import centroid_init, global_registration, icp_point_to_plane
    rows = []
    t_start = time.perf_counter()
    for i, s in enumerate(samples):
        part = parts_by_id[s.obj_id]
        if part.name not in predictor.classes:
            continue
        cls = predictor.classes.index(part.name)
        t0 = time.perf_counter()
        main = predictor.estimate([(s.crop, cls, s.K)], iterations=0, verify=False)[0]
        t1 = time.perf_counter()
        refined = predictor.estimate([(s.crop, cls, s.K)], verify=False)[0]
        t2 = time.perf_counter()
        rows.append(_row("densefusion", part, s, getattr(main, "T_cam_obj", None), t1 - t0))
        rows.append(_row("densefusion_refined", part, s, getattr(refined, "T_cam_obj", None), t2 - t1))
        verified = None
        if predictor.verifier is not None:
            t0 = time.perf_counter()
            verified = predictor.estimate([(s.crop, cls, s.K)])[0]
            rows.append(_row("densefusion_verified", part, s, getattr(verified, "T_cam_obj", None),
                             time.perf_counter() - t0))
        rc = predictor.render_compare
        if rc is not None and s.view is not None and not isinstance(refined, str):
            R, t = refined.T_cam_obj[:3, :3], refined.T_cam_obj[:3, 3]
            if predictor.symmetric[cls]:        # as the predictor's 'turns' starts: kept as refined, no fit
                rows.append(_row("render_compare", part, s, refined.T_cam_obj, None))
            else:
                t0 = time.perf_counter()
                Rh, th, loss = rc.refine(cls, s.view, *turned_starts(R, t, rc.centroids_m[cls]))
                best = int(np.argmin(loss))
                rows.append(_row("render_compare", part, s, make_T(Rh[best], th[best]), time.perf_counter() - t0))
            T_verified = getattr(verified, "T_cam_obj", None)
            if T_verified is not None:
                t0 = time.perf_counter()
                Rr, tr, _ = rc.refine(cls, s.view, T_verified[None, :3, :3], T_verified[None, :3, 3])
                rows.append(_row("verified_render_compare", part, s, make_T(Rr[0], tr[0]),
                                 time.perf_counter() - t0))
        if baselines:
            valid = valid_pixels(s.crop)
            if len(valid) > BASELINE_MAX_POINTS:
                valid = valid[np.linspace(0, len(valid) - 1, BASELINE_MAX_POINTS).round().astype(np.int64)]
            scene = crop_points_cam_m(s.crop, valid, s.K)
            t0 = time.perf_counter()
            T_c = icp_point_to_plane(part.points_m, scene, centroid_init(scene), part.diameter_m)
            t1 = time.perf_counter()
            T_g = icp_point_to_plane(part.points_m, scene, global_registration(part.points_m, scene, part.diameter_m),
                                     part.diameter_m)
            t2 = time.perf_counter()
            rows.append(_row("icp_centroid", part, s, T_c, t1 - t0))
            rows.append(_row("icp_global", part, s, T_g, t2 - t1))
        if not quiet and ((i + 1) % 100 == 0 or i + 1 == len(samples)):
            print(f"eval object_pose: {i + 1}/{len(samples)} instances ({time.perf_counter() - t_start:.0f} s)",
                  file=sys.stderr)
    return rows


def real_scene_samples(scene_dir: Path, models_dir: Path, crop_px: int, seg_weights: Path | None = None,
                       min_visible_px: int = 50, seg_rpn_proposals: int | None = None
                       ) -> tuple[dict[int, PartInfo], list[PoseSample], dict]:
    """Instances of a real BOP scene (e.g. Linemod-Occluded) in its frames that have a
    depth image: (parts by obj_id, named like the synthetic cell names mesh-folder
    parts, ``obj_000001``; samples; notes). Ground-truth visible masks are rendered from
    the poses and meshes (occlusion by the other objects and by the measured depth,
    :func:`hrc_perception.io.bop_coco.visible_masks`). With ``seg_weights`` the masks are
    the segmentation model's instead: per object, the detection of its class with the
    highest mask IoU with the ground-truth mask (at least 0.5); objects without one are
    counted as missed in the notes. seg_rpn_proposals: the segmentation model's RPN
    proposals (None: the model's)."""
    import json

    from PIL import Image

    from hrc_perception.io.bop import gt_pose_T, scene_rgb_path
    from hrc_perception.io.bop_coco import load_meshes, visible_masks
    from hrc_perception.object_pose.data import iter_scene_samples, load_bop_parts, read_depth_m
    parts = load_bop_parts(models_dir)
    gt = json.loads((scene_dir / "scene_gt.json").read_text())
    cams = json.loads((scene_dir / "scene_camera.json").read_text())
    meshes = load_meshes(Path(models_dir), set(parts), 1e-3)
    seg = None
    if seg_weights is not None:
        from hrc_perception.segmentation.predictor import SegmentationPredictor
        seg = SegmentationPredictor(seg_weights, score_threshold=0.3, rpn_proposals=seg_rpn_proposals)
    masks, notes = {}, {"mask_source": "segmentation model" if seg else "rendered ground truth", "missed": {}}
    for key in sorted(gt, key=int):
        depth_path = scene_dir / "depth" / f"{int(key):06d}.png"
        rgb_path = scene_rgb_path(scene_dir, int(key))
        if not depth_path.is_file() or rgb_path is None:
            continue
        K = np.asarray(cams[key]["cam_K"], np.float64).reshape(3, 3)
        depth = read_depth_m(depth_path, float(cams[key].get("depth_scale", 1.0)))
        posed = [(*meshes[int(e["obj_id"])], gt_pose_T(e)) for e in gt[key]]
        rendered = visible_masks(K, depth.shape[1], depth.shape[0], posed, depth)
        det = seg.predict(np.asarray(Image.open(rgb_path).convert("RGB"))) if seg is not None else None
        for k, (e, m) in enumerate(zip(gt[key], rendered)):
            if det is None:
                masks[(int(key), k)] = m
                continue
            name = parts[int(e["obj_id"])].name
            ious = [float((m & d).sum() / max((m | d).sum(), 1)) if c == name else 0.0
                    for c, d in zip(det.class_names, det.masks)]
            if ious and max(ious) >= 0.5:
                masks[(int(key), k)] = det.masks[int(np.argmax(ious))]
            else:
                notes["missed"][name] = notes["missed"].get(name, 0) + 1
    samples = list(iter_scene_samples(scene_dir, crop_px, min_visible_px, masks=masks, with_views=True))
    return parts, samples, notes


def _refined_pose(predictor, parts_by_id: dict[int, PartInfo], s: PoseSample) -> np.ndarray | None:
    name = parts_by_id[s.obj_id].name
    if name not in predictor.classes:
        return None
    return getattr(predictor.estimate([(s.crop, predictor.classes.index(name), s.K)])[0], "T_cam_obj", None)


def _scene_rgb(scene_root: Path, s: PoseSample) -> np.ndarray:
    """The colour image of a sample: ``scene_root/SCENE/rgb`` (synth) or ``scene_root/rgb`` (a real scene)."""
    from PIL import Image

    from hrc_perception.io.bop import scene_rgb_path
    scene = scene_root / s.scene if (scene_root / s.scene).is_dir() else scene_root
    return np.asarray(Image.open(scene_rgb_path(scene, s.image_id)).convert("RGB"))


def evaluate(weights: Path, data: Path, device: str = "cpu", baselines: bool = True,
             max_instances: int | None = None, quiet: bool = False, models: Path | None = None,
             seg_weights: Path | None = None, figure: Path | None = None, render_compare: bool = True,
             seg_rpn_proposals: int | None = None) -> dict:
    """Figures of a model on a ``synth --dataset bop`` output: {"summary": per method,
    per part (see :func:`summarise`), "instances": n}. max_instances: an evenly spaced
    subset of that many instances. models: ``data`` is a real BOP scene folder and
    this its models folder (:func:`real_scene_samples`; seg_weights: with the
    segmentation model's masks, seg_rpn_proposals its RPN proposals). render_compare:
    also score the render-and-compare rows. figure: also draw the refined poses of every instance of 4 of the frames
    (:func:`hrc_perception.object_pose.figure.pose_figure`)."""
    from hrc_perception.object_pose.predictor import ObjectPosePredictor
    from hrc_perception.object_pose.data import bop_root, load_bop_split
    predictor = ObjectPosePredictor(weights, device=device, render_compare=render_compare)
    notes = None
    if models is not None:
        parts_by_id, samples, notes = real_scene_samples(Path(data), Path(models), predictor.build.crop_px,
                                                         seg_weights, seg_rpn_proposals=seg_rpn_proposals)
    else:
        parts_by_id, samples = load_bop_split(Path(data), crop_px=predictor.build.crop_px, quiet=quiet,
                                              with_views=render_compare)
    all_samples = samples
    if max_instances is not None and len(samples) > max_instances:
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, max_instances).round().astype(int)]
    rows = evaluate_samples(predictor, samples, parts_by_id, baselines=baselines, quiet=quiet)
    parts = {p.name: p for p in parts_by_id.values()}
    out = {"summary": summarise(rows, parts), "instances": len(samples)}
    if figure is not None:
        from hrc_perception.object_pose.figure import pose_figure
        scene_root = Path(data) if models is not None else bop_root(Path(data)) / "train"
        out["figure"] = str(pose_figure(all_samples, parts_by_id, lambda s: _refined_pose(predictor, parts_by_id, s),
                                        lambda s: _scene_rgb(scene_root, s), figure))
    if notes is not None:
        out["notes"] = notes
    return out


def _ms(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.1f}"


def print_table(summary: dict, file=None) -> None:
    """One line per method and part."""
    file = file or sys.stdout
    print(f"{'method':<24}{'part':<12}{'n':>5}{'ADD(-S)<0.1d':>13}{'AUC':>7}{'t err cm':>9}{'R err deg':>10}"
          f"{'ms/inst':>9}", file=file)
    for method, per in summary.items():
        for name, m in per.items():
            r = f"{m['r_err_median_deg']:>10.1f}" if m["r_err_median_deg"] is not None else f"{'-':>10}"
            print(f"{method:<24}{name:<12}{m['instances']:>5d}{m['add_s_accuracy_0.1d']:>13.3f}{m['add_s_auc']:>7.3f}"
                  f"{m['t_err_median_cm']:>9.2f}{r}{_ms(m['ms_per_instance_median']):>9}", file=file)
