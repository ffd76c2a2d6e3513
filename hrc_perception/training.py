"""Helpers every training command shares: the data spec of a model card, atomic
checkpoints, the learning-rate schedule, the machine line."""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import torch


def data_spec(path: Path) -> dict:
    """The model card's description of a ``hrc-perception synth`` output: path, frames,
    seed, the command and cell config that made it (path only for other folders)."""
    meta = Path(path) / "meta.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        return {"path": str(path), "frames": m["frames"], "seed": m["seed"], "command": m.get("command"),
                "config": m.get("config_path") or "built-in"}
    return {"path": str(path)}


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash leaves the old file."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def warmup_cosine(step: int, total_steps: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up from 0.1 over ``warmup`` steps, then cosine
    decay to 0.05 at ``total_steps``."""
    if step < warmup:
        return 0.1 + 0.9 * step / warmup
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total_steps - warmup, 1)))


def machine_line(device: str) -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, device {device}"
