"""A MAST cube of a whole sector's length without its disk space: a sparse file.

``write_sparse_cube(template, path, nframes)`` copies the headers of a small astrocut
cube (``template``), declares ``nframes`` frames, leaves the image data as a hole
(the file system stores nothing; reads give zeros, through the page cache like any
file's) and writes a per-frame table of ``nframes`` rows (the template's rows
repeated, times evenly spread over the template's span). A build from it maps the
same pages, copies the same bytes and runs the same kernels per frame as from a real
sector's cube; only its pixels are zeros, so no disk is read.
"""

import io

import numpy as np
from astropy.io import fits


def write_sparse_cube(template: str, path: str, nframes: int) -> str:
    """Write the sparse cube ``path`` of ``nframes`` frames in ``template``'s layout."""
    with fits.open(template) as hdul:
        primary = hdul[0].header.copy()
        image = hdul[1].header.copy()
        table = hdul[2].data
        start, stop = float(table["TSTART"][0]), float(table["TSTOP"][-1])
        columns = [fits.Column(name=c.name, format=c.format, array=np.resize(np.asarray(table[c.name]), nframes))
                   for c in hdul[2].columns]
    rows = fits.BinTableHDU.from_columns(columns)
    edges = np.linspace(start, stop, nframes + 1)
    rows.data["TSTART"], rows.data["TSTOP"] = edges[:-1], edges[1:]
    rows.data["FFIINDEX"] = np.arange(nframes)
    rows.data["DQUALITY"] = 0
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), rows]).writeto(buffer)
    empty_primary = len(fits.PrimaryHDU().header.tostring())
    image["NAXIS2"] = nframes
    data_bytes = 2078 * 2136 * nframes * 2 * 4
    data_bytes += -data_bytes % 2880
    with open(path, "wb") as handle:
        handle.write(primary.tostring().encode("ascii"))
        handle.write(image.tostring().encode("ascii"))
        handle.seek(data_bytes, 1)  # the image: a hole
        handle.write(buffer.getvalue()[empty_primary:])
    return path
