"""CCD geometry, coordinate conventions, time and quality-flag constants.

Coordinate conventions
----------------------
Three pixel coordinate systems appear in TESS work. This package names them
explicitly and converts between them only through the functions below.

*CCD coordinates* (1-based)
    What TPF and TESScut headers give (``1CRV4P`` / ``2CRV4P``, lightkurve's
    ``tpf.column`` / ``tpf.row``) and what the public functions of this package
    take. Rows run 1..2078 and columns 1..2136 over the whole FFI image;
    the science pixels are rows 1..2048 and columns 45..2092.

*Image indices* (0-based)
    Numpy indices into a full FFI image array ``image[row, col]`` of shape
    (2078, 2136): ``image_index = ccd_coordinate - 1``. The sector WCS
    (``tesswcs``) and the SPOC FFI header WCS use these, with ``x = column``
    and ``y = row`` (astropy ``origin=0``).

*Science indices* (0-based)
    Numpy indices into the 2048 x 2048 science region,
    ``science = image[SCIENCE_ROWS, SCIENCE_COLUMNS]``, i.e.
    ``image[0:2048, 44:2092]``. The original tess-backml sliced columns
    ``45:2093``, one column off; this package does not.
"""

from __future__ import annotations

import numpy as np

#: Shape (rows, columns) of a full FFI image of one CCD.
FFI_SHAPE = (2078, 2136)
#: Number of science rows and columns on a CCD.
SCIENCE_SIZE = 2048
#: 1-based CCD coordinates of the first science row and column.
FIRST_SCIENCE_ROW = 1
FIRST_SCIENCE_COLUMN = 45
#: Numpy slices of the science region in a full FFI image array.
SCIENCE_ROWS = slice(FIRST_SCIENCE_ROW - 1, FIRST_SCIENCE_ROW - 1 + SCIENCE_SIZE)
SCIENCE_COLUMNS = slice(FIRST_SCIENCE_COLUMN - 1, FIRST_SCIENCE_COLUMN - 1 + SCIENCE_SIZE)

#: TESS plate scale, arcsec per pixel (15 micron pixels).
PIXEL_SCALE_ARCSEC = 21.0

#: BTJD = BJD_TDB - BTJD_OFFSET.
BTJD_OFFSET = 2457000.0
SECONDS_PER_DAY = 86400.0
#: Days real data may run past a sector's start and end in tesswcs's pointing table
#: (planned dates): SPOC light curves of Sectors 1-23 end up to 0.79 d after it.
SECTOR_TIME_MARGIN_DAYS = 1.0
SPEED_OF_LIGHT_KM_S = 299792.458
AU_KM = 149597870.7

#: Mean radii used for angular sizes and distances, km (IAU nominal values).
EARTH_RADIUS_KM = 6378.1
MOON_RADIUS_KM = 1737.4
BODY_RADII_KM = {"earth": EARTH_RADIUS_KM, "moon": MOON_RADIUS_KM}
BODIES = ("earth", "moon")

CAMERAS = (1, 2, 3, 4)
CCDS = (1, 2, 3, 4)

#: SPOC quality flags (TESS Science Data Products Description Document, table 28).
QUALITY_FLAGS = {
    "AttitudeTweak": 1,
    "SafeMode": 2,
    "CoarsePoint": 4,
    "EarthPoint": 8,
    "Argabrightening": 16,
    "Desat": 32,
    "ApertureCosmic": 64,
    "ManualExclude": 128,
    "Discontinuity": 256,
    "ImpulsiveOutlier": 512,
    "CollateralCosmic": 1024,
    "Straylight": 2048,
    "Straylight2": 4096,
    "PlanetSearchExclude": 8192,
    "BadCalibrationExclude": 16384,
    "InsufficientTargets": 32768,
}
#: Frames with these flags are dropped by default (as in the original package).
DEFAULT_BAD_QUALITY = QUALITY_FLAGS["CoarsePoint"]

#: CCD strap columns, 1-based within the 2048 science columns
#: (TESS Instrument Handbook, table A.3). Each strap covers two adjacent columns.
STRAP_COLUMNS = (
    77, 78, 81, 82, 85, 86, 205, 206, 209, 210, 213, 214, 333, 334, 337, 338, 341, 342,
    461, 462, 465, 466, 469, 470, 516, 517, 520, 521, 524, 525, 589, 590, 593, 594,
    597, 598, 673, 674, 675, 676, 717, 718, 721, 722, 725, 726, 845, 846, 849, 850,
    853, 854, 973, 974, 977, 978, 981, 982, 1067, 1068, 1071, 1072, 1075, 1076, 1195,
    1196, 1199, 1200, 1203, 1204, 1323, 1324, 1327, 1328, 1331, 1332, 1373, 1374, 1375,
    1376, 1451, 1452, 1455, 1456, 1459, 1460, 1524, 1525, 1528, 1529, 1532, 1533, 1579,
    1580, 1583, 1584, 1587, 1588, 1707, 1708, 1711, 1712, 1715, 1716, 1835, 1836, 1839,
    1840, 1843, 1844, 1963, 1964, 1967, 1968, 1971, 1972,
)


def ffi_cadence_seconds(sector: int) -> float:
    """FFI exposure cadence of a sector, in seconds.

    Parameters
    ----------
    sector : int
        TESS sector number.

    Returns
    -------
    float
        1800 s for sectors 1-26, 600 s for 27-55 and 200 s from 56 on.
    """
    if sector <= 26:
        return 1800.0
    if sector <= 55:
        return 600.0
    return 200.0


def ccd_to_science(row, column):
    """Convert 1-based CCD coordinates to 0-based science-region indices.

    Parameters
    ----------
    row, column : array_like
        1-based CCD row and column (as in TPF headers).

    Returns
    -------
    tuple of ndarray
        0-based (row, column) indices into the 2048 x 2048 science region.
        Values outside ``[0, 2048)`` mean the pixel is not a science pixel.
    """
    return (
        np.asarray(row) - FIRST_SCIENCE_ROW,
        np.asarray(column) - FIRST_SCIENCE_COLUMN,
    )


def on_science_pixels(row, column, margin: float = 0.0):
    """Whether 1-based CCD (``row``, ``column``) falls on the science region.

    Parameters
    ----------
    row, column : array_like
        1-based CCD coordinates (fractional allowed).
    margin : float
        Pixels of slack on every side: a cutout's centre may sit just off the region
        and still be the right CCD, while a forecast wants the science pixels only.

    Returns
    -------
    bool or ndarray of bool
    """
    science_row, science_column = ccd_to_science(row, column)
    return ((-margin <= science_row) & (science_row < SCIENCE_SIZE + margin)
            & (-margin <= science_column) & (science_column < SCIENCE_SIZE + margin))


def science_to_ccd(row, column):
    """Convert 0-based science-region indices to 1-based CCD coordinates.

    Parameters
    ----------
    row, column : array_like
        0-based indices into the 2048 x 2048 science region (may be fractional,
        e.g. bin centres).

    Returns
    -------
    tuple of ndarray
        1-based CCD (row, column).
    """
    return (
        np.asarray(row) + FIRST_SCIENCE_ROW,
        np.asarray(column) + FIRST_SCIENCE_COLUMN,
    )


def bin_centres(nrows: int, ncols: int, img_bin: int):
    """Centres of pixel bins in 1-based CCD coordinates: (rows (nrows,), columns (ncols,)).

    Bin ``i`` covers science rows ``i*b .. i*b + b - 1`` (0-based), i.e. CCD rows
    ``i*b + 1 .. i*b + b``, whose centre is ``(i + 0.5) * b + 0.5``; columns
    likewise, offset by the 44 collateral columns.
    """
    rows = (np.arange(nrows) + 0.5) * img_bin - 0.5 + FIRST_SCIENCE_ROW
    cols = (np.arange(ncols) + 0.5) * img_bin - 0.5 + FIRST_SCIENCE_COLUMN
    return rows, cols


def ccd_to_image(row, column):
    """Convert 1-based CCD coordinates to 0-based full-image indices.

    These are the pixel coordinates the sector WCS works in (``x = column``,
    ``y = row``, astropy ``origin=0``).
    """
    return np.asarray(row) - 1, np.asarray(column) - 1


#: Nominal camera-boresight angle (deg) below which a body is above the sunshade
#: and its light can scatter into the camera. The simulator uses these; for real
#: data they are approximate, so models also see the angle itself.
SUNSHADE_CUTOFF_DEG = {"earth": 50.0, "moon": 45.0}
