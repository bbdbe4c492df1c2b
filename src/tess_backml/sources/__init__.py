"""Where FFI pixels come from.

Every source implements :class:`FFISource`: sector, camera, CCD, per-frame
times (BTJD), cadence numbers, quality flags, the primary header, and three
reads of science-region pixels (0-based science indices): ``read_frames``,
``read_rows`` and ``read_pixels``.

=====================  =============================  ==================
source                 pixels stored                  cheap read
=====================  =============================  ==================
:class:`MASTCubeSource`  pixel-major (time series)     ``read_rows``, ``read_pixels``
:class:`FFIFilesSource`  one file per frame            ``read_frames``
:class:`SimulatedSector` generated per frame           ``read_frames``
=====================  =============================  ==================

The simulated sector's scattered-light model is in ``sim_light`` and its SPOC-format
files in ``sim_files``.
"""

from __future__ import annotations

import os

from ..errors import TessBackmlError
from .base import FFISource
from .ffi_files import FFIFilesSource
from .mast import MASTCubeSource, mast_cube_url
from .simulated import SimulatedSector
from .staging import check_scratch_dir

__all__ = ["FFISource", "FFIFilesSource", "MASTCubeSource", "SimulatedSector", "mast_cube_url", "resolve_source"]


def resolve_source(source, sector=None, camera=None, ccd=None, scratch_dir=None, **options) -> FFISource:
    """Turn a source description into an :class:`FFISource`.

    Parameters
    ----------
    source : FFISource or str
        An existing source; ``"sim"`` (the simulated sector); ``"mast"`` (the
        public S3 cube of the sector/camera/CCD); or a path or URL: a directory or
        glob of FFI files, or a cube file (any fsspec URL).
    sector, camera, ccd : int, optional
        Needed for ``"sim"`` and ``"mast"``; checked against the source otherwise.
    scratch_dir : path, optional
        Where a MAST cube's scratch bands go (see :class:`MASTCubeSource`); sources
        that need no scratch disk ignore it.
    **options
        Passed to the source's constructor.
    """
    if isinstance(source, FFISource):
        resolved = source
    elif not isinstance(source, (str, os.PathLike)):
        raise TessBackmlError(f"source must be 'sim', 'mast', a path or an FFISource, got {source!r}")
    elif str(source) == "sim":
        resolved = SimulatedSector(
            sector=4 if sector is None else sector,
            camera=1 if camera is None else camera,
            ccd=1 if ccd is None else ccd,
            **options,
        )
    elif str(source) == "mast":
        if None in (sector, camera, ccd):
            raise TessBackmlError("source 'mast' needs the sector, camera and CCD")
        resolved = MASTCubeSource(mast_cube_url(sector, camera, ccd), **options)
    else:
        text = str(source)
        is_local = "://" not in text or text.startswith("file://")
        local = text[7:] if text.startswith("file://") else text
        if is_local and (os.path.isdir(local) or any(ch in local for ch in "*?[")):
            resolved = FFIFilesSource(local, **options)
        elif is_local and not os.path.exists(local):
            raise TessBackmlError(f"no such file or directory: {text}")
        else:
            resolved = MASTCubeSource(text, **options)
    if scratch_dir is not None and isinstance(resolved, MASTCubeSource):
        resolved.scratch_dir = check_scratch_dir(scratch_dir)
    for name, wanted in (("sector", sector), ("camera", camera), ("ccd", ccd)):
        if wanted is not None and getattr(resolved, name) != wanted:
            raise TessBackmlError(
                f"{resolved} is {name} {getattr(resolved, name)}, but {name} {wanted} was asked for"
            )
    return resolved
