"""The SPDH model file: the network, how it was built, and the model card.

One ``torch.save`` dict (loads with ``weights_only=True``)::

    format      "hrc_perception.robot_pose/1"
    build       num_joints, widths, input_hw, heatmap_hw, z_range_m, sigma_px
    net         SPDHNet state dict (fp16 floats)
    model_card  JSON types; ``keypoints`` (joint names = URDF link names, in order),
                ``robot`` (name, urdf, keypoints), training data and held-out metrics
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hrc_perception.io.model_file import float_state, half_state, read_model_file, write_model_file
from hrc_perception.robot_pose.network import SPDHNet
from hrc_perception.robot_pose.spdh import HeatmapSpec

MODEL_FORMAT = "hrc_perception.robot_pose/1"


@dataclass(frozen=True)
class BuildConfig:
    """num_joints J; widths: channels at strides 2..16; input_hw: XYZ image size (h, w);
    heatmap_hw = input_hw / 2; z_range_m, sigma_px: the SPDH encoding."""
    num_joints: int
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    input_hw: tuple[int, int] = (240, 320)
    z_range_m: tuple[float, float] = (0.5, 4.5)
    sigma_px: float = 2.0

    @property
    def heatmap_spec(self) -> HeatmapSpec:
        return HeatmapSpec((self.input_hw[0] // 2, self.input_hw[1] // 2), self.z_range_m, self.sigma_px)

    def build(self) -> SPDHNet:
        return SPDHNet(self.num_joints, self.widths, self.z_range_m)

    def to_dict(self) -> dict:
        return {"num_joints": self.num_joints, "widths": list(self.widths), "input_hw": list(self.input_hw),
                "z_range_m": list(self.z_range_m), "sigma_px": self.sigma_px}

    @staticmethod
    def from_dict(d: dict) -> "BuildConfig":
        return BuildConfig(int(d["num_joints"]), tuple(d["widths"]), tuple(d["input_hw"]), tuple(d["z_range_m"]),
                           float(d["sigma_px"]))


def save_model(path: str | Path, build: BuildConfig, net: SPDHNet, model_card: dict) -> None:
    """Write the model file atomically (weights in fp16)."""
    write_model_file(path, {"format": MODEL_FORMAT, "build": build.to_dict(), "net": half_state(net.state_dict()),
                            "model_card": model_card})


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[BuildConfig, SPDHNet, dict]:
    """(build, network in eval mode (fp32), model_card) of a model file.
    FileNotFoundError / ValueError with the reason for a missing or foreign file."""
    blob = read_model_file(path, MODEL_FORMAT, "robot pose", map_location)
    build = BuildConfig.from_dict(blob["build"])
    card = blob["model_card"]
    if len(card.get("keypoints", [])) != build.num_joints:
        raise ValueError(f"{path}: model card lists {len(card.get('keypoints', []))} keypoints, the network has "
                         f"{build.num_joints}")
    net = build.build()
    net.load_state_dict(float_state(blob["net"]))
    net.eval()
    return build, net, card
