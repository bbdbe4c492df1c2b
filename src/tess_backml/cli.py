"""The ``tess-backml`` command.

Every subcommand is a function ``run_<name>(args)`` and one entry of
:data:`COMMANDS` (its help, description and options; option groups several
commands share are lists such as :data:`BUILD`). Errors caused by the input (:class:`TessBackmlError`,
unreadable files) print one line and exit with status 2; argparse does the same
for malformed arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NamedTuple

from . import __version__
from .cli_model import run_evaluate, run_forecast, run_train  # noqa: F401 - handlers, found by name
from .errors import TessBackmlError
from .forecast import RELATIVE_THRESHOLD, episode_rule_text

log = logging.getLogger("tess_backml")


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
    if values[0] is not None and values[1] is not None and values[0] >= values[1]:
        raise argparse.ArgumentTypeError(f"frames {text} select no frame: the start must be below the stop")
    return slice(*values)


def positive_hours(text: str) -> float:
    """A time bin in hours: a positive number (checked before any work)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the time bin must be a number of hours, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"the time bin must be a positive number of hours, got {text}")
    return value


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
    from .sources.base import frame_range_indices

    indices = frame_range_indices(args.frames, sim.nframes)
    paths = sim.write_ffis(args.out_dir, indices, progress=not args.quiet)
    print(f"wrote {len(paths)} simulated FFIs of sector {sim.sector} camera {sim.camera} CCD {sim.ccd} to {args.out_dir}")
    if args.cube:
        from ._files import atomic_output
        from .sources.mast import MAST_CUBE_URL, make_astrocut_cube

        name = os.path.basename(MAST_CUBE_URL.format(sector=sim.sector, camera=sim.camera, ccd=sim.ccd))
        cube = os.path.join(args.out_dir, name)
        with atomic_output(cube, None) as temporary:
            make_astrocut_cube(paths, temporary, sim.sector)
        print(f"wrote the FFI cube {cube} (astrocut.CubeFactory)")
    return 0


def _targets(args):
    from .distributed import parse_range

    chosen = []
    for single, many, low, high, name in (
        ("sector", "sectors", 1, 200, "--sectors"),
        ("camera", "cameras", 1, 4, "--cameras"),
        ("ccd", "ccds", 1, 4, "--ccds"),
    ):
        if getattr(args, many) is not None:
            chosen.append(parse_range(getattr(args, many), low, high, name))
        elif getattr(args, single) is not None:
            chosen.append([getattr(args, single)])
        else:
            raise TessBackmlError(f"give --{single} or {name}")
    return [(sector, camera, ccd) for sector in chosen[0] for camera in chosen[1] for ccd in chosen[2]]


def _build_many(args, dataset: bool, out_file=None, on_cube=None):
    from .distributed import build_cubes, make_client

    targets = _targets(args)
    if args.scratch_dir is not None:
        from .sources.staging import check_scratch_dir

        check_scratch_dir(args.scratch_dir)
    client = make_client(args.workers, args.scheduler)
    try:
        return build_cubes(
            targets, args.out_dir, source=args.source, img_bin=args.image_bin, time_bin=args.time_bin, adaptive=args.adaptive,
            frames=args.frames, downsize=args.downsize, rolling=not args.fixed_bins, block_rows=args.block_rows,
            memory_gb=args.memory_gb, scratch_dir=args.scratch_dir, client=client,
            resume=args.resume, overwrite=args.overwrite,
            progress=not args.quiet, dataset=dataset, out_file=out_file, on_cube=on_cube,
        )
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and args.scheduler is None:
                cluster.close()


def run_cube(args) -> int:
    import os

    from ._files import check_writable

    if args.out:
        check_writable(args.out)

    def plot(cube, path):
        stem = os.path.splitext(path)[0]
        cube.plot_dark_frame(path=f"{stem}_masks.png")
        cube.animate_data(file_name=f"{stem}.gif")
        print(f"figures: {stem}_masks.png, {stem}.gif")

    _build_many(args, dataset=False, out_file=args.out, on_cube=plot if args.plot else None)
    return 0


def run_dataset(args) -> int:
    import os

    from ._files import make_output_directory

    make_output_directory(args.out_dir)

    def figures(cube, path):
        from .plotting import plot_maps

        folder = os.path.join(args.out_dir, "figures", f"sector{cube.sector:03d}")
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, f"bin{cube.img_bin}_{cube.camera}-{cube.ccd}")
        cube.plot_dark_frame(path=f"{stem}_masks.png")
        plot_maps(cube, path=f"{stem}_maps.png")
        cube.animate_data(file_name=f"{stem}_sl.gif")
        print(f"figures in {folder}")

    _build_many(args, dataset=True, on_cube=figures if args.plot else None)
    return 0


def run_demo(args) -> int:
    from .demo import run_demo as demo

    demo(
        args.out_dir,
        quick=args.quick,
        image_bin=args.image_bin,
        downsize=args.downsize,
        rolling=not args.fixed_bins,
        time_bin=args.time_bin,
        adaptive=args.adaptive,
        progress=not args.quiet,
    )
    return 0


def run_correct(args) -> int:
    import warnings

    from ._files import atomic_output, check_writable
    from .corrector import correct, lightkurve_module

    check_writable(args.out)
    lk = lightkurve_module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tpf = lk.read(args.tpf)
    except FileNotFoundError:
        raise TessBackmlError(f"no such file: {args.tpf}") from None
    except Exception as exc:  # lightkurve raises many kinds for files that are not TPFs
        from .series import table_refusal

        # lightkurve's own words end in advice to delete the file, wrong for an FFI or an image
        reason = table_refusal(args.tpf) or f"{args.tpf} is not a target pixel file lightkurve can read ({exc})"
        raise TessBackmlError(reason) from None
    if not isinstance(tpf, lk.TessTargetPixelFile):
        raise TessBackmlError(f"{args.tpf} is not a TESS target pixel file (lightkurve read a {type(tpf).__name__})")
    if args.anchor and not args.model:
        raise TessBackmlError("--anchor anchors a model (--model) on the stamp's own background: give --model")
    corrected = correct(tpf, args.cube, model=args.model, ephemeris=args.ephemeris, anchor=args.anchor)
    with atomic_output(args.out, None) as temporary:
        corrected.hdu.writeto(temporary, overwrite=True)
    print(f"{args.out}: corrected TPF ({corrected.shape[0]} cadences, {corrected.shape[1]}x{corrected.shape[2]} pixels)")
    if args.plot:
        from .plotting import plot_correction

        plot_correction(tpf, corrected, path=args.plot)
        print(f"figure: {args.plot}")
    return 0


# --------------------------------------------------------------------------- parser
def option(*flags, **settings):
    """One argparse argument: its flags and ``add_argument`` settings."""
    return flags, settings


CAMERA_CHOICE = {"type": int, "choices": range(1, 5), "metavar": "{1-4}"}
EPHEMERIS_HELP = (
    "JPL Horizons vector table of TESS (CSV file) or a directory of them, 'horizons' (fetched and "
    "cached), 'shipped', or 'test'/'mission' to force a set of SPICE kernels; default: $TESS_BACKML_EPHEMERIS, "
    "else offline: lkspacecraft's SPICE test kernels (Sector 4), the shipped tables elsewhere (Sectors 1-98, 103-122)"
)

# Option groups that several commands share.
TARGETS = [
    option("--sector", type=int),
    option("--camera", **CAMERA_CHOICE),
    option("--ccd", **CAMERA_CHOICE),
    option("--sectors", help="several sectors: 1-4 or 1,3 (instead of --sector)"),
    option("--cameras", help="several cameras: 1-4 or 1,3"),
    option("--ccds", help="several CCDs: 1-4 or 1,3"),
]
BUILD = [
    option("--source", default="mast", help="'mast' (public S3 cube), 'sim', or a local cube file / FFI directory"),
    option("--frames", type=parse_frames, default=None, help="START:STOP[:STEP] of the source's frames"),
    option("--workers", type=int, help="build on a local Dask cluster of this many processes"),
    option("--scheduler", help="build on the Dask cluster at this address"),
    option("--resume", action="store_true", help="continue interrupted builds from their checkpoints"),
    option("--overwrite", action="store_true", help="rebuild outputs that exist (default: skip them)"),
    option("--block-rows", type=int, default=None,
           help="rows read at once from a MAST cube (default 2 x image bin); memory grows with it"),
    option("--memory-gb", type=float, default=None,
           help="memory for one work unit of a MAST cube (default 0.25): frames are pooled in tiles of this size"),
    option("--scratch-dir", default=None,
           help="where a MAST cube's scratch bands go (default: TMPDIR; 2.5 GB for a 30-min sector, 23 GB for 200-s)"),
]
POOLING = [
    option("--image-bin", type=int, default=16, help="pixel bin size, a power of two (default 16)"),
    option("--downsize", choices=("binning", "sparse"), default="binning"),
    option("--fixed-bins", action="store_true", help="fixed-bin medians instead of rolling pooling"),
    option("--time-bin", type=positive_hours, default=2.0, help="time bin in hours (default 2)"),
    option("--adaptive", action=argparse.BooleanOptionalAction, default=False,
           help="split time bins where the light changes faster than they can follow (up to 2x the bins)"),
]


class OneOf(list):
    """Options of which exactly one must be given."""


class Command(NamedTuple):
    """A subcommand: its name (its handler is ``run_<name>``), help line, description
    and options (single options and shared groups)."""

    name: str
    help: str
    description: str
    options: list
    defaults: dict = {}  # noqa: RUF012 - read only


COMMANDS = [
    Command("vectors", "per-frame Earth/Moon angles, azimuths and distances of a camera",
            "Write the per-frame Earth and Moon geometry of a camera (HEASARC TESS Vectors columns plus angular "
            "sizes) at the sector's FFI times or at given times.", [
                option("--sector", type=int, required=True),
                option("--camera", required=True, **CAMERA_CHOICE),
                option("--ephemeris", help=EPHEMERIS_HELP),
                option("--times", help="file with one time per line (BTJD or JD)"),
                option("--out", required=True, help="output CSV file"),
                option("--plot", help="also save a figure of the geometry against time (PNG, PDF)"),
            ]),
    Command("info", "describe an FFI source (cube file, FFI directory, 'sim' or 'mast')",
            "Open an FFI source and print its sector, camera, CCD, frames, times and quality flags.", [
                option("source", help="MAST cube path/URL, FFI directory or glob, or 'sim'"),
            ]),
    Command("cube", "build the scattered-light cube of a sector/camera/CCD (FITS)",
            "Build the SL cube of one sector/camera/CCD and write it in the SL cube FITS format.", [
                TARGETS, BUILD, POOLING,
                option("--out", help="output FITS of one cube (default OUT-DIR/ffi_sl_cube_sectorNNN_C-D.fits)"),
                option("--out-dir", default=".", help="where the cubes go (default .)"),
                option("--plot", action="store_true", help="also save the mask diagnostic and an animation"),
            ]),
    Command("dataset", "build a training set (NPZ: SL cube and Earth/Moon maps)",
            "Build the SL cube and the per-bin Earth/Moon maps; write OUT-DIR/ffi_sl_cube_sectorNNN_C-D.fits "
            "and OUT-DIR/ffi_cubes_binB_sectorNNN_C-D.npz.", [
                TARGETS, BUILD, POOLING,
                option("--out-dir", default="."),
                option("--plot", action="store_true", help="also save figures in OUT/figures/sectorNNN"),
            ]),
    Command("demo", "the whole job on the simulated Sector 4, scored against its truth",
            "Build the SL cube, maps, FITS, NPZ and figures of the simulated Sector 4 (camera 1, CCD 1) and print "
            "how close the cube is to the simulator's truth; train and score a model on it; correct an astrocut "
            "cutout of the simulated FFIs with the cube and with the model.", [
                option("--out-dir", default="demo-output"),
                option("--quick", action="store_true",
                       help="every 8th frame, and all of the day the cutout is in (two to three minutes on a laptop)"),
                POOLING,
            ], defaults={"adaptive": True}),
    Command("correct", "subtract the scattered light from a TPF or TESScut cutout",
            "Subtract the scattered light of an SL cube or a model from a target pixel file (SPOC TPF or "
            "TESScut/astrocut cutout) and write the corrected TPF.", [
                option("tpf", help="target pixel file (FITS)"),
                OneOf([
                    option("--cube", help="SL cube FITS of the TPF's sector/camera/CCD"),
                    option("--model", help="model file (from 'train'), or 'default' for the model shipped with the package "
                           "(trained on real series): the SL from geometry alone, no cube"),
                ]),
                option("--ephemeris", help="with --model: " + EPHEMERIS_HELP),
                option("--anchor", action="store_true",
                       help="with --model: fit the model's amplitude to the stamp's own background "
                       "(FLUX_BKG, or a cutout's faintest pixels); the model gives the shape"),
                option("--out", required=True, help="corrected TPF (FITS)"),
                option("--plot", help="figure of raw and corrected light curves with the SL model"),
            ]),
    Command("train", "train a model that predicts the SL from the Earth/Moon geometry",
            "Train a model (and the ridge baseline) on training sets made by 'dataset'; with --train-orbit, the "
            "other orbit is held out and scored. Or train gradient-boosted trees on real series (SPOC light curves, "
            "TPFs, TESScut cutouts), scored leaving one series out.", [
                option("data", nargs="+", help="training-set NPZ files (any sectors/cameras/CCDs), or real series: "
                       "SPOC light curves, TPFs or TESScut cutouts (FITS)"),
                option("--out", required=True, help="model file to write (NPZ)"),
                option("--model", choices=("nn", "gbt", "ridge"), default=None,
                       help="default nn (the main model) for training sets, gbt for real series"),
                option("--ephemeris", help="for real series: " + EPHEMERIS_HELP),
                option("--train-orbit", choices=("1", "2", "all"), default="1", help="orbit to train on (default 1)"),
                option("--epochs", type=int, default=None, help="network training epochs (default 15)"),
                option("--max-samples", type=int, default=300_000, help="training samples used (random subset)"),
                option("--seed", type=int, default=0),
                option("--no-held-out", action="store_true",
                       help="real series: skip the nested held-out figures (the whole choice once per sector: slow)"),
            ]),
    Command("evaluate", "score a model: on training sets, on real series, or its held-out figures",
            "Score a model file, its ridge baseline and no correction on training sets (NPZ); or a model of real "
            "series on real series (FITS: SL left by the model, anchored each orbit on the other, and none); with "
            "no data, print the model's nested held-out table.", [
                option("model", help="model file made by 'train', or 'default'"),
                option("data", nargs="*", help="training-set NPZ files, or real series (FITS)"),
                option("--ephemeris", help="for real series: " + EPHEMERIS_HELP),
                option("--orbit", choices=("1", "2", "all"), default="2", help="orbit to score (default 2)"),
                option("--plot", help="figure: predicted vs true images, residual light curves"),
                option("--json", action="store_true", help="print the table as JSON"),
            ]),
    Command("forecast", "when scattered light will hit a sky position, sector by sector",
            "Forecast the scattered light at a sky position in every sector that observes it: the camera, CCD and "
            "pixel, the SL through the sector from the default model (or --model) with its error, the episodes "
            "above a threshold, the share of the sector affected and the stray-light windows (Earth or Moon above "
            "the sunshade).", [
                option("--ra", required=True, help="right ascension, degrees (ICRS)"),
                option("--dec", required=True, help="declination, degrees (ICRS)"),
                option("--sectors", help="1-122 or 1,3 (default: every sector the ephemeris covers)"),
                option("--model", default="default", help="a model trained on real series, or 'default'"),
                option("--ephemeris", help=EPHEMERIS_HELP),
                option("--threshold", type=float, default=None,
                       help=f"episode threshold in e-/s per pixel (default: {100 * RELATIVE_THRESHOLD:g}%% of each "
                            f"sector's forecast peak); a cadence is in an episode at {episode_rule_text()}"),
                option("--out", help="CSV of the forecast, one row per 30-min cadence of each sector"),
                option("--plot", help="figure: one panel per sector, episodes shaded (PNG, PDF)"),
            ]),
    Command("simulate", "write FFIs of the simulated sector (and their MAST-format cube)",
            "Write SPOC-format calibrated FFI files of the simulated sector (real geometry, known scattered light) "
            "and, with --cube, the MAST FFI cube astrocut makes from them.", [
                option("--sector", type=int, default=4),
                option("--camera", default=1, **CAMERA_CHOICE),
                option("--ccd", default=1, **CAMERA_CHOICE),
                option("--frames", type=parse_frames, default=slice(0, 40), help="START:STOP[:STEP] (default 0:40)"),
                option("--seed", type=int, default=0),
                option("--cadence", type=float, default=None, help="FFI cadence in seconds (default: the sector's)"),
                option("--out-dir", required=True),
                option("--cube", action="store_true", help="also build the MAST-format cube with astrocut"),
            ]),
]


def _add_options(parser, options):
    """Add options to a parser: a tuple is one option, a list a shared group of them,
    a :class:`OneOf` a required choice of one."""
    for entry in options:
        if isinstance(entry, OneOf):
            _add_options(parser.add_mutually_exclusive_group(required=True), entry)
        elif isinstance(entry, list):
            _add_options(parser, entry)
        else:
            flags, settings = entry
            parser.add_argument(*flags, **settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tess-backml",
        description="Isolate the scattered light in TESS FFIs and remove it from light curves.",
    )
    parser.add_argument("--version", action="version", version=f"tess-backml {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors; no progress bars")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers = globals()
    for command in COMMANDS:
        sub = subcommands.add_parser(command.name, help=command.help, description=command.description)
        _add_options(sub, command.options)
        sub.set_defaults(handler=handlers[f"run_{command.name}"], **command.defaults)
    return parser


def _configure_logging(verbose: int, quiet: bool):
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tess_backml").setLevel(level)


def _close_progress_bars():
    """Finish the progress bars an error interrupted, so the error gets a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def main(argv=None) -> int:
    """Entry point of the ``tess-backml`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args.verbose, args.quiet)
    import os

    previous = os.environ.get("TQDM_DISABLE")
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        return args.handler(args)
    except (TessBackmlError, OSError) as exc:
        _close_progress_bars()
        # one line, whatever the text of the underlying error
        print(f"tess-backml {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _close_progress_bars()
        print("tess-backml: interrupted", file=sys.stderr)
        return 130
    finally:  # an in-process caller (a notebook, a test) gets its progress bars back
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


if __name__ == "__main__":
    sys.exit(main())
