"""Star, strap and quality masks.

The star mask is thresholded with *global* statistics (:class:`StarThresholds`)
estimated once from a sparse pixel sample, so the same pixel gets the same
answer whether the image is processed whole or in row blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .constants import DEFAULT_BAD_QUALITY, QUALITY_FLAGS, SCIENCE_SIZE, STRAP_COLUMNS
from .errors import TessBackmlError


def quality_bitmask(bits=None) -> int:
    """A quality bitmask from None (the default: CoarsePoint), an int, or flag names/values."""
    if bits is None:
        return DEFAULT_BAD_QUALITY
    if isinstance(bits, (int, np.integer)):
        if bits < 0:
            raise TessBackmlError(f"a quality bitmask must be non-negative, got {bits}")
        return int(bits)
    mask = 0
    for bit in bits:
        if isinstance(bit, str):
            if bit not in QUALITY_FLAGS:
                raise TessBackmlError(f"unknown quality flag {bit!r}; known: {', '.join(QUALITY_FLAGS)}")
            mask |= QUALITY_FLAGS[bit]
        else:
            mask |= int(bit)
    return mask


def bad_frames(quality, bits=None) -> np.ndarray:
    """True for frames whose quality flags share a bit with the bitmask."""
    return (np.asarray(quality, dtype=np.int64) & quality_bitmask(bits)) != 0


def strap_columns(dilation: int = 1) -> np.ndarray:
    """(2048,) bool: science columns on or next to a strap (``dilation`` columns each side)."""
    columns = np.zeros(SCIENCE_SIZE, bool)
    columns[np.asarray(STRAP_COLUMNS) - 1] = True
    if dilation > 0:
        columns = ndimage.binary_dilation(columns, iterations=dilation)
    return columns


def robust_stats(values) -> tuple[float, float]:
    """Median and MAD-based standard deviation of the finite values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise TessBackmlError("no finite values to estimate the background statistics from")
    median = float(np.median(values))
    return median, float(1.4826 * np.median(np.abs(values - median)))


@dataclass(frozen=True)
class StarThresholds:
    """Global statistics of the static scene and its gradient, for the star mask."""

    image_median: float
    image_std: float
    gradient_median: float
    gradient_std: float
    sigma: float = 5.0

    @classmethod
    def from_samples(cls, centre, up, down, left, right, sigma: float = 5.0):
        """Statistics from static-scene values at sample pixels and their four neighbours.

        The gradient at a sample is the central difference, as ``np.gradient``
        computes it inside the image.
        """
        gradient = np.hypot((np.asarray(up) - np.asarray(down)) / 2, (np.asarray(right) - np.asarray(left)) / 2)
        return cls(*robust_stats(centre), *robust_stats(gradient), sigma=float(sigma))


def star_mask(static, thresholds: StarThresholds, dilation: int = 2) -> np.ndarray:
    """Pixels of stars (and their wings) in a static-scene image or row block.

    A pixel is a star pixel when both its value and its gradient magnitude lie
    more than ``sigma`` standard deviations from their global medians; the mask is
    then dilated ``dilation`` times. On a row block, rows within ``dilation + 1``
    of a cut edge are not final (give the block a halo).
    """
    static = np.asarray(static, dtype=np.float32)
    gradient = np.hypot(*np.gradient(static))
    t = thresholds
    mask = (np.abs(static - t.image_median) > t.sigma * t.image_std) & (
        np.abs(gradient - t.gradient_median) > t.sigma * t.gradient_std
    )
    if dilation > 0:
        mask = ndimage.binary_dilation(mask, iterations=dilation)
    return mask
