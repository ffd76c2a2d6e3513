"""The `spdh` human pose backend: SPDH (the robot pose network, :mod:`hrc_perception.robot_pose`)
on a person's depth crop gives the 17 COCO joints in 3D directly, no lifting.

Training: ``hrc-perception train human_pose --data SYNTH_OUT`` on ``synth --dataset
person_crops`` output (:mod:`hrc_perception.human_pose.spdh_data`). The model file is
an SPDH model file (:mod:`hrc_perception.robot_pose.model`) whose card has
``component: human_pose`` and the COCO-17 keypoints.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from hrc_perception.engines import as_module
from hrc_perception.human_pose.crops import crop_box, grow_mask_by_depth, person_crop
from hrc_perception.human_pose.spdh_data import (NETWORK_Z_RANGE_M, CropAugment, PersonCropDataset, crop_input,
                                                 crop_spec, load_person_crops)
from hrc_perception.io.atomic import atomic_write_json
from hrc_perception.robot_pose.dataset import heatmap_K
from hrc_perception.robot_pose.model import BuildConfig, load_model, save_model
from hrc_perception.robot_pose.spdh import decode, heatmaps_from_logits
from hrc_perception.skeletons import COCO17_NAMES
from hrc_perception.training import data_spec, file_sha256, machine_line


class SpdhBackend:
    """SPDH on person depth crops. weights: a ``train human_pose`` model file;
    grow_mask_px: grow the given mask by this many pixels of continuous depth (a
    segmentation mask that misses a hand's edge pixels); engine: what runs the network
    (:mod:`hrc_perception.engines`)."""

    name = "spdh"
    three_d = True     # estimate_3d gives camera-frame joints (no depth lifting needed)

    def __init__(self, weights: str | Path, device: str = "cpu", grow_mask_px: int = 0, engine: str = "torch"):
        self.build, self.net, self.card = load_model(weights, device)
        if self.card.get("component") != "human_pose" or self.card.get("keypoints") != list(COCO17_NAMES):
            raise ValueError(f"{weights}: not a human_pose SPDH model (component {self.card.get('component')!r}, "
                             f"keypoints {self.card.get('keypoints')})")
        self.device = torch.device(device)
        self.net.to(self.device)
        self.net, self.engine = as_module(self.net, engine), engine
        self.spec = self.build.heatmap_spec
        self.grow_mask_px = int(grow_mask_px)

    def close(self) -> None:
        pass

    def predict_crop(self, xyz_m: np.ndarray, K_crop: np.ndarray, ref_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(joints [17, 3] camera frame, metres; confidence [17]: heatmap peak x presence
        probability) of one crop (xyz_m [S, S, 3], K_crop, ref_m [3])."""
        x = torch.from_numpy(crop_input(xyz_m, ref_m))[None].to(self.device)
        with torch.inference_mode():
            logits, presence = self.net(x)
        hm = heatmaps_from_logits(logits[0].float().cpu().numpy(), self.spec.sigma_px)
        spec = crop_spec(self.spec, float(ref_m[2]))
        dec = decode(hm, heatmap_K(K_crop, xyz_m.shape[:2], self.spec), spec)
        p = torch.sigmoid(presence[0]).cpu().numpy()
        return dec.xyz_cam_m, np.clip(dec.confidence * p, 0.0, 1.0)

    def estimate_3d(self, depth_m: np.ndarray, K: np.ndarray, box_xyxy: np.ndarray, mask: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xyz_m [17, 3] (NaN when the crop has too few pixels), confidence [17], uv_px [17, 2]) of
        one person; the mask (the person's pixels; without one the box's pixels are used)
        is first grown by up to ``grow_mask_px`` pixels of continuous depth
        (:func:`~hrc_perception.human_pose.crops.grow_mask_by_depth`)."""
        if mask is None:
            mask = np.zeros(depth_m.shape, bool)
            x0, y0, x1, y1 = (int(round(v)) for v in box_xyxy)
            mask[max(y0, 0):y1, max(x0, 0):x1] = True
        elif self.grow_mask_px > 0:
            x0, y0, side = crop_box(box_xyxy)
            win = (slice(max(y0, 0), max(y0 + side, 0)), slice(max(x0, 0), max(x0 + side, 0)))
            mask = mask.copy()
            mask[win] = grow_mask_by_depth(mask[win], depth_m[win], self.grow_mask_px)
        crop = person_crop(depth_m, K, mask, box_xyxy, self.build.input_hw[0])
        if crop is None:
            return np.full((17, 3), np.nan), np.zeros(17), np.full((17, 2), np.nan)
        xyz, conf = self.predict_crop(crop.xyz_m, crop.K_crop, crop.ref_m)
        z = np.where(xyz[:, 2] > 0, xyz[:, 2], np.nan)
        uv = np.stack([K[0, 0] * xyz[:, 0] / z + K[0, 2], K[1, 1] * xyz[:, 1] / z + K[1, 2]], axis=1)
        return xyz, conf, uv


def evaluate_crops(weights: str | Path, data: str | Path, max_crops: int | None = None) -> dict:
    """MPJPE (mm), median and PCK@10cm over the visible joints of held-out crops, and the
    share of visible joints given (confidence > 0.3)."""
    backend = SpdhBackend(weights)
    crops = load_person_crops(data, max_crops)
    errs, given, visible = [], 0, 0
    for i in range(len(crops)):
        xyz, conf = backend.predict_crop(crops.xyz_m[i].astype(np.float32), crops.K_crop[i], crops.ref_m[i])
        vis = crops.vis[i] == 2
        ok = vis & (conf > 0.3) & np.isfinite(xyz).all(1)
        visible += int(vis.sum())
        given += int(ok.sum())
        errs += np.linalg.norm(xyz[ok] - crops.joints_m[i][ok], axis=1).tolist()
    e = np.array(errs)
    return {"crops": len(crops), "visible_joints": visible, "given": round(given / max(visible, 1), 4),
            "mpjpe_mm": round(float(e.mean() * 1000), 1) if len(e) else None,
            "median_err_mm": round(float(np.median(e) * 1000), 1) if len(e) else None,
            "pck3d_10cm": round(float((e <= 0.10).mean()), 4) if len(e) else None}


def train(data: Path, out: Path, val: Path | None = None, steps: int = 3000, batch_size: int = 16,
          lr: float = 2e-3, device: str = "cpu", seed: int = 0, checkpoint_every: int = 200,
          workers: int = 1, threads: int | None = None, widths: tuple[int, int, int, int] = (16, 32, 64, 128),
          init: Path | None = None, hand_cut_p: float = 0.0) -> dict:
    """`hrc-perception train human_pose`: train (or resume), write model.pt and model_card.json."""
    from hrc_perception.robot_pose.train import fit_spdh
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    crops = load_person_crops(data)
    size = crops.xyz_m.shape[1]
    build = BuildConfig(num_joints=len(COCO17_NAMES), widths=tuple(widths), input_hw=(size, size),
                        z_range_m=NETWORK_Z_RANGE_M)
    dataset = PersonCropDataset(crops, build.heatmap_spec, CropAugment(hand_cut_p=hand_cut_p), seed=seed)
    init_state = None
    if init is not None:
        init_build, init_net, init_card = load_model(init)
        if init_build != build or init_card.get("component") != "human_pose":
            raise ValueError(f"{init}: built as {init_build} ({init_card.get('component')}); this run needs {build}")
        init_state = init_net.state_dict()
    print(f"train human_pose: {len(dataset)} person crops of {size}x{size}, heatmaps {build.heatmap_spec.hw}",
          file=sys.stderr)
    net, elapsed = fit_spdh(build.build(), dataset, out, "human_pose",
                            {"keypoints": list(COCO17_NAMES), "build": build.to_dict()}, steps=steps,
                            batch_size=batch_size, lr=lr, device=device, seed=seed,
                            checkpoint_every=checkpoint_every, workers=workers, init_state=init_state)
    card = {
        "component": "human_pose",
        "architecture": "SPDH on a person's depth crop (the robot_pose U-Net): per COCO-17 joint a uv-plane and a "
                        "uz-plane heatmap (+-1 m around the person's median depth) and a presence logit",
        "keypoints": list(COCO17_NAMES), "input_hw": list(build.input_hw), "heatmap_hw": list(build.heatmap_spec.hw),
        "data": data_spec(data), "crops": len(dataset), "seed": seed, "steps": steps, "batch_size": batch_size,
        "lr": lr, "hand_cut_p": hand_cut_p, "initialised_from": str(init) if init else None,
        "training_command": "hrc-perception " + " ".join(sys.argv[1:]),
        "training_time_s": round(elapsed, 1), "machine": machine_line(device)}
    model_path = out / "model.pt"
    save_model(model_path, build, net, card)
    if val is not None:
        card["metrics_held_out"] = evaluate_crops(model_path, val)
        card["metrics_data"] = data_spec(Path(val))
        save_model(model_path, build, net, card)
    card["weights"] = model_path.name
    card["sha256"] = file_sha256(model_path)
    atomic_write_json(out / "model_card.json", card, indent=2)
    print(json.dumps(card.get("metrics_held_out", {})), file=sys.stderr)
    return card
