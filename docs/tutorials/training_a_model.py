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
# (scikit-learn, the `[ml]` extra).

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
# the geometry, for which a JPL Horizons table of TESS gives the ephemeris of any
# sector.

# %%
from astropy.io import fits

DATA = Path(os.environ.get("TESS_BACKML_DATA", "../shared/data"))
light_curves = sorted((DATA / "real" / "lightcurves").glob("*.fits"))
tables = sorted((DATA / "ephemeris").glob("*.csv"))
print(f"{len(light_curves)} light curves, {len(tables)} ephemeris tables" if light_curves and tables
      else f"real data not found in {DATA}: this part is skipped")


def real_series(path):
    """Sector, camera, CCD, stamp-centre row and column, times and per-pixel SL of a SPOC light curve."""
    with fits.open(path) as hdul:
        head, data, aperture = hdul[0].header, hdul[1].data, hdul[2]
        npix = int(np.sum((aperture.data & 2) > 0))
        rows, cols = aperture.data.shape
        row = aperture.header["CRVAL2P"] + (rows - 1) / 2
        col = aperture.header["CRVAL1P"] + (cols - 1) / 2
        keep = np.isfinite(data["TIME"]) & np.isfinite(data["SAP_BKG"]) & ((data["QUALITY"] & ~(2048 | 4096)) == 0)
        time = np.asarray(data["TIME"][keep], float)
        sl = np.asarray(data["SAP_BKG"][keep], float) / npix
    return head["SECTOR"], head["CAMERA"], head["CCD"], row, col, time, sl - np.percentile(sl, 2)


def covering_table(time):
    from tess_backml.geometry import HorizonsEphemeris

    for path in tables:
        ephemeris = HorizonsEphemeris(path)
        if ephemeris.covers(time.min() + 2457000) and ephemeris.covers(time.max() + 2457000):
            return ephemeris
    return None


# %%
results = []
for path in light_curves:
    sector, camera, ccd, row, col, time, observed = real_series(path)
    ephemeris = covering_table(time)
    if ephemeris is None:
        continue
    corrector = ScatterLightCorrector(sector, camera, ccd, model=model_file, ephemeris=ephemeris)
    predicted, _ = corrector.evaluate_scatterlight_model(np.array([row]), np.array([col]), time, method="model")
    results.append((sector, camera, ccd, time, observed, np.asarray(predicted, float).reshape(len(time))))

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
# comes in most of these series, but not how much: judged on real light, it needs
# real light to learn from. Where the real light matters, build an SL cube of the
# sector from its FFIs (tutorial 1): the cube measures the light as it is.
