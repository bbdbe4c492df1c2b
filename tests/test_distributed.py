"""Many cubes on a Dask cluster, checkpoints, kill-and-resume, skipping finished outputs."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits

from tess_backml.cli import main
from tess_backml.cube import BackgroundCube
from tess_backml.distributed import parse_range
from tess_backml.errors import TessBackmlError

FRAMES = "0:40:4"


def _cube_data(path):
    with fits.open(path) as hdul:
        return [np.array(hdu.data.tolist() if isinstance(hdu, fits.BinTableHDU) else hdu.data) for hdu in hdul[1:]]


def _same_files(a, b):
    for x, y in zip(_cube_data(a), _cube_data(b)):
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True)
        else:
            assert np.array_equal(x, y)


def test_ranges_are_parsed_and_checked():
    assert parse_range("1-4", 1, 4, "--ccds") == [1, 2, 3, 4]
    assert parse_range("3,1", 1, 4, "--ccds") == [1, 3]
    for bad in ("0-2", "x", "5", ""):
        with pytest.raises(TessBackmlError, match="--ccds"):
            parse_range(bad, 1, 4, "--ccds")


@pytest.mark.slow
def test_four_cubes_on_a_local_cluster_equal_single_process_builds(tmp_path):
    pytest.importorskip("distributed")
    common = ["-q", "cube", "--source", "sim", "--sectors", "4", "--cameras", "1", "--ccds", "1-4", "--frames", FRAMES]
    assert main([*common, "--out-dir", str(tmp_path / "dask"), "--workers", "2"]) == 0
    assert main([*common, "--out-dir", str(tmp_path / "local")]) == 0
    for ccd in range(1, 5):
        name = f"ffi_sl_cube_sector004_1-{ccd}.fits"
        _same_files(tmp_path / "dask" / name, tmp_path / "local" / name)  # bit for bit
    assert not list(tmp_path.rglob("*.partial"))


def test_existing_outputs_are_skipped_unless_overwritten(tmp_path, capsys):
    out = tmp_path / "ffi_sl_cube_sector004_1-1.fits"
    out.write_text("an older result")
    argv = ["-q", "cube", "--source", "sim", "--sector", "4", "--camera", "1", "--ccd", "1", "--frames", "0:8",
            "--out-dir", str(tmp_path)]
    assert main(argv) == 0
    assert "exists, skipped" in capsys.readouterr().out and out.read_text() == "an older result"
    assert main([*argv, "--overwrite"]) == 0
    assert fits.getheader(out)["SECTOR"] == 4


def test_missing_dask_or_scheduler_is_a_clear_error(tmp_path, capsys, monkeypatch):
    argv = ["cube", "--source", "sim", "--sector", "4", "--camera", "1", "--ccd", "1", "--frames", "0:8",
            "--out-dir", str(tmp_path)]
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    assert main([*argv, "--workers", "2"]) == 2
    assert "pip install 'tess-backml[distributed]'" in capsys.readouterr().err
    monkeypatch.delitem(sys.modules, "distributed")
    assert main(["cube", "--source", "sim", "--ccd", "1", "--camera", "1", "--out-dir", str(tmp_path)]) == 2
    assert "--sector" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_build_resumes_without_redoing_finished_units(tmp_path, monkeypatch):
    frames = "0:120"  # 15 chunks of 8 frames, ~1 s each
    out = tmp_path / "killed.fits"
    argv = ["-q", "cube", "--source", "sim", "--sector", "4", "--camera", "1", "--ccd", "1", "--frames", frames]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tess_backml.cli", *argv, "--out", str(out)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    checkpoint = tmp_path / "killed.fits.partial"
    deadline = time.time() + 240
    while len(list(checkpoint.glob("frames-*.npz"))) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in checkpoint.glob("frames-*.npz"))
    assert len(finished) >= 3 and not out.exists()  # nothing but whole units and no output

    computed = []
    original = BackgroundCube.compute_unit

    def counting(self, unit, *reader):
        computed.append(unit)
        return original(self, unit, *reader)

    monkeypatch.setattr(BackgroundCube, "compute_unit", counting)
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    redone = {f"frames-{start:05d}.npz" for _, start in computed}
    assert not redone & set(finished) and len(computed) == 15 - len(finished)
    assert not checkpoint.exists()

    monkeypatch.setattr(BackgroundCube, "compute_unit", original)
    reference = tmp_path / "uninterrupted.fits"
    assert main([*argv, "--out", str(reference)]) == 0
    _same_files(out, reference)


def test_dataset_command_writes_cube_and_training_set(tmp_path):
    from tess_backml.model import TrainingSet

    argv = ["-q", "dataset", "--source", "sim", "--sector", "4", "--camera", "1", "--ccd", "1", "--frames", "0:16",
            "--out-dir", str(tmp_path)]
    assert main(argv) == 0
    cube_file = tmp_path / "ffi_sl_cube_sector004_1-1.fits"
    training = tmp_path / "ffi_cubes_bin16_sector004_1-1.npz"
    assert fits.getheader(cube_file)["SECTOR"] == 4 and training.is_file()
    data = TrainingSet([str(training)])  # the model package reads what dataset writes
    assert data.features.shape[0] == data.target.size == np.prod(data.shapes[0])
    assert np.isfinite(data.features).all()


@pytest.mark.slow
def test_a_local_mast_cube_on_a_cluster_is_built_in_tiles_equal_to_the_single_process_build(tmp_path):
    """Dask tasks of a local MAST cube are tiles of rows x frames, as small as --memory-gb
    asks (here a few frames each), and the cube is the same bit for bit."""
    pytest.importorskip("distributed")
    from tess_backml.cube import units
    from tess_backml.sources import SimulatedSector
    from tess_backml.sources.mast import make_astrocut_cube

    cube_file = str(tmp_path / "tess-s0004-1-1-cube.fits")
    make_astrocut_cube(SimulatedSector().write_ffis(tmp_path / "ffis", range(100, 112), progress=False), cube_file, sector=4)
    memory = 4 * (128 + 2 * 16) * 2048 * units.TILE_BYTES_PER_VALUE / 2**30  # four frames per tile
    common = ["-q", "cube", "--source", cube_file, "--sector", "4", "--camera", "1", "--ccd", "1", "--memory-gb", str(memory)]
    assert main([*common, "--out", str(tmp_path / "dask.fits"), "--workers", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "local.fits")]) == 0
    _same_files(tmp_path / "dask.fits", tmp_path / "local.fits")
    cube = BackgroundCube(4, 1, 1, source=cube_file, progress=False, memory_gb=memory)
    cube.prepare()
    assert cube.pooling.tile_frames == 4 and {unit[0] for unit in cube.work_units()} == {"tile"}


@pytest.mark.slow
def test_a_mast_cube_in_bands_on_a_cluster_equals_the_single_process_build(tmp_path, monkeypatch):
    """A cube copied in bands (remote ones, and local ones of a sector's length) runs as
    row blocks on the workers, each copying its bands to its own scratch: the same cube
    bit for bit, and no scratch bands left behind once the cluster is closed."""
    distributed = pytest.importorskip("distributed")
    from tess_backml.sources import MASTCubeSource, SimulatedSector
    from tess_backml.sources.mast import make_astrocut_cube

    cube_file = str(tmp_path / "tess-s0004-1-1-cube.fits")
    make_astrocut_cube(SimulatedSector().write_ffis(tmp_path / "ffis", range(100, 112), progress=False), cube_file,
                       sector=4)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the workers' scratch bands
    seen = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_cluster = BackgroundCube(4, 1, 1, source=MASTCubeSource(cube_file, memmap=False), progress=False)
        on_cluster.get_scatter_light_cube(client=client)
        seen = [path for path in scratch.rglob("*") if path.is_file()]
    alone = BackgroundCube(4, 1, 1, source=MASTCubeSource(cube_file, memmap=False), progress=False)
    alone.get_scatter_light_cube()
    assert {unit[0] for unit in alone.work_units()} == {"rows"}
    assert seen  # the workers' bands were there during the build ...
    assert not [path for path in scratch.rglob("*") if path.is_file()]  # ... and went with the workers
    np.testing.assert_array_equal(on_cluster.scatter_cube, alone.scatter_cube)
    np.testing.assert_array_equal(on_cluster.scatter_err_cube, alone.scatter_err_cube)
