"""Helpers every training command shares: the data spec of a model card, a file's
SHA-256, atomic checkpoints, the learning-rate schedule, the epoch loader, the update step, the
machine line."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from pathlib import Path

import numpy as np
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


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (a model card's ``sha256``)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def epoch_loader(dataset, batch_size: int, epoch: int, seed: int, skip_batches: int, workers: int,
                 collate_fn=None) -> torch.utils.data.DataLoader:
    """The batches of one epoch in a shuffled order fixed by (seed, epoch), without the
    first skip_batches (a resumed run continues mid-epoch). Sets ``dataset.epoch``
    when the dataset has one (its augmentation draws depend on it)."""
    if hasattr(dataset, "epoch"):
        dataset.epoch = epoch
    order = np.random.default_rng([seed, epoch]).permutation(len(dataset))[skip_batches * batch_size:]
    return torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size,
                                       num_workers=workers, drop_last=collate_fn is None, collate_fn=collate_fn)


def optimizer_step(loss: torch.Tensor, optimizer, scheduler, what: str, clip_params=None,
                   clip_norm: float | None = None) -> None:
    """One update: FloatingPointError naming ``what`` for a non-finite loss, else
    backward, optional gradient-norm clipping, the optimizer and scheduler steps."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what}: loss is {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_params is not None:
        torch.nn.utils.clip_grad_norm_(clip_params, clip_norm)
    optimizer.step()
    scheduler.step()
