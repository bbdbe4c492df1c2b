"""Peak memory of cube builds, measured with /usr/bin/time -v on the command line.

Frame sources (FFI files, the simulator) are pooled in chunks of 8 frames: the
peak should not grow with the number of frames beyond the output cube itself.
A short local MAST cube read through maps is pooled in tiles of rows x frames whose
size memory_gb sets: beyond a tile's frames, the peak grows only with the output
cube. A local cube of a sector's length (by default; as sparse files of the real
layout, ``long_cube.py``, so that 1,219 frames take no disk) and a remote cube (on
a local S3 server when one is installed, rclone or s3rver: see ``bench_s3.py``; else
the local file read as remote ones are) are copied in bands of rows to scratch files and
pooled in row blocks of tiles of frames: the same bound. Each is measured at two
frame counts above a tile's and extrapolated in a straight line to an 11,000-frame
(200-s) sector, whose MAST cube (390 GB) is more than this machine should write for
a benchmark.

    python benchmarks/bench_memory.py [--full] [--server rclone|s3rver] [--s3rver ~/.cache/s3rver]
                                      [--frames 96 192] [--long 400 1219]

``--frames`` sets the two frame counts of the small MAST cubes (both above a tile's
85 frames; farther apart, the line's slope is surer); ``--long`` those of the sparse
ones.

``--full`` also builds the whole simulated sector (1,219 frames, ~6 minutes): the
full-size figure for frame sources.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def peak_rss_mb(argv, env=None) -> float:
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "tess_backml.cli", "-q", *argv],
                            capture_output=True, text=True, env=env)
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


def remote_memory(cubes, counts, folder):
    from bench_s3 import KEY, start_server

    prefix = next((sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--s3rver"), "~/.cache/s3rver")
    if "--server" in sys.argv:
        kind = sys.argv[sys.argv.index("--server") + 1]
    elif shutil.which("rclone"):
        kind = "rclone"
    elif shutil.which("node") and os.path.exists(os.path.expanduser(f"{prefix}/node_modules/.bin/s3rver")):
        kind = "s3rver"
    else:
        kind = None
    server = None
    if kind is not None:
        keys = {n: KEY.replace("cube.fits", f"{n}-cube.fits") for n in counts}
        server, endpoint = start_server(kind, str(folder / "s3"), {keys[n]: cubes[n] for n in counts}, prefix)
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint)
        print(f"remote MAST cube on {kind} (default settings: bands of rows on scratch, tiles of frames):")
    else:
        print("MAST cube read as remote ones are (no local S3 server: bands of rows on scratch, tiles of frames):")
    try:
        peaks = []
        for n in counts:
            if server is not None:
                source, run_env = "s3://stpubdata/" + keys[n], env
                rss = peak_rss_mb(["cube", "--source", source, "--sector", "4", "--camera", "1", "--ccd", "1",
                                   "--out", str(folder / f"remote{n}.fits")], run_env)
            else:
                rss = peak_rss_mb_python(
                    "from tess_backml.cube import BackgroundCube; from tess_backml.sources import MASTCubeSource; "
                    f"c = BackgroundCube(4, 1, 1, source=MASTCubeSource({cubes[n]!r}, memmap=False), progress=False); "
                    "c.get_scatter_light_cube()")
            peaks.append(rss)
            print(f"  {n:4d} frames: peak RSS {rss:6.0f} MB")
        report_fit(counts, peaks)
    finally:
        if server is not None:
            server.terminate()


def long_memory(template, folder, counts=(400, 1219)):
    """Local cubes of a sector's length (default settings: copied in bands), as sparse
    files of the real layout (``long_cube.py``)."""
    from long_cube import write_sparse_cube

    if "--long" in sys.argv:
        at = sys.argv.index("--long")
        counts = tuple(sorted(int(value) for value in sys.argv[at + 1 : at + 3]))
    print(f"local MAST cube of {counts[0]} and {counts[1]} frames (sparse files; default settings: bands of rows "
          "on scratch, tiles of frames):")
    peaks = []
    for n in counts:
        path = write_sparse_cube(template, str(folder / f"tess-s0004-1-1-{n}-cube.fits"), n)
        rss = peak_rss_mb(["cube", "--source", path, "--sector", "4", "--camera", "1", "--ccd", "1",
                           "--out", str(folder / f"long{n}.fits")])
        os.remove(path)
        peaks.append(rss)
        print(f"  {n:4d} frames: peak RSS {rss:6.0f} MB")
    report_fit(counts, peaks)


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
        if "--frames" in sys.argv:
            at = sys.argv.index("--frames")
            counts = tuple(sorted(int(value) for value in sys.argv[at + 1 : at + 3]))
        sim = SimulatedSector()
        ffis = sim.write_ffis(folder / "ffis", range(max(counts)), progress=False)
        cubes = {}
        for n in counts:
            (folder / f"c{n}").mkdir()
            cubes[n] = make_astrocut_cube(ffis[:n], str(folder / f"c{n}" / "tess-s0004-1-1-cube.fits"), sector=4)
        shutil.rmtree(folder / "ffis")
        print("local astrocut MAST cube read through maps (memmap=True: tiles of rows x frames):")
        local = []
        for n in counts:
            rss = peak_rss_mb_python(
                "from tess_backml.cube import BackgroundCube; from tess_backml.sources import MASTCubeSource; "
                f"c = BackgroundCube(4, 1, 1, source=MASTCubeSource({cubes[n]!r}, memmap=True), progress=False); "
                "c.get_scatter_light_cube()")
            local.append(rss)
            print(f"  {n:4d} frames: peak RSS {rss:6.0f} MB")
        report_fit(counts, local)
        long_memory(cubes[counts[0]], folder)
        remote_memory(cubes, counts, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
