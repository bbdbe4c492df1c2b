"""The ephemeris of TESS shipped inside the package: real geometry for every sector the
JPL Horizons tables cover, offline and with no option.

The file (``geometry/data/tess_ephemeris.npz``) holds, at the rows of the Horizons
tables it was built from (hourly; half-hourly in 2018), the vectors from TESS to the
Earth and to the Moon and TESS's barycentric position (km, ICRS, float32: 0.03 km at
the Earth's distance, well under an arcsecond; 9 km, 30 us of light time, from the
barycentre), which table each row comes from
(where tables overlap, the latest: see :func:`build_shipped_ephemeris`) and the
tables' names. Each table's stretch of rows is its own spline segment. The Earth and
Moon were placed, at the rows, as the Horizons reader places them (astropy's built-in
ephemeris); storing them makes reading the geometry a spline evaluation, with no
ephemeris computed at run time. Between rows the vectors are a cubic spline, as :class:`~tess_backml.geometry.ephemeris.horizons.HorizonsEphemeris`
interpolates a table, so the shipped ephemeris gives what the tables give (tested to
well under 0.01 deg of the Earth and Moon directions over every table).

Rebuild it from the tables (run from the repository, with the shared data beside it)::

    python -m tess_backml.geometry.ephemeris.shipped ../shared/data/ephemeris ../shared/data/ephemeris-2026
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np

from ...constants import BTJD_OFFSET
from ...errors import EphemerisRangeError, FileFormatError, TessBackmlError
from .base import BodyVectors, Ephemeris

#: The shipped file, inside the package.
SHIPPED_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "tess_ephemeris.npz")
#: Format version of the shipped file.
SHIPPED_VERSION = 1
#: Rows further apart than this (days) start a new segment: no spline across a gap.
GAP_DAYS = 0.5


class ShippedEphemeris(Ephemeris):
    """TESS's ephemeris from the tables shipped with the package (see the module's notes).

    Parameters
    ----------
    path : str, optional
        Another file written by :func:`build_shipped_ephemeris`.
    """

    how_to_extend = ("Give --ephemeris horizons (Python: ephemeris='horizons'; JPL Horizons, online, cached) or "
                     "--ephemeris FILE, a JPL Horizons vector table of TESS covering these times.")

    def __init__(self, path=None):
        from scipy.interpolate import CubicSpline

        self.path = str(path or SHIPPED_FILE)
        try:
            with np.load(self.path, allow_pickle=False) as arrays:
                if int(arrays["version"]) != SHIPPED_VERSION:
                    raise FileFormatError(f"{self.path}: shipped ephemeris version {int(arrays['version'])}, "
                                          f"this tess-backml reads {SHIPPED_VERSION}")
                jd, source = arrays["jd_tdb"], arrays["source_index"]
                # one spline for the three vectors: Earth and Moon from TESS, TESS from the barycentre
                position = np.hstack([arrays["earth_km"], arrays["moon_km"], arrays["spacecraft_ssb_km"]]).astype(float)
                self.sources = [str(name) for name in arrays["sources"]]
        except (OSError, KeyError, ValueError) as exc:
            raise TessBackmlError(f"cannot read the shipped ephemeris {self.path}: {exc}") from None
        # a segment per table and per stretch without gaps: no spline across a jump between tables
        split = (np.diff(jd) > GAP_DAYS) | (np.diff(source) != 0)
        bounds = np.r_[0, np.flatnonzero(split) + 1, jd.size]
        self.segments = []
        for first, stop in zip(bounds[:-1], bounds[1:]):
            self.segments.append((float(jd[first]), float(jd[stop - 1]),
                                  CubicSpline(jd[first:stop], position[first:stop], axis=0), self.sources[source[first]]))
        self.spans = _joined([(start, stop) for start, stop, _, _ in self.segments])

    def __repr__(self):
        return f"ShippedEphemeris({self.path!r})" if self.path != SHIPPED_FILE else "ShippedEphemeris()"

    def __str__(self):
        return "the ephemeris shipped with tess-backml"

    def coverage(self) -> str:
        """The BTJD spans covered, for messages."""
        return ", ".join(f"{start - BTJD_OFFSET:.1f}-{stop - BTJD_OFFSET:.1f}" for start, stop in self.spans)

    @property
    def jd_range(self):
        return self.spans[0][0], self.spans[-1][1]

    def source_of(self, jd_tdb) -> list:
        """The name of the Horizons table each time's position comes from."""
        jd = np.atleast_1d(np.asarray(jd_tdb, float))
        return [next((name for start, stop, _, name in self.segments if start <= t <= stop), None) for t in jd]

    def _span_for(self, jd):
        for start, stop in self.spans:
            if np.all((jd >= start) & (jd <= stop)):
                return (start, stop), str(self)
        raise EphemerisRangeError(
            f"times BTJD {jd.min() - BTJD_OFFSET:.3f} to {jd.max() - BTJD_OFFSET:.3f} are outside {self} "
            f"(it covers BTJD {self.coverage()}: Sectors 1-98 and 103-122). {self.how_to_extend}"
        )

    def _positions(self, jd_tdb):
        jd = np.asarray(jd_tdb, dtype=float)
        values = np.full((jd.size, 9), np.nan)
        for start, stop, spline, _ in self.segments:
            here = np.isnan(values[:, 0]) & (jd >= start) & (jd <= stop)
            if here.any():
                values[here] = spline(jd[here])
        return BodyVectors(jd_tdb=jd, earth=values[:, 0:3], moon=values[:, 3:6], spacecraft_ssb=values[:, 6:9])


def _joined(spans) -> list:
    """Spans that touch or overlap, merged."""
    merged = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


class FirstCovering(Ephemeris):
    """The first of several ephemerides that covers all the times asked for: the
    default is the SPICE test kernels that ``lkspacecraft`` ships (Sector 4, the
    simulator's geometry), then the shipped tables."""

    def __init__(self, members):
        self.members = list(members)
        self.how_to_extend = self.members[-1].how_to_extend

    def __repr__(self):
        return f"FirstCovering({self.members!r})"

    def __str__(self):
        return " or ".join(str(member) for member in self.members)

    @property
    def jd_range(self):
        spans = [member.jd_range for member in self.members]
        return min(span[0] for span in spans), max(span[1] for span in spans)

    def _member(self, jd):
        for member in self.members[:-1]:
            if member.covers(jd):
                return member
        return self.members[-1]

    def _span_for(self, jd):
        return self._member(jd)._span_for(jd)

    def _positions(self, jd_tdb):
        return self._member(jd_tdb)._positions(jd_tdb)


@functools.lru_cache(maxsize=1)
def shipped_ephemeris() -> ShippedEphemeris:
    """The shipped ephemeris, read once per process."""
    return ShippedEphemeris()


def build_shipped_ephemeris(paths, out=SHIPPED_FILE) -> str:
    """Write the shipped file from JPL Horizons tables or directories of them.

    Every table's rows are turned into TESS's barycentric position. Where tables
    overlap, the latest by name (the tables are named for the day they were made) wins:
    it knows the orbit better, and overlapping tables differ by up to 1.4 deg of the
    Earth's direction where the older one predicted a year ahead. An older table keeps
    its rows up to the first row of the next table, so that the segments meet.
    """
    from .collection import HorizonsDirectory
    from .horizons import HorizonsEphemeris

    tables = []
    for path in paths:
        tables += HorizonsDirectory(path).tables if os.path.isdir(path) else [HorizonsEphemeris(path)]
    tables.sort(key=lambda table: os.path.basename(table.path))
    jd, position, source = [], [], []
    for index, table in enumerate(tables):
        later = [t.jd_range for t in tables[index + 1 :]]
        keep = np.ones(table.jd_tdb.size, bool)
        for begin, end in later:
            # rows inside a later table go, but the first of them stays, where the segments meet
            after = table.jd_tdb[table.jd_tdb >= begin]
            if after.size:
                keep &= ~((table.jd_tdb > after[0]) & (table.jd_tdb <= end))
        jd.append(table.jd_tdb[keep])
        vectors = table._positions(table.jd_tdb[keep])
        position.append(np.hstack([vectors.earth, vectors.moon, vectors.spacecraft_ssb]).astype(np.float32))
        source.append(np.full(int(keep.sum()), index, np.int16))
    order = np.argsort(np.concatenate(jd), kind="stable")
    tmp = f"{out}.part.npz"
    position = np.concatenate(position)[order]
    np.savez_compressed(tmp, version=SHIPPED_VERSION, jd_tdb=np.concatenate(jd)[order], earth_km=position[:, 0:3],
                        moon_km=position[:, 3:6], spacecraft_ssb_km=position[:, 6:9],
                        source_index=np.concatenate(source)[order],
                        sources=np.array([os.path.basename(t.path) for t in tables]))
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m tess_backml.geometry.ephemeris.shipped TABLE_OR_DIRECTORY...")
    written = build_shipped_ephemeris(sys.argv[1:])
    built = ShippedEphemeris(written)
    print(f"{written}: {os.path.getsize(written) / 1e6:.1f} MB, BTJD {built.coverage()}")
