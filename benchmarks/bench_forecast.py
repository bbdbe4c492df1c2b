"""The scattered-light forecast: its speed, and how well it foretells real light.

1. Speed: a position in the southern continuous viewing zone forecast over every
   shipped sector (one core), printed beside the time to read the shipped ephemeris
   and the time of one sector's forecast.
2. Real light: for every real series in ../shared/data/real that tess_backml.series
   reads, the forecast at its target's position (RA_OBJ/DEC_OBJ of its header) for
   its sector; its real episodes are the 30-min means above 10% of its own peak.
   Recall: the share of those cadences inside forecast episodes; precision: the share
   of forecast-episode cadences that are real episodes (each series weighted alike).
   The default model is in-sample there (these series trained it); held out, each
   series is forecast by trees of the default's recipe trained without its sector.
3. The episode rule (threshold share, band in errors, hours of padding before and
   after): chosen from a grid as the rule that covers every training series (90% of
   its real episode cadences inside forecast episodes) with the best mean precision,
   or, if none covers them all, the best precision among those that cover the most.
   The nested figure makes that choice for each sector on the other sectors' series,
   each forecast by trees trained without both its own sector and the held-out one
   (so nothing of the held-out sector chose its rule); the choice on every series'
   held-out forecast is what tess_backml.forecast ships. About 40 minutes on 2 cores
   (210 tree fits for the pairs of sectors).

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


#: The episode rules the choice looks at: (share of the peak, band in errors, (hours of
#: padding before, after)); after an episode a tail of faint light lingers.
RULES = [(q, k, (lead, tail)) for q in (0.02, 0.05, 0.1, 0.2) for k in (0, 0.5, 1, 2)
         for lead in (0, 3, 6) for tail in (0, 3, 6, 12, 24)]
#: A series is covered when this share of its real episode cadences is inside forecast episodes.
COVERED = 0.9


def scores(series, one, rule=None):
    """Recall and precision of the episodes of forecast ``one`` (a SectorForecast) at the
    series' cadences; ``rule`` (share, band, padding) re-cuts them (default: as forecast)."""
    from tess_backml.forecast import episode_mask, episodes

    if rule is None:
        inside = one.in_episode
    else:
        share, sigmas, hours = rule
        cut = episodes(one.time, one.sl, share * one.peak, error=one.error, sigmas=sigmas, padding_hours=hours)
        inside = episode_mask(one.time, cut)
    real = series.sl > 0.1 * series.sl.max()
    # the forecast cadence nearest each of the series' (within one step: beyond the
    # forecast's span a cadence is not forecast, so not inside an episode)
    step = float(np.median(np.diff(one.time)))
    nearest = np.clip(np.searchsorted(one.time, series.time - step / 2), 0, one.time.size - 1)
    predicted = inside[nearest] & (np.abs(one.time[nearest] - series.time) <= step)
    recall = float(np.mean(predicted[real])) if real.any() else np.nan
    precision = float(np.mean(real[predicted])) if predicted.any() else 0.0
    return recall, precision


def choose_rule(pairs):
    """The rule that covers every series of ``pairs`` ((series, forecast) of the training
    folds) with the best mean precision; if none covers them all, the best precision
    among the rules that cover the most. Returns the rule and every rule's figures."""
    table = {rule: np.array([scores(series, one, rule) for series, one in pairs]) for rule in RULES}
    covered = {rule: int(np.sum(values[:, 0] >= COVERED)) for rule, values in table.items()}
    most = max(covered.values())
    return max((r for r in RULES if covered[r] == most), key=lambda r: np.mean(table[r][:, 1])), table


def held_out_model(folder, kept, sectors, ephemeris, loaded, cache):
    """Trees of the default recipe trained without the series of ``sectors`` (a model
    file, kept in ``cache`` by the set of sectors)."""
    from tess_backml.model import save_model
    from tess_backml.model.default import feature_set_of
    from tess_backml.model.real import series_features, training_domain
    from tess_backml.model.safety import fit_trees

    key = frozenset(sectors)
    if key not in cache:
        others = [s for _, s in kept if s.sector not in key]
        features = [series_features(s, ephemeris) for s in others]
        targets = [np.clip(s.sl, 0, None) for s in others]
        model = fit_trees(features, targets, np.arange(len(others)), loaded.meta["recipe"])
        meta = {k: v for k, v in loaded.meta.items() if k not in ("held_out", "features", "feature_set", "kind")}
        meta["domain"] = training_domain(np.vstack(features), np.concatenate(targets))
        name = os.path.join(folder, "without_s" + "_".join(map(str, sorted(key))) + ".npz")
        cache[key] = save_model(model, name, meta, feature_set=feature_set_of(meta))
    return cache[key]


def forecast_at(path, series, model, ephemeris):
    """The SectorForecast of ``model`` at the series' target, or None if its CCD does not see it."""
    result = forecast(*target_position(path), sectors=[series.sector], model=model, ephemeris=ephemeris)
    return next((s for s in result.sectors if (s.camera, s.ccd) == (series.camera, series.ccd)), None)


def held_out_pairs(kept, ephemeris, loaded, folder, cache, without=()):
    """(index, series, forecast) of every series outside the sectors ``without``, each
    forecast by trees trained without its own sector and those."""
    out = []
    for index, (path, series) in enumerate(kept):
        if series.sector in without:
            continue
        model = held_out_model(folder, kept, {series.sector, *without}, ephemeris, loaded, cache)
        one = forecast_at(path, series, model, ephemeris)
        if one is not None:
            out.append((index, series, one))
    return out


def nested_rule_figures(kept, held, ephemeris, loaded, folder, cache):
    """Held-out (recall, precision) per series of ``held`` (from :func:`held_out_pairs`):
    for each sector, the rule chosen on the other sectors' series, each forecast by
    trees trained without both its sector and the held-out one."""
    figures = {}
    for sector in sorted({s.sector for _, s, _ in held}):
        inner = held_out_pairs(kept, ephemeris, loaded, folder, cache, without=(sector,))
        rule, _ = choose_rule([(s, one) for _, s, one in inner])
        for index, series, one in held:
            if series.sector == sector:
                figures[index] = scores(series, one, rule)
    return np.array([figures[index] for index, _, _ in held])


def real_light(data: Path):
    from tess_backml import forecast as shipped
    from tess_backml.geometry import load_ephemeris
    from tess_backml.model import load_model
    from tess_backml.model.default import usable_series

    files = sorted(glob.glob(str(data / "real" / "**" / "*.fits"), recursive=True))
    kept, refused = usable_series(files)
    ephemeris = load_ephemeris(str(data / "ephemeris"))
    loaded = load_model("default")
    shipped_rule = (shipped.RELATIVE_THRESHOLD, shipped.BAND_SIGMAS, tuple(shipped.EPISODE_PADDING_HOURS))
    print(f"\n{len(kept)} real series ({len(refused)} files left out); recall / precision of the episode cadences:")
    print(f"{'series':44s}{'default':>16s}{'held out':>16s}{'nested':>16s}")
    with tempfile.TemporaryDirectory() as folder:
        cache = {}
        held = held_out_pairs(kept, ephemeris, loaded, folder, cache)
        default = [scores(s, forecast_at(kept[i][0], s, "default", ephemeris)) for i, s, _ in held]
        plain = [scores(s, one) for _, s, one in held]
        nested = nested_rule_figures(kept, held, ephemeris, loaded, folder, cache)
    for (_, series, _), *row in zip(held, default, plain, nested):
        print(f"{series.name + ' ' + series.kind:44.44s}" + "".join(f"{r:7.2f} / {p:4.2f}".rjust(16) for r, p in row))
    everything = np.mean([np.mean(s.sl > 0.1 * s.sl.max()) for _, s, _ in held])
    chosen, _ = choose_rule([(s, one) for _, s, one in held])
    print(f"the shipped rule: {shipped_rule} (share of the peak, band in errors, hours before and after)")
    report("default model (in-sample), shipped rule", np.array(default))
    report("held out (trees without the series' sector), shipped rule", np.array(plain))
    report("nested (trees and rule chosen without the series' sector)", nested)
    print(f"  flagging every cadence: recall 1.00, precision {everything:.2f}")
    print(f"  the choice on every series' held-out forecast: {chosen} (shipped: {shipped_rule})")


def report(name, values):
    recall, precision = values.T
    print(f"  {name}: recall mean {np.nanmean(recall):.2f} (median {np.nanmedian(recall):.2f}, worst "
          f"{np.nanmin(recall):.2f}, {np.sum(recall >= COVERED)} of {recall.size} series at 0.9 or more), "
          f"precision mean {np.nanmean(precision):.2f} (median {np.nanmedian(precision):.2f})")


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
