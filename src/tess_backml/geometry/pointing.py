"""Sector pointing: which sectors exist, their times, and where each pixel looks.

The sector table and the 16 CCD WCS of a sector come from ``tesswcs``;
:class:`CameraGeometry` gives a camera's boresight, its azimuth reference and
every pixel's line of sight.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..constants import (
    BTJD_OFFSET,
    CAMERAS,
    CCDS,
    FFI_SHAPE,
    SECONDS_PER_DAY,
    ccd_to_image,
    ffi_cadence_seconds,
)
from ..errors import TessBackmlError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- validation
def _tesswcs_data(name: str) -> str:
    """Path of a data file of the installed ``tesswcs``, found without importing it.

    Importing ``tesswcs`` builds its whole WCS database (~10 s), which a command
    that needs one pointing or one sector's WCS should not pay.
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("tesswcs")
    if spec is None or not spec.submodule_search_locations:
        raise TessBackmlError("the tesswcs package is not installed")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", name)


@functools.lru_cache(maxsize=1)
def sector_pointings() -> Table:
    """The ``tesswcs`` table of sector pointings (RA, Dec, Roll, Start, End in JD)."""
    return Table.read(_tesswcs_data("pointings.csv"), format="ascii.csv", encoding="utf-8-sig")


def valid_sectors() -> np.ndarray:
    """Sectors with a pointing in ``tesswcs`` (archived or predicted).

    Sectors are numbered 1, 2, 3, ... without gaps; the table also holds special
    pointings with other numbers (1751, in Cycle 8), which are not sectors.
    """
    numbers = np.asarray(sector_pointings()["Sector"], dtype=int)
    count = 0
    while count + 1 in numbers:
        count += 1
    return np.arange(1, count + 1)


def validate_sector(sector) -> int:
    """Return ``sector`` as an int, or raise a clear error if TESS has no such sector."""
    sectors = valid_sectors()
    try:
        value = int(sector)
    except (TypeError, ValueError):
        raise TessBackmlError(f"sector must be an integer, got {sector!r}") from None
    if value != sector or value not in sectors:
        raise TessBackmlError(
            f"sector {sector!r} is not a TESS sector with a known pointing "
            f"(valid: {sectors.min()}-{sectors.max()})"
        )
    return value


def validate_camera_ccd(camera, ccd=None) -> tuple[int, int | None]:
    """Check camera (1-4) and, if given, CCD (1-4); return them as ints."""
    if camera not in CAMERAS:
        raise TessBackmlError(f"camera must be one of 1, 2, 3, 4; got {camera!r}")
    if ccd is not None and ccd not in CCDS:
        raise TessBackmlError(f"CCD must be one of 1, 2, 3, 4; got {ccd!r}")
    return int(camera), (None if ccd is None else int(ccd))


def to_btjd(times) -> np.ndarray:
    """Convert times to BTJD (float64 array, TDB).

    Accepts an astropy ``Time``, or numbers that are either BTJD or JD: TESS
    BTJD values are below 10^5 and JD values above 2.4 x 10^6, so the two never
    overlap and are told apart by size.
    """
    if isinstance(times, Time):
        return np.atleast_1d(times.tdb.jd - BTJD_OFFSET).astype(float)
    try:
        values = np.atleast_1d(np.asarray(times, dtype=float))
    except (TypeError, ValueError):
        raise TessBackmlError("times must be numbers (BTJD or JD) or an astropy Time") from None
    if values.size == 0:
        raise TessBackmlError("no times given")
    if not np.all(np.isfinite(values)):
        raise TessBackmlError("times contain NaN or infinite values")
    is_jd = values > 2_000_000
    if is_jd.any() and not is_jd.all():
        raise TessBackmlError("times mix JD and BTJD values; give one or the other")
    return values - BTJD_OFFSET if is_jd.all() else values


def sector_time_range(sector: int) -> tuple[float, float]:
    """Start and end of a sector in BTJD, from the ``tesswcs`` pointing table."""
    sector = validate_sector(sector)
    pointings = sector_pointings()
    row = pointings[np.asarray(pointings["Sector"]) == sector][0]
    start, end = Time([row["Start"], row["End"]], format="jd", scale="utc").tdb.jd
    return float(start - BTJD_OFFSET), float(end - BTJD_OFFSET)


def sector_ffi_times(sector: int) -> np.ndarray:
    """Mid-exposure BTJD times of a regular FFI grid over a sector.

    The grid steps at the sector's FFI cadence from the start to the end of the
    sector as given by ``tesswcs.pointings``. Real FFIs also have gaps (data
    downlinks at perigee) that this grid does not know about.
    """
    start, end = sector_time_range(sector)
    step = ffi_cadence_seconds(sector) / SECONDS_PER_DAY
    count = int(np.floor((end - start) / step))
    return start + (np.arange(count) + 0.5) * step


# --------------------------------------------------------------------------- ephemerides


# --------------------------------------------------------------------------- camera geometry
def radec_to_unit(ra_deg, dec_deg) -> np.ndarray:
    """Unit vectors (..., 3) in ICRS axes from RA and Dec in degrees."""
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def _normalize(vectors):
    vectors = np.asarray(vectors, dtype=float)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=8)
def sector_wcs(sector: int) -> dict:
    """The 16 CCD WCS of a sector (0-based full-image pixels) by (camera, ccd), made by
    ``tesswcs`` (each built when first used).

    The headers are cached per ``tesswcs`` version in the user cache directory,
    so only the first use of a sector pays for importing ``tesswcs``.
    """
    import json
    from importlib.metadata import version

    from .._files import cache_dir

    path = cache_dir("wcs", f"tesswcs-{version('tesswcs')}") / f"sector{sector:03d}.json"
    headers = None
    if path.is_file():
        try:
            headers = json.loads(path.read_text())
        except (OSError, ValueError):
            headers = None
    if headers is None:
        import tesswcs

        tess_log = logging.getLogger("tesswcs")
        previous = tess_log.level
        tess_log.setLevel(logging.ERROR)
        try:
            headers = {
                f"{camera}-{ccd}": tesswcs.WCS.from_sector(sector, camera, ccd).to_header().tostring()
                for camera in CAMERAS
                for ccd in CCDS
            }
        finally:
            tess_log.setLevel(previous)
        from .._files import atomic_output

        try:
            with atomic_output(path, "w") as stream:
                json.dump(headers, stream)
        except (OSError, TessBackmlError) as exc:
            log.debug("could not cache the sector %d WCS: %s", sector, exc)
    return _SectorWCS(headers)


class _SectorWCS(dict):
    """The WCS of a sector's CCDs by (camera, ccd), each made when first asked for (a
    forecast over every sector needs one camera's, and making one costs ~20 ms)."""

    def __init__(self, headers):
        super().__init__()
        self.headers = headers

    def __missing__(self, key):
        from astropy.io import fits
        from astropy.wcs import WCS

        camera, ccd = key
        text = self.headers.get(f"{camera}-{ccd}")
        if text is None:
            raise KeyError(key)
        wcs = WCS(fits.Header.fromstring(text))
        wcs.pixel_shape = (FFI_SHAPE[1], FFI_SHAPE[0])
        self[key] = wcs
        return wcs


def _pixel_to_unit(wcs, row, column) -> np.ndarray:
    """Lines of sight of 1-based CCD (row, column) positions through a CCD's WCS."""
    image_row, image_column = ccd_to_image(row, column)
    ra, dec = wcs.all_pix2world(np.ravel(image_column), np.ravel(image_row), 0)
    return radec_to_unit(ra, dec).reshape(np.shape(row) + (3,))


#: Angle (deg) of each camera's boresight from the spacecraft's, along the line of the
#: four cameras (negative: toward cameras 1 and 2).
CAMERA_OFFSETS_DEG = {1: -36.0, 2: -12.0, 3: 12.0, 4: 36.0}


@functools.lru_cache(maxsize=8)
def _camera_boresights(sector: int) -> dict:
    """Boresight (unit vector) of each camera, as the mission's TESS Vectors define it.

    The spacecraft points at the sector's (RA, Dec) with its ``Roll``; the cameras
    sit 12 and 36 degrees either side of it, along position angle ``-Roll``. (Fitted
    to the Sector 1 camera-4 TESS Vectors, this puts the boresight within 0.006 deg
    of the direction that best reproduces their Earth and Moon angles; where the inner
    corners of the four CCDs meet in the ``tesswcs`` WCS is 0.03-0.06 deg away in every
    sector, which made the angles up to 0.06 deg off there.)
    """
    pointings = sector_pointings()
    row = pointings[np.asarray(pointings["Sector"]) == sector][0]
    ra, dec, position_angle = np.deg2rad([row["RA"], row["Dec"], -row["Roll"]])
    pointing = radec_to_unit(row["RA"], row["Dec"])
    north = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    east = np.array([-np.sin(ra), np.cos(ra), 0.0])
    along = np.cos(position_angle) * north + np.sin(position_angle) * east
    return {
        camera: _normalize(np.cos(np.deg2rad(offset)) * pointing + np.sin(np.deg2rad(offset)) * along)
        for camera, offset in CAMERA_OFFSETS_DEG.items()
    }


class CameraGeometry:
    """Boresight, azimuth reference and pixel lines of sight of one camera in one sector.

    Parameters
    ----------
    sector : int
        TESS sector (its WCS comes from ``tesswcs``).
    camera : int
        Camera 1-4.

    Attributes
    ----------
    boresight : ndarray (3,)
        Unit vector of the camera boresight: the sector pointing offset along the
        line of the cameras (see ``CAMERA_OFFSETS_DEG``).
    spacecraft_boresight : ndarray (3,)
        Midway between the boresights of cameras 2 and 3.
    reference : ndarray (3,)
        Azimuth zero: the component perpendicular to the camera boresight of the
        direction pointing away from the spacecraft boresight.
    """

    def __init__(self, sector: int, camera: int):
        self.sector = validate_sector(sector)
        self.camera, _ = validate_camera_ccd(camera)
        boresights = _camera_boresights(self.sector)
        self.boresight = boresights[self.camera]
        self.spacecraft_boresight = _normalize(boresights[2] + boresights[3])
        away = -self.spacecraft_boresight
        self.reference = _normalize(away - (away @ self.boresight) * self.boresight)

    def __repr__(self):
        return f"CameraGeometry(sector={self.sector}, camera={self.camera})"

    def wcs(self, ccd: int):
        """The ``tesswcs`` WCS of one CCD (0-based full-image pixel coordinates)."""
        validate_camera_ccd(self.camera, ccd)
        return sector_wcs(self.sector)[self.camera, ccd]

    def pixel_directions(self, ccd: int, row, column) -> np.ndarray:
        """Unit lines of sight (..., 3) of pixels given in 1-based CCD coordinates.

        ``row`` and ``column`` may be fractional (bin centres) and of any shape
        (broadcast together). Positions are not required to be science pixels,
        but must lie on the CCD image (rows 0.5-2078.5, columns 0.5-2136.5).
        """
        row, column = np.broadcast_arrays(np.asarray(row, dtype=float), np.asarray(column, dtype=float))
        if row.size == 0:
            raise TessBackmlError("no pixel positions given")
        if not (np.all(np.isfinite(row)) and np.all(np.isfinite(column))):
            raise TessBackmlError("pixel positions contain NaN or infinite values")
        if row.min() < 0.5 or row.max() > FFI_SHAPE[0] + 0.5:
            raise TessBackmlError(f"rows must lie on the CCD (1-{FFI_SHAPE[0]}), got {row.min()}-{row.max()}")
        if column.min() < 0.5 or column.max() > FFI_SHAPE[1] + 0.5:
            raise TessBackmlError(
                f"columns must lie on the CCD (1-{FFI_SHAPE[1]}), got {column.min()}-{column.max()}"
            )
        return _pixel_to_unit(self.wcs(ccd), row, column)

    def spacecraft_time(self, btjd, ephemeris) -> np.ndarray:
        """Spacecraft JD (TDB) of FFI times given in BTJD for this camera."""
        return ephemeris.spacecraft_time(btjd, self.boresight)


