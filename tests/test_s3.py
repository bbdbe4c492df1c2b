"""MAST cubes on S3, against a real S3-protocol server on localhost (moto in server mode)
holding a cube made by astrocut, reached through a proxy that can fail requests."""

import http.client
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import unused_port

from tess_backml.cube import BackgroundCube
from tess_backml.errors import TessBackmlError
from tess_backml.sources import MASTCubeSource, SimulatedSector
from tess_backml.sources.mast import make_astrocut_cube

moto_server = pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (pip install '.[test]')")
pytest.importorskip("s3fs", reason="the S3 tests need s3fs (pip install '.[cloud]')")
pytestmark = pytest.mark.slow

KEY = "tess/public/mast/tess-s0004-1-1-cube.fits"
URL = f"s3://stpubdata/{KEY}"


class FaultyProxy(ThreadingHTTPServer):
    """Forwards HTTP requests to the S3 server; the next ``failures`` range reads get a
    503 (as S3 answers when it is overloaded), and it counts the range reads in flight."""

    daemon_threads = True

    def __init__(self, target):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target, self.failures, self.lock = target, 0, threading.Lock()
        self.in_flight = self.most_in_flight = self.range_reads = 0
        self.agents = set()

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up mid-answer (a build stopped by an error closes its connections)
        super().handle_error(request, client_address)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        proxy = self.server
        ranged = "Range" in self.headers
        with proxy.lock:
            if ranged:
                proxy.agents.add(self.headers.get("User-Agent", "").split("/")[0])
            fail = ranged and proxy.failures > 0
            proxy.failures -= fail
            proxy.range_reads += ranged
            proxy.in_flight += ranged
            proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
        try:
            if fail:
                body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                self.send_response(503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            connection = http.client.HTTPConnection(*proxy.target, timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = connection.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException):
                # the server dropped the request (moto does when an object is deleted while
                # it is being read): a gateway's answer, not a traceback on stderr
                connection.close()
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            # a HEAD answer's length is the object's, not of its (empty) body
            self.send_header("Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            connection.close()
        finally:
            with proxy.lock:
                proxy.in_flight -= ranged

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The server, its proxy, a boto3 client, and a local copy of the cube it serves.

    moto copies the whole object to answer each range request (0.1 s for this cube),
    so the builds here sample the CCD every 512 pixels instead of 32 for the dark-frame
    search and the star thresholds: 16 points instead of 4,096 (one range request each)."""
    import boto3

    from tess_backml.cube import darkness

    sparse = pytest.MonkeyPatch()
    sparse.setattr(darkness, "SAMPLE_STEP", 512)
    folder = tmp_path_factory.mktemp("s3")
    sim = SimulatedSector()
    cube_file = str(folder / "tess-s0004-1-1-cube.fits")
    make_astrocut_cube(sim.write_ffis(folder / "ffis", np.arange(300, 308), progress=False), cube_file, sector=4)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    proxy = FaultyProxy(server.get_host_and_port())
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoint)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="stpubdata")
    # public, as the MAST bucket is: anonymous reads (the package's default for s3://)
    client.put_bucket_policy(Bucket="stpubdata", Policy=(
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", '
        '"Resource": "arn:aws:s3:::stpubdata/*"}]}'))
    client.upload_file(cube_file, "stpubdata", KEY)
    yield {"client": client, "proxy": proxy, "cube_file": cube_file}
    proxy.shutdown()
    server.stop()
    sparse.undo()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_a_build_from_s3_reads_each_byte_once_concurrently_and_equals_the_local_one(s3):
    local = BackgroundCube(4, 1, 1, img_bin=16, source=s3["cube_file"], progress=False)
    local.get_scatter_light_cube()
    source = MASTCubeSource(URL)
    source.read_bytes = 16 * source._row_bytes  # pieces of 16 rows: two per block, read together
    remote = BackgroundCube(4, 1, 1, img_bin=16, source=source, progress=False)
    s3["proxy"].most_in_flight = 0
    remote.get_scatter_light_cube()
    np.testing.assert_array_equal(remote.scatter_cube, local.scatter_cube)
    np.testing.assert_array_equal(remote.scatter_err_cube, local.scatter_err_cube)
    data_bytes = len(remote.frame_indices) * 2048 * 2048 * 8
    # whole rows (2136 columns) once each, plus the sparse samples of the dark-frame
    # search and the star thresholds
    assert 2136 / 2048 <= source.bytes_read / data_bytes <= 1.15
    assert s3["proxy"].most_in_flight >= 2  # range requests overlap
    # anonymous reads are plain HTTP range requests (aiohttp), not botocore's
    assert "Python" in s3["proxy"].agents and not any("Boto" in agent for agent in s3["proxy"].agents)


def test_transient_s3_errors_are_retried_and_a_store_that_keeps_failing_says_so(s3, monkeypatch):
    monkeypatch.setattr(MASTCubeSource, "backoff_seconds", 0.01)
    clean = MASTCubeSource(s3["cube_file"])
    # s3fs and botocore retry too (with waits of seconds): without theirs, ours are tested
    source = MASTCubeSource(URL, storage_options={"config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}}})
    monkeypatch.setattr(source._fs, "retries", 1)
    s3["proxy"].failures = 3
    flux, error = source.read_rows(100, 116)
    assert s3["proxy"].failures == 0
    expected = clean.read_rows(100, 116)
    np.testing.assert_array_equal(flux, expected[0])
    np.testing.assert_array_equal(error, expected[1])
    s3["proxy"].failures = 10**6
    try:
        with pytest.raises(TessBackmlError, match="failed after 4 tries"):
            source.read_rows(0, 16)
    finally:
        s3["proxy"].failures = 0


def test_a_source_opened_after_the_endpoint_changes_reads_from_the_new_one(s3, monkeypatch):
    """The endpoint comes from the environment, which fsspec's cache of file systems
    (keyed by their options) does not see: a source asks for a new file system."""
    assert MASTCubeSource(URL).nframes == 8  # a file system for this server, made and kept
    port = unused_port()
    served = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)  # the default: one botocore attempt per try
    monkeypatch.setattr(MASTCubeSource, "retries", 1)
    with pytest.raises(TessBackmlError, match=f"127.0.0.1:{port}"):
        MASTCubeSource(URL)
    monkeypatch.setenv("AWS_ENDPOINT_URL", served)
    assert MASTCubeSource(URL).nframes == 8


def test_an_object_that_vanishes_mid_build_leaves_nothing_half_written_and_the_build_resumes(s3, tmp_path, monkeypatch, capsys):
    from tess_backml.cli import main
    from tess_backml.cube import units

    out = tmp_path / "from_s3.fits"
    argv = ["-q", "cube", "--source", URL, "--sector", "4", "--camera", "1", "--ccd", "1", "--out", str(out)]
    compute, calls = units.compute_unit, []

    def vanishing(setup, unit, reader=None):
        calls.append(unit)
        if len(calls) == 5:
            s3["client"].delete_object(Bucket="stpubdata", Key=KEY)
        return compute(setup, unit, reader)

    monkeypatch.setattr(units, "compute_unit", vanishing)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "disappeared while it was being read" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and (tmp_path / "from_s3.fits.partial").is_dir()  # only whole units kept

    s3["client"].upload_file(s3["cube_file"], "stpubdata", KEY)
    monkeypatch.setattr(units, "compute_unit", compute)
    assert main([*argv, "--resume"]) == 0
    reference = tmp_path / "local.fits"
    assert main(["-q", "cube", "--source", s3["cube_file"], "--sector", "4", "--camera", "1", "--ccd", "1",
                 "--out", str(reference)]) == 0
    from astropy.io import fits

    with fits.open(out) as got, fits.open(reference) as expected:
        np.testing.assert_array_equal(got[1].data, expected[1].data)
