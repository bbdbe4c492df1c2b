"""How much scattered light a correction leaves, against the time bin of the cube.

Builds the SL cube of the whole simulated Sector 4 (camera 1, CCD 1; ~3 minutes),
bins it in 2 h bins (fixed and adaptive) and 1 h bins and leaves it unbinned, corrects a 12x12 patch at
every frame time, and prints the RMS of the SL left in its background pixels
over the RMS of the true SL there (median over pixels). The simulator's glint
bands have sharp edges that sweep across the CCD near perigee within hours, and
the light switches on within an hour as the Earth rises over the sunshade: this
is what limits the coarser bins.

It then asks whether another reconstruction in time would do better with the
same 2-h cube: on the cube's own bins around the patch it rebuilds every frame
from the 2-h bins with interpolating splines (the corrector's quadratic, cubic,
linear), PCHIP, the bin values held constant, and histopolating splines (the
spline whose averages over each bin's frames equal the bin values), and scores
them against the unbinned cube.

    python benchmarks/bench_time_bins.py
"""

import copy
import tempfile
import time
from pathlib import Path

import numpy as np

from tess_backml.corrector import ScatterLightCorrector
from tess_backml.cube import BackgroundCube
from tess_backml.sources import SimulatedSector


def main():
    started = time.perf_counter()
    sim = SimulatedSector()
    cube = BackgroundCube(4, 1, 1, img_bin=16, source=sim, progress=False)
    cube.get_scatter_light_cube()
    frames = cube.frame_indices
    rows, cols = np.arange(995, 1007), np.arange(1039, 1051)
    background = ~(cube.star_mask | cube.strap_mask[None, :])[np.ix_(rows - 1, cols - 45)]
    truth = np.array([sim.true_scattered_light(i)[np.ix_(rows - 1, cols - 45)] for i in frames])
    print(f"{len(frames)} frames, 12x12 patch at CCD row 995, column 1039 ({background.sum()} background pixels)")
    with tempfile.TemporaryDirectory() as folder:
        for hours, adaptive in ((2.0, False), (2.0, True), (1.0, False), (None, False)):
            binned = copy.deepcopy(cube)
            if hours:
                binned.bin_time_axis(hours, adaptive=adaptive)
            path = binned.save_to_fits(str(Path(folder) / f"cube_{hours}_{adaptive}.fits"), binned=bool(hours))
            corrector = ScatterLightCorrector(4, 1, 1, fname=path)
            model, _ = corrector.evaluate_scatterlight_model(rows, cols, sim.time[frames])
            usable = np.isfinite(model).all(axis=(1, 2))
            before = np.sqrt(np.mean(truth[usable][:, background] ** 2, axis=0))
            after = np.sqrt(np.mean((truth - model)[usable][:, background] ** 2, axis=0))
            label = (f"{hours:g} h bins" + (", adaptive" if adaptive else "")) if hours else "unbinned (30 min)"
            print(f"  {label:22s}: {100 * np.median(after / before):5.1f}% of the SL left ({usable.sum()} frames corrected, "
                  f"{len(binned.time)} time bins)")
    print("other reconstructions of the 2-h cube, on its bins around the patch, against the unbinned cube:")
    binned = copy.deepcopy(cube)
    binned.bin_time_axis(2.0)
    for name, left in time_reconstructions(cube, binned, rows, cols).items():
        print(f"  {name:34s}: {100 * left:5.1f}% of the SL left")
    print(f"done in {time.perf_counter() - started:.0f} s")


def time_reconstructions(cube, binned, rows, cols, halo=4):
    """Fraction of the SL left (median over bins) by each way of rebuilding the
    frames of ``cube`` from the time bins of ``binned``, per orbit."""
    from scipy.interpolate import BSpline, PchipInterpolator, make_interp_spline

    rows_bins = slice(max((rows[0] - 1) // cube.img_bin - halo, 0), (rows[-1] - 1) // cube.img_bin + halo + 1)
    cols_bins = slice(max((cols[0] - 45) // cube.img_bin - halo, 0), (cols[-1] - 45) // cube.img_bin + halo + 1)
    frames = cube.scatter_cube[:, rows_bins, cols_bins].reshape(len(cube.time), -1).astype(float)
    bins = binned.scatter_cube[:, rows_bins, cols_bins].reshape(len(binned.time), -1).astype(float)
    members = np.repeat(np.arange(len(binned.time)), binned.frames_per_bin)  # bin of each frame

    def histopolation(order):
        def rebuild(t, centres, values, member, counts):
            knots = make_interp_spline(centres, values[:, 0], k=order).t
            basis = BSpline.design_matrix(t, knots, order, extrapolate=True).toarray()
            averaging = np.zeros((len(centres), basis.shape[1]))
            np.add.at(averaging, member, basis)
            averaging /= counts[:, None]
            return basis @ np.linalg.solve(averaging, values)

        return rebuild

    methods = {
        "quadratic spline (the corrector)": lambda t, c, v, m, n: make_interp_spline(c, v, k=2)(t),
        "cubic spline": lambda t, c, v, m, n: make_interp_spline(c, v, k=3)(t),
        "linear": lambda t, c, v, m, n: make_interp_spline(c, v, k=1)(t),
        "PCHIP": lambda t, c, v, m, n: PchipInterpolator(c, v)(t),
        "bin value held": lambda t, c, v, m, n: v[m],
        "histopolation, linear": histopolation(1),
        "histopolation, quadratic": histopolation(2),
        "histopolation, cubic": histopolation(3),
    }
    orbit = np.r_[0, np.cumsum(np.diff(cube.time) > 0.5)]
    bin_orbit = orbit[np.r_[0, np.cumsum(binned.frames_per_bin)[:-1]]]
    before = np.sqrt(np.mean(frames**2, axis=0))
    left = {}
    for name, rebuild in methods.items():
        rebuilt = np.empty_like(frames)
        for k in np.unique(orbit):
            mine, my_bins = orbit == k, bin_orbit == k
            member = members[mine] - members[mine].min()
            counts = binned.frames_per_bin[my_bins]
            rebuilt[mine] = rebuild(cube.time[mine], binned.time[my_bins], bins[my_bins], member, counts)
        left[name] = float(np.median(np.sqrt(np.mean((frames - rebuilt) ** 2, axis=0)) / before))
    return left


if __name__ == "__main__":
    main()
