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


def build_identity(cube) -> dict:
    """What determines a prepared cube's values (a checkpoint is only reused for the same):
    the package version, the CCD, the settings, the frames, the dark frames and the source."""
    import hashlib

    from .. import __version__

    digest = hashlib.sha1(np.ascontiguousarray(cube.frame_indices).tobytes()).hexdigest()[:16]
    where = getattr(cube.source, "url", getattr(cube.source, "path", getattr(cube.source, "seed", "")))
    return {
        "package_version": __version__, "sector": cube.sector, "camera": cube.camera, "ccd": cube.ccd,
        "img_bin": cube.img_bin, "downsize": cube.downsize, "rolling": cube.rolling, "errors": cube.errors,
        "block_rows": cube.block_rows, "tile_frames": cube.pooling.tile_frames, "frames": digest,
        "dark_frames": [int(i) for i in cube.dark_frames], "source": [type(cube.source).__name__, str(where)],
    }
