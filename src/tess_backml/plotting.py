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


def plot_dark_frame(cube, mask_straps: bool = True, path=None):
    """The dark-frame diagnostic of a :class:`~tess_backml.cube.BackgroundCube`:
    static scene, star mask and (optionally) strap mask."""
    import matplotlib.pyplot as plt

    static = getattr(cube, "static", None)
    panels = 3 if mask_straps else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.4), sharey=True, layout="constrained")
    extent = (44.5, 2092.5, 0.5, 2048.5)
    if static is not None:
        low, high = np.nanpercentile(static, [3, 97])
        image = axes[0].imshow(static, origin="lower", vmin=low, vmax=high, extent=extent, cmap="viridis")
        fig.colorbar(image, ax=axes[0], shrink=0.75, label="flux [e-/s]")
        axes[0].set_title(f"static scene (median of {len(cube.dark_frames)} dark frames)", fontsize=9)
    else:
        axes[0].text(0.5, 0.5, "static scene built in row blocks\n(not kept in memory)", ha="center", transform=axes[0].transAxes)
    axes[1].imshow(cube.star_mask, origin="lower", extent=extent, cmap="gray_r", vmin=0, vmax=1)
    axes[1].set_title(f"star mask ({cube.star_mask.mean():.1%} of pixels)", fontsize=9)
    if mask_straps:
        straps = np.broadcast_to(cube.strap_mask[None, :], cube.star_mask.shape)
        axes[2].imshow(straps, origin="lower", extent=extent, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        axes[2].set_title("strap mask", fontsize=9)
    for ax in axes:
        ax.set_xlabel("CCD column")
    axes[0].set_ylabel("CCD row")
    fig.suptitle(
        f"Sector {cube.sector} camera {cube.camera} CCD {cube.ccd}: dark frames {[int(i) for i in cube.dark_frames]}",
        fontsize=9,
    )
    return _save(fig, path)


def animate_cube(cube, time, cadenceno, title="", label="flux [e-/s]", step: int = 1, path=None, interval: int = 120):
    """Animate a (ntime, nrow, ncol) cube with the time and cadence in each title.

    Saves a GIF (pillow), or an MP4 when ``path`` ends in .mp4 and ffmpeg is
    available; returns the path when saving, else the matplotlib animation.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    cube = np.asarray(cube)
    frames = range(0, len(cube), max(int(step), 1))
    low, high = np.nanpercentile(cube[::max(len(cube) // 50, 1)], [1, 99])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    image = ax.imshow(cube[0], origin="lower", vmin=low, vmax=high, cmap="inferno")
    fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    ax.set_xlabel("column bin")
    ax.set_ylabel("row bin")
    heading = ax.set_title("")

    def update(index):
        image.set_data(cube[index])
        heading.set_text(f"{title}\nBTJD {time[index]:.3f}  cadence {cadenceno[index]:.0f}")
        return image, heading

    movie = animation.FuncAnimation(fig, update, frames=frames, interval=interval, blit=False)
    if path is None:
        plt.close(fig)
        return movie
    from ._files import atomic_output

    path = str(path)
    if path.endswith(".mp4"):
        if not animation.writers.is_available("ffmpeg"):
            plt.close(fig)
            from .errors import TessBackmlError

            raise TessBackmlError("writing MP4 needs ffmpeg, which is not installed; use a .gif name")
        writer = animation.FFMpegWriter(fps=max(1000 // interval, 1))
    else:
        writer = animation.PillowWriter(fps=max(1000 // interval, 1))
    suffix = path.rsplit(".", 1)[-1]
    with atomic_output(path, None) as temporary:
        movie.save(temporary + "." + suffix, writer=writer)
        import os

        os.replace(temporary + "." + suffix, temporary)
    plt.close(fig)
    return path


def animate_background(cube, data: str = "sl", step: int = 1, file_name=None, save: bool = False):
    """Animate a :class:`~tess_backml.cube.BackgroundCube`'s SL cube (``data="sl"``) or one
    of its maps (``"earth_alt"``, ``"moon_az"``, ...): see its ``animate_data``."""
    from .errors import TessBackmlError

    if data == "sl":
        frames, label = cube.scatter_cube, "SL flux [e-/s]"
    else:
        body, _, key = data.partition("_")
        maps = getattr(cube, f"{body}_maps", None)
        if maps is None or key not in maps:
            raise TessBackmlError(f"data must be 'sl' or one of earth/moon_alt/az/dist, got {data!r} (call get_vector_maps first)")
        frames, label = maps[key], f"{body} {key} [deg]"
    title = f"Sector {cube.sector} camera {cube.camera} CCD {cube.ccd}"
    if save and file_name is None:
        file_name = f"ffi_{data}_bin{cube.img_bin}_sector{cube.sector:03d}_{cube.camera}-{cube.ccd}.gif"
    return animate_cube(frames, cube.time, cube.cadenceno, title=title, label=label, step=step, path=file_name)


def plot_maps(cube, times=3, path=None):
    """Earth and Moon angle maps of a :class:`~tess_backml.cube.BackgroundCube` at a few times."""
    import matplotlib.pyplot as plt

    indices = np.linspace(0, len(cube.time) - 1, times).astype(int)
    fig, axes = plt.subplots(2, times, figsize=(4.2 * times, 7), squeeze=False, layout="constrained")
    for column, index in enumerate(indices):
        for row, body in enumerate(("earth", "moon")):
            data = cube.__dict__[f"{body}_maps"]["alt"][index]
            image = axes[row, column].imshow(data, origin="lower", cmap="viridis")
            fig.colorbar(image, ax=axes[row, column], shrink=0.7, label=f"{body} angle [deg]")
            axes[row, column].set_title(f"{body.capitalize()}, BTJD {cube.time[index]:.2f}", fontsize=9)
            axes[row, column].set_xlabel("column bin", fontsize=8)
            axes[row, column].set_ylabel("row bin", fontsize=8)
    fig.suptitle(f"Angle between each bin's line of sight and the body: sector {cube.sector} camera {cube.camera} CCD {cube.ccd}", fontsize=9)
    return _save(fig, path)


def plot_correction(raw, corrected, path=None):
    """Raw and corrected light curves of the brightest aperture and of background pixels,
    with the scattered-light model (lightkurve TPFs before and after correction)."""
    import matplotlib.pyplot as plt

    flux = np.asarray(raw.flux.value)
    median = np.nanmedian(flux, axis=0)
    aperture = median >= np.nanpercentile(median, 90)
    background = median <= np.nanpercentile(median, 30)
    table = corrected.hdu[1].data[corrected.quality_mask]
    model = np.asarray(table["SL_MODEL"], dtype=float)
    time = raw.time.value
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True, layout="constrained")
    for ax, mask, name in ((axes[0], aperture, "brightest 10% of pixels"), (axes[1], background, "faintest 30% (background)")):
        ax.plot(time, np.nansum(flux[:, mask], axis=1), ".", ms=2, color="0.6", label="raw")
        ax.plot(time, np.nansum(np.asarray(corrected.flux.value)[:, mask], axis=1), ".", ms=2, color="tab:blue", label="corrected")
        ax.plot(time, np.nansum(model[:, mask], axis=1), "-", color="tab:red", lw=1, label="SL model")
        ax.set_ylabel(f"flux [e-/s]\n{name}")
        ax.legend(loc="upper right", fontsize=8)
    axes[1].set_xlabel("BTJD")
    axes[0].set_title(f"Sector {raw.sector} camera {raw.camera} CCD {raw.ccd}: scattered-light correction")
    return _save(fig, path)


def plot_evaluation(table, data, mask, loaded, path=None):
    """Predicted vs true images at three bright held-out times, and residual light curves.

    The arguments are what :func:`tess_backml.model.evaluate_model` returns.
    """
    import matplotlib.pyplot as plt

    from .errors import TessBackmlError

    shape = data.shapes[0]
    size = int(np.prod(shape))
    first_mask = mask[:size].reshape(shape[0], -1)
    times = np.flatnonzero(first_mask.all(axis=1))
    if times.size == 0:
        raise TessBackmlError("no complete held-out frames in the first training set to plot")
    truth = data.target[:size].reshape(shape)
    predicted = loaded.model.predict(data.features[:size]).reshape(shape)
    brightness = truth[times].mean(axis=(1, 2))
    shown = times[np.argsort(brightness)[-3:]][::-1]
    fig, axes = plt.subplots(3, 4, figsize=(15, 10.5))
    for row, t in enumerate(shown):
        vmax = np.percentile(truth[t], 99.5)
        for ax, image, title in ((axes[row, 0], truth[t], "SL cube (truth)"), (axes[row, 1], predicted[t], f"{loaded.meta['kind']} model")):
            im = ax.imshow(image, origin="lower", vmin=0, vmax=vmax, cmap="viridis")
            ax.set_title(f"{title}, BTJD {data.time[t * shape[1] * shape[2]]:.2f}", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
        residual = truth[t] - predicted[t]
        limit = np.percentile(np.abs(residual), 99) or 1
        im = axes[row, 2].imshow(residual, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[row, 2].set_title("residual", fontsize=9)
        fig.colorbar(im, ax=axes[row, 2], fraction=0.046)
        axes[row, 3].axis("off")
    ax = fig.add_subplot(1, 4, 4)
    bt = data.time[:size].reshape(shape[0], -1)[times, 0]
    bins = [(shape[1] // 2, shape[2] // 2), (shape[1] // 8, shape[2] // 8), (7 * shape[1] // 8, 7 * shape[2] // 8)]
    for k, (r, c) in enumerate(bins):
        offset = -k * np.percentile(truth[times][:, r, c], 99) * 1.2
        ax.plot(bt, truth[times, r, c] + offset, "k-", lw=1, label="truth" if k == 0 else None)
        ax.plot(bt, truth[times, r, c] - predicted[times, r, c] + offset, "C3-", lw=1, label="after correction" if k == 0 else None)
    ax.set_xlabel("BTJD")
    ax.set_ylabel("SL, e-/s (offset per bin)")
    ax.set_title("three bins: SL and what the model leaves", fontsize=9)
    ax.legend(fontsize=8)
    row = table[loaded.meta["kind"]]
    fig.suptitle(f"held-out evaluation: {100 * row['explained_variance']:.1f}% of the SL variance explained, RMSE {row['rmse']:.2f} e-/s")
    fig.tight_layout()
    return _save(fig, path)


def plot_forecast(forecast, path=None, columns: int = 2):
    """A :class:`~tess_backml.forecast.Forecast`: one panel per sector, the forecast SL
    and its band against time, the episodes shaded and the stray-light windows marked
    along the bottom; times where the model extrapolates in red."""
    import matplotlib.pyplot as plt

    count = len(forecast.sectors)
    columns = max(1, min(columns, count))
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 2.2 * rows + 0.6), squeeze=False, layout="constrained")
    for ax, one in zip(axes.ravel(), forecast.sectors):
        ax.fill_between(one.time, np.clip(one.sl - one.error, 0, None), one.sl + one.error, color="tab:blue", alpha=0.25,
                        lw=0, label="±1 error")
        ax.plot(one.time, one.sl, color="tab:blue", lw=1, label="forecast SL")
        for episode in one.episodes:
            ax.axvspan(episode["start"], episode["end"], color="tab:orange", alpha=0.2, lw=0)
        top = max(float(np.max(one.sl + one.error, initial=0.0)), 1.0)
        for start, end in one.windows(one.stray_light):
            ax.plot([start, end], [-0.04 * top] * 2, color="k", lw=3, solid_capstyle="butt")
        if one.outside_training.any():
            ax.plot(one.time[one.outside_training], np.full(one.outside_training.sum(), -0.04 * top), "|", color="tab:red")
        ax.axhline(one.threshold, color="tab:orange", lw=0.8, ls="--")
        ax.set_ylim(-0.08 * top, 1.05 * top)
        ax.set_title(f"sector {one.sector}, camera {one.camera}, CCD {one.ccd} (row {one.row:.0f}, column "
                     f"{one.column:.0f}): {100 * one.affected_share:.0f}% affected", fontsize=9)
        ax.set_ylabel("SL [e-/s/pixel]")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("BTJD [d]")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.suptitle(f"Scattered-light forecast at RA {forecast.ra:.4f}, Dec {forecast.dec:.4f}: episodes shaded, "
                 "stray-light windows (Earth or Moon above the sunshade) in black", fontsize=10)
    return _save(fig, path)
