"""`hrc-perception eval human_pose`: 2D accuracy on real COCO person crops and 3D accuracy
on synthetic sequences.

Real (``--coco FILE``, COCO person keypoints json with images beside it): the backend on
each annotated person's ground-truth box; PCK@0.2 (a labelled joint is correct within
0.2 x the box's longer side; a person the backend misses counts all its joints wrong)
and OKS AP (pycocotools keypoints evaluation, score = the mean joint confidence).

Synthetic (``--synthetic-frames N``): frames of the synthetic cell; every person with
at least ``min_visible_joints`` visible joints gives a box and a mask from the ground
truth instance mask, the backend's 2D joints and the depth lifting
(:func:`~hrc_perception.human_pose.lifting.lift_joints`, noisy sensor depth), or the
`spdh` backend's 3D joints on the depth crop. MPJPE (mm) and PCK@10cm in 3D over the
visible joints the pipeline returns (confidence >= 0.3, the node's ``min_confidence``;
before smoothing), and the fraction of visible joints it returns. The
`oracle_2d` row lifts the ground-truth 2D joints: the error of the depth lifting alone.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from hrc_perception.geometry import masks_to_boxes_xyxy
from hrc_perception.human_pose.front_back import LEFT, RIGHT, facing_cos
from hrc_perception.human_pose.lifting import LiftingParams
from hrc_perception.skeletons import COCO17_NAMES

PCK_FRACTION = 0.2
PCK3D_THRESHOLD_M = 0.10
FACING_COS = 0.5      # facing the camera: the body's forward within 60 degrees of the direction to the camera


def load_coco17(coco_json: Path, layout: str | None = None):
    """A person-keypoints json as a pycocotools COCO with COCO-17 keypoints, and its layout
    (:func:`~hrc_perception.io.keypoint_layouts.coco_dataset_to_coco17`: CrowdPose, MPII,
    AI Challenger and Halpe files are mapped; ``layout`` forces one)."""
    from pycocotools.coco import COCO

    from hrc_perception.io.keypoint_layouts import coco_dataset_to_coco17
    dataset, layout = coco_dataset_to_coco17(json.loads(Path(coco_json).read_text()), layout, str(coco_json))
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
        coco.createIndex()
    return coco, layout


def evaluate_coco(backend, coco_json: Path, layout: str | None = None, log=None) -> dict:
    """PCK@0.2, OKS AP/AP50 and time per crop of a 2D backend on real person crops of a
    COCO-format json (keypoints of any known layout, scored as COCO-17 on the joints the
    layout has; ``layout``: see :func:`load_coco17`). A note goes to ``log`` (stderr)
    when the file is not in COCO-17."""
    from PIL import Image
    from pycocotools.cocoeval import COCOeval

    from hrc_perception.io.keypoint_layouts import LAYOUTS, coco17_sources
    coco_json = Path(coco_json)
    coco, layout = load_coco17(coco_json, layout)
    scored = [n for n, i in zip(COCO17_NAMES, coco17_sources(layout)) if i >= 0]
    if layout != "coco":
        print(f"eval human_pose: note: {coco_json}: {layout} keypoints ({len(LAYOUTS[layout])} joints) mapped to "
              f"COCO-17; only its {len(scored)} COCO joints are scored (the others are unlabelled, v=0), so PCK and "
              "OKS AP are not the dataset's own protocol", file=log or sys.stderr)
    results, times = [], []
    per_source: dict[str, dict] = {}
    for img_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(img_id)[0]
        rgb = np.asarray(Image.open(coco_json.parent / info["file_name"]).convert("RGB"))
        src = per_source.setdefault(str(info.get("source", "all")),
                                    {"persons": 0, "persons_missed": 0, "joints_labelled": 0, "correct": 0})
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=False)):
            if ann.get("num_keypoints", 0) == 0:
                continue
            src["persons"] += 1
            x, y, w, h = ann["bbox"]
            t0 = time.perf_counter()
            uv, conf = backend.estimate(rgb, np.array([x, y, x + w, y + h]))
            times.append(time.perf_counter() - t0)
            gt = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            lab = gt[:, 2] > 0
            src["joints_labelled"] += int(lab.sum())
            if not np.isfinite(uv).all():
                src["persons_missed"] += 1
                continue
            err = np.linalg.norm(uv[lab] - gt[lab, :2], axis=1)
            src["correct"] += int((err <= PCK_FRACTION * max(w, h)).sum())
            kp = np.concatenate([uv, np.full((17, 1), 2.0)], axis=1).reshape(-1)
            results.append({"image_id": img_id, "category_id": ann["category_id"], "keypoints": kp.tolist(),
                            "score": float(conf.mean())})
    oks = {"oks_AP": 0.0, "oks_AP50": 0.0}
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(coco, coco.loadRes(results), "keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        oks = {"oks_AP": float(ev.stats[0]), "oks_AP50": float(ev.stats[1])}
    total = {k: sum(v[k] for v in per_source.values()) for k in ("persons", "persons_missed", "joints_labelled",
                                                                    "correct")}
    pck = lambda v: v["correct"] / v["joints_labelled"] if v["joints_labelled"] else None   # noqa: E731
    return {"keypoint_layout": layout, "joints_scored": scored, "persons": total["persons"],
            "persons_missed": total["persons_missed"], "joints_labelled": total["joints_labelled"],
            "pck_0.2": pck(total), **oks,
            "per_source": {name: {"persons": v["persons"], "persons_missed": v["persons_missed"],
                                  "joints_labelled": v["joints_labelled"], "pck_0.2": pck(v)}
                           for name, v in sorted(per_source.items())} if len(per_source) > 1 else {},
            "seconds_per_crop_median": float(np.median(times)) if times else None}


def person_boxes(frame, min_visible_joints: int):
    """(HumanGT, mask [H, W] bool, box_xyxy [4]) of every person of a synthetic frame with
    at least min_visible_joints visible joints, box and mask from the true instance mask."""
    for human in frame.humans:
        mask = frame.instance_mask == human.instance_id
        boxes, keep = masks_to_boxes_xyxy(mask[None])
        if keep[0] and int((human.keypoints.visibility == 2).sum()) >= min_visible_joints:
            yield human, mask, boxes[0].astype(np.float64)


def facing(xyz_cam_m: np.ndarray) -> str:
    """'camera', 'away' or 'side': where a person faces, from their true joints [17, 3]
    (camera frame): within 60 degrees of the direction to the camera, of the opposite
    one, or neither (:func:`~hrc_perception.human_pose.front_back.facing_cos`)."""
    c = facing_cos(xyz_cam_m)
    return "camera" if c > FACING_COS else "away" if c < -FACING_COS else "side"


def left_right_right(xyz_m: np.ndarray, true_xyz_m: np.ndarray) -> bool | None:
    """Whether estimated joints [17, 3] put the person's left on the true left (the
    left-minus-right vector of shoulders and hips points the same way as the truth's);
    None when a shoulder or hip is unknown."""
    if not np.isfinite(xyz_m[LEFT + RIGHT]).all():
        return None
    d = (xyz_m[LEFT] - xyz_m[RIGHT]).sum(0)
    return bool(d @ (true_xyz_m[LEFT] - true_xyz_m[RIGHT]).sum(0) > 0)


def evaluate_synthetic(backends: dict, frames, params: LiftingParams = LiftingParams(),
                       min_visible_joints: int = 6, min_confidence: float = 0.3,
                       front_checks: dict | None = None) -> dict:
    """3D metrics per backend (name -> a backend of :class:`HumanPoseEstimator`, or None
    for the ground-truth 2D joints, lifted) over synthetic frames (``hrc_perception.sim``
    Frames): each person's joints as the node gets them before smoothing (the person's
    identity: episode and instance), joints below min_confidence unknown; front_checks:
    name -> the estimator's front_check. Left and right judged per facing (:func:`facing`)."""
    from hrc_perception.human_pose.estimator import HumanPoseEstimator
    estimators = {name: HumanPoseEstimator(b, params, min_confidence=min_confidence,
                                           front_check=(front_checks or {}).get(name))
                  for name, b in backends.items()}
    acc = {name: {"err_m": [], "visible": 0, "returned": 0, "times": [],
                  "lr": {k: [0, 0, 0] for k in ("camera", "side", "away")}} for name in backends}
    per_joint = {name: [[] for _ in COCO17_NAMES] for name in backends}
    n_people = 0
    for frame in frames:
        depth_m = frame.depth_mm.astype(np.float64) / 1000.0
        for human, mask, box in person_boxes(frame, min_visible_joints):
            n_people += 1
            kp = human.keypoints
            visible = kp.visibility == 2
            for name, est in estimators.items():
                t0 = time.perf_counter()
                xyz, conf3, _ = est.joints(frame.rgb, depth_m, frame.K, box, mask,
                                           uv_px=kp.uv_px if backends[name] is None else None,
                                           person_id=frame.episode * 65536 + human.instance_id)
                acc[name]["times"].append(time.perf_counter() - t0)
                got = visible & np.isfinite(xyz).all(axis=1) & (conf3 > 0)
                err = np.linalg.norm(xyz[got] - kp.xyz_cam_m[got], axis=1)
                acc[name]["err_m"].extend(err.tolist())
                acc[name]["visible"] += int(visible.sum())
                acc[name]["returned"] += int(got.sum())
                lr = left_right_right(xyz, kp.xyz_cam_m)
                tally = acc[name]["lr"][facing(kp.xyz_cam_m)]
                tally[0] += 1
                tally[1] += lr is True
                tally[2] += lr is None
                for j, e in zip(np.flatnonzero(got), err):
                    per_joint[name][j].append(e)
    out = {"people": n_people, "min_visible_joints": min_visible_joints, "backends": {}}
    for name, a in acc.items():
        e = np.asarray(a["err_m"])
        out["backends"][name] = {
            "mpjpe_mm": float(e.mean() * 1000) if len(e) else None,
            "median_error_mm": float(np.median(e) * 1000) if len(e) else None,
            "pck3d_10cm": float((e <= PCK3D_THRESHOLD_M).mean()) if len(e) else None,
            "visible_joints_returned": a["returned"] / a["visible"] if a["visible"] else None,
            "seconds_per_person_median": float(np.median(a["times"])) if a["times"] else None,
            "left_right_right": {k: {"people": n, "right": r / (n - u) if n > u else None, "unknown": u}
                                 for k, (n, r, u) in a["lr"].items()},
            "left_right_swaps": estimators[name].swaps,
            "per_joint_mpjpe_mm": {COCO17_NAMES[j]: (float(np.mean(v) * 1000) if v else None)
                                   for j, v in enumerate(per_joint[name])}}
    return out


def print_report(res: dict, file=None) -> None:
    for name in ("coco", "people_2d"):
        if name not in res:
            continue
        c = res[name]
        print(f"real person crops, {name} ({c['persons']} persons, {c['joints_labelled']} labelled joints, "
              f"{c['persons_missed']} missed): PCK@0.2 {c['pck_0.2']:.3f}  OKS AP {c['oks_AP']:.3f}  "
              f"AP50 {c['oks_AP50']:.3f}  {c['seconds_per_crop_median'] * 1e3:.1f} ms/crop", file=file)
        for src, v in c.get("per_source", {}).items():
            print(f"  {src:<10} {v['persons']:>3} persons  {v['persons_missed']:>2} missed  PCK@0.2 {v['pck_0.2']:.3f}",
                  file=file)
    for name, sets in res.get("person_boxes", {}).items():
        if not isinstance(sets, dict):
            continue
        print(f"person boxes, {name}:", file=file)
        for det, r in sets.items():
            per = "  ".join(f"{src} {v['recall_iou0.5']:.2f}/{v['ap50']:.2f}" for src, v in r["per_source"].items())
            print(f"  {det:<28} recall {r['recall_iou0.5']:.2f}  AP50 {r['ap50']:.2f}"
                  + (f"  ({per})" if len(r["per_source"]) > 1 else "")
                  + (f"  {r['persons_on_negative_images']} persons on {r['negative_images']} images without people"
                     if r["negative_images"] else ""), file=file)
    if "following" in res:
        f = res["following"]
        print(f"following (seed {f['seed']}, {f['chains']} people over {f['chain_frames']} frames, {f['lost']} lost, "
              f"{f['seconds_per_person_median'] * 1e3:.1f} ms/person):", file=file)
        for name in ("followed", "true_mask"):
            print(f"  {name:<10}" + "  ".join(f"{k} {v['mpjpe_mm']:.1f} mm" for k, v in f[name].items()
                                               if v["mpjpe_mm"] is not None), file=file)
    if "synthetic" in res:
        s = res["synthetic"]
        print(f"synthetic 3D ({s['people']} people):", file=file)
        print(f"  {'backend':<12}{'MPJPE mm':>10}{'median mm':>11}{'PCK@10cm':>10}{'returned':>10}{'ms/person':>11}",
              file=file)
        for name, b in s["backends"].items():
            if b["mpjpe_mm"] is None:
                print(f"  {name:<12}{'-':>10}", file=file)
                continue
            lr = "  ".join(f"{k} {v['right']:.2f} ({v['people']})" for k, v in b["left_right_right"].items()
                           if v["right"] is not None)
            print(f"  {name:<12}{b['mpjpe_mm']:>10.1f}{b['median_error_mm']:>11.1f}{b['pck3d_10cm']:>10.3f}"
                  f"{b['visible_joints_returned']:>10.3f}{b['seconds_per_person_median'] * 1e3:>11.1f}"
                  f"   left/right right, facing: {lr}", file=file)


def evaluate_following(backend, run, episodes: int, chain_frames: int = 15, min_visible_joints: int = 6,
                       min_confidence: float = 0.3, params=None, true_foreground: bool = True,
                       step_frames: int = 1) -> dict:
    """Skeletons between detections (:mod:`hrc_perception.human_pose.follow`) on synthetic
    episodes of ``run`` (a :class:`~hrc_perception.sim.generator.SynthRun`): in each episode,
    every person with >= min_visible_joints visible joints in a first frame (a different
    phase of each episode) is estimated
    with their true mask (a detection), then followed for ``chain_frames`` frames, each crop
    from the previous frame's estimate; beside it, the same frames with the true masks.
    Errors (visible joints with confidence >= min_confidence, before smoothing) per step
    of the chain, pooled over steps 1-5, 6-10, ... true_foreground: the crops keep only
    pixels of rendered objects (the true foreground: what a background model of the empty
    cell leaves, without its errors); False: every pixel. step_frames: follow every
    step_frames-th frame (the node's catch-up through the frames it kept). Returns a dict."""
    from hrc_perception.human_pose.estimator import HumanPoseEstimator
    from hrc_perception.human_pose.follow import FollowParams, follow_input
    params = params or FollowParams()
    est = HumanPoseEstimator(backend, min_confidence=min_confidence)
    dt = step_frames / run.cfg.sequence.fps
    n = run.cfg.sequence.episode_frames
    steps = {"followed": [[] for _ in range(chain_frames + 1)], "true_mask": [[] for _ in range(chain_frames + 1)]}
    returned = {k: [0, 0] for k in steps}
    lost, chains, times = 0, 0, []
    for e in range(episodes):
        start = e * n + (7 * e) % max(n - chain_frames * step_frames, 1)        # a different phase of each episode
        first = run.frame(start)
        seeds = {}
        for human, mask, box in person_boxes(first, min_visible_joints):
            xyz, _, _ = est.joints(None, first.depth_mm / 1000.0, first.K, box, mask)
            seeds[human.instance_id] = xyz
        chains += len(seeds)
        for k in range(1, chain_frames + 1):
            if not seeds or start + k * step_frames >= (e + 1) * n:
                break
            frame = run.frame(start + k * step_frames)
            depth_m = frame.depth_mm / 1000.0
            humans = {h.instance_id: h for h in frame.humans}
            for hid in list(seeds):
                h = humans.get(hid)
                if h is None:
                    del seeds[hid]
                    continue
                visible = h.keypoints.visibility == 2
                t0 = time.perf_counter()
                person = follow_input(hid, seeds[hid], dt, depth_m, frame.K, params,
                                      foreground=frame.instance_mask > 0 if true_foreground else None)
                xyz = (np.full((17, 3), np.nan) if person is None
                       else est.joints(None, depth_m, frame.K, person.box_xyxy, person.mask)[0])
                times.append(time.perf_counter() - t0)
                if np.isfinite(xyz).all(axis=1).sum() < params.min_joints:
                    lost += 1
                    del seeds[hid]
                else:
                    seeds[hid] = xyz
                true_mask = frame.instance_mask == hid
                ref = np.full((17, 3), np.nan)
                if true_mask.any():
                    rows, cols = np.nonzero(true_mask)
                    box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], float)
                    ref = est.joints(None, depth_m, frame.K, box, true_mask)[0]
                for name, got_xyz in (("followed", xyz), ("true_mask", ref)):
                    got = visible & np.isfinite(got_xyz).all(axis=1)
                    steps[name][k].extend(np.linalg.norm(got_xyz[got] - h.keypoints.xyz_cam_m[got], axis=1).tolist())
                    returned[name][0] += int(got.sum())
                    returned[name][1] += int(visible.sum())
    out = {"episodes": episodes, "chains": chains, "chain_frames": chain_frames, "step_frames": step_frames,
           "lost": lost,
           "true_foreground": true_foreground,
           "seconds_per_person_median": float(np.median(times)) if times else None, "follow_params": vars(params)}
    for name, per_step in steps.items():
        rows = {}
        for a in range(1, chain_frames + 1, 5):
            e = np.asarray([x for s in per_step[a:a + 5] for x in s])
            rows[f"steps_{a}_{a + 4}"] = {"mpjpe_mm": float(e.mean() * 1000) if len(e) else None,
                                          "pck3d_10cm": float((e <= PCK3D_THRESHOLD_M).mean()) if len(e) else None,
                                          "joints": int(len(e))}
        e = np.asarray([x for s in per_step for x in s])
        rows["all"] = {"mpjpe_mm": float(e.mean() * 1000) if len(e) else None,
                       "pck3d_10cm": float((e <= PCK3D_THRESHOLD_M).mean()) if len(e) else None, "joints": int(len(e)),
                       "visible_joints_returned": returned[name][0] / max(returned[name][1], 1)}
        out[name] = rows
    return out
