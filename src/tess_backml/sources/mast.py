"""MAST FFI cubes (made by ``astrocut.CubeFactory``), local or remote through fsspec."""

from __future__ import annotations

import logging
import os
import re
import time

import numpy as np
from astropy.io import fits

from ..constants import FFI_SHAPE, SCIENCE_COLUMNS, SCIENCE_ROWS, SCIENCE_SIZE
from ..errors import FileFormatError, TessBackmlError
from .bands import in_order, read_staged, to_frame_major, write_band
from .base import FFISource, cadence_numbers, mid_times
from .ranges import HTTPRangeReader, anonymous_http_url, write_at
from .staging import check_scratch_dir

log = logging.getLogger(__name__)

MAST_CUBE_URL = "s3://stpubdata/tess/public/mast/tess-s{sector:04d}-{camera}-{ccd}-cube.fits"
_BYTES_PER_VALUE = 4  # big-endian float32


def mast_cube_url(sector: int, camera: int, ccd: int) -> str:
    """The public S3 URL of the MAST FFI cube of a sector/camera/CCD (anonymous access)."""
    from ..geometry import validate_camera_ccd, validate_sector

    sector = validate_sector(sector)
    camera, ccd = validate_camera_ccd(camera, ccd)
    return MAST_CUBE_URL.format(sector=sector, camera=camera, ccd=ccd)


def open_filesystem(url: str, storage_options=None):
    """fsspec filesystem and path for ``url``; S3 is anonymous unless options say otherwise."""
    import fsspec

    options = dict(storage_options or {})
    if url.startswith("s3://"):
        options.setdefault("anon", True)
        # fsspec would hand back a file system made earlier with the same options, whose
        # endpoint is what AWS_ENDPOINT_URL said then: a new one reads it now
        options.setdefault("skip_instance_cache", True)
        if "AWS_MAX_ATTEMPTS" not in os.environ:
            # a source tries again itself (MASTCubeSource.retries): botocore's own five
            # attempts per try made an offline open take 28 s to say so, instead of 5
            config = dict(options.get("config_kwargs") or {})
            config.setdefault("retries", {"total_max_attempts": 1})
            options["config_kwargs"] = config
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        extra = " (pip install 'tess-backml[cloud]')" if url.startswith("s3://") else ""
        raise TessBackmlError(f"cannot open {url}: {exc}{extra}") from None
    except ValueError as exc:
        raise TessBackmlError(f"cannot open {url}: {exc}") from None


def merged_spans(starts, lengths, most: int) -> list:
    """Ranges ``[start, start + length)`` merged where they touch or overlap, while a
    merged span stays within ``most`` bytes: ``[(start, stop, [indices]), ...]``."""
    starts = np.asarray(starts, np.int64)
    lengths = np.broadcast_to(np.asarray(lengths, np.int64), starts.shape)
    spans = []
    for i in np.argsort(starts, kind="stable"):
        start, stop = int(starts[i]), int(starts[i] + lengths[i])
        if spans and start <= spans[-1][1] and max(stop, spans[-1][1]) - spans[-1][0] <= most:
            spans[-1][1] = max(stop, spans[-1][1])
            spans[-1][2].append(int(i))
        else:
            spans.append([start, stop, [int(i)]])
    return [tuple(span) for span in spans]


#: Local cubes of up to this many frames are read through memory maps by default (a
#: pixel's series is then at most half a page), which needs no scratch disk; longer
#: ones, every real sector, are copied in bands: 11x faster at 1,219 frames (sparse
#: cubes of the real layout, ``benchmarks/bench_long_cube.py``). At 160 frames bands
#: are faster too (1.22x against 0.97x the FFI files' rate, ``bench_cube.py``).
MAPPED_MOST_FRAMES = 256


class MASTCubeSource(FFISource):
    """A MAST/astrocut FFI cube: one file per sector/camera/CCD.

    The cube's image HDU has numpy shape ``(2078, 2136, nframes, 2)``: each
    pixel's whole (flux, error) time series is contiguous, and a block of image
    rows is one contiguous byte range. So :meth:`read_rows` (consecutive range
    requests of up to :attr:`read_bytes`, keeping only the frames asked for)
    and :meth:`read_pixels` (one small range per pixel) are cheap, while
    :meth:`read_frames` must read the whole science region (it streams it in
    row blocks). Headers and the per-frame table are parsed on opening
    without touching the pixel data; the cube is never held in memory.

    Parameters
    ----------
    path_or_url : str
        A local path or any fsspec URL: ``s3://stpubdata/...`` (anonymous; needs
        the ``cloud`` extra), ``https://...``, ``file://...``.
    storage_options : dict, optional
        Passed to fsspec (e.g. ``{"anon": False}`` for credentials).
    block_rows : int
        Rows per block when :meth:`read_frames` streams the cube.
    memmap : bool, optional
        Read a local file through memory maps (:attr:`frame_ranges_cheap`; builds go
        in tiles of rows x frames), or copy it in bands of rows to scratch files as
        remote files are (:mod:`~tess_backml.sources.staging`). Default: maps up to
        :data:`MAPPED_MOST_FRAMES` frames; beyond, a tile of a few dozen frames maps a
        4 kB page per pixel for a few hundred bytes (11x slower at 1,219 frames).
    scratch_dir : str, optional
        Where the bands go (default ``TMPDIR``): 15 bands of 8 rows of every frame
        (2.5 GB at 30-min cadence, 23 GB at 200 s), and for a remote cube two bands of
        rows as fetched (2.8 and 26 GB in all).

    Attributes
    ----------
    bytes_read : int
        Bytes requested from the file or object store so far (data reads, retries
        included; not the headers): what a build costs in I/O.
    """

    cheap_read = "rows"
    #: Largest single remote read (bytes): a band of rows is downloaded in pieces of
    #: this size (all at once over plain HTTP, which writes them to the scratch file as
    #: they arrive; :attr:`concurrent_reads` at a time through fsspec, which holds them);
    #: and rows mapped at once.
    read_bytes = 16 * 2**20
    concurrent_reads = 4
    #: Bytes of pixel series requested at once by :meth:`read_pixels` (they are cut to
    #: the frames asked for before the next group: memory does not grow with the sector).
    pixel_read_bytes = 16 * 2**20
    #: Tries per remote read, and the first wait between tries (doubling each time).
    retries = 4
    backoff_seconds = 0.5

    def __init__(self, path_or_url, storage_options=None, block_rows: int = 32, memmap: bool | None = None,
                 scratch_dir=None):
        self.url = str(path_or_url)
        self.block_rows = int(block_rows)
        self.scratch_dir = None if scratch_dir is None else check_scratch_dir(scratch_dir)
        self._stage = None
        self._fs, self._path = open_filesystem(self.url, storage_options)
        self.bytes_read = 0
        self._parse()
        mapped = self._nframes <= MAPPED_MOST_FRAMES if memmap is None else bool(memmap)
        self.frame_ranges_cheap = mapped and self._is_local
        # plain HTTP range requests where fsspec would use its standard S3 or HTTP filesystem
        standard = type(self._fs).__module__.split(".")[0] in ("s3fs", "fsspec")
        http_url = anonymous_http_url(self.url, storage_options) if standard and not self._is_local else None
        self._http = HTTPRangeReader(http_url) if http_url else None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_stage"] = None  # scratch files belong to the process that wrote them
        return state

    def close(self):
        """Delete the scratch copies of a remote cube's rows (also done when the source goes)."""
        if self._stage is not None:
            self._stage.close()
            self._stage = None

    @property
    def _is_local(self) -> bool:
        protocol = self._fs.protocol
        return (protocol if isinstance(protocol, str) else protocol[0]) in ("file", "local")

    # ------------------------------------------------------------------ headers
    def _parse(self):
        size, primary, image_header, data_offset, columns = read_cube_headers(self._fs, self._path, self.url,
                                                                              self._retrying)
        self.__dict__.update(_cube_layout(self.url, size, primary, image_header, data_offset, columns))
        log.debug("opened %s: %d frames, data at byte %d", self.url, self._nframes, data_offset)

    @property
    def nframes(self) -> int:
        return self._nframes

    # ------------------------------------------------------------------ reads
    def _retrying(self, call, what: str):
        """``call()``, tried again after transient errors (connection, timeout, other
        I/O errors; not a missing file), waiting ``backoff_seconds`` x 1, 2, 4...;
        after the last try, a clear error. Local files are read once: their errors
        are not transient."""
        local = self._is_local
        tries = 1 if local else self.retries
        for attempt in range(1, tries + 1):
            try:
                return call()
            except (FileNotFoundError, PermissionError, IsADirectoryError):
                raise
            except Exception as exc:  # noqa: BLE001 - only transient errors are caught: the rest go on
                if local or not _transient(exc):
                    raise
                if attempt == tries:
                    raise TessBackmlError(
                        f"{what} {self.url} failed after {self.retries} tries: {type(exc).__name__}: {exc}"
                    ) from None
                wait = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning("%s %s failed (%s); trying again in %.1f s", what, self.url, exc, wait)
                time.sleep(wait)

    def _cat_ranges(self, starts, lengths, what: str, fd=None, file_offsets=None) -> list:
        """The bytes of ranges ``[start, start + length)`` (``lengths``: one for all, or
        one each), requested together: concurrent plain HTTP range requests where the
        object can be read anonymously (public S3, https), else fsspec's ``cat_ranges``;
        ranges that touch or overlap are asked for as one (up to
        :attr:`read_bytes`: each request costs more than its bytes, and neighbouring
        pixels' series are contiguous); ranges that fail transiently are asked for again.
        With ``fd``, an open file, range ``i`` is written there at ``file_offsets[i]``
        instead (not merged) and its chunk is its length."""
        starts = np.asarray(starts, np.int64).ravel()
        lengths = np.broadcast_to(np.asarray(lengths, np.int64), starts.shape)
        chunks = [None] * len(starts)

        def read_missing():
            missing = [i for i, chunk in enumerate(chunks) if chunk is None or isinstance(chunk, Exception)]
            spans = merged_spans(starts[missing], lengths[missing], self.read_bytes if fd is None else 0)
            self.bytes_read += int(sum(stop - start for start, stop, _ in spans))
            span_starts, span_lengths = [start for start, _, _ in spans], [stop - start for start, stop, _ in spans]
            offsets = None if fd is None else [int(file_offsets[missing[members[0]]]) for _, _, members in spans]
            if self._http is not None:
                got = self._http.read(span_starts, span_lengths, fd, offsets)
            else:
                got = self._fs.cat_ranges([self._path] * len(spans), span_starts,
                                          [stop for _, stop, _ in spans], on_error="return")
                if fd is not None:
                    got = [chunk if isinstance(chunk, Exception) else write_at(fd, chunk, offset)
                           for chunk, offset in zip(got, offsets)]
            for (start, _, members), chunk in zip(spans, got):
                for k in members:
                    i = missing[k]
                    offset = int(starts[i] - start)
                    if isinstance(chunk, Exception) or fd is not None:
                        chunks[i] = chunk
                    else:
                        chunks[i] = chunk[offset : offset + int(lengths[i])]
            failed = [chunk for chunk in got if isinstance(chunk, Exception)]
            if any(isinstance(chunk, FileNotFoundError) for chunk in failed):
                raise FileNotFoundError(f"{self.url} is gone")
            for chunk in failed:
                if isinstance(chunk, TessBackmlError):
                    raise chunk
                if isinstance(chunk, PermissionError):
                    raise TessBackmlError(f"reading {self.url}: {chunk}")
            if failed:  # transient failures of some ranges: read those again
                raise failed[0]

        try:
            self._retrying(read_missing, f"{what} of")
        except FileNotFoundError:
            raise TessBackmlError(f"{self.url} disappeared while it was being read") from None
        for chunk, length in zip(chunks, lengths):
            if isinstance(chunk, Exception) or (chunk if fd is not None else len(chunk)) != length:
                raise FileFormatError(f"{self.url}: short read of {what} (truncated cube?): {chunk!r:.80}")
        return chunks

    def _map_rows(self, first: int, stop: int) -> np.ndarray:
        """Image rows [first, stop) of the local cube as a (rows, 2136, nframes, 2)
        big-endian memory map. Pages read through a map count as the process's memory
        until it is closed: so a read maps a few rows at a time and closes them."""
        try:
            return np.memmap(self._path, dtype=">f4", mode="r", offset=self._data_offset + first * self._row_bytes,
                             shape=(stop - first, FFI_SHAPE[1], self._nframes, 2))
        except FileNotFoundError:
            raise TessBackmlError(f"{self.url} disappeared while it was being read") from None
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"{self.url}: cannot map the image ({exc}; truncated?)") from None

    def _read_rows(self, start, stop, frames):
        if self.frame_ranges_cheap:
            return self._read_mapped(start, stop, frames)
        return read_staged(self._staging(), self._nframes, start, stop, frames, start, stop)

    def _read_rows_and_errors(self, start, stop, frames, first, last, out=None):
        if self.frame_ranges_cheap:
            return super()._read_rows_and_errors(start, stop, frames, first, last, out)
        return read_staged(self._staging(), self._nframes, start, stop, frames, first, last, out)

    def _staging(self):
        from .staging import RowStage

        if self._stage is None:
            self._stage = RowStage(self._download_rows, self._row_bytes, self.scratch_dir, remote=not self._is_local)
        return self._stage

    def _download_rows(self, first, stop, path):
        """Science rows [first, stop) of every frame into the file ``path``, frame-major
        (:func:`~tess_backml.sources.bands.read_band`), turned row by row, once, so
        that every later read of some frames is a plain copy. A remote cube's rows are
        first downloaded as the cube stores them (pieces of up to :attr:`read_bytes`,
        requested together) to the worker's file beside it, while the other worker
        turns the band before; a local cube's are read in place."""
        if self._is_local:  # only the science columns are read
            self.bytes_read += (stop - first) * SCIENCE_SIZE * self._nframes * 2 * _BYTES_PER_VALUE
            offset = self._data_offset + (SCIENCE_ROWS.start + first) * self._row_bytes
            try:
                write_band(self._path, offset, stop - first, self._nframes, path)
            except FileNotFoundError:
                raise TessBackmlError(f"{self.url} disappeared while it was being read") from None
            return
        begin = self._data_offset + (SCIENCE_ROWS.start + first) * self._row_bytes
        end = begin + (stop - first) * self._row_bytes
        pieces = list(range(begin, end, self.read_bytes))
        fetched = self._stage.work_file()
        with self._stage.fetching:  # while another worker turns the band before
            fd = os.open(fetched, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                at_once = len(pieces) if self._http is not None else self.concurrent_reads
                for group in range(0, len(pieces), at_once):
                    starts = pieces[group : group + at_once]
                    lengths = [min(self.read_bytes, end - start) for start in starts]
                    self._cat_ranges(starts, lengths, "image rows", fd, [start - begin for start in starts])
            finally:
                os.close(fd)
        with self._stage.turning:
            write_band(fetched, 0, stop - first, self._nframes, path)

    def _read_mapped(self, start, stop, frames):
        """Science rows [start, stop) of ``frames`` through memory maps: per pixel, only
        the frames asked for are touched."""
        wanted = np.unique(frames)
        flux = np.empty((wanted.size, stop - start, SCIENCE_SIZE), np.float32)
        error = np.empty_like(flux)
        step = max(1, self.read_bytes // self._row_bytes)
        for first in range(start, stop, step):
            last_row = min(first + step, stop)
            rows = self._map_rows(SCIENCE_ROWS.start + first, SCIENCE_ROWS.start + last_row)
            here_rows = slice(first - start, last_row - start)
            to_frame_major(rows[:, SCIENCE_COLUMNS], wanted, out=(flux[:, here_rows], error[:, here_rows]))
            del rows  # unmapped: its pages no longer count as this process's memory
        self.bytes_read += (stop - start) * SCIENCE_SIZE * wanted.size * 2 * _BYTES_PER_VALUE
        return in_order(wanted, frames, flux, error)

    def _read_frames(self, indices):
        flux = np.empty((len(indices), SCIENCE_SIZE, SCIENCE_SIZE), np.float32)
        error = np.empty_like(flux)
        for start in range(0, SCIENCE_SIZE, self.block_rows):
            stop = min(start + self.block_rows, SCIENCE_SIZE)
            flux[:, start:stop], error[:, start:stop] = self._read_rows(start, stop, indices)
        return flux, error

    def _read_pixels(self, rows, columns, frames):
        """Whole series of the pixels, requested in order of their place in the file (so
        neighbours in a row go as one range) and in groups of up to
        :attr:`pixel_read_bytes`, each group's series cut to ``frames`` at once."""
        pixel_bytes = self._nframes * 2 * _BYTES_PER_VALUE
        starts = self._data_offset + ((rows + SCIENCE_ROWS.start) * FFI_SHAPE[1] + columns + SCIENCE_COLUMNS.start) * pixel_bytes
        order = np.argsort(starts, kind="stable")
        group = max(1, self.pixel_read_bytes // pixel_bytes)
        flux = np.empty((len(frames), len(rows)), np.float32)
        error = np.empty_like(flux)
        for first in range(0, len(order), group):
            members = order[first : first + group]
            chunks = self._cat_ranges(starts[members], pixel_bytes, f"{len(starts)} pixel series")
            for i, chunk in zip(members, chunks):
                series = np.frombuffer(chunk, dtype=">f4").reshape(self._nframes, 2)[frames]
                flux[:, i] = series[:, 0]
                error[:, i] = series[:, 1]
        return flux, error


def read_cube_headers(fs, path, url, retrying) -> tuple:
    """The size, primary and image headers, data offset and per-frame table columns of
    the cube at ``path`` on the fsspec filesystem ``fs``, read without touching its
    pixels; ``retrying(call, what)`` retries transient errors (remote files)."""

    def fail(reason):
        raise FileFormatError(f"{url} is not a usable MAST FFI cube: {reason}")

    try:
        size = retrying(lambda: fs.size(path), "opening")
    except FileNotFoundError:
        raise TessBackmlError(f"no such cube file: {url}") from None

    def headers():
        with fs.open(path, "rb", block_size=2**16, cache_type="readahead") as handle:
            with fits.open(handle, lazy_load_hdus=True, memmap=False, cache=False) as hdul:
                if len(hdul) < 3 or not isinstance(hdul[2], fits.BinTableHDU):
                    fail("no per-frame table after the image")
                table = hdul[2].data
                return (
                    hdul[0].header.copy(),
                    hdul[1].header.copy(),
                    hdul.fileinfo(1)["datLoc"],
                    {name.upper(): np.array(table[name]) for name in table.columns.names},
                )

    try:
        primary, image_header, data_offset, columns = retrying(headers, "reading the headers of")
    except (OSError, IndexError, TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, TessBackmlError):
            raise
        fail(f"{type(exc).__name__}: {exc} (truncated or not FITS?)")
    return size, primary, image_header, data_offset, columns


def _transient(error: Exception) -> bool:
    """Whether reading again may succeed: connection errors and timeouts, Python's or
    botocore's (which s3fs passes on as they are, and which are not ``OSError``)."""
    if isinstance(error, OSError):  # ConnectionError and TimeoutError among them
        return True
    try:
        from botocore.exceptions import ConnectionError as BotocoreConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:
        return False
    return isinstance(error, (BotocoreConnectionError, HTTPClientError))


def _cube_layout(url, size, primary, image_header, data_offset, columns) -> dict:
    """A MAST cube's attributes from its headers and per-frame table, checked."""
    def fail(reason):
        raise FileFormatError(f"{url} is not a usable MAST FFI cube: {reason}")

    shape = tuple(image_header.get(f"NAXIS{i}", 0) for i in (4, 3, 2, 1))
    if image_header.get("NAXIS") != 4 or shape[0] != FFI_SHAPE[0] or shape[1] != FFI_SHAPE[1] or shape[3] != 2:
        fail(f"image HDU has shape {shape}, expected (2078, 2136, nframes, 2)")
    if image_header.get("BITPIX") != -32:
        fail(f"image BITPIX is {image_header.get('BITPIX')}, expected -32 (float32)")
    nframes = shape[2]
    row_bytes = FFI_SHAPE[1] * nframes * 2 * _BYTES_PER_VALUE
    if size < data_offset + FFI_SHAPE[0] * row_bytes:
        fail(f"the file is truncated ({size} bytes; the image alone needs {data_offset + FFI_SHAPE[0] * row_bytes})")
    for name in ("TSTART", "TSTOP"):
        if name not in columns:
            fail(f"its per-frame table has no {name} column")
        if len(columns[name]) != nframes:
            fail(f"its per-frame table has {len(columns[name])} rows for {nframes} frames")
    camera = int(primary.get("CAMERA") or image_header.get("CAMERA") or 0)
    ccd = int(primary.get("CCD") or image_header.get("CCD") or 0)
    if camera not in (1, 2, 3, 4) or ccd not in (1, 2, 3, 4):
        fail(f"camera/CCD in its header are {camera}/{ccd}")
    sector = _sector_from(url, primary, columns)
    time = mid_times(columns["TSTART"], columns["TSTOP"])
    return {
        "primary_header": primary, "_data_offset": data_offset, "_row_bytes": row_bytes, "_nframes": nframes,
        "camera": camera, "ccd": ccd, "sector": sector, "time": time,
        "quality": np.asarray(columns.get("DQUALITY", np.zeros(nframes)), dtype=np.int32),
        "cadenceno": cadence_numbers(columns.get("FFIINDEX", np.zeros(nframes)), time, sector),
        "ffi_files": [name.decode() if isinstance(name, bytes) else str(name) for name in columns.get("FFI_FILE", [])],
    }


def _sector_from(url, primary, columns) -> int:
    sector = primary.get("SECTOR")
    if isinstance(sector, (int, np.integer)) and sector > 0:
        return int(sector)
    names = [url] + [n.decode() if isinstance(n, bytes) else str(n) for n in columns.get("FFI_FILE", [])[:1]]
    for name in names:
        match = re.search(r"-s(\d{4})-", name)
        if match:
            return int(match.group(1))
    raise FileFormatError(f"{url}: cannot tell its sector (no SECTOR keyword, no sector in file names)")


def make_astrocut_cube(paths, cube_file, sector: int, max_memory_gb: float = 2.0):
    """Build a MAST-format FFI cube from SPOC FFI files with ``astrocut.CubeFactory``."""
    from astrocut import CubeFactory

    astrocut_log = logging.getLogger("astrocut")
    previous = astrocut_log.level
    try:
        CubeFactory().make_cube(list(paths), cube_file, sector=sector, max_memory=max_memory_gb, verbose=False)
    finally:
        astrocut_log.setLevel(previous)
    return cube_file
