"""The SL cube: accuracy against the simulator's truth, one cube from every source
kind, the FITS format (the original's real file), the NPZ training set, bad input."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from conftest import shared_file

from tess_backml.cli import main
from tess_backml.cube import BackgroundCube, fill_empty_bins
from tess_backml.errors import TessBackmlError
from tess_backml.io import read_sl_cube, write_sl_cube
from tess_backml.sources import SimulatedSector
from tess_backml.sources.mast import make_astrocut_cube


@pytest.fixture(scope="module")
def sim():
    return SimulatedSector()


@pytest.fixture(scope="module")
def built(sim):
    cube = BackgroundCube(4, 1, 1, img_bin=16, source=sim, progress=False)
    cube.get_scatter_light_cube(frames=slice(0, sim.nframes, 24))
    cube.bin_time_axis(2.0)
    return cube


def test_cube_matches_the_truth(built):
    truth = built.truth_cube()
    assert built.scatter_cube.shape == truth.shape == (len(built.time), 128, 128)
    rms_error = np.sqrt(np.mean((built.scatter_cube - truth) ** 2))
    rms_truth = np.sqrt(np.mean(truth**2))
    assert rms_truth > 10  # the selection includes frames with strong scattered light
    assert rms_error <= 0.05 * rms_truth
    # the quoted errors describe the scatter of the residuals (within 30%)
    quiet = np.abs(truth) < 0.5
    pulls = (built.scatter_cube - truth)[quiet] / built.scatter_err_cube[quiet]
    assert 0.7 < pulls.std() < 1.3


def test_masks_and_counts_are_sensible(built):
    assert 0.02 < built.star_mask.mean() < 0.3
    assert built.strap_mask.sum() > 100
    assert built.pixel_counts.max() == 256 and built.pixel_counts.min() > 0
    assert len(built.dark_frames) == 10
    assert not np.any(built.source.quality[built.frame_indices] & 4)  # CoarsePoint frames dropped


def test_time_bins_propagate_the_error_of_the_mean(sim):
    cube = BackgroundCube(4, 1, 1, img_bin=64, source=sim, progress=False)
    cube.get_scatter_light_cube(frames=slice(560, 572))
    flux, err, time = cube.scatter_cube.copy(), cube.scatter_err_cube.copy(), cube.time.copy()
    cube.bin_time_axis(2.0)
    first = cube.frames_per_bin[0]
    assert cube.frames_per_bin.sum() == len(time) and first == 4  # 2 h of 30-minute frames
    assert np.allclose(cube.scatter_cube[0], flux[:first].mean(axis=0), atol=1e-5)
    assert np.allclose(cube.scatter_err_cube[0], np.sqrt((err[:first] ** 2).sum(axis=0)) / first, rtol=1e-5)
    assert np.isclose(cube.time[0], time[:first].mean())
    with pytest.raises(TessBackmlError, match="already binned"):
        cube.bin_time_axis(2.0)


def test_time_bins_do_not_straddle_the_perigee_gap(sim):
    cube = BackgroundCube(4, 1, 1, img_bin=128, source=sim, progress=False)
    gap = int(np.flatnonzero(np.diff(sim.time) > 0.5)[0])
    cube.get_scatter_light_cube(frames=slice(gap - 13, gap + 13))
    before = int(np.sum(cube.time <= sim.time[gap]))
    cube.bin_time_axis(6.0)
    edges = np.cumsum(cube.frames_per_bin)
    assert before in edges  # a bin ends exactly at the gap
    assert np.all(np.diff(cube.time) > 0)


@pytest.mark.slow
def test_same_cube_from_every_source_kind(sim, tmp_path):
    frames = np.arange(100, 112)
    paths = sim.write_ffis(tmp_path, frames, progress=False)
    cube_file = str(tmp_path / "tess-s0004-1-1-cube.fits")
    make_astrocut_cube(paths, cube_file, sector=4)
    results = []
    for source in (sim, str(tmp_path), cube_file):
        cube = BackgroundCube(4, 1, 1, img_bin=16, source=source, progress=False)
        cube.get_scatter_light_cube(frames=None if source is not sim else frames)
        results.append(cube)
    reference = results[0]
    for other in results[1:]:
        assert np.array_equal(other.dark_frames, np.searchsorted(frames, reference.dark_frames))
        assert np.array_equal(other.pixel_counts, reference.pixel_counts)
        assert np.allclose(other.scatter_cube, reference.scatter_cube, atol=1e-5, equal_nan=True)
        assert np.allclose(other.scatter_err_cube, reference.scatter_err_cube, rtol=1e-5)
        assert np.allclose(other.time, reference.time)

    # frames in any order: a MAST cube reads its row blocks for those frames only
    order = [7, 2, 11, 0, 5, 9, 3]
    by_rows, by_frames = (BackgroundCube(4, 1, 1, img_bin=16, source=s, progress=False) for s in (cube_file, str(tmp_path)))
    for cube in (by_rows, by_frames):
        cube.get_scatter_light_cube(frames=order)
    assert np.allclose(by_rows.time, sim.time[frames[order]])
    assert np.array_equal(by_rows.pixel_counts, by_frames.pixel_counts)
    assert np.allclose(by_rows.scatter_cube, by_frames.scatter_cube, atol=1e-5, equal_nan=True)
    assert np.allclose(by_rows.scatter_err_cube, by_frames.scatter_err_cube, rtol=1e-5)


@pytest.mark.slow
def test_a_mast_cube_is_read_once_in_tiles_whose_memory_is_set_not_by_the_sector(sim, tmp_path, monkeypatch):
    """Local MAST cubes: the static scene from the dark frames alone, then tiles of rows x
    frames (as many frames as memory_gb allows), each byte read once; remote ones are
    copied to scratch in bands of whole rows of every frame, each band once, and pooled
    in row blocks of tiles of frames. Every way gives the same cube."""
    from tess_backml.cube import units
    from tess_backml.sources import MASTCubeSource, mast

    frames = np.arange(200, 220)
    cube_file = str(tmp_path / "tess-s0004-1-1-cube.fits")
    make_astrocut_cube(sim.write_ffis(tmp_path, frames, progress=False), cube_file, sector=4)
    data_bytes = len(frames) * 2048 * 2048 * 8  # every frame is pooled (none has bad quality)

    def build(source, **options):
        cube = BackgroundCube(4, 1, 1, img_bin=16, source=source, progress=False, **options)
        cube.prepare()
        prepared = source.bytes_read
        cube.run_units()
        return cube, source.bytes_read - prepared

    whole, whole_bytes = build(MASTCubeSource(cube_file))
    tiny = 6 * (128 + 2 * 16) * 2048 * units.TILE_BYTES_PER_VALUE / 2**30  # six frames per tile of 128 rows + halos
    tiled, tiled_bytes = build(MASTCubeSource(cube_file), memory_gb=tiny)
    rows, rows_bytes = build(MASTCubeSource(cube_file, memmap=False))
    # a local cube of a sector's length is copied in bands by default, not mapped
    monkeypatch.setattr(mast, "MAPPED_MOST_FRAMES", len(frames) - 1)
    banded = MASTCubeSource(cube_file, scratch_dir=tmp_path)
    assert not banded.frame_ranges_cheap and MASTCubeSource(cube_file, memmap=True).frame_ranges_cheap
    requested = []
    ranges = banded._cat_ranges
    banded._cat_ranges = lambda starts, lengths, what, *more: requested.append(what) or ranges(starts, lengths, what, *more)
    banded, banded_bytes = build(banded)
    assert banded_bytes == rows_bytes and "image rows" not in requested  # rows read in place, not copied first
    # as remote cubes are read: bands of rows of every frame copied to scratch, pooled in tiles
    few = 6 * (32 + 2 * 16) * 2048 * units.TILE_BYTES_PER_VALUE / 2**30  # blocks of 32 rows + rolling halos
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rows_tiled, _ = build(MASTCubeSource(cube_file, memmap=False, scratch_dir=scratch), memory_gb=few)
    assert not list(scratch.iterdir())  # the scratch bands go with the build
    assert whole.pooling.tile_frames >= len(frames) and tiled.pooling.tile_frames == 6
    assert rows.block_rows == 32 and rows_tiled.pooling.tile_frames == 6
    assert {unit[0] for unit in tiled.work_units()} == {"tile"} and {unit[0] for unit in rows.work_units()} == {"rows"}
    assert whole_bytes == tiled_bytes == rows_bytes == data_bytes  # each pooled byte once, science columns only
    for other in (tiled, rows, rows_tiled, banded):
        np.testing.assert_array_equal(other.scatter_cube, whole.scatter_cube)
        np.testing.assert_array_equal(other.scatter_err_cube, whole.scatter_err_cube)
        np.testing.assert_array_equal(other.pixel_counts, whole.pixel_counts)
    # without the kept halos (as Dask tasks are), the same cube from twice the reads
    again = MASTCubeSource(cube_file)
    alone = BackgroundCube(4, 1, 1, img_bin=16, source=again, progress=False, memory_gb=tiny)
    alone.prepare()
    for unit in alone.work_units():
        alone.apply_unit(unit, alone.compute_unit(unit))
    alone.finish()
    np.testing.assert_array_equal(alone.scatter_cube, whole.scatter_cube)
    with pytest.raises(TessBackmlError, match="memory_gb must be a positive"):
        BackgroundCube(4, 1, 1, source=again, memory_gb=0)


# --------------------------------------------------------------------------- files
def original_reader(path):
    """The reading code path of the original tess-backml ScatterLightCorrector."""
    hdul = fits.open(path)
    header = hdul[0].header
    return {
        "sector": header["SECTOR"], "camera": header["CAMERA"], "ccd": header["CCD"],
        "binned": hdul[3].header["BINNED"], "time_bin": header["TIMBINS"],
        "shape": (header["TIMSIZE"], header["IMGSIZEY"], header["IMGSIZEX"]),
        "pixbin": header["PIXBIN"], "time": hdul[3].data["time"],
        "sl": hdul[1].data.T[0], "sle": hdul[1].data.T[1],
        "tmin": header["TSTART"] + 2457000, "tmax": header["TSTOP"] + 2457000,
    }


def test_real_cube_round_trips_unchanged(tmp_path):
    path = shared_file("ffi_sl_cube_sector002_1-1_test.fits")
    cube = read_sl_cube(path)
    assert (cube.sector, cube.camera, cube.ccd, cube.pixel_bin) == (2, 1, 1, 128)
    assert cube.flux.shape == (20, 16, 16) and cube.time[0] == pytest.approx(1354.15168664)
    copy = write_sl_cube(tmp_path / "copy.fits", cube)
    with fits.open(path) as original, fits.open(copy) as written:
        for i in range(4):
            assert np.array_equal(original[i].data, written[i].data) if i != 3 else np.array_equal(
                original[3].data["time"], written[3].data["time"]
            )
        for key in original[0].header:
            assert written[0].header[key] == original[0].header[key], key
        assert written[3].header["BINNED"] == original[3].header["BINNED"]


def test_our_cube_opens_with_the_original_reader(built, tmp_path):
    path = built.save_to_fits(str(tmp_path / "ours.fits"))
    seen = original_reader(path)
    assert (seen["sector"], seen["camera"], seen["ccd"], seen["pixbin"]) == (4, 1, 1, 16)
    assert seen["shape"] == built.scatter_cube.shape and seen["binned"]
    assert np.allclose(seen["sl"], built.scatter_cube) and np.allclose(seen["sle"], built.scatter_err_cube)
    assert np.allclose(seen["time"], built.time + 2457000)
    assert seen["tmin"] <= seen["time"].min() and seen["tmax"] >= seen["time"].max()
    again = read_sl_cube(path)
    assert np.array_equal(again.frames_per_bin, built.frames_per_bin)
    assert fits.getheader(path)["FILEVER"] == "1.2"


def test_training_set_describes_itself(built, tmp_path):
    path = built.save_to_npz(str(tmp_path / "train.npz"), save_maps=True)
    data = np.load(path, allow_pickle=False)
    nt = built.scatter_cube.shape[0]
    for key in ("earth_alt", "earth_az", "earth_dist", "moon_alt", "moon_az", "moon_dist"):
        assert data[key].shape == (nt,)
        assert data[f"{key}_map"].shape == built.scatter_cube.shape
    assert not np.allclose(data["moon_alt"], data["earth_alt"])  # the original copied the Earth's
    spread = data["earth_alt_map"].max(axis=(1, 2)) - data["earth_alt_map"].min(axis=(1, 2))
    assert np.all(spread > 5)  # real per-pixel maps, not flat
    assert 0.2 < data["moon_dist"].min() and data["moon_dist"].max() < 0.8  # the Moon's angular size
    assert data["bin_row"][0] == pytest.approx(8.5) and data["bin_col"][0] == pytest.approx(52.5)
    assert int(data["sector"]) == 4 and int(data["img_bin"]) == 16 and float(data["time_bin_hours"]) == 2.0


# --------------------------------------------------------------------------- bad input
def test_bad_arguments(sim):
    with pytest.raises(TessBackmlError, match="img_bin"):
        BackgroundCube(4, 1, 1, img_bin=12, source=sim)
    with pytest.raises(TessBackmlError, match="downsize"):
        BackgroundCube(4, 1, 1, downsize="mean", source=sim)
    with pytest.raises(TessBackmlError, match="sector 0"):
        BackgroundCube(0, 1, 1, source="sim")
    cube = BackgroundCube(4, 1, 1, source=sim, progress=False)
    with pytest.raises(TessBackmlError, match="out of range"):
        cube.get_scatter_light_cube(frames=slice(0, 5000))
    flagged = BackgroundCube(4, 1, 1, source=sim, quality_bits=0xFFFF, progress=False)
    coarse = np.flatnonzero(sim.quality)[:3]
    with pytest.raises(TessBackmlError, match="no good frames"):
        flagged.get_scatter_light_cube(frames=coarse)


def test_empty_bins_are_filled_and_all_masked_is_refused():
    y, x = np.mgrid[0:16, 0:16]
    cube = np.stack([1 + 0.1 * x + 0.05 * y, 2 + 0.2 * x]).astype(np.float32)
    holes = cube.copy()
    holes[:, 5:8, 5:8] = np.nan
    assert np.allclose(fill_empty_bins(holes), cube, atol=1e-4)
    with pytest.raises(TessBackmlError, match="too few valid bins"):
        fill_empty_bins(np.full((2, 16, 16), np.nan, np.float32))


def test_unwritable_output_leaves_nothing(built, tmp_path, capsys):
    with pytest.raises(TessBackmlError, match="does not exist"):
        built.save_to_fits(str(tmp_path / "missing" / "cube.fits"))
    assert not list(tmp_path.rglob("*.fits*"))
    status = main(["-q", "cube", "--sector", "4", "--camera", "1", "--ccd", "1", "--source", "sim", "--frames", "0:30",
                   "--out", str(tmp_path / "nowhere" / "x.fits")])
    err = capsys.readouterr().err
    assert status == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_cube_command_errors_are_one_line(tmp_path, capsys):
    for argv, message in [
        (["cube", "--sector", "4", "--camera", "1", "--ccd", "1", "--source", "sim", "--image-bin", "12"], "img_bin"),
        (["cube", "--sector", "4", "--camera", "1", "--ccd", "1", "--source", "sim", "--frames", "0:9999"], "out of range"),
        (["cube", "--sector", "4", "--camera", "1", "--ccd", "1", "--source", str(tmp_path / "no.fits")], "no such"),
        (["cube", "--sector", "4", "--camera", "1", "--ccd", "2", "--source", "sim", "--frames", "0:2"], None),
    ]:
        status = main(["-q", *argv, "--out", str(tmp_path / "c.fits")])
        err = capsys.readouterr().err
        if message is None:
            continue
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


class BlankSector(SimulatedSector):
    """A simulated sector whose pixels are all missing (NaN)."""

    def _read_frames(self, indices):
        flux, error = super()._read_frames(indices)
        flux[:] = np.nan
        return flux, error


@pytest.mark.slow
def test_cube_command_puts_scratch_bands_where_asked(sim, tmp_path, monkeypatch, capsys):
    """``--scratch-dir``: a directory that is not there stops the build with one line,
    before anything is written; one that is holds the bands, and is empty after."""
    from tess_backml.sources import mast, staging

    frames = np.arange(200, 216)
    cube_file = make_astrocut_cube(sim.write_ffis(tmp_path / "ffi", frames, progress=False),
                                   str(tmp_path / "tess-s0004-1-1-cube.fits"), sector=4)
    out = tmp_path / "out.fits"
    argv = ["-q", "cube", "--source", cube_file, "--sector", "4", "--camera", "1", "--ccd", "1", "--out", str(out)]
    assert main([*argv, "--scratch-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "scratch directory" in err and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "out.fits.partial").exists()
    monkeypatch.setattr(mast, "MAPPED_MOST_FRAMES", 1)  # in bands, as a sector's length is
    made, mkdtemp = [], staging.tempfile.mkdtemp
    monkeypatch.setattr(staging.tempfile, "mkdtemp", lambda **options: made.append(options.get("dir")) or mkdtemp(**options))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert main([*argv, "--scratch-dir", str(scratch)]) == 0
    assert str(scratch) in made and not list(scratch.iterdir())  # the bands went there, and went away
    assert read_sl_cube(out).flux.shape[1:] == (128, 128)


def test_a_source_with_no_valid_pixels_gives_a_clear_error():
    blank = BlankSector(n_stars=10)
    cube = BackgroundCube(4, 1, 1, source=blank, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's all-NaN warnings
        with pytest.raises(TessBackmlError, match="no finite values|every pixel is masked"):
            cube.get_scatter_light_cube(frames=slice(0, 12))


def test_sparse_downsizing_takes_one_background_pixel_per_bin(sim, built):
    cube = BackgroundCube(4, 1, 1, img_bin=64, downsize="sparse", source=sim, progress=False)
    cube.get_scatter_light_cube(frames=built.frame_indices[:6])
    assert cube.scatter_cube.shape == (6, 32, 32)
    assert set(np.unique(cube.pixel_counts)) <= {0, 1} and cube.pixel_counts.sum() > 1000
    # each value is one static-subtracted background pixel: close to the truth there
    truth = np.array([sim.true_scattered_light(i) for i in cube.frame_indices])
    coarse = truth[:, 32::64, 32::64]
    assert np.nanmedian(np.abs(cube.scatter_cube - coarse)) < 1.0
    assert np.all(np.isfinite(cube.scatter_err_cube[:, cube.pixel_counts > 0]))


def test_animation_and_figures_are_written(built, tmp_path):
    from tess_backml.plotting import plot_maps

    gif = built.animate_data(file_name=str(tmp_path / "sl.gif"), step=max(len(built.time) // 5, 1))
    assert gif.endswith("sl.gif") and (tmp_path / "sl.gif").stat().st_size > 10_000
    built.get_vector_maps()
    built.animate_data(data="earth_alt", file_name=str(tmp_path / "earth.gif"), step=len(built.time))
    plot_maps(built, path=str(tmp_path / "maps.png"))
    built.plot_dark_frame(path=str(tmp_path / "masks.png"))
    for name in ("earth.gif", "maps.png", "masks.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    with pytest.raises(TessBackmlError, match="data must be"):
        built.animate_data(data="sun_alt")
    assert not list(tmp_path.glob(".*part"))


@pytest.mark.slow
def test_adaptive_time_bins_are_stored_with_their_start_and_stop(tmp_path):
    """An adaptively binned cube: more bins than fixed (at most twice), each bin's first and
    last frame in the file (FILEVER 1.2), read back by the corrector's reader."""
    from tess_backml.cube.timebins import time_bin_starts

    cube = BackgroundCube(4, 1, 1, img_bin=64, source="sim", progress=False)
    cube.get_scatter_light_cube(frames=slice(500, 620))  # the first perigee's light
    fixed = len(time_bin_starts(cube.time, 2.0))
    with pytest.raises(TessBackmlError, match="adaptive must be True or False"):
        cube.bin_time_axis(2.0, adaptive="yes")
    cube.bin_time_axis(2.0, adaptive=True)
    assert fixed < len(cube.time) <= 2 * fixed
    assert np.all(cube.bin_start <= cube.time) and np.all(cube.time <= cube.bin_stop)
    assert np.all(cube.bin_start[1:] > cube.bin_stop[:-1])
    back = read_sl_cube(cube.save_to_fits(str(tmp_path / "adaptive.fits")))
    np.testing.assert_array_equal(back.bin_start, cube.bin_start)
    np.testing.assert_array_equal(back.bin_stop, cube.bin_stop)
    assert back.time_bin_method == "adaptive mean"
    np.testing.assert_array_equal(back.frames_per_bin, cube.frames_per_bin)
