"""The scattered-light forecast: its speed, and how well it foretells real light.

1. Speed: a position in the southern continuous viewing zone forecast over every
   shipped sector (one core), printed beside the time to read the shipped ephemeris
   and the time of one sector's forecast.
2. Real light: for every real series in ../shared/data/real that tess_backml.series
   reads, the forecast at its target's position (RA_OBJ/DEC_OBJ of its header) for
   its sector; its real episodes are the 30-min means above 10% of its own peak.
   Recall: the share of those cadences inside forecast episodes; precision: the share
   of forecast-episode cadences that are real episodes (each series weighted alike).
   Two models: the default (in-sample: these series trained it) and, honestly held
   out, trees of the default's recipe trained without the series' sector.

    OMP_NUM_THREADS=1 python benchmarks/bench_forecast.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tess_backml.forecast import forecast  # noqa: E402

CVZ = (95.0, -65.0)


def speed():
    from tess_backml.geometry.ephemeris.shipped import ShippedEphemeris

    started = time.perf_counter()
    ShippedEphemeris()
    read = time.perf_counter() - started
    forecast(*CVZ, sectors=[1])  # imports, WCS cache, model: paid once per process
    started = time.perf_counter()
    one = forecast(*CVZ, sectors=[2])
    single = time.perf_counter() - started
    started = time.perf_counter()
    every = forecast(*CVZ)
    total = time.perf_counter() - started
    print(f"southern CVZ (RA {CVZ[0]}, Dec {CVZ[1]}): seen in {len(every.sectors)} of the shipped sectors")
    print(f"  forecast over every shipped sector: {total:.2f} s ({total / len(every.sectors):.2f} s per observing sector)")
    print(f"  reading the shipped ephemeris: {read:.3f} s ({total / read:.0f}x less than the forecast)")
    print(f"  one sector: {single:.2f} s; every sector / one: {total / single:.1f}x")
    del one


def target_position(path):
    from astropy.io import fits

    header = fits.getheader(path)
    return float(header["RA_OBJ"]), float(header["DEC_OBJ"])


def scores(series, result):
    """Recall and precision of the forecast's episodes at the series' cadences."""
    one = next((s for s in result.sectors if (s.camera, s.ccd) == (series.camera, series.ccd)), None)
    if one is None:
        return None
    real = series.sl > 0.1 * series.sl.max()
    index = np.clip(np.searchsorted(one.time, series.time), 0, one.time.size - 1)
    predicted = one.in_episode[index]
    recall = float(np.mean(predicted[real])) if real.any() else np.nan
    precision = float(np.mean(real[predicted])) if predicted.any() else np.nan
    return recall, precision


def held_out_model(folder, kept, sector, ephemeris, loaded):
    """Trees of the default recipe trained without ``sector`` (a model file)."""
    from tess_backml.model import save_model
    from tess_backml.model.default import feature_set_of
    from tess_backml.model.real import series_features, training_domain
    from tess_backml.model.safety import fit_trees

    others = [s for _, s in kept if s.sector != sector]
    features = [series_features(s, ephemeris) for s in others]
    targets = [np.clip(s.sl, 0, None) for s in others]
    recipe = loaded.meta["recipe"]
    model = fit_trees(features, targets, np.arange(len(others)), recipe)
    meta = {k: v for k, v in loaded.meta.items() if k not in ("held_out", "features", "feature_set", "kind")}
    meta["domain"] = training_domain(np.vstack(features), np.concatenate(targets))
    return save_model(model, os.path.join(folder, f"without_s{sector}.npz"), meta, feature_set=feature_set_of(meta))


def real_light(data: Path):
    from tess_backml.geometry import load_ephemeris
    from tess_backml.model import load_model
    from tess_backml.model.default import usable_series

    files = sorted(glob.glob(str(data / "real" / "**" / "*.fits"), recursive=True))
    kept, refused = usable_series(files)
    ephemeris = load_ephemeris(str(data / "ephemeris"))
    loaded = load_model("default")
    print(f"\n{len(kept)} real series ({len(refused)} files left out); recall / precision of the episode cadences:")
    print(f"{'series':44s}{'default':>16s}{'held out':>16s}")
    results = {"default": [], "held out": []}
    with tempfile.TemporaryDirectory() as folder:
        models = {}
        for path, series in kept:
            ra, dec = target_position(path)
            if series.sector not in models:
                models[series.sector] = held_out_model(folder, kept, series.sector, ephemeris, loaded)
            row = []
            for name, model in (("default", "default"), ("held out", models[series.sector])):
                try:
                    got = scores(series, forecast(ra, dec, sectors=[series.sector], model=model, ephemeris=ephemeris))
                except Exception as exc:  # noqa: BLE001 - reported, not hidden
                    got = None
                    print(f"  {os.path.basename(path)}: {exc}")
                if got is not None:
                    results[name].append(got)
                row.append("      -       " if got is None else f"{got[0]:7.2f} / {got[1]:4.2f}")
            print(f"{series.name + ' ' + series.kind:44.44s}{row[0]:>16s}{row[1]:>16s}")
    for name, values in results.items():
        recall, precision = np.array(values).T
        print(f"{name}: recall mean {np.nanmean(recall):.2f} (median {np.nanmedian(recall):.2f}, worst "
              f"{np.nanmin(recall):.2f}), precision mean {np.nanmean(precision):.2f} (median "
              f"{np.nanmedian(precision):.2f}), {len(values)} series")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    speed()
    if (Path(args.data) / "real").is_dir():
        real_light(Path(args.data))
    else:
        print(f"no real data in {args.data}: the check on real light is skipped")


if __name__ == "__main__":
    main()
