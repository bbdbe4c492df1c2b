"""The scattered-light forecast: its speed, and how well it foretells real light.

1. Speed: a position in the southern continuous viewing zone forecast over every
   shipped sector (one core), printed beside the time to read the shipped ephemeris
   and the time of one sector's forecast.
2. Real light: for every real series in ../shared/data/real that tess_backml.series
   reads, the forecast at its target's position (RA_OBJ/DEC_OBJ of its header) for
   its sector; its real episodes are the 30-min means above 10% of its own peak.
   Recall: the share of those cadences inside forecast episodes; precision: the share
   of forecast-episode cadences that are real episodes (each series weighted alike).
   The default model is in-sample there (these series trained it). Held out, each
   series is forecast by trees of the recipe, with the error model, that the default's
   own choice (tess_backml.model.safety.choose_trees) makes without its sector, the
   trees trained without it too: the forecast's errors and tree size were chosen
   without the held-out sector, as well as its trees.
3. The episode rule (threshold share, band in errors, hours of padding before and
   after): chosen from a grid as the rule that covers every training series (90% of
   its real episode cadences inside forecast episodes) with the best mean precision,
   or, if none covers them all, the best precision among those that cover the most.
   The nested figure makes that choice for each sector on the other sectors' series,
   each forecast by that recipe's trees trained without both its own sector and the
   held-out one (so nothing of the held-out sector chose its rule, its recipe or its
   errors); the choice on every series' held-out forecast by the default's recipe is
   what tess_backml.forecast ships. About 55 minutes on 2 cores (one recipe choice per
   sector, two at a time; the features of each series computed once).

    OMP_NUM_THREADS=1 python benchmarks/bench_forecast.py [--data ../shared/data] [--jobs 2]
"""

from __future__ import annotations

import argparse
import glob
import sys
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


def forecast_at(path, series, model, ephemeris):
    """The SectorForecast of ``model`` at the series' target, or None if its CCD does not see it."""
    result = forecast(*target_position(path), sectors=[series.sector], model=model, ephemeris=ephemeris)
    return next((s for s in result.sectors if (s.camera, s.ccd) == (series.camera, series.ccd)), None)


class HeldOut:
    """The real series and forecasts of them by trees trained without some sectors.

    Each series' features (at its cadences, and at its forecast's place over its sector)
    are computed once; trees are fitted once per recipe and set of sectors left out. A
    forecast here is :func:`tess_backml.forecast.sector_forecast`'s prediction, error and
    peak: the same trees at the same cadences (:func:`real_light` prints how far apart
    the two are for the default model)."""

    def __init__(self, kept, ephemeris):
        from tess_backml.forecast import FORECAST_MINUTES, forecast_stop, observing
        from tess_backml.geometry import sector_time_range
        from tess_backml.model.real import place_features, series_features

        self.series = [s for _, s in kept]
        self.features = [series_features(s, ephemeris) for s in self.series]
        self.targets = [np.clip(s.sl, 0, None) for s in self.series]
        self.sectors = np.array([s.sector for s in self.series])
        self.places, self.trees = {}, {}
        for index, (path, series) in enumerate(kept):
            found = [p for p in observing(*target_position(path), [series.sector]) if p[1:3] == (series.camera, series.ccd)]
            if found:  # else its CCD does not see its target: nothing to forecast
                start, end = sector_time_range(series.sector)
                time = np.arange(start, forecast_stop(end, ephemeris), FORECAST_MINUTES / 1440.0)
                self.places[index] = (time, end, place_features(*found[0], time, ephemeris))

    def trees_without(self, recipe, sectors):
        """(trees of ``recipe``, their domain) trained on every series outside ``sectors``."""
        from tess_backml.model.real import training_domain
        from tess_backml.model.safety import fit_trees, recipe_key

        key = (recipe_key(recipe), frozenset(sectors))
        if key not in self.trees:
            members = [k for k, sector in enumerate(self.sectors) if sector not in key[1]]
            domain = training_domain(np.vstack([self.features[k] for k in members]),
                                     np.concatenate([self.targets[k] for k in members]))
            self.trees[key] = (fit_trees(self.features, self.targets, members, recipe), domain)
        return self.trees[key]

    def forecast(self, index, recipe, error_model, without=()):
        """The forecast of series ``index`` (time, sl, error, peak) by trees of ``recipe``
        trained without the sectors ``without``, with ``error_model``'s errors."""
        from types import SimpleNamespace

        from tess_backml.model.real import model_error, outside_domain
        from tess_backml.model.safety import predict_trees

        time, end, features = self.places[index]
        trees, domain = self.trees_without(recipe, without)
        outside = outside_domain(domain, features)
        sl = predict_trees(trees, features, recipe, outside).astype(float)
        error = model_error({"error_model": error_model, "domain": domain}, sl, outside).astype(float)
        return SimpleNamespace(time=time, sl=sl, error=error, peak=float(np.max(sl[time <= end], initial=0.0)))


def fold_choice(features, targets, sectors, sector):
    """The recipe and error model chosen without ``sector`` (as :func:`train_safe` does)."""
    from tess_backml.model.safety import choose_trees

    members = np.flatnonzero(sectors != sector)
    chosen = choose_trees([features[k] for k in members], [targets[k] for k in members], sectors[members])
    return chosen["recipe"], chosen["error_model"]


def _choices(held, jobs):
    """sector -> (recipe, error model) chosen without it, ``jobs`` sectors at a time."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    sectors = sorted({int(held.sectors[i]) for i in held.places})
    choose = partial(fold_choice, held.features, held.targets, held.sectors)
    if jobs <= 1:
        return {sector: choose(sector) for sector in sectors}
    # spawned, not forked: a fork after LightGBM's threads ran can hang in OpenMP
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(sectors, pool.map(choose, sectors)))


def held_out_figures(held, choices, shipped_rule):
    """Per series (index -> (recall, precision)): ``plain``, the forecast by trees of the
    recipe and error model chosen without its sector, cut by the shipped rule; ``nested``,
    the same forecast cut by the rule chosen on the other sectors' series, each forecast
    by that recipe's trees trained without both its sector and the held-out one."""
    plain, nested = {}, {}
    for sector, (recipe, errors) in choices.items():
        inner = [(held.series[k], held.forecast(k, recipe, errors, {sector, held.sectors[k]}))
                 for k in held.places if held.sectors[k] != sector]
        rule, _ = choose_rule(inner)
        for k in held.places:
            if held.sectors[k] == sector:
                one = held.forecast(k, recipe, errors, {sector})
                plain[k], nested[k] = scores(held.series[k], one, shipped_rule), scores(held.series[k], one, rule)
    return plain, nested


def real_light(data: Path, jobs: int = 2):
    from tess_backml import forecast as shipped
    from tess_backml.geometry import load_ephemeris
    from tess_backml.model import load_model
    from tess_backml.model.default import usable_series

    files = sorted(glob.glob(str(data / "real" / "**" / "*.fits"), recursive=True))
    kept, refused = usable_series(files)
    ephemeris = load_ephemeris(str(data / "ephemeris"))
    meta = load_model("default").meta
    shipped_rule = (shipped.RELATIVE_THRESHOLD, shipped.BAND_SIGMAS, tuple(shipped.EPISODE_PADDING_HOURS))
    started = time.perf_counter()
    held = HeldOut(kept, ephemeris)
    order = sorted(held.places)
    products = {k: forecast_at(kept[k][0], held.series[k], "default", ephemeris) for k in order}
    default = {k: scores(held.series[k], products[k]) for k in order}
    # the same trees and errors as the product's forecast: how far apart the two are
    refit = {k: held.forecast(k, meta["recipe"], meta["error_model"]) for k in order}
    gap = max(float(np.max(np.abs(refit[k].sl - products[k].sl) / np.fmax(products[k].error, 1e-9))) for k in order)
    choices = _choices(held, jobs)
    plain, nested = held_out_figures(held, choices, shipped_rule)
    own = [(held.series[k], held.forecast(k, meta["recipe"], meta["error_model"], {held.sectors[k]})) for k in order]
    chosen, _ = choose_rule(own)
    print(f"\n{len(order)} real series ({len(refused)} files left out), {time.perf_counter() - started:.0f} s; "
          f"recall / precision of the episode cadences:")
    print(f"{'series':44s}{'default':>16s}{'held out':>16s}{'nested':>16s}")
    for k in order:
        row = (default[k], plain[k], nested[k])
        print(f"{held.series[k].name + ' ' + held.series[k].kind:44.44s}" + "".join(f"{r:7.2f} / {p:4.2f}".rjust(16) for r, p in row))
    everything = np.mean([np.mean(held.series[k].sl > 0.1 * held.series[k].sl.max()) for k in order])
    print(f"the shipped rule: {shipped_rule} (share of the peak, band in errors, hours before and after)")
    print(f"  the forecasts here against tess_backml.forecast (the default model): at most {gap:.3g} errors apart")
    print(f"  recipes chosen without each sector: {sorted({(r['max_leaf_nodes'], r['shrink']) for r, _ in choices.values()})} "
          f"(leaves, shrink)")
    report("default model (in-sample), shipped rule", np.array([default[k] for k in order]))
    report("held out (recipe, errors and trees chosen without the series' sector), shipped rule",
           np.array([plain[k] for k in order]))
    report("nested (trees, errors and rule chosen without the series' sector)", np.array([nested[k] for k in order]))
    print(f"  flagging every cadence: recall 1.00, precision {everything:.2f}")
    print(f"  the choice on every series' held-out forecast (the default's recipe and errors): {chosen} "
          f"(shipped: {shipped_rule})")


def report(name, values):
    recall, precision = values.T
    print(f"  {name}: recall mean {np.nanmean(recall):.2f} (median {np.nanmedian(recall):.2f}, worst "
          f"{np.nanmin(recall):.2f}, {np.sum(recall >= COVERED)} of {recall.size} series at 0.9 or more), "
          f"precision mean {np.nanmean(precision):.2f} (median {np.nanmedian(precision):.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--jobs", type=int, default=2, help="sectors whose recipe is chosen at once (processes)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    speed()
    if (Path(args.data) / "real").is_dir():
        real_light(Path(args.data), args.jobs)
    else:
        print(f"no real data in {args.data}: the check on real light is skipped")


if __name__ == "__main__":
    main()
