"""Figures and animations.

Every function returns the matplotlib figure (shown inline in notebooks) and,
given ``path``, saves it there, the format following the file name. Without a
display matplotlib falls back to its Agg backend, so saving works anywhere.
"""

from __future__ import annotations

import numpy as np


def _save(fig, path):
    if path is not None:
        from ._files import atomic_output

        suffix = str(path).rsplit(".", 1)[-1] if "." in str(path) else "png"
        with atomic_output(path, None) as temporary:
            fig.savefig(temporary, dpi=120, bbox_inches="tight", format=suffix)
    return fig


def plot_vectors(table, path=None):
    """Earth and Moon angle, azimuth and distance of a camera against time.

    Parameters
    ----------
    table : astropy.table.Table
        A table from :func:`tess_backml.geometry.camera_vectors` or
        :func:`tess_backml.geometry.read_tess_vectors`.
    path : str, optional
        Save the figure there.
    """
    import matplotlib.pyplot as plt

    time = np.asarray(table["BTJD"], dtype=float)
    label = "BTJD [d]"
    if not np.all(np.isfinite(time)):
        time, label = np.asarray(table["MidTime"], dtype=float), "spacecraft time - 2457000 [d]"
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    colours = {"Earth": "tab:blue", "Moon": "tab:gray"}
    for body, colour in colours.items():
        axes[0].plot(time, table[f"{body}_Camera_Angle"], ".", ms=2, color=colour, label=body)
        axes[1].plot(time, table[f"{body}_Camera_Azimuth"], ".", ms=2, color=colour)
        axes[2].plot(time, table[f"{body}_Distance"], ".", ms=2, color=colour)
        axes[3].plot(time, table[f"{body}_Angular_Size"], ".", ms=2, color=colour)
    axes[0].set_ylabel("angle from\nboresight [deg]")
    axes[1].set_ylabel("azimuth [deg]")
    axes[1].set_ylim(0, 360)
    axes[2].set_ylabel("distance\n[Earth radii]")
    axes[3].set_ylabel("angular\ndiameter [deg]")
    axes[3].set_yscale("log")
    axes[3].set_xlabel(label)
    axes[0].legend(loc="upper right")
    meta = table.meta
    title = "Earth and Moon seen from TESS"
    if "SECTOR" in meta and "CAMERA" in meta:
        title += f": sector {meta['SECTOR']}, camera {meta['CAMERA']}"
    axes[0].set_title(title)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.align_ylabels(axes)
    return _save(fig, path)
