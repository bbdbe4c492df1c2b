"""The lightkurve glue: placing a TPF on the CCD and writing the corrected TPF."""

from __future__ import annotations

import copy
import logging
import os

import numpy as np

from ..errors import TessBackmlError
from ..series import lightkurve_module, tpf_corner
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
