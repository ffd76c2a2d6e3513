"""Atomic, deterministic file output.

A half-written output must never look complete:

* single files are written to ``<name>.tmp-<pid>`` in the same directory and then
  renamed over the final name with ``os.replace`` (atomic on POSIX);
* a dataset directory is built in ``<final_dir>.partial/`` by :class:`PartialDir`
  and renamed to ``final_dir`` only by :meth:`PartialDir.commit`. A process that
  dies before that leaves the ``.partial`` directory behind and no ``final_dir``.

Output is deterministic so that the same frames give byte-identical files:
JSON goes through :func:`json_bytes` (floats rounded to 6 decimals, NaN/inf
refused, dict keys sorted — numerically when all keys are integer strings), and
``.npz`` archives through :func:`npz_bytes` (fixed zip timestamps, which
``np.savez_compressed`` does not give), images through :func:`jpeg_bytes` /
:func:`png_bytes` (Pillow, no timestamps).

:class:`DatasetWriter` is the common shape of the exporters: ``add(frame)`` per
frame, ``close()`` to finalize and commit, usable as a context manager.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

JSON_FLOAT_DECIMALS = 6
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest zip date; constant for reproducible archives


def _tmp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same
    directory, then ``os.replace``). The parent directory must exist."""
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sorted_items(d: Mapping) -> list[tuple[str, Any]]:
    keys = [str(k) for k in d.keys()]
    if len(set(keys)) != len(keys):
        raise ValueError(f"JSON object has keys that collide as strings: {keys}")
    items = [(str(k), v) for k, v in d.items()]
    if all(k.isdigit() for k in keys):
        return sorted(items, key=lambda kv: int(kv[0]))
    return sorted(items, key=lambda kv: kv[0])


def to_jsonable(obj: Any, decimals: int = JSON_FLOAT_DECIMALS) -> Any:
    """Plain-Python copy of ``obj`` ready for ``json.dumps``.

    numpy scalars/arrays become Python numbers/lists, tuples become lists, floats
    are rounded to ``decimals`` (and -0.0 becomes 0.0), dict keys become strings
    in a canonical order (numeric for integer strings, else lexicographic).
    Raises ValueError on NaN or infinity.
    """
    if isinstance(obj, Mapping):
        return {k: to_jsonable(v, decimals) for k, v in _sorted_items(obj)}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v, decimals) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, decimals) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            raise ValueError(f"non-finite float {x!r} cannot be written to JSON")
        return round(x, decimals) + 0.0
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def json_bytes(obj: Any, indent: int | None = None) -> bytes:
    """Canonical UTF-8 JSON of ``obj`` (see :func:`to_jsonable`), newline-terminated.

    ``indent=None`` gives compact output (no spaces), for large files."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(to_jsonable(obj), indent=indent, separators=separators,
                      allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as canonical JSON (:func:`json_bytes`) to ``path`` atomically."""
    atomic_write_bytes(path, json_bytes(obj, indent=indent))


def npz_bytes(arrays: Mapping[str, np.ndarray], compress: bool = True) -> bytes:
    """Contents of an ``.npz`` archive (readable by ``np.load``) holding ``arrays``.

    Same layout as ``np.savez_compressed`` but with fixed member timestamps and
    member order (sorted names) so equal arrays give equal bytes. Object arrays
    are refused (``allow_pickle=False``)."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    # deflate level 1: most of the size gain at a fraction of the time
    with zipfile.ZipFile(buf, mode="w", compression=method, allowZip64=True) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, member.getvalue(), compresslevel=1)
    return buf.getvalue()


class PartialDir:
    """A directory built under ``<final_dir>.partial/`` and published by :meth:`commit`.

    Creating it removes a stale ``.partial`` left by a dead writer and makes a fresh
    one. ``commit()`` replaces an existing ``final_dir`` (it is first renamed
    aside, so ``final_dir`` is never half-replaced) and renames the ``.partial``
    into place. Used as a context manager it commits on normal exit and leaves the
    ``.partial`` in place (for inspection) when an exception escapes.
    """

    def __init__(self, final_dir: str | os.PathLike):
        self.final_dir = Path(final_dir)
        self.path = self.final_dir.with_name(self.final_dir.name + ".partial")
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.committed = False

    def __truediv__(self, rel: str | os.PathLike) -> Path:
        """Path inside the working (``.partial``) directory."""
        return self.path / rel

    def commit(self) -> Path:
        """Publish the directory as ``final_dir``; returns ``final_dir``."""
        if self.committed:
            raise RuntimeError(f"{self.final_dir} already committed")
        if self.final_dir.exists():
            old = self.final_dir.with_name(f"{self.final_dir.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.final_dir, old)
            os.replace(self.path, self.final_dir)
            shutil.rmtree(old)
        else:
            os.replace(self.path, self.final_dir)
        self.committed = True
        return self.final_dir

    def abort(self) -> None:
        """Delete the working directory without publishing anything."""
        if not self.committed and self.path.exists():
            shutil.rmtree(self.path)

    def __enter__(self) -> "PartialDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self.committed:
            self.commit()


def jpeg_bytes(rgb: np.ndarray, quality: int = 95) -> bytes:
    """JPEG of an RGB image [H, W, 3] uint8 (Pillow, fixed settings, deterministic)."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] uint8 RGB, got {rgb.dtype} {rgb.shape}")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of a [H, W] uint8 (mode 'L') or uint16 (mode 'I;16') image.

    16-bit images round-trip exactly: ``np.asarray(Image.open(f))`` gives the same
    uint16 values back."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype.kind != "u" or image.dtype.itemsize not in (1, 2):
        raise ValueError(f"expected a [H, W] uint8 or uint16 image, got {image.dtype} {image.shape}")
    wide = image.dtype.itemsize == 2
    # Pillow's 'I;16' is little-endian 16-bit.
    image = np.ascontiguousarray(image, dtype="<u2" if wide else np.uint8)
    pil = Image.fromarray(image)
    expected = "I;16" if wide else "L"
    if pil.mode != expected:
        raise RuntimeError(f"Pillow gave mode {pil.mode!r} for {image.dtype}, expected {expected!r}")
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)   # fast; lossless all the same
    return buf.getvalue()


class DatasetWriter:
    """Base of the exporters: owns a :class:`PartialDir` for ``out_dir``.

    Subclasses implement ``_add(frame)`` and ``_finalize()`` (write the remaining
    files into ``self.work``); ``close()`` then commits. ``out_dir`` is replaced as
    a whole on close, so give each writer its own directory.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self._partial = PartialDir(self.out_dir)
        self.work: Path = self._partial.path
        self.closed = False

    def add(self, frame) -> None:
        """Export one ``hrc_perception.sim.frame.Frame``."""
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} for {self.out_dir} is closed")
        self._add(frame)

    def close(self) -> Path:
        """Write the remaining files and publish ``out_dir``; returns it. Idempotent."""
        if not self.closed:
            self._finalize()
            self._partial.commit()
            self.closed = True
        return self.out_dir

    def _add(self, frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finalize(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
