"""DenseFusion training losses (torch).

Distances are ADD for asymmetric parts (mean distance between corresponding model
points under the two poses) and ADD-S for symmetric ones (mean distance from each
predicted model point to the closest ground-truth model point), in metres.
"""
from __future__ import annotations

import torch
from torch import Tensor

CONFIDENCE_WEIGHT = 0.015
"""w in mean(d * c - w * log c): how strongly low confidence is penalised."""


def add_s_distance(pred_pts: Tensor, gt_pts: Tensor, symmetric: Tensor) -> Tensor:
    """ADD or ADD-S [B, P] of predicted model points pred_pts [B, P, M, 3] (P poses
    per instance) against the ground-truth model points gt_pts [B, M, 3] (same model
    points, same order), metres; symmetric [B] bool picks ADD-S."""
    target = gt_pts.unsqueeze(1).expand_as(pred_pts)
    if bool(symmetric.any()):
        # the closest ground-truth point of each predicted point; the search needs no
        # gradient (the distance to the chosen point has the same gradient as the minimum)
        s = symmetric.nonzero()[:, 0]
        b, p, m, _ = pred_pts[s].shape
        with torch.no_grad():
            nearest = torch.cdist(pred_pts[s].reshape(b, p * m, 3), gt_pts[s]).argmin(dim=2)     # [b, p*m]
        closest = torch.gather(gt_pts[s], 1, nearest.unsqueeze(2).expand(-1, -1, 3)).reshape(b, p, m, 3)
        target = target.clone()
        target[s] = closest
    return (pred_pts - target).norm(dim=3).mean(dim=2)


def posed_points(R: Tensor, t: Tensor, model_pts: Tensor) -> Tensor:
    """Model points [B, M, 3] under poses R [B, P, 3, 3], t [B, P, 3] -> [B, P, M, 3]."""
    return torch.einsum("bpij,bmj->bpmi", R, model_pts) + t.unsqueeze(2)


def densefusion_loss(R_pred: Tensor, t_pred: Tensor, conf: Tensor, model_pts: Tensor, R_gt: Tensor, t_gt: Tensor,
                     symmetric: Tensor, w: float = CONFIDENCE_WEIGHT) -> tuple[Tensor, Tensor]:
    """Per-point pose loss: mean over instances and points of d * c - w * log(c).

    R_pred [B, N, 3, 3], t_pred [B, N, 3] (metres), conf [B, N] in (0, 1): one pose and
    confidence per point; model_pts [B, M, 3]; R_gt [B, 3, 3], t_gt [B, 3];
    symmetric [B] bool. Returns (loss, the distance d [B, N] of every point's pose).
    """
    gt = model_pts @ R_gt.transpose(1, 2) + t_gt.unsqueeze(1)
    d = add_s_distance(posed_points(R_pred, t_pred, model_pts), gt, symmetric)
    return (d * conf - w * torch.log(conf.clamp_min(1e-6))).mean(), d


def refiner_loss(R_est: Tensor, t_est: Tensor, model_pts: Tensor, R_gt: Tensor, t_gt: Tensor,
                 symmetric: Tensor) -> Tensor:
    """Mean ADD(-S) (metres) of one pose per instance, R_est [B, 3, 3], t_est [B, 3]
    against R_gt, t_gt (same frame); model_pts [B, M, 3]."""
    gt = model_pts @ R_gt.transpose(1, 2) + t_gt.unsqueeze(1)
    return add_s_distance(posed_points(R_est.unsqueeze(1), t_est.unsqueeze(1), model_pts), gt, symmetric).mean()
