"""A directory of JPL Horizons tables, used as one ephemeris."""

from __future__ import annotations

import logging
import os

import numpy as np

from ...constants import BTJD_OFFSET
from ...errors import EphemerisRangeError, FileFormatError, TessBackmlError
from .base import Ephemeris
from .horizons import HorizonsEphemeris

log = logging.getLogger(__name__)

#: File name endings of Horizons tables in a directory.
TABLE_SUFFIXES = (".csv", ".txt")


class HorizonsDirectory(Ephemeris):
    """Every JPL Horizons table of TESS in a directory: the one that covers the requested
    times is used (tables may overlap: the last by name that covers them all, since
    tables are named for the day they were made and a later one knows the orbit
    better; in the shared tables' overlaps they differ by up to 1.4 deg of the
    Earth's direction).

    Parameters
    ----------
    path : str or path-like
        A directory of Horizons vector tables (``*.csv`` or ``*.txt``); other files in
        it are ignored.
    """

    how_to_extend = "Add a Horizons table of TESS covering these times to the directory."

    def __init__(self, path):
        self.path = str(path)
        try:
            names = sorted(os.listdir(self.path))
        except OSError as exc:
            raise TessBackmlError(f"cannot read the ephemeris directory {self.path}: {exc.strerror}") from None
        self.tables = []
        for name in names:
            if not name.lower().endswith(TABLE_SUFFIXES):
                continue
            try:
                self.tables.append(HorizonsEphemeris(os.path.join(self.path, name)))
            except FileFormatError as exc:
                log.info("%s: skipped (%s)", name, exc)
        if not self.tables:
            raise TessBackmlError(f"the ephemeris directory {self.path} holds no JPL Horizons table of TESS")

    def __repr__(self):
        return f"HorizonsDirectory({self.path!r})"

    def __str__(self):
        return f"the Horizons tables in {self.path}"

    def coverage(self) -> str:
        """The BTJD spans the tables cover, for messages."""
        spans = sorted(table.btjd_range for table in self.tables)
        return ", ".join(f"{start:.1f}-{stop:.1f}" for start, stop in spans)

    def table_for(self, jd_tdb) -> HorizonsEphemeris:
        """The last table by name that covers all of ``jd_tdb`` (JD, TDB)."""
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=float))
        for table in reversed(self.tables):
            if table.covers(jd):
                return table
        raise EphemerisRangeError(
            f"times BTJD {jd.min() - BTJD_OFFSET:.3f} to {jd.max() - BTJD_OFFSET:.3f} are covered by no single "
            f"table in {self.path} (its tables cover BTJD {self.coverage()}). {self.how_to_extend}"
        )

    @property
    def jd_range(self):
        return min(t.jd_range[0] for t in self.tables), max(t.jd_range[1] for t in self.tables)

    def _span_for(self, jd):
        table = self.table_for(jd)
        return table.jd_range, str(table)

    def _positions(self, jd_tdb):
        return self.table_for(jd_tdb)._positions(jd_tdb)
