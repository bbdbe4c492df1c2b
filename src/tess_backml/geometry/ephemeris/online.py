"""JPL Horizons tables of TESS fetched on demand (astroquery) and kept in the user cache."""

from __future__ import annotations

import logging
import math

import numpy as np

from ...constants import BTJD_OFFSET
from ...errors import EphemerisRangeError, TessBackmlError
from .base import Ephemeris
from .collection import HorizonsDirectory
from .horizons import parse_horizons_vectors

log = logging.getLogger(__name__)

#: Days fetched beyond the requested times, and the table step.
MARGIN_DAYS = 1.0
STEP = "60m"


def download_horizons_text(start_jd: float, stop_jd: float, step: str = STEP) -> str:
    """The text of a JPL Horizons vector table of TESS (target -95) from the Earth's
    centre, ICRF equatorial, AU and days, CSV, between two TDB Julian dates."""
    from astropy.time import Time
    from astroquery.jplhorizons import Horizons

    start, stop = Time([start_jd, stop_jd], format="jd", scale="tdb").iso
    query = Horizons(id="-95", location="500@399", epochs={"start": start, "stop": stop, "step": step})
    response = query.vectors_async(refplane="earth", aberrations="geometric", cache=False)
    return response.text


class OnlineHorizons(Ephemeris):
    """Horizons tables fetched with astroquery when times call for them (whole days
    around the request, a day's margin), kept in ``directory`` (default the user cache)
    and reused offline afterwards.

    Parameters
    ----------
    directory : str or path-like, optional
        Where the tables go.
    download : callable, optional
        ``download(start_jd, stop_jd) -> text``; default :func:`download_horizons_text`.
    """

    how_to_extend = "Check the internet connection, or pass a Horizons table you downloaded."

    def __init__(self, directory=None, download=None):
        from ..._files import cache_dir

        self.directory = str(directory) if directory is not None else str(cache_dir("ephemeris"))
        self.download = download or download_horizons_text
        self._directory = None  # the cached tables, read once (again after a fetch)

    def __repr__(self):
        return f"OnlineHorizons({self.directory!r})"

    def __str__(self):
        return f"JPL Horizons (tables cached in {self.directory})"

    def _tables(self):
        if self._directory is None:
            try:
                self._directory = HorizonsDirectory(self.directory)
            except TessBackmlError:
                return None  # nothing cached yet
        return self._directory

    def table_for(self, jd):
        jd = np.atleast_1d(np.asarray(jd, dtype=float))
        tables = self._tables()
        if tables is not None:
            try:
                return tables.table_for(jd)
            except EphemerisRangeError:
                pass
        return self._fetch(math.floor(jd.min() - MARGIN_DAYS), math.ceil(jd.max() + MARGIN_DAYS))

    def _fetch(self, start_jd, stop_jd):
        import os

        from ..._files import atomic_output
        from .horizons import HorizonsEphemeris

        log.info("fetching a Horizons table of TESS for BTJD %.1f-%.1f", start_jd - BTJD_OFFSET, stop_jd - BTJD_OFFSET)
        try:
            text = self.download(start_jd, stop_jd)
        except Exception as exc:  # network errors of every kind: one clear message
            raise EphemerisRangeError(
                f"could not fetch a JPL Horizons table of TESS ({str(exc).strip() or type(exc).__name__}). "
                f"{self.how_to_extend}"
            ) from None
        parse_horizons_vectors(text, source="the Horizons response")  # refuse an error page before keeping it
        path = os.path.join(self.directory, f"tess_horizons_{start_jd - BTJD_OFFSET:.0f}_{stop_jd - BTJD_OFFSET:.0f}.csv")
        os.makedirs(self.directory, exist_ok=True)
        with atomic_output(path, "w") as stream:
            stream.write(text)
        self._directory = None
        return HorizonsEphemeris(path)

    @property
    def jd_range(self):
        tables = self._tables()
        return tables.jd_range if tables is not None else (-np.inf, np.inf)

    def _span_for(self, jd):
        table = self.table_for(jd)
        return table.jd_range, str(table)

    def _positions(self, jd_tdb):
        return self.table_for(jd_tdb)._positions(jd_tdb)
