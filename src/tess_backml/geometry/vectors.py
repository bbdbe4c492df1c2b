"""Per-frame camera geometry tables, as the mission's TESS Vectors files give them."""

from __future__ import annotations

import logging
import re

import numpy as np
from astropy.table import Table

from ..constants import BODIES, BODY_RADII_KM, BTJD_OFFSET, EARTH_RADIUS_KM
from ..errors import FileFormatError, TessBackmlError
from .ephemeris import load_ephemeris
from .maps import angle_and_azimuth, angular_size
from .pointing import (
    CameraGeometry,
    sector_ffi_times,
    to_btjd,
    validate_camera_ccd,
    validate_sector,
)

log = logging.getLogger(__name__)

#: Columns of the per-frame table, in order (HEASARC TESS Vectors names plus ours).
VECTOR_COLUMNS = (
    "MidTime",
    "BTJD",
    "Earth_Distance",
    "Earth_Camera_Angle",
    "Earth_Camera_Azimuth",
    "Earth_Angular_Size",
    "Moon_Distance",
    "Moon_Camera_Angle",
    "Moon_Camera_Azimuth",
    "Moon_Angular_Size",
)


# --------------------------------------------------------------------------- products
def camera_vectors(sector: int, camera: int, times=None, ephemeris=None) -> Table:
    """Per-frame Earth/Moon geometry of a camera, with the HEASARC TESS Vectors columns.

    Parameters
    ----------
    sector, camera : int
        TESS sector and camera.
    times : array_like or astropy.time.Time, optional
        FFI times, BTJD (or JD; see :func:`to_btjd`). Default: the sector's FFI
        grid (:func:`sector_ffi_times`).
    ephemeris : Ephemeris or str, optional
        An :class:`Ephemeris`, a Horizons table path, or None for the default
        SPICE ephemeris.

    Returns
    -------
    astropy.table.Table
        Columns :data:`VECTOR_COLUMNS`: ``MidTime`` (spacecraft TDB time minus
        2457000, as in the HEASARC files), ``BTJD``, ``*_Distance`` (Earth radii),
        ``*_Camera_Angle`` and ``*_Camera_Azimuth`` (degrees) and
        ``*_Angular_Size`` (angular diameter, degrees) for Earth and Moon.
    """
    geometry = CameraGeometry(sector, camera)
    ephemeris = load_ephemeris(ephemeris)
    btjd = sector_ffi_times(geometry.sector) if times is None else to_btjd(times)
    jd_spacecraft = geometry.spacecraft_time(btjd, ephemeris)
    vectors = ephemeris.body_vectors(jd_spacecraft)
    table = Table(meta={"SECTOR": geometry.sector, "CAMERA": geometry.camera, "EPHEM": str(ephemeris)})
    table["MidTime"] = jd_spacecraft - BTJD_OFFSET
    table["BTJD"] = btjd
    for body in BODIES:
        vec = vectors.body(body)
        distance = np.linalg.norm(vec, axis=1)
        angle, azimuth = angle_and_azimuth(vec, geometry.boresight[None], geometry.reference)
        name = body.capitalize()
        table[f"{name}_Distance"] = distance / EARTH_RADIUS_KM
        table[f"{name}_Camera_Angle"] = angle[:, 0]
        table[f"{name}_Camera_Azimuth"] = azimuth[:, 0]
        table[f"{name}_Angular_Size"] = angular_size(distance, BODY_RADII_KM[body])
    _describe_vector_columns(table)
    return table


def _describe_vector_columns(table):
    for name in VECTOR_COLUMNS:
        if name not in table.colnames:
            continue
        if name.endswith("Distance"):
            table[name].unit, table[name].description = "earthRad", "spacecraft to body distance"
        elif name.endswith(("Angle", "Azimuth", "Size")):
            table[name].unit = "deg"
    table["MidTime"].description = "spacecraft TDB time - 2457000 (days)"
    table["BTJD"].description = "barycentric FFI time - 2457000 (days)"



# --------------------------------------------------------------------------- HEASARC files
HEASARC_VECTORS_URL = (
    "https://heasarc.gsfc.nasa.gov/docs/tess/data/TESSVectors/Vectors/FFI_Cadence/"
    "TessVectors_S{sector:03d}_C{camera}_FFI.csv"
)
_HEASARC_REQUIRED = (
    "MidTime",
    "Earth_Distance",
    "Earth_Camera_Angle",
    "Earth_Camera_Azimuth",
    "Moon_Distance",
    "Moon_Camera_Angle",
    "Moon_Camera_Azimuth",
)


def heasarc_vectors_url(sector: int, camera: int) -> str:
    """URL of the HEASARC TESS Vectors file (FFI cadence) of a sector and camera."""
    sector = validate_sector(sector)
    camera, _ = validate_camera_ccd(camera)
    return HEASARC_VECTORS_URL.format(sector=sector, camera=camera)


def read_tess_vectors(path_or_url) -> Table:
    """Read a HEASARC TESS Vectors CSV (FFI cadence) into the :func:`camera_vectors` table.

    Parameters
    ----------
    path_or_url : str or path-like
        A local file or an http(s) URL (downloaded once and cached by astropy).

    Returns
    -------
    astropy.table.Table
        Columns :data:`VECTOR_COLUMNS`. ``BTJD`` is NaN (the files carry only the
        spacecraft time ``MidTime``) and angular sizes are computed from the
        distances. All-zero fill rows are dropped. ``meta`` has SECTOR and CAMERA
        when the header names them.
    """
    source = str(path_or_url)
    try:
        if source.startswith(("http://", "https://")):
            from astropy.utils.data import download_file

            source = download_file(source, cache=True, show_progress=False)
        with open(source, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise TessBackmlError(f"cannot read TESS Vectors file {path_or_url}: {exc}") from None

    def fail(reason):
        raise FileFormatError(f"{path_or_url} is not a HEASARC TESS Vectors file: {reason}")

    header_index = next(
        (i for i, line in enumerate(lines) if "MidTime" in line and "Earth_Camera_Angle" in line and not line.startswith("#")),
        None,
    )
    if header_index is None:
        fail("no column line with MidTime and Earth_Camera_Angle")
    names = [name.strip() for name in lines[header_index].split(",")]
    missing = [name for name in _HEASARC_REQUIRED if name not in names]
    if missing:
        fail(f"missing columns {', '.join(missing)}")
    index = [names.index(name) for name in _HEASARC_REQUIRED]
    rows = []
    for number, line in enumerate(lines[header_index + 1 :], start=header_index + 2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) != len(names):
            fail(f"line {number} has {len(fields)} fields, the column line {len(names)}")
        try:
            rows.append([float(fields[i]) for i in index])
        except ValueError:
            fail(f"line {number} has a non-numeric value in a geometry column")
    if not rows:
        fail("no data rows")
    values = np.array(rows)
    fill = np.all(values[:, 1:] == 0, axis=1)
    values = values[~fill]
    if len(values) == 0:
        fail("only fill rows")
    if not np.all(np.isfinite(values)):
        fail("non-finite geometry values")

    meta = {}
    for line in lines[:header_index]:
        match = re.match(r"#\s*(Sector|Camera)\s*:\s*(\d+)", line)
        if match:
            meta[match.group(1).upper()] = int(match.group(2))
    meta["EPHEM"] = f"HEASARC TESS Vectors {path_or_url}"
    table = Table(meta=meta)
    table["MidTime"] = values[:, 0]
    table["BTJD"] = np.full(len(values), np.nan)
    for body, offset in (("Earth", 1), ("Moon", 4)):
        distance = values[:, offset]
        table[f"{body}_Distance"] = distance
        table[f"{body}_Camera_Angle"] = values[:, offset + 1]
        table[f"{body}_Camera_Azimuth"] = values[:, offset + 2]
        table[f"{body}_Angular_Size"] = angular_size(distance * EARTH_RADIUS_KM, BODY_RADII_KM[body.lower()])
    _describe_vector_columns(table)
    log.info("read %d frames from %s (%d fill rows dropped)", len(values), path_or_url, int(fill.sum()))
    return table
