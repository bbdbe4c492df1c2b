"""How much scattered light a correction leaves, against the time bin of the cube.

Builds the SL cube of the whole simulated Sector 4 (camera 1, CCD 1; ~3 minutes),
bins it in 2 h and 1 h bins and leaves it unbinned, corrects a 12x12 patch at
every frame time, and prints the RMS of the SL left in its background pixels
over the RMS of the true SL there (median over pixels). The simulator's glint
bands have sharp edges that sweep across the CCD near perigee within hours: this
is what limits the coarser bins.

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
        for hours in (2.0, 1.0, None):
            binned = copy.deepcopy(cube)
            if hours:
                binned.bin_time_axis(hours)
            path = binned.save_to_fits(str(Path(folder) / f"cube_{hours}.fits"), binned=bool(hours))
            corrector = ScatterLightCorrector(4, 1, 1, fname=path)
            model, _ = corrector.evaluate_scatterlight_model(rows, cols, sim.time[frames])
            usable = np.isfinite(model).all(axis=(1, 2))
            before = np.sqrt(np.mean(truth[usable][:, background] ** 2, axis=0))
            after = np.sqrt(np.mean((truth - model)[usable][:, background] ** 2, axis=0))
            label = f"{hours:g} h bins" if hours else "unbinned (30 min)"
            print(f"  {label:18s}: {100 * np.median(after / before):5.1f}% of the SL left ({usable.sum()} frames corrected)")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
