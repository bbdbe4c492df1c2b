"""Exceptions that mean "the input is wrong", as opposed to a bug.

The command line turns these into one clear line and exit status 2.
"""


class TessBackmlError(ValueError):
    """Bad input given to tess-backml: an argument, a file or a time range."""


class FileFormatError(TessBackmlError):
    """A file is not in the format it claims to be (or is truncated)."""


class EphemerisRangeError(TessBackmlError):
    """Requested times are outside the span an ephemeris covers."""
