"""TESS ephemeris from SPICE kernels (the ones ``lkspacecraft`` ships and downloads).

The kernels are loaded one file at a time, never through ``lkspacecraft``'s
meta-kernel: that file writes the install directory into ``PATH_VALUES`` in
130-character pieces, but SPICE cuts string values at 80 characters, so any
install path longer than that (a conda environment under a home directory is
enough) fails with ``SPICE(NOSUCHFILE)``. Its test meta-kernel also sits in the
user cache under one key for every environment, so the environment that imported
``lkspacecraft`` last decides where all of them look.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import re

import numpy as np

from ...constants import SECONDS_PER_DAY
from ...errors import EphemerisRangeError, TessBackmlError
from .base import BodyVectors, Ephemeris

log = logging.getLogger(__name__)

TESS_NAIF_ID = -95
#: Longest file name SPICE accepts (its FILSIZ).
SPICE_MAX_PATH = 255
_MISSION_META_KERNEL_URL = "https://github.com/lightkurve/lkspacecraft/src/lkspacecraft/data/Meta.txt"

_SPICE_STATE = {"loaded": None, "range": {}}


def lkspacecraft_test_kernels() -> list[str]:
    """The truncated kernels shipped inside the installed ``lkspacecraft``, found
    without importing it (importing it rewrites its meta-kernel in the user cache)."""
    spec = importlib.util.find_spec("lkspacecraft")
    if spec is None or not spec.submodule_search_locations:
        raise TessBackmlError("the lkspacecraft package is not installed")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data", "kernels", "testkernels")
    paths = sorted(glob.glob(os.path.join(folder, "*")))
    if not paths:
        raise TessBackmlError(f"lkspacecraft's test kernels are missing from {folder}; reinstall lkspacecraft")
    return paths


_ASSIGNMENT = re.compile(r"([A-Z_]+)\s*(\+?=)\s*\(([^)]*)\)", re.IGNORECASE | re.DOTALL)
_STRING = re.compile(r"'((?:[^']|'')*)'")


def kernel_paths_from_meta_kernel(text: str) -> list[str]:
    """The kernel files a SPICE meta-kernel names, in load order, as full paths.

    Follows SPICE's rules for meta-kernels: only ``\\begindata`` sections count,
    string values ending in ``+`` continue in the next value, and ``$SYMBOL`` in
    ``KERNELS_TO_LOAD`` stands for the ``PATH_VALUES`` entry of that name.
    """
    data = "".join(re.split(r"\\begintext", part, maxsplit=1)[0] for part in re.split(r"\\begindata", text)[1:])
    values: dict[str, list[str]] = {}
    for name, operator, body in _ASSIGNMENT.findall(data):
        strings = _join_continued([item.replace("''", "'") for item in _STRING.findall(body)])
        key = name.upper()
        values[key] = values.get(key, []) + strings if operator == "+=" else strings
    symbols = dict(zip(values.get("PATH_SYMBOLS", []), values.get("PATH_VALUES", [])))
    if len(values.get("PATH_SYMBOLS", [])) != len(values.get("PATH_VALUES", [])):
        raise TessBackmlError("the SPICE meta-kernel has different numbers of PATH_SYMBOLS and PATH_VALUES")
    paths = []
    for entry in values.get("KERNELS_TO_LOAD", []):
        for symbol, value in symbols.items():
            entry = entry.replace(f"${symbol}", value)
        paths.append(entry)
    return paths


def _join_continued(strings: list[str]) -> list[str]:
    joined, pending = [], ""
    for item in strings:
        if item.endswith("+"):
            pending += item[:-1]
        else:
            joined.append(pending + item)
            pending = ""
    if pending:
        joined.append(pending)
    return joined


def lkspacecraft_mission_kernels() -> list[str]:
    """The mission kernels, downloaded and cached by ``lkspacecraft`` (needs the internet
    the first time), as the file paths its meta-kernel names."""
    from astropy.utils.data import cache_contents
    from lkspacecraft.utils import create_meta_kernel

    create_meta_kernel()
    meta_path = cache_contents(pkgname="lkspacecraft")[_MISSION_META_KERNEL_URL]
    with open(meta_path, encoding="utf-8") as handle:
        return kernel_paths_from_meta_kernel(handle.read())


def short_path(path: str) -> str:
    """``path``, or when it is longer than SPICE accepts, a link to it (a copy where links
    are not allowed) under a short directory of the temporary folder."""
    if len(path) <= SPICE_MAX_PATH:
        return path
    import hashlib
    import shutil
    import tempfile

    folder = os.path.join(tempfile.gettempdir(), f"tess-backml-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}")
    os.makedirs(folder, exist_ok=True)
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    link = os.path.join(folder, f"{digest}-{os.path.basename(path)[-64:]}")
    if len(link) > SPICE_MAX_PATH:
        raise TessBackmlError(f"SPICE cannot open files whose path is over {SPICE_MAX_PATH} characters: {path}")
    if not os.path.exists(link):  # named after the path itself: an existing link is to it
        temporary = f"{link}.{os.getpid()}"
        try:
            os.symlink(os.path.abspath(path), temporary)
        except OSError:
            shutil.copyfile(path, temporary)
        os.replace(temporary, link)
    return link


def load_kernels(paths) -> tuple[float, float]:
    """Load kernel files into SPICE (replacing what was loaded) one by one, and
    return the JD (TDB) span over which the SPK files cover TESS.

    Files whose path is longer than SPICE accepts (255 characters) are loaded
    through a link with a short path."""
    import spiceypy

    spiceypy.kclear()
    for path in paths:
        if not os.path.isfile(path):
            raise TessBackmlError(f"SPICE kernel {path} does not exist")
    paths = [short_path(path) for path in paths]
    for path in paths:
        spiceypy.furnsh(path)
    start, stop = np.inf, -np.inf
    for path in paths:
        if not path.lower().endswith(".bsp") or TESS_NAIF_ID not in spiceypy.spkobj(path):
            continue
        cover = spiceypy.spkcov(path, TESS_NAIF_ID)
        for index in range(spiceypy.wncard(cover)):
            low, high = spiceypy.wnfetd(cover, index)
            start, stop = min(start, low), max(stop, high)
    if not np.isfinite(start):
        raise TessBackmlError("none of the SPICE kernels covers TESS")
    return start / SECONDS_PER_DAY + 2451545.0, stop / SECONDS_PER_DAY + 2451545.0


class SpiceEphemeris(Ephemeris):
    """TESS ephemeris from SPICE kernels, the ones ``lkspacecraft`` ships or downloads.

    Parameters
    ----------
    kernels : {"auto", "test", "mission"}
        ``"test"``: the truncated kernels shipped in ``lkspacecraft`` (offline;
        2018-10-09 to 2018-11-17, all of Sector 4). ``"mission"``: the mission
        kernels, which ``lkspacecraft`` downloads from MAST and caches (needs the
        internet the first time). ``"auto"`` (default): the test kernels when they
        cover the requested times, the mission kernels otherwise.
    """

    how_to_extend = (
        "Connect to the internet once so lkspacecraft can download the mission SPICE "
        "kernels (kernels='mission'), or download a JPL Horizons vector table for TESS "
        "(target -95, CSV) and pass it as the ephemeris (--ephemeris FILE)."
    )

    def __init__(self, kernels: str = "auto"):
        if kernels not in ("auto", "test", "mission"):
            raise TessBackmlError(f"kernels must be 'auto', 'test' or 'mission', got {kernels!r}")
        self.kernels = kernels

    def __repr__(self):
        return f"SpiceEphemeris(kernels={self.kernels!r})"

    def __str__(self):
        return f"the SPICE {self.kernels} kernels"

    @staticmethod
    def _load(mode: str) -> tuple[float, float]:
        """Load a kernel set into SPICE (a process-wide state) and return its JD range."""
        if _SPICE_STATE["loaded"] == mode:
            return _SPICE_STATE["range"][mode]
        _SPICE_STATE["loaded"] = None
        try:
            paths = lkspacecraft_test_kernels() if mode == "test" else lkspacecraft_mission_kernels()
            span = load_kernels(paths)
        except Exception as exc:  # network errors, missing cache: all mean "not available"
            raise EphemerisRangeError(
                f"could not load the {mode} SPICE kernels ({(str(exc).strip() or type(exc).__name__).splitlines()[-1]}). "
                "Without the internet only the test kernels (Sector 4) are available; "
                "a JPL Horizons vector table for TESS works offline for any dates."
            ) from None
        _SPICE_STATE["loaded"] = mode
        _SPICE_STATE["range"][mode] = span
        log.debug("loaded SPICE %s kernels covering JD %.3f-%.3f", mode, *span)
        return span

    def _mode_for(self, jd_tdb=None) -> str:
        if self.kernels != "auto":
            return self.kernels
        test_range = self._load("test")
        if jd_tdb is None:
            return "test"
        jd = np.asarray(jd_tdb)
        if np.all((jd >= test_range[0]) & (jd <= test_range[1])):
            return "test"
        return "mission"

    @property
    def jd_range(self):
        return self._load(self._mode_for())

    def _span_for(self, jd):
        if self.kernels == "auto":  # the kernels the times call for, not the default ones
            mode = self._mode_for(jd)
            return self._load(mode), f"the SPICE {mode} kernels"
        return super()._span_for(jd)

    def _positions(self, jd_tdb):
        import spiceypy

        self._load(self._mode_for(jd_tdb))
        # ET is TDB seconds past J2000: no leap-second table needed.
        et = (np.asarray(jd_tdb, dtype=float) - 2451545.0) * SECONDS_PER_DAY
        observer = "-95"

        def position(target, origin):
            try:
                vectors, _ = spiceypy.spkpos(target, et, "J2000", "NONE", origin)
            except spiceypy.utils.exceptions.SpiceyError as exc:
                raise EphemerisRangeError(
                    f"SPICE has no data for {target} relative to {origin} at the requested "
                    f"times ({str(exc).strip().splitlines()[-1]}). {self.how_to_extend}"
                ) from None
            return np.atleast_2d(np.asarray(vectors, dtype=float))

        return BodyVectors(
            jd_tdb=np.asarray(jd_tdb, dtype=float),
            earth=position("EARTH", observer),
            moon=position("MOON", observer),
            spacecraft_ssb=position(observer, "SOLAR SYSTEM BARYCENTER"),
        )
