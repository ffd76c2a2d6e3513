"""Part poses from RGB-D and instance masks: DenseFusion inference.

:class:`ObjectPosePredictor` loads a model file and estimates, for each part
instance (class + visible mask in a colour/depth pair with intrinsics K), the pose
T_cam_obj [4, 4] (model to camera optical frame, metres) and a confidence in
[0, 1]: the main network, the refiner, then (for a model file that carries its
parts' surface points) pose verification (:mod:`.verify`) and, where asked,
render-and-compare refinement (:mod:`.render_compare`). Instances it cannot use
are reported with a reason instead of a pose (:data:`SKIP_REASONS`); a returned
pose is always finite.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from hrc_perception.geometry import make_T
from hrc_perception.object_pose.data import InstanceCrop, crop_instance, valid_source_pixels
from hrc_perception.object_pose.dataset import network_inputs
from hrc_perception.object_pose.model import load_model, load_part_points
from hrc_perception.object_pose.network import (PoseNet, PoseRefiner, compose_correction, quaternion_to_matrix,
                                                to_estimate_frame)
from hrc_perception.object_pose.render_compare import (START_MODES, RenderCompareRefiner, RenderView, render_view,
                                                       turned_starts)
from hrc_perception.object_pose.verify import PoseVerifier

SKIP_REASONS = ("unknown_class", "few_depth_pixels", "non_finite_pose")


@dataclass(frozen=True)
class PartPose:
    """class_index into the model's classes; T_cam_obj [4, 4] float64 (refined and
    verified);
    T_cam_obj_main [4, 4]: the main network's pose before refinement; confidence:
    the chosen point's confidence, 0..1."""
    class_index: int
    class_name: str
    T_cam_obj: np.ndarray
    T_cam_obj_main: np.ndarray
    confidence: float


def run_networks(posenet: PoseNet, refiner: PoseRefiner | None, crop: Tensor, points: Tensor, choose: Tensor,
                 cls: Tensor, iterations: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Main network then ``iterations`` refiner passes on a batch (shapes as in
    :mod:`~hrc_perception.object_pose.network`). Returns (R_main [B, 3, 3], t_main [B, 3],
    confidence [B], R [B, 3, 3], t [B, 3]): the most confident point's pose, and the
    refined pose (the same when iterations is 0 or there is no refiner)."""
    q, t_pts, conf, col = posenet(crop, points, choose, cls)
    best = conf.argmax(dim=1)
    rows = torch.arange(len(best), device=best.device)
    R = quaternion_to_matrix(q[rows, best])
    t = t_pts[rows, best]
    R_main, t_main = R, t
    for _ in range(iterations if refiner is not None else 0):
        dq, dt = refiner(to_estimate_frame(points, R, t), col, cls)
        R, t = compose_correction(R, t, quaternion_to_matrix(dq), dt)
    return R_main, t_main, conf[rows, best], R, t


class ObjectPosePredictor:
    """DenseFusion on part instances. weights: a model file (:mod:`.model`);
    n_points / refine_iterations: default the model's own; min_depth_px: fewest image
    pixels of the mask with depth an instance needs. verify: verify each pose
    (``self.verifier``; None when off or when the model file has no part points).
    render_compare: also fit each pose by render-and-compare where a view is given
    (``self.render_compare``; None when off or without part points), starting from
    render_compare_starts: 'verified' (the verified pose) or 'turns' (the refined pose
    turned about the part's axes, :func:`.render_compare.turned_starts`; the lowest loss
    wins and verification is skipped for those instances: better where depth is too
    noisy to verify by, e.g. a camera 3 m away; symmetric parts keep their refined pose,
    which the fit at such a distance made worse)."""

    def __init__(self, weights: str | Path, device: str = "cpu", n_points: int | None = None,
                 refine_iterations: int | None = None, min_depth_px: int = 20, verify: bool = True,
                 render_compare: bool = False, render_compare_starts: str = "verified"):
        if render_compare_starts not in START_MODES:
            raise ValueError(f"render_compare_starts must be one of {START_MODES}, got {render_compare_starts!r}")
        self.render_compare_starts = render_compare_starts
        self.device = torch.device(device)
        self.build, self.posenet, self.refiner, self.card = load_model(weights, map_location="cpu")
        self.posenet.to(self.device)
        if self.refiner is not None:
            self.refiner.to(self.device)
        self.classes: list[str] = list(self.card["classes"])
        self.n_points = int(n_points or self.build.n_points)
        self.refine_iterations = int(self.build.refine_iterations if refine_iterations is None else refine_iterations)
        self.min_depth_px = int(min_depth_px)
        self.symmetric = [bool(x) for x in (self.card.get("symmetric") or [False] * len(self.classes))]
        points = load_part_points(weights) if (verify or render_compare) else None
        self.verifier = None if points is None or not verify else PoseVerifier(
            points, self.card["diameters_m"], self.card.get("symmetric"))
        self.render_compare = None if points is None or not render_compare else RenderCompareRefiner(
            points, self.card["diameters_m"])

    @torch.inference_mode()
    def estimate(self, items: Sequence[tuple[InstanceCrop, int, np.ndarray]], iterations: int | None = None,
                 verify: bool = True, views: Sequence[RenderView | None] | None = None) -> list[PartPose | str]:
        """One result per item (crop, class index, K [3, 3]): a PartPose or a skip
        reason. iterations: refiner passes (default the predictor's). verify: False
        skips verification even when the predictor has a verifier. views: per item,
        its view for render-and-compare (None: not fitted), used when the predictor
        has ``render_compare``."""
        iterations = self.refine_iterations if iterations is None else int(iterations)
        out: list[PartPose | str] = ["few_depth_pixels"] * len(items)
        batch, where = [], []
        for i, (crop, cls, K) in enumerate(items):
            if not 0 <= cls < len(self.classes):
                out[i] = "unknown_class"
                continue
            if valid_source_pixels(crop) < self.min_depth_px:
                continue
            inputs = network_inputs(crop, K, self.n_points)
            if inputs is not None:
                batch.append((*inputs, cls))
                where.append(i)
        if not batch:
            return out
        crop_t = torch.from_numpy(np.stack([b[0] for b in batch])).to(self.device)
        pts = torch.from_numpy(np.stack([b[1] for b in batch])).to(self.device)
        choose = torch.from_numpy(np.stack([b[2] for b in batch])).to(self.device)
        cls_t = torch.tensor([b[3] for b in batch], device=self.device)
        R0, t0, conf, R, t = (x.double().cpu().numpy() for x in
                              run_networks(self.posenet, self.refiner, crop_t, pts, choose, cls_t, iterations))
        rc = self.render_compare
        turns = self.render_compare_starts == "turns"
        # the instances to fit; from the turns a symmetric part's pose needs none (scored ADD-S)
        fit = [j for j, i in enumerate(where) if rc is not None and views is not None and views[i] is not None
               and not (turns and self.symmetric[int(cls_t[j])])]
        unverified = set(fit) if turns else set()          # the turns replace the verification
        verifier = self.verifier if verify else None
        for j, i in enumerate(where):
            if verifier is not None and j not in unverified and np.isfinite(R[j]).all() and np.isfinite(t[j]).all():
                R[j], t[j] = verifier.verify(int(cls_t[j]), batch[j][1].astype(np.float64), R[j], t[j])
        if fit:     # the frame's parts in one fit
            jobs = []
            for j in fit:
                c = int(cls_t[j])
                starts = turned_starts(R[j], t[j], rc.centroids_m[c]) if turns else (R[j][None], t[j][None])
                jobs.append((c, views[where[j]], *starts))
            for j, (Rr, tr, loss) in zip(fit, rc.refine_many(jobs)):
                if np.isfinite(loss).any():
                    best = int(np.argmin(loss))
                    R[j], t[j] = Rr[best], tr[best]
        for j, i in enumerate(where):
            T, T0 = make_T(R[j], t[j]), make_T(R0[j], t0[j])
            if not (np.isfinite(T).all() and np.isfinite(T0).all() and np.isfinite(conf[j])):
                out[i] = "non_finite_pose"
                continue
            out[i] = PartPose(int(cls_t[j]), self.classes[int(cls_t[j])], T, T0, float(conf[j]))
        return out

    def predict(self, rgb: np.ndarray, depth_m: np.ndarray, K: np.ndarray,
                instances: Sequence[tuple[str, np.ndarray]], verify: bool = True) -> list[PartPose | str]:
        """Poses of the part instances (class name, visible mask [H, W] bool) of one
        image pair: rgb [H, W, 3] uint8, depth_m [H, W] metres (0/NaN = none), K [3, 3].
        A class the model does not know gives "unknown_class". verify: as in
        :meth:`estimate`."""
        items, where, views = [], [], []
        out: list[PartPose | str] = ["few_depth_pixels"] * len(instances)
        for i, (name, mask) in enumerate(instances):
            if name not in self.classes:
                out[i] = "unknown_class"
                continue
            crop = crop_instance(rgb, depth_m, mask, self.build.crop_px)
            if crop is not None:
                items.append((crop, self.classes.index(name), K))
                views.append(render_view(mask, depth_m, K) if self.render_compare is not None else None)
                where.append(i)
        for i, r in zip(where, self.estimate(items, verify=verify, views=views)):
            out[i] = r
        return out
