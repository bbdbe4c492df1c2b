"""Does the simulator's light change on real time scales? The same statistics for the
shared real series and for the simulator, side by side.

* 2-h miss: the fraction of a series' SL (RMS) that 2-hour bin means plus the
  corrector's quadratic spline through them fail to follow (each series a 1x1 cube;
  series relative to their 2nd percentile, one-cadence spikes removed by a 3-point
  median);
* amplitude: each series' peak SL;
* rise time of its episodes: from 10% to 90% of an episode's peak (episodes: runs
  above 10% of the series' peak).

Real: the SPOC light curves (SAP_BKG per pixel, in 30-min means: the FFI cadence of
the early sectors, what a cube sees) and the S12 TESScut in ../shared/data/real. Simulator: 4x4 places on each of the three CCDs of Sector 4
camera 1 with the most light, every frame (the light model on its nodes).

    python benchmarks/bench_realism.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tess_backml.corrector.operator import CubeInterpolator, time_layout  # noqa: E402
from tess_backml.cube.timebins import adaptive_bin_starts, bin_in_time, time_bin_starts  # noqa: E402
from tess_backml.series import dark_level  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_real import shared_series  # noqa: E402


def prepared(time, values):
    """Relative to the 2nd percentile, one-cadence spikes removed by a 3-point median."""
    values = median_filter(np.asarray(values, float), 3, mode="nearest")
    return np.asarray(time, float), values - dark_level(values)


def binned_miss(time, sl, bin_hours=2.0, starts=None):
    """RMS of what bin means plus the corrector's spline miss, over the RMS of the SL."""
    starts = time_bin_starts(time, bin_hours) if starts is None else starts
    cube = sl[:, None, None].astype(np.float32)
    binned = bin_in_time(starts, time, np.arange(time.size), cube, np.zeros_like(cube))
    half_bin, gaps = time_layout(binned["time"], bin_hours, "series")
    operator = CubeInterpolator(binned["time"], binned["cube"], binned["cube_err"], np.array([1000.0]),
                                np.array([1000.0]), half_bin, gaps, (time.min() - 1, time.max() + 1), 0)
    followed, _, _ = operator.evaluate(np.array([1000.0]), np.array([1000.0]), time)
    followed = np.nan_to_num(followed[:, 0, 0].astype(float))
    return float(np.sqrt(np.mean((sl - followed) ** 2)) / max(np.sqrt(np.mean(sl**2)), 1e-12))


def rise_times(time, sl):
    """10%-90% rise times (hours) of the series' episodes."""
    above = sl > 0.1 * sl.max()
    edges = np.flatnonzero(np.diff(np.r_[0, above.astype(int), 0]))
    rises = []
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start < 3 or np.any(np.diff(time[start:stop]) > 0.5):
            continue
        peak = start + int(np.argmax(sl[start:stop]))
        top = start + int(np.flatnonzero(sl[start : peak + 1] >= 0.9 * sl[peak])[0])
        bottom = np.flatnonzero(sl[start:top] <= 0.1 * sl[peak])
        if bottom.size and start > 0:
            rises.append((time[top] - time[start + bottom[-1]]) * 24)
        elif start > 0:  # the episode rises from below the series' 10% threshold
            rises.append((time[top] - time[start - 1]) * 24)
    return rises


def real_series(data: Path):
    # 30-min means: the FFI cadence of the early sectors, what a cube sees; with their errors
    return [(series.name, *prepared(series.time, series.sl + series.level), series.error) for series in shared_series(data)]


def simulated_series(sector=4, camera=1, nccd=3):
    from tess_backml.sources import SimulatedSector

    out = []
    sims = [SimulatedSector(sector, camera, ccd) for ccd in (1, 2, 3, 4)]
    frames = {ccd: np.flatnonzero((s.quality & 4) == 0) for ccd, s in zip((1, 2, 3, 4), sims)}
    lights = {}
    for ccd, sim in zip((1, 2, 3, 4), sims):
        lights[ccd] = np.array([sim.light_model.node_light(i) for i in frames[ccd]])
    brightest = sorted(lights, key=lambda ccd: -lights[ccd].max())[:nccd]
    for ccd in brightest:
        sim = sims[ccd - 1]
        for i in (8, 24, 40, 56):
            for j in (8, 24, 40, 56):
                out.append((f"sim S{sector} {camera}-{ccd} node ({i},{j})",
                            *prepared(sim.time[frames[ccd]], lights[ccd][:, i, j]), None))
    return out


def summary(rows):
    misses = np.array([binned_miss(t, s) for _, t, s, _ in rows])
    peaks = np.array([s.max() for _, t, s, _ in rows])
    rises = np.concatenate([rise_times(t, s) for _, t, s, _ in rows] or [[]])
    return misses, peaks, rises


def adaptive(rows, bin_hours=2.0):
    """The 2-h miss with adaptive bins, and their number over the fixed bins' (per series)."""
    misses, factors = [], []
    for _, times, sl, error in rows:
        starts = adaptive_bin_starts(times, sl, error, bin_hours)
        misses.append(binned_miss(times, sl, bin_hours, starts))
        factors.append(len(starts) / len(time_bin_starts(times, bin_hours)))
    return np.array(misses), np.array(factors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    started = time.perf_counter()
    real = real_series(Path(args.data))
    simulated = simulated_series()
    print(f"{len(real)} real series, {len(simulated)} simulated places ({time.perf_counter() - started:.0f} s)\n")
    print(f"{'':28s}{'real':>14s}{'simulator':>14s}{'ratio':>10s}")
    results = {name: summary(rows) for name, rows in (("real", real), ("sim", simulated))}
    (rm, rp, rr), (sm, sp, sr) = results["real"], results["sim"]
    for label, a, b in (
        ("2-h miss, median", np.median(rm), np.median(sm)),
        ("2-h miss, 90th percentile", np.percentile(rm, 90), np.percentile(sm, 90)),
        ("2-h miss, worst", rm.max(), sm.max()),
        ("peak SL e-/s, median", np.median(rp), np.median(sp)),
        ("peak SL e-/s, max", rp.max(), sp.max()),
        ("rise time h, median", np.median(rr) if rr.size else np.nan, np.median(sr) if sr.size else np.nan),
        ("rise time h, 10th percentile", np.percentile(rr, 10) if rr.size else np.nan, np.percentile(sr, 10) if sr.size else np.nan),
    ):
        print(f"{label:28s}{a:14.3g}{b:14.3g}{b / a if a else np.nan:10.2f}")
    median_ratio, tail_ratio = np.median(sm) / np.median(rm), np.percentile(sm, 90) / np.percentile(rm, 90)
    verdict = "within" if 0.5 <= median_ratio <= 2 and 1 / 3 <= tail_ratio <= 3 else "NOT within"
    print(f"simulator's 2-h miss {verdict} 2x (median: {median_ratio:.2f}x) / 3x (90th percentile: {tail_ratio:.2f}x) of the real one")
    worst = int(np.argmax(rm))
    print(f"\nworst real series: {real[worst][0]} ({100 * rm[worst]:.1f}% missed with 2-h bins)")
    am, factor = adaptive(real)
    worst = int(np.argmax(am))
    print(f"adaptive 2-h bins on the real series (each a 1x1 cube): miss median {100 * np.median(am):.2f}%, "
          f"90th percentile {100 * np.percentile(am, 90):.2f}%, worst {100 * am.max():.2f}% ({real[worst][0]}); "
          f"bins {np.median(factor):.2f}x the fixed ones (median), {factor.max():.2f}x at most")
    print(f"{rr.size} real and {sr.size} simulated episodes; done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
