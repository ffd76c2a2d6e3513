"""Where the package's own files are: ``config/``, ``launch/``, ``models/``.

Three layouts, tried in this order:
  - a source checkout: the folder above the ``hrc_perception`` Python package, when it
    holds this package's ``package.xml``;
  - a ROS 2 install (colcon, rosdep): ``share/hrc_perception`` found with the ament index;
  - a pip install (``pip install .``): ``<prefix>/share/hrc_perception``, where setup.py's
    ``data_files`` put them (``sys.prefix``, or the user base of ``pip install --user``).
Nothing here needs ROS: ament_index_python is used only when it is importable.
"""
from __future__ import annotations

import site
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = "hrc_perception"
MARKER = Path("config") / "graphs.yaml"      # present in every layout's share folder


class ResourceError(FileNotFoundError):
    """The package's share folder (or a file in it) is not where any layout puts it."""


def _source_root() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    xml = root / "package.xml"
    if xml.is_file() and f"<name>{PACKAGE}</name>" in xml.read_text(errors="replace"):
        return root
    return None


def _ament_share() -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, ValueError, LookupError, OSError):   # OSError: AMENT_PREFIX_PATH unset
        return None


def _prefix_shares() -> list[Path]:
    prefixes = [sys.prefix, getattr(site, "USER_BASE", None) or ""]
    return [Path(p) / "share" / PACKAGE for p in prefixes if p]


def candidates() -> list[Path]:
    """Every folder that may be the share folder, in the order they are tried."""
    out = [p for p in (_source_root(), _ament_share()) if p is not None]
    return out + _prefix_shares()


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The folder holding ``config/``, ``launch/`` and ``models/`` of this installation.

    Raises ResourceError naming every place it looked."""
    tried = candidates()
    for root in tried:
        if (root / MARKER).is_file():
            return root
    raise ResourceError(f"cannot find {PACKAGE}'s config/, launch/ and models/: looked for {MARKER} in "
                        + ", ".join(str(p) for p in tried))


def config_dir() -> Path:
    """``config/`` of this installation (parameter files, cell YAMLs, graphs.yaml, rviz)."""
    return share_dir() / "config"


def package_file(path: str | Path) -> Path:
    """A file named on a command line or in a parameter: ``path`` itself when it exists
    (absolute, or relative to the working directory); otherwise, for a relative path, the
    same path inside the share folder when it exists there (``models/segmentation/model.pt``,
    ``config/cell.yaml`` work from any directory); otherwise ``path`` unchanged, so the
    caller's own "not found" error names what was asked for."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute():
        return p
    try:
        inside = share_dir() / p
    except ResourceError:
        return p
    return inside if inside.exists() else p
