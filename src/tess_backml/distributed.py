"""Many SL cubes at once: in this process, or as tasks on a Dask cluster.

Each cube is prepared (frames, dark frames, static scene, masks) by one task,
then its work units (row blocks of a MAST cube, chunks of frames otherwise) are
tasks of their own, so one big cube spreads over the cluster as well as many
small ones. Every finished unit is kept in a checkpoint beside the output
(``<output>.partial/``), so a build killed at any point resumes with
``resume=True`` without computing those units again. Outputs are written to a
temporary file and renamed: a file with the final name is always complete, and
it is skipped unless ``overwrite=True``.

Results are bit-for-bit those of a single-process build: the units run the
same code on the same data, and nothing is reduced across units.

Dask is optional (``pip install 'tess-backml[distributed]'``); without a
scheduler or a worker count, everything runs in this process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .cube.outputs import default_name
from .errors import TessBackmlError

log = logging.getLogger(__name__)


def parse_range(text: str, low: int, high: int, name: str) -> list:
    """``"1-4"``, ``"1,3"`` or ``"2"`` -> sorted list of ints within [low, high]."""
    values = set()
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                first, last = (int(v) for v in part.split("-", 1))
                values.update(range(first, last + 1))
            else:
                values.add(int(part))
        except ValueError:
            raise TessBackmlError(f"{name} must be numbers or ranges like 1-4 or 1,3, got {text!r}") from None
    bad = [v for v in values if not low <= v <= high]
    if bad or not values:
        raise TessBackmlError(f"{name} must lie in {low}-{high}, got {text!r}")
    return sorted(values)


def make_client(workers=None, scheduler=None):
    """A Dask client: on ``scheduler`` (an address), or a local cluster of ``workers``
    processes; None when neither is given (work then runs in this process)."""
    if workers is None and scheduler is None:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise TessBackmlError("distributed builds need Dask: pip install 'tess-backml[distributed]'") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise TessBackmlError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    if int(workers) < 1:
        raise TessBackmlError(f"--workers must be at least 1, got {workers}")
    quiet = logging.getLogger("tess_backml").getEffectiveLevel() > logging.DEBUG
    cluster = LocalCluster(
        n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR if quiet else logging.INFO,
    )
    return Client(cluster)


def _prepare_task(spec: dict):
    from .cube import BackgroundCube

    cube = BackgroundCube(
        spec["sector"], spec["camera"], spec["ccd"], img_bin=spec["img_bin"], downsize=spec["downsize"],
        source=spec["source"], block_rows=spec["block_rows"], memory_gb=spec["memory_gb"], progress=False,
        scratch_dir=spec["scratch_dir"],
    )
    cube.prepare(spec["frames"], rolling=spec["rolling"])
    return cube


def build_cubes(
    targets,
    out_dir,
    source="mast",
    img_bin: int = 16,
    time_bin: float = 2.0,
    adaptive: bool = False,
    frames=None,
    downsize: str = "binning",
    rolling: bool = True,
    block_rows=None,
    memory_gb: float | None = None,
    scratch_dir=None,
    client=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    dataset: bool = False,
    out_file=None,
    on_cube=None,
) -> list:
    """Build the SL cubes of ``targets`` ((sector, camera, ccd) triples) into ``out_dir``.

    Parameters
    ----------
    source : str
        ``"mast"``, ``"sim"``, or a local cube file / FFI directory (one target then).
    adaptive : bool
        Adaptive time bins (see ``BackgroundCube.bin_time_axis``).
    block_rows, memory_gb
        The size of a work unit of a MAST cube (see ``BackgroundCube``): a task's
        memory on the cluster.
    scratch_dir : path, optional
        Where a MAST cube's scratch bands go, on each machine that builds (default:
        its ``TMPDIR``); other sources need none.
    client : dask.distributed.Client, optional
        Run on this cluster (see :func:`make_client`); None: in this process.
    resume, overwrite : bool
        Take the finished units of an interrupted build; rebuild existing outputs.
    dataset : bool
        Also write the training-set NPZ with the Earth/Moon maps beside each cube.
    out_file : path, optional
        The output's name when there is one target (default: the original's name
        in ``out_dir``).
    on_cube : callable, optional
        Called as ``on_cube(cube, path)`` after each cube is written (e.g. figures).

    Returns
    -------
    list of str
        The outputs written (existing ones skipped are not listed).
    """
    from tqdm.auto import tqdm

    settings = {"img_bin": img_bin, "downsize": downsize, "source": source, "block_rows": block_rows,
                "memory_gb": memory_gb, "scratch_dir": scratch_dir, "frames": frames, "rolling": rolling}
    specs = _pending(targets, out_dir, out_file, overwrite, settings)
    if not specs:
        return []
    written = []
    bar = tqdm(total=len(specs), desc="cubes", unit="cube", disable=not progress)
    started, frames_done = time.perf_counter(), 0
    for spec, handle in _prepared(specs, client):
        cube = handle if client is None else handle.result()
        cube.progress = progress and client is None
        outputs = _build_prepared(cube, spec, client, handle, resume, (time_bin, adaptive), dataset)
        written += outputs
        if on_cube is not None:
            on_cube(cube, outputs[0])
        frames_done += len(cube.frame_indices)
        bar.update()
        bar.set_postfix(frames_per_s=f"{frames_done / (time.perf_counter() - started):.1f}")
        message = (f"{outputs[0]}: sector {spec['sector']} camera {spec['camera']} CCD {spec['ccd']}, "
                   f"{len(cube.frame_indices)} frames -> {cube.scatter_cube.shape}")
        log.info(message)
        bar.write(message)
    bar.close()
    return written


def _prepared(specs, client):
    """(spec, prepared cube) in this process, or (spec, future of it) on the cluster as
    each is ready: a sector's plan (darkness, statics) is its own task."""
    if client is None:
        return ((spec, _prepare_task(spec)) for spec in specs)
    from distributed import as_completed

    futures = {client.submit(_prepare_task, {k: v for k, v in spec.items() if k != "out"}, pure=False): spec
               for spec in specs}
    return ((futures[f], f) for f in as_completed(futures))


def _pending(targets, out_dir, out_file, overwrite, settings) -> list:
    """One build spec per target whose output is not there yet (or is to be rebuilt)."""
    targets = list(targets)
    if out_file is not None and len(targets) != 1:
        raise TessBackmlError("an output file name is for one cube; give an output directory for several")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for sector, camera, ccd in targets:
        out = Path(out_file) if out_file is not None else out_dir / default_name(sector, camera, ccd, settings["img_bin"], "fits")
        if out.exists() and not overwrite:
            log.warning("%s exists: skipped (overwrite to rebuild it)", out)
            print(f"{out}: exists, skipped")
            continue
        specs.append({"sector": sector, "camera": camera, "ccd": ccd, **settings, "out": out})
    return specs


def _build_prepared(cube, spec, client, handle, resume, time_bins, dataset) -> list:
    """Run a prepared cube's units (through its checkpoint), bin it in time and write
    its FITS file (and, for a dataset, its NPZ); returns the paths written, FITS first."""
    from .io import Checkpoint

    checkpoint = Checkpoint(str(spec["out"]) + ".partial", cube.build_identity(), resume=resume)
    cube.run_units(checkpoint=checkpoint, client=client, remote=handle if client is not None else None)
    cube.bin_time_axis(*time_bins)
    written = [cube.save_to_fits(str(spec["out"]), binned=True)]
    if dataset:
        cube.get_vector_maps()
        npz = str(spec["out"]).replace(".fits", ".npz").replace("ffi_sl_cube_", f"ffi_cubes_bin{cube.img_bin}_")
        written.append(cube.save_to_npz(npz, save_maps=True))
    checkpoint.remove()
    return written
