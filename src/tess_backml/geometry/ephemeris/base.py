"""The ephemeris interface: spacecraft-to-body vectors at any time it covers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from astropy.time import Time

from ...constants import BTJD_OFFSET, SECONDS_PER_DAY, SPEED_OF_LIGHT_KM_S
from ...errors import EphemerisRangeError, TessBackmlError


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
        """Whether every time of ``jd_tdb`` is covered: inside the one span that must
        hold them (:meth:`_span_for`), not merely between the first and last time an
        ephemeris with gaps covers."""
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=float))
        try:
            (start, stop), _ = self._span_for(jd)
        except EphemerisRangeError:
            return False
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
