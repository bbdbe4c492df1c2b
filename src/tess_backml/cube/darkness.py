"""Darkness: the frames with the least scattered light, which make the static scene.

The median of a sparse pixel sample gives a background light curve; the
:data:`N_DARK_FRAMES` darkest good frames below its 3rd percentile are kept. The
search reads every candidate frame once, so its result is cached per source in a
JSON file in the user cache directory.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from .._files import atomic_output, cache_dir
from ..constants import SCIENCE_SIZE
from ..errors import TessBackmlError

log = logging.getLogger(__name__)

N_DARK_FRAMES = 10
SAMPLE_STEP = 32  # sparse sample every 32 pixels (4,096 points)
#: Frames read at once from frame-read sources.
READ_CHUNK = 8


def sample_pixels():
    """Sparse sample of science pixels (0-based): rows, columns, and the offsets of
    each point and its four neighbours."""
    centres = np.arange(SAMPLE_STEP // 2, SCIENCE_SIZE - 1, SAMPLE_STEP)
    rows, cols = (grid.ravel() for grid in np.meshgrid(centres, centres, indexing="ij"))
    offsets = [(0, 0), (1, 0), (-1, 0), (0, -1), (0, 1)]
    return rows, cols, offsets


def cache_key(source, sector, camera, ccd, quality_bits, candidates) -> str:
    """What the dark frames depend on: the source's times, quality and identity, the
    quality bits and the candidate frames."""
    digest = hashlib.sha1()
    for array in (source.time, source.quality, candidates):
        digest.update(np.ascontiguousarray(array).tobytes())
    identity = (type(source).__name__, getattr(source, "seed", None), getattr(source, "light_model_version", None), quality_bits)
    digest.update(repr(identity).encode())
    return f"s{sector:04d}-{camera}-{ccd}-{digest.hexdigest()[:16]}"


def background_light_curve(source, candidates, progress=False) -> np.ndarray:
    """Median of the sparse sample in each candidate frame (NaN for the other frames)."""
    from tqdm.auto import tqdm

    rows, cols, _ = sample_pixels()
    rows, cols = rows[::2], cols[::2]  # every other sample point, as the original did
    log.info("reading %d sample pixels of %d frames to find the dark frames", rows.size, candidates.size)
    level = np.full(source.nframes, np.nan)
    if source.cheap_read == "frames":
        starts = range(0, candidates.size, READ_CHUNK)
        for start in tqdm(starts, desc="dark frames", unit="chunk", disable=not progress):
            part = candidates[start : start + READ_CHUNK]
            flux, _ = source.read_frames(part)
            level[part] = np.nanmedian(flux[:, rows, cols], axis=1)
    else:
        flux, _ = source.read_pixels(rows, cols, candidates)
        level[candidates] = np.nanmedian(flux, axis=1)
    return level


def darkest_frames(level, candidates, low_per: float = 3.0):
    """The dark frames (sorted) and the darkest one, from the background light curve."""
    levels = level[candidates]
    dark = candidates[levels <= np.nanpercentile(levels, low_per)]
    dark = dark[np.argsort(level[dark], kind="stable")]
    if dark.size < N_DARK_FRAMES:
        dark = candidates[np.argsort(levels, kind="stable")][:N_DARK_FRAMES]
    return np.sort(dark[:N_DARK_FRAMES]), int(dark[0])


def find_dark_frames(source, candidates, key: str, progress=False, low_per: float = 3.0):
    """Dark frames among ``candidates``, from the cache under ``key`` or measured.

    Returns
    -------
    dark_frames : ndarray of int
        Sorted indices into the source's frames.
    darkest : int
        The darkest frame.
    level : ndarray or None
        The background light curve, when it was measured (not from the cache).
    """
    cache_file = cache_dir() / "dark_frames.json"
    try:
        cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        dark = np.asarray(cache[key], dtype=int)
        log.info("dark frames from the cache: %s", dark.tolist())
        return dark, int(dark[0]), None
    level = background_light_curve(source, candidates, progress)
    dark, darkest = darkest_frames(level, candidates, low_per)
    cache[key] = dark.tolist()
    try:
        with atomic_output(cache_file, "w") as stream:
            json.dump(cache, stream)
    except (OSError, TessBackmlError) as exc:
        log.debug("could not cache the dark frames: %s", exc)
    return dark, darkest, level
