"""tess-backml: isolate and remove the scattered light in TESS Full Frame Images."""

import logging
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tess-backml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "unknown"

log = logging.getLogger("tess_backml")

from .errors import EphemerisRangeError, FileFormatError, TessBackmlError  # noqa: E402


# The public names and the module each lives in. They are imported on first use:
# the cube and the corrector pull in numba, lightkurve and the sources, which
# ``import tess_backml`` should not pay for.
_LAZY = {
    "BackgroundCube": "cube",
    "ScatterLightCorrector": "corrector",
    "correct": "corrector",
    "train_model": "model",
    "evaluate_model": "model",
    "load_model": "model",
    "save_model": "model",
}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tess_backml' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", "log", "TessBackmlError", "FileFormatError", "EphemerisRangeError", *_LAZY]
