"""Scratch bands of a MAST cube: its rows turned frame-major, and frames read back.

A MAST cube stores each pixel's whole time series together; a band file holds some
rows of every frame frame-major instead (flux, then error, each (rows, nframes, 2048)
native float32), so that a row of a run of frames is one contiguous piece. Bands are
written from the cube's rows (local, or as fetched from a remote one) and read with
plain reads into the caller's arrays.
"""

from __future__ import annotations

import os

import numba
import numpy as np

from ..constants import FFI_SHAPE, SCIENCE_COLUMNS, SCIENCE_SIZE
from ..errors import FileFormatError, TessBackmlError
from .ranges import write_at

_BYTES_PER_VALUE = 4  # float32


@numba.njit(parallel=True, nogil=True, cache=True)
def _transpose_pixels(block, frames, swap, flux, error, frame_tile, column_tile):
    """``flux[i, r, c] = block[r, c, frames[i], 0]`` (and ``error`` from value 1), as raw
    32-bit words, byte-swapped if ``swap``. Tiles of frames x columns keep both the
    reads (along frames) and the writes (along columns) in cache."""
    rows, columns = block.shape[0], block.shape[1]
    column_tiles = (columns + column_tile - 1) // column_tile
    for task in numba.prange(rows * column_tiles):
        r = task // column_tiles
        c0 = (task % column_tiles) * column_tile
        c1 = min(c0 + column_tile, columns)
        for f0 in range(0, frames.size, frame_tile):
            for i in range(f0, min(f0 + frame_tile, frames.size)):
                f = frames[i]
                for c in range(c0, c1):
                    value = block[r, c, f, 0]
                    sigma = block[r, c, f, 1]
                    if swap:
                        value = (value >> 24) | ((value >> 8) & 0xFF00) | ((value << 8) & 0xFF0000) | (value << 24)
                        sigma = (sigma >> 24) | ((sigma >> 8) & 0xFF00) | ((sigma << 8) & 0xFF0000) | (sigma << 24)
                    flux[i, r, c] = value
                    error[i, r, c] = sigma


def to_frame_major(block: np.ndarray, frames=None, out=None, frame_tile: int = 32, column_tile: int = 64):
    """Convert a pixel-major cube block (rows, cols, frames, 2) to frame-major flux and error.

    Parameters
    ----------
    block : ndarray (rows, cols, nframes, 2)
        Big- or little-endian float32 values, as read (a view or a memory map will do).
    frames : ndarray of int, optional
        The frames to keep, in this order (default all).
    out : tuple of two ndarrays (len(frames), rows, cols) float32, optional
        Where to write flux and error (new arrays if not given).

    Returns
    -------
    flux, error : native float32 arrays (len(frames), rows, cols)
        The byte swap and transpose go in one compiled pass, in parallel, tile by
        tile (32 frames x 64 columns, in L1 cache).
    """
    if block.dtype.kind != "f" or block.dtype.itemsize != 4:
        raise TessBackmlError(f"cube values must be 32-bit floats, got {block.dtype}")
    rows, columns, nframes, _ = block.shape
    frames = np.arange(nframes) if frames is None else np.asarray(frames, dtype=np.int64)
    if out is None:
        out = (np.empty((frames.size, rows, columns), np.float32), np.empty((frames.size, rows, columns), np.float32))
    flux, error = out
    # the kernel does not check its indices: a wrong frame or shape would write past the arrays
    if frames.size and (frames.min() < 0 or frames.max() >= nframes):
        raise TessBackmlError(f"frames must lie in 0..{nframes - 1}, got {frames.min()}..{frames.max()}")
    if flux.shape != (frames.size, rows, columns) or error.shape != flux.shape:
        raise TessBackmlError(f"out arrays must have shape {(frames.size, rows, columns)}, got {flux.shape}, {error.shape}")
    swap = not block.dtype.isnative
    _transpose_pixels(block.view(np.uint32), frames, swap, flux.view(np.uint32), error.view(np.uint32), frame_tile, column_tile)
    return flux, error


def in_order(wanted, frames, flux, error):
    """``flux`` and ``error`` of the sorted frames ``wanted``, in the order of ``frames``."""
    if wanted.size == len(frames) and np.array_equal(wanted, frames):
        return flux, error
    order = np.searchsorted(wanted, frames)
    return flux[order], error[order]


def read_staged(stage, nframes: int, start: int, stop: int, frames, first: int, last: int, out=None):
    """Rows [start, stop) of ``frames`` and the errors of rows [first, last), from the
    scratch bands of ``stage`` (a :class:`~tess_backml.sources.staging.RowStage`),
    into ``out`` if given."""
    files = stage.open(start, stop)
    try:
        wanted = np.unique(frames)
        in_place = out is not None and wanted.size == len(frames) and np.array_equal(wanted, frames)
        if in_place:
            flux, error = out
        else:
            flux = np.empty((wanted.size, stop - start, SCIENCE_SIZE), np.float32)
            error = np.empty((wanted.size, last - first, SCIENCE_SIZE), np.float32)
        for band_first, band_stop, path in files:
            a, b = max(band_first, start), min(band_stop, stop)
            e0 = max(a, first)
            e1 = max(e0, min(b, last))  # the errors wanted of these rows (maybe none)
            read_band(path, band_first, band_stop - band_first, nframes, wanted,
                       (a, b, flux[:, a - start : b - start]), (e0, e1, error[:, e0 - first : e1 - first]))
        if in_place:
            return out
        flux, error = in_order(wanted, frames, flux, error)
        if out is None:
            return flux, error
        out[0][...], out[1][...] = flux, error
        return out
    finally:
        stage.release(start, stop)


def write_band(source, offset: int, rows: int, nframes: int, path):
    """``rows`` cube rows from the file ``source`` (the first at byte ``offset``) into
    the band file ``path``, frame-major (:func:`read_band`), one row at a time: the
    row's science pixels are read into one buffer, turned into two more (flux and
    error), and written. At 1,219 frames a row takes 8-9 ms this way, and 11-12 ms
    through maps of both files, which the kernel fills page by page.

    Raises :class:`FileFormatError` if ``source`` ends before its rows do, and
    :class:`FileNotFoundError` if it is gone."""
    row_bytes = FFI_SHAPE[1] * nframes * 2 * _BYTES_PER_VALUE
    science = offset + SCIENCE_COLUMNS.start * nframes * 2 * _BYTES_PER_VALUE
    block = np.empty((1, SCIENCE_SIZE, nframes, 2), ">f4")
    flux, error = (np.empty((nframes, 1, SCIENCE_SIZE), np.float32) for _ in range(2))
    plane = flux.nbytes  # one row of every frame
    reader = os.open(source, os.O_RDONLY)
    try:
        band = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # an evicted band's file is rewritten in place
        try:
            os.ftruncate(band, 2 * rows * plane)
            for row in range(rows):
                if os.preadv(reader, [block], science + row * row_bytes) != block.nbytes:
                    raise FileFormatError(f"{source}: the cube ends before its row {row} of this band (truncated?)")
                to_frame_major(block, out=(flux, error))
                for k, values in enumerate((flux, error)):
                    write_at(band, values, (k * rows + row) * plane)
        finally:
            os.close(band)
    finally:
        os.close(reader)


_MOST_PIECES = 1024  # buffers per preadv call (IOV_MAX on Linux)


def read_band(path, band_first: int, band_rows: int, nframes: int, wanted, flux_rows, error_rows):
    """Rows of the frames ``wanted`` from a scratch band file: ``flux_rows`` and
    ``error_rows`` are (first, last, out): rows [first, last) into ``out``
    (len(wanted), last - first, 2048). The file holds the band's flux, then its error,
    each as (rows, nframes, 2048) native float32: a row of a run of frames is one
    contiguous piece."""
    run = wanted.size and wanted[-1] - wanted[0] + 1 == wanted.size
    if run:  # each row's frames are one piece of the file: read straight into ``out``
        frame_bytes = SCIENCE_SIZE * _BYTES_PER_VALUE
        fd = os.open(path, os.O_RDONLY)
        try:
            for plane, (first, last, out) in enumerate((flux_rows, error_rows)):
                for k, row in enumerate(range(first - band_first, last - band_first)):
                    offset = ((plane * band_rows + row) * nframes + int(wanted[0])) * frame_bytes
                    for i in range(0, wanted.size, _MOST_PIECES):
                        pieces = [out[j, k] for j in range(i, min(i + _MOST_PIECES, wanted.size))]
                        if os.preadv(fd, pieces, offset + i * frame_bytes) != len(pieces) * frame_bytes:
                            raise TessBackmlError(f"scratch band {path} is shorter than it was written")
        finally:
            os.close(fd)
        return
    band = np.memmap(path, dtype=np.float32, mode="r", shape=(2, band_rows, nframes, SCIENCE_SIZE))
    for plane, (first, last, out) in enumerate((flux_rows, error_rows)):
        for k, row in enumerate(range(first - band_first, last - band_first)):
            out[:, k] = band[plane, row, wanted]
    del band  # unmapped: its pages no longer count as this process's memory
