"""End-to-end SL cube builds: frames per second through each kind of source.

Builds the cube (img_bin 16, rolling, errors) of the same simulated frames
from the simulator itself, from SPOC FFI files on disk and from the astrocut cube
made of them (read locally in tiles, with and without reading ahead, and as remote
cubes are: copied in bands of rows to scratch files, pooled in row blocks), and
prints frames/s for each (dark-frame search, static scene and masks included), the
bytes read from the cube over the frames' data, and the cube's rate over the FFI
files'. The simulator's rate includes generating the frames.

    python benchmarks/bench_cube.py [--frames 24] [--workdir DIR] [--cold]

``--cold`` drops the files from the page cache before each build, so they are read
from disk.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from tess_backml.cube import BackgroundCube
from tess_backml.sources import MASTCubeSource, SimulatedSector
from tess_backml.sources.mast import make_astrocut_cube


def evict(folder):
    """Drop ``folder``'s files from the page cache: the next build reads them from disk."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            descriptor = os.open(path, os.O_RDONLY)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(descriptor)


def build(source, frames=None, read_ahead=False, cold_folder=None):
    os.environ["TESS_BACKML_CACHE"] = tempfile.mkdtemp()  # no dark-frame cache: time the whole job
    if isinstance(source, MASTCubeSource):
        source.bytes_read = 0
    if cold_folder:
        evict(cold_folder)
    cube = BackgroundCube(4, 1, 1, img_bin=16, source=source, progress=False)
    cube.read_ahead = read_ahead
    start = time.perf_counter()
    cube.get_scatter_light_cube(frames=frames)
    return time.perf_counter() - start, cube


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--cold", action="store_true", help="read the files from disk, not the page cache")
    args = parser.parse_args()
    if args.cold and not hasattr(os, "posix_fadvise"):
        sys.exit("--cold drops files from the page cache with posix_fadvise, which this system lacks")

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
        rates = {}
        for name, source, selection, ahead in (
            ("simulator (generates frames)", sim, frames, False),
            ("SPOC FFI files", work, None, False),
            ("astrocut cube, tiles (local)", MASTCubeSource(cube_path), None, False),
            ("  the same, reading ahead", MASTCubeSource(cube_path), None, True),
            ("astrocut cube, as remote ones", MASTCubeSource(cube_path, memmap=False), None, False),
        ):
            seconds, cube = build(source, selection, ahead, work if args.cold else None)
            results[name] = cube
            rates[name] = len(cube.frame_indices) / seconds
            read = ""
            if isinstance(source, MASTCubeSource):
                read = f"; bytes read {source.bytes_read / (len(cube.frame_indices) * 2048 * 2048 * 8):.3f}x the frames' data"
            print(f"{name:32s} {len(cube.frame_indices):3d} frames in {seconds:6.2f} s: {rates[name]:5.1f} frames/s{read}")
        cubes = list(results.values())
        assert all(np.allclose(c.scatter_cube, cubes[0].scatter_cube, atol=1e-5) for c in cubes[1:])
        files = rates["SPOC FFI files"]
        tiles = rates["astrocut cube, tiles (local)"]
        print(f"all cubes agree ({'from disk' if args.cold else 'files in the page cache'}); MAST cube over FFI files: "
              f"tiles {tiles / files:.2f}x, as remote ones {rates['astrocut cube, as remote ones'] / files:.2f}x; "
              f"reading ahead {rates['  the same, reading ahead'] / tiles:.2f}x")


if __name__ == "__main__":
    main()
