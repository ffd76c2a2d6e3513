"""Where a model node finds its weights: a path parameter, or '' for the shipped file."""
from __future__ import annotations

from pathlib import Path

from hrc_perception import resources


def shipped_weights_candidates(relpath: Path) -> list[Path]:
    """Where shipped weights ``relpath`` (e.g. models/segmentation/model.pt) may be: in each
    place the package's share folder may be (source tree, ROS install, pip install)."""
    return [root / relpath for root in resources.candidates()]


def resolve_weights(weights: str, relpath: Path, missing_message: str) -> Path:
    """Path of the weights to load: ``weights`` itself, or for '' the first shipped file that exists.

    Raises FileNotFoundError (``missing_message`` plus where it looked) when '' is given
    and no shipped weights exist. A given path is returned as is (the loader says when
    it is missing).
    """
    if weights:
        return Path(weights).expanduser()
    candidates = shipped_weights_candidates(relpath)
    for p in candidates:
        if p.is_file():
            return p
    raise FileNotFoundError(f"{missing_message} (looked for {', '.join(str(p) for p in candidates)})")


def load_error_text(e: Exception) -> str:
    """One line for a model node's ``configure_error``: the message of a missing or
    mismatched file as it is, the type and message of anything else."""
    return str(e) if isinstance(e, (FileNotFoundError, ValueError)) else f"{type(e).__name__}: {e}"
