"""DenseFusion networks: the pose estimator and the iterative refiner.

Shapes: B instances, N chosen pixels (points) per instance, S crop side, K part
classes, E colour embedding channels.

:class:`ColorEmbedding`  crop [B, 3, S, S] (ImageNet-normalised RGB) -> per-pixel
    embedding [B, E, S, S] (a small encoder-decoder with skip connections).
:class:`PoseNet`  crop, points [B, N, 3] (camera frame, metres), choose [B, N]
    (flat pixel index of each point in the crop), class index [B] ->
    per point: rotation quaternion [B, N, 4] (w, x, y, z; unit), translation
    [B, N, 3] (metres, camera frame: the point plus a predicted offset) and
    confidence [B, N] in (0, 1); plus the chosen pixels' embeddings [B, E, N]
    for the refiner. The points are centred on their mean before the geometric
    embedding (the features do not depend on where the part is in the room).
:class:`PoseRefiner`  points in the frame of the current estimate [B, N, 3]
    (metres), the chosen pixels' embeddings [B, E, N], class index [B] -> a pose
    correction: quaternion [B, 4] (w, x, y, z) and translation [B, 3] (metres),
    both in the current estimate's frame. Compose with :func:`compose_correction`.

Per-pixel fusion as in DenseFusion: at each point, the geometric and colour
features at two depths are concatenated with a global feature (average over the
points); every point votes for a pose, weighted by its confidence.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EMBED_DIM = 32


def _conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ColorEmbedding(nn.Module):
    """Crop [B, 3, S, S] -> per-pixel embedding [B, E, S, S] (S divisible by 8).

    3x3 convolutions down to S/8 and back up to S/4 with skip connections; the last
    two steps (to S/2, then S with the input colour) are 1x1, which keeps the cost
    low where the maps are large."""

    def __init__(self, embed_dim: int = EMBED_DIM):
        super().__init__()
        self.enc1 = _conv(3, 32, 2)                                       # S/2
        self.enc2 = nn.Sequential(_conv(32, 64, 2), _conv(64, 64))       # S/4
        self.enc3 = nn.Sequential(_conv(64, 128, 2), _conv(128, 128))    # S/8
        self.dec2 = _conv(128 + 64, 64)
        self.dec1 = _conv(64 + 32, 32, kernel=1)
        self.out = nn.Conv2d(32 + 3, embed_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        up = F.interpolate(d1, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(self.out(torch.cat([up, x], 1)))


def gather_pixels(emb: Tensor, choose: Tensor) -> Tensor:
    """Embeddings [B, E, N] of pixels ``choose`` [B, N] (flat indices) of emb [B, E, S, S]."""
    b, e = emb.shape[:2]
    return torch.gather(emb.reshape(b, e, -1), 2, choose.unsqueeze(1).expand(-1, e, -1))


class PointFusion(nn.Module):
    """Per-point fusion of geometry [B, 3, N] and colour [B, E, N] -> per-point
    features [B, 384 + G, N] (``out_dim`` channels: geometry and colour at two depths,
    and the global feature) and the global feature [B, G] (average over the points)."""

    def __init__(self, embed_dim: int = EMBED_DIM, global_dim: int = 256):
        super().__init__()
        self.geo1 = nn.Conv1d(3, 64, 1)
        self.col1 = nn.Conv1d(embed_dim, 64, 1)
        self.geo2 = nn.Conv1d(64, 128, 1)
        self.col2 = nn.Conv1d(64, 128, 1)
        self.glob = nn.Sequential(nn.Conv1d(384, 128, 1), nn.ReLU(inplace=True), nn.Conv1d(128, global_dim, 1),
                                  nn.ReLU(inplace=True))
        self.out_dim = 384 + global_dim
        self.global_dim = global_dim

    def forward(self, xyz: Tensor, col: Tensor) -> tuple[Tensor, Tensor]:
        g1, c1 = F.relu(self.geo1(xyz)), F.relu(self.col1(col))
        g2, c2 = F.relu(self.geo2(g1)), F.relu(self.col2(c1))
        local = torch.cat([g1, c1, g2, c2], 1)                            # [B, 384, N]
        glob = self.glob(local).mean(dim=2)                               # [B, G]
        return torch.cat([local, glob.unsqueeze(2).expand(-1, -1, local.shape[2])], 1), glob


def _head(cin: int, cout: int, hidden: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, hidden[0], 1), nn.ReLU(inplace=True), nn.Conv1d(hidden[0], hidden[1], 1),
                         nn.ReLU(inplace=True), nn.Conv1d(hidden[1], cout, 1))


def _pick_class(out: Tensor, cls: Tensor, width: int) -> Tensor:
    """[B, K*width, ...] -> [B, width, ...] for class index cls [B]."""
    b = out.shape[0]
    out = out.reshape(b, -1, width, *out.shape[2:])
    return out[torch.arange(b, device=out.device), cls]


class PoseNet(nn.Module):
    """DenseFusion pose estimator (see the module docstring for shapes)."""

    def __init__(self, num_classes: int, embed_dim: int = EMBED_DIM, global_dim: int = 256,
                 head_hidden: tuple[int, int] = (128, 64)):
        super().__init__()
        self.num_classes = num_classes
        self.color = ColorEmbedding(embed_dim)
        self.fusion = PointFusion(embed_dim, global_dim)
        d = self.fusion.out_dim
        self.rot = _head(d, num_classes * 4, head_hidden)
        self.trans = _head(d, num_classes * 3, head_hidden)
        self.conf = _head(d, num_classes, head_hidden)

    def forward(self, crop: Tensor, points: Tensor, choose: Tensor, cls: Tensor
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        col = gather_pixels(self.color(crop), choose)                     # [B, E, N]
        center = points.mean(dim=1, keepdim=True)                          # [B, 1, 3]
        feat, _ = self.fusion((points - center).transpose(1, 2), col)
        q = _pick_class(self.rot(feat), cls, 4).transpose(1, 2)            # [B, N, 4]
        q = q / q.norm(dim=2, keepdim=True).clamp_min(1e-8)
        t = points + _pick_class(self.trans(feat), cls, 3).transpose(1, 2)
        c = torch.sigmoid(_pick_class(self.conf(feat), cls, 1)[:, 0])      # [B, N]
        return q, t, c, col


class PoseRefiner(nn.Module):
    """DenseFusion iterative refiner (see the module docstring for shapes)."""

    def __init__(self, num_classes: int, embed_dim: int = EMBED_DIM, global_dim: int = 256,
                 head_hidden: tuple[int, int] = (256, 128)):
        super().__init__()
        self.num_classes = num_classes
        self.fusion = PointFusion(embed_dim, global_dim)
        self.rot = nn.Sequential(nn.Linear(global_dim, head_hidden[0]), nn.ReLU(inplace=True),
                                 nn.Linear(head_hidden[0], head_hidden[1]), nn.ReLU(inplace=True),
                                 nn.Linear(head_hidden[1], num_classes * 4))
        self.trans = nn.Sequential(nn.Linear(global_dim, head_hidden[0]), nn.ReLU(inplace=True),
                                   nn.Linear(head_hidden[0], head_hidden[1]), nn.ReLU(inplace=True),
                                   nn.Linear(head_hidden[1], num_classes * 3))
        # start at the identity correction: zero weights on the last layers
        for last, bias in ((self.rot[-1], (1.0, 0.0, 0.0, 0.0)), (self.trans[-1], (0.0, 0.0, 0.0))):
            nn.init.zeros_(last.weight)
            with torch.no_grad():
                last.bias.copy_(torch.tensor(bias).repeat(num_classes))

    def forward(self, points_est: Tensor, col: Tensor, cls: Tensor) -> tuple[Tensor, Tensor]:
        _, glob = self.fusion(points_est.transpose(1, 2), col)
        q = _pick_class(self.rot(glob), cls, 4)
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-8)
        return q, _pick_class(self.trans(glob), cls, 3)


def quaternion_to_matrix(q_wxyz: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] of unit quaternions [..., 4] (w, x, y, z)."""
    w, x, y, z = q_wxyz.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], dim=-1).reshape(*q_wxyz.shape[:-1], 3, 3)


def to_estimate_frame(points_cam: Tensor, R_cam_est: Tensor, t_cam_est: Tensor) -> Tensor:
    """Points [B, N, 3] from the camera frame into the frame of the estimate
    (R_cam_est [B, 3, 3], t_cam_est [B, 3]): p_est = R^T (p_cam - t)."""
    return (points_cam - t_cam_est.unsqueeze(1)) @ R_cam_est


def compose_correction(R_cam_est: Tensor, t_cam_est: Tensor, R_est_new: Tensor, t_est_new: Tensor
                       ) -> tuple[Tensor, Tensor]:
    """The refined pose T_cam_new = T_cam_est @ T_est_new: R [B, 3, 3], t [B, 3]."""
    return R_cam_est @ R_est_new, (R_cam_est @ t_est_new.unsqueeze(2)).squeeze(2) + t_cam_est
