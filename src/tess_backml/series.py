"""Real scattered-light series: what SPOC light curves, SPOC TPFs and TESScut cutouts say
about the scattered light at one place on a CCD.

One type, :class:`SLSeries`, whatever the file:

* a SPOC light curve: its ``SAP_BKG`` (the background SPOC measured around the target,
  summed over the aperture) divided by the number of aperture pixels;
* a SPOC TPF: the median over its pixels of ``FLUX_BKG`` (SPOC's background per pixel);
* a TESScut or astrocut cutout (no background column): the median of its background
  pixels, those whose median flux is in the faintest 30% (every pixel of a cutout of
  four pixels or fewer, which then also holds whatever star is there).

**The SL level.** A series is given relative to the sector's darkest cadences: minus
its 2nd percentile over the valid cadences. What remains is the scattered light at
that place, plus slow zodiacal drift.

**Quality.** Cadences with SPOC quality bits other than the stray-light bits
(``Straylight`` 2048, ``Straylight2`` 4096: they mark exactly the light we want) are
left out. **Spikes**: cadences that stand out of their neighbours' median by more
than 5 robust standard deviations of such steps (and 3 of their own error) are
flagged :data:`SPIKE` (cosmic rays, asteroids, momentum dumps) and left out of
:meth:`SLSeries.binned`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from .constants import (
    FFI_SHAPE,
    FIRST_SCIENCE_COLUMN,
    FIRST_SCIENCE_ROW,
    QUALITY_FLAGS,
    SCIENCE_SIZE,
    on_science_pixels,
)
from .errors import FileFormatError, TessBackmlError

log = logging.getLogger(__name__)

#: SPOC quality bits a series keeps: they flag the scattered light itself.
STRAY_LIGHT_BITS = QUALITY_FLAGS["Straylight"] | QUALITY_FLAGS["Straylight2"]
#: Our flag (beyond SPOC's bits) for one-cadence spikes.
SPIKE = 1 << 20
#: Percentile of a series taken as its dark level.
DARK_PERCENTILE = 2.0
#: A series shorter than this (days) may hold no dark time: its dark level is unknown,
#: so it can neither train a model nor anchor one.
MIN_DARK_SPAN_DAYS = 5.0


@dataclass
class SLSeries:
    """The scattered light at one place on a CCD, cadence by cadence.

    Attributes
    ----------
    sector, camera, ccd : int
        Where.
    row, column : float
        1-based CCD coordinates of the place (the centre of the stamp's pixels used).
    time : ndarray
        BTJD.
    sl, error : ndarray
        Scattered light per pixel and its error (e-/s), relative to the dark level.
    flags : ndarray of int
        The SPOC stray-light bits, and :data:`SPIKE`.
    level : float
        The dark level subtracted (e-/s).
    source, kind : str
        The file, and ``"light curve"``, ``"tpf"`` or ``"cutout"``.
    """

    sector: int
    camera: int
    ccd: int
    row: float
    column: float
    time: np.ndarray
    sl: np.ndarray
    error: np.ndarray
    flags: np.ndarray
    level: float
    source: str
    kind: str

    def __repr__(self):
        return (f"SLSeries({self.kind} {self.source!r}: sector {self.sector} camera {self.camera} CCD {self.ccd}, "
                f"row {self.row:.1f} column {self.column:.1f}, {self.time.size} cadences)")

    @property
    def name(self) -> str:
        return f"S{self.sector} {self.camera}-{self.ccd} ({self.row:.0f}, {self.column:.0f})"

    def binned(self, minutes: float = 30.0) -> SLSeries:
        """Means in bins of ``minutes`` (spikes left out); a bin's error is that of its mean."""
        keep = (self.flags & SPIKE) == 0
        time, sl, error = self.time[keep], self.sl[keep], self.error[keep]
        if not time.size:  # nothing to average: an empty series, which its callers refuse in their own words
            return replace(self, time=time, sl=sl, error=error, flags=self.flags[keep] & STRAY_LIGHT_BITS)
        index = np.floor((time - time[0]) / (minutes / 1440.0)).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
        count = np.diff(np.r_[starts, time.size])
        mean = lambda values: np.add.reduceat(values, starts) / count  # noqa: E731
        flags = np.bitwise_or.reduceat(self.flags[keep] & STRAY_LIGHT_BITS, starts)
        return replace(self, time=mean(time), sl=mean(sl), error=np.sqrt(np.add.reduceat(error**2, starts)) / count,
                       flags=flags)


def dark_level(values) -> float:
    """The dark level of a series: its :data:`DARK_PERCENTILE` percentile."""
    return float(np.percentile(values, DARK_PERCENTILE))


def spike_mask(values, error) -> np.ndarray:
    """Cadences standing out of their two neighbours' median (see the module's notes)."""
    if values.size < 3:
        return np.zeros(values.size, bool)
    padded = np.r_[values[0], values, values[-1]]
    neighbours = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    step = values - neighbours
    sigma = 1.4826 * np.median(np.abs(step - np.median(step)))
    return (np.abs(step) > 5 * max(sigma, 1e-9)) & (np.abs(step) > 3 * error)


def make_series(sector, camera, ccd, row, column, time, values, error, quality, source, kind) -> SLSeries:
    """An :class:`SLSeries` from raw per-pixel background values: bad cadences dropped,
    spikes flagged, the dark level subtracted."""
    time, values = np.asarray(time, float), np.asarray(values, float)
    error, quality = np.asarray(error, float), np.asarray(quality, np.int64)
    valid = np.isfinite(time) & np.isfinite(values) & ((quality & ~STRAY_LIGHT_BITS) == 0)
    if not valid.any():
        raise TessBackmlError(f"{source} has no valid cadence (finite time and background, no quality flag "
                              "other than stray light)")
    time, values, quality, error = time[valid], values[valid], quality[valid], error[valid]
    known = np.isfinite(error)
    error = np.where(known, error, np.median(error[known]) if known.any() else 0.0)
    flags = (quality & STRAY_LIGHT_BITS) | np.where(spike_mask(values, error), SPIKE, 0)
    level = dark_level(values[(flags & SPIKE) == 0])
    row = float(np.clip(row, FIRST_SCIENCE_ROW, FIRST_SCIENCE_ROW + SCIENCE_SIZE - 1))
    column = float(np.clip(column, FIRST_SCIENCE_COLUMN, FIRST_SCIENCE_COLUMN + SCIENCE_SIZE - 1))
    return SLSeries(int(sector), int(camera), int(ccd), row, column, time, values - level, error, flags, level,
                    str(source), kind)


def read_series(path) -> SLSeries:
    """The scattered-light series of a TESS light curve or pixel file.

    Reads SPOC light curves and TESS-SPOC HLSPs (``SAP_BKG`` over the aperture), TASOC
    HLSPs (``FLUX_BKG`` over the aperture), eleanor and eleanor-lite HLSPs (``FLUX_BKG``
    per pixel), TGLC HLSPs (``background`` per pixel), SPOC TPFs (``FLUX_BKG``) and
    TESScut/astrocut cutouts (their faintest pixels). Anything else (QLP's light curves
    among them) is refused with one :class:`~tess_backml.errors.FileFormatError`.
    """
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            if not _has_data_table(hdul):
                raise FileFormatError(_not_a_table(path, hdul))
            columns = hdul[1].columns.names
            if "FLUX" in columns and hdul[1].columns["FLUX"].dim is not None:
                return _pixel_file_series(path)
            if "MIT/QLP" in str(hdul[0].header.get("ORIGIN", "")).upper():
                # QLP's columns bear SPOC's names, but not SPOC's background per aperture
                raise FileFormatError(f"{path} is a QLP light curve, whose SAP_BKG tess-backml cannot put per "
                                      "pixel: give a TESScut cutout or the SPOC light curve of the star instead")
            if "SAP_FLUX" in columns:
                return _light_curve_series(path, hdul)
            pipeline = _hlsp_pipeline(hdul)
            if pipeline is not None:
                return _hlsp_series(path, hdul, pipeline)
    except OSError as exc:
        raise TessBackmlError(f"cannot read {path}: {exc}") from None
    except TessBackmlError:
        raise
    except (KeyError, ValueError, TypeError, IndexError) as exc:  # a file of a known kind with parts missing
        raise FileFormatError(f"{path}: cannot read its background ({exc})") from None
    raise FileFormatError(
        f"{path} is none of the light curves tess-backml reads (SPOC, TESS-SPOC, TASOC, eleanor, TGLC) "
        "nor a target pixel file"
    )


def table_refusal(path):
    """The one-line reason a file without a FITS data table is no series (no FITS, an
    FFI, an SL cube, an image), or None when it has one."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            return None if _has_data_table(hdul) else _not_a_table(path, hdul)
    except FileNotFoundError:
        return f"no such file: {path}"
    except (OSError, ValueError):
        return f"{path} is not a FITS file (or is damaged)"


def _has_data_table(hdul) -> bool:
    from astropy.io import fits

    return len(hdul) > 1 and isinstance(hdul[1], fits.BinTableHDU)


def _not_a_table(path, hdul) -> str:
    # an FFI or an SL cube is no series: say what it is and what to do with it instead
    extension = hdul[1].header if len(hdul) > 1 else {}
    if str(extension.get("EXTNAME", "")).strip() == "SCATTER LIGHT CUBE":
        return f"{path} is an SL cube, not a series: give it as the cube to correct with (--cube, or cube= in Python)"
    if str(extension.get("IMAGTYPE", "")).strip() in ("cal", "uncal") or "CAMERA.CCD" in str(extension.get("EXTNAME", "")):
        return (f"{path} is one full-frame image (a single time), not a series: build an SL cube from the "
                "sector's FFIs instead (tess-backml cube --source DIRECTORY_OF_FFIS)")
    return f"{path} is not a TESS light curve or target pixel file (no data table)"


#: FFI pipelines' light curves without SPOC's layout: how each gives its background.
#: ``per_pixel`` False means the column is summed over the aperture (HDU ``aperture``,
#: bit value 2 = in the aperture, as SPOC's).
HLSP_BACKGROUNDS = {
    "tasoc": {"column": "FLUX_BKG", "time": "TIME", "quality": "QUALITY", "per_pixel": False, "aperture": "APERTURE"},
    "eleanor": {"column": "FLUX_BKG", "time": "TIME", "quality": "QUALITY", "per_pixel": True},
    "tglc": {"column": "background", "time": "time", "quality": "TESS_flags", "per_pixel": True},
}


def _hlsp_pipeline(hdul):
    header = hdul[0].header
    origin = str(header.get("ORIGIN", "")).upper()
    columns = hdul[1].columns.names
    if "TASOC" in origin and "FLUX_BKG" in columns:
        return "tasoc"
    if "TGLC" in origin and "background" in columns:
        return "tglc"
    if ("eleanor" in str(header.get("GITHUB", "")).lower() or "POSTCARD" in header) and "FLUX_BKG" in columns:
        return "eleanor"
    return None


def _hlsp_series(path, hdul, pipeline) -> SLSeries:
    layout = HLSP_BACKGROUNDS[pipeline]
    header, data = hdul[0].header, hdul[1].data
    values = np.asarray(data[layout["column"]], float)
    if not layout["per_pixel"]:
        aperture = np.asarray(hdul[layout["aperture"]].data)
        npix = int(((aperture & 2) > 0).sum())
        if npix == 0:
            raise FileFormatError(f"{path}: its aperture has no pixel")
        values = values / npix
    sector, camera, ccd = int(header["SECTOR"]), int(header["CAMERA"]), int(header["CCD"])
    row, column = place_on_ccd(sector, camera, ccd, header["RA_OBJ"], header["DEC_OBJ"], path)
    return make_series(sector, camera, ccd, row, column, data[layout["time"]], values, np.zeros(values.size),
                       data[layout["quality"]], path, "light curve")


def place_on_ccd(sector, camera, ccd, ra, dec, source="the target") -> tuple[float, float]:
    """1-based CCD (row, column) of a sky position, through ``tesswcs``' WCS of the sector."""
    from astropy.coordinates import SkyCoord

    from .geometry import CameraGeometry

    x, y = CameraGeometry(sector, camera).wcs(ccd).world_to_pixel(SkyCoord(float(ra), float(dec), unit="deg"))
    row, column = float(y) + 1, float(x) + 1
    if not on_science_pixels(row, column, margin=10):
        raise FileFormatError(f"{source}: RA {ra:.4f} Dec {dec:.4f} is not on sector {sector} camera {camera} "
                              f"CCD {ccd} (it lands at row {row:.0f}, column {column:.0f})")
    return row, column


def _light_curve_series(path, hdul) -> SLSeries:
    header, data = hdul[0].header, hdul[1].data
    if "SAP_BKG" not in data.columns.names:
        raise FileFormatError(f"{path} has no SAP_BKG column: SPOC light curves carry the background there")
    if len(hdul) < 3 or hdul[2].data is None:
        raise FileFormatError(f"{path} has no aperture extension: the background cannot be put per pixel")
    aperture = np.asarray(hdul[2].data)
    in_aperture = (aperture & 2) > 0
    if not in_aperture.any():
        raise FileFormatError(f"{path}: its aperture has no pixel")
    rows, cols = np.nonzero(in_aperture)
    row = hdul[2].header["CRVAL2P"] + rows.mean()
    column = hdul[2].header["CRVAL1P"] + cols.mean()
    npix = int(in_aperture.sum())
    error = data["SAP_BKG_ERR"] / npix if "SAP_BKG_ERR" in data.columns.names else np.zeros(len(data))
    return make_series(header["SECTOR"], header["CAMERA"], header["CCD"], row, column, data["TIME"],
                       data["SAP_BKG"] / npix, error, data["QUALITY"], path, "light curve")


def _pixel_file_series(path) -> SLSeries:
    import warnings

    lk = lightkurve_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpf = lk.read(path, quality_bitmask="none")
    return tpf_series(tpf, path)


def tpf_series(tpf, source="TPF") -> SLSeries:
    """The scattered-light series of a lightkurve TPF or cutout (its own evidence of the
    light): the median of its ``FLUX_BKG`` over its pixels, or, where that is all zero
    (TESScut), the median of its faintest pixels (see the module's notes)."""
    row0, col0 = tpf_corner(tpf)
    data = tpf.hdu[1].data
    background = np.asarray(data["FLUX_BKG"], float) if "FLUX_BKG" in data.columns.names else None
    if background is not None and np.nanmax(np.abs(background)) > 0:
        values, kind = np.nanmedian(background.reshape(len(data), -1), axis=1), "tpf"
        errors = np.asarray(data["FLUX_BKG_ERR"], float) if "FLUX_BKG_ERR" in data.columns.names else np.zeros_like(background)
        error = np.nanmedian(errors.reshape(len(data), -1), axis=1)
        used = np.ones(background.shape[1:], bool)
    else:
        flux = np.asarray(data["FLUX"], float)
        median = np.nanmedian(flux, axis=0)
        used = median <= np.nanpercentile(median, 30) if median.size > 4 else np.isfinite(median)
        values, kind = np.nanmedian(flux[:, used], axis=1), "cutout"
        error = np.nanmedian(np.asarray(data["FLUX_ERR"], float)[:, used], axis=1) / np.sqrt(used.sum())
    rows, cols = np.nonzero(used)
    return make_series(tpf_sector(tpf), tpf.camera, tpf.ccd, row0 + rows.mean(), col0 + cols.mean(), data["TIME"],
                       values, error, data["QUALITY"], source, kind)


def tpf_sector(tpf) -> int:
    """A TPF's sector: its ``SECTOR`` keyword, else (astrocut cutouts may leave it blank) the
    sector named by its FFI files (``-s0001-``), else the sector its times fall in."""
    import re

    sector = tpf.hdu[0].header.get("SECTOR")
    if isinstance(sector, (int, np.integer)) and sector > 0:
        return int(sector)
    data = tpf.hdu[1].data
    if "FFI_FILE" in data.columns.names and len(data):
        found = re.search(r"-s(\d{4})-", str(data["FFI_FILE"][0]))
        if found:
            return int(found.group(1))
    from .geometry import sector_pointings

    time = np.asarray(data["TIME"], float)
    middle = float(np.nanmedian(time)) + 2457000.0 if np.isfinite(time).any() else np.nan
    pointings = sector_pointings()
    inside = (np.asarray(pointings["Start"]) <= middle) & (np.asarray(pointings["End"]) >= middle)
    if not inside.any():
        raise TessBackmlError("the TPF names no sector (SECTOR keyword) and its times fall in none")
    return int(np.asarray(pointings["Sector"])[inside][0])


# --------------------------------------------------------------------------- TPFs and cutouts
def tpf_corner(tpf) -> tuple[int, int]:
    """1-based CCD (row, column) of a TPF's lower-left pixel.

    From the pixel table's physical WCS keywords (``2CRV5P``/``1CRV5P``, or the
    ``4P`` ones; lightkurve's ``tpf.row``/``tpf.column``). Cutouts made by astrocut
    1.x carry none (its ``_add_column_wcs`` never writes them): then the TPF is
    placed through its own celestial WCS and the sector's, and accepted only if
    that lands within 0.25 pixel of a whole pixel.
    """
    header = tpf.hdu[1].header
    keys = [("2CRV5P", "1CRV5P"), ("2CRV4P", "1CRV4P")]
    for row_key, col_key in keys:
        if row_key in header and col_key in header:
            row, column = header[row_key], header[col_key]
            if not isinstance(row, (int, np.integer)) or not isinstance(column, (int, np.integer)):
                raise TessBackmlError(f"the TPF's corner keywords {row_key}/{col_key} are not integers")
            if 1 <= row <= FFI_SHAPE[0] and 1 <= column <= FFI_SHAPE[1]:
                return int(row), int(column)
            # early TESScut files wrote nonsense corners (e.g. 2CRV4P = -856): their WCS still places them
            log.info("the TPF's corner keywords (row %d, column %d) are off the CCD: placing it by its WCS", row, column)
            break
    from .geometry import CameraGeometry

    try:
        sky = tpf.wcs.pixel_to_world(0, 0)
    except Exception as exc:  # no usable WCS in the file
        raise TessBackmlError(
            f"the TPF has no corner keywords (2CRV4P/1CRV4P) and no usable WCS to place it ({exc})"
        ) from None
    x, y = CameraGeometry(tpf_sector(tpf), tpf.camera).wcs(tpf.ccd).world_to_pixel(sky)
    x, y = float(x), float(y)
    if not (np.isfinite(x) and np.isfinite(y)):
        return _corner_from_target(tpf, "its WCS lands on no pixel of the CCD")
    if abs(x - round(x)) <= 0.25 and abs(y - round(y)) <= 0.25:
        log.info("TPF placed through its WCS (no corner keywords): row %d, column %d", round(y) + 1, round(x) + 1)
        return int(round(y)) + 1, int(round(x)) + 1
    return _corner_from_target(tpf, f"its WCS does not land on a whole pixel (column {x + 1:.2f}, row {y + 1:.2f})")


def _corner_from_target(tpf, why: str) -> tuple[int, int]:
    """The corner of a cutout centred on its target (``RA_OBJ``/``DEC_OBJ``), as TESScut
    centres them: the last resort for early TESScut files, whose corner keywords and
    WCS can both be wrong."""
    header = tpf.hdu[0].header
    nrows, ncols = tpf.hdu[1].data["FLUX"].shape[1:]
    if "RA_OBJ" not in header or "DEC_OBJ" not in header:
        raise TessBackmlError(f"the TPF has no usable corner keywords (2CRV4P/1CRV4P), {why}, and no target "
                              "position (RA_OBJ/DEC_OBJ) to place it")
    row, column = place_on_ccd(tpf_sector(tpf), tpf.camera, tpf.ccd, header["RA_OBJ"], header["DEC_OBJ"])
    log.info("TPF placed on its target position (%s): centre row %.1f, column %.1f", why, row, column)
    return int(round(row - (nrows - 1) / 2)), int(round(column - (ncols - 1) / 2))


def check_tpf(tpf):
    for attribute in ("sector", "camera", "ccd", "hdu", "time"):
        if not hasattr(tpf, attribute):
            raise TessBackmlError(f"expected a lightkurve TessTargetPixelFile, got {type(tpf).__name__}")


def lightkurve_module():
    import warnings

    try:
        with warnings.catch_warnings():  # its optional-submodule notices are not for our users
            warnings.simplefilter("ignore")
            import lightkurve
    except ImportError:
        raise TessBackmlError("correcting TPFs needs lightkurve (a dependency of tess-backml): pip install lightkurve") from None
    return lightkurve
