"""A local scratch copy of the rows of a MAST cube that a build is working on.

A MAST cube keeps each pixel's whole time series together, so a range of frames of a
band of rows is thousands of small pieces (remote: requests; local: a 4 kB page per
pixel), while the band's every frame is one contiguous range. Cubes of a sector's
length are therefore copied band by band to local scratch files (each byte read
once; the source turns each band frame-major as it arrives), and read from there
with plain reads: a build's memory is set by its tiles, not by the sector's length,
and the disk holds a few bands (:data:`STAGE_ROWS` rows of every frame each: the
rows a block reads and those of the next block). Bands are copied ahead of the reads
in a background thread (a build goes down the CCD), and the least recently used
bands beyond the capacity give their files to the next ones. A remote band arrives
in two steps, fetched (waiting on the network) and turned (computing): two threads
then overlap the fetch of one band with the turning of the one before.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from .._files import release_free_memory
from ..constants import SCIENCE_SIZE
from ..errors import TessBackmlError

log = logging.getLogger(__name__)

#: Science rows per scratch band.
STAGE_ROWS = 8


def check_scratch_dir(directory) -> str:
    """``directory`` as a path, if it is a directory this process can write in; else a
    one-line error."""
    path = os.fspath(directory)
    if not os.path.isdir(path):
        raise TessBackmlError(f"scratch directory {path} does not exist (or is not a directory)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise TessBackmlError(f"scratch directory {path} is not writable")
    return path


class RowStage:
    """Bands of :data:`STAGE_ROWS` science rows of a cube, copied to scratch files.

    Parameters
    ----------
    download : callable
        ``download(first, stop, path)`` writes science rows [first, stop) of every
        frame to the file ``path``, in place: the file may exist already (an evicted
        band's, whose cached pages are then reused instead of freed and zeroed anew).
    row_bytes : int
        Bytes of one row of every frame.
    directory : str, optional
        Where the scratch files go (default: the system's temporary directory,
        ``TMPDIR``).
    ahead_bands : int, optional
        Bands downloaded ahead of the rows last asked for (default: half the widest
        read so far, which covers the rows the next block of a build adds: its
        window overlaps this one's by its halos).
    remote : bool
        Whether ``download`` first fetches a band's rows as stored, to its worker's
        :meth:`work_file` (holding :attr:`fetching`), then turns them into the band
        file (holding :attr:`turning`). Two workers then prepare bands at once, one
        fetching while the other turns; otherwise one. Bands are fetched in the order
        they were asked for, whichever worker reaches :attr:`fetching` first.
    """

    def __init__(self, download, row_bytes: int, directory=None, ahead_bands: int | None = None, remote: bool = False):
        self._download = download
        self.row_bytes = int(row_bytes)
        self.ahead_bands = ahead_bands
        self.directory = tempfile.mkdtemp(prefix="tess-backml-stage-", dir=directory)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.directory, True)
        self._lock = threading.Lock()
        self._bands = {}  # band -> Future of its file's path
        self._users = {}  # band -> reads in progress
        self._recent = []  # bands, least recently used first
        self._window = 1  # most bands one read has needed
        self._spare = []  # files of evicted bands, rewritten in place for the next ones
        self.remote = bool(remote)
        #: held while a band is fetched (in the order asked for), and while one is
        #: turned: one of each at a time
        self.fetching, self.turning = InTurn(), threading.Lock()
        self._tickets = 0
        self._workers = 2 if self.remote else 1
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="tess-backml-stage")

    @property
    def ahead(self) -> int:
        """Bands downloaded ahead of the rows last asked for."""
        return max(1, self._window // 2) if self.ahead_bands is None else int(self.ahead_bands)

    @property
    def capacity(self) -> int:
        """Bands kept on disk: the widest read so far and the bands ahead of it."""
        return self._window + self.ahead

    def band_bytes(self) -> int:
        return STAGE_ROWS * self.row_bytes

    def work_file(self) -> str:
        """The calling worker's file for a band's rows as fetched (the same for every
        band it fetches: its pages are reused)."""
        return os.path.join(self.directory, f"fetched-{threading.current_thread().name}.raw")

    def _path(self, band: int) -> str:
        return os.path.join(self.directory, f"rows-{band * STAGE_ROWS:04d}.raw")

    def _fetch(self, band: int, ticket: int) -> str:
        self.fetching.hold(ticket)
        try:
            return self._prepare(band)
        finally:
            self.fetching.done(ticket)  # a band that failed, or never fetched, lets the next one go

    def _prepare(self, band: int) -> str:
        path = self._path(band)
        first = band * STAGE_ROWS
        with self._lock:
            spare = self._spare.pop() if self._spare else None
        if spare is not None:  # its pages are cached already: rewriting them needs no new ones
            os.replace(spare, path)
        try:
            self._download(first, min(first + STAGE_ROWS, SCIENCE_SIZE), path)
        except BaseException:
            if os.path.exists(path):
                os.remove(path)
            raise
        finally:
            release_free_memory()  # the download's buffers, freed in other threads' heaps
        return path

    def _submit(self, band: int):
        # under self._lock
        if band not in self._bands:
            self._check_space()
            self._bands[band] = self._pool.submit(self._fetch, band, self._tickets)
            self._tickets += 1
        if band in self._recent:
            self._recent.remove(band)
        self._recent.append(band)

    def _check_space(self):
        # room for every band still to come up to the capacity, so that a build too big
        # for the disk stops at its first band, not when the disk is full
        free = shutil.disk_usage(self.directory).free
        new = self.capacity - len(self._bands) - len(self._spare)  # spare files are rewritten, not added
        if self.remote:  # the workers' files of fetched rows, until they exist
            new += self._workers - sum(name.startswith("fetched-") for name in os.listdir(self.directory))
        needed = max(new, 0 if self._spare else 1) * self.band_bytes()
        if free < needed:
            raise TessBackmlError(
                f"no room to copy the cube's rows: {self.directory} has {free / 2**30:.1f} GB free, and a build "
                f"keeps {self.capacity} bands of {STAGE_ROWS} rows ({self.capacity * self.band_bytes() / 2**30:.1f} GB; "
                f"set TMPDIR, --scratch-dir or scratch_dir to a larger disk)"
            )

    def open(self, first: int, stop: int) -> list:
        """Make sure science rows [first, stop) are on disk (waiting for their bands) and
        keep them until :meth:`release`; the bands after them start downloading.

        Returns
        -------
        list of (first row, stop row, path)
            The band files covering the rows, in order.
        """
        bands = list(range(first // STAGE_ROWS, (stop - 1) // STAGE_ROWS + 1))
        last_band = (SCIENCE_SIZE - 1) // STAGE_ROWS
        with self._lock:
            self._window = max(self._window, len(bands))
            for band in bands:
                self._submit(band)
                self._users[band] = self._users.get(band, 0) + 1
            # ahead: used after these, so they count as more recent than the bands behind
            for band in range(bands[-1] + 1, min(bands[-1] + self.ahead, last_band) + 1):
                self._submit(band)
            self._evict()
            futures = [(band, self._bands[band]) for band in bands]
        files = []
        try:
            for band, future in futures:
                try:
                    path = future.result()
                except BaseException:
                    with self._lock:  # a later read downloads it again
                        if self._bands.get(band) is future:
                            del self._bands[band]
                            self._recent.remove(band)
                    raise
                files.append((band * STAGE_ROWS, min((band + 1) * STAGE_ROWS, SCIENCE_SIZE), path))
        except BaseException:
            self.release(first, stop)
            raise
        return files

    def release(self, first: int, stop: int):
        """The rows of an :meth:`open` are no longer read."""
        with self._lock:
            for band in range(first // STAGE_ROWS, (stop - 1) // STAGE_ROWS + 1):
                self._users[band] -= 1
                if not self._users[band]:
                    del self._users[band]
            self._evict()

    def _evict(self):
        # under self._lock: delete the least recently used bands nobody reads, beyond capacity
        for band in list(self._recent):
            if len(self._bands) <= self.capacity:
                break
            future = self._bands[band]
            if band in self._users or not future.done():
                continue
            del self._bands[band]
            self._recent.remove(band)
            if future.exception() is None and os.path.exists(future.result()):
                spare = os.path.join(self.directory, f"spare-{band}")
                os.replace(future.result(), spare)
                self._spare.append(spare)

    def close(self):
        """Stop downloading and delete the scratch files."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._finalizer()


class InTurn:
    """A lock taken in the order of tickets: the thread holding ticket ``n``
    (:meth:`hold`) enters only once tickets ``0 .. n-1`` are :meth:`done`; a thread
    without a ticket just waits for the lock.

    Bands are queued in the order a build needs them, but the worker of the band ahead
    can reach the network first; then the band a read waits for would wait a whole
    fetch longer. Every earlier ticket is running or done when a later one runs (the
    pool takes its tasks in order), so none waits on a ticket that never comes.
    """

    def __init__(self):
        self._turn = threading.Condition()
        self._finished = set()
        self._next = 0  # every ticket below it is done
        self._busy = False
        self._mine = threading.local()

    def hold(self, ticket: int):
        """The calling thread's ticket for its next ``with``."""
        self._mine.ticket = ticket

    def done(self, ticket: int):
        """Ticket ``ticket`` has had its turn (or needs none): later ones may go."""
        with self._turn:
            if ticket >= self._next:
                self._finished.add(ticket)
            while self._next in self._finished:
                self._finished.discard(self._next)
                self._next += 1
            self._turn.notify_all()

    def __enter__(self):
        ticket = getattr(self._mine, "ticket", None)
        with self._turn:
            self._turn.wait_for(lambda: not self._busy and (ticket is None or self._next >= ticket))
            self._busy = True
        return self

    def __exit__(self, *exc):
        ticket, self._mine.ticket = getattr(self._mine, "ticket", None), None
        with self._turn:
            self._busy = False
            self._turn.notify_all()
        if ticket is not None:
            self.done(ticket)
        return False
