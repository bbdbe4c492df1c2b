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
# # Correcting TPFs and TESScut cutouts
#
# The scattered light (SL) can be removed from any target pixel file: a SPOC TPF, a
# TESScut cutout, or a cutout you made with `astrocut`. `ScatterLightCorrector`
# evaluates the SL at the file's pixels and times, either by interpolating an **SL
# cube** or from a **learnt model** of the SL against the Earth/Moon geometry, which
# needs no cube. `correct` subtracts it and keeps the model in the file.
#
# The first part uses the simulated Sector 4, where the true SL is known; the second
# part a real TESScut cutout of Sector 12.

# %%
import warnings

# lightkurve's optional-module notice and tqdm's widget notice say nothing about this page
warnings.filterwarnings("ignore", message=".*(oktopus|IProgress).*")

import os
import tempfile
from pathlib import Path

import lightkurve as lk
import matplotlib.pyplot as plt
import numpy as np

from tess_backml import BackgroundCube, ScatterLightCorrector, correct, train_model
from tess_backml.demo import frames_before_first_perigee, simulated_cutout
from tess_backml.model import save_model

folder = Path(tempfile.mkdtemp())

# %% [markdown]
# ## A cube and a cutout of the simulated sector
#
# A cube with 16-pixel bins (about a minute) from every 8th frame and every frame of the
# day before the first perigee, where the light is strongest and changes fastest, in
# adaptive 2-hour bins: kept where the light is smooth, split where it outruns them.
# Then a 10 x 10 cutout made the way users make theirs: the simulated FFIs of the last 16
# frames before that perigee are written as SPOC FFI files, made into a MAST cube with
# `astrocut.CubeFactory` and cut out with `astrocut.TessCubeCutout`.

# %%
cube = BackgroundCube(4, 1, 1, img_bin=16, source="sim", progress=False)
sim = cube.source
cube.get_scatter_light_cube(frames=np.union1d(np.arange(0, sim.nframes, 8), frames_before_first_perigee(sim, 48)))
cube.bin_time_axis(2.0, adaptive=True)
print(f"{len(cube.frame_indices)} frames in {len(cube.time)} adaptive time bins")
cube.get_vector_maps()
cube_file = cube.save_to_fits(str(folder / cube.default_name("fits")))
training_file = cube.save_to_npz(str(folder / cube.default_name("npz")), save_maps=True)

frames = frames_before_first_perigee(sim, 16)
cutout_file = simulated_cutout(sim, frames, str(folder / "cutout.fits"))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tpf = lk.read(cutout_file, quality_bitmask="none")
tpf

# %% [markdown]
# ## With the SL cube
#
# The corrector reads the cube file (the original tess-backml format works too) and
# places the cutout on the CCD from its headers or its WCS.

# %%
corrector = ScatterLightCorrector(4, 1, 1, fname=cube_file)
corrected = corrector.correct(tpf)
print(corrected.hdu[1].columns.names)

from tess_backml.plotting import plot_correction

plot_correction(tpf, corrected)
plt.show()

# %% [markdown]
# Scored against the simulator's truth at the cutout's background pixels:

# %%
from tess_backml.corrector import tpf_corner

row, column = tpf_corner(tpf)
rows = np.arange(row, row + tpf.shape[1]) - 1  # science-array indices
cols = np.arange(column, column + tpf.shape[2]) - 45
truth = np.array([sim.true_scattered_light(i)[np.ix_(rows, cols)] for i in frames])
background = ~(cube.star_mask | cube.strap_mask[None, :])[np.ix_(rows, cols)]


def share_removed(corrected_tpf):
    model = np.asarray(corrected_tpf.hdu[1].data["SL_MODEL"], float)
    left = np.sqrt(np.nanmean((truth - model)[:, background] ** 2))
    return 1 - left / np.sqrt(np.mean(truth[:, background] ** 2))


print(f"SL cube: {100 * share_removed(corrected):.0f}% of the true SL removed")

# %% [markdown]
# With fixed 2-hour bins the same frames remove 95% (the demo, `--no-adaptive`): near perigee the
# simulated light changes within 2 hours, and the adaptive bins split the bins it outruns.

# %% [markdown]
# ## With a learnt model, no cube
#
# A model trained on the first orbit of the training set predicts the SL from the
# Earth/Moon geometry alone, at any pixel and time of any sector whose ephemeris is
# known. (Training is the subject of the next tutorial.)

# %%
model, baseline, meta = train_model([training_file], kind="nn", train_orbit=1, progress=False)
model_file = save_model(model, str(folder / "sl_model.npz"), meta, baseline=baseline)

corrected_by_model = correct(tpf, model=model_file)
print(f"model: {100 * share_removed(corrected_by_model):.0f}% of the true SL removed")

# %% [markdown]
# The same from the command line:
#
# ```bash
# tess-backml correct cutout.fits --cube ffi_sl_cube_sector004_1-1.fits --out corrected.fits --plot lc.png
# tess-backml correct cutout.fits --model sl_model.npz --out corrected.fits
# ```
#
# ## A real TESScut cutout: Sector 12
#
# This part needs the real TESS files of `../shared/data` (see
# [Installation and data](../install.md)); without them it is skipped. The cutout is
# one pixel (CCD row 1458, column 379 of camera 2, CCD 1) over the whole sector, with
# strong scattered light. No SL cube of Sector 12 is at hand, so a model is evaluated
# from the geometry alone; its ephemeris is a JPL Horizons table of TESS. Two models:
# the one trained above on the simulator, and the package's **default model**
# (`model="default"`), trained on 38 real series. This cutout is one of them, so here
# it shows how the default model is used, not how well it does on unseen light: left
# out of its training (nested, by sector), a series keeps a median 0.41 of its SL (see tutorial 3).

# %%
DATA = Path(os.environ.get("TESS_BACKML_DATA", "../shared/data"))
s12_file = DATA / "real" / "tess-s0012-2-1_tesscut_1x1.fits"
ephemeris = DATA / "ephemeris" / "20190101_tess_ephem.csv"
have_real_data = s12_file.is_file() and ephemeris.is_file()
print("real data:", "found" if have_real_data else f"not found in {DATA}: this part is skipped")

# %%
if have_real_data:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s12 = lk.read(s12_file)
    simulation_s12 = correct(s12, model=model_file, ephemeris=str(ephemeris))
    default_s12 = correct(s12, model="default", ephemeris=str(ephemeris))
    flux = np.asarray(s12.flux.value[:, 0, 0], float)
    simulation_model = np.asarray(simulation_s12.hdu[1].data["SL_MODEL"][s12.quality_mask][:, 0, 0], float)
    default_model = np.asarray(default_s12.hdu[1].data["SL_MODEL"][s12.quality_mask][:, 0, 0], float)
    default_error = np.asarray(default_s12.hdu[1].data["SL_MODEL_ERR"][s12.quality_mask][:, 0, 0], float)
    # The pixel's SL: its flux above the level of the sector's darkest cadences.
    observed_sl = flux - np.nanpercentile(flux, 2)

    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    ax.plot(s12.time.value, observed_sl, ".", ms=2, color="0.5", label="pixel flux above its 2nd percentile")
    ax.plot(s12.time.value, simulation_model, "-", color="tab:blue", lw=1, label="model trained on the simulator")
    ax.plot(s12.time.value, default_model, "-", color="tab:red", lw=1, label="default model (real series)")
    ax.fill_between(s12.time.value, default_model - default_error, default_model + default_error,
                    color="tab:red", alpha=0.2, lw=0, label="its error")
    ax.set(xlabel="BTJD", ylabel="e-/s", title="Sector 12, camera 2, CCD 1: one TESScut pixel")
    ax.legend()
    plt.show()
    rms = lambda x: np.sqrt(np.nanmean(x**2))  # noqa: E731
    print(f"RMS of the observed SL {rms(observed_sl):.0f} e-/s; left after the simulation model "
          f"{rms(observed_sl - simulation_model):.0f} e-/s, after the default model {rms(observed_sl - default_model):.0f} e-/s")

# %% [markdown]
# A model trained on the simulator alone finds *when* the real light comes but not
# how much: real scattered light is judged on real series, and the default model,
# trained on them, is the way to remove it where no cube exists. Its error (a floor of
# about 3 e-/s and half of the light) is fitted to its held-out residuals. Where a cube
# of the sector can be built, the cube follows the real light as it is.
