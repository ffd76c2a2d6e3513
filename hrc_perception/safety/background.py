"""The cell's static background depth: what the camera sees with nobody in the cell.

Learned from depth frames of the empty cell (a recording, or the first seconds after
start-up): per pixel, a high quantile of the valid readings that nothing moving
explains (the robot's pixels are masked out by the caller). A pixel with too few such
readings has no background (0): every valid reading there is foreground.

Updates keep the safe direction fast and the unsafe one slow:

- farther (a static object taken away): a pixel read farther than its background for
  ``reveal_after_s`` without a break takes the new depth. A background too near hides
  what stands in front of the true one, so this direction is the quick one;
- nearer (a static object put down): a pixel read nearer than its background, at one
  depth (within the tolerance), for ``absorb_after_s`` without a break, and never
  protected (the robot, a tracked person), takes the new depth. A person who stands
  still is foreground for that long: the default, 10 minutes, is far longer than any
  task in the cell keeps a person motionless, and it is a parameter.

Depths in metres (float32, 0 = none); images [H, W] in the depth camera's pixels.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

FORMAT = "hrc_perception.background_depth/1"


@dataclass(frozen=True)
class ForegroundTolerance:
    """How much nearer than its background a reading must be to count as foreground:
    max(min_m, per_m2 * z^2) at background depth z (metres; a stereo camera's noise grows
    as z^2)."""
    min_m: float = 0.04
    per_m2: float = 0.012

    def __post_init__(self):
        if not (self.min_m > 0 and self.per_m2 >= 0 and math.isfinite(self.min_m + self.per_m2)):
            raise ValueError(f"tolerance must be > 0 and finite: {self}")

    def at(self, depth_m: np.ndarray) -> np.ndarray:
        """The tolerance (metres) at each depth of depth_m."""
        return np.maximum(np.float32(self.min_m), np.float32(self.per_m2) * np.square(depth_m, dtype=np.float32))


@dataclass
class BackgroundDepth:
    """depth_m [H, W] float32 (metres, 0 = no background), the frames it was learned
    from, valid_rate [H, W] float32 (the fraction of them in which the pixel read a depth;
    None: 1 where there is a background), and the update state: since when (seconds) each pixel has read farther /
    nearer than its background (NaN: not now), and the nearer depth it held."""
    depth_m: np.ndarray
    frames: int = 0
    tolerance: ForegroundTolerance = field(default_factory=ForegroundTolerance)
    valid_rate: np.ndarray | None = None
    farther_since_s: np.ndarray | None = None
    nearer_since_s: np.ndarray | None = None
    nearer_depth_m: np.ndarray | None = None

    def __post_init__(self):
        d = np.asarray(self.depth_m, dtype=np.float32)
        if d.ndim != 2:
            raise ValueError(f"background depth must be [H, W], got shape {d.shape}")
        d = np.where(np.isfinite(d) & (d > 0), d, np.float32(0.0)).astype(np.float32)
        self.depth_m = d
        self._cache: dict = {}
        if self.valid_rate is None:
            self.valid_rate = (d > 0).astype(np.float32)
        self.valid_rate = np.asarray(self.valid_rate, dtype=np.float32).reshape(d.shape)
        for name in ("farther_since_s", "nearer_since_s", "nearer_depth_m"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(d.shape, np.nan, np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth_m.shape

    def reliable(self, min_rate: float = 0.9) -> np.ndarray:
        """bool [H, W]: pixels with a background that read a depth in at least min_rate of
        the empty-cell frames (one of them reading nothing now is news)."""
        return self._cached(("reliable", min_rate), lambda: (self.depth_m > 0) & (self.valid_rate >= min_rate))

    def block_far_m(self, block_px: int) -> np.ndarray:
        """[H // block_px, W // block_px]: the farthest background of each whole block (0: none)."""
        return self._cached(("far", block_px), lambda: blocks(self.depth_m, block_px).max(axis=(1, 3)))

    def _cached(self, key, make):
        """What make() gives, kept until the background changes."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def known_fraction(self) -> float:
        return float(np.count_nonzero(self.depth_m) / self.depth_m.size)

    def near_m(self) -> np.ndarray:
        """[H, W]: the nearest background of each pixel's 3x3 neighbourhood (0: none known
        there). A pixel on a static depth edge reads either side from frame to frame."""
        def near():
            from scipy.ndimage import minimum_filter
            m = minimum_filter(np.where(self.depth_m > 0, self.depth_m, np.float32(np.inf)), size=3, mode="nearest")
            return np.where(np.isfinite(m), m, np.float32(0.0)).astype(np.float32)
        return self._cached("near", near)

    def foreground(self, depth_m: np.ndarray) -> np.ndarray:
        """bool [H, W]: valid readings nearer than the nearest background around them
        (:meth:`near_m`) by more than the tolerance, and every valid reading where there
        is no background."""
        d = _as_depth(depth_m, self.shape)

        def limit():          # nearer than this is foreground; +inf where no background is known
            bg = self.near_m()
            return np.where(bg > 0, bg - self.tolerance.at(bg), np.float32(np.inf))
        return (d > 0) & (d < self._cached("foreground_limit", limit))

    def update(self, depth_m: np.ndarray, t_s: float, protected: np.ndarray | None = None,
               reveal_after_s: float = 2.0, absorb_after_s: float = 600.0) -> int:
        """Follow slow changes of the cell (see module doc) with the frame depth_m [H, W]
        read at t_s (seconds); protected: bool [H, W] pixels never absorbed (the robot, the
        people). Returns how many pixels changed their background."""
        if not (math.isfinite(t_s) and reveal_after_s >= 0 and absorb_after_s >= 0):
            raise ValueError(f"update needs a finite time and delays >= 0: {t_s}, {reveal_after_s}, {absorb_after_s}")
        d = _as_depth(depth_m, self.shape)
        bg = self.depth_m
        tol = self.tolerance.at(np.where(bg > 0, bg, d))
        valid = d > 0
        farther = valid & (bg > 0) & (d > bg + tol)
        nearer = valid & (bg > 0) & (d < bg - tol)
        if protected is not None:
            nearer &= ~np.asarray(protected, dtype=bool).reshape(self.shape)
        t = np.float32(t_s)
        # farther: since when, without a break
        self.farther_since_s[~farther] = np.nan
        self.farther_since_s[farther & np.isnan(self.farther_since_s)] = t
        revealed = farther & (t - self.farther_since_s >= reveal_after_s)
        # nearer: at one depth, since when
        same = nearer & (np.abs(d - self.nearer_depth_m) <= tol)
        start = nearer & ~same
        self.nearer_since_s[~nearer] = np.nan
        self.nearer_depth_m[~nearer] = np.nan
        self.nearer_since_s[start] = t
        self.nearer_depth_m[start] = d[start]
        absorbed = same & (t - self.nearer_since_s >= absorb_after_s)
        changed = revealed | absorbed
        bg[changed] = d[changed]
        if changed.any():
            self._cache.clear()
        for a in (self.farther_since_s, self.nearer_since_s, self.nearer_depth_m):
            a[changed] = np.nan
        return int(np.count_nonzero(changed))

    def save(self, path: str | Path) -> Path:
        """Write the background (depth in mm, uint16) as .npz, with a small header."""
        path = Path(path)
        header = {"format": FORMAT, "frames": self.frames, "tolerance_min_m": self.tolerance.min_m,
                  "tolerance_per_m2": self.tolerance.per_m2}
        mm = np.round(np.clip(self.depth_m, 0, 65.535) * 1000).astype(np.uint16)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, depth_mm=mm, valid_percent=np.round(self.valid_rate * 100).astype(np.uint8),
                                header=np.array(json.dumps(header)))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "BackgroundDepth":
        """A background written by :meth:`save`; ValueError naming the file otherwise."""
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                mm = z["depth_mm"]
                rate = z["valid_percent"].astype(np.float32) / 100.0
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a background depth file ({type(e).__name__}: {e})") from e
        if header.get("format") != FORMAT or mm.dtype != np.uint16 or mm.ndim != 2:
            raise ValueError(f"{path}: format {header.get('format')!r}, depth {mm.dtype} {mm.shape}; need {FORMAT}")
        tol = ForegroundTolerance(float(header["tolerance_min_m"]), float(header["tolerance_per_m2"]))
        if rate.shape != mm.shape:
            raise ValueError(f"{path}: valid rate {rate.shape} and depth {mm.shape} differ in size")
        return cls(mm.astype(np.float32) / 1000.0, int(header["frames"]), tol, valid_rate=rate)


def learn_background(frames: Iterable[tuple[np.ndarray, np.ndarray | None]], quantile: float = 0.9,
                     min_samples: int = 5, tolerance: ForegroundTolerance | None = None) -> BackgroundDepth:
    """The background of the empty cell from (depth_m [H, W], moving [H, W] bool or None)
    pairs: per pixel, the ``quantile`` of the valid readings not marked moving (the robot),
    0 where fewer than ``min_samples`` remain. A high quantile errs far: a background too
    far makes noise foreground (a stop), one too near would hide a person."""
    if not 0.5 <= quantile <= 1.0 or min_samples < 1:
        raise ValueError(f"quantile must be in [0.5, 1] and min_samples >= 1, got {quantile}, {min_samples}")
    stack, shape = [], None
    for depth_m, moving in frames:
        d = _as_depth(depth_m, shape)
        shape = d.shape
        if moving is not None:
            d = np.where(np.asarray(moving, dtype=bool).reshape(shape), np.float32(0.0), d)
        stack.append(np.where(d > 0, d, np.float32(np.nan)))
    if not stack:
        raise ValueError("no depth frames to learn the background from")
    s = np.stack(stack)
    counts = np.count_nonzero(np.isfinite(s), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN pixels: no background
        bg = np.nanquantile(s, quantile, axis=0, method="higher")
    bg = np.where(counts >= min_samples, bg, 0.0).astype(np.float32)
    return BackgroundDepth(bg, len(stack), tolerance or ForegroundTolerance(),
                           valid_rate=(counts / len(stack)).astype(np.float32))


def blocks(image: np.ndarray, block_px: int) -> np.ndarray:
    """image [H, W] as whole blocks [H // b, b, W // b, b] (a view; the rows and columns past
    the last whole block left out): reduce over axes (1, 3) for one value per block."""
    b, (h, w) = block_px, image.shape
    return image[:h - h % b, :w - w % b].reshape(h // b, b, w // b, b)


def _as_depth(depth_m: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    """depth_m as float32 [H, W] with every invalid reading (NaN, inf, <= 0) at 0."""
    d = np.asarray(depth_m, dtype=np.float32)
    if d.ndim != 2 or (shape is not None and d.shape != tuple(shape)):
        raise ValueError(f"depth of shape {d.shape}, need {tuple(shape) if shape else '[H, W]'}")
    return np.where(np.isfinite(d) & (d > 0), d, np.float32(0.0))
