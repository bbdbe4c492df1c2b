"""Per-pixel Earth/Moon maps: 128x128 bin centres x 1,300 frames, both bodies, one core.

Prints the time of :func:`tess_backml.geometry.pixel_maps` and its speed against the
straightforward astropy way (``SkyCoord.separation`` and ``position_angle`` per frame),
measured in the same process on a subset of frames and scaled per frame.

    python benchmarks/bench_geometry.py
"""

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
from astropy.coordinates import CartesianRepresentation, SkyCoord  # noqa: E402

from tess_backml import geometry  # noqa: E402

SECTOR, CAMERA, CCD, GRID, FRAMES, REFERENCE_FRAMES = 4, 1, 1, 128, 1300, 20


def main():
    ephemeris = geometry.SpiceEphemeris("test")
    times = geometry.sector_ffi_times(SECTOR)[:FRAMES]
    centres = (np.arange(GRID) + 0.5) * (2048 / GRID)
    rows, cols = np.meshgrid(centres + 1, centres + 45, indexing="ij")
    geometry.pixel_maps(SECTOR, CAMERA, CCD, rows[:2, :2], cols[:2, :2], times[:2], ephemeris)  # warm caches

    start = time.perf_counter()
    maps = geometry.pixel_maps(SECTOR, CAMERA, CCD, rows, cols, times, ephemeris)
    ours = time.perf_counter() - start
    assert maps["earth_angle"].shape == (FRAMES, GRID, GRID)

    cam = geometry.CameraGeometry(SECTOR, CAMERA)
    sky = cam.wcs(CCD).pixel_to_world(cols.ravel() - 1, rows.ravel() - 1)
    vectors = ephemeris.body_vectors(cam.spacecraft_time(times[:REFERENCE_FRAMES], ephemeris))
    start = time.perf_counter()
    for body in ("earth", "moon"):
        for vector in vectors.body(body):
            target = SkyCoord(CartesianRepresentation(*vector), frame="icrs")
            sky.separation(target)
            sky.position_angle(target)
    reference = (time.perf_counter() - start) / REFERENCE_FRAMES * FRAMES

    print(f"pixel maps {GRID}x{GRID} x {FRAMES} frames, Earth and Moon, one core: {ours:.2f} s "
          f"({FRAMES / ours:.0f} frames/s; target < 5 s)")
    print(f"astropy SkyCoord per frame (reference, scaled from {REFERENCE_FRAMES} frames): {reference:.1f} s")
    print(f"speed ratio: {reference / ours:.1f}x")


if __name__ == "__main__":
    main()
