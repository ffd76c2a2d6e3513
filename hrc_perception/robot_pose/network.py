"""The SPDH heatmap network: a small U-Net on the XYZ image, small enough for a CPU.

Input [B, 4, H, W]: the XYZ image (camera frame, metres) normalised by
:func:`xyz_input` (x / 2, y / 2, (z - z_mid) / z_half, and a valid-depth channel).
Output [B, 2J, H / 2, W / 2]: per joint the uv-plane heatmap, then per joint the
uz-plane heatmap (:mod:`hrc_perception.robot_pose.spdh`).

Encoder: strides 2, 4, 8, 16 with residual blocks; the deepest level uses dilated
convolutions so every output pixel sees the whole image (the uz plane places a joint
by its depth, anywhere in a column). Decoder: upsampling with skip connections back
to stride 2.
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


class SPDHNet(nn.Module):
    """num_joints J; widths: channels at strides 2, 4, 8, 16."""

    def __init__(self, num_joints: int, widths: tuple[int, int, int, int] = (16, 32, 64, 128)):
        super().__init__()
        c2, c4, c8, c16 = widths
        self.num_joints = num_joints
        self.stem = nn.Sequential(_conv_bn(4, c2, stride=2), _conv_bn(c2, c2))
        self.down4 = nn.Sequential(_conv_bn(c2, c4, stride=2), _Residual(c4))
        self.down8 = nn.Sequential(_conv_bn(c4, c8, stride=2), _Residual(c8), _Residual(c8))
        self.down16 = nn.Sequential(_conv_bn(c8, c16, stride=2), _Residual(c16, 1), _Residual(c16, 2),
                                    _Residual(c16, 4))
        self.up8 = _Up(c16, c8)
        self.up4 = _Up(c8, c4)
        self.up2 = _Up(c4, c2)
        self.head = nn.Conv2d(c2, 2 * num_joints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2 = self.stem(x)
        s4 = self.down4(s2)
        s8 = self.down8(s4)
        s16 = self.down16(s8)
        y = self.up8(s16, s8)
        y = self.up4(y, s4)
        y = self.up2(y, s2)
        return self.head(y)
