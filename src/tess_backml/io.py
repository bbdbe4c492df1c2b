"""File formats: the scattered-light cube (FITS) and the training set (NPZ).

SL cube FITS (the original tess-backml format, FILEVER 1.0; ours write 1.2)
---------------------------------------------------------------------------
========  ======================  =================================================
HDU       name                    content
========  ======================  =================================================
0         PRIMARY                 SECTOR, CAMERA, CCD, TSTART, TSTOP (BTJD), PIXBIN,
                                  PIXBINM, IMGSIZEX, IMGSIZEY, TIMBINS (h), TIMBINM,
                                  TIMSIZE, CREATOR, PROCVER, FILEVER, ...
1         SCATTER LIGHT CUBE      float32, numpy shape (ncol, nrow, ntime, 2): the
                                  transpose of (2, ntime, nrow, ncol); [0] flux, [1] error
2         PIXEL COUNTS            int (nrow, ncol): valid pixels per bin
3         TIME                    table, column ``time`` (JD = BTJD + 2457000); BINNED
4         FRAMES (1.1 and later)  table per time bin: NFRAMES, CADENCENO, BTJD, and
                                  (1.2) BIN_START, BIN_STOP: BTJD of its first and
                                  last frame (bins may differ in length: adaptive)
========  ======================  =================================================

Readers of FILEVER 1.0 files (the original package's) use HDUs 0-3 only, so
files written here open with them unchanged; 1.0 and 1.1 files read here too.
"""

from __future__ import annotations

import datetime
import json
import logging
import zipfile
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError

from . import __version__
from ._files import atomic_output
from .constants import BTJD_OFFSET
from .errors import FileFormatError, TessBackmlError

log = logging.getLogger(__name__)

FILE_VERSION = "1.2"
HDU_CUBE, HDU_COUNTS, HDU_TIME, HDU_FRAMES = "SCATTER LIGHT CUBE", "PIXEL COUNTS", "TIME", "FRAMES"
_REQUIRED_KEYS = ("SECTOR", "CAMERA", "CCD", "PIXBIN", "TIMSIZE", "IMGSIZEX", "IMGSIZEY")


@dataclass
class SLCube:
    """A scattered-light cube in memory.

    Attributes
    ----------
    sector, camera, ccd : int
    flux, flux_err : ndarray (ntime, nrow, ncol) float32
        Scattered light and its error, e-/s.
    time : ndarray (ntime,)
        BTJD of each time bin (or frame).
    pixel_counts : ndarray (nrow, ncol)
        Background pixels that went into each bin.
    pixel_bin : int
        Bin size in pixels.
    binned : bool
        Whether the time axis is binned.
    time_bin_hours : float
    frames_per_bin, cadenceno : ndarray (ntime,), optional
    bin_start, bin_stop : ndarray (ntime,), optional
        BTJD of each bin's first and last frame (FILEVER 1.2).
    header : astropy.io.fits.Header
        Primary header: kept from a file that was read, so a round trip leaves
        its keys unchanged.
    """

    sector: int
    camera: int
    ccd: int
    flux: np.ndarray
    flux_err: np.ndarray
    time: np.ndarray
    pixel_counts: np.ndarray
    pixel_bin: int
    binned: bool = True
    time_bin_hours: float = 2.0
    pixel_bin_method: str = "median"
    time_bin_method: str = "mean"
    frames_per_bin: np.ndarray | None = None
    cadenceno: np.ndarray | None = None
    header: fits.Header = field(default_factory=fits.Header)
    bin_start: np.ndarray | None = None
    bin_stop: np.ndarray | None = None

    @property
    def shape(self):
        return self.flux.shape

    def bin_centres(self):
        """Bin centres in 1-based CCD coordinates: (rows (nrow,), columns (ncol,)).

        See :func:`tess_backml.constants.bin_centres`.
        """
        from .constants import bin_centres

        return bin_centres(self.flux.shape[1], self.flux.shape[2], self.pixel_bin)


def _primary_header(cube: SLCube) -> fits.Header:
    header = cube.header.copy()
    fresh = "CREATOR" not in header
    ntime, nrow, ncol = cube.flux.shape
    values = {
        "SECTOR": (int(cube.sector), "Observing sector"),
        "CAMERA": (int(cube.camera), "Camera number"),
        "CCD": (int(cube.ccd), "CCD chip number"),
        "PIXBIN": (int(cube.pixel_bin), "Bin size in pixel space"),
        "PIXBINM": (cube.pixel_bin_method, "Method of binning in pixel space"),
        "IMGSIZEX": (int(ncol), "Image size in axis X"),
        "IMGSIZEY": (int(nrow), "Image size in axis Y"),
        "TIMBINS": (float(cube.time_bin_hours), "[h] bin size in time axis"),
        "TIMBINM": (cube.time_bin_method, "Method of binning in time"),
        "TIMSIZE": (int(ntime), "Cube size in time axis"),
    }
    if fresh:
        values.update(
            {
                "TSTART": (float(np.min(cube.time)), "first time bin, BTJD"),
                "TSTOP": (float(np.max(cube.time)), "last time bin, BTJD"),
                "DATE": (datetime.date.today().isoformat(), "file creation date"),
                "CREATOR": ("tess-backml", "Software of origin"),
                "PROCVER": (__version__, "Software version"),
                "FILEVER": (FILE_VERSION, "file format version"),
                "TIMESYS": ("TDB", "time system is Barycentric Dynamical Time (TDB)"),
                "BJDREFI": (2457000, "integer part of BTJD reference date"),
                "OBJECT": ("Scatter Light cube", "Type of data"),
            }
        )
    for key, (value, comment) in values.items():
        if header.get(key) != value:
            header[key] = (value, comment)
    return header


def write_sl_cube(path, cube: SLCube, overwrite: bool = True) -> str:
    """Write an :class:`SLCube` in the SL cube FITS format, atomically.

    The file appears only when complete (temporary file, then rename).
    """
    from pathlib import Path

    if Path(path).exists() and not overwrite:
        raise TessBackmlError(f"{path} exists (use overwrite)")
    flux = np.asarray(cube.flux, dtype=np.float32)
    error = np.asarray(cube.flux_err, dtype=np.float32)
    if flux.shape != error.shape or flux.ndim != 3:
        raise TessBackmlError(f"flux {flux.shape} and error {error.shape} must be equal (ntime, nrow, ncol) arrays")
    # (ncol, nrow, ntime, 2), the original layout, made once and big-endian as FITS
    # stores it: astropy writes it without copies of its own (a sector's cube is GBs)
    data = np.empty(flux.shape[::-1] + (2,), ">f4")
    data[..., 0] = flux.T
    data[..., 1] = error.T
    primary = fits.PrimaryHDU(header=_primary_header(cube))
    cube_hdu = fits.ImageHDU(data, name=HDU_CUBE)
    counts = fits.ImageHDU(np.asarray(cube.pixel_counts), name=HDU_COUNTS)
    time_hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="time", format="D", unit="jd", array=np.asarray(cube.time, float) + BTJD_OFFSET)],
        name=HDU_TIME,
    )
    time_hdu.header["BINNED"] = (bool(cube.binned), "Is cube binned in time")
    hdus = [primary, cube_hdu, counts, time_hdu]
    if cube.frames_per_bin is not None or cube.cadenceno is not None:
        ntime = flux.shape[0]
        frames = np.ones(ntime, int) if cube.frames_per_bin is None else np.asarray(cube.frames_per_bin)
        cadences = np.full(ntime, np.nan) if cube.cadenceno is None else np.asarray(cube.cadenceno, float)
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column(name="NFRAMES", format="J", array=frames),
                    fits.Column(name="CADENCENO", format="D", array=cadences),
                    fits.Column(name="BTJD", format="D", array=np.asarray(cube.time, float)),
                    *(
                        fits.Column(name=name, format="D", array=np.asarray(values, float))
                        for name, values in (("BIN_START", cube.bin_start), ("BIN_STOP", cube.bin_stop))
                        if values is not None
                    ),
                ],
                name=HDU_FRAMES,
            )
        )
    with atomic_output(path, None) as temporary:
        fits.HDUList(hdus).writeto(temporary, overwrite=True)
    return str(path)


def read_sl_cube(path) -> SLCube:
    """Read an SL cube FITS file (FILEVER 1.0 from the original package, or 1.1)."""

    def fail(reason):
        raise FileFormatError(f"{path} is not a tess-backml SL cube: {reason}")

    try:
        hdul = fits.open(path, memmap=False)
    except FileNotFoundError:
        raise TessBackmlError(f"no such SL cube file: {path}") from None
    except (OSError, TypeError, ValueError) as exc:
        fail(f"cannot read it as FITS ({exc})")
    with hdul:
        try:
            return _sl_cube_from(hdul, fail)
        except FileFormatError:
            raise
        except (VerifyError, TypeError, KeyError, ValueError, AttributeError, IndexError, OSError) as exc:
            # damaged headers or tables: astropy raises many kinds
            fail(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")


def _integer(header, key) -> int:
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{key} = {value!r} is not an integer")
    return int(value)


def _sl_cube_from(hdul, fail) -> SLCube:
    if len(hdul) < 4:
        fail(f"it has {len(hdul)} HDUs, expected at least 4")
    header = hdul[0].header
    missing = [key for key in _REQUIRED_KEYS if key not in header]
    if missing:
        fail(f"its primary header lacks {', '.join(missing)}")
    data = np.asarray(hdul[1].data, dtype=np.float32).T
    counts = np.asarray(hdul[2].data)
    time = np.asarray(hdul[3].data["time"], dtype=float) - BTJD_OFFSET
    binned = bool(hdul[3].header.get("BINNED", True))
    expected = (2, _integer(header, "TIMSIZE"), _integer(header, "IMGSIZEY"), _integer(header, "IMGSIZEX"))
    if data.shape != expected:
        fail(f"cube shape {data.shape} does not match its header {expected}")
    if counts.shape != expected[2:] or time.shape != (expected[1],):
        fail("pixel counts or time table do not match the cube")
    frames = cadenceno = start = stop = None
    if len(hdul) > 4 and hdul[4].name == HDU_FRAMES:
        table = hdul[4].data
        frames = np.asarray(table["NFRAMES"])
        cadenceno = np.asarray(table["CADENCENO"])
        if "BIN_START" in table.columns.names and "BIN_STOP" in table.columns.names:
            start, stop = np.asarray(table["BIN_START"], float), np.asarray(table["BIN_STOP"], float)
    return SLCube(
        sector=_integer(header, "SECTOR"),
        camera=_integer(header, "CAMERA"),
        ccd=_integer(header, "CCD"),
        flux=data[0],
        flux_err=data[1],
        time=time,
        pixel_counts=counts,
        pixel_bin=_integer(header, "PIXBIN"),
        binned=binned,
        time_bin_hours=float(header.get("TIMBINS", 0.0)),
        pixel_bin_method=str(header.get("PIXBINM", "median")),
        time_bin_method=str(header.get("TIMBINM", "mean")),
        frames_per_bin=frames,
        cadenceno=cadenceno,
        header=header.copy(),
        bin_start=start,
        bin_stop=stop,
    )


def write_npz(path, arrays: dict) -> str:
    """Write a training-set NPZ atomically (plain arrays only: it loads without pickle)."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TessBackmlError(f"NPZ entry {key!r} is not a plain array")
    with atomic_output(path, "wb") as stream:
        np.savez(stream, **arrays)
    return str(path)


class Checkpoint:
    """Finished work units of a build, one NPZ each, so an interrupted build resumes.

    Parameters
    ----------
    directory : path
        Where the units go (made if needed).
    identity : dict
        What determines the results (see ``BackgroundCube.build_identity``); kept
        in ``identity.json``. Units are reused only under the same identity.
    resume : bool
        Reuse the units already there; otherwise start afresh (the directory is emptied).

    Each unit file is written to a temporary name and renamed, so a build killed
    at any moment leaves only whole units behind.
    """

    def __init__(self, directory, identity: dict, resume: bool = True):
        import shutil
        from pathlib import Path

        self.directory = Path(directory)
        self.identity = json.loads(json.dumps(identity))
        marker = self.directory / "identity.json"
        if self.directory.exists():
            previous = None
            try:
                previous = json.loads(marker.read_text())
            except (OSError, ValueError):
                pass
            if not resume or previous != self.identity:
                if resume and previous is not None:
                    log.warning("the checkpoint in %s is of another build: starting afresh", self.directory)
                shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not marker.exists():
            with atomic_output(marker, "w") as stream:
                json.dump(self.identity, stream)

    def _path(self, unit):
        kind, *where = unit
        return self.directory / ("-".join([kind, *(f"{int(value):05d}" for value in where)]) + ".npz")

    def save(self, unit, result: dict):
        with atomic_output(self._path(unit), "wb") as stream:
            np.savez(stream, **result)

    def load_all(self, units):
        """(unit, result) for every unit with a readable file; unreadable ones are redone."""
        for unit in units:
            path = self._path(unit)
            if not path.is_file():
                continue
            try:
                with np.load(path, allow_pickle=False) as data:
                    yield unit, {key: data[key] for key in data.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                log.warning("checkpoint unit %s unreadable (%s): computing it again", path.name, exc)

    def remove(self):
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)
