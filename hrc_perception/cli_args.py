"""Pieces every component's command-line arguments share (``<component>/cli.py``)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from hrc_perception.resources import package_file


@dataclass(frozen=True)
class Commands:
    """Where a component adds its commands: ``hrc-perception <name>`` (top), ``hrc-perception
    train|eval|bench <name>``. Each is an argparse subparsers object (``add_parser``)."""
    top: argparse._SubParsersAction
    train: argparse._SubParsersAction
    eval: argparse._SubParsersAction
    bench: argparse._SubParsersAction


def input_file(path: str) -> str:
    """argparse type of an input file: as given, else the same relative path in the package's
    share folder (``models/...``, ``config/...`` work from any directory and from an install)."""
    return str(package_file(path))


def command_line() -> str:
    """The command as typed, for the JSON results."""
    return "hrc-perception " + " ".join(sys.argv[1:])


def optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def write_json(result: dict, path: str | Path, **extra) -> None:
    """``result`` (plus ``extra`` keys) as indented JSON at ``path``, written whole or not at
    all (a temporary file renamed); NaN stays NaN, as Python's json writes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps({**result, **extra}, indent=2) + "\n")
    tmp.replace(path)


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", help="also write the figures to this JSON file")


def add_training_run(p: argparse.ArgumentParser) -> None:
    """Options every training command shares: device, seed, checkpoints, loader and threads."""
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--threads", type=int, help="torch CPU threads")
