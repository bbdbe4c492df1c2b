"""A cube build from a MAST cube on S3, against the same frames' FFI files on disk.

Starts ``s3rver`` (a Node.js S3 server that stores objects as files and answers a
range request by reading that range) on localhost, uploads the astrocut cube of
simulated frames to ``s3://stpubdata/...`` as MAST keeps it, and builds the cube
through s3fs exactly as ``source="mast"`` does, with the endpoint pointed at the
local server. Prints frames/s for both, their ratio, and the bytes requested from
the store over the frames' data. (moto, which the tests use, copies the whole object
to answer each range request, so it cannot give a rate.)

Needs Node.js and s3rver: ``npm install --prefix ~/.cache/s3rver s3rver@3``.

    python benchmarks/bench_s3.py [--frames 48] [--s3rver ~/.cache/s3rver]
"""

import argparse
import os
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_s3rver(prefix: str, data: str):
    executable = os.path.join(os.path.expanduser(prefix), "node_modules", ".bin", "s3rver")
    if not os.path.exists(executable) or not shutil.which("node"):
        sys.exit(f"needs Node.js and s3rver: npm install --prefix {prefix} s3rver@3")
    port = free_port()
    server = subprocess.Popen([executable, "-d", data, "-p", str(port), "--configure-bucket", "stpubdata"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    server.kill()
    sys.exit("s3rver did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--s3rver", default="~/.cache/s3rver", help="npm prefix where s3rver is installed")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    sim = SimulatedSector()
    frames = np.arange(300, 300 + args.frames)
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        paths = sim.write_ffis(os.path.join(work, "ffis"), frames, progress=False)
        cube_path = os.path.join(work, "tess-s0004-1-1-cube.fits")
        make_astrocut_cube(paths, cube_path, sector=4)
        server, endpoint = start_s3rver(args.s3rver, os.path.join(work, "s3"))
        try:
            os.environ.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER", AWS_ENDPOINT_URL=endpoint)
            import boto3

            boto3.client("s3", endpoint_url=endpoint).upload_file(cube_path, "stpubdata", KEY)
            build(os.path.join(work, "ffis"))  # compile the kernels once
            files_seconds, files = build(os.path.join(work, "ffis"))
            source = MASTCubeSource(f"s3://stpubdata/{KEY}")
            s3_seconds, remote = build(source)
        finally:
            server.terminate()
        np.testing.assert_allclose(remote.scatter_cube, files.scatter_cube, atol=1e-5)
        n = len(files.frame_indices)
        data_bytes = n * 2048 * 2048 * 8
        print(f"SPOC FFI files (local disk)   {n} frames in {files_seconds:6.2f} s: {n / files_seconds:5.1f} frames/s")
        print(f"MAST cube on S3 (s3rver)      {n} frames in {s3_seconds:6.2f} s: {n / s3_seconds:5.1f} frames/s; "
              f"bytes requested {source.bytes_read / data_bytes:.3f}x the frames' data")
        print(f"cubes agree; S3 over FFI files: {files_seconds / s3_seconds:.2f}x")


if __name__ == "__main__":
    main()
