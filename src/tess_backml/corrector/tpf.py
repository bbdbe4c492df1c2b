"""The lightkurve glue: placing a TPF on the CCD and writing the corrected TPF."""

from __future__ import annotations

import copy
import logging
import os

import numpy as np

from ..errors import TessBackmlError
from .operator import (
    FIRST_SCIENCE_COLUMN,
    FIRST_SCIENCE_ROW,
    LAST_SCIENCE_COLUMN,
    LAST_SCIENCE_ROW,
)

log = logging.getLogger(__name__)


def tpf_pixels(tpf):
    """1-based CCD rows and columns of a TPF's pixels, checked to be science pixels."""
    nrows, ncols = tpf.hdu[1].data["FLUX"].shape[1:]
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
    return np.arange(row, row + nrows), np.arange(column, column + ncols)


def corrected_tpf(tpf, model, model_err, provenance):
    """A new TPF (same quality bitmask) with ``model`` subtracted from ``FLUX`` where it is
    known, ``model_err`` added to ``FLUX_ERR`` in quadrature, the model in ``SL_MODEL`` and
    ``SL_MODEL_ERR`` columns, and ``provenance`` (keyword, value, comment) in the primary header."""
    from astropy.io import fits

    lk = lightkurve_module()
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
    hdul[1] = fits.BinTableHDU.from_columns(hdul[1].columns + fits.ColDefs(extra), header=hdul[1].header)
    hdul[0].header["SLCORR"] = (True, "scattered light subtracted by tess-backml")
    keyword, value, comment = provenance
    hdul[0].header[keyword] = (os.path.basename(value)[:60], comment)
    log.info("corrected %d of %d cadences", int(known.any(axis=(1, 2)).sum()), len(model))
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
    from ..geometry import CameraGeometry

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


def check_tpf(tpf):
    for attribute in ("sector", "camera", "ccd", "hdu", "time"):
        if not hasattr(tpf, attribute):
            raise TessBackmlError(f"expected a lightkurve TessTargetPixelFile, got {type(tpf).__name__}")


def lightkurve_module():
    import warnings

    try:
        with warnings.catch_warnings():  # its optional-submodule notices are not for our users
            warnings.simplefilter("ignore")
            import lightkurve
    except ImportError:
        raise TessBackmlError("correcting TPFs needs lightkurve (a dependency of tess-backml): pip install lightkurve") from None
    return lightkurve
