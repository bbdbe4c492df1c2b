"""Where the Earth and Moon are, seen from TESS: per camera and per pixel.

The package, from the bottom up:

* ``ephemeris``: an :class:`Ephemeris` gives spacecraft-to-Earth and
  spacecraft-to-Moon vectors (km, ICRS axes) at times in TDB.
  :class:`SpiceEphemeris` reads SPICE kernels (the truncated test kernels that
  ``lkspacecraft`` ships cover Sector 4 and work offline);
  :class:`HorizonsEphemeris` reads a JPL Horizons vector table of TESS (Earth and
  Moon from astropy's built-in ephemeris).
* ``pointing``: which sectors exist and when, the sector WCS from ``tesswcs``, and
  :class:`CameraGeometry`: the camera boresight, the azimuth reference direction
  and every pixel's line of sight.
* ``maps``: :func:`angle_and_azimuth` turns plain vectors into angles, following
  the mission's TESS Vectors convention: the angle between a line of sight and the
  body, and the body's azimuth around that line of sight measured from the
  reference direction toward ``los x reference``; :func:`pixel_maps` gives them
  per frame and per pixel.
* ``vectors``: :func:`camera_vectors`, the per-frame table with the HEASARC column
  names, and :func:`read_tess_vectors`, which reads the HEASARC TESS Vectors files
  into the same table.

Times
-----
FFI times are BTJD (barycentric, TDB). The ephemeris is evaluated at the time at
the spacecraft, ``BTJD - (r_ssb . n) / c`` with ``n`` the camera boresight: the
barycentric correction is up to ~8 minutes, during which TESS can move ~1 degree
around the Earth near perigee. The HEASARC files' ``MidTime`` column is that
spacecraft time, so tables made here carry both ``MidTime`` and ``BTJD``.
"""

from ..constants import AU_KM, SECONDS_PER_DAY, SPEED_OF_LIGHT_KM_S
from .ephemeris import (
    BodyVectors,
    Ephemeris,
    HorizonsDirectory,
    HorizonsEphemeris,
    OnlineHorizons,
    ShippedEphemeris,
    SpiceEphemeris,
    default_ephemeris,
    load_ephemeris,
    parse_horizons_vectors,
)
from .maps import MAP_KEYS, angle_and_azimuth, angular_size, iter_pixel_maps, pixel_maps
from .pointing import (
    CameraGeometry,
    radec_to_unit,
    sector_ffi_times,
    sector_pointings,
    sector_time_range,
    sector_wcs,
    to_btjd,
    valid_sectors,
    validate_camera_ccd,
    validate_sector,
)
from .vectors import (
    VECTOR_COLUMNS,
    camera_vectors,
    heasarc_vectors_url,
    read_tess_vectors,
)

__all__ = [
    "AU_KM",
    "MAP_KEYS",
    "SECONDS_PER_DAY",
    "SPEED_OF_LIGHT_KM_S",
    "VECTOR_COLUMNS",
    "BodyVectors",
    "CameraGeometry",
    "Ephemeris",
    "HorizonsDirectory",
    "HorizonsEphemeris",
    "OnlineHorizons",
    "ShippedEphemeris",
    "SpiceEphemeris",
    "angle_and_azimuth",
    "angular_size",
    "camera_vectors",
    "default_ephemeris",
    "heasarc_vectors_url",
    "iter_pixel_maps",
    "load_ephemeris",
    "parse_horizons_vectors",
    "pixel_maps",
    "radec_to_unit",
    "read_tess_vectors",
    "sector_ffi_times",
    "sector_pointings",
    "sector_time_range",
    "sector_wcs",
    "to_btjd",
    "valid_sectors",
    "validate_camera_ccd",
    "validate_sector",
]
