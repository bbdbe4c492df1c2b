"""The interface every FFI source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from astropy.io import fits

from ..constants import SCIENCE_SIZE
from ..errors import TessBackmlError


def frame_range_indices(frames: slice, nframes: int) -> np.ndarray:
    """Indices of a ``START:STOP[:STEP]`` frame slice, refusing ranges beyond 0..nframes-1
    and ranges that select nothing (a start at or after the stop)."""
    start = 0 if frames.start is None else frames.start
    stop = nframes if frames.stop is None else frames.stop
    if start < 0 or stop > nframes or start >= nframes:
        raise TessBackmlError(f"frames {start}:{stop} are out of range: the source has frames 0-{nframes - 1}")
    if start >= stop:
        raise TessBackmlError(f"frames {start}:{stop} select no frame: the start must be below the stop")
    return np.arange(start, stop, frames.step or 1)


class FFISource(ABC):
    """Where the FFI pixels of one sector/camera/CCD come from.

    A source knows the frames' times, cadence numbers and quality flags, and reads
    science-region pixels (flux and error, float32 e-/s) in three ways. Pixel
    positions here are **0-based science-region indices**: row ``r`` and column
    ``c`` are ``image[r, 44 + c]`` of a full FFI array, i.e. CCD row ``r + 1`` and
    CCD column ``c + 45`` in the 1-based CCD coordinates of TPF headers (see
    :mod:`tess_backml.constants`).

    Which read is cheap depends on how the source stores its pixels; see
    :attr:`cheap_read` and each subclass.

    Attributes
    ----------
    sector, camera, ccd : int
    time : ndarray (nframes,)
        Mid-exposure time of each frame, BTJD.
    cadenceno : ndarray (nframes,)
        Cadence (FFI index) number of each frame.
    quality : ndarray (nframes,)
        SPOC quality flags of each frame.
    primary_header : astropy.io.fits.Header
    """

    #: "rows" when :meth:`read_rows` is the efficient access, "frames" when
    #: :meth:`read_frames` is.
    cheap_read = "frames"
    #: True when :meth:`read_rows` of some frames reads only those frames' bytes (a
    #: local MAST cube), so that row sources can be built in tiles of rows x frames.
    frame_ranges_cheap = False

    sector: int
    camera: int
    ccd: int
    time: np.ndarray
    cadenceno: np.ndarray
    quality: np.ndarray
    primary_header: fits.Header

    @property
    def nframes(self) -> int:
        return len(self.time)

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name, '?')}" for name in ("sector", "camera", "ccd"))
        nframes = self.nframes if hasattr(self, "time") or hasattr(self, "_nframes") else "?"
        return f"{type(self).__name__}({fields}, nframes={nframes})"

    def __len__(self):
        return self.nframes

    # ------------------------------------------------------------------ reads
    def read_frames(self, indices):
        """Read whole frames.

        Parameters
        ----------
        indices : int or array_like of int
            Frame indices (0-based, into :attr:`time`).

        Returns
        -------
        flux, error : ndarray (n, 2048, 2048) float32
        """
        indices = self.check_frames(indices)
        return self._read_frames(indices)

    def read_rows(self, start: int, stop: int, frames=None, error_rows=None, out=None):
        """Read a block of science rows of every frame, or of some frames.

        Parameters
        ----------
        start, stop : int
            0-based science rows ``start <= row < stop``.
        frames : array_like of int, optional
            Frame indices (0-based, into :attr:`time`), in the order wanted;
            default every frame. Only these frames are kept in memory.
        error_rows : (int, int), optional
            Science rows ``[first, last)`` within the block whose errors are wanted
            (default all): a pooled window needs the errors of its core rows only.
        out : (ndarray, ndarray), optional
            C-contiguous float32 arrays of the returned shapes to read into. Reading
            tile after tile into the same arrays spares the kernel zeroing fresh
            memory for each; sources that cannot read in place copy into them.

        Returns
        -------
        flux : ndarray (nframes or len(frames), stop - start, 2048) float32
        error : ndarray (nframes or len(frames), last - first, 2048) float32
        """
        start, stop = self.check_rows(start, stop)
        frames = np.arange(self.nframes) if frames is None else self.check_frames(frames)
        first, last = (start, stop) if error_rows is None else (int(row) for row in error_rows)
        if not start <= first < last <= stop:
            raise TessBackmlError(f"error_rows {first}:{last} must lie within the rows read, {start}:{stop}")
        if out is not None:
            _check_out(out, ((len(frames), stop - start, SCIENCE_SIZE), (len(frames), last - first, SCIENCE_SIZE)))
        elif (first, last) == (start, stop):
            return self._read_rows(start, stop, frames)
        return self._read_rows_and_errors(start, stop, frames, first, last, out)

    def _read_rows_and_errors(self, start, stop, frames, first, last, out=None):
        """Rows [start, stop) of ``frames`` and the errors of rows [first, last) alone,
        into ``out`` if given; sources that can skip the other errors' bytes, or read
        in place, do."""
        flux, error = self._read_rows(start, stop, frames)
        error = error[:, first - start : last - start]
        if out is None:
            return flux, error
        out[0][...], out[1][...] = flux, error
        return out

    def read_pixels(self, rows, columns, frames=None):
        """Read the time series of individual pixels.

        Parameters
        ----------
        rows, columns : array_like of int
            0-based science-region indices, same length.
        frames : array_like of int, optional
            Frame indices (0-based, into :attr:`time`), in the order wanted;
            default every frame. Only these frames are kept in memory.

        Returns
        -------
        flux, error : ndarray (nframes or len(frames), npix) float32
        """
        rows, columns = self.check_pixels(rows, columns)
        frames = np.arange(self.nframes) if frames is None else self.check_frames(frames)
        return self._read_pixels(rows, columns, frames)

    @abstractmethod
    def _read_frames(self, indices: np.ndarray): ...

    @abstractmethod
    def _read_rows(self, start: int, stop: int, frames: np.ndarray): ...

    @abstractmethod
    def _read_pixels(self, rows: np.ndarray, columns: np.ndarray, frames: np.ndarray): ...

    def close(self):
        """Let go of what reading kept (a remote cube's scratch files); reads may go on."""

    # ------------------------------------------------------------------ checks
    def check_frames(self, indices) -> np.ndarray:
        array = np.atleast_1d(np.asarray(indices))
        if array.size == 0:
            raise TessBackmlError("no frames requested")
        if array.dtype.kind not in "iu":
            if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
                array = array.astype(int)
            else:
                raise TessBackmlError(f"frame indices must be integers, got {indices!r}")
        if array.min() < -self.nframes or array.max() >= self.nframes:
            raise TessBackmlError(
                f"frame index out of range: {self} has frames 0-{self.nframes - 1}, "
                f"asked for {array.min()}-{array.max()}"
            )
        return array % self.nframes

    def check_rows(self, start, stop) -> tuple[int, int]:
        try:
            start, stop = int(start), int(stop)
        except (TypeError, ValueError):
            raise TessBackmlError(f"row range must be integers, got {start!r}:{stop!r}") from None
        if not 0 <= start < stop <= SCIENCE_SIZE:
            raise TessBackmlError(f"science rows must satisfy 0 <= start < stop <= {SCIENCE_SIZE}, got {start}:{stop}")
        return start, stop

    def check_pixels(self, rows, columns) -> tuple[np.ndarray, np.ndarray]:
        rows, columns = np.atleast_1d(np.asarray(rows)), np.atleast_1d(np.asarray(columns))
        if rows.shape != columns.shape or rows.ndim != 1:
            raise TessBackmlError("rows and columns must be 1-D arrays of the same length")
        if rows.size == 0:
            raise TessBackmlError("no pixels requested")
        if rows.dtype.kind not in "iu" or columns.dtype.kind not in "iu":
            raise TessBackmlError("pixel rows and columns must be integers (0-based science indices)")
        if rows.min() < 0 or columns.min() < 0 or rows.max() >= SCIENCE_SIZE or columns.max() >= SCIENCE_SIZE:
            raise TessBackmlError(f"pixel indices must lie in 0-{SCIENCE_SIZE - 1} (0-based science region)")
        return rows.astype(np.int64), columns.astype(np.int64)


def mid_times(tstart, tstop) -> np.ndarray:
    """Mid-exposure BTJD from TSTART/TSTOP arrays."""
    return 0.5 * (np.asarray(tstart, dtype=float) + np.asarray(tstop, dtype=float))


def cadence_numbers(ffi_index, time, sector: int) -> np.ndarray:
    """Cadence numbers: the FFIINDEX header values when present, else counted from the times."""
    from ..constants import ffi_cadence_seconds

    ffi_index = np.asarray(ffi_index)
    if ffi_index.size and np.all(ffi_index > 0):
        return ffi_index.astype(np.int64)
    step = ffi_cadence_seconds(sector) / 86400.0
    time = np.asarray(time, dtype=float)
    return np.round((time - time[0]) / step).astype(np.int64)


def _check_out(out, shapes):
    """One-line errors for ``out`` arrays a read cannot fill in place."""
    if len(out) != 2:
        raise TessBackmlError("out must be a (flux, error) pair of arrays")
    for name, array, shape in zip(("flux", "error"), out, shapes):
        if not isinstance(array, np.ndarray) or array.dtype != np.float32 or not array.flags.c_contiguous or array.shape != shape:
            got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
            raise TessBackmlError(f"out {name} must be a C-contiguous float32 array of shape {shape}, got {got}")
