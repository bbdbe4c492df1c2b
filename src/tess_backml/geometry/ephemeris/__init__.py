"""Ephemerides of TESS: where the Earth and Moon are, seen from the spacecraft.

* :class:`Ephemeris` (``base``): the interface, spacecraft-to-Earth and -Moon
  vectors (km, ICRS axes) at times in TDB, with a clear error outside its span.
* :class:`SpiceEphemeris` (``spice``): SPICE kernels; the truncated test kernels
  that ``lkspacecraft`` ships cover Sector 4 and work offline.
* :class:`HorizonsEphemeris` (``horizons``): a JPL Horizons vector table of TESS,
  with Earth and Moon from astropy's built-in ephemeris.
"""

from __future__ import annotations

import functools

from .base import BodyVectors, Ephemeris
from .horizons import HorizonsEphemeris, parse_horizons_vectors
from .spice import SpiceEphemeris


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


__all__ = [
    "BodyVectors",
    "Ephemeris",
    "HorizonsEphemeris",
    "SpiceEphemeris",
    "default_ephemeris",
    "load_ephemeris",
    "parse_horizons_vectors",
]
