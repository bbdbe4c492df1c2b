"""Sectors at 600-s and 200-s FFI cadence (Sectors 27-55 and 56 on) end to end: the
simulator, the cube, time binning and the corrector."""

import numpy as np
import pytest

from tess_backml.corrector import ScatterLightCorrector
from tess_backml.cube import BackgroundCube
from tess_backml.demo import frames_before_first_perigee
from tess_backml.sources import SimulatedSector


@pytest.mark.slow
@pytest.mark.parametrize("cadence_s", [600, 200])
def test_short_cadence_sectors_end_to_end(cadence_s, tmp_path):
    sim = SimulatedSector(4, 1, 1, cadence_s=cadence_s)
    span_days = sim.time[-1] - sim.time[0]
    assert sim.nframes == pytest.approx(span_days * 86400 / cadence_s, rel=0.1)  # ~11,000 frames at 200 s
    # the 4 hours before the first perigee: the brightest, fastest light of the first orbit
    # (with 60 frames spread over the sector, among which the dark frames are found)
    window = frames_before_first_perigee(sim, nframes=int(4 * 3600 / cadence_s))
    spread = np.arange(0, sim.nframes, sim.nframes // 60)
    cube = BackgroundCube(4, 1, 1, img_bin=64, source=sim, progress=False)
    cube.get_scatter_light_cube(frames=np.union1d(window, spread))
    frames_per_bin = 2 * 3600 / cadence_s
    cube.bin_time_axis(2.0)
    assert cube.frames_per_bin.max() == pytest.approx(frames_per_bin, abs=1)
    cube_file = cube.save_to_fits(str(tmp_path / "cube.fits"))

    corrector = ScatterLightCorrector(4, 1, 1, fname=cube_file)
    rows = np.array([700.0, 1300.0])
    cols = np.array([600.0, 1500.0])
    sl, error = corrector.evaluate_scatterlight_model(rows, cols, sim.time[window])
    truth = np.array([sim.true_scattered_light(i)[np.ix_(rows.astype(int) - 1, cols.astype(int) - 45)] for i in window])
    assert np.isfinite(sl).all() and np.all(error > 0)
    assert truth.max() > 100  # lit
    left = np.sqrt(np.mean((sl - truth) ** 2)) / np.sqrt(np.mean(truth**2))
    print(f"{cadence_s}-s cadence: {100 * left:.1f}% of the SL left")
    assert left < 0.15  # 2-h bins of 64-px bins follow the light at these cadences too
