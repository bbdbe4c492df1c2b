"""Small file-system helpers shared by the modules: cache directory, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import TessBackmlError


def cache_dir(*parts: str) -> Path:
    """A directory in the user cache (``TESS_BACKML_CACHE`` overrides it), created on demand."""
    root = os.environ.get("TESS_BACKML_CACHE")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("tess-backml")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_writable(path) -> Path:
    """Fail early, before long work, when ``path`` cannot be written."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise TessBackmlError(f"cannot write {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise TessBackmlError(f"cannot write {path}: directory {directory} is not writable")
    if path.is_dir():
        raise TessBackmlError(f"cannot write {path}: it is a directory")
    return path


@contextlib.contextmanager
def atomic_output(path, mode: str = "wb"):
    """Open a temporary file beside ``path`` and rename it to ``path`` only on success.

    A crash or an exception leaves no partial file at ``path`` (and removes the
    temporary one). Yields the temporary file's path when ``mode`` is None (for
    writers that want a file name), else an open file object.
    """
    path = check_writable(path)
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    os.close(handle)
    try:
        if mode is None:
            yield temporary
        else:
            with open(temporary, mode) as stream:
                yield stream
        # mkstemp makes files private (0600); give the output the usual umask permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def make_output_directory(path):
    """Create an output directory (and its parents), or fail clearly before any work."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise TessBackmlError(f"cannot create the output directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise TessBackmlError(f"the output directory {path} is not writable")


def release_free_memory():
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Threads that pass many large buffers through (downloads) leave freed memory in their
    own malloc arenas, which glibc keeps: over a build it grows with the bytes moved,
    not with what is in use. Trimming after each piece of such work keeps the peak set
    by the work."""
    global _malloc_trim
    if _malloc_trim is None:
        import ctypes
        import ctypes.util

        try:
            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None
