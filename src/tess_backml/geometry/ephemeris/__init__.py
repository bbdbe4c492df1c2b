"""Ephemerides of TESS: where the Earth and Moon are, seen from the spacecraft.

* :class:`Ephemeris` (``base``): the interface, spacecraft-to-Earth and -Moon
  vectors (km, ICRS axes) at times in TDB, with a clear error outside its span.
* :class:`SpiceEphemeris` (``spice``): SPICE kernels; the truncated test kernels
  that ``lkspacecraft`` ships cover Sector 4 and work offline.
* :class:`HorizonsEphemeris` (``horizons``): a JPL Horizons vector table of TESS,
  with Earth and Moon from astropy's built-in ephemeris;
  :class:`HorizonsDirectory` (``collection``): a directory of them, each time span
  read from the table that covers it;
  :class:`OnlineHorizons` (``online``): tables fetched from JPL Horizons with astroquery
  when times call for them, kept in the user cache.
* :class:`ShippedEphemeris` (``shipped``): the Horizons tables of Sectors 1-98 and
  103-122, shipped inside the package.

The default (:func:`default_ephemeris`) is the SPICE test kernels where they cover the
times (Sector 4), else the shipped tables, offline; ``TESS_BACKML_EPHEMERIS`` names
another default (a table or a directory of tables), and an explicit ephemeris wins.
"""

from __future__ import annotations

import functools
import os

from ...errors import TessBackmlError
from .base import BodyVectors, Ephemeris
from .collection import HorizonsDirectory
from .horizons import HorizonsEphemeris, parse_horizons_vectors
from .online import OnlineHorizons
from .shipped import FirstCovering, ShippedEphemeris, shipped_ephemeris
from .spice import SpiceEphemeris

#: Environment variable naming the default ephemeris: a Horizons table or a directory of them.
EPHEMERIS_ENVIRONMENT = "TESS_BACKML_EPHEMERIS"


@functools.lru_cache(maxsize=8)
def _cached(path: str) -> Ephemeris:
    return HorizonsDirectory(path) if os.path.isdir(path) else HorizonsEphemeris(path)


def default_ephemeris() -> Ephemeris:
    """The ephemeris used when none is given: the table or directory of tables that
    ``TESS_BACKML_EPHEMERIS`` names, else the SPICE test kernels where they cover the
    times and the shipped tables elsewhere (all offline)."""
    path = os.environ.get(EPHEMERIS_ENVIRONMENT)
    if path:
        return _cached(os.path.abspath(path))
    return _offline_default()


@functools.lru_cache(maxsize=1)
def _offline_default() -> FirstCovering:
    return FirstCovering([SpiceEphemeris("test"), shipped_ephemeris()])


@functools.lru_cache(maxsize=1)
def _online() -> OnlineHorizons:
    return OnlineHorizons()


def load_ephemeris(ephemeris=None) -> Ephemeris:
    """Turn ``None`` (the default), an :class:`Ephemeris`, ``"shipped"`` (the tables shipped
    with the package), ``"auto"``/``"test"``/``"mission"`` (SPICE kernels), ``"horizons"``
    (tables fetched from JPL Horizons and cached), a Horizons table or a directory of
    them into an :class:`Ephemeris`.

    Tables and directories are read once per process.
    """
    if ephemeris is None:
        return default_ephemeris()
    if isinstance(ephemeris, Ephemeris):
        return ephemeris
    if isinstance(ephemeris, str) and ephemeris in ("auto", "test", "mission"):
        return SpiceEphemeris(ephemeris)
    if isinstance(ephemeris, str) and ephemeris == "horizons":
        return _online()
    if isinstance(ephemeris, str) and ephemeris == "shipped":
        return shipped_ephemeris()
    path = os.fspath(ephemeris)
    if not os.path.exists(path):
        raise TessBackmlError(
            f"no ephemeris {path}: give a JPL Horizons table of TESS, a directory of them, 'shipped', 'horizons' or "
            "'test'/'mission'"
        )
    return _cached(os.path.abspath(path))


__all__ = [
    "BodyVectors",
    "Ephemeris",
    "HorizonsDirectory",
    "HorizonsEphemeris",
    "OnlineHorizons",
    "ShippedEphemeris",
    "SpiceEphemeris",
    "default_ephemeris",
    "load_ephemeris",
    "parse_horizons_vectors",
]
