"""The interpolation operator: an SL cube evaluated at any pixels and times.

Everything that gives the SL at pixels and times has one small interface,
:class:`SLEvaluator`: ``evaluate(rows, cols, btjd)`` returns the SL, its error and
per-time flags. :class:`CubeInterpolator` is the cube's; the learnt model's
(:class:`~tess_backml.corrector.model_path.ModelEvaluator`) predicts on a grid of
nodes and interpolates them with a :class:`CubeInterpolator`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ..constants import FIRST_SCIENCE_COLUMN, FIRST_SCIENCE_ROW, SCIENCE_SIZE
from ..errors import TessBackmlError
from .splines import (
    TimeSpline,
    evaluate_time_spline,
    spline_weights,
    squared_weight_sums,
)

log = logging.getLogger(__name__)

EXTRAPOLATED, IN_GAP, OUTSIDE_CUBE = 1, 2, 4
#: Model path only: a body nearer the pixels or the boresight than the model's training saw.
OUTSIDE_TRAINING = 8
LAST_SCIENCE_ROW = FIRST_SCIENCE_ROW + SCIENCE_SIZE - 1
LAST_SCIENCE_COLUMN = FIRST_SCIENCE_COLUMN + SCIENCE_SIZE - 1


class SLEvaluator(Protocol):
    """The SL at a grid of pixels and times: the interface of the cube and model paths."""

    def evaluate(self, rows: np.ndarray, cols: np.ndarray, btjd: np.ndarray):
        """``(flux, error, flags)``: (ntimes, nrows, ncols) float32 e-/s, and per time 0
        or a sum of ``EXTRAPOLATED``, ``IN_GAP``, ``OUTSIDE_CUBE``, ``OUTSIDE_TRAINING``."""


def check_on_science_region(points, low: int, high: int, name: str):
    if points.min() < low - 0.5 or points.max() > high + 0.5:
        raise TessBackmlError(
            f"{name} {points.min():g}-{points.max():g} are off the science region ({low}-{high}, 1-based CCD coordinates)"
        )


def as_pixel_array(values, name: str) -> np.ndarray:
    """A 1-D float array of 1-based CCD coordinates, or a clear error."""
    if not isinstance(values, np.ndarray):
        raise TessBackmlError(f"{name} must be a numpy array of 1-based CCD coordinates, got {type(values).__name__}")
    if values.size == 0:
        raise TessBackmlError(f"{name} is empty")
    if values.dtype.kind not in "iuf":
        raise TessBackmlError(f"{name} must be numeric, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        raise TessBackmlError(f"{name} contains NaN or infinite values")
    return np.ravel(values).astype(float)


def time_layout(time, time_bin_hours: float, name: str):
    """Half a time bin (days) and the data gaps ``[(before, after), ...]`` of cube times."""
    time = np.asarray(time, dtype=float)
    if time.size == 0 or np.any(np.diff(time) <= 0):
        raise TessBackmlError(f"{name}: cube times must increase")
    spacing = np.median(np.diff(time)) if time.size > 1 else 1 / 12
    half_bin = float(time_bin_hours / 48 if time_bin_hours > 0 else spacing / 2)
    gaps = np.flatnonzero(np.diff(time) > max(3 * spacing, 0.25))
    return half_bin, [(time[i], time[i + 1]) for i in gaps]


class CubeInterpolator:
    """An SL cube as a linear operator: quadratic spline in time, cubic in space.

    Parameters
    ----------
    time : ndarray (ntimes,)
        Cube times, BTJD, increasing.
    flux, flux_err : ndarray (ntimes, nrows, ncols)
        The cube and its errors.
    row_centres, col_centres : ndarray
        Bin centres, 1-based CCD coordinates.
    half_bin : float
        Half a time bin, days: how far beyond the cube's ends and its gaps' edges
        times take the nearest bin.
    gaps : list of (float, float)
        Data gaps (last time before, first after).
    span : (float, float)
        BTJD range of the sector: times outside are refused.
    sector : int
        For messages.
    spline : TimeSpline, optional
        The time spline through ``time``, when already built.
    """

    def __init__(self, time, flux, flux_err, row_centres, col_centres, half_bin, gaps, span, sector, spline=None):
        self.time, self.flux, self.flux_err = time, flux, flux_err
        self.row_centres, self.col_centres = row_centres, col_centres
        self.half_bin, self.gaps, self.span, self.sector = half_bin, gaps, span, sector
        if spline is None or not np.array_equal(spline.nodes, time):
            spline = TimeSpline(time, order=2)
        self.spline = spline

    def time_positions(self, btjd: np.ndarray):
        """Where in the cube each time is evaluated (clamped near edges) and its flags."""
        start = min(self.span[0], self.time[0] - self.half_bin)
        stop = max(self.span[1], self.time[-1] + self.half_bin)
        outside = (btjd < start) | (btjd > stop)
        if outside.any():
            bad = btjd[outside]
            raise TessBackmlError(
                f"times BTJD {bad.min():.4f}-{bad.max():.4f} are outside sector {self.sector} (BTJD {start:.4f}-{stop:.4f})"
            )
        flags = np.zeros(btjd.size, np.int8)
        evaluate_at = btjd.copy()
        first, last = self.time[0], self.time[-1]
        before, after = btjd < first, btjd > last
        near = (before & (first - btjd <= self.half_bin)) | (after & (btjd - last <= self.half_bin))
        flags[(before | after) & ~near] |= OUTSIDE_CUBE
        flags[near] |= EXTRAPOLATED
        evaluate_at[before] = first
        evaluate_at[after] = last
        for low, high in self.gaps:
            inside = (btjd > low) & (btjd < high)
            close_low = inside & (btjd - low <= self.half_bin)
            close_high = inside & (high - btjd <= self.half_bin)
            evaluate_at[close_low] = low
            evaluate_at[close_high & ~close_low] = high
            flags[close_low | close_high] |= EXTRAPOLATED
            flags[inside & ~close_low & ~close_high] |= IN_GAP
        return evaluate_at, flags

    @staticmethod
    def space_weights(centres, points, low: int, high: int, name: str):
        """Cubic-spline weights of ``points`` on ``centres`` (constant beyond the outermost
        centres) and the slice of centres they reach."""
        check_on_science_region(points, low, high, name)
        clamped = np.clip(points, centres[0], centres[-1])
        weights = spline_weights(centres, clamped, order=3)
        # Interpolating-spline weights decay geometrically away from the point:
        # bins below 1e-12 of the largest weight change nothing in float32.
        reach = np.flatnonzero(np.abs(weights).max(axis=0) > 1e-12 * np.abs(weights).max())
        used = slice(reach[0], reach[-1] + 1)
        return weights[:, used], used

    def evaluate(self, rows, cols, btjd):
        """SL and error (ntimes, nrows, ncols) float32 on the grid of ``rows`` x ``cols``
        at ``btjd``, and the flags per time; NaN at times in a gap or beyond the cube."""
        w_row, row_bins = self.space_weights(self.row_centres, rows, FIRST_SCIENCE_ROW, LAST_SCIENCE_ROW, "rows")
        w_col, col_bins = self.space_weights(self.col_centres, cols, FIRST_SCIENCE_COLUMN, LAST_SCIENCE_COLUMN, "columns")
        evaluate_at, flags = self.time_positions(btjd)
        missing = (flags & (IN_GAP | OUTSIDE_CUBE)) != 0
        shape = (btjd.size, rows.size, cols.size)
        if missing.all():
            log.info("all %d times are in a gap or beyond the cube: NaN", missing.size)
            return np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32), flags
        spline = self.spline
        start, basis = spline.basis(evaluate_at)
        first = int(start[~missing].min())
        last = int(start[~missing].max()) + spline.order + 1
        half, inverse = spline.inverse_band()
        n = self.time.size
        # the variance is only needed within the band of the coefficients used
        low, high = max(first - half, 0), min(last + half, n)
        value = np.einsum(
            "tij,pi,qj->tpq", np.asarray(self.flux[:, row_bins, col_bins], np.float64), w_row, w_col, optimize=True
        ).reshape(n, -1)
        variance = np.zeros_like(value)
        variance[low:high] = np.einsum(
            "tij,pi,qj->tpq",
            np.square(self.flux_err[low:high, row_bins, col_bins], dtype=np.float64),
            w_row**2,
            w_col**2,
            optimize=True,
        ).reshape(high - low, -1)
        coefficients = spline.coefficients(value)
        squared = squared_weight_sums(inverse, half, variance, first, last, spline.order)
        if spline.order < 2:  # the kernel is written for three basis functions: pad with zeros
            pad = 2 - spline.order
            basis = np.hstack([basis, np.zeros((basis.shape[0], pad))])
            coefficients = np.vstack([coefficients, np.zeros((pad, coefficients.shape[1]))])
            squared = np.pad(squared, ((0, pad), (0, pad), (0, 0)))
        flux = np.empty((btjd.size, value.shape[1]), np.float32)
        error = np.empty_like(flux)
        evaluate_time_spline(start, basis, coefficients, squared, first, missing, flux, error)
        if missing.any():
            log.info("%d of %d times are in a gap or beyond the cube: NaN", int(missing.sum()), missing.size)
        return flux.reshape(shape), error.reshape(shape), flags
