"""Evaluate the scattered light of an SL cube at any pixels and times.

Conventions
-----------
* Pixels are **1-based CCD coordinates** (what TPF headers and lightkurve's
  ``tpf.row`` / ``tpf.column`` give), and must be science pixels: rows 1-2048,
  columns 45-2092.
* Times may be BTJD, JD (BTJD + 2457000) or an astropy ``Time``: BTJD values are
  below 10^5 and JD above 2.4 x 10^6, so numbers are told apart by size.

The interpolation is a linear operator. By default it uses the original
package's orders, a quadratic spline in time and a cubic spline in space, but
over the whole cube: the weights of the interpolating B-splines (the same ones
``scipy.interpolate.make_interp_spline`` builds, and that ``interp1d(kind=
"quadratic")`` and ``RectBivariateSpline(kx=ky=3, s=0)`` use) are computed once
per call, and the cube is contracted with them at once, with no loop over
times or pixels in Python. In space the weights are dense (the bins whose
weights are below 1e-12 of the largest are left out: their contribution is far
below float32 rounding). In time the spline is kept in its B-spline form: the
cube is solved once for its spline coefficients (a banded system), and each
time then needs only the ``order + 1`` basis functions that are non-zero there,
which makes the cost per output value a handful of multiply-adds.

Uncertainties: the cube's errors are propagated through the same weights, with
variances through squared weights, treating the bins' errors as independent.
In time the squared weights are carried by the inverse collocation matrix,
whose entries decay geometrically away from the diagonal; it is kept to the
band holding everything above 1e-13 of each column's largest entry.
They cover the statistical error of the cube; not the interpolation error
between bins (scattered light that changes faster than the time bins or on
scales smaller than the pixel bins), nor the cube's systematic errors.

Edges, handled explicitly (see :attr:`ScatterLightCorrector.flags`):

* pixels beyond the outermost bin centres take the value at the outermost
  centre (constant extension: a cubic spline extrapolates badly);
* times within half a time bin beyond the first or last cube time, or beyond the
  edges of a data gap, take the nearest bin's value (flag ``EXTRAPOLATED``);
* other times in a gap (e.g. the downlink at perigee) or beyond the cube but
  inside the sector get NaN (flags ``IN_GAP``, ``OUTSIDE_CUBE``);
* times outside the sector or pixels off the science region raise an error.
"""

from __future__ import annotations

import logging
import os

import numba
import numpy as np

from .constants import FIRST_SCIENCE_COLUMN, FIRST_SCIENCE_ROW, SCIENCE_SIZE, SECTOR_TIME_MARGIN_DAYS
from .errors import TessBackmlError
from .io import read_sl_cube

log = logging.getLogger(__name__)

EXTRAPOLATED, IN_GAP, OUTSIDE_CUBE = 1, 2, 4
LAST_SCIENCE_ROW = FIRST_SCIENCE_ROW + SCIENCE_SIZE - 1
LAST_SCIENCE_COLUMN = FIRST_SCIENCE_COLUMN + SCIENCE_SIZE - 1


def spline_weights(nodes, points, order: int) -> np.ndarray:
    """Weights (npoints, nnodes) of the interpolating B-spline of ``order`` through ``nodes``.

    ``weights @ values`` equals ``make_interp_spline(nodes, values, k=order)(points)``
    for any ``values``: the spline is linear in the data, so interpolating the
    identity gives the operator. With fewer nodes than ``order + 1`` the order is
    lowered (down to linear or constant).
    """
    from scipy.interpolate import make_interp_spline

    nodes = np.asarray(nodes, dtype=float)
    points = np.asarray(points, dtype=float)
    if nodes.size == 1:
        return np.ones((points.size, 1))
    order = min(order, nodes.size - 1)
    spline = make_interp_spline(nodes, np.eye(nodes.size), k=order)
    return spline(points)


class _TimeSpline:
    """The interpolating B-spline through the cube times, reused for every call.

    ``make_interp_spline`` puts the knots; the collocation matrix ``A`` maps spline
    coefficients to values at the nodes, so values -> coefficients is ``A^-1``.
    """

    def __init__(self, nodes, order: int):
        from scipy.interpolate import make_interp_spline

        self.nodes = np.asarray(nodes, dtype=float)
        self.order = min(order, self.nodes.size - 1)
        self.knots = make_interp_spline(self.nodes, np.zeros(self.nodes.size), k=self.order).t
        self._inverse = None

    def coefficients(self, values: np.ndarray) -> np.ndarray:
        """Spline coefficients (nnodes, ...) of data (nnodes, ...) at the nodes."""
        from scipy.interpolate import make_interp_spline

        return make_interp_spline(self.nodes, values, k=self.order, t=self.knots).c

    def basis(self, points: np.ndarray):
        """First non-zero basis index (npoints,) and the ``order + 1`` basis values there."""
        if self.order == 0:
            return np.zeros(points.size, np.int64), np.ones((points.size, 1))
        return _bspline_basis(self.knots, self.order, np.ascontiguousarray(points, dtype=float))

    def inverse_band(self, tolerance: float = 1e-13):
        """``A^-1`` as a band: (half width L, array (nnodes, 2L+1) with [m, L+j-m] = A^-1[m, j]).

        Computed once, by columns in chunks (memory stays ~n x 256 even for
        unbinned cubes of 10^4 frames), keeping what exceeds ``tolerance`` of each
        column's largest entry.
        """
        if self._inverse is None:
            n = self.nodes.size
            rows, cols, values = [], [], []
            for first in range(0, n, 256):
                last = min(first + 256, n)
                identity = np.zeros((n, last - first))
                identity[np.arange(first, last), np.arange(last - first)] = 1.0
                columns = self.coefficients(identity)  # A^-1[:, first:last]
                m, j = np.nonzero(np.abs(columns) > tolerance * np.abs(columns).max(axis=0))
                rows.append(m)
                cols.append(j + first)
                values.append(columns[m, j])
            rows, cols, values = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
            half = int(np.abs(rows - cols).max())
            band = np.zeros((n, 2 * half + 1))
            band[rows, half + cols - rows] = values
            self._inverse = (half, band)
        return self._inverse


@numba.njit(parallel=True, cache=True)
def _bspline_basis(knots, order, points):
    """The ``order + 1`` non-zero B-spline basis values at each point (Cox-de Boor).

    Same values as ``scipy.interpolate.BSpline.design_matrix``, without building a
    sparse matrix (a fifth of the evaluation time at 20,000 points).
    """
    ncoef = knots.size - order - 1
    start = np.empty(points.size, np.int64)
    values = np.empty((points.size, order + 1))
    for index in numba.prange(points.size):
        x = points[index]
        # interval knots[i] <= x < knots[i+1], the last one closed on the right
        i = np.searchsorted(knots[order : ncoef + 1], x, side="right") - 1 + order
        i = min(max(i, order), ncoef - 1)
        left = np.empty(order + 1)
        right = np.empty(order + 1)
        out = values[index]
        out[0] = 1.0
        for j in range(1, order + 1):
            left[j] = x - knots[i + 1 - j]
            right[j] = knots[i + j] - x
            saved = 0.0
            for r in range(j):
                temp = out[r] / (right[r + 1] + left[j - r])
                out[r] = saved + right[r + 1] * temp
                saved = left[j - r] * temp
            out[j] = saved
        start[index] = i - order
    return start, values


@numba.njit(parallel=True, fastmath=True, cache=True)
def _squared_weight_sums(inverse, half, variance, first, last, order):
    """Q[d, m] = sum_j A^-1[m, j] A^-1[m+d, j] V[j] for m in [first, last), d = 0..order.

    With basis values b_a at coefficient m + a, the variance of the spline value
    is sum_(a, b) b_a b_b Q[|a-b|, m + min(a, b)]; ``inverse`` is the band of A^-1.
    """
    n, npix = variance.shape
    out = np.zeros((order + 1, last - first, npix))
    for index in numba.prange(last - first):
        m = first + index
        for d in range(order + 1):
            if m + d >= n:
                continue
            for j in range(max(m + d - half, 0), min(m + half + 1, n)):
                w = inverse[m, half + j - m] * inverse[m + d, half + j - m - d]
                if w != 0.0:
                    for p in range(npix):
                        out[d, index, p] += w * variance[j, p]
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _evaluate_time_spline(start, basis, coefficients, squared, first, missing, flux, error):
    """Value and error at each time from its three basis values (see _squared_weight_sums).

    Written out for a quadratic spline, which unrolled runs 3x faster than the
    general loop; lower orders come padded with zero basis values.
    """
    ntimes, npix = flux.shape
    for t in numba.prange(ntimes):
        if missing[t]:
            flux[t, :] = np.nan
            error[t, :] = np.nan
            continue
        m, k = start[t], start[t] - first
        b0, b1, b2 = basis[t, 0], basis[t, 1], basis[t, 2]
        c0, c1, c2 = coefficients[m], coefficients[m + 1], coefficients[m + 2]
        q00, q11, q22 = squared[0, k], squared[0, k + 1], squared[0, k + 2]
        q01, q12, q02 = squared[1, k], squared[1, k + 1], squared[2, k]
        w00, w11, w22 = b0 * b0, b1 * b1, b2 * b2
        w01, w12, w02 = 2 * b0 * b1, 2 * b1 * b2, 2 * b0 * b2
        f, e = flux[t], error[t]
        for p in range(npix):
            f[p] = b0 * c0[p] + b1 * c1[p] + b2 * c2[p]
            v = w00 * q00[p] + w11 * q11[p] + w22 * q22[p] + w01 * q01[p] + w12 * q12[p] + w02 * q02[p]
            e[p] = np.sqrt(max(v, 0.0))

def _check_on_science_region(points, low: int, high: int, name: str):
    if points.min() < low - 0.5 or points.max() > high + 0.5:
        raise TessBackmlError(
            f"{name} {points.min():g}-{points.max():g} are off the science region ({low}-{high}, 1-based CCD coordinates)"
        )


def _as_pixel_array(values, name: str) -> np.ndarray:
    if not isinstance(values, np.ndarray):
        raise TessBackmlError(f"{name} must be a numpy array of 1-based CCD coordinates, got {type(values).__name__}")
    if values.size == 0:
        raise TessBackmlError(f"{name} is empty")
    if values.dtype.kind not in "iuf":
        raise TessBackmlError(f"{name} must be numeric, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        raise TessBackmlError(f"{name} contains NaN or infinite values")
    return np.ravel(values).astype(float)


class ScatterLightCorrector:
    """Scattered light from an SL cube, at any pixels and times.

    Parameters
    ----------
    sector, camera, ccd : int
        Checked against the cube file.
    fname : str, optional
        An SL cube FITS file (made by this package or by the original tess-backml).
        Default ``./data/ffi_sl_cube_sectorNNN_C-D.fits``, as in the original.
    model : str or path-like, optional
        A model file (from ``tess-backml train``): the SL from the Earth/Moon
        geometry alone, with ``method="model"``; no cube is needed.
    ephemeris : Ephemeris or str, optional
        Where TESS was, for the model's geometry: an
        :class:`~tess_backml.geometry.Ephemeris`, a JPL Horizons table path, or None
        for SPICE (offline, its test kernels cover Sector 4 only).

    Attributes
    ----------
    cube : tess_backml.io.SLCube
    row_cube, col_cube : ndarray
        Bin centres, 1-based CCD coordinates.
    cube_time : ndarray
        Cube times, BTJD.
    flags : ndarray
        Per evaluated time, after :meth:`evaluate_scatterlight_model`: 0, or a sum of
        ``EXTRAPOLATED`` (1), ``IN_GAP`` (2), ``OUTSIDE_CUBE`` (4).
    """

    def __init__(self, sector: int, camera: int, ccd: int, fname=None, model=None, ephemeris=None):
        from .geometry import load_ephemeris, validate_camera_ccd, validate_sector

        self.sector = validate_sector(sector)
        self.camera, self.ccd = validate_camera_ccd(camera, ccd)
        self.ephemeris = None if ephemeris is None else load_ephemeris(ephemeris)
        self.model = self.model_meta = None
        self.fname = None
        self.flags = np.zeros(0, np.int8)
        self._spline = None
        if model is not None:
            self._load_model(model)
            if fname is None:
                return  # the model alone: no cube
        if fname is None:
            fname = f"./data/ffi_sl_cube_sector{self.sector:03d}_{self.camera}-{self.ccd}.fits"
        if not os.path.isfile(fname):
            raise TessBackmlError(
                f"no SL cube file {fname}: build one with 'tess-backml cube --sector {self.sector} "
                f"--camera {self.camera} --ccd {self.ccd}' (or give a model: model=PATH)"
            )
        self._load_cube(fname)

    def _load_model(self, path):
        from .model import load_model

        loaded = load_model(path)
        self.model, self.model_meta, self.model_file = loaded.model, loaded.meta, str(path)

    def _load_cube(self, fname):
        self.fname = str(fname)
        self.cube = read_sl_cube(fname)
        found = (self.cube.sector, self.cube.camera, self.cube.ccd)
        if found != (self.sector, self.camera, self.ccd):
            raise TessBackmlError(
                f"{fname} holds sector {found[0]} camera {found[1]} CCD {found[2]}, "
                f"not sector {self.sector} camera {self.camera} CCD {self.ccd}: build a cube for it with "
                f"'tess-backml cube --sector {self.sector} --camera {self.camera} --ccd {self.ccd}'"
            )
        self.row_cube, self.col_cube = self.cube.bin_centres()
        time = np.asarray(self.cube.time, dtype=float)
        hours = self.cube.time_bin_hours
        self._set_cube(time, self.cube.flux, self.cube.flux_err, self.cube.pixel_bin, hours, fname)

    def _set_cube(self, time, flux, flux_err, pixel_bin, time_bin_hours, name):
        self.cube_time = time
        if self.cube_time.size == 0 or np.any(np.diff(self.cube_time) <= 0):
            raise TessBackmlError(f"{name}: cube times must increase")
        self.cube_sl = flux
        self.cube_sle = flux_err
        self.image_binsize = pixel_bin
        spacing = np.median(np.diff(self.cube_time)) if self.cube_time.size > 1 else 1 / 12
        self.half_bin = float(time_bin_hours / 48 if time_bin_hours > 0 else spacing / 2)
        gaps = np.flatnonzero(np.diff(self.cube_time) > max(3 * spacing, 0.25))
        self.gaps = [(self.cube_time[i], self.cube_time[i + 1]) for i in gaps]

    def __repr__(self):
        return f"TESS FFI SL Corrector (Sector, Camera, CCD): {self.sector}, {self.camera}, {self.ccd}"

    def _sector_span(self) -> tuple[float, float]:
        """The sector's BTJD span, widened by the days real data run past tesswcs's dates."""
        from .geometry import sector_time_range

        start, stop = sector_time_range(self.sector)
        return start - SECTOR_TIME_MARGIN_DAYS, stop + SECTOR_TIME_MARGIN_DAYS

    # ------------------------------------------------------------------ weights
    def _time_positions(self, btjd: np.ndarray):
        """Where in the cube each time is evaluated (clamped near edges) and its flags."""
        start, stop = self._sector_span()
        start, stop = min(start, self.cube_time[0] - self.half_bin), max(stop, self.cube_time[-1] + self.half_bin)
        outside = (btjd < start) | (btjd > stop)
        if outside.any():
            bad = btjd[outside]
            raise TessBackmlError(
                f"times BTJD {bad.min():.4f}-{bad.max():.4f} are outside sector {self.sector} "
                f"(BTJD {start:.4f}-{stop:.4f})"
            )
        flags = np.zeros(btjd.size, np.int8)
        evaluate_at = btjd.copy()
        first, last = self.cube_time[0], self.cube_time[-1]
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

    def _space_weights(self, centres, points, low: int, high: int, name: str):
        _check_on_science_region(points, low, high, name)
        clamped = np.clip(points, centres[0], centres[-1])
        weights = spline_weights(centres, clamped, order=3)
        # Interpolating-spline weights decay geometrically away from the point:
        # bins below 1e-12 of the largest weight change nothing in float32.
        reach = np.flatnonzero(np.abs(weights).max(axis=0) > 1e-12 * np.abs(weights).max())
        used = slice(reach[0], reach[-1] + 1)
        return weights[:, used], used

    # ------------------------------------------------------------------ evaluation
    def evaluate_scatterlight_model(self, row_eval, col_eval, times, method=None):
        """Scattered light and its error on a grid of pixels at the given times.

        Parameters
        ----------
        row_eval, col_eval : ndarray
            1-D arrays of 1-based CCD rows and columns; the result is on their grid.
        times : array_like or astropy.time.Time
            BTJD, JD or astropy Time.
        method : {"sl_cube", "model", "nn"}, optional
            ``"sl_cube"``: interpolate the SL cube. ``"model"`` (or ``"nn"``, the
            original's name): the learnt model given as ``model=`` evaluated from
            the Earth/Moon geometry alone. Default: the cube if one was given,
            else the model.

        Returns
        -------
        sl_flux, sl_fluxerr : ndarray (ntimes, nrows, ncols) float32
            e-/s; NaN at times flagged ``IN_GAP`` or ``OUTSIDE_CUBE`` (see :attr:`flags`).
            With the model, the error is the model's held-out RMS error: a
            systematic uncertainty, the same at every pixel and time.
        """
        from .geometry import to_btjd

        if method is None:
            method = "sl_cube" if self.fname is not None else "model"
        if method not in ("sl_cube", "model", "nn"):
            raise TessBackmlError(f"method must be 'sl_cube' or 'model' ('nn'), got {method!r}")
        if method == "sl_cube" and self.fname is None:
            raise TessBackmlError("no SL cube was given (fname=...): use method='model' or give a cube")
        if method != "sl_cube" and self.model is None:
            raise TessBackmlError("no model was given: ScatterLightCorrector(..., model=PATH) (train one with 'tess-backml train')")
        rows = _as_pixel_array(row_eval, "row_eval")
        cols = _as_pixel_array(col_eval, "col_eval")
        if times is None:
            raise TessBackmlError("times are required (BTJD, JD or astropy Time)")
        btjd = to_btjd(times)
        if method != "sl_cube":
            return self._evaluate_model(rows, cols, btjd)
        w_row, row_bins = self._space_weights(self.row_cube, rows, FIRST_SCIENCE_ROW, LAST_SCIENCE_ROW, "rows")
        w_col, col_bins = self._space_weights(self.col_cube, cols, FIRST_SCIENCE_COLUMN, LAST_SCIENCE_COLUMN, "columns")
        evaluate_at, flags = self._time_positions(btjd)
        self.flags = flags
        missing = (flags & (IN_GAP | OUTSIDE_CUBE)) != 0
        shape = (btjd.size, rows.size, cols.size)
        if missing.all():
            log.info("all %d times are in a gap or beyond the cube: NaN", missing.size)
            return np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)

        spline = self._time_spline()
        start, basis = spline.basis(evaluate_at)
        first = int(start[~missing].min())
        last = int(start[~missing].max()) + spline.order + 1
        half, inverse = spline.inverse_band()
        n = self.cube_time.size
        # the variance is only needed within the band of the coefficients used
        low, high = max(first - half, 0), min(last + half, n)
        value = np.einsum(
            "tij,pi,qj->tpq", np.asarray(self.cube_sl[:, row_bins, col_bins], np.float64), w_row, w_col, optimize=True
        ).reshape(n, -1)
        variance = np.zeros_like(value)
        variance[low:high] = np.einsum(
            "tij,pi,qj->tpq",
            np.square(self.cube_sle[low:high, row_bins, col_bins], dtype=np.float64),
            w_row**2,
            w_col**2,
            optimize=True,
        ).reshape(high - low, -1)
        coefficients = spline.coefficients(value)
        squared = _squared_weight_sums(inverse, half, variance, first, last, spline.order)
        if spline.order < 2:  # the kernel is written for three basis functions: pad with zeros
            pad = 2 - spline.order
            basis = np.hstack([basis, np.zeros((basis.shape[0], pad))])
            coefficients = np.vstack([coefficients, np.zeros((pad, coefficients.shape[1]))])
            squared = np.pad(squared, ((0, pad), (0, pad), (0, 0)))
        flux = np.empty((btjd.size, value.shape[1]), np.float32)
        error = np.empty_like(flux)
        _evaluate_time_spline(start, basis, coefficients, squared, first, missing, flux, error)
        if missing.any():
            log.info("%d of %d times are in a gap or beyond the cube: NaN", int(missing.sum()), missing.size)
        return flux.reshape(shape), error.reshape(shape)

    MODEL_NODE_PIXELS = 16
    MODEL_NODE_MINUTES = 30.0

    def _evaluate_model(self, rows, cols, btjd):
        """The model on a grid of nodes (every 16 pixels, every 30 minutes, spanning the
        request), interpolated like a cube: geometry changes slowly, so this costs
        little accuracy and makes 10^7 pixel-times take a fraction of a second."""
        from .model import predict_cube

        start, stop = self._sector_span()
        if btjd.min() < start or btjd.max() > stop:
            raise TessBackmlError(
                f"times BTJD {btjd.min():.4f}-{btjd.max():.4f} are outside sector {self.sector} (BTJD {start:.4f}-{stop:.4f})"
            )
        _check_on_science_region(rows, FIRST_SCIENCE_ROW, LAST_SCIENCE_ROW, "rows")
        _check_on_science_region(cols, FIRST_SCIENCE_COLUMN, LAST_SCIENCE_COLUMN, "columns")
        step = self.MODEL_NODE_MINUTES / 1440
        first, last = max(btjd.min() - step, start), min(btjd.max() + step, stop)
        time_nodes = np.linspace(first, last, max(int(np.ceil((last - first) / step)) + 1, 3))
        row_nodes, col_nodes = (
            np.linspace(v.min(), v.max(), max(int(np.ceil(np.ptp(v) / self.MODEL_NODE_PIXELS)) + 1, 2)) if np.ptp(v) > 0 else v[:1]
            for v in (rows, cols)
        )
        predicted = predict_cube(
            self.model, self.sector, self.camera, self.ccd, row_nodes, col_nodes, time_nodes, ephemeris=self.ephemeris
        )
        # the predictions on the nodes are a cube like any other: interpolate them the same way
        nodes = ScatterLightCorrector.__new__(ScatterLightCorrector)
        nodes.sector, nodes.camera, nodes.ccd = self.sector, self.camera, self.ccd
        nodes.fname, nodes.model, nodes._spline = "model nodes", None, None
        nodes.row_cube, nodes.col_cube = row_nodes, col_nodes
        nodes._set_cube(time_nodes, predicted, np.zeros_like(predicted), self.MODEL_NODE_PIXELS, 0.0, "model nodes")
        flux, _ = nodes.evaluate_scatterlight_model(rows, cols, btjd, method="sl_cube")
        self.flags = nodes.flags
        error = np.full_like(flux, float(self.model_meta.get("model_rmse", np.nan)))
        return flux, error

    def _time_spline(self) -> _TimeSpline:
        # rebuilt if the cube times were changed since (e.g. a cube trimmed in place)
        if self._spline is None or not np.array_equal(self._spline.nodes, self.cube_time):
            self._spline = _TimeSpline(self.cube_time, order=2)
        return self._spline

    # ------------------------------------------------------------------ lightkurve
    def correct(self, tpf, method=None):
        """Subtract the scattered light from a lightkurve ``TessTargetPixelFile``.

        Works for SPOC TPFs and TESScut/astrocut cutouts: the TPF's lower-left
        pixel (its physical WCS keywords, or for astrocut cutouts, which lack them,
        its celestial WCS; see :func:`tpf_corner`) and its times place it on the cube.

        Returns
        -------
        lightkurve.TessTargetPixelFile
            A new TPF (same quality bitmask) whose ``FLUX`` is corrected, whose
            ``FLUX_ERR`` includes the model error in quadrature, and whose table
            carries the model in extra columns ``SL_MODEL`` and ``SL_MODEL_ERR``.
            Cadences where the model is NaN (gaps, beyond the cube) keep their flux.
            ``method`` as in :meth:`evaluate_scatterlight_model` (the cube, or the
            learnt model).
        """
        import copy

        from astropy.io import fits

        lk = _lightkurve()
        _check_tpf(tpf)
        found = (tpf.sector, tpf.camera, tpf.ccd)
        if found != (self.sector, self.camera, self.ccd):
            what = f"the cube {self.fname} is" if self.fname else "this corrector is for"
            raise TessBackmlError(
                f"the TPF is sector {found[0]} camera {found[1]} CCD {found[2]}, but {what} "
                f"sector {self.sector} camera {self.camera} CCD {self.ccd}: build a cube for it with "
                f"'tess-backml cube --sector {found[0]} --camera {found[1]} --ccd {found[2]}'"
            )
        table = tpf.hdu[1].data
        nrows, ncols = table["FLUX"].shape[1:]
        row, column = tpf_corner(tpf)
        if (
            row < FIRST_SCIENCE_ROW
            or column < FIRST_SCIENCE_COLUMN
            or row + nrows - 1 > LAST_SCIENCE_ROW
            or column + ncols - 1 > LAST_SCIENCE_COLUMN
        ):
            raise TessBackmlError(
                f"the TPF's corner (row {row}, column {column}; keywords 2CRV4P/1CRV4P) does not place its "
                f"{nrows}x{ncols} pixels on the science region (rows 1-2048, columns 45-2092): nonsense "
                "corner keywords (early TESScut files had such values); re-download the cutout"
            )
        rows = np.arange(row, row + nrows)
        cols = np.arange(column, column + ncols)
        time = np.asarray(table["TIME"], dtype=float)
        usable = np.isfinite(time)
        model = np.full((len(time), nrows, ncols), np.nan, np.float32)
        model_err = np.full_like(model, np.nan)
        if usable.any():
            model[usable], model_err[usable] = self.evaluate_scatterlight_model(rows, cols, time[usable], method=method)
        known = np.isfinite(model)
        hdul = copy.deepcopy(tpf.hdu)
        data = hdul[1].data
        data["FLUX"] = np.where(known, data["FLUX"] - model, data["FLUX"])
        data["FLUX_ERR"] = np.where(known, np.hypot(data["FLUX_ERR"], model_err), data["FLUX_ERR"])
        flux_column = hdul[1].columns["FLUX"]
        extra = [
            fits.Column(name=name, format=flux_column.format, unit="e-/s", dim=flux_column.dim, array=values)
            for name, values in (("SL_MODEL", model), ("SL_MODEL_ERR", model_err))
        ]
        new_table = fits.BinTableHDU.from_columns(hdul[1].columns + fits.ColDefs(extra), header=hdul[1].header)
        hdul[1] = new_table
        hdul[0].header["SLCORR"] = (True, "scattered light subtracted by tess-backml")
        if method in ("model", "nn") or self.fname is None:
            hdul[0].header["SLMODEL"] = (os.path.basename(self.model_file)[:60], "SL model file used")
        else:
            hdul[0].header["SLCUBE"] = (os.path.basename(self.fname)[:60], "SL cube used")
        log.info("corrected %d of %d cadences", int(known.any(axis=(1, 2)).sum()), len(time))
        return lk.TessTargetPixelFile(hdul, quality_bitmask=tpf.quality_bitmask)


def tpf_corner(tpf) -> tuple[int, int]:
    """1-based CCD (row, column) of a TPF's lower-left pixel.

    From the pixel table's physical WCS keywords (``2CRV5P``/``1CRV5P``, or the
    ``4P`` ones; lightkurve's ``tpf.row``/``tpf.column``). Cutouts made by astrocut
    1.x carry none (its ``_add_column_wcs`` never writes them): then the TPF is
    placed through its own celestial WCS and the sector's, and accepted only if
    that lands within 0.25 pixel of a whole pixel.
    """
    header = tpf.hdu[1].header
    keys = [("2CRV5P", "1CRV5P"), ("2CRV4P", "1CRV4P")]
    for row_key, col_key in keys:
        if row_key in header and col_key in header:
            row, column = header[row_key], header[col_key]
            if not isinstance(row, (int, np.integer)) or not isinstance(column, (int, np.integer)):
                raise TessBackmlError(f"the TPF's corner keywords {row_key}/{col_key} are not integers")
            return int(row), int(column)
    from .geometry import CameraGeometry

    try:
        sky = tpf.wcs.pixel_to_world(0, 0)
    except Exception as exc:  # no usable WCS in the file
        raise TessBackmlError(
            f"the TPF has no corner keywords (2CRV4P/1CRV4P) and no usable WCS to place it ({exc})"
        ) from None
    x, y = CameraGeometry(tpf.sector, tpf.camera).wcs(tpf.ccd).world_to_pixel(sky)
    x, y = float(x), float(y)
    if abs(x - round(x)) > 0.25 or abs(y - round(y)) > 0.25:
        raise TessBackmlError(
            "the TPF has no corner keywords (2CRV4P/1CRV4P) and its WCS does not land on a whole pixel "
            f"of sector {tpf.sector} camera {tpf.camera} CCD {tpf.ccd} (column {x + 1:.2f}, row {y + 1:.2f})"
        )
    log.info("TPF placed through its WCS (no corner keywords): row %d, column %d", round(y) + 1, round(x) + 1)
    return int(round(y)) + 1, int(round(x)) + 1


def _check_tpf(tpf):
    for attribute in ("sector", "camera", "ccd", "hdu", "time"):
        if not hasattr(tpf, attribute):
            raise TessBackmlError(f"expected a lightkurve TessTargetPixelFile, got {type(tpf).__name__}")


def _lightkurve():
    import warnings

    try:
        with warnings.catch_warnings():  # its optional-submodule notices are not for our users
            warnings.simplefilter("ignore")
            import lightkurve
    except ImportError:
        raise TessBackmlError("correcting TPFs needs lightkurve (a dependency of tess-backml): pip install lightkurve") from None
    return lightkurve


def correct(tpf, cube_file=None, model=None, ephemeris=None):
    """Subtract the scattered light from ``tpf`` (function form): of the SL cube
    ``cube_file`` (of the TPF's sector, camera and CCD) or, without a cube, of the
    learnt ``model`` file, whose geometry comes from ``ephemeris``. See
    :meth:`ScatterLightCorrector.correct`.
    """
    _check_tpf(tpf)
    if cube_file is None and model is None:
        raise TessBackmlError("give an SL cube file or a model file")
    corrector = ScatterLightCorrector(tpf.sector, tpf.camera, tpf.ccd, fname=cube_file, model=model, ephemeris=ephemeris)
    return corrector.correct(tpf, method=None if cube_file is not None else "model")
