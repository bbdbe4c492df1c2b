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


def reference_evaluate(cube, cube_time, row_centres, col_centres, rows, cols, times, dt=3, dxy=2):
    """The original ScatterLightCorrector's evaluation, re-implemented.

    A window of +-``dt`` time bins and +-``dxy`` spatial bins around the request;
    every pixel of the window is interpolated in time with
    ``interp1d(kind="quadratic")``, then every time with ``RectBivariateSpline``
    (kx = ky = 3) at the requested pixels. Loops over pixels and over times, as the
    original did. Returns (ntimes, nrows, ncols).
    """
    from scipy.interpolate import RectBivariateSpline, interp1d

    ti = max(np.searchsorted(cube_time, times.min()) - dt, 0)
    tf = min(np.searchsorted(cube_time, times.max(), side="right") + dt, len(cube_time))
    ri = max(np.searchsorted(row_centres, rows.min()) - dxy, 0)
    rf = min(np.searchsorted(row_centres, rows.max(), side="right") + dxy, len(row_centres))
    ci = max(np.searchsorted(col_centres, cols.min()) - dxy, 0)
    cf = min(np.searchsorted(col_centres, cols.max(), side="right") + dxy, len(col_centres))
    window = cube[ti:tf, ri:rf, ci:cf]
    flat = window.reshape(window.shape[0], -1)
    in_time = np.array(
        [
            interp1d(cube_time[ti:tf], pixel, kind="quadratic", bounds_error=False, fill_value="extrapolate")(times)
            for pixel in flat.T
        ]
    ).T.reshape(len(times), window.shape[1], window.shape[2])
    result = []
    for image in in_time:
        spline = RectBivariateSpline(col_centres[ci:cf], row_centres[ri:rf], image.T, kx=3, ky=3)
        result.append(spline(cols, rows).T)
    return np.array(result)
