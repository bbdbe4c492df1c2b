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


def _batcher_network(n: int) -> np.ndarray:
    """Compare-exchange pairs of Batcher's odd-even merge sort for ``n`` (a power of two) inputs."""
    pairs = []
    p = 1
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


def _network_stages(pairs: np.ndarray, n: int):
    """Group compare-exchanges into stages of disjoint pairs, keeping their order.

    Returns the pairs, the stage boundaries into them, and for each stage the
    lanes it does not touch. Each stage can then be applied out of place (from one
    buffer into another), which lets the compiler vectorise it.
    """
    bounds = [0]
    used = set()
    for k, (a, b) in enumerate(pairs):
        if a in used or b in used:
            bounds.append(k)
            used = set()
        used.update((int(a), int(b)))
    bounds.append(len(pairs))
    untouched = np.ones((len(bounds) - 1, n), bool)
    for stage in range(len(bounds) - 1):
        untouched[stage, pairs[bounds[stage] : bounds[stage + 1]].ravel()] = False
    return pairs, np.array(bounds, dtype=np.int64), untouched


#: 63 compare-exchanges that sort 16 values, in stages of disjoint pairs.
_NETWORK_16 = _network_stages(_batcher_network(16), 16)


@numba.njit(parallel=True, cache=True)
def _rolling_pass(src, pairs, bounds, untouched):
    """One 4x4 / stride-2 NaN-median pass with a one-pixel NaN border: (n, H, W) -> (n, H/2, W/2).

    Each output row is done at once: its windows' 16 values sit in 16 lanes
    (NaN and the border become +inf), a sorting network orders them with min/max
    over the lanes, stage by stage from one buffer into another (so the loops
    vectorise), and each window's median is read at the middle of its valid values.
    """
    n, height, width = src.shape
    out_h, out_w = height // 2, width // 2
    out = np.empty((n, out_h, out_w), np.float32)
    inf = np.float32(np.inf)
    for task in numba.prange(n * out_h):
        frame = task // out_h
        i = task % out_h
        lanes = np.empty((16, out_w), np.float32)
        spare = np.empty((16, out_w), np.float32)
        counts = np.zeros(out_w, np.int32)
        padded = np.empty(width + 2, np.float32)
        for dr in range(4):
            r = 2 * i - 1 + dr
            if r < 0 or r >= height:
                for dc in range(4):
                    lanes[4 * dr + dc, :] = inf
                continue
            row = src[frame, r]
            padded[0] = inf
            padded[width + 1] = inf
            for c in range(width):
                v = row[c]
                padded[c + 1] = v if v == v else inf
            for dc in range(4):
                lane = lanes[4 * dr + dc]
                for j in range(out_w):
                    v = padded[2 * j + dc]
                    lane[j] = v
                    counts[j] += v < inf
        current, other = lanes, spare
        for stage in range(bounds.shape[0] - 1):
            for lane in range(16):
                if untouched[stage, lane]:
                    other[lane, :] = current[lane, :]
            for k in range(bounds[stage], bounds[stage + 1]):
                a = current[pairs[k, 0]]
                b = current[pairs[k, 1]]
                low = other[pairs[k, 0]]
                high = other[pairs[k, 1]]
                for j in range(out_w):
                    x = a[j]
                    y = b[j]
                    low[j] = x if x < y else y
                    high[j] = y if x < y else x
            current, other = other, current
        for j in range(out_w):
            count = counts[j]
            if count == 0:
                out[frame, i, j] = np.nan
            elif count % 2:
                out[frame, i, j] = current[count // 2, j]
            else:
                out[frame, i, j] = np.float32(0.5) * (current[count // 2 - 1, j] + current[count // 2, j])
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
        totals = np.zeros(out_w, np.float32)
        valid_counts = np.zeros(out_w, np.int32)
        for r in range(i * size, (i + 1) * size):
            flux_row = flux[frame, r]
            error_row = error[frame, r]
            for j in range(out_w):
                total = np.float32(0.0)
                count = 0
                for c in range(j * size, (j + 1) * size):
                    valid = flux_row[c] == flux_row[c]
                    e = error_row[c]
                    total += e * e if valid else np.float32(0.0)
                    count += valid
                totals[j] += total
                valid_counts[j] += count
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
        array = _rolling_pass(array, *_NETWORK_16)
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
