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
times or pixels.

Uncertainties: the cube's errors are propagated through the same weights, with
variances through squared weights, treating the bins' errors as independent.
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

import numpy as np

from .constants import FIRST_SCIENCE_COLUMN, FIRST_SCIENCE_ROW, SCIENCE_SIZE
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

    def __init__(self, sector: int, camera: int, ccd: int, fname=None):
        from .geometry import validate_camera_ccd, validate_sector

        self.sector = validate_sector(sector)
        self.camera, self.ccd = validate_camera_ccd(camera, ccd)
        if fname is None:
            fname = f"./data/ffi_sl_cube_sector{self.sector:03d}_{self.camera}-{self.ccd}.fits"
        if not os.path.isfile(fname):
            raise TessBackmlError(
                f"no SL cube file {fname}: build one with 'tess-backml cube --sector {self.sector} "
                f"--camera {self.camera} --ccd {self.ccd}'"
            )
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
        self.cube_time = np.asarray(self.cube.time, dtype=float)
        if self.cube_time.size == 0 or np.any(np.diff(self.cube_time) <= 0):
            raise TessBackmlError(f"{fname}: cube times must increase")
        self.cube_sl = self.cube.flux
        self.cube_sle = self.cube.flux_err
        self.image_binsize = self.cube.pixel_bin
        spacing = np.median(np.diff(self.cube_time)) if self.cube_time.size > 1 else 1 / 12
        self.half_bin = float(self.cube.time_bin_hours / 48 if self.cube.time_bin_hours > 0 else spacing / 2)
        gaps = np.flatnonzero(np.diff(self.cube_time) > max(3 * spacing, 0.25))
        self.gaps = [(self.cube_time[i], self.cube_time[i + 1]) for i in gaps]
        self.flags = np.zeros(0, np.int8)

    def __repr__(self):
        return f"TESS FFI SL Corrector (Sector, Camera, CCD): {self.sector}, {self.camera}, {self.ccd}"

    # ------------------------------------------------------------------ weights
    def _time_weights(self, btjd: np.ndarray):
        """Time weights (ntimes, ncube) and per-time flags; flagged-NaN times get zero weights."""
        from .geometry import sector_time_range

        start, stop = sector_time_range(self.sector)
        start, stop = min(start, self.cube_time[0]) - self.half_bin, max(stop, self.cube_time[-1]) + self.half_bin
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
        weights = spline_weights(self.cube_time, evaluate_at, order=2)
        weights[(flags & (IN_GAP | OUTSIDE_CUBE)) != 0] = 0.0
        return weights, flags

    def _space_weights(self, centres, points, low: int, high: int, name: str):
        if points.min() < low - 0.5 or points.max() > high + 0.5:
            raise TessBackmlError(
                f"{name} {points.min():g}-{points.max():g} are off the science region ({low}-{high}, "
                "1-based CCD coordinates)"
            )
        clamped = np.clip(points, centres[0], centres[-1])
        return spline_weights(centres, clamped, order=3)

    # ------------------------------------------------------------------ evaluation
    def evaluate_scatterlight_model(self, row_eval, col_eval, times, method: str = "sl_cube"):
        """Scattered light and its error on a grid of pixels at the given times.

        Parameters
        ----------
        row_eval, col_eval : ndarray
            1-D arrays of 1-based CCD rows and columns; the result is on their grid.
        times : array_like or astropy.time.Time
            BTJD, JD or astropy Time.
        method : {"sl_cube"}
            Interpolate the SL cube. (``"model"``/``"nn"``, the learnt model, is not
            available yet.)

        Returns
        -------
        sl_flux, sl_fluxerr : ndarray (ntimes, nrows, ncols) float32
            e-/s; NaN at times flagged ``IN_GAP`` or ``OUTSIDE_CUBE`` (see :attr:`flags`).
        """
        from .geometry import to_btjd

        if method in ("model", "nn"):
            raise TessBackmlError("method='model' (a learnt model) is not available yet; use method='sl_cube'")
        if method != "sl_cube":
            raise TessBackmlError(f"method must be 'sl_cube', got {method!r}")
        rows = _as_pixel_array(row_eval, "row_eval")
        cols = _as_pixel_array(col_eval, "col_eval")
        if times is None:
            raise TessBackmlError("times are required (BTJD, JD or astropy Time)")
        btjd = to_btjd(times)
        w_row = self._space_weights(self.row_cube, rows, FIRST_SCIENCE_ROW, LAST_SCIENCE_ROW, "rows")
        w_col = self._space_weights(self.col_cube, cols, FIRST_SCIENCE_COLUMN, LAST_SCIENCE_COLUMN, "columns")
        w_time, flags = self._time_weights(btjd)
        self.flags = flags
        flux = self._contract(self.cube_sl, w_time, w_row, w_col)
        error = self._contract(np.square(self.cube_sle, dtype=np.float64), w_time**2, w_row**2, w_col**2)
        np.sqrt(np.maximum(error, 0, out=error), out=error)
        missing = (flags & (IN_GAP | OUTSIDE_CUBE)) != 0
        if missing.any():
            flux[missing] = np.nan
            error[missing] = np.nan
            log.info("%d of %d times are in a gap or beyond the cube: NaN", int(missing.sum()), missing.size)
        return flux, error

    @staticmethod
    def _contract(cube, w_time, w_row, w_col) -> np.ndarray:
        """Apply the weights: space first in float64 (small), then one float32 product in time.

        The output (ntimes x npixels) is the large array: it is made once, in float32.
        """
        spatial = np.einsum("tij,pi,qj->tpq", np.asarray(cube, np.float64), w_row, w_col, optimize=True)
        nt, p, q = spatial.shape
        product = w_time.astype(np.float32) @ spatial.reshape(nt, p * q).astype(np.float32)
        return product.reshape(-1, p, q)

    # ------------------------------------------------------------------ lightkurve
    def correct(self, tpf):
        """Subtract the scattered light from a lightkurve ``TessTargetPixelFile``.

        Works for SPOC TPFs and TESScut/astrocut cutouts: the TPF's lower-left
        pixel (``tpf.row``, ``tpf.column``, from its ``1CRV4P``/``2CRV4P`` keywords)
        and its times place it on the cube.

        Returns
        -------
        lightkurve.TessTargetPixelFile
            A new TPF (same quality bitmask) whose ``FLUX`` is corrected, whose
            ``FLUX_ERR`` includes the model error in quadrature, and whose table
            carries the model in extra columns ``SL_MODEL`` and ``SL_MODEL_ERR``.
            Cadences where the model is NaN (gaps, beyond the cube) keep their flux.
        """
        import copy

        from astropy.io import fits

        lk = _lightkurve()
        for attribute in ("sector", "camera", "ccd", "row", "column", "hdu"):
            if not hasattr(tpf, attribute):
                raise TessBackmlError(f"expected a lightkurve TessTargetPixelFile, got {type(tpf).__name__}")
        found = (tpf.sector, tpf.camera, tpf.ccd)
        if found != (self.sector, self.camera, self.ccd):
            raise TessBackmlError(
                f"the TPF is sector {found[0]} camera {found[1]} CCD {found[2]}, but the cube {self.fname} is "
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
            model[usable], model_err[usable] = self.evaluate_scatterlight_model(rows, cols, time[usable])
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


def _lightkurve():
    try:
        import lightkurve
    except ImportError:
        raise TessBackmlError("correcting TPFs needs lightkurve: pip install 'tess-backml[lightkurve]'") from None
    return lightkurve


def correct(tpf, cube_file):
    """Subtract the scattered light of the SL cube ``cube_file`` from ``tpf`` (function form).

    The cube must be of the TPF's sector, camera and CCD. See
    :meth:`ScatterLightCorrector.correct`.
    """
    for attribute in ("sector", "camera", "ccd"):
        if not hasattr(tpf, attribute):
            raise TessBackmlError(f"expected a lightkurve TessTargetPixelFile, got {type(tpf).__name__}")
    return ScatterLightCorrector(tpf.sector, tpf.camera, tpf.ccd, fname=cube_file).correct(tpf)
