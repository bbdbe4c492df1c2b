"""ScatterLightCorrector: the SL of a cube or a learnt model, at any pixels and times."""

from __future__ import annotations

import os

import numpy as np

from ..constants import SECTOR_TIME_MARGIN_DAYS
from ..errors import TessBackmlError
from ..io import read_sl_cube
from ..series import check_tpf, tpf_sector
from .model_path import MODEL_NODE_MINUTES, MODEL_NODE_PIXELS, ModelEvaluator
from .operator import CubeInterpolator, as_pixel_array, time_layout
from .tpf import corrected_tpf, tpf_pixels

METHODS = ("sl_cube", "model", "nn")


class ScatterLightCorrector:
    """Scattered light from an SL cube or a learnt model, at any pixels and times.

    Parameters
    ----------
    sector, camera, ccd : int
        Checked against the cube file.
    fname : str, optional
        An SL cube FITS file (made by this package or by the original tess-backml).
        Default ``./data/ffi_sl_cube_sectorNNN_C-D.fits``, as in the original.
    model : str or path-like, optional
        A model file (from ``tess-backml train``), or ``"default"``: the model shipped
        with the package, trained on real series. The SL from the Earth/Moon geometry
        alone, with ``method="model"``; no cube is needed.
    ephemeris : Ephemeris or str, optional
        Where TESS was, for the model's geometry: an
        :class:`~tess_backml.geometry.Ephemeris`, a JPL Horizons table path, or None
        for SPICE (offline, its test kernels cover Sector 4 only).

    Attributes
    ----------
    cube : tess_backml.io.SLCube
        The cube file's contents.
    row_cube, col_cube : ndarray
        Bin centres, 1-based CCD coordinates.
    cube_time : ndarray
        Cube times, BTJD.
    flags : ndarray
        Per evaluated time, after :meth:`evaluate_scatterlight_model`: 0, or a sum of
        ``EXTRAPOLATED`` (1), ``IN_GAP`` (2), ``OUTSIDE_CUBE`` (4) and, for a model,
        ``OUTSIDE_TRAINING`` (8: the Earth or Moon nearer than in its training).
    """

    MODEL_NODE_PIXELS = MODEL_NODE_PIXELS
    MODEL_NODE_MINUTES = MODEL_NODE_MINUTES

    def __init__(self, sector: int, camera: int, ccd: int, fname=None, model=None, ephemeris=None):
        from ..geometry import load_ephemeris, validate_camera_ccd, validate_sector

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
        from ..model import load_model

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
        self.cube_time = np.asarray(self.cube.time, dtype=float)
        self.half_bin, self.gaps = time_layout(self.cube_time, self.cube.time_bin_hours, fname)
        self.cube_sl, self.cube_sle = self.cube.flux, self.cube.flux_err
        self.image_binsize = self.cube.pixel_bin

    def __repr__(self):
        return f"TESS FFI SL Corrector (Sector, Camera, CCD): {self.sector}, {self.camera}, {self.ccd}"

    def _sector_span(self) -> tuple[float, float]:
        """The sector's BTJD span, widened by the days real data run past tesswcs's dates."""
        from ..geometry import sector_time_range

        start, stop = sector_time_range(self.sector)
        return start - SECTOR_TIME_MARGIN_DAYS, stop + SECTOR_TIME_MARGIN_DAYS

    def evaluator(self, method=None):
        """The :class:`~tess_backml.corrector.operator.SLEvaluator` of ``method``
        (see :meth:`evaluate_scatterlight_model`)."""
        if method is None:
            method = "sl_cube" if self.fname is not None else "model"
        if method not in METHODS:
            raise TessBackmlError(f"method must be 'sl_cube' or 'model' ('nn'), got {method!r}")
        if method == "sl_cube" and self.fname is None:
            raise TessBackmlError("no SL cube was given (fname=...): use method='model' or give a cube")
        if method != "sl_cube" and self.model is None:
            raise TessBackmlError("no model was given: ScatterLightCorrector(..., model=PATH) (train one with 'tess-backml train')")
        if method != "sl_cube":
            return ModelEvaluator(self.model, self.model_meta, self.sector, self.camera, self.ccd, self._sector_span(), self.ephemeris)
        interpolator = CubeInterpolator(
            self.cube_time, self.cube_sl, self.cube_sle, self.row_cube, self.col_cube, self.half_bin, self.gaps,
            self._sector_span(), self.sector, spline=self._spline,
        )
        self._spline = interpolator.spline  # rebuilt only when the cube times change
        return interpolator

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
            With a model, the error comes from its error model (fitted to held-out
            residuals: a floor and a share of the light), or is its held-out RMS error.
        """
        from ..geometry import to_btjd

        evaluator = self.evaluator(method)
        rows = as_pixel_array(row_eval, "row_eval")
        cols = as_pixel_array(col_eval, "col_eval")
        if times is None:
            raise TessBackmlError("times are required (BTJD, JD or astropy Time)")
        flux, error, self.flags = evaluator.evaluate(rows, cols, to_btjd(times))
        return flux, error

    def correct(self, tpf, method=None, anchor: bool = False):
        """Subtract the scattered light from a lightkurve ``TessTargetPixelFile``.

        Works for SPOC TPFs and TESScut/astrocut cutouts: the TPF's lower-left
        pixel (its physical WCS keywords, or for astrocut cutouts, which lack them,
        its celestial WCS; see :func:`~tess_backml.corrector.tpf_corner`) and its
        times place it on the cube.

        Returns
        -------
        lightkurve.TessTargetPixelFile
            A new TPF (same quality bitmask) whose ``FLUX`` is corrected, whose
            ``FLUX_ERR`` includes the model error in quadrature, and whose table
            carries the model in extra columns ``SL_MODEL`` and ``SL_MODEL_ERR``.
            Cadences where the model is NaN (gaps, beyond the cube) keep their flux.
            ``method`` as in :meth:`evaluate_scatterlight_model` (the cube, or the
            learnt model).

        With ``anchor=True`` (a model only), the model's amplitude is fitted to the
        stamp's own background (``FLUX_BKG``, or a cutout's faintest pixels), per orbit
        or along the Earth's track as the model's anchored recipe says, and the model
        gives its shape in time and across the stamp (see
        :mod:`tess_backml.model.anchor`); the errors are those of the anchored mode.
        """
        check_tpf(tpf)
        found = (tpf_sector(tpf), tpf.camera, tpf.ccd)
        if found != (self.sector, self.camera, self.ccd):
            what = f"the cube {self.fname} is" if self.fname else "this corrector is for"
            raise TessBackmlError(
                f"the TPF is sector {found[0]} camera {found[1]} CCD {found[2]}, but {what} "
                f"sector {self.sector} camera {self.camera} CCD {self.ccd}: build a cube for it with "
                f"'tess-backml cube --sector {found[0]} --camera {found[1]} --ccd {found[2]}'"
            )
        rows, cols = tpf_pixels(tpf)
        time = np.asarray(tpf.hdu[1].data["TIME"], dtype=float)
        usable = np.isfinite(time)
        model = np.full((len(time), rows.size, cols.size), np.nan, np.float32)
        model_err = np.full_like(model, np.nan)
        if anchor and (method == "sl_cube" or self.model is None):
            raise TessBackmlError("anchoring needs a model (model=...), not a cube: a cube measures the light itself")
        if usable.any() and anchor:
            from ..series import tpf_series
            from .anchored import anchored_sl

            evaluator = self.evaluator("model")
            model[usable], model_err[usable], self.flags = anchored_sl(
                evaluator, tpf_series(tpf), rows, cols, time[usable])
        elif usable.any():
            model[usable], model_err[usable] = self.evaluate_scatterlight_model(rows, cols, time[usable], method=method)
        if anchor:
            provenance = ("SLMODEL", self.model_file, "SL model file used, anchored on the stamp")
        elif method in ("model", "nn") or self.fname is None:
            provenance = ("SLMODEL", self.model_file, "SL model file used")
        else:
            provenance = ("SLCUBE", self.fname, "SL cube used")
        return corrected_tpf(tpf, model, model_err, provenance)


def correct(tpf, cube_file=None, model=None, ephemeris=None, anchor: bool = False):
    """Subtract the scattered light from ``tpf`` (function form): of the SL cube
    ``cube_file`` (of the TPF's sector, camera and CCD) or, without a cube, of the
    learnt ``model`` file, whose geometry comes from ``ephemeris`` (``anchor=True``:
    anchored on the stamp's own background). See :meth:`ScatterLightCorrector.correct`.
    """
    check_tpf(tpf)
    if cube_file is None and model is None:
        raise TessBackmlError("give an SL cube file or a model file")
    corrector = ScatterLightCorrector(tpf_sector(tpf), tpf.camera, tpf.ccd, fname=cube_file, model=model, ephemeris=ephemeris)
    return corrector.correct(tpf, method=None if cube_file is not None else "model", anchor=anchor)
