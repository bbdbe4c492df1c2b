"""End-to-end SL cube builds: frames per second through each kind of source.

Builds the cube (img_bin 16, rolling, errors) of the same simulated frames
from the simulator itself, from SPOC FFI files on disk and from the astrocut cube
made of them, and prints frames/s for each (dark-frame search, static scene and
masks included). The simulator's rate includes generating the frames.

    python benchmarks/bench_cube.py [--frames 24] [--workdir DIR]
"""

import argparse
import os
import tempfile
import time

import numpy as np

from tess_backml.cube import BackgroundCube
from tess_backml.sources import SimulatedSector
from tess_backml.sources.mast import make_astrocut_cube


def build(source, frames=None):
    os.environ["TESS_BACKML_CACHE"] = tempfile.mkdtemp()  # no dark-frame cache: time the whole job
    cube = BackgroundCube(4, 1, 1, img_bin=16, source=source, progress=False)
    start = time.perf_counter()
    cube.get_scatter_light_cube(frames=frames)
    return time.perf_counter() - start, cube


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    sim = SimulatedSector()
    frames = np.arange(300, 300 + args.frames)
    sim.read_frames([0])
    BackgroundCube(4, 1, 1, img_bin=16, source=sim, progress=False)  # warm caches
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        paths = sim.write_ffis(work, frames, progress=False)
        cube_path = os.path.join(work, "tess-s0004-1-1-cube.fits")
        make_astrocut_cube(paths, cube_path, sector=4)
        build(cube_path)  # compile the kernels once
        results = {}
        for name, source, selection in (
            ("simulator (generates frames)", sim, frames),
            ("SPOC FFI files", work, None),
            ("astrocut cube, row blocks", cube_path, None),
        ):
            seconds, cube = build(source, selection)
            results[name] = cube
            print(f"{name:32s} {len(cube.frame_indices):3d} frames in {seconds:6.2f} s: "
                  f"{len(cube.frame_indices) / seconds:5.1f} frames/s")
        cubes = list(results.values())
        assert all(np.allclose(c.scatter_cube, cubes[0].scatter_cube, atol=1e-5) for c in cubes[1:])
        print("all three cubes agree")


if __name__ == "__main__":
    main()
