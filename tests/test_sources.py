"""FFI sources: the simulator, its SPOC files and the astrocut cube give the same pixels."""

import concurrent.futures
import os
import shutil

import fsspec
import numpy as np
import pytest
from conftest import shared_file, unused_port
from fsspec.implementations.local import LocalFileOpener, LocalFileSystem

from tess_backml.cli import main
from tess_backml.constants import FFI_SHAPE, QUALITY_FLAGS, SCIENCE_SIZE, STRAP_COLUMNS
from tess_backml.errors import FileFormatError, TessBackmlError
from tess_backml.sources import (
    FFIFilesSource,
    MASTCubeSource,
    SimulatedSector,
    mast_cube_url,
    resolve_source,
)
from tess_backml.sources.mast import make_astrocut_cube


@pytest.fixture(scope="module")
def sim():
    return SimulatedSector()


@pytest.fixture(scope="module")
def frames(sim):
    coarse = int(np.flatnonzero(sim.quality & QUALITY_FLAGS["CoarsePoint"])[0])
    dump = int(np.flatnonzero(sim.quality & QUALITY_FLAGS["Desat"])[0])
    return np.array(sorted({0, 1, coarse, dump, 200}))


@pytest.fixture(scope="module")
def written(sim, frames, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ffis")
    paths = sim.write_ffis(directory, frames, progress=False)
    cube = str(directory / "tess-s0004-1-1-cube.fits")
    make_astrocut_cube(paths, cube, sector=4)
    return directory, paths, cube


def test_round_trip_gives_identical_pixels_times_quality(sim, frames, written):
    directory, _, cube_path = written
    cube, files = MASTCubeSource(cube_path), FFIFilesSource(directory)
    for source in (cube, files):
        assert (source.sector, source.camera, source.ccd, source.nframes) == (4, 1, 1, len(frames))
        assert np.allclose(source.time, sim.time[frames], rtol=0, atol=1e-9)
        assert np.array_equal(source.quality, sim.quality[frames])
        assert np.array_equal(source.cadenceno, sim.cadenceno[frames])
    flux, error = sim.read_frames(frames)
    for source in (cube, files):
        got_flux, got_error = source.read_rows(1000, 1040)
        assert np.array_equal(got_flux, flux[:, 1000:1040]) and np.array_equal(got_error, error[:, 1000:1040])
        got_flux, got_error = source.read_rows(1000, 1040, [len(frames) - 1, 1])
        assert np.array_equal(got_flux, flux[[-1, 1], 1000:1040]) and np.array_equal(got_error, error[[-1, 1], 1000:1040])
        rows, cols = np.array([0, 2047, 5, 1024]), np.array([0, 2047, 2040, 7])
        got_flux, got_error = source.read_pixels(rows, cols)
        assert np.array_equal(got_flux, flux[:, rows, cols]) and np.array_equal(got_error, error[:, rows, cols])
        got_flux, got_error = source.read_frames([len(frames) - 1, 0])
        assert np.array_equal(got_flux, flux[[-1, 0]]) and np.array_equal(got_error, error[[-1, 0]])


# --------------------------------------------------------------------------- byte ranges
class RecordingOpener(LocalFileOpener):
    def read(self, length=-1):
        position = self.tell()
        data = super().read(length)
        self.fs.reads.append((position, len(data)))
        return data

    def readinto(self, buffer):
        position = self.tell()
        count = self.f.readinto(buffer)
        self.fs.reads.append((position, count))
        return count


class RecordingFileSystem(LocalFileSystem):
    """A local file system that records every (offset, length) read through it."""

    protocol = "recording"
    reads = []

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        return RecordingOpener(self._strip_protocol(path), mode, fs=self, **kwargs)


def test_remote_rows_are_copied_in_bands_each_byte_once(written):
    """A cube that is not memory-mapped (a remote one) is copied to scratch files in bands
    of whole rows: each band one contiguous range (in pieces of up to read_bytes), the
    bands ahead downloaded too, nothing requested twice."""
    from tess_backml.sources.staging import STAGE_ROWS

    _, _, cube_path = written
    fsspec.register_implementation("recording", RecordingFileSystem, clobber=True)
    source = MASTCubeSource(f"recording://{cube_path}")
    local = MASTCubeSource(cube_path)
    row_bytes = FFI_SHAPE[1] * source.nframes * 2 * 4

    def offset(science_row):
        return source._data_offset + (science_row + 0) * row_bytes

    RecordingFileSystem.reads.clear()
    flux, error = source.read_rows(64, 80)
    expected = local.read_rows(64, 80)
    assert np.array_equal(flux, expected[0]) and np.array_equal(error, expected[1])
    stage = source._stage

    def settle():  # every band asked for is in (two workers: a no-op task behind them may finish first)
        concurrent.futures.wait(list(stage._bands.values()))

    settle()  # the bands ahead are in
    bands = [64 + k * STAGE_ROWS for k in range(16 // STAGE_ROWS + 1)]  # the rows asked for, and half as many ahead
    assert sorted(RecordingFileSystem.reads) == [(offset(row), STAGE_ROWS * row_bytes) for row in bands]
    assert source.bytes_read == len(bands) * STAGE_ROWS * row_bytes
    RecordingFileSystem.reads.clear()
    frames = [source.nframes - 1, 0, 2]
    flux, error = source.read_rows(70, 90, frames)  # rows 64-88 on disk: only the new band, and ahead
    settle()
    assert sorted(RecordingFileSystem.reads) == [(offset(row), STAGE_ROWS * row_bytes) for row in (88, 96, 104)]
    expected = local.read_rows(70, 90, frames)
    assert np.array_equal(flux, expected[0]) and np.array_equal(error, expected[1])
    # a window's core errors alone: the same values, from the same bands
    flux, core_error = source.read_rows(70, 90, frames, error_rows=(75, 85))
    assert np.array_equal(flux, expected[0]) and np.array_equal(core_error, expected[1][:, 5:15])
    assert np.array_equal(local.read_rows(70, 90, frames, error_rows=(75, 85))[1], core_error)
    with pytest.raises(TessBackmlError, match="error_rows 60:85 must lie within"):
        source.read_rows(70, 90, frames, error_rows=(60, 85))
    # into given arrays: in place from the bands (frames in order, or any order), copied by maps
    for order in ([0, 1, 2], frames):
        want = local.read_rows(70, 90, order, error_rows=(75, 85))
        for reader in (source, local):
            out = (np.full((3, 20, 2048), -1, np.float32), np.full((3, 10, 2048), -1, np.float32))
            got = reader.read_rows(70, 90, order, error_rows=(75, 85), out=out)
            assert got[0] is out[0] and got[1] is out[1]
            assert np.array_equal(out[0], want[0]) and np.array_equal(out[1], want[1])
    for bad, message in [((np.empty((3, 20, 2048), np.float32),), "pair"),
                         ((np.empty((3, 20, 2048), np.float32), np.empty((3, 20, 2048), np.float32)), r"shape \(3, 10, 2048\)"),
                         ((np.empty((3, 20, 2048)), np.empty((3, 10, 2048), np.float32)), "float32"),
                         ((np.empty((3, 20, 4096), np.float32)[..., ::2], np.empty((3, 10, 2048), np.float32)), "C-contiguous")]:
        with pytest.raises(TessBackmlError, match=message):
            source.read_rows(70, 90, frames, error_rows=(75, 85), out=bad)

    # smaller pieces: a band in consecutive ranges of whole rows
    source.read_bytes = 5 * row_bytes
    stage.ahead_bands = 0
    RecordingFileSystem.reads.clear()
    source.read_rows(1000, 1000 + STAGE_ROWS)
    assert RecordingFileSystem.reads == [(offset(1000), 5 * row_bytes), (offset(1005), 3 * row_bytes)]
    directory = stage.directory
    assert os.path.isdir(directory)
    source.close()
    assert not os.path.exists(directory)


def test_the_scratch_bands_stay_within_capacity_and_failures_are_tried_again(tmp_path, monkeypatch):
    from tess_backml.sources.staging import STAGE_ROWS, RowStage

    fetched, failing, rewritten = [], {3}, []

    def download(first, stop, path):
        if first // STAGE_ROWS in failing:
            failing.discard(first // STAGE_ROWS)
            raise OSError("connection reset")
        fetched.append(first)
        rewritten.append(os.path.exists(path))
        with open(path, "wb") as out:
            out.write(bytes(stop - first))

    stage = RowStage(download, row_bytes=1, directory=tmp_path, ahead_bands=1)
    most = 0
    with pytest.raises(OSError, match="connection reset"):  # band 3 fails once ...
        for first in range(0, 6 * STAGE_ROWS, STAGE_ROWS):
            stage.open(first, first + 2 * STAGE_ROWS)
            stage.release(first, first + 2 * STAGE_ROWS)
    stage.open(2 * STAGE_ROWS, 4 * STAGE_ROWS)  # ... and is asked for again
    stage.release(2 * STAGE_ROWS, 4 * STAGE_ROWS)
    for first in range(3 * STAGE_ROWS, SCIENCE_SIZE - STAGE_ROWS, STAGE_ROWS):  # down the CCD
        stage.open(first, first + 2 * STAGE_ROWS)
        most = max(most, len(os.listdir(stage.directory)))
        stage.release(first, first + 2 * STAGE_ROWS)
    assert sorted(fetched) == list(range(0, SCIENCE_SIZE, STAGE_ROWS))  # every band once
    assert most <= stage.capacity == 3
    assert sum(rewritten) >= len(fetched) - 2 * stage.capacity  # evicted bands' files are rewritten, not new
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(TessBackmlError, match="no room to copy the cube's rows.*TMPDIR"):
        stage.open(0, STAGE_ROWS)
    stage.close()
    assert not os.path.exists(stage.directory)
    # room for two bands, but a build keeps three: it stops before the first download
    fetched.clear()
    small = RowStage(download, row_bytes=1, directory=tmp_path, ahead_bands=1)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 2 * STAGE_ROWS))
    with pytest.raises(TessBackmlError, match=r"keeps 3 bands"):
        small.open(0, 2 * STAGE_ROWS)
    assert fetched == []
    small.close()


def test_a_remote_band_is_fetched_while_the_one_before_is_turned(tmp_path, monkeypatch):
    """Remote bands come in two steps; two workers overlap them, one step of a kind at
    a time, each worker with its own file of fetched rows, counted in the room needed."""
    import contextlib
    import threading
    import time

    from tess_backml.sources.staging import STAGE_ROWS, RowStage

    started = {band: threading.Event() for band in range(4)}
    busy = {"fetching": 0, "turning": 0}
    most = dict(busy)
    work_files = set()

    @contextlib.contextmanager
    def step(kind):
        with getattr(stage, kind):
            busy[kind] += 1
            most[kind] = max(most[kind], busy[kind])
            yield
            time.sleep(0.01)
            busy[kind] -= 1

    def download(first, stop, path):
        band = first // STAGE_ROWS
        if band == 0:  # its worker is late to the network: the band ahead must still wait for it
            time.sleep(0.2)
        with step("fetching"):
            assert band == 0 or started[band - 1].is_set(), f"band {band} was fetched before band {band - 1}"
            started[band].set()
            work_files.add(stage.work_file())
            with open(stage.work_file(), "wb") as out:
                out.write(bytes(stop - first))
        with step("turning"):
            # the next band is fetched meanwhile (one worker would wait here, in vain)
            assert band == 3 or started[band + 1].wait(10), f"band {band + 1} was not fetched while {band} turned"
            with open(path, "wb") as out:
                out.write(bytes(stop - first))

    stage = RowStage(download, row_bytes=1, directory=tmp_path, ahead_bands=1, remote=True)
    for first in range(0, 3 * STAGE_ROWS, STAGE_ROWS):
        stage.open(first, first + STAGE_ROWS)
        stage.release(first, first + STAGE_ROWS)
    assert most == {"fetching": 1, "turning": 1} and len(work_files) == 2
    stage.close()
    # a build keeps 2 bands here, and the two workers' fetched rows: room for three is too little
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 3 * STAGE_ROWS))
    with pytest.raises(TessBackmlError, match="no room"):
        RowStage(download, row_bytes=1, directory=tmp_path, ahead_bands=1, remote=True).open(0, STAGE_ROWS)


class StandInS3(LocalFileSystem):
    """Serves s3://bucket/key from a local directory, so the S3 code path runs offline."""

    protocol = ("s3", "s3a")
    root = ""

    def __init__(self, anon=False, **kwargs):
        self.anon = anon
        super().__init__(**kwargs)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        for prefix in ("s3://", "s3a://"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
        return os.path.join(cls.root, path.lstrip("/")) if not path.startswith(cls.root) else path


@pytest.fixture
def stand_in_s3(tmp_path):
    from fsspec.registry import _registry, known_implementations

    saved = _registry.pop("s3", None)
    StandInS3.root = str(tmp_path)
    fsspec.register_implementation("s3", StandInS3, clobber=True)
    yield tmp_path
    _registry.pop("s3", None)
    if saved is not None:
        _registry["s3"] = saved
    assert "s3" in known_implementations


def test_s3_url_is_opened_through_fsspec(written, stand_in_s3):
    _, _, cube_path = written
    url = mast_cube_url(4, 1, 1)
    assert url == "s3://stpubdata/tess/public/mast/tess-s0004-1-1-cube.fits"
    target = stand_in_s3 / "stpubdata/tess/public/mast/tess-s0004-1-1-cube.fits"
    target.parent.mkdir(parents=True)
    os.symlink(cube_path, target)
    remote = resolve_source("mast", sector=4, camera=1, ccd=1)
    assert isinstance(remote, MASTCubeSource) and remote._fs.anon is True
    local = MASTCubeSource(cube_path)
    assert np.array_equal(remote.read_rows(10, 12)[0], local.read_rows(10, 12)[0])


def test_anonymous_s3_reads_go_to_the_object_url(monkeypatch):
    from tess_backml.sources.ranges import anonymous_http_url

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    url = mast_cube_url(4, 1, 1)
    assert anonymous_http_url(url) == "https://stpubdata.s3.amazonaws.com/tess/public/mast/tess-s0004-1-1-cube.fits"
    assert anonymous_http_url(url, {"anon": False}) is None  # credentials: through s3fs
    assert anonymous_http_url("s3://bucket/a b.fits", {"endpoint_url": "http://127.0.0.1:9000/"}) == (
        "http://127.0.0.1:9000/bucket/a%20b.fits")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    assert anonymous_http_url("s3://bucket/key") == "http://localhost:4566/bucket/key"
    assert anonymous_http_url("https://example.org/cube.fits") == "https://example.org/cube.fits"
    assert anonymous_http_url("gs://bucket/key") is None


@pytest.mark.parametrize("answer", ["206", "200 with Content-Range", "200 whole object"])
def test_range_reads_take_a_200_only_when_it_holds_the_range(answer):
    """Some S3 servers (rclone serve s3) answer a range with 200 and its Content-Range;
    a 200 without one is the whole object, usable only from its first byte."""
    import http.server
    import threading

    from tess_backml.sources.ranges import HTTPRangeReader

    body = np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            first, last = (int(v) for v in self.headers["Range"].removeprefix("bytes=").split("-"))
            whole = answer == "200 whole object"
            payload = body if whole else body[first : last + 1]
            self.send_response(206 if answer == "206" else 200)
            if not whole:
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reader = HTTPRangeReader(f"http://127.0.0.1:{server.server_address[1]}/cube.fits", concurrency=2)
        head, middle = reader.read([0, 1234], [100, 777])
    finally:
        server.shutdown()
    assert head.tobytes() == body[:100]
    if answer == "200 whole object":
        assert isinstance(middle, TessBackmlError) and "does not answer range requests" in str(middle)
    else:
        assert middle.tobytes() == body[1234:2011]


@pytest.mark.network
def test_real_mast_cube_on_s3_opens():
    source = MASTCubeSource(mast_cube_url(1, 1, 1))
    assert source.nframes > 1000
    flux, _ = source.read_pixels(np.array([1000]), np.array([1000]))
    assert np.isfinite(flux).mean() > 0.9


# --------------------------------------------------------------------------- bad input
def test_truncated_cube_is_refused(written, tmp_path):
    _, _, cube_path = written
    truncated = tmp_path / "truncated-cube.fits"
    with open(cube_path, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(os.path.getsize(cube_path) // 2))
    with pytest.raises(FileFormatError, match="truncated|not a usable"):
        MASTCubeSource(truncated)


def test_a_local_cube_cut_short_or_gone_while_copied_in_bands(written, tmp_path):
    """Bands of a local cube are read with plain reads: a cube cut short after it was
    opened, or removed, gives a one-line error, not zeros or a traceback."""
    _, _, cube_path = written
    copy = tmp_path / "tess-s0004-1-1-cube.fits"
    shutil.copyfile(cube_path, copy)
    with pytest.raises(TessBackmlError, match="scratch directory .*nowhere does not exist"):
        MASTCubeSource(copy, memmap=False, scratch_dir=tmp_path / "nowhere")
    source = MASTCubeSource(copy, memmap=False, scratch_dir=tmp_path)
    assert np.array_equal(source.read_rows(0, 8)[0], MASTCubeSource(cube_path).read_rows(0, 8)[0])
    os.truncate(copy, os.path.getsize(copy) // 2)
    with pytest.raises(FileFormatError, match="ends before its row"):
        source.read_rows(2000, 2008)
    os.remove(copy)
    with pytest.raises(TessBackmlError, match="disappeared while it was being read"):
        source.read_rows(1000, 1008)


def test_files_that_are_not_ffis_are_refused(tmp_path):
    real = shared_file("real/tess2018206192942-s0001-1-4-0120-s_ffic.fits")
    shutil.copy(real, tmp_path)
    with pytest.raises(FileFormatError, match="not a SPOC calibrated FFI.*full FFI"):
        FFIFilesSource(tmp_path)
    text = tmp_path / "notes.fits"
    text.write_text("hello")
    with pytest.raises(FileFormatError):
        FFIFilesSource(str(tmp_path / "notes.fits"))
    with pytest.raises(FileFormatError, match="not a usable MAST FFI cube"):
        MASTCubeSource(real)


def test_empty_directory_and_missing_paths(tmp_path):
    with pytest.raises(TessBackmlError, match="no FFI files"):
        FFIFilesSource(tmp_path)
    with pytest.raises(TessBackmlError, match="no such"):
        resolve_source(str(tmp_path / "nowhere.fits"))
    with pytest.raises(TessBackmlError, match="no such cube"):
        MASTCubeSource(str(tmp_path / "nowhere.fits"))


def test_mixed_ccds_in_one_directory_are_refused(written, tmp_path):
    _, paths, _ = written
    os.symlink(paths[0], tmp_path / os.path.basename(paths[0]))
    other = SimulatedSector(ccd=2, n_stars=10)
    other.write_ffis(tmp_path, [0], progress=False)
    with pytest.raises(TessBackmlError, match="mixes FFIs.*CCD 1.*CCD 2"):
        FFIFilesSource(tmp_path)


def test_frames_out_of_range(sim, written):
    with pytest.raises(TessBackmlError, match="out of range"):
        sim.read_frames([sim.nframes])
    with pytest.raises(TessBackmlError, match="out of range"):
        MASTCubeSource(written[2]).read_frames([99])
    with pytest.raises(TessBackmlError, match="0 <= start < stop"):
        sim.read_rows(10, 3000)
    with pytest.raises(TessBackmlError, match="integers"):
        sim.read_pixels(np.array([1.5]), np.array([2.0]))
    with pytest.raises(TessBackmlError, match="sector 5"):
        resolve_source(sim, sector=5)


def test_simulate_command_errors_are_one_line(tmp_path, capsys):
    assert main(["simulate", "--frames", "0:99999", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "out of range" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["simulate", "--frames", "oops", "--out-dir", str(tmp_path)])
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- the simulation itself
def test_frames_are_deterministic_and_independent(sim):
    again = SimulatedSector()
    first = sim.read_frames([300])[0][0]
    assert np.array_equal(again.read_frames([300])[0][0], first)
    assert np.array_equal(sim.read_frames([301, 300])[0][1], first)
    other_seed = SimulatedSector(seed=1).read_frames([300])[0][0]
    assert not np.array_equal(other_seed, first)


def test_downlink_gaps_sit_at_the_perigees(sim):
    gaps = np.diff(sim.time) > 0.5
    starts, ends = sim.time[:-1][gaps], sim.time[1:][gaps]
    assert len(sim.perigees) == 3
    inside = [p for p in sim.perigees if sim.time[0] < p < sim.time[-1]]
    assert len(inside) == 1 and len(starts) == 1
    assert starts[0] < inside[0] < ends[0] and 0.9 < ends[0] - starts[0] < 1.2
    assert np.allclose(np.diff(sim.time)[~gaps], 1800 / 86400)


def test_scattered_light_follows_the_earth_above_the_sunshade(sim):
    strong = int(np.argmax(sim.amplitude["earth"]))
    quiet = int(np.argmin(sim.amplitude["earth"] + sim.amplitude["moon"]))
    light = sim.true_scattered_light(strong)
    assert sim.camera_angle["earth"][strong] < 50
    assert light.max() > 500 and light.max() / max(light.min(), 1e-3) > 3  # gradient across the CCD
    assert np.abs(sim.true_scattered_light(quiet)).max() < 1e-2
    assert np.all(sim.quality[sim.amplitude["earth"] > 100] & QUALITY_FLAGS["Straylight2"])
    # the glint ring has sharp edges: a large jump within a few pixels somewhere on the CCD
    ring_frames = np.flatnonzero((sim.amplitude["earth"] > 50))
    jumps = [np.abs(np.diff(sim.true_scattered_light(i), axis=1)).max() for i in ring_frames[::5]]
    assert max(jumps) > 10


def test_noise_matches_the_error_image(sim):
    index = 400
    flux, error = sim.read_frames([index])
    expected = sim.static_scene + sim.true_scattered_light(index)
    pulls = ((flux[0] - expected) / error[0])[:512, :512]
    assert abs(pulls.std() - 1) < 0.02 and abs(pulls.mean()) < 0.02


def test_scene_has_straps_stars_and_bleed_columns(sim):
    scene = sim.static_scene
    straps = np.asarray(STRAP_COLUMNS) - 1
    neighbours = straps + 3
    ratio = np.median(scene[:, straps]) / np.median(scene[:, neighbours])
    assert 1.05 < ratio < 1.11
    saturated_columns = (scene >= 8e4).sum(axis=0)
    assert 1 <= (saturated_columns > 10).sum() < 40
    assert (scene > 1000).mean() > 0.001


def test_bad_frames_are_flagged_and_corrupted(sim):
    coarse = np.flatnonzero(sim.quality & QUALITY_FLAGS["CoarsePoint"])
    assert 1 <= len(coarse) <= 5
    flux = sim.read_frames(coarse[:1])[0][0]
    clean = sim.static_scene + sim.true_scattered_light(int(coarse[0]))
    assert np.abs(flux - clean).max() > 1000  # stars moved
    assert np.any(sim.quality & QUALITY_FLAGS["Desat"])


def test_simulated_geometry_is_real(sim):
    from tess_backml import geometry

    table = geometry.camera_vectors(4, 1, times=sim.time[::100], ephemeris="test")
    assert np.allclose(sim.camera_angle["earth"][::100], table["Earth_Camera_Angle"], atol=1e-6)
    rows, cols = np.array([5, 1500]), np.array([70, 900])
    maps = geometry.pixel_maps(4, 1, 1, rows + 1, cols + 45, sim.time[[10]], ephemeris="test")
    image = sim.body_angle_image(10, "earth")
    assert np.allclose(image[rows, cols], maps["earth_angle"][0], atol=1e-3)
    assert image.shape == (SCIENCE_SIZE, SCIENCE_SIZE)


@pytest.mark.slow
def test_simulate_command_writes_ffis_and_an_astrocut_cube(tmp_path, capsys):
    assert main(["-q", "simulate", "--frames", "10:13", "--out-dir", str(tmp_path), "--cube"]) == 0
    assert len(list(tmp_path.glob("tess*-s0004-1-1-0124-s_ffic.fits"))) == 3
    cube = MASTCubeSource(tmp_path / "tess-s0004-1-1-cube.fits")
    files = FFIFilesSource(tmp_path)
    assert cube.nframes == files.nframes == 3
    assert np.array_equal(cube.read_pixels(np.array([7]), np.array([9]))[0], files.read_pixels(np.array([7]), np.array([9]))[0])
    assert "astrocut" in capsys.readouterr().out


def test_info_command_describes_sources_and_refuses_bad_ones(written, tmp_path, capsys):
    directory, _, cube_path = written
    assert main(["info", cube_path]) == 0
    out = capsys.readouterr().out
    assert "MASTCubeSource(sector=4, camera=1, ccd=1, nframes=5)" in out and "CoarsePoint 1" in out
    truncated = tmp_path / "cut.fits"
    truncated.write_bytes(open(cube_path, "rb").read(100_000))
    empty = tmp_path / "empty"
    empty.mkdir()
    not_fits = tmp_path / "notes.txt"
    not_fits.write_text("not a cube")
    for bad, message in [(truncated, "not a usable MAST FFI cube"), (empty, "no FFI files"), (not_fits, "not a usable"),
                         (tmp_path / "missing.fits", "no such")]:
        assert main(["info", str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


class FlakyFileSystem(LocalFileSystem):
    """A local file system that fails on purpose: the first ``failures`` opens and
    range reads raise a connection error, as a remote store sometimes does."""

    protocol = "flaky"
    failures = 0

    @classmethod
    def _maybe_fail(cls):
        if cls.failures > 0:
            cls.failures -= 1
            raise ConnectionResetError("connection reset by peer (on purpose)")

    def _open(self, path, mode="rb", **kwargs):
        self._maybe_fail()
        return super()._open(path, mode=mode, **kwargs)

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return", **kwargs):
        try:
            self._maybe_fail()
        except OSError as exc:
            return [exc] * len(paths)
        return super().cat_ranges(paths, starts, ends, max_gap=max_gap, on_error=on_error, **kwargs)


def test_remote_reads_retry_transient_errors_then_fail_clearly(written, monkeypatch):
    _, _, cube_path = written
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    monkeypatch.setattr(MASTCubeSource, "backoff_seconds", 0.01)
    clean = MASTCubeSource(cube_path)
    FlakyFileSystem.failures = 2  # the header read fails twice, then works
    source = MASTCubeSource(f"flaky://{cube_path}")
    for read in (lambda s: s.read_rows(100, 116), lambda s: s.read_pixels(np.array([5, 900]), np.array([7, 1500]))):
        FlakyFileSystem.failures = 3
        for got, expected in zip(read(source), read(clean)):
            assert np.array_equal(got, expected, equal_nan=True)
        assert FlakyFileSystem.failures == 0  # three failures met, and read through
    FlakyFileSystem.failures = 10**6  # a store that never answers
    with pytest.raises(TessBackmlError, match="failed after 4 tries: ConnectionResetError"):
        source.read_rows(0, 16)
    FlakyFileSystem.failures = 0


def test_an_unreachable_object_store_is_one_line_from_the_cli_after_retries(monkeypatch, capsys, caplog):
    """No network (here: an S3 endpoint nobody listens on): botocore's connection errors
    are not OSErrors, yet they are retried like them and end in one line."""
    pytest.importorskip("s3fs", reason="needs s3fs (pip install '.[cloud]')")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{unused_port()}")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.setattr(MASTCubeSource, "backoff_seconds", 0.01)
    assert main(["info", "s3://stpubdata/tess/public/mast/tess-s0004-1-1-cube.fits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tess-backml info: error: opening s3://stpubdata/") and "failed after 4 tries" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert sum("trying again" in record.getMessage() for record in caplog.records) == 3  # 4 tries


def test_botocore_does_not_retry_under_the_sources_own_tries(monkeypatch):
    """A store that hangs up on every request: each of the source's tries is not five
    of botocore's (with their own waits: 28 s before an offline open said so)."""
    pytest.importorskip("s3fs", reason="needs s3fs (pip install '.[cloud]')")
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    requests = []

    def hang_up():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                requests.append(connection.recv(4096).split(b" ", 1)[0])

    threading.Thread(target=hang_up, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.setattr(MASTCubeSource, "backoff_seconds", 0.01)
    monkeypatch.setattr(MASTCubeSource, "retries", 2)
    with pytest.raises(TessBackmlError, match="failed after 2 tries"):
        MASTCubeSource("s3://stpubdata/tess/public/mast/tess-s0004-1-1-cube.fits")
    listener.close()
    # 20 here: s3fs's own five tries of a dropped connection, each sent twice by
    # aiobotocore; botocore's five attempts under each of those made it 100
    assert set(requests) == {b"HEAD"} and 2 <= len(requests) < 50


def test_touching_ranges_are_requested_as_one_span_within_the_size_limit():
    from tess_backml.sources.mast import merged_spans

    # a pixel and its left and right neighbours are contiguous; the rows above and below are not
    starts = np.array([100, 92, 108, 500, 0])
    spans = merged_spans(starts, 8, most=1000)
    assert spans == [(0, 8, [4]), (92, 116, [1, 0, 2]), (500, 508, [3])]
    assert merged_spans(starts, 8, most=16)[1:3] == [(92, 108, [1, 0]), (108, 116, [2])]  # capped
    assert merged_spans(np.array([0, 4]), np.array([10, 2]), most=100) == [(0, 10, [0, 1])]  # overlap


def test_the_compiled_transpose_matches_numpy_and_refuses_indices_out_of_the_block():
    from tess_backml.sources.bands import to_frame_major

    rng = np.random.default_rng(4)
    block = rng.normal(0, 1, (3, 70, 9, 2)).astype(">f4")  # big-endian, as in the file
    frames = np.array([8, 0, 3])
    flux, error = to_frame_major(block[:, 5:60], frames)
    np.testing.assert_array_equal(flux, block[:, 5:60, frames, 0].transpose(2, 0, 1))
    np.testing.assert_array_equal(error, block[:, 5:60, frames, 1].transpose(2, 0, 1))
    np.testing.assert_array_equal(to_frame_major(block.astype("<f4"))[0], to_frame_major(block)[0])
    with pytest.raises(TessBackmlError, match="frames must lie in 0..8"):
        to_frame_major(block, np.array([9]))
    with pytest.raises(TessBackmlError, match="out arrays must have shape"):
        to_frame_major(block, frames, out=(np.empty((3, 3, 69), np.float32), np.empty((3, 3, 69), np.float32)))
