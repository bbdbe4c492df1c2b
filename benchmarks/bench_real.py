"""How well models follow REAL scattered light: leave one series out over the shared
real series (SPOC light curves' SAP_BKG and the S12 TESScut, in 30-min bins).

Per series and as medians: the SL a correction leaves (RMS of truth - model over RMS
of truth; 1 = nothing removed, above 1 = worse than nothing) and the explained
variance, for no correction, the baseline and the model trained on the simulator
alone (the demo's recipe on a small simulated training set), and gradient-boosted
trees trained on the other real series (feature set real-3, the default model's recipe);
then the spread of (truth - model) / error of the held-out trees, with the error model
and the training domain of the other series (cadences outside it are flagged, and their
error grows: see tess_backml.model.real.model_error).

    python benchmarks/bench_real.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tess_backml.geometry import load_ephemeris  # noqa: E402
from tess_backml.model import GradientBoostingModel, load_model, predict_cube  # noqa: E402
from tess_backml.model.real import (  # noqa: E402
    REAL_TREES,
    error_model,
    explained_variance,
    leave_one_out,
    model_error,
    outside_domain,
    series_features,
    sl_left,
    training_domain,
)
from tess_backml.series import read_series  # noqa: E402


def shared_series(data: Path):
    files = sorted(glob.glob(str(data / "real" / "lightcurves" / "*.fits")))
    files += sorted(glob.glob(str(data / "real" / "lightcurves" / "eleanor-reference" / "*.fits")))
    files.append(str(data / "real" / "tess-s0012-2-1_tesscut_1x1.fits"))
    return [read_series(f).binned(30.0) for f in files if os.path.isfile(f)]


def simulation_model(folder):
    """The main model and its ridge baseline, trained on the simulated Sector 4 (camera 1,
    CCD 1, 32-px bins, every 8th frame, both orbits)."""
    from tess_backml import BackgroundCube
    from tess_backml.model import save_model, train_model

    cube = BackgroundCube(4, 1, 1, img_bin=32, source="sim", progress=False)
    cube.get_scatter_light_cube(frames=slice(None, None, 8))
    cube.bin_time_axis(2.0)
    cube.get_vector_maps()
    npz = cube.save_to_npz(os.path.join(folder, cube.default_name("npz")), save_maps=True)
    model, baseline, meta = train_model([npz], kind="nn", train_orbit=None, progress=False)
    return load_model(save_model(model, os.path.join(folder, "sim_model.npz"), meta, baseline=baseline))


def on_series(estimator, series, ephemeris):
    flux = predict_cube(estimator, series.sector, series.camera, series.ccd, [series.row], [series.column],
                        series.time, ephemeris=ephemeris)
    return np.clip(flux[:, 0, 0], 0, None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "real").is_dir():
        sys.exit(f"bench_real: no real data in {data} (give --data)")
    ephemeris = load_ephemeris(str(data / "ephemeris"))
    started = time.perf_counter()
    series = shared_series(data)
    features = [series_features(s, ephemeris) for s in series]
    truths = [s.sl for s in series]
    print(f"{len(series)} real series, {sum(t.size for t in truths)} 30-min bins ({time.perf_counter() - started:.0f} s)")

    with tempfile.TemporaryDirectory() as folder:
        loaded = simulation_model(folder)
    held_out = leave_one_out(features, truths, lambda: GradientBoostingModel(seed=0, **REAL_TREES))
    methods = {
        "none": [np.zeros_like(t) for t in truths],
        "baseline": [on_series(loaded.baseline, s, ephemeris) for s in series],
        "simulation": [on_series(loaded.model, s, ephemeris) for s in series],
        "real trees": held_out,
    }
    print(f"\n{'series':34s}" + "".join(f"{name:>22s}" for name in methods))
    print(f"{'':34s}" + "".join(f"{'left':>12s}{'explained':>10s}" for _ in methods))
    scores = {name: [] for name in methods}
    for k, s in enumerate(series):
        row = f"{s.name + ' ' + s.kind:34.34s}"
        for name, predictions in methods.items():
            left, explained = sl_left(truths[k], predictions[k]), explained_variance(truths[k], predictions[k])
            scores[name].append((left, explained))
            row += f"{left:12.2f}{explained:10.2f}"
        print(row)
    print(f"{'median':34s}" + "".join(f"{np.median([a for a, _ in v]):12.2f}{np.median([b for _, b in v]):10.2f}"
                                      for v in scores.values()))
    worst = {name: max(a for a, _ in v) for name, v in scores.items()}
    print("worst SL left: " + ", ".join(f"{name} {value:.2f}" for name, value in worst.items()))
    above = sum(a > 1.0 for a, _ in scores["real trees"])
    print(f"real trees: {above} of {len(series)} series worse than no correction")

    spreads, flagged = [], []
    for k in range(len(series)):
        train = [j for j in range(len(series)) if j != k]
        truth_train = np.concatenate([truths[j] for j in train])
        meta = {
            "error_model": error_model([truths[j] for j in train], [held_out[j] for j in train]),
            "domain": training_domain(np.vstack([features[j] for j in train]), truth_train),
        }
        outside = outside_domain(meta["domain"], features[k])
        error = model_error(meta, held_out[k], outside)
        spreads.append(np.std((truths[k] - held_out[k]) / error))
        if outside.any():
            flagged.append(f"{series[k].name} {outside.sum()}")
    print(f"spread of (truth - model)/error, held out: median {np.median(spreads):.2f} "
          f"(range {np.min(spreads):.2f}-{np.max(spreads):.2f}; honest errors give 1)")
    print("cadences outside the training domain (flagged): " + (", ".join(flagged) or "none"))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
