"""The main job on the embedded default, as ``tess-backml demo`` runs it.

The simulated Sector 4 (real geometry, known scattered light), camera 1, CCD 1:
the SL cube, its Earth/Moon maps, files and figures, scored against the
simulator's truth; a model trained on orbit 1 and scored on orbit 2; and an
astrocut cutout of the simulated FFIs corrected with the cube and with the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings

import numpy as np

from ._files import make_output_directory
from .cube import timebins

#: The demo's sector, camera and CCD.
SECTOR, CAMERA, CCD = 4, 1, 1


def run_demo(out_dir="demo-output", quick=False, image_bin=16, downsize="binning", rolling=True, time_bin=2.0,
             adaptive=False, progress=True):
    """Run the whole job on the simulated sector and print what it made and how good it is.

    Parameters
    ----------
    out_dir : str
        Where the cube (FITS), training set (NPZ), model, cutout and figures go.
    quick : bool
        Every 8th frame instead of all, and every frame of the day before the first
        perigee, where the cutout is corrected (two to three minutes on a laptop).
    image_bin, downsize, rolling, time_bin, adaptive
        As in :class:`~tess_backml.cube.BackgroundCube` and its
        :meth:`~tess_backml.cube.BackgroundCube.bin_time_axis`.
    progress : bool
        Show progress bars.
    """
    from .cube import BackgroundCube
    from .model import format_table, save_model, train_model
    from .plotting import plot_maps

    started = time.time()
    make_output_directory(out_dir)
    cube = BackgroundCube(SECTOR, CAMERA, CCD, img_bin=image_bin, downsize=downsize, source="sim", progress=progress)
    if quick:  # every 8th frame, and every frame of the day the cutout is corrected in
        frames = np.union1d(np.arange(0, cube.nt, 8), frames_before_first_perigee(cube.source, 48))
    else:
        frames = slice(None)
    quick_note = " (every 8th frame, all of the day before the first perigee: --quick)" if quick else ""
    print(f"demo: simulated sector {SECTOR}, camera {CAMERA}, CCD {CCD}{quick_note}")
    cube.get_scatter_light_cube(frames=frames, rolling=rolling)
    frames = len(cube.time)
    cube.bin_time_axis(time_bin, adaptive=adaptive)
    cube.get_vector_maps()
    fits_path = cube.save_to_fits(os.path.join(out_dir, cube.default_name("fits")))
    npz_path = cube.save_to_npz(os.path.join(out_dir, cube.default_name("npz")), save_maps=True)
    cube.plot_dark_frame(path=os.path.join(out_dir, "masks.png"))
    plot_maps(cube, path=os.path.join(out_dir, "earth_moon_maps.png"))
    gif = cube.animate_data(file_name=os.path.join(out_dir, "scattered_light.gif"), step=max(len(cube.time) // 80, 1))
    truth = cube.truth_cube()
    rms_error = float(np.sqrt(np.mean((cube.scatter_cube - truth) ** 2)))
    rms_truth = float(np.sqrt(np.mean(truth**2)))
    print(f"  frames processed: {len(cube.frame_indices)} (dark frames {cube.dark_frames.tolist()})")
    kind = "adaptive" if adaptive else "fixed"
    print(f"  SL cube: {cube.scatter_cube.shape}: {frames} frames in {len(cube.time)} {kind} {cube.time_bin_hours:g} h bins "
          f"({len(timebins.time_bin_starts(cube.source.time[cube.frame_indices], time_bin))} fixed ones) -> {fits_path}")
    print(f"  training set with Earth/Moon maps -> {npz_path}")
    print(f"  figures -> masks.png, earth_moon_maps.png, {os.path.basename(gif)}")
    print(f"  accuracy against the simulator's truth: RMS error {rms_error:.3g} e-/s = "
          f"{100 * rms_error / rms_truth:.2f}% of the true SL RMS ({rms_truth:.3g} e-/s)")
    print(f"  median quoted error {float(np.median(cube.scatter_err_cube)):.3g} e-/s")

    model, baseline, meta = train_model([npz_path], kind="nn", train_orbit=1, progress=progress)
    model_path = save_model(model, os.path.join(out_dir, "sl_model.npz"), meta, baseline=baseline)
    print(f"  model trained on orbit 1 in {meta['training_seconds']:.0f} s -> {model_path}; held out (orbit 2):")
    print("    " + format_table(meta["held_out"]).replace("\n", "\n    "))
    score_cutout_correction(cube, fits_path, model_path, out_dir)
    print(f"  done in {time.time() - started:.0f} s")


def simulated_cutout(sim, frames, out_file, size: int = 10, row: int = 1001, column: int = 1045):
    """An astrocut cutout (a TESScut-format TPF) of simulated FFIs, made as users make theirs.

    The FFIs of ``frames`` are written, made into a MAST-format cube with
    ``astrocut.CubeFactory`` and cut out with ``astrocut.TessCubeCutout`` around
    1-based CCD (``row``, ``column``).

    Parameters
    ----------
    sim : tess_backml.sources.SimulatedSector
        The simulated sector/camera/CCD.
    frames : array of int
        Frame indices.
    out_file : str
        Where the cutout goes.
    size : int
        Cutout side in pixels.

    Returns
    -------
    str
        ``out_file``.
    """
    from astrocut import TessCubeCutout

    from .geometry import CameraGeometry
    from .sources.mast import make_astrocut_cube

    work = tempfile.mkdtemp(prefix="tess-backml-cutout-", dir=os.path.dirname(os.path.abspath(out_file)))
    try:
        ffis = sim.write_ffis(os.path.join(work, "ffis"), frames, progress=False)
        name = f"tess-s{sim.sector:04d}-{sim.camera}-{sim.ccd}-cube.fits"
        ffi_cube = make_astrocut_cube(ffis, os.path.join(work, name), sector=sim.sector)
        centre = CameraGeometry(sim.sector, sim.camera).wcs(sim.ccd).pixel_to_world(column - 1, row - 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (cutout_file,) = TessCubeCutout([ffi_cube], coordinates=centre, cutout_size=size).write_as_tpf(work)
        shutil.move(cutout_file, out_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_file


def frames_before_first_perigee(sim, nframes: int = 16) -> np.ndarray:
    """The last ``nframes`` good frames before the first data gap of the simulated sector:
    the brightest, fastest-changing scattered light of its first orbit."""
    good = np.flatnonzero((sim.quality & 4) == 0)
    first_gap = np.flatnonzero(np.diff(sim.time) > 0.5)[0]
    return good[good <= first_gap][-nframes:]


def score_cutout_correction(cube, cube_file, model_path, out_dir, nframes: int = 16, size: int = 10):
    """Correct an astrocut cutout of the simulated sector with the cube and with the model,
    and print the share of the true SL (at its background pixels) each removes."""
    from .corrector import ScatterLightCorrector, lightkurve_module, tpf_corner

    lk = lightkurve_module()
    sim = cube.source
    frames = frames_before_first_perigee(sim, nframes)
    saved = simulated_cutout(sim, frames, os.path.join(out_dir, "cutout.fits"), size=size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpf = lk.read(saved, quality_bitmask="none")
    row, column = tpf_corner(tpf)
    rows = np.arange(row, row + tpf.shape[1]) - 1
    cols = np.arange(column, column + tpf.shape[2]) - 45
    truth = np.array([sim.true_scattered_light(i)[np.ix_(rows, cols)] for i in frames])
    background = ~(cube.star_mask | cube.strap_mask[None, :])[np.ix_(rows, cols)]
    before = np.sqrt(np.mean(truth[:, background] ** 2))
    print(f"  astrocut cutout {tpf.shape[1]}x{tpf.shape[2]} at CCD row {row}, column {column}, {len(frames)} "
          f"frames before the perigee (SL RMS {before:.0f} e-/s in background pixels) -> {saved}")
    for label, corrector, method in (
        (f"SL cube ({'adaptive ' if cube.time_bin_adaptive else ''}{cube.time_bin_hours:g} h bins)",
         ScatterLightCorrector(SECTOR, CAMERA, CCD, fname=cube_file), "sl_cube"),
        ("model (no cube)", ScatterLightCorrector(SECTOR, CAMERA, CCD, model=model_path), "model"),
    ):
        corrected = corrector.correct(tpf, method=method)
        model = np.asarray(corrected.hdu[1].data["SL_MODEL"], float)
        after = np.sqrt(np.nanmean((truth - model)[:, background] ** 2))
        print(f"    corrected with the {label}: {100 * (1 - after / before):.0f}% of the true SL removed "
              f"({after:.1f} e-/s RMS left)")
