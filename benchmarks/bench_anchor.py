"""Choosing the anchored recipe: the analog recipes with their neighbours found once per
series and orbit (as ``model.safety.choose_anchor`` does) against each recipe finding
its own (the reference), on 38 synthetic series of 1,200 cadences in two orbits, the
size of the real training set.

    python benchmarks/bench_anchor.py
"""

import time

import numpy as np

from tess_backml.model.anchor import ANALOG_CANDIDATES, cross_orbit
from tess_backml.model.real import REAL_FEATURE_NAMES


def synthetic_series(rng, cadences=1200):
    """(model, truth, features, time) of one series: a track in the Earth's geometry
    repeated each orbit, light up to 4x the model's along it."""
    time = np.r_[np.linspace(0, 12, cadences // 2), np.linspace(13.5, 25.5, cadences // 2)]
    phase = time % 13.5
    model = 50 * np.exp(-((phase - rng.uniform(3, 9)) ** 2) / 8)
    truth = model * (1 + 3 * phase / 12) + rng.normal(0, 1, time.size)
    features = rng.normal(0, 0.01, (time.size, len(REAL_FEATURE_NAMES)))
    features[:, :8] += np.c_[[np.cos(phase / (k + 2)) for k in range(8)]].T
    return model, truth, features, time


def choose_all(series, shared: bool) -> float:
    """Seconds to fit every analog recipe to every series, each orbit on the other."""
    kept = [{} if shared else None for _ in series]
    start = time.perf_counter()
    for recipe in ANALOG_CANDIDATES:
        for (model, truth, features, times), found in zip(series, kept):
            cross_orbit(model, truth, features, times, recipe, neighbours=found)
    return time.perf_counter() - start


def main():
    rng = np.random.default_rng(0)
    series = [synthetic_series(rng) for _ in range(38)]
    choose_all(series[:2], shared=True)  # imports paid once
    reference = choose_all(series, shared=False)
    shared = choose_all(series, shared=True)
    print(f"{len(ANALOG_CANDIDATES)} analog recipes x {len(series)} series:")
    print(f"  each recipe its own neighbours (reference): {reference:.2f} s")
    print(f"  neighbours found once per series and orbit: {shared:.2f} s ({reference / shared:.1f}x faster)")


if __name__ == "__main__":
    main()
