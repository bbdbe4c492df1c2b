"""The original tess-backml downsizing kernel, re-implemented as a reference.

``pooling_2d`` of tess-backml 0.2: NaN-median over strided windows, optionally with
a NaN border. Used by ``bench_pooling.py`` and by the tests, which check that the
package's kernels give the same results.
"""

import warnings

import numpy as np


def reference_pooling(image, kernel, stride, padding=0):
    """NaN-median of ``kernel x kernel`` windows every ``stride`` pixels of a 2-D image."""
    if padding:
        image = np.pad(image, padding, mode="constant", constant_values=np.nan)
    height, width = image.shape
    shape = ((height - kernel) // stride + 1, (width - kernel) // stride + 1, kernel, kernel)
    strides = (image.strides[0] * stride, image.strides[1] * stride, image.strides[0], image.strides[1])
    windows = np.lib.stride_tricks.as_strided(image, shape=shape, strides=strides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(windows, axis=(2, 3))


def reference_rolling(image, img_bin):
    """The original's rolling mode: log2(img_bin) passes of 4x4 windows, stride 2, NaN border 1."""
    for _ in range(int(np.log2(img_bin))):
        image = reference_pooling(image, 4, 2, padding=1)
    return image
