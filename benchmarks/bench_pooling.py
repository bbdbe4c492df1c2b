"""Downsizing one 2048x2048 frame: our kernels against the original tess-backml path.

The reference re-implements the original ``pooling_2d`` (strided windows and
``np.nanmedian``) and runs it in this process on the same frame: rolling mode is
four passes of 4x4 windows with stride 2 (img_bin=16). Ours includes the bin
errors and pixel counts, which the original did not compute.

    python benchmarks/bench_pooling.py
"""

import time
import warnings

import numpy as np

from tess_backml.downsample import bin_errors, pool_frames


def reference_pooling(image, kernel, stride, padding=0):
    if padding:
        image = np.pad(image, padding, mode="constant", constant_values=np.nan)
    height, width = image.shape
    shape = ((height - kernel) // stride + 1, (width - kernel) // stride + 1, kernel, kernel)
    strides = (image.strides[0] * stride, image.strides[1] * stride, image.strides[0], image.strides[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.lib.stride_tricks.as_strided(image, shape=shape, strides=strides), axis=(2, 3))


def main(frames=16):
    rng = np.random.default_rng(0)
    data = rng.normal(30, 2, (frames, 2048, 2048)).astype(np.float32)
    data[rng.random(data.shape) < 0.15] = np.nan  # star and strap masks
    errors = np.full_like(data, 0.3)
    pool_frames(data[:1], 16)
    bin_errors(data[:1], errors[:1], 16)

    start = time.perf_counter()
    image = data[0]
    for _ in range(4):
        image = reference_pooling(image, 4, 2, padding=1)
    reference_rolling = time.perf_counter() - start
    start = time.perf_counter()
    reference_pooling(data[0], 16, 16)
    reference_fixed = time.perf_counter() - start

    start = time.perf_counter()
    ours_rolling = pool_frames(data, 16, rolling=True)
    bin_errors(data, errors, 16)
    rolling = (time.perf_counter() - start) / frames
    start = time.perf_counter()
    pool_frames(data, 16, rolling=False)
    bin_errors(data, errors, 16)
    fixed = (time.perf_counter() - start) / frames
    assert np.allclose(ours_rolling[0], image, equal_nan=True, atol=1e-5)

    print(f"img_bin=16, per 2048x2048 frame ({frames} frames, numba threads as configured):")
    print(f"  rolling: original {reference_rolling:.3f} s, ours with errors {rolling * 1e3:.1f} ms "
          f"-> {reference_rolling / rolling:.1f}x ({1 / rolling:.1f} frames/s)")
    print(f"  fixed:   original {reference_fixed:.3f} s, ours with errors {fixed * 1e3:.1f} ms "
          f"-> {reference_fixed / fixed:.1f}x ({1 / fixed:.1f} frames/s)")


if __name__ == "__main__":
    main()
