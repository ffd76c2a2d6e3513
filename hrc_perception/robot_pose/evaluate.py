"""`hrc-perception eval robot_pose`: SPDH against the 2D + depth baseline on held-out data.

Metrics (the SPDH paper's): mean per-joint 3D error, and the share of joints whose
error is under 2, 4, 6, 8 and 10 cm (``acc_2cm`` ...; ``mAP`` is their mean), over
the joints inside the image (visibility 1 or 2; a joint the method cannot place
counts as a miss). Camera-to-robot: per episode, keypoints from forward kinematics
of the ground-truth joint angles and from the network over the first
``calib_frames`` frames, fitted with :class:`ExtrinsicsEstimator`; translation (cm)
and rotation (deg) error against the true T_cam_base, of the keypoint fit and of
that fit refined on the depth (:mod:`hrc_perception.robot_pose.surface_fit`, over
at most ``surface_frames`` frames of the same window). ``fk_fitted``: the skeleton a node
with joint_states can give, forward kinematics placed by the episode's refined fit,
scored on every frame like the methods above (joints of episodes without a refined
fit count as misses).
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

from hrc_perception.geometry import pose_error
from hrc_perception.robot_pose.dataset import load_robot_frames
from hrc_perception.robot_pose.extrinsics import ExtrinsicsEstimator
from hrc_perception.robot_pose.predictor import METHODS, RobotPosePredictor
from hrc_perception.robot_pose.surface_fit import SurfaceView, robot_surface
from hrc_perception.sim.config import RobotConfig
from hrc_perception.sim.robot import RobotModel

THRESHOLDS_CM = (2, 4, 6, 8, 10)


def robot_model_of_card(card: dict, config_dir: Path | None = None, load_meshes: bool = False) -> RobotModel:
    """The URDF robot a model card names (forward kinematics; the link meshes with load_meshes)."""
    r = card["robot"]
    return RobotModel(RobotConfig(urdf=r["urdf"], name=r["name"], keypoints=tuple(r["keypoints"]),
                                  gripper_link=r["gripper_link"]), config_dir, load_meshes=load_meshes)


def joint_metrics(err_m: np.ndarray) -> dict:
    """Figures of joint errors err_m [M] (metres; NaN = not placed, a miss)."""
    err_cm = 100 * np.asarray(err_m, dtype=np.float64)
    found = np.isfinite(err_cm)
    out = {"joints": int(len(err_cm)), "placed": round(float(found.mean()), 4) if len(err_cm) else 0.0,
           "mean_err_cm": round(float(err_cm[found].mean()), 2) if found.any() else None,
           "median_err_cm": round(float(np.median(err_cm[found])), 2) if found.any() else None}
    for t in THRESHOLDS_CM:
        out[f"acc_{t}cm"] = round(float(np.mean(np.where(found, err_cm, np.inf) < t)), 4) if len(err_cm) else 0.0
    out["mAP"] = round(float(np.mean([out[f"acc_{t}cm"] for t in THRESHOLDS_CM])), 4)
    return out


def evaluate(weights: str | Path, data: str | Path, device: str = "cpu", max_frames: int | None = None,
             calib_frames: int = 45, min_confidence: float = 0.3, surface_frames: int = 8,
             quiet: bool = True) -> dict:
    """Both methods on every frame of a keypoints dataset; returns summary, per-joint,
    per-visibility and calibration figures (see module doc)."""
    frames = load_robot_frames(data, max_frames)
    predictors = {m: RobotPosePredictor(weights, device, min_confidence, method=m) for m in METHODS}
    card = predictors["spdh"].card
    if tuple(card["keypoints"]) != frames.keypoint_names:
        raise ValueError(f"{weights}: keypoints {card['keypoints']} differ from the data's {frames.keypoint_names}")
    robot = robot_model_of_card(card, load_meshes=True)
    N, J = len(frames), len(frames.keypoint_names)
    pred = {m: np.full((N, J, 3), np.nan) for m in METHODS}
    pred_uv = {m: np.full((N, J, 2), np.nan) for m in METHODS}
    conf = {m: np.zeros((N, J)) for m in METHODS}
    valid = {m: np.zeros((N, J), dtype=bool) for m in METHODS}
    times_ms = []
    t_start = time.perf_counter()
    for i in range(N):
        xyz = frames.xyz_m[i].astype(np.float32)
        for m, p in predictors.items():
            t0 = time.perf_counter()
            sk = p.predict_xyz(xyz, frames.K_xyz[i], frames.full_hw)
            if m == "spdh":
                times_ms.append(1000 * (time.perf_counter() - t0))
            pred[m][i], conf[m][i], valid[m][i], pred_uv[m][i] = sk.xyz_cam_m, sk.confidence, sk.valid, sk.uv_px
        if not quiet and ((i + 1) % 100 == 0 or i + 1 == N):
            print(f"eval robot_pose: {i + 1}/{N} frames ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
    inside = frames.robot_vis > 0
    result = {"command": "hrc-perception " + " ".join(sys.argv[1:]), "weights": str(weights), "data": str(data),
              "frames": N, "keypoints": list(frames.keypoint_names), "min_confidence": min_confidence,
              "machine": f"{platform.machine()}, 2 cores" if device == "cpu" else device,
              "ms_per_frame_network_and_decoding_median": round(float(np.median(times_ms)), 1)}
    summary, per_joint, per_vis = {}, {}, {}
    for m in METHODS:
        err = np.linalg.norm(pred[m] - frames.robot_xyz_m, axis=2)
        summary[m] = joint_metrics(err[inside])
        per_joint[m] = {name: joint_metrics(err[:, j][inside[:, j]]) for j, name in enumerate(frames.keypoint_names)}
        per_vis[m] = {"visible": joint_metrics(err[frames.robot_vis == 2]),
                      "occluded": joint_metrics(err[frames.robot_vis == 1])}
        conf_inside = valid[m][inside].mean()
        summary[m]["valid_inside"] = round(float(conf_inside), 4)
        summary[m]["valid_outside"] = round(float(valid[m][~inside].mean()), 4) if (~inside).any() else None
    result["summary"] = summary
    result["per_joint"] = per_joint
    result["per_joint_image_depth"] = image_and_depth_errors(frames, pred_uv["spdh"], pred["spdh"])
    result["per_visibility"] = per_vis
    result["calibration"] = {m: calibration_errors(frames, robot, pred[m], conf[m], valid[m], calib_frames,
                                                   surface_frames) for m in METHODS}
    for m in METHODS:
        cal = result["calibration"][m]
        summary[m]["calib_t_err_cm_median"] = cal["t_err_cm_median"]
        summary[m]["calib_r_err_deg_median"] = cal["r_err_deg_median"]
        summary[m]["calib_surface_t_err_cm_median"] = cal["surface_t_err_cm_median"]
        summary[m]["calib_surface_r_err_deg_median"] = cal["surface_r_err_deg_median"]
    fk = fk_fitted_joints(frames, robot, result["calibration"]["spdh"]["episodes"])
    fk_err = np.linalg.norm(fk - frames.robot_xyz_m, axis=2)
    summary["fk_fitted"] = joint_metrics(fk_err[inside])
    return result


def image_and_depth_errors(frames, pred_uv_px: np.ndarray, pred_cam_m: np.ndarray) -> dict:
    """Per joint, over the joints inside the image: median image error (pixels of the
    full colour image) and median |z| error (cm) of the predictions (uv [N, J, 2],
    xyz [N, J, 3]): which of the two a joint's 3D error comes from."""
    uvw = np.einsum("nij,nkj->nki", frames.K_full, frames.robot_xyz_m)
    true_uv = uvw[..., :2] / uvw[..., 2:3]
    uv_err = np.linalg.norm(pred_uv_px - true_uv, axis=2)
    z_err_cm = 100 * np.abs(pred_cam_m[..., 2] - frames.robot_xyz_m[..., 2])
    inside = frames.robot_vis > 0
    out = {}
    for j, name in enumerate(frames.keypoint_names):
        sel = inside[:, j] & np.isfinite(uv_err[:, j]) & np.isfinite(z_err_cm[:, j])
        out[name] = {"image_err_px_median": round(float(np.median(uv_err[sel, j])), 2) if sel.any() else None,
                     "depth_err_cm_median": round(float(np.median(z_err_cm[sel, j])), 2) if sel.any() else None}
    return out


def fk_fitted_joints(frames, robot: RobotModel, episodes: list[dict]) -> np.ndarray:
    """Keypoints [N, J, 3] (camera frame) from forward kinematics of each frame's joint
    positions placed by its episode's refined T_cam_base (the ``T_surface`` of
    :func:`calibration_errors`' episodes); NaN in episodes without one."""
    out = np.full(frames.robot_xyz_m.shape, np.nan)
    for e in episodes:
        if e.get("T_surface") is not None:
            T = np.asarray(e["T_surface"])
            for i in np.flatnonzero(frames.episode == e["episode"]):
                out[i] = robot.keypoints(frames.q_rad[i], T)
    return out


def _median(values: list) -> float | None:
    return round(float(np.median(values)), 2) if len(values) else None


def calibration_errors(frames, robot: RobotModel, pred_cam: np.ndarray, conf: np.ndarray, valid: np.ndarray,
                       calib_frames: int, surface_frames: int = 8) -> dict:
    """Per episode, T_cam_base fitted to the keypoints of its first calib_frames frames,
    then refined on the depth of at most surface_frames of them (spread over the window,
    as the node keeps them), against the truth."""
    surface = robot_surface(robot)
    fps_dt = np.median(np.diff(frames.stamp_ns)) / 1e9 if len(frames) > 1 else 1 / 15
    episodes = []
    for ep in np.unique(frames.episode):
        idx = np.flatnonzero(frames.episode == ep)[:calib_frames]
        est = ExtrinsicsEstimator(window_s=len(idx) * fps_dt + 1.0, robot=robot, surface=surface,
                                  max_views=surface_frames)
        for i in idx:
            est.add(frames.stamp_ns[i] / 1e9, robot.keypoints(frames.q_rad[i]), pred_cam[i], conf[i], valid[i],
                    SurfaceView(frames.q_rad[i], frames.xyz_m[i], frames.K_xyz[i]))
        fit = est.estimate()
        if fit is None:
            episodes.append({"episode": int(ep), "frames": len(idx), "fitted": False})
            continue
        T_true = frames.T_cam_base[idx[0]]
        dt, dr = pose_error(fit.T, T_true)
        e = {"episode": int(ep), "frames": len(idx), "fitted": True, "t_err_cm": round(100 * dt, 2),
             "r_err_deg": round(dr, 2), "inliers": fit.num_inliers, "rms_cm": round(100 * fit.rms_m, 2),
             "T_surface": None}
        refined = est.refine(fit.T)
        if refined is not None:
            dt, dr = pose_error(refined.T, T_true)
            e.update(surface_t_err_cm=round(100 * dt, 2), surface_r_err_deg=round(dr, 2), surface_pairs=refined.pairs,
                     surface_rms_cm=round(100 * refined.rms_m, 2), surface_views=refined.frames,
                     T_surface=refined.T.round(6).tolist())
        episodes.append(e)
    fitted = [e for e in episodes if e["fitted"]]
    refined = [e for e in fitted if e["T_surface"] is not None]
    t = [e["t_err_cm"] for e in fitted]
    r = [e["r_err_deg"] for e in fitted]
    return {"calib_frames": calib_frames, "surface_frames": surface_frames, "episodes": episodes,
            "fitted": f"{len(fitted)}/{len(episodes)}", "surface_fitted": f"{len(refined)}/{len(episodes)}",
            "t_err_cm_median": _median(t), "r_err_deg_median": _median(r),
            "t_err_cm_max": round(float(max(t)), 2) if t else None,
            "r_err_deg_max": round(float(max(r)), 2) if r else None,
            "surface_t_err_cm_median": _median([e["surface_t_err_cm"] for e in refined]),
            "surface_r_err_deg_median": _median([e["surface_r_err_deg"] for e in refined]),
            "surface_t_err_cm_max": max((e["surface_t_err_cm"] for e in refined), default=None),
            "surface_r_err_deg_max": max((e["surface_r_err_deg"] for e in refined), default=None)}


def print_table(result: dict) -> None:
    s = result["summary"]
    print(f"robot_pose on {result['data']} ({result['frames']} frames), weights {result['weights']}")
    print(f"{'method':<10} {'joints':>7} {'mean cm':>8} {'median':>7} " +
          " ".join(f"{'<' + str(t) + 'cm':>6}" for t in THRESHOLDS_CM) +
          f" {'mAP':>6} | camera-to-robot: {'keypoints cm':>12} {'deg':>5} {'+depth cm':>9} {'deg':>5}")

    def num(x):
        return float("nan") if x is None else x

    for m, v in s.items():
        print(f"{m:<10} {v['joints']:>7} {num(v['mean_err_cm']):>8.2f} {num(v['median_err_cm']):>7.2f} "
              + " ".join(f"{v[f'acc_{t}cm']:>6.3f}" for t in THRESHOLDS_CM) + f" {v['mAP']:>6.3f} | "
              + (f"{'':>16} {num(v['calib_t_err_cm_median']):>12.2f} {num(v['calib_r_err_deg_median']):>5.2f} "
                 f"{num(v['calib_surface_t_err_cm_median']):>9.2f} {num(v['calib_surface_r_err_deg_median']):>5.2f}"
                 if "calib_t_err_cm_median" in v else "joint_states + the spdh fit refined on depth"))
    print("per joint (spdh): " + ", ".join(f"{k} {v['mean_err_cm']} cm / {v['acc_4cm']:.2f}"
                                           for k, v in result["per_joint"]["spdh"].items()))
    pv = result["per_visibility"]["spdh"]
    print(f"spdh visible joints: mean {pv['visible']['mean_err_cm']} cm, <4cm {pv['visible']['acc_4cm']}; "
          f"occluded: mean {pv['occluded']['mean_err_cm']} cm, <4cm {pv['occluded']['acc_4cm']}")
    image_depth = result["per_joint_image_depth"]
    print("per joint (spdh), image error px / depth error cm (medians): " + ", ".join(
        f"{k} {v['image_err_px_median']} / {v['depth_err_cm_median']}" for k, v in image_depth.items()))
    print(f"calibration fitted {result['calibration']['spdh']['fitted']} episodes, refined on depth "
          f"{result['calibration']['spdh']['surface_fitted']}; "
          f"network + decoding {result['ms_per_frame_network_and_decoding_median']} ms/frame")
