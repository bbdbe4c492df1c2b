"""When scattered light will hit a sky position: per sector, before anyone opens a pixel.

:func:`forecast` finds the sectors, cameras, CCDs and pixels that observe a position
(``tesswcs``' archival WCS, or its predicted WCS for sectors without one), evaluates a
model of the scattered light (the default model) at that pixel through each sector
from the geometry, with its uncertainty band, and cuts the sector into episodes:

* an **episode** is a run of cadences where the forecast's upper band (SL plus
  :data:`BAND_SIGMAS` times its error) reaches the threshold, widened by
  :data:`EPISODE_PADDING_HOURS` (before, after); the threshold is by default
  :data:`RELATIVE_THRESHOLD` of the sector's forecast peak, or a level in e-/s per
  pixel. The model knows when the light comes better than how much, so a low share
  and the band catch the real episodes its central value misses (a faint tail after
  the bright part, or an episode whose real peak is far below the forecast's). The
  rule was chosen on the real series (``benchmarks/bench_forecast.py``: among a grid of
  shares, bands and paddings, the one that covers 90% of every series' real episode
  cadences, each series' cadences above 10% of its own peak, with the best mean
  precision); its held-out figures come from making that choice inside
  leave-one-sector-out folds;
* a sector's forecast runs :data:`END_MARGIN_DAYS` past the end ``tesswcs``' pointing
  table gives, where real data often still run;
* the **stray-light windows** are the cadences when the Earth or the Moon is above the
  sunshade (camera angle below :data:`~tess_backml.constants.SUNSHADE_CUTOFF_DEG`), the
  geometry SPOC's stray-light flags (quality values 2048 and 4096) follow.

Times where the model extrapolates carry ``outside_training`` (the model predicts
nothing there, with an error at least as large as the bright light it learnt).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .constants import BTJD_OFFSET, SUNSHADE_CUTOFF_DEG, on_science_pixels
from .errors import TessBackmlError

#: Default episode threshold: this share of the sector's forecast peak (chosen on the
#: real series, see the module's docstring).
RELATIVE_THRESHOLD = 0.02
#: A cadence may be hit where the forecast plus this many errors reaches the threshold.
BAND_SIGMAS = 1.0
#: Episodes are widened by this much before and after (hours).
EPISODE_PADDING_HOURS = (0.0, 0.0)
#: Minutes between the forecast's cadences.
FORECAST_MINUTES = 30.0
#: The forecast runs this long past the sector's end in ``tesswcs``' pointing table
#: (days): the table gives whole days, and real sectors' data run up to 0.8 d past its
#: end (Sectors 1 and 5), while none of the real series starts before its start.
END_MARGIN_DAYS = 1.0
#: A camera sees at most this far from its boresight (deg): half the diagonal of its
#: 24 x 24 deg field, with a margin; only cameras this near are asked for pixels.
CAMERA_REACH_DEG = 18.0


@dataclass
class SectorForecast:
    """The forecast at one place of one sector.

    Attributes
    ----------
    sector, camera, ccd : int
    row, column : float
        1-based CCD coordinates of the position.
    time, sl, error : ndarray
        BTJD, and the forecast SL and its error (e-/s per pixel).
    outside_training, stray_light : ndarray of bool
        Times where the model extrapolates; times in a stray-light window.
    threshold : float
        The episode threshold used (e-/s per pixel).
    peak : float
        The forecast's highest SL within the sector's span in the pointing table (the
        default threshold is :data:`RELATIVE_THRESHOLD` of it).
    episodes : list of dict
        ``start``, ``end``, ``peak_time``, ``peak_sl``, ``orbit`` (1 or 2) of each episode.
    """

    sector: int
    camera: int
    ccd: int
    row: float
    column: float
    time: np.ndarray
    sl: np.ndarray
    error: np.ndarray
    outside_training: np.ndarray
    stray_light: np.ndarray
    threshold: float
    peak: float
    episodes: list = field(default_factory=list)

    @property
    def in_episode(self) -> np.ndarray:
        """True at the cadences inside an episode."""
        return episode_mask(self.time, self.episodes)

    @property
    def affected_share(self) -> float:
        """The share of the sector's cadences inside an episode."""
        return float(self.in_episode.mean()) if self.time.size else 0.0

    def windows(self, mask) -> list:
        """(start, end) BTJD of the runs of True in ``mask``."""
        return [(float(self.time[a]), float(self.time[b - 1])) for a, b in _runs(mask)]


@dataclass
class Forecast:
    """A forecast of every sector that observes a position (see :func:`forecast`)."""

    ra: float
    dec: float
    sectors: list
    skipped: list = field(default_factory=list)

    def __repr__(self):
        return (f"Forecast(RA {self.ra:.4f}, Dec {self.dec:.4f}: {len(self.sectors)} sectors observe it, "
                f"{sum(len(s.episodes) for s in self.sectors)} episodes)")

    def episodes_table(self):
        """One row per episode: sector, camera, CCD, orbit, start, end, peak time and SL."""
        from astropy.table import Table

        names = ("sector", "camera", "ccd", "orbit", "start", "end", "peak_time", "peak_sl")
        rows = [(s.sector, s.camera, s.ccd, e["orbit"], e["start"], e["end"], e["peak_time"], e["peak_sl"])
                for s in self.sectors for e in s.episodes]
        return Table(rows=rows or None, names=names, dtype=(int, int, int, int, float, float, float, float))

    def to_table(self):
        """One row per forecast cadence of every sector (the CSV's columns)."""
        from astropy.table import Table, vstack

        parts = [Table({"sector": np.full(s.time.size, s.sector), "camera": np.full(s.time.size, s.camera),
                        "ccd": np.full(s.time.size, s.ccd), "row": np.full(s.time.size, s.row),
                        "column": np.full(s.time.size, s.column), "btjd": s.time, "sl": s.sl, "sl_err": s.error,
                        "in_episode": s.in_episode, "stray_light": s.stray_light,
                        "outside_training": s.outside_training}) for s in self.sectors]
        return vstack(parts) if parts else Table()

    def write_csv(self, path) -> str:
        """Write :meth:`to_table` as CSV (atomically: no half-written file)."""
        import os

        tmp = f"{path}.part"
        self.to_table().write(tmp, format="ascii.csv", overwrite=True)
        os.replace(tmp, path)
        return str(path)

    def plot(self, path=None):
        """One panel per sector: the forecast SL and its band against time, the episodes
        shaded, the stray-light windows marked (see :func:`tess_backml.plotting.plot_forecast`)."""
        from .plotting import plot_forecast

        return plot_forecast(self, path)


def observing(ra: float, dec: float, sectors) -> list:
    """(sector, camera, ccd, row, column) of every sector in ``sectors`` that observes the
    position on a science pixel (1-based CCD coordinates)."""
    from astropy.coordinates import SkyCoord

    from .geometry import CameraGeometry, radec_to_unit

    target = radec_to_unit(ra, dec)
    sky = SkyCoord(ra, dec, unit="deg")
    found = []
    for sector in sectors:
        for camera in range(1, 5):
            geometry = CameraGeometry(sector, camera)
            if np.degrees(np.arccos(np.clip(geometry.boresight @ target, -1, 1))) > CAMERA_REACH_DEG:
                continue
            for ccd in range(1, 5):
                x, y = geometry.wcs(ccd).world_to_pixel(sky)
                row, column = float(y) + 1, float(x) + 1
                if on_science_pixels(row, column):
                    found.append((sector, camera, ccd, row, column))
    return found


def forecast(ra: float, dec: float, sectors=None, model="default", ephemeris=None, threshold=None,
             progress: bool = False) -> Forecast:
    """Forecast the scattered light at a sky position in every sector that observes it.

    Parameters
    ----------
    ra, dec : float
        ICRS degrees.
    sectors : iterable of int, optional
        Default: every sector the ephemeris covers (with no ephemeris given, the
        sectors of the shipped one: 1-98 and 103-122).
    model : str
        A real-series model file, or ``"default"``.
    ephemeris : optional
        As :func:`tess_backml.geometry.load_ephemeris`.
    threshold : float, optional
        Episode threshold in e-/s per pixel; default :data:`RELATIVE_THRESHOLD` of each
        sector's forecast peak.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Forecast
    """
    from tqdm.auto import tqdm

    from .geometry import load_ephemeris, sector_time_range, valid_sectors

    ra, dec = _check_position(ra, dec)
    ephemeris = load_ephemeris(ephemeris)
    known = {int(s) for s in valid_sectors()}
    asked = sorted(known) if sectors is None else sorted(int(s) for s in sectors)
    unknown = [s for s in asked if s not in known]
    if unknown:
        raise TessBackmlError(f"sector(s) {', '.join(map(str, unknown))} have no pointing (known: 1-{max(known)})")
    covered, skipped = [], []
    for sector in asked:
        start, end = sector_time_range(sector)
        (covered if ephemeris.covers(np.array([start, end]) + 2457000.0) else skipped).append(sector)
    if sectors is not None and skipped:
        raise TessBackmlError(f"the ephemeris ({ephemeris}) does not cover sector(s) {', '.join(map(str, skipped))}: "
                              f"{ephemeris.how_to_extend}")
    places = observing(ra, dec, covered)
    if not places:
        raise TessBackmlError(f"no sector among {_span_text(covered)} observes RA {ra:.4f} Dec {dec:.4f} on a science pixel")
    out = []
    for place in tqdm(places, desc="forecast", unit="sector", disable=not progress):
        out.append(sector_forecast(*place, model=model, ephemeris=ephemeris, threshold=threshold))
    return Forecast(ra, dec, out, skipped)


def sector_forecast(sector, camera, ccd, row, column, model="default", ephemeris=None, threshold=None) -> SectorForecast:
    """The :class:`SectorForecast` at one place (1-based CCD ``row``, ``column``)."""
    from .corrector import OUTSIDE_TRAINING, ScatterLightCorrector
    from .geometry import camera_vectors, load_ephemeris, sector_time_range

    ephemeris = load_ephemeris(ephemeris)  # once, for the span, the model and the vectors
    start, end = sector_time_range(sector)
    time = np.arange(start, forecast_stop(end, ephemeris), FORECAST_MINUTES / 1440.0)
    corrector = ScatterLightCorrector(sector, camera, ccd, model=model, ephemeris=ephemeris)
    sl, error = corrector.evaluate_scatterlight_model(np.array([row]), np.array([column]), time, method="model")
    sl, error = np.nan_to_num(sl[:, 0, 0].astype(float)), np.nan_to_num(error[:, 0, 0].astype(float))
    outside = (corrector.flags & OUTSIDE_TRAINING) != 0
    vectors = camera_vectors(sector, camera, times=time, ephemeris=ephemeris)
    stray = np.zeros(time.size, bool)
    for body, cutoff in SUNSHADE_CUTOFF_DEG.items():
        stray |= np.asarray(vectors[f"{body.capitalize()}_Camera_Angle"]) < cutoff
    # the peak within the table's span: the margin's geometry may already be the next pointing's
    peak = float(np.max(sl[time <= end], initial=0.0))
    level = float(threshold) if threshold is not None else RELATIVE_THRESHOLD * peak
    result = SectorForecast(sector, camera, ccd, row, column, time, sl, error, outside, stray, level, peak)
    result.episodes = episodes(time, sl, level, orbits_by_perigee(time, np.asarray(vectors["Earth_Distance"])), error=error)
    return result


def forecast_stop(end, ephemeris=None) -> float:
    """The last BTJD of a sector's forecast: :data:`END_MARGIN_DAYS` after the pointing
    table's ``end`` where the ephemeris covers it, else ``end``."""
    from .geometry import load_ephemeris

    later = end + END_MARGIN_DAYS
    return later if load_ephemeris(ephemeris).covers(np.array([end, later]) + BTJD_OFFSET) else end


def orbits_by_perigee(time, earth_distance) -> np.ndarray:
    """1 before the perigee in the middle half of the sector (its nearest approach to
    the Earth), 2 after it."""
    quarter = time.size // 4
    perigee = quarter + int(np.argmin(earth_distance[quarter : time.size - quarter])) if quarter else 0
    return np.where(np.arange(time.size) <= perigee, 1, 2)


def episodes(time, sl, threshold, orbits=None, error=None, sigmas: float = BAND_SIGMAS,
             padding_hours=EPISODE_PADDING_HOURS) -> list:
    """The episodes of a forecast, with their peak and orbit.

    Parameters
    ----------
    time, sl : ndarray
        BTJD and the forecast SL (e-/s per pixel) at evenly spaced cadences.
    threshold : float
        The level (e-/s per pixel) the upper band must reach; none at or below zero.
    orbits : ndarray of int, optional
        1 or 2 per cadence (default: all 1).
    error : ndarray, optional
        The forecast's error; the upper band is ``sl + sigmas * error`` (default: no band).
    sigmas : float
        Width of the band in errors.
    padding_hours : float or (float, float)
        The widening of every episode, before and after it (one number: both sides).

    Returns
    -------
    list of dict
        ``start``, ``end``, ``peak_time``, ``peak_sl`` (of ``sl``) and ``orbit`` (of the peak).
    """
    if threshold <= 0 or time.size == 0:
        return []
    orbits = np.ones(time.size, int) if orbits is None else orbits
    upper = sl if error is None else sl + sigmas * np.asarray(error)
    hit = upper >= threshold
    step = float(np.median(np.diff(time))) if time.size > 1 else 1.0
    before, after = _before_after(padding_hours)
    hit = _widened(hit, round(before / 24.0 / step), round(after / 24.0 / step))
    found = []
    for a, b in _runs(hit):
        peak = a + int(np.argmax(sl[a:b]))
        found.append({"start": float(time[a]), "end": float(time[b - 1]), "peak_time": float(time[peak]),
                      "peak_sl": float(sl[peak]), "orbit": int(orbits[peak])})
    return found


def _before_after(padding_hours) -> tuple:
    """Padding (hours) before and after an episode, from one number or a pair."""
    return (padding_hours, padding_hours) if np.ndim(padding_hours) == 0 else tuple(padding_hours)


def _widened(mask, before: int, after: int) -> np.ndarray:
    """``mask`` with every True spread ``before`` cadences earlier and ``after`` later."""
    out = mask.copy()
    for shift in range(1, before + 1):
        out[:-shift] |= mask[shift:]
    for shift in range(1, after + 1):
        out[shift:] |= mask[:-shift]
    return out


def episode_rule_text(sigmas: float = BAND_SIGMAS, padding_hours=EPISODE_PADDING_HOURS) -> str:
    """The episode rule in words, for help and summaries."""
    before, after = _before_after(padding_hours)
    widened = f", widened {before:g} h before and {after:g} h after" if before or after else ""
    return f"the forecast plus {sigmas:g} error{'s' if sigmas != 1 else ''} reaching the threshold{widened}"


def episode_mask(time, found) -> np.ndarray:
    """True at the ``time`` inside one of the episodes ``found`` (see :func:`episodes`)."""
    inside = np.zeros(np.size(time), bool)
    for episode in found:
        inside |= (time >= episode["start"]) & (time <= episode["end"])
    return inside


def _runs(mask):
    mask = np.asarray(mask, bool)
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _check_position(ra, dec) -> tuple:
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        raise TessBackmlError(f"RA and Dec must be numbers in degrees, got {ra!r} and {dec!r}") from None
    if not (np.isfinite(ra) and np.isfinite(dec)) or not (0 <= ra < 360 or -360 < ra < 0) or abs(dec) > 90:
        raise TessBackmlError(f"RA {ra} / Dec {dec} is not a sky position (RA 0-360 deg, Dec -90 to 90 deg)")
    return ra % 360.0, dec


def _span_text(sectors) -> str:
    return f"sectors {min(sectors)}-{max(sectors)}" if sectors else "no sector"
