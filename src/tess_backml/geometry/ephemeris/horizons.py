"""TESS ephemeris from a JPL Horizons vector table, and the table's parser."""

from __future__ import annotations

import re

import numpy as np
from astropy.time import Time

from ...constants import AU_KM, BODIES
from ...errors import FileFormatError, TessBackmlError
from .base import BodyVectors, Ephemeris

# Obliquity of the ecliptic at J2000 (IAU 2006), for Horizons tables in ecliptic axes.
_OBLIQUITY_J2000_RAD = np.deg2rad(84381.406 / 3600.0)

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

    # Horizons' later layout starts every header line, $$SOE included, with "# " and
    # writes no $$EOE: the data then run to the end of the file
    lines = [line.lstrip()[1:].strip() if line.lstrip().startswith("#") else line.strip() for line in text.splitlines()]
    try:
        start = lines.index("$$SOE")
    except ValueError:
        fail("no $$SOE marker before the data")
    later_layout = text.splitlines()[start].lstrip().startswith("#")
    if "$$EOE" in lines[start:]:
        stop = lines.index("$$EOE", start)
    elif later_layout:
        stop = len(lines)
    else:  # the first layout always ends its data with $$EOE: without it, the file was cut short
        fail("no $$EOE after the data (truncated?)")
    header = _parse_header(lines[:start], fail)
    values = _parse_rows(lines, start, stop, fail)
    position = values[:, 1:] * header["scale"]
    if header["ecliptic"]:
        cos_e, sin_e = np.cos(_OBLIQUITY_J2000_RAD), np.sin(_OBLIQUITY_J2000_RAD)
        rotation = np.array([[1, 0, 0], [0, cos_e, -sin_e], [0, sin_e, cos_e]])
        position = position @ rotation.T
    return {
        "jd_tdb": values[:, 0],
        "position_km": position,
        "centre_id": header["centre_id"],
        "centre_name": header["centre_name"],
        "target": header["target"],
    }


def _parse_header(header, fail) -> dict:
    """Target, centre, units and frame of a Horizons table, from the lines before ``$$SOE``."""
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

    units = _header_value(header, "Output units")
    if units is None:
        fail("no 'Output units' line in its header")
    unit_key = units.split()[0].upper() if units.split() else ""
    if unit_key not in _HORIZONS_UNITS:
        fail(f"output units '{units}' are not KM-S, KM-D or AU-D")

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
    return {
        "target": target,
        "centre_id": int(match.group(1)),
        "centre_name": centre.split("{")[0].strip(),
        "scale": _HORIZONS_UNITS[unit_key],
        "ecliptic": ecliptic,
    }


def _parse_rows(lines, start, stop, fail) -> np.ndarray:
    """(n, 4) JDTDB, X, Y, Z values between ``$$SOE`` and ``$$EOE``, sorted in time.

    The column line is the last line naming JDTDB (in the header or among the data)
    that has as many fields as the rows: the later layout repeats a shorter column
    line (without VX, VY, VZ) above rows that hold them."""
    candidates = [[name.strip().upper() for name in line.split(",")] for line in lines[:start] if "JDTDB" in line.upper()]
    rows = []
    for number, line in enumerate(lines[start + 1 : stop], start=start + 2):
        if not line:
            continue
        fields = [field.strip() for field in line.split(",")]
        try:
            float(fields[0])
        except ValueError:
            if "JDTDB" in fields[0].upper():
                candidates.append([name.upper() for name in fields])
                continue
            fail(f"line {number} is not a data row: {line[:60]!r}")
        rows.append((number, fields))
    if not candidates:
        fail("no column line (JDTDB, ..., X, Y, Z, ...)")
    width = len(rows[0][1]) if rows else 0
    columns = next((c for c in reversed(candidates) if len(c) == width), candidates[-1])
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
    values = values[np.argsort(values[:, 0], kind="stable")]
    if np.any(np.diff(values[:, 0]) <= 0):
        fail("it repeats a time")
    return values
