"""The static scene and the masks: what every frame has in common, and what to ignore.

The static scene is the median of the dark frames; the star mask comes from it and
its gradient, thresholded with global statistics of a sparse sample (so a row block
gets the same mask as the whole image); the strap mask from the strap table.
Frame-read sources and row-read sources whose frame ranges are cheap (local MAST
cubes: the dark frames of a band of rows are read alone) keep the whole static
scene; other row-read sources (remote MAST cubes, read in whole rows) only measure
the thresholds here and build the scene and the star mask block by block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import SCIENCE_SIZE
from ..downsample import median_over_frames
from ..masks import StarThresholds, star_mask, strap_columns
from .darkness import sample_pixels


@dataclass
class StaticScene:
    """The static scene and masks of a cube.

    Attributes
    ----------
    static : ndarray (2048, 2048) or None
        Median of the dark frames (None for row-read sources: built per block).
    darkest : ndarray or None
        The darkest frame (frame-read sources).
    thresholds : tess_backml.masks.StarThresholds
    star_mask : ndarray of bool (2048, 2048)
        Filled per block for row-read sources.
    strap_mask : ndarray of bool (2048,)
        Per science column.
    """

    static: np.ndarray | None
    darkest: np.ndarray | None
    thresholds: StarThresholds
    star_mask: np.ndarray
    strap_mask: np.ndarray


def strap_mask_for(img_bin: int, mask_straps: bool) -> np.ndarray:
    """Strap columns to mask (wider for coarse bins), or none."""
    if not mask_straps:
        return np.zeros(SCIENCE_SIZE, bool)
    return strap_columns(dilation=2 if img_bin >= 12 else 1)


def _sample_offsets():
    rows, cols, offsets = sample_pixels()
    return [
        (np.clip(rows + dr, 0, SCIENCE_SIZE - 1), np.clip(cols + dc, 0, SCIENCE_SIZE - 1)) for dr, dc in offsets
    ]


def static_scene(source, dark_frames, darkest_frame: int, img_bin: int, mask_straps: bool = True) -> StaticScene:
    """The static scene, star thresholds and masks of ``source`` from its dark frames."""
    straps = strap_mask_for(img_bin, mask_straps)
    points = _sample_offsets()
    if source.cheap_read == "frames" or source.frame_ranges_cheap:
        if source.cheap_read == "frames":
            flux, _ = source.read_frames(dark_frames)
            static = median_over_frames(flux)
            darkest = flux[list(dark_frames).index(darkest_frame)]
        else:
            static, darkest = _static_by_bands(source, dark_frames, darkest_frame)
        thresholds = StarThresholds.from_samples(*(static[r, c] for r, c in points))
        return StaticScene(static, darkest, thresholds, star_mask(static, thresholds), straps)
    rows, cols = np.concatenate([r for r, _ in points]), np.concatenate([c for _, c in points])
    flux, _ = source.read_pixels(rows, cols, dark_frames)
    static = np.median(flux, axis=0).reshape(len(points), -1)
    thresholds = StarThresholds.from_samples(*static)
    return StaticScene(None, None, thresholds, np.zeros((SCIENCE_SIZE, SCIENCE_SIZE), bool), straps)


#: Rows per read of the dark frames of a row-read source.
STATIC_BAND_ROWS = 256


def _static_by_bands(source, dark_frames, darkest_frame: int):
    """Median of the dark frames and the darkest frame, read band of rows by band."""
    dark_frames = np.asarray(dark_frames)
    static = np.empty((SCIENCE_SIZE, SCIENCE_SIZE), np.float32)
    darkest = np.empty_like(static)
    which = int(np.flatnonzero(dark_frames == darkest_frame)[0])
    for start in range(0, SCIENCE_SIZE, STATIC_BAND_ROWS):
        stop = min(start + STATIC_BAND_ROWS, SCIENCE_SIZE)
        flux, _ = source.read_rows(start, stop, dark_frames)
        static[start:stop] = median_over_frames(flux)
        darkest[start:stop] = flux[which]
    return static, darkest
