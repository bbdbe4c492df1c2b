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
# # The SL cube and its Earth/Moon maps
#
# This tutorial builds the scattered-light (SL) cube of the **embedded default**: the
# simulated Sector 4, camera 1, CCD 1. Its geometry is real (the spacecraft ephemeris
# of Sector 4 ships with `lkspacecraft`, its pointing with `tesswcs`); its pixels are
# simulated, so we know the true scattered light and can score the cube against it.
# Everything here runs offline, in about a minute.
#
# The same code runs on real FFIs: give `source="mast"` (the public MAST cube of a
# sector/camera/CCD on S3), a local MAST cube file, or a directory of SPOC FFI files.

# %%
import warnings

# lightkurve's optional-module notice and tqdm's widget notice say nothing about this page
warnings.filterwarnings("ignore", message=".*(oktopus|IProgress).*")

import matplotlib.pyplot as plt
import numpy as np

from tess_backml import BackgroundCube

cube = BackgroundCube(sector=4, camera=1, ccd=1, img_bin=32, source="sim", progress=False)
cube

# %% [markdown]
# ## Building the cube
#
# `get_scatter_light_cube` drops frames with bad quality flags, finds the darkest
# frames, subtracts their median (the static scene), masks stars and the CCD straps,
# and pools every frame into 32 x 32-pixel bins with a robust median, with errors.
# To stay quick, this page processes every 16th frame of the sector.

# %%
cube.get_scatter_light_cube(frames=slice(None, None, 16))
print(f"frames processed: {len(cube.frame_indices)}; dark frames: {cube.dark_frames.tolist()}")
print(f"cube: {cube.scatter_cube.shape} (time, row bins, column bins)")

# %% [markdown]
# The dark frame, the star mask and the straps the pooling ignored:

# %%
cube.plot_dark_frame()
plt.show()

# %% [markdown]
# ## Time bins, and how close the cube is to the truth
#
# `bin_time_axis` averages the cube in time bins (hours, within each orbit). The
# simulator knows the true scattered light of every frame, so the cube can be scored
# before binning. (With every 16th frame, eight hours apart, each 2-hour bin holds one
# frame; with every frame it averages four.)

# %%
truth = cube.truth_cube()
error = cube.scatter_cube - truth
print(f"RMS error {np.sqrt(np.mean(error**2)):.3g} e-/s against a true SL RMS of {np.sqrt(np.mean(truth**2)):.3g} e-/s")
print(f"median quoted error {np.median(cube.scatter_err_cube):.3g} e-/s")

cube.bin_time_axis(bin_size=2.0)
print(f"binned cube: {cube.scatter_cube.shape} in {cube.time_bin_hours:g}-hour bins")

# %%
total = np.nansum(cube.scatter_cube, axis=(1, 2)) / np.prod(cube.scatter_cube.shape[1:])
brightest = int(np.nanargmax(total))
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
axes[0].plot(cube.time, total, ".-")
axes[0].set(xlabel="BTJD", ylabel="mean SL over the CCD [e-/s]", title="Scattered light of CCD 1-1, simulated Sector 4")
image = axes[1].imshow(cube.scatter_cube[brightest], origin="lower", cmap="inferno")
fig.colorbar(image, ax=axes[1], label="SL [e-/s]")
axes[1].set(xlabel="column bin", ylabel="row bin", title=f"brightest time bin, BTJD {cube.time[brightest]:.2f}")
plt.show()

# %% [markdown]
# ## Earth and Moon maps
#
# `get_vector_maps` computes, for every bin centre and every time bin, the angle
# between the bin's line of sight and the Earth and the Moon, their azimuth around
# it, and their angular size, from the spacecraft ephemeris and the sector's WCS.
# The camera-boresight values (the mission's *TESS Vectors*) come with them.

# %%
cube.get_vector_maps()
from tess_backml.plotting import plot_maps

plot_maps(cube, times=3)
plt.show()

# %%
fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
ax.plot(cube.time, cube.earth_vectors["alt"], label="Earth")
ax.plot(cube.time, cube.moon_vectors["alt"], label="Moon")
ax.set(xlabel="BTJD", ylabel="angle from the boresight [deg]", title="Camera 1, Sector 4")
ax.legend()
plt.show()

# %% [markdown]
# ## Files
#
# `save_to_fits` writes the SL cube in the original tess-backml format (the
# corrector reads it, and so does the original package); `save_to_npz` writes a
# training set with the maps for the learnt model.

# %%
import tempfile
from pathlib import Path

folder = Path(tempfile.mkdtemp())
fits_file = cube.save_to_fits(str(folder / cube.default_name("fits")))
npz_file = cube.save_to_npz(str(folder / cube.default_name("npz")), save_maps=True)
print(Path(fits_file).name, f"{Path(fits_file).stat().st_size / 1e6:.1f} MB")
print(Path(npz_file).name, f"{Path(npz_file).stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# From the command line, the same cube (with 16-pixel bins and every frame) is
#
# ```bash
# tess-backml cube --sector 4 --camera 1 --ccd 1 --source sim --out cube.fits --plot
# tess-backml dataset --sector 4 --camera 1 --ccd 1 --source sim --out-dir data
# ```
