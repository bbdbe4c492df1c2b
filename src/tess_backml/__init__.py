"""tess-backml: isolate and remove the scattered light in TESS Full Frame Images."""

import logging
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tess-backml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "unknown"

log = logging.getLogger("tess_backml")

from .errors import EphemerisRangeError, FileFormatError, TessBackmlError  # noqa: E402


def __getattr__(name):
    # BackgroundCube pulls in numba and the sources: import it only when asked for.
    if name == "BackgroundCube":
        from .cube import BackgroundCube

        return BackgroundCube
    raise AttributeError(f"module 'tess_backml' has no attribute {name!r}")


__all__ = ["__version__", "log", "BackgroundCube", "TessBackmlError", "FileFormatError", "EphemerisRangeError"]
