"""Time binning: a cube's frames averaged in bins of a few hours, per orbit."""

from __future__ import annotations

import numpy as np

from ..errors import TessBackmlError

#: Frames further apart than this (days) belong to different orbits.
ORBIT_GAP_DAYS = 0.5


def orbits(time) -> np.ndarray:
    """Orbit number (0, 1, ...) of each frame: a new orbit after every gap longer than
    :data:`ORBIT_GAP_DAYS`."""
    return np.concatenate([[0], np.cumsum(np.diff(np.asarray(time, dtype=float)) > ORBIT_GAP_DAYS)])


def time_bin_starts(time, bin_size: float) -> np.ndarray:
    """Index of the first frame of each time bin.

    Frames are split into orbits at gaps longer than :data:`ORBIT_GAP_DAYS`; each
    orbit is cut into bins of ``bin_size`` hours from its first frame. Empty bins do
    not appear.
    """
    if isinstance(bin_size, bool) or not isinstance(bin_size, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(bin_size) and bin_size > 0):
        raise TessBackmlError(f"bin_size must be a positive number of hours, got {bin_size!r}")
    time = np.asarray(time, dtype=float)
    orbit = orbits(time)
    labels = np.empty(len(time), np.int64)
    width = bin_size / 24.0
    offset = 0
    for k in np.unique(orbit):
        members = orbit == k
        # the small tolerance keeps a frame that falls on a bin edge in the later bin
        local = np.floor((time[members] - time[members][0]) / width + 1e-6).astype(np.int64)
        labels[members] = local + offset
        offset = labels[members].max() + 1
    return np.flatnonzero(np.r_[True, np.diff(labels) != 0])


def bin_in_time(starts, time, cadenceno, cube, cube_err) -> dict:
    """Average frames in the bins that begin at ``starts``.

    A bin's value is the mean of its frames; its error the error of that mean,
    ``sqrt(sum(err^2)) / N``; its time and cadence number the means of its frames'.

    Returns
    -------
    dict
        ``cube``, ``cube_err`` (float32), ``time``, ``cadenceno``,
        ``frames_per_bin`` (N), and ``start``, ``stop``: the times of each bin's first
        and last frame.
    """
    n = np.diff(np.r_[starts, len(time)])
    binned = np.add.reduceat(np.asarray(cube, np.float64), starts, axis=0) / n[:, None, None]
    variance = np.add.reduceat(np.asarray(cube_err, np.float64) ** 2, starts, axis=0)
    return {
        "cube": binned.astype(np.float32),
        "cube_err": (np.sqrt(variance) / n[:, None, None]).astype(np.float32),
        "time": np.add.reduceat(time, starts) / n,
        "cadenceno": np.add.reduceat(np.asarray(cadenceno, float), starts) / n,
        "frames_per_bin": n,
        "start": np.asarray(time, float)[starts],
        "stop": np.asarray(time, float)[starts + n - 1],
    }


def _reconstruction(time, values, starts):
    """Bin means followed at every frame by a quadratic interpolating spline through them
    (per orbit; constant beyond the first and last bin), as the corrector reads a cube."""
    from scipy.interpolate import make_interp_spline

    count = np.diff(np.r_[starts, len(time)])
    centres = np.add.reduceat(time, starts) / count
    means = np.add.reduceat(values, starts, axis=0) / count[:, None]
    out = np.empty_like(values)
    orbit_of_frame = orbits(time)
    orbit_of_bin = orbit_of_frame[starts]  # bins never span an orbit gap
    for orbit in np.unique(orbit_of_bin):
        nodes = orbit_of_bin == orbit
        frames = orbit_of_frame == orbit
        x, y = centres[nodes], means[nodes]
        where = np.clip(time[frames], x[0], x[-1])
        out[frames] = make_interp_spline(x, y, k=min(2, x.size - 1))(where) if x.size > 1 else y[0]
    return out


def adaptive_bin_starts(time, values, errors, bin_size: float, max_factor: float = 2.0, threshold: float = 4.0,
                        max_rounds: int = 12) -> np.ndarray:
    """Time bins of ``bin_size`` hours where the light is smooth, split where it changes
    faster than its errors let a spline through the bin means follow.

    A bin fails when its frames' residuals from that spline, in units of their errors,
    have a mean square above ``threshold`` (pixels and frames pooled). Each round
    halves the failing bins, worst first (down to single frames), and the spline is
    fitted again; it stops when no bin fails, after ``max_rounds`` rounds, or when the
    bins reach ``max_factor`` times the fixed bins' number.

    Parameters
    ----------
    time : ndarray (nframes,)
        BTJD, increasing.
    values, errors : ndarray (nframes,) or (nframes, npix)
        The light and its errors at each frame (e.g. a cube's pixels, flattened).
    bin_size : float
        Hours.

    Returns
    -------
    ndarray of int
        Index of each bin's first frame.
    """
    if not (np.isfinite(max_factor) and max_factor >= 1):
        raise TessBackmlError(f"max_factor must be at least 1, got {max_factor}")
    if not (np.isfinite(threshold) and threshold > 0):
        raise TessBackmlError(f"threshold must be a positive number, got {threshold}")
    time = np.asarray(time, float)
    values = np.asarray(values, float).reshape(len(time), -1)
    errors = np.asarray(errors, float).reshape(len(time), -1)
    weight = 1.0 / np.square(np.where(errors > 0, errors, np.nanmedian(errors[errors > 0]) if np.any(errors > 0) else 1.0))
    starts = time_bin_starts(time, bin_size)
    budget = int(max_factor * len(starts))
    for _ in range(max_rounds):
        residual = np.square(values - _reconstruction(time, values, starts)) * weight
        count = np.diff(np.r_[starts, len(time)])
        badness = np.add.reduceat(residual.mean(axis=1), starts) / count
        failing = np.flatnonzero((badness > threshold) & (count > 1))
        room = budget - len(starts)
        if failing.size == 0 or room <= 0:
            break
        split = failing[np.argsort(-badness[failing], kind="stable")][:room]
        middles = starts[split] + count[split] // 2
        starts = np.union1d(starts, middles)
    return starts


def bin_starts(time, cube, cube_err, bin_size: float, adaptive: bool = False) -> np.ndarray:
    """First frame of each time bin of a cube (ntime, nrow, ncol): fixed bins of
    ``bin_size`` hours, or :func:`adaptive_bin_starts` over all its bins."""
    if not adaptive:
        return time_bin_starts(time, bin_size)
    n = len(time)
    return adaptive_bin_starts(time, np.asarray(cube).reshape(n, -1), np.asarray(cube_err).reshape(n, -1), bin_size)
