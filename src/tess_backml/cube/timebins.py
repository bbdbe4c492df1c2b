"""Time binning: a cube's frames averaged in bins of a few hours, per orbit."""

from __future__ import annotations

import numpy as np

from ..errors import TessBackmlError

#: Frames further apart than this (days) belong to different orbits.
ORBIT_GAP_DAYS = 0.5


def time_bin_starts(time, bin_size: float) -> np.ndarray:
    """Index of the first frame of each time bin.

    Frames are split into orbits at gaps longer than :data:`ORBIT_GAP_DAYS`; each
    orbit is cut into bins of ``bin_size`` hours from its first frame. Empty bins do
    not appear.
    """
    if not (np.isfinite(bin_size) and bin_size > 0):
        raise TessBackmlError(f"bin_size must be a positive number of hours, got {bin_size}")
    time = np.asarray(time, dtype=float)
    orbit = np.concatenate([[0], np.cumsum(np.diff(time) > ORBIT_GAP_DAYS)])
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
        ``cube``, ``cube_err`` (float32), ``time``, ``cadenceno`` and
        ``frames_per_bin`` (N).
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
    }
