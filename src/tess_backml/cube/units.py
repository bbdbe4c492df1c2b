"""Pooling units: the independent parts of a cube build.

A unit is a chunk of frames (frame-read sources: FFI files, the simulator), a tile
of rows x frames (row-read sources whose frame ranges are cheap: short local MAST
cubes read through maps; the static scene and the star mask are made before, so a
tile's memory is set by its size, not by the sector's length), or a block of rows of
every frame (remote MAST cubes and any of a sector's length: the source copies the
block's rows to local scratch, and the block is pooled in tiles of frames, so its
memory too is set by the tiles). :func:`compute_unit` pools one unit
(pure: the same unit gives the same arrays), which makes units the tasks of a Dask
build and the pieces a checkpoint keeps; :func:`apply_unit` puts a result in the
cube. Both orders give the same cube: the star mask uses global thresholds and a
row block's halo covers the reach of the mask and of the pooling windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import SCIENCE_SIZE
from ..downsample import bin_errors, median_over_frames, pool_frames, subtract_and_mask
from ..errors import TessBackmlError
from ..masks import StarThresholds, star_mask

#: Frames per unit for frame-read sources.
FRAME_CHUNK = 8


@dataclass
class PoolingSetup:
    """What every unit of one build shares (made by ``BackgroundCube.prepare``)."""

    source: object
    frame_indices: np.ndarray
    dark_frames: np.ndarray
    img_bin: int
    rolling: bool
    block_rows: int
    static: np.ndarray | None
    thresholds: StarThresholds
    star_mask: np.ndarray
    strap_mask: np.ndarray
    #: Variance factor of the subtracted static scene (a median of the dark frames).
    static_var: float
    #: Frames per tile (row-read sources with a static scene).
    tile_frames: int = 0

    def work_units(self) -> list:
        """("frames", first) chunks of :data:`FRAME_CHUNK` frames for frame-read sources;
        ("tile", first row, first frame) tiles of ``block_rows`` x ``tile_frames`` for
        row-read sources whose static scene is known (frame by frame, down the CCD);
        else ("rows", first) blocks of ``block_rows`` rows of every frame."""
        if self.source.cheap_read == "frames":
            return [("frames", start) for start in range(0, len(self.frame_indices), FRAME_CHUNK)]
        if self.static is not None:
            return [("tile", row, frame) for frame in range(0, len(self.frame_indices), self.tile_frames)
                    for row in range(0, SCIENCE_SIZE, self.block_rows)]
        return [("rows", start) for start in range(0, SCIENCE_SIZE, self.block_rows)]

    def pooling_halo(self) -> int:
        """Rows beyond a block that its bins' rolling windows reach (img_bin - 1), in
        whole bins so the pooling grid stays aligned."""
        return self.img_bin if self.rolling and self.img_bin > 1 else 0

    def block_halo(self) -> int:
        """Rows beyond a block of every frame whose static scene it needs: its pooled
        rows (the block and the pooling halo) must have a finished star mask, which
        reaches 3 rows (gradient and dilation)."""
        return self.pooling_halo() + STAR_MASK_REACH


#: Rows near a cut edge of a static scene whose star mask is unfinished (the gradient's
#: one-sided differences, then two dilations).
STAR_MASK_REACH = 3


#: Bytes per pixel and frame of a tile while it is pooled: flux and error (8), the
#: rows kept for the next tile (up to 8 more) and the pooling's work arrays (measured
#: peak, with the source's read, about 20).
TILE_BYTES_PER_VALUE = 24
#: And the flux and error of the next tile, when it is read ahead.
READ_AHEAD_BYTES_PER_VALUE = 8


def frames_per_tile(setup: PoolingSetup, memory_gb: float, read_ahead: bool = False) -> int:
    """As many frames as fit in ``memory_gb`` for a tile of ``block_rows`` rows and halo
    (and the next one's pixels, if read ahead); row blocks are pooled in such tiles too."""
    rows = setup.block_rows + 2 * setup.pooling_halo()
    per_value = TILE_BYTES_PER_VALUE + (READ_AHEAD_BYTES_PER_VALUE if read_ahead else 0)
    return max(int(memory_gb * 2**30 // (rows * SCIENCE_SIZE * per_value)), 1)


class RowReuse:
    """Reads the row windows of consecutive row blocks, each byte once: the rows a window
    shares with the previous one (the blocks' halos) are kept from it, not read again.

    For one process going down the CCD in order; every other read goes to the source.
    The kept rows are a copy (the caller may change the arrays it gets), so memory
    grows by the overlap (``2 x halo`` rows) while the bytes read drop from
    ``(block + 2 x halo) / block`` times the image to once.
    """

    def __init__(self, source):
        self.source = source
        self._kept = None  # (first row, frames, flux, error) of the rows kept

    def read_rows(self, start: int, stop: int, frames, keep: int):
        kept, self._kept = self._kept, None
        if kept is not None and np.array_equal(kept[1], frames) and kept[0] <= start < kept[0] + kept[2].shape[1] <= stop:
            first, _, kept_flux, kept_error = kept
            shared = first + kept_flux.shape[1] - start
            flux = np.empty((len(frames), stop - start, SCIENCE_SIZE), np.float32)
            error = np.empty_like(flux)
            flux[:, :shared], error[:, :shared] = kept_flux[:, start - first :], kept_error[:, start - first :]
            del kept, kept_flux, kept_error
            if stop > start + shared:
                flux[:, shared:], error[:, shared:] = self.source.read_rows(start + shared, stop, frames)
        else:
            del kept
            flux, error = self.source.read_rows(start, stop, frames)
        keep = min(keep, stop - start)
        if keep > 0:
            self._kept = (stop - keep, np.asarray(frames), flux[:, -keep:].copy(), error[:, -keep:].copy())
        return flux, error


class ReadAhead:
    """Reads the next unit's pixels in a background thread while this one is pooled.

    For the units ``todo`` of one process, in order. Reads go through ``reader`` (a
    :class:`RowReuse`) or the source; a read that is not the one expected next is
    made directly. Holds one unit's pixels more than reading on demand.
    """

    def __init__(self, setup: PoolingSetup, todo, reader=None):
        from concurrent.futures import ThreadPoolExecutor

        self.setup, self.reader = setup, reader
        self.requests = [unit_read(setup, unit) for unit in todo]
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tess-backml-read-ahead")
        self._pending = None  # (index of the request, future)
        self._start(0)

    def _start(self, index: int):
        self._pending = None
        if index < len(self.requests):
            future = self._thread.submit(read_unit, self.setup, self.requests[index], self.reader)
            self._pending = (index, future)

    def _take(self, request):
        if self._pending is not None:
            index, future = self._pending
            expected = self.requests[index]
            same = len(expected) == len(request) and all(
                np.array_equal(a, b) for a, b in zip(expected, request)
            )
            if same:
                result = future.result()
                self._start(index + 1)
                return result
            future.result()  # let it finish: the reader reads in order
            self._pending = None
        return read_unit(self.setup, request, self.reader)

    def read_frames(self, frames):
        return self._take(("frames", frames))

    def read_rows(self, lo, hi, frames, keep=0):
        return self._take(("rows", lo, hi, frames, keep))

    def close(self):
        """Stop reading ahead (waits for a read in progress)."""
        self._pending = None
        self._thread.shutdown(wait=True, cancel_futures=True)


def unit_read(setup: PoolingSetup, unit) -> tuple:
    """The pixels a unit reads: ``("frames", frames)`` or ``("rows", lo, hi, frames, keep)``
    (rows [lo, hi) of ``frames``; ``keep`` rows at the end are shared with the next block)."""
    kind, start = unit[0], unit[1]
    if kind == "frames":
        return ("frames", setup.frame_indices[start : start + FRAME_CHUNK])
    if kind == "tile":
        halo = setup.pooling_halo()
        frames = setup.frame_indices[unit[2] : unit[2] + setup.tile_frames]
    else:  # the dark frames first: the block's static scene and star mask
        halo = setup.block_halo()
        frames = setup.dark_frames
    stop = min(start + setup.block_rows, SCIENCE_SIZE)
    return ("rows", max(start - halo, 0), min(stop + halo, SCIENCE_SIZE), frames, 2 * halo)


def read_unit(setup: PoolingSetup, request: tuple, reader=None):
    """Flux and error of a :func:`unit_read` request, through ``reader`` if given."""
    source = reader if reader is not None else setup.source
    if request[0] == "frames":
        return source.read_frames(request[1])
    _, lo, hi, frames, keep = request
    return source.read_rows(lo, hi, frames, keep=keep) if reader is not None else source.read_rows(lo, hi, frames)


def compute_unit(setup: PoolingSetup, unit, reader=None) -> dict:
    """Pool one work unit: a dict of arrays (``cube``, ``err``, ``count``, and ``stars``
    for row blocks). ``reader`` (a :class:`RowReuse` or :class:`ReadAhead`, for units
    in order in one process) saves reading halos twice or reads ahead; the result is
    the same without it."""
    kind, start = unit[0], unit[1]
    request = unit_read(setup, unit)
    flux, error = read_unit(setup, request, reader)
    if kind == "frames":
        return _pooled(setup, flux, error, setup.static, setup.star_mask, slice(0, SCIENCE_SIZE))
    lo, hi = request[1], request[2]
    stop = min(start + setup.block_rows, SCIENCE_SIZE)
    if kind == "tile":  # the tile's own rows within its halo
        return _pooled(setup, flux, error, setup.static[lo:hi], setup.star_mask[lo:hi], slice(start - lo, stop - lo))
    # a block of rows of every frame: the static scene and star mask from the dark frames
    # read above, then the pooled rows (block and pooling halo) in tiles of frames (the
    # source keeps the block's rows at hand: a remote cube's on local scratch)
    static = median_over_frames(flux)
    stars = star_mask(static, setup.thresholds)
    del flux, error
    halo = setup.pooling_halo()
    first_row, last_row = max(start - halo, 0), min(stop + halo, SCIENCE_SIZE)
    window = slice(first_row - lo, last_row - lo)
    core = slice(start - first_row, stop - first_row)
    step = max(setup.tile_frames, 1)
    # every tile is read into the same arrays: fresh ones would cost the kernel a page
    # fault and zeroing per 4 kB, about as long as the read itself
    flux = np.empty((step, last_row - first_row, SCIENCE_SIZE), np.float32)
    error = np.empty((step, stop - start, SCIENCE_SIZE), np.float32)
    parts = []
    for first in range(0, len(setup.frame_indices), step):
        frames = setup.frame_indices[first : first + step]
        out = (flux[: len(frames)], error[: len(frames)])
        setup.source.read_rows(first_row, last_row, frames, error_rows=(start, stop), out=out)  # only the core's errors are binned
        parts.append(_pooled(setup, *out, static[window], stars[window], core))
    del flux, error
    return {"cube": np.concatenate([part["cube"] for part in parts]), "err": np.concatenate([part["err"] for part in parts]),
            "count": parts[0]["count"], "stars": stars[start - lo : stop - lo]}


def _pooled(setup: PoolingSetup, flux, error, static, stars, core: slice) -> dict:
    """Pool a window of rows (``flux`` minus ``static``, stars and straps masked, in
    place) and keep the bins of its ``core`` rows, with their errors (from ``error``:
    the window's, or its core rows' alone) and valid-pixel counts."""
    b = setup.img_bin
    data = subtract_and_mask(flux, static, stars | setup.strap_mask[None, :])  # frames are read for this alone
    pooled = pool_frames(data, b, rolling=setup.rolling, rows=slice(core.start // b, core.stop // b))
    err, count = bin_errors(data, error, b, setup.static_var, rows=core)
    return {"cube": pooled, "err": err, "count": count[0]}


def apply_unit(setup: PoolingSetup, unit, result: dict, cube, cube_err, counts, noise_factor=None):
    """Put a unit's result into ``cube``, ``cube_err`` (scaled by ``noise_factor``;
    None leaves the errors out) and ``counts``; row blocks also fill the star mask."""
    kind, start = unit[0], unit[1]
    b = setup.img_bin
    if kind == "frames":
        where = (slice(start, start + len(result["cube"])),)
        counts[:] = result["count"]
    elif kind == "tile":
        stop = min(start + setup.block_rows, SCIENCE_SIZE)
        where = (slice(unit[2], unit[2] + len(result["cube"])), slice(start // b, stop // b))
        counts[start // b : stop // b] = result["count"]
    else:
        stop = min(start + setup.block_rows, SCIENCE_SIZE)
        where = (slice(None), slice(start // b, stop // b))
        setup.star_mask[start:stop] = result["stars"]
        counts[start // b : stop // b] = result["count"]
    cube[where] = result["cube"]
    if noise_factor is not None:
        cube_err[where] = result["err"] * noise_factor


def sparse_pixels(mask, img_bin: int):
    """One background pixel per bin: the unmasked pixel nearest the bin centre.

    Returns 0-based science rows and columns (-1 where a bin has no free pixel).
    """
    b = img_bin
    nbin = SCIENCE_SIZE // b
    local = np.add.outer((np.arange(b) - (b - 1) / 2) ** 2, (np.arange(b) - (b - 1) / 2) ** 2).ravel()
    order = np.argsort(local, kind="stable")
    rows, cols = [], []
    for i in range(nbin):
        for j in range(nbin):
            block = mask[i * b : (i + 1) * b, j * b : (j + 1) * b].ravel()[order]
            free = np.flatnonzero(~block)
            if free.size:
                r, c = divmod(int(order[free[0]]), b)
                rows.append(i * b + r)
                cols.append(j * b + c)
            else:
                rows.append(-1)
                cols.append(-1)
    return np.array(rows), np.array(cols)


def sparse_cube(setup: PoolingSetup, cube, cube_err, counts):
    """Fill ``cube``, ``cube_err`` and ``counts`` from one background pixel per bin."""
    if setup.static is None:
        raise TessBackmlError("sparse downsizing reads whole frames for the static scene; use binning for row-read sources")
    nbin = SCIENCE_SIZE // setup.img_bin
    rows, cols = sparse_pixels(setup.star_mask | setup.strap_mask[None, :], setup.img_bin)
    valid = rows >= 0
    counts[:] = valid.reshape(nbin, nbin)
    frames = setup.frame_indices
    n = len(frames)
    if setup.source.cheap_read == "frames":  # read only the selected frames
        flux = np.empty((n, int(valid.sum())), np.float32)
        error = np.empty_like(flux)
        for start in range(0, n, FRAME_CHUNK):
            part = frames[start : start + FRAME_CHUNK]
            images, image_errors = setup.source.read_frames(part)
            flux[start : start + len(part)] = images[:, rows[valid], cols[valid]]
            error[start : start + len(part)] = image_errors[:, rows[valid], cols[valid]]
    else:
        flux, error = setup.source.read_pixels(rows[valid], cols[valid], frames)
    values = np.full((n, nbin * nbin), np.nan, np.float32)
    values[:, valid] = flux - setup.static[rows[valid], cols[valid]]
    errs = np.full_like(values, np.nan)
    errs[:, valid] = error * np.sqrt(1 + setup.static_var)
    cube[:] = values.reshape(-1, nbin, nbin)
    cube_err[:] = errs.reshape(-1, nbin, nbin)


def fill_empty_bins(cube, degree: int = 3, in_place: bool = False) -> np.ndarray:
    """Fill NaN bins with a smooth 2-D polynomial fitted to each frame's valid bins.

    Frames sharing a pattern of empty bins are solved together with one least
    squares fit (vectorised over frames). ``in_place`` fills a float32 ``cube`` itself
    (a sector's cube is GBs) instead of a copy.
    """
    cube = np.asarray(cube, dtype=np.float32) if in_place else np.array(cube, dtype=np.float32)
    nt, ny, nx = cube.shape
    y, x = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    design = np.stack([y.ravel() ** i * x.ravel() ** j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)
    flat = cube.reshape(nt, -1)
    empty = ~np.isfinite(flat)
    patterns, inverse = np.unique(empty, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        if not pattern.any():
            continue
        frames = np.flatnonzero(inverse.ravel() == k)
        valid = ~pattern
        if valid.sum() < design.shape[1]:
            raise TessBackmlError(
                f"too few valid bins ({int(valid.sum())}) to fill the empty ones: the masked region covers almost the whole CCD"
            )
        coefficients, *_ = np.linalg.lstsq(design[valid], flat[np.ix_(frames, np.flatnonzero(valid))].T, rcond=None)
        flat[np.ix_(frames, np.flatnonzero(pattern))] = (design[pattern] @ coefficients).T
    return flat.reshape(nt, ny, nx)
