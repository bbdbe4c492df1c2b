"""Each stage of a cube build on its own, with a small source whose light is known:
a flat sky whose level changes from frame to frame, one bright star, no noise."""

import numpy as np
import pytest
from astropy.io import fits

from tess_backml.constants import SCIENCE_SIZE
from tess_backml.cube import darkness, outputs, plan, statics, timebins, units
from tess_backml.errors import TessBackmlError
from tess_backml.masks import strap_columns
from tess_backml.sources.base import FFISource

STAR = (1000, 700)  # 0-based science row, column


class FlatSkySource(FFISource):
    """Frames of a flat sky at ``levels[i]`` e-/s plus one star; errors of 1 e-/s."""

    def __init__(self, levels, cheap_read="frames"):
        self.sector, self.camera, self.ccd = 4, 1, 1
        self.levels = np.asarray(levels, np.float32)
        self.time = 1410.0 + np.arange(len(levels)) / 48.0
        self.cadenceno = np.arange(len(levels))
        self.quality = np.zeros(len(levels), np.int32)
        self.primary_header = fits.Header()
        self.cheap_read = cheap_read
        self.reads = 0

    def _image(self, index):
        image = np.full((SCIENCE_SIZE, SCIENCE_SIZE), self.levels[index], np.float32)
        image[STAR[0] - 2 : STAR[0] + 3, STAR[1] - 2 : STAR[1] + 3] += 5000.0
        return image

    def _read_frames(self, indices):
        self.reads += len(indices)
        flux = np.stack([self._image(i) for i in indices])
        return flux, np.ones_like(flux)

    def _read_rows(self, start, stop, frames):
        flux, error = self._read_frames(frames)
        return flux[:, start:stop], error[:, start:stop]

    def _read_pixels(self, rows, columns, frames):
        flux = np.stack([self._image(i)[rows, columns] for i in frames])
        return flux, np.ones_like(flux)


def test_plan_selects_the_requested_good_frames():
    source = FlatSkySource(np.arange(20.0))
    bad = np.zeros(20, bool)
    bad[[3, 4]] = True
    assert plan.select_frames(source, bad, slice(0, 6)).tolist() == [0, 1, 2, 5]
    assert plan.select_frames(source, bad, (6,)).tolist() == [0, 1, 2, 5]  # the original's (stop,)
    assert plan.select_frames(source, bad, (2, 10, 4)).tolist() == [2, 6]
    assert plan.select_frames(source, bad, [7, 4, 9]).tolist() == [7, 9]
    with pytest.raises(TessBackmlError, match="bad quality"):
        plan.select_frames(source, bad, [3, 4])
    with pytest.raises(TessBackmlError, match="select no frame"):
        plan.select_frames(source, bad, slice(8, 2))


def test_darkness_keeps_the_darkest_frames_and_caches_them():
    levels = np.linspace(100.0, 50.0, 40)  # darkest last
    levels[[5, 17]] = [10.0, 12.0]
    source = FlatSkySource(levels)
    candidates = np.arange(40)
    key = darkness.cache_key(source, 4, 1, 1, None, candidates)
    dark, darkest, level = darkness.find_dark_frames(source, candidates, key)
    assert darkest == 5
    assert len(dark) == darkness.N_DARK_FRAMES and list(dark) == sorted(dark)
    assert {5, 17} <= set(dark.tolist()) and set(dark.tolist()) <= {5, 17, *range(32, 40)}
    np.testing.assert_allclose(level, levels)
    reads = source.reads
    again, darkest_again, level_again = darkness.find_dark_frames(source, candidates, key)
    assert source.reads == reads and level_again is None  # from the cache, nothing read
    np.testing.assert_array_equal(again, dark)
    assert key != darkness.cache_key(source, 4, 1, 1, None, candidates[:-1])


@pytest.mark.parametrize("cheap_read", ["frames", "rows"])
def test_statics_give_the_dark_median_and_mask_the_star(cheap_read):
    source = FlatSkySource([30.0, 10.0, 20.0, 40.0], cheap_read=cheap_read)
    scene = statics.static_scene(source, np.array([1, 2]), 1, img_bin=16, mask_straps=True)
    np.testing.assert_array_equal(scene.strap_mask, strap_columns(dilation=2))
    assert not statics.strap_mask_for(16, mask_straps=False).any()
    if cheap_read == "frames":
        assert scene.static[0, 0] == 15.0 and scene.static[STAR] == 5015.0
        assert scene.darkest[0, 0] == 10.0
        assert scene.star_mask[STAR] and scene.star_mask.mean() < 0.001
    else:  # row-read sources build the scene and the star mask per block
        assert scene.static is None and not scene.star_mask.any()


def _setup(source, frames, img_bin=64, block_rows=128):
    scene = statics.static_scene(source, np.array([0, 1]), 0, img_bin, mask_straps=False)
    if source.cheap_read == "rows":
        scene.star_mask[:] = False
    return units.PoolingSetup(
        source, np.asarray(frames), np.array([0, 1]), img_bin, False, block_rows,
        scene.static, scene.thresholds, scene.star_mask, scene.strap_mask, np.pi / 2 / 2,
    )


@pytest.mark.parametrize("cheap_read", ["frames", "rows"])
def test_units_pool_the_light_above_the_static_scene_in_either_order(cheap_read):
    source = FlatSkySource([10.0, 10.0, 13.0, 17.0, 25.0], cheap_read=cheap_read)
    setup = _setup(source, [2, 3, 4])
    expected_units = 1 if cheap_read == "frames" else SCIENCE_SIZE // 128
    assert len(setup.work_units()) == expected_units
    nbin = SCIENCE_SIZE // 64
    cube = np.full((3, nbin, nbin), np.nan, np.float32)
    cube_err, counts = np.full_like(cube, np.nan), np.zeros((nbin, nbin), np.int32)
    for unit in setup.work_units():
        units.apply_unit(setup, unit, units.compute_unit(setup, unit), cube, cube_err, counts, noise_factor=1.0)
    np.testing.assert_allclose(cube[:, 5, 5], [3.0, 7.0, 15.0])
    assert np.all(np.isfinite(cube_err)) and counts.max() == 64 * 64
    assert counts[STAR[0] // 64, STAR[1] // 64] < 64 * 64  # the star's pixels are left out
    assert setup.star_mask[STAR]


# (blocks of rows of every frame are not read ahead: their sources, remote MAST cubes,
# download the next rows themselves)
@pytest.mark.parametrize("cheap_read", ["frames"])
def test_read_ahead_reads_the_next_unit_in_the_background_and_changes_nothing(cheap_read):
    import threading

    source = FlatSkySource([10.0, 10.0, 13.0, 17.0, 25.0] * 4, cheap_read=cheap_read)
    setup = _setup(source, np.arange(2, 20))
    todo = setup.work_units()
    readers = []
    read = source._read_frames
    source._read_frames = lambda indices: (readers.append(threading.current_thread().name), read(indices))[1]
    plain = [units.compute_unit(setup, unit, units.RowReuse(source) if cheap_read == "rows" else None) for unit in todo]
    assert set(readers) == {"MainThread"}
    readers.clear()
    ahead = units.ReadAhead(setup, todo, units.RowReuse(source) if cheap_read == "rows" else None)
    try:
        results = [units.compute_unit(setup, unit, ahead) for unit in todo]
        # a read out of the expected order is made directly, and reading ahead goes on
        request = units.unit_read(setup, todo[0])
        direct = units.read_unit(setup, request)
        np.testing.assert_array_equal(units.read_unit(setup, request, ahead)[0], direct[0])
    finally:
        ahead.close()
    assert len(results) == len(todo) > 1 and all(name.startswith("tess-backml-read-ahead") for name in readers[:len(todo)])
    for got, expected in zip(results, plain):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])


def test_sparse_pixels_take_the_free_pixel_nearest_each_bin_centre():
    mask = np.zeros((SCIENCE_SIZE, SCIENCE_SIZE), bool)
    mask[0:8, 0:8] = True  # the first bin's centre region (8x8 of a 16-pixel bin)
    mask[16:32, 16:32] = True  # a bin with no free pixel
    rows, cols = units.sparse_pixels(mask, 16)
    nbin = SCIENCE_SIZE // 16
    assert (rows[0], cols[0]) != (-1, -1) and not mask[rows[0], cols[0]]
    assert rows[nbin + 1] == -1 and cols[nbin + 1] == -1
    assert (rows[2], cols[2]) == (7, 39)  # nearest to the centre (7.5, 39.5), first in order


def test_timebins_split_orbits_and_average_with_the_error_of_the_mean():
    time = np.r_[1410.0 + np.arange(8) / 48, 1424.0 + np.arange(5) / 48]  # 30-min frames, two orbits
    starts = timebins.time_bin_starts(time, 2.0)
    assert starts.tolist() == [0, 4, 8, 12]  # each orbit binned from its own first frame
    cube = np.arange(13, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    binned = timebins.bin_in_time(starts, time, np.arange(13), cube, np.full_like(cube, 2.0))
    np.testing.assert_allclose(binned["cube"][:, 0, 0], [1.5, 5.5, 9.5, 12.0])
    np.testing.assert_allclose(binned["cube_err"][:, 0, 0], [1.0, 1.0, 1.0, 2.0])
    assert binned["frames_per_bin"].tolist() == [4, 4, 4, 1]
    with pytest.raises(TessBackmlError, match="positive number of hours"):
        timebins.time_bin_starts(time, 0.0)


def test_outputs_name_files_as_the_original_and_need_a_built_cube():
    assert outputs.default_name(4, 1, 2, 16, "fits") == "ffi_sl_cube_sector004_1-2.fits"
    assert outputs.default_name(12, 3, 4, 32, "npz") == "ffi_cubes_bin32_sector012_3-4.npz"

    class Empty:
        pass

    with pytest.raises(TessBackmlError, match="compute the cube first"):
        outputs.to_sl_cube(Empty())
    with pytest.raises(TessBackmlError, match="compute the cube first"):
        outputs.training_arrays(Empty())


def test_adaptive_bins_split_only_where_the_light_outruns_the_spline():
    time = 1410.0 + np.arange(480) / 48  # 10 days of 30-min frames, one orbit
    smooth = 100 + 5 * np.sin(2 * np.pi * (time - time[0]) / 5.0)
    errors = np.full_like(time, 0.5)
    fixed = timebins.time_bin_starts(time, 2.0)
    np.testing.assert_array_equal(timebins.adaptive_bin_starts(time, smooth, errors, 2.0), fixed)
    glint = smooth + 2000 * np.exp(-0.5 * ((time - 1415.0) / (1.5 / 24)) ** 2)  # a 1.5-h flash
    starts = timebins.adaptive_bin_starts(time, glint, errors, 2.0)
    assert len(fixed) < len(starts) <= 2 * len(fixed)
    added = np.setdiff1d(time[starts], time[fixed])
    assert np.all(np.abs(added - 1415.0) < 0.5)  # the new bins sit around the flash

    def missed(starts):
        count = np.diff(np.r_[starts, time.size])
        followed = timebins._reconstruction(time, glint[:, None], starts)[:, 0]
        return np.sqrt(np.mean((glint - followed) ** 2)), count.min()

    assert missed(starts)[0] < 0.3 * missed(fixed)[0]
    with pytest.raises(TessBackmlError, match="max_factor"):
        timebins.adaptive_bin_starts(time, glint, errors, 2.0, max_factor=0.5)
    with pytest.raises(TessBackmlError, match="positive number of hours"):
        timebins.adaptive_bin_starts(time, glint, errors, -1.0)
    for bad in ("2", True, None):
        with pytest.raises(TessBackmlError, match="positive number of hours"):
            timebins.time_bin_starts(time, bad)
