"""Pooling kernels against a plain re-implementation of the original's pooling_2d."""

import sys

import numpy as np
import pytest
from conftest import REPO

from tess_backml.downsample import (
    MEDIAN_EFFICIENCY,
    _batcher_network,
    _network_stages,
    bin_errors,
    check_img_bin,
    pool_frames,
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


@pytest.mark.parametrize("img_bin", [4, 16])
def test_fixed_bins_match_the_original(frames, img_bin):
    ours = pool_frames(frames, img_bin, rolling=False)
    for frame, result in zip(frames, ours):
        expected = reference_pooling(frame, img_bin, img_bin)
        assert np.allclose(result, expected, equal_nan=True, rtol=0, atol=1e-5)


def test_sorting_network_sorts_every_zero_one_input():
    network = _batcher_network(16)
    pairs, bounds, carry = _network_stages(network, 16)
    assert np.array_equal(pairs, network) and bounds[-1] == len(network)
    for stage in range(len(bounds) - 1):  # pairs within a stage are disjoint
        lanes = pairs[bounds[stage] : bounds[stage + 1]].ravel()
        assert len(set(lanes)) == len(lanes) and not carry[stage, lanes].any()
    values = (np.arange(2**16)[:, None] >> np.arange(16)) & 1
    for a, b in network:
        low, high = np.minimum(values[:, a], values[:, b]), np.maximum(values[:, a], values[:, b])
        values[:, a], values[:, b] = low, high
    assert np.all(np.diff(values, axis=1) >= 0)


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
