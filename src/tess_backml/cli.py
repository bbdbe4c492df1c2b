"""The ``tess-backml`` command.

Every subcommand is a function ``run_<name>(args)`` registered in
:func:`build_parser`. Errors caused by the input (:class:`TessBackmlError`,
unreadable files) print one line and exit with status 2; argparse does the same
for malformed arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import TessBackmlError

log = logging.getLogger("tess_backml")


def _int_range(text: str) -> list[int]:
    """Parse ``"4"``, ``"1-4"`` or ``"1,3,5-6"`` into a sorted list of ints."""
    values = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                values.update(range(int(low), int(high) + 1))
            else:
                values.add(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or a range like 1-4, got {text!r}") from None
    return sorted(values)


def read_times_file(path) -> list[float]:
    """Read one time per line (BTJD or JD); blank lines and ``#`` comments are skipped."""
    times = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                try:
                    times.append(float(text))
                except ValueError:
                    raise TessBackmlError(f"{path}, line {number}: {text!r} is not a time") from None
    except OSError as exc:
        raise TessBackmlError(f"cannot read times file {path}: {exc.strerror}") from None
    if not times:
        raise TessBackmlError(f"{path} contains no times")
    return times


def parse_frames(text: str) -> slice:
    """Parse ``START:STOP[:STEP]`` (Python slice syntax, parts optional) into a slice."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"frames must look like START:STOP or START:STOP:STEP, got {text!r}")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"frames must be integers, got {text!r}") from None
    if len(values) == 3 and values[2] is not None and values[2] <= 0:
        raise argparse.ArgumentTypeError("the frame step must be positive")
    return slice(*values)


def frame_indices(frames: slice, nframes: int):
    """Indices of a frame slice, refusing ranges that fall outside 0..nframes-1."""
    import numpy as np

    start, stop = frames.start or 0, nframes if frames.stop is None else frames.stop
    if start < 0 or stop > nframes or start >= stop:
        raise TessBackmlError(f"frames {start}:{stop} are out of range: the source has frames 0-{nframes - 1}")
    return np.arange(start, stop, frames.step or 1)


# --------------------------------------------------------------------------- commands
def run_vectors(args) -> int:
    from ._files import atomic_output
    from .geometry import camera_vectors

    times = read_times_file(args.times) if args.times else None
    table = camera_vectors(args.sector, args.camera, times=times, ephemeris=args.ephemeris)
    with atomic_output(args.out, None) as temporary:
        table.write(temporary, format="ascii.csv", overwrite=True)
    log.info("wrote %d frames to %s", len(table), args.out)
    if args.plot:
        from .plotting import plot_vectors

        plot_vectors(table, path=args.plot)
        log.info("wrote %s", args.plot)
    first, last = table["BTJD"][0], table["BTJD"][-1]
    print(
        f"{args.out}: {len(table)} frames, BTJD {first:.3f}-{last:.3f}; Earth "
        f"{table['Earth_Distance'].min():.1f}-{table['Earth_Distance'].max():.1f} Earth radii, "
        f"{table['Earth_Camera_Angle'].min():.1f}-{table['Earth_Camera_Angle'].max():.1f} deg "
        f"from camera {args.camera}'s boresight"
    )
    return 0


def run_info(args) -> int:
    import numpy as np

    from .constants import QUALITY_FLAGS
    from .sources import resolve_source

    source = resolve_source(args.source)
    print(repr(source))
    print(f"  frames: {source.nframes}, BTJD {source.time.min():.4f} to {source.time.max():.4f}")
    print(f"  cadence numbers: {source.cadenceno.min()} to {source.cadenceno.max()}")
    print(f"  cheap read: {source.cheap_read}")
    flagged = {name: int(np.sum(source.quality & bit > 0)) for name, bit in QUALITY_FLAGS.items()}
    flagged = {name: count for name, count in flagged.items() if count}
    print("  quality flags: " + (", ".join(f"{name} {count}" for name, count in flagged.items()) or "none"))
    return 0


def run_simulate(args) -> int:
    import os

    from .sources import SimulatedSector

    sim = SimulatedSector(args.sector, args.camera, args.ccd, cadence_s=args.cadence, seed=args.seed)
    indices = frame_indices(args.frames, sim.nframes)
    paths = sim.write_ffis(args.out_dir, indices, progress=not args.quiet)
    print(f"wrote {len(paths)} simulated FFIs of sector {sim.sector} camera {sim.camera} CCD {sim.ccd} to {args.out_dir}")
    if args.cube:
        from ._files import atomic_output
        from .sources.mast import MAST_CUBE_URL

        name = os.path.basename(MAST_CUBE_URL.format(sector=sim.sector, camera=sim.camera, ccd=sim.ccd))
        cube = os.path.join(args.out_dir, name)
        with atomic_output(cube, None) as temporary:
            make_astrocut_cube(paths, temporary, sim.sector)
        print(f"wrote the FFI cube {cube} (astrocut.CubeFactory)")
    return 0


def make_astrocut_cube(paths, cube_file, sector: int, max_memory_gb: float = 2.0):
    """Build a MAST-format FFI cube from SPOC FFI files with ``astrocut.CubeFactory``."""
    try:
        from astrocut import CubeFactory
    except ImportError as exc:  # pragma: no cover - astrocut is a dependency
        raise TessBackmlError(f"making a cube needs astrocut ({exc})") from None
    astrocut_log = logging.getLogger("astrocut")
    previous = astrocut_log.level
    try:
        CubeFactory().make_cube(list(paths), cube_file, sector=sector, max_memory=max_memory_gb, verbose=False)
    finally:
        astrocut_log.setLevel(previous)
    return cube_file


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tess-backml",
        description="Isolate the scattered light in TESS FFIs and remove it from light curves.",
    )
    parser.add_argument("--version", action="version", version=f"tess-backml {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors; no progress bars")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    vectors = commands.add_parser(
        "vectors",
        help="per-frame Earth/Moon angles, azimuths and distances of a camera",
        description=(
            "Write the per-frame Earth and Moon geometry of a camera (HEASARC TESS Vectors "
            "columns plus angular sizes) at the sector's FFI times or at given times."
        ),
    )
    vectors.add_argument("--sector", type=int, required=True)
    vectors.add_argument("--camera", type=int, required=True, choices=range(1, 5), metavar="{1-4}")
    vectors.add_argument(
        "--ephemeris",
        help=(
            "JPL Horizons vector table of TESS (CSV file), or 'test'/'mission' to force a set of "
            "SPICE kernels; default: SPICE via lkspacecraft, offline test kernels when they cover "
            "the times (Sector 4)"
        ),
    )
    vectors.add_argument("--times", help="file with one time per line (BTJD or JD)")
    vectors.add_argument("--out", required=True, help="output CSV file")
    vectors.add_argument("--plot", help="also save a figure of the geometry against time (PNG, PDF)")
    vectors.set_defaults(handler=run_vectors)

    info = commands.add_parser(
        "info",
        help="describe an FFI source (cube file, FFI directory, 'sim' or 'mast')",
        description="Open an FFI source and print its sector, camera, CCD, frames, times and quality flags.",
    )
    info.add_argument("source", help="MAST cube path/URL, FFI directory or glob, or 'sim'")
    info.set_defaults(handler=run_info)

    simulate = commands.add_parser(
        "simulate",
        help="write FFIs of the simulated sector (and their MAST-format cube)",
        description=(
            "Write SPOC-format calibrated FFI files of the simulated sector (real geometry, "
            "known scattered light) and, with --cube, the MAST FFI cube astrocut makes from them."
        ),
    )
    simulate.add_argument("--sector", type=int, default=4)
    simulate.add_argument("--camera", type=int, default=1, choices=range(1, 5), metavar="{1-4}")
    simulate.add_argument("--ccd", type=int, default=1, choices=range(1, 5), metavar="{1-4}")
    simulate.add_argument("--frames", type=parse_frames, default=slice(0, 40), help="START:STOP[:STEP] (default 0:40)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--cadence", type=float, default=None, help="FFI cadence in seconds (default: the sector's)")
    simulate.add_argument("--out-dir", required=True)
    simulate.add_argument("--cube", action="store_true", help="also build the MAST-format cube with astrocut")
    simulate.set_defaults(handler=run_simulate)
    return parser


def _configure_logging(verbose: int, quiet: bool):
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tess_backml").setLevel(level)


def main(argv=None) -> int:
    """Entry point of the ``tess-backml`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args.verbose, args.quiet)
    if args.quiet:
        import os

        os.environ["TQDM_DISABLE"] = "1"
    try:
        return args.handler(args)
    except TessBackmlError as exc:
        print(f"tess-backml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tess-backml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tess-backml: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
