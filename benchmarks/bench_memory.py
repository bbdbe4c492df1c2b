"""Peak memory of cube builds, measured with /usr/bin/time -v on the command line.

Frame sources (FFI files, the simulator) are pooled in chunks of 8 frames: the
peak should not grow with the number of frames beyond the output cube itself.
Row sources (a MAST cube) are read in row blocks of every frame: the peak grows
with block_rows x frames. Both are measured here, and the row-source figure for
a full sector is extrapolated from a straight-line fit (a 1,219-frame MAST cube
is 43 GB, more than this machine should write for a benchmark).

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

        nframes = 48
        ffis = SimulatedSector().write_ffis(folder / "ffis", range(nframes), progress=False)
        cube = make_astrocut_cube(ffis, str(folder / "tess-s0004-1-1-cube.fits"), sector=4)
        shutil.rmtree(folder / "ffis")
        print(f"row source (astrocut MAST cube, {nframes} frames):")
        points = []
        for block_rows in (32, 64, 128):
            rss = peak_rss_mb(["cube", "--source", cube, "--sector", "4", "--camera", "1", "--ccd", "1",
                               "--block-rows", str(block_rows), "--out", str(folder / f"rows{block_rows}.fits")])
            points.append((block_rows, rss))
            print(f"  block_rows {block_rows:4d} (default 32 at image bin 16): peak RSS {rss:6.0f} MB")
        # rows read per block = block_rows + 2 halos of 32 rows at image bin 16
        x = np.array([(b + 64) * nframes for b, _ in points], float)
        y = np.array([r for _, r in points])
        slope, intercept = np.polyfit(x, y, 1)
        full = intercept + slope * (32 + 64) * 1219
        print(f"  fit: {intercept:.0f} MB + {slope * 1024:.1f} kB per (row read x frame); "
              f"a full sector (1,219 frames) at the default block size: ~{full / 1024:.1f} GB (extrapolated)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
