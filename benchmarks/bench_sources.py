"""FFI sources: simulated frame generation, and MAST-cube row-block reads.

* Frame generation: one full-size science frame pair (flux + error) of the simulated
  sector, on one core, with and without scattered light (target < 0.2 s).
* Row-block reads of a local astrocut cube: ``MASTCubeSource.read_rows`` (one range
  read, then byte swap and transpose to (frames, rows, columns)) against a plain
  ``numpy.fromfile`` of the same bytes, both from the page cache, in one process.

    python benchmarks/bench_sources.py [--frames 12] [--workdir DIR]
"""

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from tess_backml.constants import FFI_SHAPE  # noqa: E402
from tess_backml.sources import MASTCubeSource, SimulatedSector  # noqa: E402
from tess_backml.sources.mast import make_astrocut_cube  # noqa: E402


def best_of(function, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    sim = SimulatedSector()
    sim.read_frames([0])  # build the static scene once
    lit = int(np.argmax(sim.amplitude["earth"]))
    dark = int(np.argmin(sim.amplitude["earth"] + sim.amplitude["moon"]))
    t_lit = best_of(lambda: sim.read_frames([lit]))
    t_dark = best_of(lambda: sim.read_frames([dark]))
    print(f"simulated frame pair 2048x2048, one core: {t_dark:.3f} s without SL, {t_lit:.3f} s with Earth SL "
          f"(target < 0.2 s)")

    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        paths = sim.write_ffis(work, np.arange(args.frames), progress=False)
        cube_path = os.path.join(work, "tess-s0004-1-1-cube.fits")
        make_astrocut_cube(paths, cube_path, sector=4)
        source = MASTCubeSource(cube_path)
        rows = 64
        nbytes = rows * FFI_SHAPE[1] * source.nframes * 2 * 4
        offset = source._data_offset + 512 * FFI_SHAPE[1] * source.nframes * 2 * 4

        def raw():
            with open(cube_path, "rb") as handle:
                handle.seek(offset)
                return np.fromfile(handle, dtype=">f4", count=nbytes // 4)

        raw()
        source.read_rows(512, 512 + rows)
        t_raw = best_of(raw)
        t_ours = best_of(lambda: source.read_rows(512, 512 + rows))
        megabytes = nbytes / 1e6
        print(f"cube row block ({rows} rows x {source.nframes} frames, {megabytes:.0f} MB):")
        print(f"  numpy.fromfile of the same bytes (reference): {megabytes / t_raw:.0f} MB/s")
        print(f"  MASTCubeSource.read_rows (read + swap + transpose): {megabytes / t_ours:.0f} MB/s")
        print(f"  ratio read_rows / fromfile throughput: {t_raw / t_ours:.2f}")


if __name__ == "__main__":
    main()
