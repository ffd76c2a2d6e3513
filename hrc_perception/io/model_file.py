"""Model files of the learned components: one ``torch.save`` dict with a ``format``
string, build arguments, fp16 state dicts and a model card, loadable with
``weights_only=True`` (no pickled code)."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from hrc_perception.io.atomic import atomic_write_bytes


def half_state(sd: dict) -> dict:
    """A state dict with its floating-point tensors in fp16 (small files)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}


def float_state(sd: dict) -> dict:
    """A state dict with its floating-point tensors back in fp32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def write_model_file(path: str | Path, blob: dict) -> None:
    """torch.save of blob, written atomically."""
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_model_file(path: str | Path, model_format: str, what: str, map_location="cpu") -> dict:
    """The dict of a model file of ``model_format``. FileNotFoundError for a missing
    file; ValueError naming ``what`` (e.g. 'robot pose') for an unreadable or foreign one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} weights not found")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:   # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"{path}: not a readable {what} model file ({e})") from e
    fmt = blob.get("format") if isinstance(blob, dict) else None
    if fmt != model_format:
        raise ValueError(f"{path}: not a {what} model file (format {fmt!r}, expected {model_format!r})")
    return blob
