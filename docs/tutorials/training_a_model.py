# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training and evaluating a model
#
# Where no SL cube exists, the scattered light can be predicted from the geometry
# alone: where the Earth and the Moon are relative to the camera and to each pixel's
# line of sight, and how large they look. This tutorial makes a training set, trains
# the package's models on one orbit and scores them on the other, then confronts the
# model with **real** scattered light: the backgrounds SPOC measured around targets
# in real 2-minute light curves.

# %%
import warnings

# lightkurve's optional-module notice and tqdm's widget notice say nothing about this page
warnings.filterwarnings("ignore", message=".*(oktopus|IProgress).*")

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tess_backml import BackgroundCube, ScatterLightCorrector, evaluate_model, train_model
from tess_backml.model import format_table, save_model

folder = Path(tempfile.mkdtemp())

# %% [markdown]
# ## A training set
#
# A training set is an SL cube with the per-bin Earth/Moon maps (`tess-backml
# dataset` writes the same file). Here: the simulated Sector 4, camera 1, CCD 1,
# 32-pixel bins, every 8th frame, 2-hour bins.

# %%
cube = BackgroundCube(4, 1, 1, img_bin=32, source="sim", progress=False)
cube.get_scatter_light_cube(frames=slice(None, None, 8))
cube.bin_time_axis(2.0)
cube.get_vector_maps()
training_file = cube.save_to_npz(str(folder / cube.default_name("npz")), save_maps=True)
print(training_file)

# %% [markdown]
# ## Training on orbit 1, scoring on orbit 2
#
# `train_model` trains the main model (`"nn"`, a small neural network gated by
# whether each body is above the sunshade) and the ridge baseline on the first orbit;
# the second orbit is held out. `"gbt"` trains gradient-boosted trees instead
# (LightGBM, a core dependency).

# %%
model, baseline, meta = train_model([training_file], kind="nn", train_orbit=1, progress=False)
model_file = save_model(model, str(folder / "sl_model.npz"), meta, baseline=baseline)
print(format_table(meta["held_out"]))

# %% [markdown]
# `evaluate_model` scores a saved model on any training sets; its figure compares
# predicted and true images and the light curves of the residuals.

# %%
from tess_backml.plotting import plot_evaluation

table, data, mask, loaded = evaluate_model(model_file, [training_file], orbit=2)
plot_evaluation(table, data, mask, loaded)
plt.show()

# %% [markdown]
# The model file is plain arrays plus a JSON description (no pickle): what it was
# trained on, how, and its held-out scores.

# %%
print({key: loaded.meta[key] for key in ("kind", "train_orbit", "samples") if key in loaded.meta})

# %% [markdown]
# ## Real scattered light
#
# This part needs the real TESS files of `../shared/data` (see
# [Installation and data](../install.md)); without them it is skipped.
#
# A SPOC light curve carries `SAP_BKG`, the background SPOC measured around its
# target at every cadence, summed over the aperture. Per pixel and above its level at
# the sector's darkest cadences (its 2nd percentile), it is the scattered light at
# that stamp, plus a slow zodiacal drift. The model predicts the same quantity from
# the geometry, for which JPL Horizons tables of TESS give the ephemeris of any
# sector.

# %%
from tess_backml.geometry import load_ephemeris
from tess_backml.series import read_series

DATA = Path(os.environ.get("TESS_BACKML_DATA", "../shared/data"))
light_curves = sorted((DATA / "real" / "lightcurves").glob("*.fits"))
have_real_data = bool(light_curves) and (DATA / "ephemeris").is_dir()
print(f"{len(light_curves)} light curves" if have_real_data else f"real data not found in {DATA}: this part is skipped")

# %% [markdown]
# `read_series` turns a light curve (or a SPOC TPF, or a TESScut cutout) into an
# `SLSeries`: the SL per pixel above the sector's dark level, cadence by cadence, with
# the stray-light quality bits kept and one-cadence spikes flagged. A directory of
# Horizons tables is an ephemeris: each sector is read from the table that covers it.

# %%
results = []
if have_real_data:
    ephemeris = load_ephemeris(str(DATA / "ephemeris"))
    for path in light_curves:
        series = read_series(path).binned(30.0)
        corrector = ScatterLightCorrector(series.sector, series.camera, series.ccd, model=model_file, ephemeris=ephemeris)
        rows, cols = np.array([series.row]), np.array([series.column])
        predicted, _ = corrector.evaluate_scatterlight_model(rows, cols, series.time, method="model")
        results.append((series.sector, series.camera, series.ccd, series.time, series.sl, predicted[:, 0, 0]))
print(f"{len(results)} series evaluated")

# %%
if results:
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 2.1 * len(results)), layout="constrained")
    for ax, (sector, camera, ccd, time, observed, predicted) in zip(np.atleast_1d(axes), results):
        left = np.sqrt(np.nanmean((observed - predicted) ** 2)) / np.sqrt(np.nanmean(observed**2))
        ax.plot(time, observed, ".", ms=1, color="0.5", label="real SL (SAP_BKG per pixel)")
        ax.plot(time, predicted, "-", color="tab:red", lw=1, label="model")
        ax.set_title(f"Sector {sector}, camera {camera}, CCD {ccd}: SL left {left:.2f}", fontsize=9)
        ax.set_ylabel("e-/s")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("BTJD")
    plt.show()

# %% [markdown]
# "SL left" is the RMS of the real SL minus the model over the RMS of the real SL: 1
# means nothing removed. A model trained on the simulator catches when the light
# comes in some of these series, but not how much. Trained on real series instead,
# gradient-boosted trees with the `real-3` features (the Earth seen from the pixel, the
# camera and the spacecraft) leave a median 0.41 of the SL of a series of a sector they
# never saw (nested leave-one-sector-out over 38 real series: every choice made inside
# the training sectors; none made worse than no correction).
# Those trees, trained on all 38 series, ship as the **default model**:
# `ScatterLightCorrector(sector, camera, ccd, model="default")` or
# `tess-backml correct FILE --model default` (add `--anchor` to fit its amplitude to
# the stamp's own background). Its metadata holds its
# training files, recipe and held-out figures:

# %%
from tess_backml.model import load_model  # noqa: E402

default = load_model("default").meta
print(f"{default['kind']} trees, feature set {default['feature_set']}, {len(default['training_files'])} training series, "
      f"{default['training_samples']} 30-min means")
print(f"nested held out, one sector at a time: SL left median {default['held_out']['sl_left_median']:.2f}, "
      f"worst {default['held_out']['sl_left_max']:.2f}")
print(f"error: hypot({default['error_model']['floor']:.1f} e-/s, {default['error_model']['fraction']:.2f} x SL)")

# %% [markdown]
# The four ways side by side, each series weighted alike: no correction, this page's
# model trained on the simulator (scored on the light curves above: no real series is
# in its training), and the default model and its anchored mode, nested held out (the
# same table as `tess-backml evaluate default`):

# %%
held = default["held_out"]
rows = [("no correction", held["none_median"], 1.0, 0, "")]
if results:
    left = np.array([np.sqrt(np.nanmean((o - p) ** 2)) / np.sqrt(np.nanmean(o**2)) for *_, o, p in results])
    rows.append((f"simulator-trained ({left.size} light curves)", np.median(left), left.max(), int(np.sum(left > 1)), ""))
for name, prefix, errors in (("default, nested", "sl_left", "errors"), ("anchored, nested", "anchored", "anchored_errors")):
    worse = held["worse" if prefix == "sl_left" else "anchored_worse"]
    rows.append((name, held[f"{prefix}_median"], held[f"{prefix}_max"], worse,
                 f"{held[errors]['median_ratio']:.2f} / {held[errors]['within_one_error']:.2f}"))
print(f"{'':34s}{'median':>8s}{'worst':>8s}{'worse':>7s}   |res|/err / within 1 err (honest: 0.67 / 0.68)")
for name, median, worst, worse, spread in rows:
    print(f"{name:34s}{median:8.2f}{worst:8.2f}{worse:7d}   {spread}")

# %% [markdown]
# Where the Earth or the Moon comes nearer the pixels or the boresight than in any of
# the training series, the model says so: those times carry the flag
# `OUTSIDE_TRAINING` and an error at least as large as the bright light it learnt.
# Where the real light matters, build an SL cube of the sector from its FFIs
# (tutorial 1): the cube measures the light as it is.
