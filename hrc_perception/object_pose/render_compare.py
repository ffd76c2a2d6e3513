"""Silhouette (and depth) render-and-compare pose refinement.

A part's pose is fitted so that its rendered soft silhouette
(:func:`hrc_perception.render.splat.splat`) matches the instance mask and its rendered
depth the measured depth, by gradient descent (Adam) on a rotation about the part's
centroid (axis-angle) and a translation, from several starting poses at once; the
pose with the lowest final loss wins.

The view (:class:`RenderView`): a square window around the mask, wider than the
mask's box (``VIEW_MARGIN``) so that a pose whose silhouette spills over the mask is
seen doing so, resampled to ``size`` pixels: the mask as the share of each crop
pixel it covers, the depth at each crop pixel's centre (0 = none).

Loss of a pose, per crop pixel, with s the rendered silhouette, m the mask share, d
the measured and r the rendered depth (metres), D the part's diameter:
- silhouette: w (s - m)^2, summed and divided by the mask's area. w = 1 inside the
  mask. Outside it, w = 1 where the measured depth lies more than ``FREE_MARGIN``
  D behind the rendered surface (the camera sees past the part: it is not there),
  and ``OUTSIDE_UNSURE_WEIGHT`` elsewhere (something in front may hide the part, or
  the depth agrees with the render and the mask missed part of it, or there is no
  depth): a mask that misses part of the part costs little.
- depth: where the mask and the render (s > 0.5) overlap and the depth is valid, the
  robust residual rho(x) = x^2 / (x^2 + c^2) of x = (r - d) / D, c =
  ``DEPTH_SCALE_D``; its mean times ``depth_weight``.
The weights w and the depth pixels are taken from the current render (no gradient).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hrc_perception.render.splat import Window, area_per_point_m2, splat

VIEW_MARGIN = 0.6
"""The view's side is the mask box's longest side times (1 + VIEW_MARGIN)."""
VIEW_PX = 32
RENDER_POINTS = 500
FREE_MARGIN = 0.05
OUTSIDE_UNSURE_WEIGHT = 0.2
DEPTH_SCALE_D = 0.03
DEPTH_WEIGHT = 0.3
ITERATIONS = 10
Z_TURNS = 12
"""Starts of a fit from the turns (:func:`turned_starts`): this many about the part's z axis (chosen
from 2, 4, 8, 12, 16, 24 on the overview camera, tuning seed 660)."""
START_MODES = ("verified", "turns")
LR_ROTATION_RAD = 0.03
LR_TRANSLATION_D = 0.02


@dataclass(frozen=True)
class RenderView:
    """What the refiner compares with: mask [S, S] float32 (share of each crop pixel
    inside the instance mask), depth_m [S, S] float32 (0 = none), window (where the
    crop lies in the image), K [3, 3] (the image's intrinsics)."""
    mask: np.ndarray
    depth_m: np.ndarray
    window: Window
    K: np.ndarray


def render_view(mask: np.ndarray, depth_m: np.ndarray, K: np.ndarray, size: int = VIEW_PX,
                margin: float = VIEW_MARGIN) -> RenderView | None:
    """The view of one instance: mask [H, W] bool, depth_m [H, W] metres (0/NaN =
    none), K [3, 3]. The window is whole image pixels (side a multiple of nothing in
    particular; the mask share is the area average of the pixels in each crop
    pixel). None for an empty mask."""
    import cv2
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    x0, x1, y0, y1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    side = max(int(round(max(x1 - x0, y1 - y0) * (1.0 + margin))), size)
    X0, Y0 = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    h, w = mask.shape
    ys, xs = slice(max(Y0, 0), min(Y0 + side, h)), slice(max(X0, 0), min(X0 + side, w))
    window_mask = np.zeros((side, side), np.float32)
    window_mask[ys.start - Y0:ys.stop - Y0, xs.start - X0:xs.stop - X0] = mask[ys, xs]
    share = cv2.resize(window_mask, (size, size), interpolation=cv2.INTER_AREA)
    centres = np.floor((np.arange(size) + 0.5) * side / size).astype(np.int64)
    r, c = Y0 + centres, X0 + centres
    inside = (r[:, None] >= 0) & (r[:, None] < h) & (c[None] >= 0) & (c[None] < w)
    depth = np.nan_to_num(np.asarray(depth_m, np.float32)[np.ix_(np.clip(r, 0, h - 1), np.clip(c, 0, w - 1))],
                          nan=0.0, posinf=0.0, neginf=0.0)
    depth[~inside | (depth < 0)] = 0.0
    return RenderView(share, depth, Window(float(X0), float(Y0), float(side), size), np.asarray(K, np.float64))


@dataclass(frozen=True)
class _Batch:
    """H hypotheses (poses of parts, each with its view) as the loss uses them: points_m
    [H, M, 3] with valid [H, M] (padding False), area_m2 [H], diameter_m [H], and per
    hypothesis its view: mask and depth [H, S, S], K [H, 3, 3], windows (H), the mask's
    area [H] (crop pixels, at least 1)."""
    points_m: torch.Tensor
    valid: torch.Tensor
    area_m2: torch.Tensor
    diameter_m: torch.Tensor
    mask: torch.Tensor
    depth_m: torch.Tensor
    K: torch.Tensor
    windows: tuple
    mask_area: torch.Tensor


def turned_starts(R: np.ndarray, t: np.ndarray, centroid_m: np.ndarray, z_turns: int = Z_TURNS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Starting poses for a fit that does not trust the pose's orientation: the pose R [3, 3],
    t [3] turned about the part's own z axis through its centroid in z_turns equal steps
    (the first the pose itself), then by 180 degrees about its x and y axes (R [z_turns + 2,
    3, 3], t [.., 3]). z_turns 2 gives the identity and the three half turns."""
    if z_turns < 1:
        raise ValueError(f"z_turns must be >= 1, got {z_turns}")
    a = 2.0 * np.pi * np.arange(z_turns) / z_turns
    c, s = np.cos(a), np.sin(a)
    turns = [np.array([[ci, -si, 0.0], [si, ci, 0.0], [0.0, 0.0, 1.0]]) for ci, si in zip(c, s)]
    turns += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0])]
    Rh = np.asarray(R, np.float64) @ np.stack(turns)
    return Rh, np.asarray(t, np.float64) + R @ centroid_m - Rh @ centroid_m


def axis_angle_to_matrix(w: torch.Tensor) -> torch.Tensor:
    """Rotations [H, 3, 3] of axis-angle vectors w [H, 3] (radians), differentiable
    at 0 (Rodrigues with the series near 0)."""
    theta2 = (w * w).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-12))
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    zero = torch.zeros_like(w[:, 0])
    Kx = torch.stack([zero, -w[:, 2], w[:, 1], w[:, 2], zero, -w[:, 0], -w[:, 1], w[:, 0], zero], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=w.dtype).expand_as(Kx)
    return eye + a[..., None] * Kx + b[..., None] * (Kx @ Kx)


class RenderCompareRefiner:
    """Render-and-compare refinement of part poses.

    part_points_m: per class, [M, 3] surface points (model frame, metres; a uniform
    sample, as the model file carries); diameters_m: per class. RENDER_POINTS of them
    (evenly spaced) are rendered."""

    def __init__(self, part_points_m: list[np.ndarray], diameters_m: list[float], iterations: int = ITERATIONS,
                 depth_weight: float = DEPTH_WEIGHT, outside_unsure_weight: float = OUTSIDE_UNSURE_WEIGHT):
        if len(part_points_m) != len(diameters_m):
            raise ValueError(f"{len(part_points_m)} point sets and {len(diameters_m)} diameters")
        self.points_m, self.area_m2, self.centroids_m = [], [], []
        for p in part_points_m:
            p = np.asarray(p, np.float64).reshape(-1, 3)
            if len(p) > RENDER_POINTS:
                p = p[np.linspace(0, len(p) - 1, RENDER_POINTS).round().astype(np.int64)]
            self.points_m.append(torch.from_numpy(p.astype(np.float32)))
            self.area_m2.append(area_per_point_m2(p))
            self.centroids_m.append(p.mean(axis=0))
        self.diameters_m = [float(d) for d in diameters_m]
        self.iterations = int(iterations)
        self.depth_weight = float(depth_weight)
        self.outside_unsure_weight = float(outside_unsure_weight)

    def losses(self, cls: int, view: RenderView, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Loss [H] (see the module) of poses R [H, 3, 3], t [H, 3] (float32 tensors)."""
        return self._losses(self._batch([cls] * len(R), [view] * len(R)), R, t)

    def _batch(self, classes: list[int], views: list[RenderView]) -> _Batch:
        M = max(len(self.points_m[c]) for c in classes)
        points = torch.zeros(len(classes), M, 3)
        valid = torch.zeros(len(classes), M, dtype=torch.bool)
        for h, c in enumerate(classes):
            points[h, :len(self.points_m[c])] = self.points_m[c]
            valid[h, :len(self.points_m[c])] = True
        cache: dict[int, tuple] = {}          # a view's tensors once, however many hypotheses use it
        for v in views:
            if id(v) not in cache:
                cache[id(v)] = (torch.from_numpy(v.mask), torch.from_numpy(v.depth_m),
                                torch.from_numpy(v.K.astype(np.float32)), float(max(v.mask.sum(), 1.0)))
        mask, depth, K, area = zip(*(cache[id(v)] for v in views))
        return _Batch(points, valid, torch.tensor([self.area_m2[c] for c in classes]),
                      torch.tensor([self.diameters_m[c] for c in classes]), torch.stack(mask), torch.stack(depth),
                      torch.stack(K), tuple(v.window for v in views), torch.tensor(area))

    def _losses(self, b: _Batch, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sil, depth_r, weight = splat(b.points_m, b.area_m2, R, t, b.K, b.windows, valid=b.valid)
        m, d, D = b.mask, b.depth_m, b.diameter_m[:, None, None]
        with torch.no_grad():
            rendered = (weight > 0) & (sil > 0.5)
            free = (d > 0) & rendered & (d > depth_r + FREE_MARGIN * D)
            w = torch.where(m >= 0.5, 1.0, torch.where(free, 1.0, self.outside_unsure_weight))
            use_depth = rendered & (d > 0) & (m >= 0.5)
        l_sil = (w * (sil - m) ** 2).sum(dim=(1, 2)) / b.mask_area
        x2 = ((depth_r - d) / D) ** 2
        rho = torch.where(use_depth, x2 / (x2 + DEPTH_SCALE_D ** 2), torch.zeros_like(x2))
        l_depth = rho.sum(dim=(1, 2)) / use_depth.sum(dim=(1, 2)).clamp_min(1)
        # a pose that overlaps no measured depth gets the worst depth loss, not the best
        l_depth = torch.where(use_depth.sum(dim=(1, 2)) > 0, l_depth, torch.ones_like(l_depth))
        return l_sil + self.depth_weight * l_depth

    def refine(self, cls: int, view: RenderView, R0: np.ndarray, t0: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Refined poses of the starting poses R0 [H, 3, 3], t0 [H, 3] (model to camera,
        metres): (R [H, 3, 3], t [H, 3], loss [H]) float64, each the best of its own
        run (lowest loss seen). Non-finite starts are returned unchanged with loss inf."""
        return self.refine_many([(cls, view, R0, t0)])[0]

    def refine_many(self, jobs: list[tuple[int, RenderView, np.ndarray, np.ndarray]]
                    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """:meth:`refine` of several (cls, view, R0 [h, 3, 3], t0 [h, 3]) at once (a
        frame's parts): one fit of all their hypotheses together, so the per-step cost
        of the small tensor operations is paid once. Adam's update is elementwise and the
        losses are independent, so each result is that of its own fit."""
        if not jobs:
            return []
        R0 = [np.asarray(j[2], np.float64).reshape(-1, 3, 3) for j in jobs]
        t0 = [np.asarray(j[3], np.float64).reshape(-1, 3) for j in jobs]
        R_all, t_all = np.concatenate(R0), np.concatenate(t0)
        owner = np.concatenate([np.full(len(r), k) for k, r in enumerate(R0)])
        finite = np.isfinite(R_all).all(axis=(1, 2)) & np.isfinite(t_all).all(axis=1)
        R_best, t_best = R_all.copy(), t_all.copy()
        loss_best = np.full(len(R_all), np.inf)
        idx = np.flatnonzero(finite)
        if len(idx):
            # gradients also when called under inference mode (the predictor runs its networks in it)
            with torch.inference_mode(False), torch.enable_grad():
                classes = [int(jobs[owner[i]][0]) for i in idx]
                batch = self._batch(classes, [jobs[owner[i]][1] for i in idx])
                self._fit(batch, np.array([self.centroids_m[c] for c in classes]), R_all[idx], t_all[idx],
                          idx, R_best, t_best, loss_best)
        splits = np.cumsum([len(r) for r in R0])[:-1]
        return list(zip(np.split(R_best, splits), np.split(t_best, splits), np.split(loss_best, splits)))

    def _fit(self, batch: _Batch, c: np.ndarray, R0: np.ndarray, t0: np.ndarray, idx: np.ndarray,
             R_best: np.ndarray, t_best: np.ndarray, loss_best: np.ndarray) -> None:
        """Adam on rotations about the centroids c [H, 3] (model frame) and translations
        from R0, t0; the best pose of each hypothesis written into R_best[idx] etc."""
        Rs = torch.from_numpy(R0.astype(np.float32))
        centre = torch.from_numpy((np.einsum("hij,hj->hi", R0, c) + t0).astype(np.float32))   # camera frame
        c_t = torch.from_numpy(c.astype(np.float32))
        D = batch.diameter_m[:, None]
        w = torch.zeros(len(R0), 3, requires_grad=True)
        dt = torch.zeros(len(R0), 3, requires_grad=True)
        opt = torch.optim.Adam([{"params": [w], "lr": LR_ROTATION_RAD}, {"params": [dt], "lr": LR_TRANSLATION_D}])
        for it in range(self.iterations + 1):
            R = axis_angle_to_matrix(w) @ Rs
            t = centre + dt * D - torch.einsum("hij,hj->hi", R, c_t)
            loss = self._losses(batch, R, t)
            lv = loss.detach().double().numpy()
            better = lv < loss_best[idx]
            if better.any():
                sel = idx[better]
                R_best[sel] = R.detach().double().numpy()[better]
                t_best[sel] = t.detach().double().numpy()[better]
                loss_best[sel] = lv[better]
            if it == self.iterations:
                break
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
