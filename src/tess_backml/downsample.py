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


def _batcher_network(n: int, first_merge: int = 1) -> np.ndarray:
    """Compare-exchange pairs of Batcher's odd-even merge sort for ``n`` (a power of two) inputs.

    With ``first_merge=m`` only the merges of sorted runs of length ``m`` and up are
    kept: ``_batcher_network(16, 8)`` merges two sorted halves of 8.
    """
    pairs = []
    p = first_merge
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, dtype=np.int64)


def _network_stages(pairs: np.ndarray, n: int, needed=None):
    """Group compare-exchanges into stages of disjoint pairs, keeping their order.

    With ``needed`` (the output lanes that will be read), compare-exchanges that
    cannot affect those lanes are dropped. Returns the pairs, the stage
    boundaries into them, and for each stage the lanes it must carry over
    unchanged (untouched by the stage, but read later). Each stage can then be
    applied out of place, from one buffer into another, which vectorises.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if needed is not None:
        live = set(needed)
        kept = []
        for a, b in pairs[::-1]:
            if a in live or b in live:
                kept.append((a, b))
                live |= {int(a), int(b)}
        pairs = np.array(kept[::-1], dtype=np.int64).reshape(-1, 2)
    final = set(range(n)) if needed is None else set(needed)
    bounds = [0]
    used = set()
    for k, (a, b) in enumerate(pairs):
        if a in used or b in used:
            bounds.append(k)
            used = set()
        used.update((int(a), int(b)))
    bounds.append(len(pairs))
    carry = np.zeros((len(bounds) - 1, n), bool)
    for stage in range(len(bounds) - 1):
        later = set(pairs[bounds[stage + 1] :].ravel().tolist()) | final
        touched = set(pairs[bounds[stage] : bounds[stage + 1]].ravel().tolist())
        for lane in later - touched:
            carry[stage, lane] = True
    return pairs, np.array(bounds, dtype=np.int64), carry


#: The merge of two sorted runs of 8 down to the ranks a median of at most 16 values
#: reads (0-8), less its first stage (done while loading).
#: 5 that sort the 4 values of a 2 x 2 quad, and the merge of two sorted quads (9, of
#: which the first stage, lane i against lane i + 4, is done while loading).
_SORT_4 = _network_stages(_batcher_network(4), 4)
_QUAD_FIRST_STAGE = np.array([(i, i + 4) for i in range(4)])
assert np.array_equal(_batcher_network(8, first_merge=4)[:4], _QUAD_FIRST_STAGE)
_MERGE_4_4 = _network_stages(_batcher_network(8, first_merge=4)[4:], 8)
_MERGE_FIRST_STAGE = np.array([(i, i + 8) for i in range(8)])
assert np.array_equal(_batcher_network(16, first_merge=8)[:8], _MERGE_FIRST_STAGE)
_MERGE_8_8 = _network_stages(_batcher_network(16, first_merge=8)[8:], 16, needed=range(9))


@numba.njit(cache=True, inline="always")
def _apply_stages(buffers, pairs, bounds, carry, width):
    """Run a staged compare-exchange network over lanes, out of place.

    ``buffers`` is (2, lanes, width): stage ``s`` reads ``buffers[s % 2]`` and
    writes ``buffers[1 - s % 2]``. Returns the index of the buffer holding the
    result. (Swapping array variables, or numba slice assignment, stops LLVM from
    vectorising these loops; parity indexing and plain loops do not.)
    """
    for stage in range(bounds.shape[0] - 1):
        current = buffers[stage % 2]
        other = buffers[1 - stage % 2]
        for lane in range(current.shape[0]):
            if carry[stage, lane]:
                source = current[lane]
                target = other[lane]
                for j in range(width):
                    target[j] = source[j]
        for k in range(bounds[stage], bounds[stage + 1]):
            a = current[pairs[k, 0]]
            b = current[pairs[k, 1]]
            low = other[pairs[k, 0]]
            high = other[pairs[k, 1]]
            for j in range(width):
                x = a[j]
                y = b[j]
                low[j] = x if x < y else y
                high[j] = y if x < y else x
    return (bounds.shape[0] - 1) % 2


@numba.njit(cache=True, inline="always")
def _load_quads(src, frame, r0, quads, counts, out_w):
    """Sorted 2 x 2 quads of input rows r0, r0 + 1 (quad k: columns 2k - 1, 2k); NaN and
    the border become +inf. ``quads`` is (2, 4, out_w + 1); returns the buffer index."""
    height, width = src.shape[1], src.shape[2]
    inf = np.float32(np.inf)
    lanes = quads[0]
    for k in range(out_w + 1):
        counts[k] = 0
    for dr in range(2):
        r = r0 + dr
        left = lanes[2 * dr]
        right = lanes[2 * dr + 1]
        if r < 0 or r >= height:
            for k in range(out_w + 1):
                left[k] = inf
                right[k] = inf
            continue
        row = src[frame, r]
        left[0] = inf
        right[out_w] = inf
        for k in range(out_w):
            v = row[2 * k]
            v = v if v == v else inf
            right[k] = v
            counts[k] += v < inf
            w = row[2 * k + 1]
            w = w if w == w else inf
            left[k + 1] = w
            counts[k + 1] += w < inf
    return _apply_stages(quads, _SORT_4[0], _SORT_4[1], _SORT_4[2], out_w + 1)


@numba.njit(parallel=True, cache=True)
def _rolling_pass(src, chunks):
    """One 4x4 / stride-2 NaN-median pass with a one-pixel NaN border: (n, H, W) -> (n, H/2, W/2).

    Windows overlap by two rows and two columns, so the work is shared: each
    pair of input rows is cut into 2 x 2 quads, sorted once (and reused by the
    next output row); two quads merge into a sorted 4 x 2 cell, shared by two
    neighbouring windows; each window merges its two cells, keeping the ranks a
    median needs. Values sit in lanes (NaN and the border become +inf) and the
    networks run stage by stage from one buffer into another, so the min/max
    loops vectorise. A window's median is read at the middle of its valid values.
    """
    n, height, width = src.shape
    out_h, out_w = height // 2, width // 2
    out = np.empty((n, out_h, out_w), np.float32)
    tasks = n * out_h
    chunks = max(min(chunks, tasks), 1)
    for chunk in numba.prange(chunks):
        # buffers are allocated once per chunk of consecutive rows, not once per row
        top = np.empty((2, 4, out_w + 1), np.float32)
        bottom = np.empty((2, 4, out_w + 1), np.float32)
        top_counts = np.zeros(out_w + 1, np.int32)
        bottom_counts = np.zeros(out_w + 1, np.int32)
        cells = np.empty((2, 8, out_w + 1), np.float32)
        lanes = np.empty((2, 16, out_w), np.float32)
        top_index = 0
        bottom_index = 0
        previous = -2
        for task in range(chunk * tasks // chunks, (chunk + 1) * tasks // chunks):
            frame = task // out_h
            i = task % out_h
            # output row i reads input rows 2i - 1 .. 2i + 2: quads of rows (2i - 1, 2i) and
            # (2i + 1, 2i + 2); the first are the previous row's second quads.
            if task == previous + 1 and i > 0:
                top, bottom = bottom, top
                top_counts, bottom_counts = bottom_counts, top_counts
                top_index = bottom_index
            else:
                top_index = _load_quads(src, frame, 2 * i - 1, top, top_counts, out_w)
            bottom_index = _load_quads(src, frame, 2 * i + 1, bottom, bottom_counts, out_w)
            previous = task
            # merge the two sorted quads into sorted 8-value cells; first stage while loading
            upper = top[top_index]
            lower = bottom[bottom_index]
            first = cells[0]
            for lane in range(4):
                a = upper[lane]
                b = lower[lane]
                low = first[lane]
                high = first[4 + lane]
                for k in range(out_w + 1):
                    x = a[k]
                    y = b[k]
                    low[k] = x if x < y else y
                    high[k] = y if x < y else x
            ordered = cells[_apply_stages(cells, _MERGE_4_4[0], _MERGE_4_4[1], _MERGE_4_4[2], out_w + 1)]
            # window j merges cell j (lanes 0-7) with cell j + 1 (lanes 8-15); first stage here
            first = lanes[0]
            for lane in range(8):
                source = ordered[lane]
                low = first[lane]
                high = first[8 + lane]
                for j in range(out_w):
                    x = source[j]
                    y = source[j + 1]
                    low[j] = x if x < y else y
                    high[j] = y if x < y else x
            merged = lanes[_apply_stages(lanes, _MERGE_8_8[0], _MERGE_8_8[1], _MERGE_8_8[2], out_w)]
            result = out[frame, i]
            for j in range(out_w):
                # branch-free median: for an odd count both ranks are the same value, and
                # 0.5 * (x + x) == x exactly
                count = top_counts[j] + top_counts[j + 1] + bottom_counts[j] + bottom_counts[j + 1]
                below = merged[max(count - 1, 0) // 2, j]
                above = merged[count // 2, j]
                value = np.float32(0.5) * (below + above)
                result[j] = value if count > 0 else np.float32(np.nan)
    return out


@numba.njit(parallel=True, cache=True)
def _fixed_pass(src, size):
    """NaN-median of non-overlapping size x size blocks: (n, H, W) -> (n, H/size, W/size)."""
    n, height, width = src.shape
    out_h, out_w = height // size, width // size
    out = np.empty((n, out_h, out_w), np.float32)
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


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _bin_error(flux, error, size, extra_variance):
    """Error of a bin's median: sqrt(pi/2) * rms(error) / sqrt(N) over its valid pixels, and N.

    Sums may be reassociated (vectorised); NaN semantics are kept.
    """
    n, height, width = flux.shape
    out_h, out_w = height // size, width // size
    out = np.empty((n, out_h, out_w), np.float32)
    counts = np.zeros((n, out_h, out_w), np.int32)
    efficiency = np.sqrt(np.pi / 2)
    for task in numba.prange(n * out_h):
        frame = task // out_h
        i = task % out_h
        column_totals = np.zeros(width, np.float32)
        column_counts = np.zeros(width, np.int32)
        for r in range(i * size, (i + 1) * size):
            flux_row = flux[frame, r]
            error_row = error[frame, r]
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


def pool_frames(frames, img_bin: int, rolling: bool = True) -> np.ndarray:
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

    Returns
    -------
    ndarray (n, rows / img_bin, cols / img_bin) float32
    """
    array = _as_frames(frames)
    img_bin = check_img_bin(img_bin, max(array.shape[1:]))
    if array.shape[1] % img_bin or array.shape[2] % img_bin:
        raise TessBackmlError(f"frame shape {array.shape[1:]} is not a multiple of img_bin={img_bin}")
    if img_bin == 1:
        return array.copy()
    if not rolling:
        return _fixed_pass(array, img_bin)
    for _ in range(int(np.log2(img_bin))):
        array = _rolling_pass(array, 8 * numba.get_num_threads())
    return array


def bin_errors(frames, errors, img_bin: int, extra_variance: float = 0.0):
    """Errors of the binned medians and the number of valid pixels per bin.

    The error of a bin is ``sqrt(pi/2) * rms(error) / sqrt(N)`` over its ``N``
    valid (non-NaN in ``frames``) pixels: the standard error of a median of
    Gaussian data. ``extra_variance`` adds a fractional variance to every pixel
    (e.g. the noise of the subtracted static scene).

    Returns
    -------
    errors : ndarray (n, rows / img_bin, cols / img_bin) float32
        NaN where a bin has no valid pixel.
    counts : ndarray (n, rows / img_bin, cols / img_bin) int32
    """
    flux = _as_frames(frames)
    error = _as_frames(errors)
    if flux.shape != error.shape:
        raise TessBackmlError(f"frames {flux.shape} and errors {error.shape} differ in shape")
    img_bin = check_img_bin(img_bin, max(flux.shape[1:]))
    return _bin_error(flux, error, img_bin, float(extra_variance))
