"""SPOC calibrated FFI files on local disk."""

from __future__ import annotations

import glob
import logging
import os
import re

import numpy as np
from astropy.io import fits

from ..constants import FFI_SHAPE, SCIENCE_COLUMNS, SCIENCE_ROWS
from ..errors import FileFormatError, TessBackmlError
from .base import FFISource, cadence_numbers, mid_times

log = logging.getLogger(__name__)

_FFI_NAME = re.compile(r"tess(\d{13})-s(\d{4})-(\d)-(\d)-(\d{4})-s_ffic\.fits(\.gz)?$")


def _find_files(directory_or_glob) -> list[str]:
    pattern = str(directory_or_glob)
    if os.path.isdir(pattern):
        files = sorted(glob.glob(os.path.join(pattern, "*.fits")) + glob.glob(os.path.join(pattern, "*.fits.gz")))
        named = [path for path in files if _FFI_NAME.search(os.path.basename(path))]
        # A directory may also hold other FITS files (a cube made from the FFIs): take
        # the SPOC-named files when there are any.
        files = named or files
        where = f"directory {pattern}"
    else:
        files = sorted(glob.glob(pattern))
        where = f"pattern {pattern}"
        if not files and not any(ch in pattern for ch in "*?[") and not os.path.exists(pattern):
            raise TessBackmlError(f"no such directory or file: {pattern}")
    if not files:
        raise TessBackmlError(f"no FFI files (*.fits) found in {where}")
    return files


class FFIFilesSource(FFISource):
    """SPOC calibrated FFI files (``tess*-s_ffic.fits``) of one sector/camera/CCD.

    Files are ordered by time; quality comes from each file's ``DQUALITY``,
    errors from the uncertainty HDU. Each file holds one frame, so
    :meth:`read_frames` is the cheap read; :meth:`read_rows` and
    :meth:`read_pixels` open every file (memory-mapped, so only the requested
    bytes are read from disk).

    Parameters
    ----------
    directory_or_glob : str or path-like
        A directory or a glob pattern. In a directory, the files named like SPOC
        FFIs (``tess*-s{sector}-{camera}-{ccd}-*-s_ffic.fits``) are used, or every
        ``*.fits`` when none is.
    """

    cheap_read = "frames"

    def __init__(self, directory_or_glob):
        self.location = str(directory_or_glob)
        files = _find_files(directory_or_glob)
        records = [self._read_header(path) for path in files]
        keys = {(r["sector"], r["camera"], r["ccd"]) for r in records}
        if len(keys) > 1:
            found = ", ".join(f"sector {s} camera {c} CCD {d}" for s, c, d in sorted(keys))
            raise TessBackmlError(f"{self.location} mixes FFIs of several sectors/CCDs ({found}); give one at a time")
        order = np.argsort([r["tstart"] for r in records], kind="stable")
        records = [records[i] for i in order]
        self.files = [r["path"] for r in records]
        self.sector, self.camera, self.ccd = keys.pop()
        self.time = mid_times([r["tstart"] for r in records], [r["tstop"] for r in records])
        if np.any(np.diff(self.time) <= 0):
            raise TessBackmlError(f"{self.location} has two FFIs with the same time (duplicated files?)")
        self.quality = np.array([r["quality"] for r in records], dtype=np.int32)
        self.cadenceno = cadence_numbers([r["ffi_index"] for r in records], self.time, self.sector)
        with fits.open(self.files[0], memmap=True) as hdul:
            self.primary_header = hdul[0].header.copy()
        log.debug("found %d FFIs in %s", len(self.files), self.location)

    @staticmethod
    def _read_header(path) -> dict:
        def fail(reason):
            raise FileFormatError(f"{path} is not a SPOC calibrated FFI: {reason}")

        try:
            with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
                primary = hdul[0].header
                if len(hdul) < 3:
                    fail(f"it has {len(hdul)} HDUs, expected 3 (primary, image, uncertainty)")
                image = hdul[1].header
                uncertainty = hdul[2].header
        except OSError as exc:
            fail(f"cannot read it as FITS ({exc})")
        for header, what in ((image, "image"), (uncertainty, "uncertainty")):
            shape = (header.get("NAXIS2"), header.get("NAXIS1"))
            if header.get("NAXIS") != 2 or shape != FFI_SHAPE:
                fail(f"its {what} HDU has shape {shape}, expected {FFI_SHAPE} (a full FFI)")
        for key in ("TSTART", "TSTOP"):
            if not isinstance(image.get(key), (int, float)):
                fail(f"its image header has no numeric {key}")
        name = _FFI_NAME.search(os.path.basename(str(path)))
        sector = primary.get("SECTOR") or (int(name.group(2)) if name else None)
        camera = image.get("CAMERA") or primary.get("CAMERA")
        ccd = image.get("CCD") or primary.get("CCD")
        if not sector or camera not in (1, 2, 3, 4) or ccd not in (1, 2, 3, 4):
            fail(f"cannot tell its sector/camera/CCD ({sector}/{camera}/{ccd})")
        return {
            "path": str(path),
            "sector": int(sector),
            "camera": int(camera),
            "ccd": int(ccd),
            "tstart": float(image["TSTART"]),
            "tstop": float(image["TSTOP"]),
            "quality": int(image.get("DQUALITY", 0)),
            "ffi_index": int(image.get("FFIINDEX", primary.get("FFIINDEX", 0)) or 0),
        }

    def _read_file(self, path, rows=SCIENCE_ROWS, columns=SCIENCE_COLUMNS):
        with fits.open(path, memmap=True) as hdul:
            flux = np.array(hdul[1].data[rows, columns], dtype=np.float32)
            error = np.array(hdul[2].data[rows, columns], dtype=np.float32)
        return flux, error

    def _read_frames(self, indices):
        pairs = [self._read_file(self.files[i]) for i in indices]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _read_rows(self, start, stop, frames):
        rows = slice(SCIENCE_ROWS.start + start, SCIENCE_ROWS.start + stop)
        pairs = [self._read_file(self.files[i], rows=rows) for i in frames]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _read_pixels(self, rows, columns, frames):
        image_rows = rows + SCIENCE_ROWS.start
        image_columns = columns + SCIENCE_COLUMNS.start
        pairs = [self._read_file(self.files[i], rows=image_rows, columns=image_columns) for i in frames]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
