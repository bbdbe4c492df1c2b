"""Local MAST cubes of a sector's length: read through memory maps, or copied in bands.

A cube stores each pixel's whole series contiguously, so a tile of a few dozen frames
needs a few hundred bytes of every pixel's series, but the kernel maps whole 4 kB
pages; once a series spans pages (512 frames and up) each tile maps a page per pixel
for those bytes. Copied in bands (every frame of 8 rows, read once in order, turned
frame-major into scratch files) a cube is read sequentially whatever its length.

Builds (img_bin 16, rolling, errors; dark frames, static scene and masks included)
the cube of each frame count both ways, from sparse files of the real cube layout
(``long_cube.py``: the headers of an astrocut cube of simulated frames, zeros for
pixels, so a 30-min sector's 43 GB take no disk), and the first frame count's cube
from its SPOC FFI files, which gives the reference rate. Prints ms per frame, each
way's rate over the FFI files' and bands over maps.

    python benchmarks/bench_long_cube.py [--frames 160 400 1219] [--maps-most 400]

``--maps-most`` skips the maps above that many frames (at 1,219 they take ~8 min).
"""

import argparse
import os
import tempfile
import time

import numpy as np
from long_cube import write_sparse_cube

from tess_backml.cube import BackgroundCube
from tess_backml.sources import MASTCubeSource, SimulatedSector
from tess_backml.sources.mast import make_astrocut_cube


def build(source):
    os.environ["TESS_BACKML_CACHE"] = tempfile.mkdtemp()  # no dark-frame cache: time the whole job
    cube = BackgroundCube(4, 1, 1, img_bin=16, source=source, progress=False)
    start = time.perf_counter()
    cube.get_scatter_light_cube()
    return (time.perf_counter() - start) / len(cube.frame_indices), cube


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[160, 400, 1219])
    parser.add_argument("--maps-most", type=int, default=400, help="skip the maps above this many frames")
    parser.add_argument("--template-frames", type=int, default=48, help="frames of the small cube the headers come from")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    counts = sorted(set(args.frames))

    sim = SimulatedSector()
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        n = counts[0]
        paths = sim.write_ffis(os.path.join(work, "ffi"), np.arange(300, 300 + n), progress=False)
        template = make_astrocut_cube(paths, os.path.join(work, "template-cube.fits"), sector=4)
        build(os.path.join(work, "ffi"))  # compile the kernels once
        files, _ = build(os.path.join(work, "ffi"))
        os.remove(template)
        small = make_astrocut_cube(paths[: args.template_frames], os.path.join(work, "small-cube.fits"), sector=4)
        print(f"SPOC FFI files, {n} frames (page cache): {files * 1000:.1f} ms per frame")
        for n in counts:
            path = write_sparse_cube(small, os.path.join(work, f"tess-s0004-1-1-{n}-cube.fits"), n)
            line = f"{n:6d} frames:"
            per_frame = {}
            for name, mapped in (("maps", True), ("bands", False)):
                if mapped and n > args.maps_most:
                    line += f"  {name} skipped (--maps-most {args.maps_most})"
                    continue
                source = MASTCubeSource(path, memmap=mapped)
                per_frame[name], _ = build(source)
                line += (f"  {name} {per_frame[name] * 1000:6.1f} ms per frame ({files / per_frame[name]:.2f}x the FFI files), "
                         f"bytes {source.bytes_read / (n * 2048 * 2048 * 8):.3f}x")
            if len(per_frame) == 2:
                line += f"; bands over maps {per_frame['maps'] / per_frame['bands']:.2f}x"
            print(line, flush=True)
            os.remove(path)


if __name__ == "__main__":
    main()
