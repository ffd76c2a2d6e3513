"""The SPDH heatmap network: a small U-Net on the XYZ image, small enough for a CPU.

Input [B, 4, H, W]: the XYZ image (camera frame, metres) normalised by
:func:`xyz_input` (x / 2, y / 2, (z - z_mid) / z_half, and a valid-depth channel).
Output: heatmap logits [B, 2J, H / 2, W / 2] (per joint the uv plane, then per joint
the uz plane; a spatial softmax of each channel is the joint's position distribution,
:func:`hrc_perception.robot_pose.spdh.heatmaps_from_logits`), and presence logits
[B, J]: whether each joint is in view at all (inside the image and the uz plane's
depth range), so a joint out of view is reported as absent, not placed at a border.

Encoder: strides 2, 4, 8, 16 with residual blocks; the deepest level uses dilated
convolutions so every output pixel sees the whole image. Decoder: upsampling with
skip connections back to stride 2, then two heads:

- the uv plane: a 1x1 convolution (logits per pixel);
- the uz plane, by a column head (:class:`ColumnDepthHead`): a joint's row in the uz
  plane is its depth, but in the image it lies at some row v of the same column u,
  and a convolution cannot move information that far along a column precisely. The
  head does it explicitly: per joint and column, attention over the rows (a softmax
  of the uv logits down the column, over pixels with depth) collects the input depth
  plus a learned offset (a joint lies inside its link, behind the surface the camera
  sees; behind an occluder, further) and a learned spread; the uz logits of that
  column are a Gaussian in depth around that estimate, added to the column's uv
  evidence (the logsumexp of its uv logits). Both planes are trained against the
  SPDH targets, the uz plane through the head's own two-layer branch only (it reads
  the uv logits and features without back-propagating into them: with shared
  gradients the depth loss slowed the uv plane's learning several times over);
  decoding is the same for both (:mod:`hrc_perception.robot_pose.spdh`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def xyz_input(xyz_m: np.ndarray, z_range_m: tuple[float, float]) -> np.ndarray:
    """Network input [4, H, W] float32 of an XYZ image [H, W, 3] (metres, 0 = invalid)."""
    xyz = np.asarray(xyz_m, dtype=np.float32)
    valid = (xyz[..., 2] > 0).astype(np.float32)
    z_mid = 0.5 * (z_range_m[0] + z_range_m[1])
    z_half = 0.5 * (z_range_m[1] - z_range_m[0])
    out = np.empty((4,) + xyz.shape[:2], dtype=np.float32)
    out[0] = xyz[..., 0] * 0.5
    out[1] = xyz[..., 1] * 0.5
    out[2] = np.where(valid > 0, (xyz[..., 2] - z_mid) / z_half, 0.0)
    out[3] = valid
    return out


def _conv_bn(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.a = _conv_bn(c, c, dilation=dilation)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, bias=False),
                               nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class _Up(nn.Module):
    """x2 bilinear upsampling, a 1x1 projection, the skip added, one residual block."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.block = _Residual(c_out)

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(F.relu(self.proj(x) + skip))


class ColumnDepthHead(nn.Module):
    """uz-plane logits [B, J, h, w] from uv logits [B, J, h, w], decoder features
    [B, C, h, w] and the input depth on the heatmap grid [B, h, w] (metres, 0 = none).

    Row r of the uz plane is depth z_r = z_min + (r + 0.5) * (z_max - z_min) / h."""

    def __init__(self, channels: int, num_joints: int, z_range_m: tuple[float, float]):
        super().__init__()
        self.z_range_m = tuple(float(z) for z in z_range_m)
        self.branch = nn.Sequential(_conv_bn(channels, 2 * channels), _conv_bn(2 * channels, 2 * channels))
        self.offset = nn.Conv2d(2 * channels, num_joints, 1)     # metres / 10, per pixel and joint
        self.spread = nn.Conv2d(2 * channels, num_joints, 1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, uv_logits: torch.Tensor, features: torch.Tensor, depth_m: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(uz logits [B, J, h, w], per-pixel joint depth estimate [B, J, h, w], metres:
        the input depth plus the offset, meaningful where the input has depth)."""
        B, J, h, w = uv_logits.shape
        # The uv plane and the shared network are trained by the uv target only; the
        # uz loss trains this head's own branch (offsets and spreads), which reads the
        # decoder's features without changing them.
        uv_logits = uv_logits.detach()
        features = self.branch(features.detach())
        valid = (depth_m > 0).unsqueeze(1)                                   # [B, 1, h, w]
        att = torch.softmax(uv_logits.masked_fill(~valid, -1e4), dim=2)     # down each column
        z_joint = depth_m.unsqueeze(1) + 0.1 * self.offset(features)        # [B, J, h, w]
        spread = 0.01 + 0.05 * F.softplus(self.spread(features))
        z_col = (att * z_joint).sum(2)                                       # [B, J, w]
        s_col = (att * spread).sum(2)
        evidence = torch.logsumexp(uv_logits, dim=2)                         # [B, J, w]
        z0, z1 = self.z_range_m
        z_rows = z0 + (torch.arange(h, device=uv_logits.device, dtype=uv_logits.dtype) + 0.5) * (z1 - z0) / h
        d = (z_rows.view(1, 1, h, 1) - z_col.unsqueeze(2)) / s_col.unsqueeze(2)
        return evidence.unsqueeze(2) - 0.5 * d * d - torch.log(s_col).unsqueeze(2), z_joint


class SPDHNet(nn.Module):
    """num_joints J; widths: channels at strides 2, 4, 8, 16; z_range_m: the uz plane's
    depth range (the input is normalised with it too)."""

    def __init__(self, num_joints: int, widths: tuple[int, int, int, int] = (16, 32, 64, 128),
                 z_range_m: tuple[float, float] = (0.5, 4.5)):
        super().__init__()
        c2, c4, c8, c16 = widths
        self.num_joints = num_joints
        self.z_range_m = tuple(float(z) for z in z_range_m)
        self.stem = nn.Sequential(_conv_bn(4, c2, stride=2), _conv_bn(c2, c2))
        self.down4 = nn.Sequential(_conv_bn(c2, c4, stride=2), _Residual(c4))
        self.down8 = nn.Sequential(_conv_bn(c4, c8, stride=2), _Residual(c8), _Residual(c8))
        self.down16 = nn.Sequential(_conv_bn(c8, c16, stride=2), _Residual(c16, 1), _Residual(c16, 2),
                                    _Residual(c16, 4))
        self.up8 = _Up(c16, c8)
        self.up4 = _Up(c8, c4)
        self.up2 = _Up(c4, c2)
        self.uv_head = nn.Conv2d(c2, num_joints, 1)
        self.uz_head = ColumnDepthHead(c2, num_joints, z_range_m)
        self.presence = nn.Linear(c16, num_joints)

    def forward(self, x: torch.Tensor, with_depth_map: bool = False):
        """(heatmap logits [B, 2J, H / 2, W / 2], presence logits [B, J]), and with
        with_depth_map the column head's per-pixel joint depths [B, J, H / 2, W / 2]
        (training supervises them directly)."""
        s2 = self.stem(x)
        s4 = self.down4(s2)
        s8 = self.down8(s4)
        s16 = self.down16(s8)
        presence = self.presence(s16.amax(dim=(2, 3)))
        y = self.up8(s16, s8)
        y = self.up4(y, s4)
        y = self.up2(y, s2)
        uv = self.uv_head(y)
        # the input depth at the heatmap pixels (input pixel 2c + 1 is nearest to heatmap pixel c's centre)
        z0, z1 = self.z_range_m
        z_in = x[:, 2, 1::2, 1::2] * (0.5 * (z1 - z0)) + 0.5 * (z0 + z1)
        depth = torch.where(x[:, 3, 1::2, 1::2] > 0, z_in, torch.zeros_like(z_in))[:, :uv.shape[2], :uv.shape[3]]
        uz, z_joint = self.uz_head(uv, y, depth)
        logits = torch.cat([uv, uz], dim=1)
        return (logits, presence, z_joint, depth > 0) if with_depth_map else (logits, presence)
