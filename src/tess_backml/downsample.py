"""Fast robust pooling: NaN-median binning of FFI frames, with errors and pixel counts.

Two downsizing modes, as in the original tess-backml:

* fixed bins (``rolling=False``): the NaN-median of each ``img_bin x img_bin``
  block;
* rolling (``rolling=True``): ``log2(img_bin)`` passes of a 4 x 4 window with
  stride 2 and a one-pixel NaN border, each halving the image; every output
  value is the NaN-median of its window. The overlapping windows smooth the
  result and fill small masked areas.

NaN marks a masked or missing pixel; a window with no valid pixel gives NaN.
The kernels are compiled with numba and run in parallel over frames and rows.
"""

from __future__ import annotations

import functools

import numpy as np

try:  # numba is a dependency; the guard keeps import errors readable
    import numba
except ImportError as exc:  # pragma: no cover
    raise ImportError("tess_backml.downsample needs numba (pip install numba)") from exc

from .errors import TessBackmlError

#: Ratio of the standard error of a median to that of a mean, for Gaussian data.
MEDIAN_EFFICIENCY = float(np.sqrt(np.pi / 2))


# Batcher's odd-even merge networks, written out so that every lane is a local
# variable: LLVM then keeps them in vector registers and vectorises over columns.
# Staging the lanes through memory instead made the first pass twice as slow.
# tests/test_downsample.py checks each network on every 0-1 input.


@numba.njit(cache=True, inline="always")
def _exchange(a, b):
    """Compare-exchange: (min, max). NaN never reaches here (it is +inf by then)."""
    return (a if a < b else b), (b if a < b else a)


@numba.njit(cache=True, inline="always")
def _sort_quad(a, b, c, d):
    """Sort 4 values (Batcher, 5 exchanges)."""
    a, b = _exchange(a, b)
    c, d = _exchange(c, d)
    a, c = _exchange(a, c)
    b, d = _exchange(b, d)
    b, c = _exchange(b, c)
    return a, b, c, d


@numba.njit(cache=True, inline="always")
def _merge_quads(a0, a1, a2, a3, b0, b1, b2, b3):
    """Merge two sorted runs of 4 into a sorted run of 8 (Batcher, 9 exchanges)."""
    a0, b0 = _exchange(a0, b0)
    a1, b1 = _exchange(a1, b1)
    a2, b2 = _exchange(a2, b2)
    a3, b3 = _exchange(a3, b3)
    a2, b0 = _exchange(a2, b0)
    a3, b1 = _exchange(a3, b1)
    a1, a2 = _exchange(a1, a2)
    a3, b0 = _exchange(a3, b0)
    b1, b2 = _exchange(b1, b2)
    return a0, a1, a2, a3, b0, b1, b2, b3


@numba.njit(cache=True, inline="always")
def _merge_cells_low(x0, x1, x2, x3, x4, x5, x6, x7, y0, y1, y2, y3, y4, y5, y6, y7):
    """The 9 smallest of two sorted runs of 8, in order: Batcher's merge, less the
    exchanges that cannot reach ranks 0-8 (20 of 25) -- all a median of 16 reads."""
    x0, y0 = _exchange(x0, y0)
    x1, y1 = _exchange(x1, y1)
    x2, y2 = _exchange(x2, y2)
    x3, y3 = _exchange(x3, y3)
    x4, y4 = _exchange(x4, y4)
    x5, y5 = _exchange(x5, y5)
    x6, y6 = _exchange(x6, y6)
    x7, y7 = _exchange(x7, y7)
    x4, y0 = _exchange(x4, y0)
    x5, y1 = _exchange(x5, y1)
    x6, y2 = _exchange(x6, y2)
    x7, y3 = _exchange(x7, y3)
    x2, x4 = _exchange(x2, x4)
    x3, x5 = _exchange(x3, x5)
    x6, y0 = _exchange(x6, y0)
    x7, y1 = _exchange(x7, y1)
    x1, x2 = _exchange(x1, x2)
    x3, x4 = _exchange(x3, x4)
    x5, x6 = _exchange(x5, x6)
    x7, y0 = _exchange(x7, y0)
    return x0, x1, x2, x3, x4, x5, x6, x7, y0


@numba.njit(cache=True, inline="always")
def _rank(r, ranked):
    """Value of rank ``r`` (0-8) of 9 ranked values, by selects, which vectorise
    where an index would not."""
    value = ranked[0]
    value = ranked[1] if r == 1 else value
    value = ranked[2] if r == 2 else value
    value = ranked[3] if r == 3 else value
    value = ranked[4] if r == 4 else value
    value = ranked[5] if r == 5 else value
    value = ranked[6] if r == 6 else value
    value = ranked[7] if r == 7 else value
    return ranked[8] if r == 8 else value


@numba.njit(cache=True, inline="always")
def _valid(value):
    """NaN (masked) becomes +inf, which sorts last; and whether it was valid."""
    return (value, 1) if value == value else (np.float32(np.inf), 0)


@numba.njit(cache=True, inline="always")
def _pixel(src, frame, r, c):
    """A pixel as (value, valid); NaN (masked) and the one-pixel border outside the
    frame become +inf, which sorts last."""
    inside = 0 <= r < src.shape[1] and 0 <= c < src.shape[2]
    return _valid(src[frame, r, c]) if inside else (np.float32(np.inf), 0)


@numba.njit(cache=True)
def _border_quad(src, frame, r0, k, quads, counts):
    """Quad ``k`` of rows r0, r0 + 1 where it may touch the border."""
    a, na = _pixel(src, frame, r0, 2 * k - 1)
    b, nb = _pixel(src, frame, r0, 2 * k)
    c, nc = _pixel(src, frame, r0 + 1, 2 * k - 1)
    d, nd = _pixel(src, frame, r0 + 1, 2 * k)
    counts[k] = na + nb + nc + nd
    quads[0, k], quads[1, k], quads[2, k], quads[3, k] = _sort_quad(a, b, c, d)


@numba.njit(cache=True, inline="always")
def _load_quads(src, frame, r0, quads, counts, out_w):
    """Sorted 2 x 2 quads of input rows r0, r0 + 1 (quad k: columns 2k - 1, 2k) into
    ``quads`` (4, out_w + 1), and their valid counts."""
    height = src.shape[1]
    if r0 < 0 or r0 + 1 >= height:
        for k in range(out_w + 1):
            _border_quad(src, frame, r0, k, quads, counts)
        return
    _border_quad(src, frame, r0, 0, quads, counts)
    _border_quad(src, frame, r0, out_w, quads, counts)
    upper = src[frame, r0]
    lower = src[frame, r0 + 1]
    for k in range(1, out_w):
        a, na = _valid(upper[2 * k - 1])
        b, nb = _valid(upper[2 * k])
        c, nc = _valid(lower[2 * k - 1])
        d, nd = _valid(lower[2 * k])
        counts[k] = na + nb + nc + nd
        quads[0, k], quads[1, k], quads[2, k], quads[3, k] = _sort_quad(a, b, c, d)


@numba.njit(cache=True, inline="always")
def _pool_row(top, bottom, top_counts, bottom_counts, cells, cell_counts, result):
    """One output row from the sorted quads above and below it."""
    out_w = result.shape[0]
    for k in range(out_w + 1):
        a0, a1, a2, a3, b0, b1, b2, b3 = _merge_quads(
            top[0, k], top[1, k], top[2, k], top[3, k], bottom[0, k], bottom[1, k], bottom[2, k], bottom[3, k]
        )
        cells[0, k], cells[1, k], cells[2, k], cells[3, k] = a0, a1, a2, a3
        cells[4, k], cells[5, k], cells[6, k], cells[7, k] = b0, b1, b2, b3
        cell_counts[k] = top_counts[k] + bottom_counts[k]
    for j in range(out_w):
        low = _merge_cells_low(
            cells[0, j], cells[1, j], cells[2, j], cells[3, j], cells[4, j], cells[5, j], cells[6, j], cells[7, j],
            cells[0, j + 1], cells[1, j + 1], cells[2, j + 1], cells[3, j + 1],
            cells[4, j + 1], cells[5, j + 1], cells[6, j + 1], cells[7, j + 1],
        )  # fmt: skip
        count = cell_counts[j] + cell_counts[j + 1]
        # for an odd count both ranks are the same value, and 0.5 * (x + x) == x exactly
        value = np.float32(0.5) * (_rank((count - 1) // 2, low) + _rank(count // 2, low))
        result[j] = value if count > 0 else np.float32(np.nan)


@numba.njit(parallel=True, nogil=True, cache=True)
def _rolling_pass(src, chunks, out, shift):
    """One 4x4 / stride-2 NaN-median pass with a one-pixel NaN border: (n, H, W) -> ``out`` (n, H/2, W/2),
    or some consecutive rows of it: output row i reads input rows ``2i - 1 + shift`` to
    ``2i + 2 + shift``, and rows outside ``src`` are the border.

    Windows overlap by two rows and two columns, so the work is shared: each
    pair of input rows is cut into 2 x 2 quads, sorted once (and reused by the
    next output row); two quads merge into a sorted 4 x 2 cell, shared by two
    neighbouring windows; each window merges its two cells, keeping the ranks a
    median needs. NaN and the border become +inf; a window's median is read at
    the middle of its valid values.
    """
    n = src.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    tasks = n * out_h
    chunks = max(min(chunks, tasks), 1)
    for chunk in numba.prange(chunks):
        # buffers are allocated once per chunk of consecutive rows, not once per row
        quads = np.empty((2, 4, out_w + 1), np.float32)
        counts = np.empty((2, out_w + 1), np.int32)
        cells = np.empty((8, out_w + 1), np.float32)
        cell_counts = np.empty(out_w + 1, np.int32)
        top = 0
        previous = -2
        for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
            frame = task // out_h
            i = task % out_h
            # output row i reads input rows 2i - 1 .. 2i + 2: the quads of rows (2i - 1, 2i)
            # are the previous output row's lower quads
            if task != previous + 1 or i == 0:
                _load_quads(src, frame, 2 * i - 1 + shift, quads[top], counts[top], out_w)
            _load_quads(src, frame, 2 * i + 1 + shift, quads[1 - top], counts[1 - top], out_w)
            previous = task
            _pool_row(quads[top], quads[1 - top], counts[top], counts[1 - top], cells, cell_counts, out[frame, i])
            top = 1 - top
    return out


@numba.njit(parallel=True, nogil=True, cache=True)
def _fixed_pass(src, size, out):
    """NaN-median of non-overlapping size x size blocks: (n, H, W) -> ``out`` (n, H/size, W/size)."""
    n, height, width = src.shape
    out_h, out_w = height // size, width // size
    for task in numba.prange(n * out_h):
        frame = task // out_h
        i = task % out_h
        buffer = np.empty(size * size, np.float32)
        for j in range(out_w):
            count = 0
            for r in range(i * size, (i + 1) * size):
                for c in range(j * size, (j + 1) * size):
                    value = src[frame, r, c]
                    if value == value:
                        buffer[count] = value
                        count += 1
            if count == 0:
                out[frame, i, j] = np.nan
            else:
                out[frame, i, j] = np.median(buffer[:count])
    return out


@numba.njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _bin_error(flux, error, size, extra_variance, first_row, error_first_row, out, counts):
    """Error of a bin's median: sqrt(pi/2) * rms(error) / sqrt(N) over its valid pixels, and N,
    into ``out`` and ``counts``; the bins' rows start at ``first_row`` of ``flux`` and at
    ``error_first_row`` of ``error``.

    Sums may be reassociated (vectorised); NaN semantics are kept.
    """
    n, width = flux.shape[0], flux.shape[2]
    out_h, out_w = out.shape[1], width // size
    efficiency = np.sqrt(np.pi / 2)
    for task in numba.prange(n * out_h):
        frame = task // out_h
        i = task % out_h
        column_totals = np.zeros(width, np.float32)
        column_counts = np.zeros(width, np.int32)
        for r in range(i * size, (i + 1) * size):
            flux_row = flux[frame, first_row + r]
            error_row = error[frame, error_first_row + r]
            for c in range(width):
                valid = flux_row[c] == flux_row[c]
                e = error_row[c]
                column_totals[c] += e * e if valid else np.float32(0.0)
                column_counts[c] += valid
        totals = np.zeros(out_w, np.float32)
        valid_counts = np.zeros(out_w, np.int32)
        for j in range(out_w):
            for c in range(j * size, (j + 1) * size):
                totals[j] += column_totals[c]
                valid_counts[j] += column_counts[c]
        for j in range(out_w):
            count = valid_counts[j]
            counts[frame, i, j] = count
            if count == 0:
                out[frame, i, j] = np.nan
            else:
                out[frame, i, j] = efficiency * np.sqrt(totals[j] * (1.0 + extra_variance) / count) / np.sqrt(count)
    return out, counts


@numba.njit(parallel=True, nogil=True, cache=True)
def _median_over_frames(stack, out):
    n = stack.shape[0]
    height, width = stack.shape[1], stack.shape[2]
    for r in numba.prange(height):
        values = np.empty(n, np.float32)
        for c in range(width):
            bad = False
            for k in range(n):  # insertion sort: n is a handful of dark frames
                v = stack[k, r, c]
                bad |= v != v
                m = k
                while m > 0 and values[m - 1] > v:
                    values[m] = values[m - 1]
                    m -= 1
                values[m] = v
            if bad:
                out[r, c] = np.nan
            elif n % 2:
                out[r, c] = values[n // 2]
            else:
                out[r, c] = (values[n // 2 - 1] + values[n // 2]) / np.float32(2)
    return out


def median_over_frames(stack) -> np.ndarray:
    """Per-pixel median of a few frames (n, rows, cols) -> (rows, cols) float32.

    Equal to ``np.median(stack, axis=0)`` in float32 (NaN if any frame is NaN), in
    parallel and without sorting a copy of the whole stack: the static scene is a
    median of the ~10 dark frames.
    """
    array = _as_frames(stack)
    if array.shape[0] == 0:
        raise TessBackmlError("no frames to take the median of")
    return _median_over_frames(array, np.empty(array.shape[1:], np.float32))


@numba.njit(parallel=True, nogil=True, cache=True)
def _subtract_and_mask(flux, static, mask):
    n, height, width = flux.shape
    for task in numba.prange(n * height):
        f = task // height
        r = task % height
        row = flux[f, r]
        for c in range(width):
            row[c] = np.float32(np.nan) if mask[r, c] else row[c] - static[r, c]


def subtract_and_mask(flux: np.ndarray, static: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``flux`` (n, rows, cols) float32 minus ``static``, NaN where ``mask``: in place, one pass."""
    if flux.dtype != np.float32 or flux.ndim != 3 or not flux.flags.writeable:
        raise TessBackmlError("subtract_and_mask works in place on writeable float32 frames (n, rows, cols)")
    shape = flux.shape[1:]
    if static.shape != shape or mask.shape != shape:
        raise TessBackmlError(f"static {static.shape} and mask {mask.shape} must match the frames' {shape}")
    _subtract_and_mask(flux, np.asarray(static, np.float32), np.asarray(mask, np.bool_))
    return flux


@functools.lru_cache(maxsize=16)
def rolling_noise_factor(img_bin: int) -> float:
    """Noise of a rolling-pooled bin relative to a fixed-bin median of the same pixels.

    The rolling passes take medians of overlapping windows, so their output is
    less noisy than one median over the bin. Measured once per bin size on
    Gaussian noise (fixed seed): the ratio of the output standard deviations.
    """
    img_bin = check_img_bin(img_bin)
    if img_bin == 1:
        return 1.0
    rng = np.random.default_rng(12345)
    size = 16 * img_bin
    noise = rng.standard_normal((24, size, size)).astype(np.float32)
    inner = slice(2, -2)  # away from the NaN border
    rolling = pool_frames(noise, img_bin, rolling=True)[:, inner, inner]
    fixed = pool_frames(noise, img_bin, rolling=False)[:, inner, inner]
    return float(rolling.std() / fixed.std())


def check_img_bin(img_bin, size: int = 2048) -> int:
    """Validate a bin size: a power of two that divides ``size``."""
    try:
        value = int(img_bin)
    except (TypeError, ValueError):
        raise TessBackmlError(f"img_bin must be an integer, got {img_bin!r}") from None
    if value != img_bin or value < 1 or value & (value - 1) or size % value:
        raise TessBackmlError(f"img_bin must be a power of two that divides {size} (1, 2, 4, ..., {size}), got {img_bin!r}")
    return value


def _as_frames(frames) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise TessBackmlError(f"frames must have shape (n, rows, cols), got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _output(frames: np.ndarray, factor: int, dtype=np.float32) -> np.ndarray:
    """An output array for ``frames`` shrunk by ``factor``, allocated by numpy.

    numpy asks the kernel for huge pages on large arrays; arrays allocated inside
    the numba kernels are faulted in 4 kB pages, which cost a quarter of the
    first rolling pass.
    """
    n, height, width = frames.shape
    return np.empty((n, height // factor, width // factor), dtype)


def pool_frames(frames, img_bin: int, rolling: bool = True, rows: slice | None = None) -> np.ndarray:
    """NaN-median pool frames by ``img_bin``.

    Parameters
    ----------
    frames : array_like (n, rows, cols) or (rows, cols)
        float32 images with NaN for masked pixels; rows and columns must be
        multiples of ``img_bin``.
    img_bin : int
        Power-of-two bin size.
    rolling : bool
        Iterated 4x4 / stride-2 NaN-median passes (True) or one fixed-bin
        NaN-median (False). See the module docstring.
    rows : slice, optional
        Rows of the output to compute (default all): a window pooled for its middle
        bins computes those alone, and of each rolling pass only the rows they reach.

    Returns
    -------
    ndarray (n, rows / img_bin, cols / img_bin) float32
        Or (n, len(range of ``rows``), cols / img_bin): the same values as the
        rows of the whole.
    """
    array = _as_frames(frames)
    img_bin = check_img_bin(img_bin, max(array.shape[1:]))
    if array.shape[1] % img_bin or array.shape[2] % img_bin:
        raise TessBackmlError(f"frame shape {array.shape[1:]} is not a multiple of img_bin={img_bin}")
    first, stop = _pooled_rows(rows, array.shape[1] // img_bin)
    if img_bin == 1:
        return array[:, first:stop].copy()
    if not rolling:
        window = array[:, first * img_bin : stop * img_bin]
        return _fixed_pass(window, img_bin, _output(window, img_bin))
    # the rows each pass must give, from the last back: output row i reads rows 2i - 1 .. 2i + 2
    spans = [(first, stop)]
    height = array.shape[1]
    for level in range(int(np.log2(img_bin)) - 1, 0, -1):
        lo, hi = spans[0]
        spans.insert(0, (max(2 * lo - 1, 0), min(2 * hi + 1, height >> level)))
    held = 0  # the first row of the level that ``array`` holds
    for lo, hi in spans:
        out = np.empty((array.shape[0], hi - lo, array.shape[2] // 2), np.float32)  # numpy's huge pages, see _output
        array = _rolling_pass(array, 8 * numba.get_num_threads(), out, 2 * lo - held)
        held = lo
    return array


def _pooled_rows(rows, height: int) -> tuple:
    """``rows`` (a slice of output rows, step 1) as (first, stop) within ``height``."""
    if rows is None:
        return 0, height
    first, stop, step = rows.indices(height)
    if step != 1 or stop <= first:
        raise TessBackmlError(f"rows must be a non-empty slice of consecutive output rows (0-{height}), got {rows}")
    return first, stop


def bin_errors(frames, errors, img_bin: int, extra_variance: float = 0.0, rows: slice | None = None):
    """Errors of the binned medians and the number of valid pixels per bin.

    The error of a bin is ``sqrt(pi/2) * rms(error) / sqrt(N)`` over its ``N``
    valid (non-NaN in ``frames``) pixels: the standard error of a median of
    Gaussian data. ``extra_variance`` adds a fractional variance to every pixel
    (e.g. the noise of the subtracted static scene). ``rows`` (a slice of whole
    bins) bins only those rows, without copying them out of the frames; ``errors``
    may then hold those rows alone.

    Returns
    -------
    errors : ndarray (n, rows / img_bin, cols / img_bin) float32
        NaN where a bin has no valid pixel.
    counts : ndarray (n, rows / img_bin, cols / img_bin) int32
    """
    flux = _as_frames(frames)
    error = _as_frames(errors)
    first, stop, _ = (rows or slice(None)).indices(flux.shape[1])
    if error.shape == flux.shape:
        error_first = first
    elif error.shape == (flux.shape[0], stop - first, flux.shape[2]):
        error_first = 0
    else:
        raise TessBackmlError(f"errors {error.shape} fit neither frames {flux.shape} nor their rows {first}:{stop}")
    img_bin = check_img_bin(img_bin, max(flux.shape[1:]))
    if first % img_bin or (stop - first) % img_bin:
        raise TessBackmlError(f"rows {first}:{stop} are not whole bins of {img_bin}")
    out = np.empty((flux.shape[0], (stop - first) // img_bin, flux.shape[2] // img_bin), np.float32)
    return _bin_error(flux, error, img_bin, float(extra_variance), first, error_first, out, np.empty(out.shape, np.int32))
