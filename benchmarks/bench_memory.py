"""Peak memory of cube builds, measured with /usr/bin/time -v on the command line.

Frame sources (FFI files, the simulator) are pooled in chunks of 8 frames: the
peak should not grow with the number of frames beyond the output cube itself.
A local MAST cube is pooled in tiles of rows x frames whose size memory_gb sets:
beyond a tile's frames, the peak grows only with the output cube. Read in whole
rows of every frame (as remote cubes are), the peak grows with the frames. Both
are measured at two frame counts above a tile's and extrapolated in a straight
line to an 11,000-frame (200-s) sector, whose MAST cube (390 GB) is more than this
machine should write for a benchmark.

    python benchmarks/bench_memory.py [--full]

``--full`` also builds the whole simulated sector (1,219 frames, ~6 minutes): the
full-size figure for frame sources.
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def peak_rss_mb(argv) -> float:
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "tess_backml.cli", "-q", *argv],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"build failed: {result.stderr[-2000:]}")
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024


def peak_rss_mb_python(code) -> float:
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"build failed: {result.stderr[-2000:]}")
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024


def report_fit(counts, peaks, sector_frames=11000):
    slope, intercept = np.polyfit(np.asarray(counts, float), np.asarray(peaks, float), 1)
    full = intercept + slope * sector_frames
    print(f"  fit: {intercept:.0f} MB + {slope * 1024:.0f} kB per frame; a 200-s sector ({sector_frames:,} frames): "
          f"~{full / 1024:.1f} GB (straight line)")


def main():
    if not Path("/usr/bin/time").exists():
        sys.exit("needs /usr/bin/time (GNU time)")
    folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        print("frame source (simulator), chunks of 8 frames:")
        for frames in (40, 160) + ((None,) if "--full" in sys.argv else ()):
            if frames is None:
                rss = peak_rss_mb(["cube", "--source", "sim", "--sector", "4", "--camera", "1", "--ccd", "1",
                                   "--out", str(folder / "sim-full.fits")])
                print(f"  the whole sector: peak RSS {rss:6.0f} MB")
                continue
            rss = peak_rss_mb(["cube", "--source", "sim", "--sector", "4", "--camera", "1", "--ccd", "1",
                               "--frames", f"0:{frames}", "--out", str(folder / f"sim{frames}.fits")])
            print(f"  {frames:4d} frames: peak RSS {rss:6.0f} MB")

        from tess_backml.sources import SimulatedSector
        from tess_backml.sources.mast import make_astrocut_cube

        counts = (96, 192)  # both above a tile's 85 frames at the default memory_gb (0.25)
        sim = SimulatedSector()
        ffis = sim.write_ffis(folder / "ffis", range(max(counts)), progress=False)
        cubes = {}
        for n in counts:
            (folder / f"c{n}").mkdir()
            cubes[n] = make_astrocut_cube(ffis[:n], str(folder / f"c{n}" / "tess-s0004-1-1-cube.fits"), sector=4)
        shutil.rmtree(folder / "ffis")
        print("row source (local astrocut MAST cube, default settings: tiles of rows x frames):")
        local = []
        for n in counts:
            rss = peak_rss_mb(["cube", "--source", cubes[n], "--sector", "4", "--camera", "1", "--ccd", "1",
                               "--out", str(folder / f"local{n}.fits")])
            local.append(rss)
            print(f"  {n:4d} frames: peak RSS {rss:6.0f} MB")
        report_fit(counts, local)
        print("row source read in whole rows of every frame (how remote cubes are read):")
        whole = []
        for n in counts:
            rss = peak_rss_mb_python(
                "from tess_backml.cube import BackgroundCube; from tess_backml.sources import MASTCubeSource; "
                f"c = BackgroundCube(4, 1, 1, source=MASTCubeSource({cubes[n]!r}, memmap=False), progress=False); "
                "c.get_scatter_light_cube()")
            whole.append(rss)
            print(f"  {n:4d} frames: peak RSS {rss:6.0f} MB")
        report_fit(counts, whole)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
