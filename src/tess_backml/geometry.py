"""Where the Earth and Moon are, seen from TESS: per camera and per pixel.

The pieces, from the bottom up:

* An :class:`Ephemeris` gives spacecraft-to-Earth and spacecraft-to-Moon vectors
  (km, ICRS axes) at times in TDB. Two implementations: :class:`SpiceEphemeris`
  (SPICE kernels through ``lkspacecraft``; its truncated test kernels, which cover
  Sector 4, work offline) and :class:`HorizonsEphemeris` (a JPL Horizons vector
  table of TESS that the user downloaded; Earth and Moon from astropy's built-in
  ephemeris).
* :class:`CameraGeometry` gives the camera boresight, the azimuth reference
  direction and every pixel's line of sight, from the sector WCS in ``tesswcs``.
* :func:`angle_and_azimuth` turns plain vectors into angles, following the
  mission's TESS Vectors convention (see ``docs`` in the README): the angle
  between a line of sight and the body, and the body's azimuth around that line
  of sight measured from the reference direction toward ``los x reference``.
* :func:`camera_vectors` (the per-frame table, HEASARC column names) and
  :func:`pixel_maps` (per-frame, per-pixel maps) put them together.
  :func:`read_tess_vectors` reads the HEASARC TESS Vectors files into the same
  table.

Times
-----
FFI times are BTJD (barycentric, TDB). The ephemeris is evaluated at the time at
the spacecraft, ``BTJD - (r_ssb . n) / c`` with ``n`` the camera boresight: the
barycentric correction is up to ~8 minutes, during which TESS can move ~1 degree
around the Earth near perigee. The HEASARC files' ``MidTime`` column is that
spacecraft time, so tables made here carry both ``MidTime`` and ``BTJD``.
"""

from __future__ import annotations

import functools
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.time import Time

from .constants import (
    BODIES,
    BODY_RADII_KM,
    BTJD_OFFSET,
    CAMERAS,
    CCDS,
    EARTH_RADIUS_KM,
    FFI_SHAPE,
    FIRST_SCIENCE_COLUMN,
    FIRST_SCIENCE_ROW,
    SCIENCE_SIZE,
    ccd_to_image,
    ffi_cadence_seconds,
)
from .errors import EphemerisRangeError, FileFormatError, TessBackmlError

log = logging.getLogger(__name__)

SPEED_OF_LIGHT_KM_S = 299792.458
AU_KM = 149597870.7
SECONDS_PER_DAY = 86400.0
# Obliquity of the ecliptic at J2000 (IAU 2006), for Horizons tables in ecliptic axes.
_OBLIQUITY_J2000_RAD = np.deg2rad(84381.406 / 3600.0)

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

#: Keys of the per-pixel maps returned by :func:`pixel_maps`.
MAP_KEYS = tuple(
    f"{body}_{quantity}" for body in BODIES for quantity in ("angle", "azimuth", "angular_size")
)


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
    """Sectors with a pointing in ``tesswcs`` (archived or predicted)."""
    return np.asarray(sector_pointings()["Sector"], dtype=int)


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
@dataclass(frozen=True)
class BodyVectors:
    """Positions at a set of times: all km, ICRS axes, TDB times.

    Attributes
    ----------
    jd_tdb : ndarray (n,)
        Times at which the vectors hold (JD, TDB, at the spacecraft).
    earth, moon : ndarray (n, 3)
        Vector from the spacecraft to the body's centre.
    spacecraft_ssb : ndarray (n, 3)
        Spacecraft position relative to the solar system barycentre.
    """

    jd_tdb: np.ndarray
    earth: np.ndarray
    moon: np.ndarray
    spacecraft_ssb: np.ndarray

    def body(self, name: str) -> np.ndarray:
        return getattr(self, name)


class Ephemeris(ABC):
    """Spacecraft-to-body vectors at any time an ephemeris covers.

    Subclasses implement :meth:`_positions` and :attr:`jd_range`; the base
    class checks the times and tells the user what range is covered.
    """

    #: How the user can get an ephemeris that covers other times.
    how_to_extend = ""

    @property
    @abstractmethod
    def jd_range(self) -> tuple[float, float]:
        """First and last JD (TDB) the ephemeris covers."""

    @abstractmethod
    def _positions(self, jd_tdb: np.ndarray) -> BodyVectors:
        """Vectors at times already checked to be inside :attr:`jd_range`."""

    @property
    def btjd_range(self) -> tuple[float, float]:
        start, stop = self.jd_range
        return start - BTJD_OFFSET, stop - BTJD_OFFSET

    def covers(self, jd_tdb) -> bool:
        jd = np.asarray(jd_tdb, dtype=float)
        start, stop = self.jd_range
        return bool(np.all((jd >= start) & (jd <= stop)))

    def _span_for(self, jd: np.ndarray):
        """The JD span (start, stop) that must hold finite times ``jd``, and its name for messages."""
        return self.jd_range, str(self)

    def check_range(self, jd_tdb) -> np.ndarray:
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=float))
        if jd.size == 0:
            raise TessBackmlError("no times given")
        if not np.all(np.isfinite(jd)):
            raise TessBackmlError("times contain NaN or infinite values")
        (start, stop), name = self._span_for(jd)
        if not np.all((jd >= start) & (jd <= stop)):
            dates = Time([start, stop], format="jd", scale="tdb").utc.iso
            raise EphemerisRangeError(
                f"times BTJD {jd.min() - BTJD_OFFSET:.3f} to {jd.max() - BTJD_OFFSET:.3f} are "
                f"outside the span of {name} (BTJD {start - BTJD_OFFSET:.3f} to "
                f"{stop - BTJD_OFFSET:.3f}, {dates[0][:10]} to {dates[1][:10]}). "
                f"{self.how_to_extend}"
            )
        return jd

    def body_vectors(self, jd_tdb) -> BodyVectors:
        """Spacecraft-to-Earth and -Moon vectors at spacecraft times ``jd_tdb`` (JD, TDB)."""
        return self._positions(self.check_range(jd_tdb))

    def spacecraft_time(self, btjd, direction) -> np.ndarray:
        """Spacecraft TDB time (JD) at which light that reached the SSB at ``btjd`` left TESS.

        ``btjd`` is barycentric for a source in ``direction`` (unit vector); the
        barycentric correction ``(r_ssb . n) / c`` is removed.
        """
        jd = np.atleast_1d(np.asarray(btjd, dtype=float)) + BTJD_OFFSET
        position = self._positions(self.check_range(jd)).spacecraft_ssb
        correction_days = position @ np.asarray(direction) / SPEED_OF_LIGHT_KM_S / SECONDS_PER_DAY
        return jd - correction_days


_SPICE_STATE = {"loaded": None, "range": {}}


class SpiceEphemeris(Ephemeris):
    """TESS ephemeris from SPICE kernels, through ``lkspacecraft``.

    Parameters
    ----------
    kernels : {"auto", "test", "mission"}
        ``"test"``: the truncated kernels shipped in ``lkspacecraft`` (offline;
        2018-10-09 to 2018-11-17, all of Sector 4). ``"mission"``: the mission
        kernels, which ``lkspacecraft`` downloads from MAST and caches (needs the
        internet the first time). ``"auto"`` (default): the test kernels when they
        cover the requested times, the mission kernels otherwise.
    """

    how_to_extend = (
        "Connect to the internet once so lkspacecraft can download the mission SPICE "
        "kernels (kernels='mission'), or download a JPL Horizons vector table for TESS "
        "(target -95, CSV) and pass it as the ephemeris (--ephemeris FILE)."
    )

    def __init__(self, kernels: str = "auto"):
        if kernels not in ("auto", "test", "mission"):
            raise TessBackmlError(f"kernels must be 'auto', 'test' or 'mission', got {kernels!r}")
        self.kernels = kernels

    def __repr__(self):
        return f"SpiceEphemeris(kernels={self.kernels!r})"

    def __str__(self):
        return f"the SPICE {self.kernels} kernels"

    @staticmethod
    def _load(mode: str) -> tuple[float, float]:
        """Load a kernel set into SPICE (a process-wide state) and return its JD range."""
        if _SPICE_STATE["loaded"] == mode:
            return _SPICE_STATE["range"][mode]
        import lkspacecraft

        if mode == "test":
            lkspacecraft.enable_test_mode()
        else:
            lkspacecraft.disable_test_mode()
        lk_log = logging.getLogger("lkspacecraft")
        previous = lk_log.level
        lk_log.setLevel(logging.ERROR)
        try:
            spacecraft = lkspacecraft.TESSSpacecraft()
        except Exception as exc:  # network errors, missing cache: all mean "not available"
            raise EphemerisRangeError(
                f"could not load the {mode} SPICE kernels through lkspacecraft ({exc}). "
                "Without the internet only the test kernels (Sector 4) are available; "
                "a JPL Horizons vector table for TESS works offline for any dates."
            ) from None
        finally:
            lk_log.setLevel(previous)
            lkspacecraft.disable_test_mode()
        span = (spacecraft.start_time.tdb.jd, spacecraft.end_time.tdb.jd)
        _SPICE_STATE["loaded"] = mode
        _SPICE_STATE["range"][mode] = span
        log.debug("loaded SPICE %s kernels covering JD %.3f-%.3f", mode, *span)
        return span

    def _mode_for(self, jd_tdb=None) -> str:
        if self.kernels != "auto":
            return self.kernels
        test_range = self._load("test")
        if jd_tdb is None:
            return "test"
        jd = np.asarray(jd_tdb)
        if np.all((jd >= test_range[0]) & (jd <= test_range[1])):
            return "test"
        return "mission"

    @property
    def jd_range(self):
        return self._load(self._mode_for())

    def _span_for(self, jd):
        if self.kernels == "auto":  # the kernels the times call for, not the default ones
            mode = self._mode_for(jd)
            return self._load(mode), f"the SPICE {mode} kernels"
        return super()._span_for(jd)

    def _positions(self, jd_tdb):
        import spiceypy

        self._load(self._mode_for(jd_tdb))
        # ET is TDB seconds past J2000: no leap-second table needed.
        et = (np.asarray(jd_tdb, dtype=float) - 2451545.0) * SECONDS_PER_DAY
        observer = "-95"

        def position(target, origin):
            try:
                vectors, _ = spiceypy.spkpos(target, et, "J2000", "NONE", origin)
            except spiceypy.utils.exceptions.SpiceyError as exc:
                raise EphemerisRangeError(
                    f"SPICE has no data for {target} relative to {origin} at the requested "
                    f"times ({str(exc).strip().splitlines()[-1]}). {self.how_to_extend}"
                ) from None
            return np.atleast_2d(np.asarray(vectors, dtype=float))

        return BodyVectors(
            jd_tdb=np.asarray(jd_tdb, dtype=float),
            earth=position("EARTH", observer),
            moon=position("MOON", observer),
            spacecraft_ssb=position(observer, "SOLAR SYSTEM BARYCENTER"),
        )


# Horizons centre bodies we can place with astropy's built-in ephemeris.
_HORIZONS_CENTRES = {
    0: None,  # solar system barycentre: the origin
    10: "sun",
    3: "earth-moon-barycenter",
    399: "earth",
    301: "moon",
}
_HORIZONS_UNITS = {"KM-S": 1.0, "KM-D": 1.0, "AU-D": AU_KM}


def _body_barycentric_km(name, jd_tdb) -> np.ndarray:
    """Barycentric position (km, ICRS) of a solar-system body from astropy's built-in ephemeris."""
    if name is None:
        return np.zeros((len(jd_tdb), 3))
    from astropy.coordinates import get_body_barycentric

    position = get_body_barycentric(name, Time(jd_tdb, format="jd", scale="tdb"), ephemeris="builtin")
    return position.xyz.to_value("km").T


class HorizonsEphemeris(Ephemeris):
    """TESS ephemeris from a JPL Horizons vector table (CSV) the user downloaded.

    In Horizons choose target ``-95`` (TESS), table type "Vector Table", CSV
    output, ICRF reference frame (equatorial; ecliptic tables are rotated), any
    centre among the solar-system barycentre, Sun, Earth, Moon or Earth-Moon
    barycentre, units km or au. The table's times are TDB. Positions between
    the table's rows are interpolated with a cubic spline; Earth and Moon come
    from astropy's built-in ephemeris. Prefer the Earth (399) as centre: the
    Earth vector is then the table itself and the Moon is good to ~6 km. With
    the barycentre as centre, astropy's built-in barycentric Earth adds an error
    of ~120 km (measured against the SPICE kernels), up to 0.07 deg at perigee.

    Parameters
    ----------
    path : str or path-like
        The saved table. Header lines may be prefixed with ``#``.
    """

    how_to_extend = "Download a Horizons table whose dates cover these times."

    def __init__(self, path):
        self.path = str(path)
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            raise TessBackmlError(f"cannot read Horizons table {self.path}: {exc.strerror}") from None
        parsed = parse_horizons_vectors(text, source=self.path)
        self.jd_tdb = parsed["jd_tdb"]
        self.position_km = parsed["position_km"]
        self.centre_name = parsed["centre_name"]
        self.centre_body = _HORIZONS_CENTRES[parsed["centre_id"]]
        from scipy.interpolate import CubicSpline

        self._spline = CubicSpline(self.jd_tdb, self.position_km, axis=0)

    def __repr__(self):
        return f"HorizonsEphemeris({self.path!r})"

    def __str__(self):
        return f"the Horizons table {self.path}"

    @property
    def jd_range(self):
        return float(self.jd_tdb[0]), float(self.jd_tdb[-1])

    def _positions(self, jd_tdb):
        jd = np.asarray(jd_tdb, dtype=float)
        spacecraft_from_centre = self._spline(jd)
        centre = _body_barycentric_km(self.centre_body, jd)
        vectors = {}
        for body in BODIES:
            # body - spacecraft = (body - centre) - (spacecraft - centre); exact zero
            # for the body that is the centre.
            if body == self.centre_body:
                vectors[body] = -spacecraft_from_centre
            else:
                vectors[body] = _body_barycentric_km(body, jd) - centre - spacecraft_from_centre
        return BodyVectors(
            jd_tdb=jd,
            earth=vectors["earth"],
            moon=vectors["moon"],
            spacecraft_ssb=centre + spacecraft_from_centre,
        )


def _header_value(lines, key):
    pattern = re.compile(rf"^\s*{key}\s*:\s*(.*)$", re.IGNORECASE)
    for line in lines:
        match = pattern.match(line)
        if match:
            return match.group(1).strip()
    return None


def parse_horizons_vectors(text: str, source: str = "table") -> dict:
    """Parse the text of a JPL Horizons vector table (CSV format).

    Returns a dict with ``jd_tdb`` (n,), ``position_km`` (n, 3) of the target
    relative to the centre in equatorial ICRS axes, ``centre_id``,
    ``centre_name`` and ``target``. Raises :class:`FileFormatError` for anything
    it cannot interpret.
    """

    def fail(reason):
        raise FileFormatError(f"{source} is not a usable JPL Horizons vector table: {reason}")

    lines = [line[1:].strip() if line.lstrip().startswith("#") else line.strip() for line in text.splitlines()]
    try:
        start = lines.index("$$SOE")
        stop = lines.index("$$EOE", start)
    except ValueError:
        fail("no $$SOE/$$EOE markers around the data")
    header = lines[:start]

    target = _header_value(header, "Target body name")
    if target is not None:
        target = target.split("{")[0].strip()
        if "(-95)" not in target and "TESS" not in target.upper():
            fail(f"its target is {target}, not TESS (-95)")

    centre = _header_value(header, "Center body name")
    if centre is None:
        fail("no 'Center body name' line in its header")
    match = re.search(r"\((-?\d+)\)", centre)
    if match is None or int(match.group(1)) not in _HORIZONS_CENTRES:
        fail(
            f"centre '{centre.split('{')[0].strip()}' is not one this reader can place "
            "(use the Solar System Barycenter (0), Sun (10), Earth (399), Moon (301) or "
            "Earth-Moon Barycenter (3))"
        )
    centre_id = int(match.group(1))

    units = _header_value(header, "Output units")
    if units is None:
        fail("no 'Output units' line in its header")
    unit_key = units.split()[0].upper() if units.split() else ""
    if unit_key not in _HORIZONS_UNITS:
        fail(f"output units '{units}' are not KM-S, KM-D or AU-D")
    scale = _HORIZONS_UNITS[unit_key]

    frame = _header_value(header, "Reference frame")
    plane = _header_value(header, "Reference plane") or ""
    if frame is None:
        fail("no 'Reference frame' line in its header")
    frame_text = f"{frame} {plane}".upper()
    if "BODY" in frame_text:
        fail(f"reference frame/plane '{frame} {plane}' is a body equator; use ICRF")
    ecliptic = "ECLIPTIC" in frame_text
    if not ecliptic and "ICRF" not in frame_text and "J2000" not in frame_text:
        fail(f"reference frame '{frame}' is not ICRF")

    columns = None
    for line in reversed(header):
        if "JDTDB" in line.upper():
            columns = [name.strip().upper() for name in line.split(",")]
            break
    rows = []
    for number, line in enumerate(lines[start + 1 : stop], start=start + 2):
        if not line:
            continue
        fields = [field.strip() for field in line.split(",")]
        try:
            float(fields[0])
        except ValueError:
            if "JDTDB" in fields[0].upper():
                columns = [name.upper() for name in fields]
                continue
            fail(f"line {number} is not a data row: {line[:60]!r}")
        rows.append((number, fields))
    if columns is None:
        fail("no column line (JDTDB, ..., X, Y, Z, ...)")
    try:
        index = [columns.index(name) for name in ("JDTDB", "X", "Y", "Z")]
    except ValueError:
        fail(f"its columns {', '.join(c for c in columns if c)} lack JDTDB, X, Y or Z")
    if len(rows) < 2:
        fail("fewer than two data rows between $$SOE and $$EOE")

    values = np.empty((len(rows), 4))
    for i, (number, fields) in enumerate(rows):
        try:
            values[i] = [float(fields[j]) for j in index]
        except (ValueError, IndexError):
            fail(f"line {number} does not have numeric JDTDB, X, Y, Z values")
    if not np.all(np.isfinite(values)):
        fail("it contains non-finite values")
    order = np.argsort(values[:, 0], kind="stable")
    values = values[order]
    if np.any(np.diff(values[:, 0]) <= 0):
        fail("it repeats a time")
    position = values[:, 1:] * scale
    if ecliptic:
        cos_e, sin_e = np.cos(_OBLIQUITY_J2000_RAD), np.sin(_OBLIQUITY_J2000_RAD)
        rotation = np.array([[1, 0, 0], [0, cos_e, -sin_e], [0, sin_e, cos_e]])
        position = position @ rotation.T
    return {
        "jd_tdb": values[:, 0],
        "position_km": position,
        "centre_id": centre_id,
        "centre_name": centre.split("{")[0].strip(),
        "target": target,
    }


@functools.lru_cache(maxsize=1)
def default_ephemeris() -> SpiceEphemeris:
    """The ephemeris used when none is given: SPICE, test kernels when they suffice."""
    return SpiceEphemeris("auto")


def load_ephemeris(ephemeris=None) -> Ephemeris:
    """Turn ``None``, an :class:`Ephemeris` or a Horizons table path into an :class:`Ephemeris`."""
    if ephemeris is None:
        return default_ephemeris()
    if isinstance(ephemeris, Ephemeris):
        return ephemeris
    if isinstance(ephemeris, str) and ephemeris in ("auto", "test", "mission"):
        return SpiceEphemeris(ephemeris)
    return HorizonsEphemeris(ephemeris)


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
def _sector_wcs(sector: int) -> dict:
    """The 16 CCD WCS of a sector (0-based full-image pixels), made by ``tesswcs``.

    The headers are cached per ``tesswcs`` version in the user cache directory,
    so only the first use of a sector pays for importing ``tesswcs``.
    """
    import json
    from importlib.metadata import version

    from astropy.io import fits
    from astropy.wcs import WCS

    from ._files import cache_dir

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
        from ._files import atomic_output

        try:
            with atomic_output(path, "w") as stream:
                json.dump(headers, stream)
        except (OSError, TessBackmlError) as exc:
            log.debug("could not cache the sector %d WCS: %s", sector, exc)
    wcs = {}
    for key, text in headers.items():
        camera, ccd = (int(part) for part in key.split("-"))
        wcs[camera, ccd] = WCS(fits.Header.fromstring(text))
        wcs[camera, ccd].pixel_shape = (FFI_SHAPE[1], FFI_SHAPE[0])
    return wcs


def _pixel_to_unit(wcs, row, column) -> np.ndarray:
    """Lines of sight of 1-based CCD (row, column) positions through a CCD's WCS."""
    image_row, image_column = ccd_to_image(row, column)
    ra, dec = wcs.all_pix2world(np.ravel(image_column), np.ravel(image_row), 0)
    return radec_to_unit(ra, dec).reshape(np.shape(row) + (3,))


@functools.lru_cache(maxsize=8)
def _camera_boresights(sector: int) -> dict:
    """Boresight (unit vector) of each camera: where its four CCDs' inner corners meet."""
    wcs = _sector_wcs(sector)
    # Outer edges of the science region's corner pixels, 1-based CCD coordinates.
    low_row, high_row = FIRST_SCIENCE_ROW - 0.5, FIRST_SCIENCE_ROW + SCIENCE_SIZE - 0.5
    low_col, high_col = FIRST_SCIENCE_COLUMN - 0.5, FIRST_SCIENCE_COLUMN + SCIENCE_SIZE - 0.5
    corner_rows = np.array([low_row, low_row, high_row, high_row])
    corner_cols = np.array([low_col, high_col, low_col, high_col])
    boresights = {}
    for camera in CAMERAS:
        corners = np.array([_pixel_to_unit(wcs[camera, ccd], corner_rows, corner_cols) for ccd in CCDS])
        centre = _normalize(corners.reshape(-1, 3).sum(axis=0))
        inner = corners[np.arange(len(CCDS)), np.argmax(corners @ centre, axis=1)]
        boresights[camera] = _normalize(inner.sum(axis=0))
    return boresights


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
        Unit vector of the camera boresight, where the inner corners of its four
        CCDs meet.
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
        return _sector_wcs(self.sector)[self.camera, ccd]

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


# --------------------------------------------------------------------------- angles
def angle_and_azimuth(body, line_of_sight, reference, dtype=np.float64):
    """Angle of bodies from lines of sight, and their azimuth around them.

    Parameters
    ----------
    body : array_like (nt, 3)
        Vectors from the spacecraft to the body (any length).
    line_of_sight : array_like (npix, 3)
        Unit vectors of the lines of sight (a boresight or pixels).
    reference : array_like (3,)
        Azimuth zero direction. For each line of sight it is projected onto the
        plane perpendicular to that line of sight, so the azimuth is continuous
        across pixels and equals the camera value at the boresight.
    dtype : numpy dtype
        Output type. With float32 the azimuth is computed in float32 (about
        1e-5 deg); the angle is always computed in float64, which keeps it
        exact to ~1e-6 deg even next to the line of sight.

    Returns
    -------
    angle, azimuth : ndarray (nt, npix)
        Degrees. ``angle`` in [0, 180]; ``azimuth`` in [0, 360), increasing from
        the reference toward ``line_of_sight x reference``.
    """
    body = np.atleast_2d(np.asarray(body, dtype=float))
    los = np.atleast_2d(np.asarray(line_of_sight, dtype=float))
    reference = np.asarray(reference, dtype=float)
    axis_x = _normalize(reference - (los @ reference)[:, None] * los)
    axis_y = np.cross(los, axis_x)
    unit = _normalize(body)
    # einsum beats BLAS for an inner dimension of 3.
    along = np.einsum("tk,pk->tp", unit, los)
    np.clip(along, -1.0, 1.0, out=along)
    angle = np.degrees(np.arccos(along, out=along), out=along).astype(dtype, copy=False)
    work = np.result_type(dtype, np.float32)
    # atan2(-y, -x) + 180 deg lands in [0, 360] with no wrapping pass over the data.
    minus_unit = (-unit).astype(work)
    x = np.einsum("tk,pk->tp", minus_unit, axis_x.astype(work))
    y = np.einsum("tk,pk->tp", minus_unit, axis_y.astype(work))
    azimuth = np.arctan2(y, x, out=y)
    azimuth *= work.type(180.0 / np.pi)
    azimuth += work.type(180.0)
    np.subtract(azimuth, 360.0, out=azimuth, where=azimuth >= 360.0)
    return angle, azimuth.astype(dtype, copy=False)


def angular_size(distance_km, radius_km) -> np.ndarray:
    """Angular diameter in degrees of a sphere of ``radius_km`` at ``distance_km``."""
    ratio = np.clip(np.asarray(radius_km, dtype=float) / np.asarray(distance_km, dtype=float), 0, 1)
    return np.degrees(2 * np.arcsin(ratio))


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


def iter_pixel_maps(sector, camera, ccd, row, column, times, ephemeris=None, chunk_size=64):
    """Yield per-pixel maps in chunks of times: ``(time_slice, maps)``.

    Memory stays bounded by ``chunk_size x npix`` whatever the number of times.
    See :func:`pixel_maps` for the arguments and the map keys.
    """
    geometry = CameraGeometry(sector, camera)
    _, ccd = validate_camera_ccd(camera, ccd)
    if ccd is None:
        raise TessBackmlError("a CCD (1-4) is needed for pixel maps")
    ephemeris = load_ephemeris(ephemeris)
    btjd = to_btjd(times)
    los = geometry.pixel_directions(ccd, row, column)
    grid_shape = los.shape[:-1]
    los = los.reshape(-1, 3)
    jd_spacecraft = geometry.spacecraft_time(btjd, ephemeris)
    vectors = ephemeris.body_vectors(jd_spacecraft)
    chunk_size = max(int(chunk_size), 1)
    for start in range(0, len(btjd), chunk_size):
        part = slice(start, min(start + chunk_size, len(btjd)))
        maps = {}
        for body in BODIES:
            vec = vectors.body(body)[part]
            angle, azimuth = angle_and_azimuth(vec, los, geometry.reference, dtype=np.float32)
            shape = (len(vec),) + grid_shape
            maps[f"{body}_angle"] = angle.reshape(shape)
            maps[f"{body}_azimuth"] = azimuth.reshape(shape)
            size = angular_size(np.linalg.norm(vec, axis=1), BODY_RADII_KM[body]).astype(np.float32)
            maps[f"{body}_angular_size"] = np.broadcast_to(
                size.reshape((-1,) + (1,) * len(grid_shape)), shape
            )
        yield part, maps


def pixel_maps(sector, camera, ccd, row, column, times, ephemeris=None, chunk_size=64) -> dict:
    """Earth and Moon angle, azimuth and angular size for every pixel and time.

    Parameters
    ----------
    sector, camera, ccd : int
        Where the pixels are.
    row, column : array_like
        1-based CCD coordinates of the pixels (any shape, broadcast together;
        fractional values such as bin centres are fine).
    times : array_like or astropy.time.Time
        FFI times, BTJD or JD (see :func:`to_btjd`).
    ephemeris : Ephemeris or str, optional
        As in :func:`camera_vectors`.
    chunk_size : int
        Times computed at once; bounds the working memory.

    Returns
    -------
    dict of ndarray
        Keys :data:`MAP_KEYS`, each float32 of shape ``(ntimes,) + grid shape``,
        in degrees. ``*_angle`` is the angle between the pixel's line of sight
        and the body; ``*_azimuth`` the body's azimuth around that line of sight
        (the camera convention, with the reference direction projected onto the
        pixel's plane); ``*_angular_size`` the body's angular diameter, the same
        for every pixel of a frame.
    """
    maps = None
    for part, chunk in iter_pixel_maps(sector, camera, ccd, row, column, times, ephemeris, chunk_size):
        if maps is None:
            ntimes = len(to_btjd(times))
            maps = {key: np.empty((ntimes,) + value.shape[1:], np.float32) for key, value in chunk.items()}
        for key, value in chunk.items():
            maps[key][part] = value
    return maps


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
