"""The frame plan: which frames of a source a cube is built from."""

from __future__ import annotations

import numpy as np

from ..errors import TessBackmlError
from ..sources.base import frame_range_indices


def select_frames(source, bad, frames=None) -> np.ndarray:
    """Indices of the frames to process: the requested ones minus bad-quality frames.

    Parameters
    ----------
    source : tess_backml.sources.FFISource
        Where the frames come from.
    bad : ndarray of bool
        Per source frame: True where its quality flags exclude it.
    frames : slice, tuple or array of int, optional
        All frames (None), a ``START:STOP:STEP`` slice, the original package's
        ``(stop,)``, ``(start, stop)`` or ``(start, stop, step)``, or indices.
    """
    if frames is None:
        indices = np.arange(source.nframes)
    elif isinstance(frames, slice):
        indices = frame_range_indices(frames, source.nframes)
    elif isinstance(frames, tuple):
        return select_frames(source, bad, slice(*frames) if len(frames) > 1 else slice(0, frames[0]))
    else:
        indices = source.check_frames(frames)
    good = indices[~bad[indices]]
    if good.size == 0:
        raise TessBackmlError(f"no good frames to process: all {indices.size} selected frames have bad quality flags")
    return good
