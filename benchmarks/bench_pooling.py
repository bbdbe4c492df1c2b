"""Downsizing one 2048x2048 frame: our kernels against the original tess-backml path.

The reference re-implements the original ``pooling_2d`` (strided windows and
``np.nanmedian``) and runs it in this process on the same frame: rolling mode is
four passes of 4x4 windows with stride 2 (img_bin=16). Ours includes the bin
errors and pixel counts, which the original did not compute.

    python benchmarks/bench_pooling.py
"""

import time

import numpy as np
from original_kernels import reference_pooling, reference_rolling

from tess_backml.downsample import bin_errors, pool_frames


def median_time(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(frames=16, repeat=5):
    rng = np.random.default_rng(0)
    data = rng.normal(30, 2, (frames, 2048, 2048)).astype(np.float32)
    data[rng.random(data.shape) < 0.15] = np.nan  # star and strap masks
    errors = np.full_like(data, 0.3)
    pool_frames(data[:1], 16)
    pool_frames(data[:1], 16, rolling=False)
    bin_errors(data[:1], errors[:1], 16)

    # medians over repeats on both sides: single runs of the reference vary by +-25% here
    original_rolling = median_time(lambda: reference_rolling(data[0], 16), repeat)
    original_fixed = median_time(lambda: reference_pooling(data[0], 16, 16), repeat)
    rolling = median_time(lambda: (pool_frames(data, 16, rolling=True), bin_errors(data, errors, 16)), repeat) / frames
    fixed = median_time(lambda: (pool_frames(data, 16, rolling=False), bin_errors(data, errors, 16)), repeat) / frames
    assert np.allclose(pool_frames(data[:1], 16)[0], reference_rolling(data[0], 16), equal_nan=True, atol=1e-5)

    print(f"img_bin=16, per 2048x2048 frame (median of {repeat} runs; ours over {frames} frames at once, "
          f"as the cube builder calls it; numba threads as configured):")
    print(f"  rolling: original {original_rolling:.3f} s, ours with errors {rolling * 1e3:.1f} ms "
          f"-> {original_rolling / rolling:.1f}x ({1 / rolling:.1f} frames/s)")
    print(f"  fixed:   original {original_fixed:.3f} s, ours with errors {fixed * 1e3:.1f} ms "
          f"-> {original_fixed / fixed:.1f}x ({1 / fixed:.1f} frames/s)")


if __name__ == "__main__":
    main()
