"""Pooling kernels against a plain re-implementation of the original's pooling_2d."""

import sys

import numpy as np
import pytest
from conftest import REPO

from tess_backml.downsample import (
    MEDIAN_EFFICIENCY,
    _merge_cells_low,
    _merge_quads,
    _sort_quad,
    bin_errors,
    check_img_bin,
    median_over_frames,
    pool_frames,
    subtract_and_mask,
)
from tess_backml.errors import TessBackmlError

sys.path.insert(0, str(REPO / "benchmarks"))
from original_kernels import reference_pooling, reference_rolling  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(3)
    data = rng.normal(10, 3, (3, 256, 256)).astype(np.float32)
    data[rng.random(data.shape) < 0.2] = np.nan
    data[0, 40:90, 100:200] = np.nan  # a masked region larger than a bin
    data[1, :, :] += np.linspace(0, 50, 256, dtype=np.float32)  # a gradient
    return data


@pytest.mark.parametrize("img_bin", [2, 4, 16, 32])
def test_rolling_matches_the_original_iterated_pooling(frames, img_bin):
    ours = pool_frames(frames, img_bin, rolling=True)
    for frame, result in zip(frames, ours):
        expected = reference_rolling(frame, img_bin)
        assert np.array_equal(np.isnan(result), np.isnan(expected))
        assert np.allclose(result, expected, equal_nan=True, rtol=0, atol=1e-5)


@pytest.mark.parametrize("img_bin", [2, 16, 32])
@pytest.mark.parametrize("rolling", [True, False])
def test_some_output_rows_are_the_rows_of_the_whole(frames, img_bin, rolling):
    """Rows of the output computed alone (each rolling pass only where they reach)
    equal those rows of the whole, at the edges and in the middle."""
    whole = pool_frames(frames, img_bin, rolling=rolling)
    height = whole.shape[1]
    for first, stop in {(0, 1), (0, height), (1, 3), (height // 2, height // 2 + 1), (height - 2, height), (height - 1, height)}:
        if first < stop:
            some = pool_frames(frames, img_bin, rolling=rolling, rows=slice(first, stop))
            np.testing.assert_array_equal(some, whole[:, first:stop])
    for bad in (slice(3, 3), slice(0, height, 2)):
        with pytest.raises(TessBackmlError, match="non-empty slice of consecutive"):
            pool_frames(frames, img_bin, rolling=rolling, rows=bad)


@pytest.mark.parametrize("img_bin", [4, 16])
def test_fixed_bins_match_the_original(frames, img_bin):
    ours = pool_frames(frames, img_bin, rolling=False)
    for frame, result in zip(frames, ours):
        expected = reference_pooling(frame, img_bin, img_bin)
        assert np.allclose(result, expected, equal_nan=True, rtol=0, atol=1e-5)


def _zero_one(n):
    """Every 0-1 input of n lanes (by the 0-1 principle, a network that sorts these sorts all)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float32)


def test_quad_sort_sorts_every_zero_one_input():
    for values in _zero_one(4):
        assert list(_sort_quad(*values)) == sorted(values)


def test_quad_merge_merges_every_pair_of_sorted_zero_one_runs():
    for a in _zero_one(4):
        for b in _zero_one(4):
            a, b = np.sort(a), np.sort(b)
            assert list(_merge_quads(*a, *b)) == sorted([*a, *b])


def test_cell_merge_gives_the_nine_smallest_of_every_pair_of_sorted_zero_one_runs():
    runs = [np.r_[np.zeros(8 - ones), np.ones(ones)].astype(np.float32) for ones in range(9)]
    for x in runs:
        for y in runs:
            assert list(_merge_cells_low(*x, *y)) == sorted([*x, *y])[:9]
    # and on real values, with ties and +inf (masked pixels)
    rng = np.random.default_rng(5)
    for _ in range(200):
        x = np.sort(rng.choice([1.0, 2.0, 3.5, np.inf], 8)).astype(np.float32)
        y = np.sort(rng.normal(2, 1, 8)).astype(np.float32)
        assert list(_merge_cells_low(*x, *y)) == sorted([*x, *y])[:9]


def test_errors_and_counts():
    rng = np.random.default_rng(0)
    flux = rng.normal(0, 1, (1, 32, 32)).astype(np.float32)
    error = np.full_like(flux, 2.0)
    flux[0, :16, :16][:4] = np.nan  # 64 of the first bin's 256 pixels masked
    flux[0, 16:, 16:] = np.nan  # one bin fully masked
    err, counts = bin_errors(flux, error, 16)
    assert counts[0].tolist() == [[192, 256], [256, 0]]
    assert np.isclose(err[0, 0, 0], MEDIAN_EFFICIENCY * 2 / np.sqrt(192))
    assert np.isclose(err[0, 0, 1], MEDIAN_EFFICIENCY * 2 / np.sqrt(256))
    assert np.isnan(err[0, 1, 1])
    err_extra, _ = bin_errors(flux, error, 16, extra_variance=0.5)
    assert np.isclose(err_extra[0, 0, 1], err[0, 0, 1] * np.sqrt(1.5))


def test_bin_errors_of_some_rows_equal_those_of_the_rows_cut_out():
    rng = np.random.default_rng(2)
    flux = rng.normal(0, 1, (3, 64, 32)).astype(np.float32)
    flux[flux > 1.5] = np.nan
    error = rng.uniform(1, 2, flux.shape).astype(np.float32)
    some, some_counts = bin_errors(flux, error, 16, 0.25, rows=slice(16, 48))
    cut, cut_counts = bin_errors(flux[:, 16:48].copy(), error[:, 16:48].copy(), 16, 0.25)
    np.testing.assert_array_equal(some, cut)
    np.testing.assert_array_equal(some_counts, cut_counts)
    alone, _ = bin_errors(flux, error[:, 16:48].copy(), 16, 0.25, rows=slice(16, 48))  # those rows' errors only
    np.testing.assert_array_equal(alone, cut)
    with pytest.raises(TessBackmlError, match="fit neither"):
        bin_errors(flux, error[:, :20], 16, rows=slice(16, 48))
    with pytest.raises(TessBackmlError, match="whole bins"):
        bin_errors(flux, error, 16, rows=slice(8, 40))


def test_bin_errors_are_honest_for_gaussian_noise():
    rng = np.random.default_rng(1)
    flux = rng.normal(0, 1.5, (400, 16, 16)).astype(np.float32)
    err, _ = bin_errors(flux, np.full_like(flux, 1.5), 16)
    medians = pool_frames(flux, 16, rolling=False)[:, 0, 0]
    assert abs(medians.std() / err[0, 0, 0] - 1) < 0.1


@pytest.mark.parametrize("bad", [3, 0, 48, 4096, "16", 2.5])
def test_bad_img_bin_is_refused(bad):
    with pytest.raises(TessBackmlError, match="img_bin"):
        check_img_bin(bad)


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_median_over_frames_equals_numpy(n):
    rng = np.random.default_rng(n)
    stack = rng.normal(0, 1, (n, 30, 40)).astype(np.float32)
    stack[:, 5, 5] = 7.0  # ties
    stack[0, 3, 4] = np.nan  # NaN in any frame: NaN, as np.median
    np.testing.assert_array_equal(median_over_frames(stack), np.median(stack, axis=0).astype(np.float32))
    with pytest.raises(TessBackmlError, match="no frames"):
        median_over_frames(stack[:0])


def test_subtract_and_mask_works_in_place_on_views():
    rng = np.random.default_rng(2)
    frames = rng.normal(0, 1, (3, 40, 30)).astype(np.float32)
    static = rng.normal(0, 1, (20, 30)).astype(np.float32)
    mask = rng.random((20, 30)) < 0.3
    expected = frames[:, 10:30] - static
    expected[:, mask] = np.nan
    view = frames[:, 10:30]
    assert subtract_and_mask(view, static, mask) is view
    np.testing.assert_array_equal(frames[:, 10:30], expected)
    with pytest.raises(TessBackmlError, match="must match"):
        subtract_and_mask(frames, static, mask)
