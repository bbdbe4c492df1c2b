"""Concurrent HTTP range reads of one remote object: the data path of remote MAST cubes.

The public MAST cubes are anonymous S3 objects, so a byte range is one plain HTTP GET
with a ``Range`` header. Going through botocore costs about 0.6 ms of Python per
request and copies each body twice; a cube build makes ~14,000 small requests (the
sparse samples) and reads tens of GB in pieces, so those costs set its rate. Here
the requests go out on one aiohttp session (a private event loop in a thread, kept
alive between calls) and each body is written straight into a numpy buffer.
"""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.parse
import weakref

import numpy as np

from ..errors import FileFormatError, TessBackmlError

#: Bytes read from a response at a time.
_CHUNK = 2**20


def anonymous_http_url(url: str, storage_options=None) -> str | None:
    """The plain HTTP(S) URL of ``url`` when it can be read without credentials, else None.

    ``s3://bucket/key`` read anonymously (the default) maps to the endpoint in
    ``storage_options`` (``endpoint_url``, or ``client_kwargs["endpoint_url"]``) or the
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` environment variables (path-style), or
    to ``https://bucket.s3.amazonaws.com/key``; ``http(s)://`` URLs are themselves.
    """
    options = dict(storage_options or {})
    if url.startswith(("http://", "https://")):
        return url
    if not url.startswith("s3://"):
        return None
    if options.get("anon", True) is False or any(options.get(name) for name in ("key", "secret", "token", "profile")):
        return None
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket or not key:
        return None
    endpoint = (
        options.get("endpoint_url")
        or (options.get("client_kwargs") or {}).get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    key = urllib.parse.quote(key)
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{key}"
    return f"https://{bucket}.s3.amazonaws.com/{key}"


class HTTPRangeReader:
    """Reads byte ranges of one HTTP object, ``concurrency`` requests at a time.

    Parameters
    ----------
    url : str
        The object's HTTP(S) URL.
    concurrency : int
        Requests in flight at once.
    timeout_seconds : float
        Longest wait for any one request (connecting and reading).

    Notes
    -----
    :meth:`read` returns, per range, its bytes (a uint8 array) or the exception that
    stopped it, so that a caller can ask again for the failed ranges only:
    ``OSError`` for what may pass (connection errors, timeouts, HTTP 5xx and 429),
    ``FileNotFoundError`` for HTTP 404, ``PermissionError`` for 403, and
    :class:`~tess_backml.errors.FileFormatError` for a range past the object's end.
    A reader can be pickled (for Dask workers): its session is made again where used.
    """

    def __init__(self, url: str, concurrency: int = 64, timeout_seconds: float = 120.0):
        self.url = url
        self.concurrency = int(concurrency)
        self.timeout_seconds = float(timeout_seconds)
        self._loop = None
        self._owner = None  # the process the loop belongs to

    def __getstate__(self):
        return {"url": self.url, "concurrency": self.concurrency, "timeout_seconds": self.timeout_seconds}

    def __setstate__(self, state):
        self.__init__(**state)

    def _event_loop(self):
        if self._loop is None or self._owner != os.getpid():
            try:
                import aiohttp  # noqa: F401
            except ImportError:
                raise TessBackmlError("reading remote cubes needs aiohttp (pip install 'tess-backml[cloud]')") from None
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="tess-backml-http", daemon=True).start()
            self._loop, self._owner = loop, os.getpid()
            self._session = asyncio.run_coroutine_threadsafe(self._open_session(), loop).result()
            weakref.finalize(self, _shut_down, loop, self._session)
        return self._loop

    async def _open_session(self):
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

    def read(self, starts, lengths, fd=None, file_offsets=None) -> list:
        """The bytes of ranges ``[start, start + length)``, or the exception of each
        range that failed (see the class notes). With ``fd``, an open file, each range
        is written there at its ``file_offsets`` entry as it arrives (nothing held in
        memory) and the result is its length."""
        starts = [int(s) for s in starts]
        lengths = [int(n) for n in lengths]
        offsets = [None] * len(starts) if fd is None else [int(o) for o in file_offsets]
        loop = self._event_loop()
        return asyncio.run_coroutine_threadsafe(self._read_all(starts, lengths, fd, offsets), loop).result()

    async def _read_all(self, starts, lengths, fd, offsets):
        gate = asyncio.Semaphore(self.concurrency)

        async def one(start, length, offset):
            async with gate:
                return await self._read_one(start, length, fd, offset)

        jobs = (one(s, n, o) for s, n, o in zip(starts, lengths, offsets))
        return await asyncio.gather(*jobs, return_exceptions=True)

    async def _read_one(self, start: int, length: int, fd=None, offset=None):
        import aiohttp

        out = np.empty(length if fd is None else 0, np.uint8)
        if length == 0:
            return out if fd is None else 0
        headers = {"Range": f"bytes={start}-{start + length - 1}", "Accept-Encoding": "identity"}
        try:
            async with self._session.get(self.url, headers=headers) as response:
                _check_status(response.status, self.url)
                if not _answers_range(response, start):
                    raise TessBackmlError(f"{self.url}: the server does not answer range requests (HTTP {response.status})")
                filled = 0
                async for chunk in response.content.iter_chunked(_CHUNK):
                    take = min(len(chunk), length - filled)
                    if fd is None:
                        out[filled : filled + take] = np.frombuffer(chunk, np.uint8, take)
                    else:
                        write_at(fd, memoryview(chunk)[:take], offset + filled)
                    filled += take
                    if filled == length:
                        break
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from None
        if filled != length:
            raise OSError(f"the connection ended after {filled} of {length} bytes")
        return out if fd is None else length


def write_at(fd: int, data, offset: int) -> int:
    """Write all of ``data`` (any contiguous buffer) to the open file ``fd`` at
    ``offset``; its length in bytes."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


def _shut_down(loop, session):
    """Close a reader's session and stop its loop (when the reader goes, or at exit)."""
    if loop.is_running():
        try:
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing is best effort: the process may be ending
            pass
        loop.call_soon_threadsafe(loop.stop)


def _answers_range(response, start: int) -> bool:
    """Whether a response's body begins at byte ``start`` of the object.

    206 is the answer HTTP asks for; some S3 servers (``rclone serve s3``) answer 200
    with the ``Content-Range`` of a 206. A 200 without it is the whole object, which
    only a range from the first byte can use.
    """
    if response.status == 206:
        return True
    served = response.headers.get("Content-Range", "")
    if served:
        return served.startswith(f"bytes {start}-")
    return response.status == 200 and start == 0


def _check_status(status: int, url: str):
    if status in (200, 206):
        return
    if status == 404:
        raise FileNotFoundError(url)
    if status == 403:
        raise PermissionError(f"access to {url} was refused (HTTP 403)")
    if status == 416:
        raise FileFormatError(f"{url}: a range past the end of the object (truncated?)")
    if status == 429 or status >= 500:
        raise OSError(f"HTTP {status}")
    raise TessBackmlError(f"{url}: HTTP {status}")
