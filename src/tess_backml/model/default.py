"""Training the default model on real series: the recipe of the model shipped with the
package, its honest held-out figures and everything a user needs to trust it.

:func:`train_real_model` reads every series (:func:`tess_backml.series.read_series`;
a file it cannot use is reported in one line and left out), chooses the recipe, the
error model and the anchored recipe through folds that leave one sector out
(:func:`tess_backml.model.safety.train_safe`) and, unless told not to, runs the whole
choice again inside each outer fold to give *nested* held-out figures
(:func:`tess_backml.model.safety.nested_held_out`), which go into the metadata.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..errors import TessBackmlError
from ..series import MIN_DARK_SPAN_DAYS, read_series
from .real import REAL_FEATURE_SET, REAL_FEATURE_SETS, series_features, training_domain

log = logging.getLogger(__name__)


def usable_series(paths, minutes: float = 30.0) -> tuple:
    """The series of ``paths`` fit to train on, and one line per file left out (why).

    The files are taken in the order of their names, so that a model does not depend on
    the order a shell (and its locale) happened to list them in.
    """
    kept, refused = [], []
    for path in sorted(paths, key=lambda p: (os.path.basename(str(p)), str(p))):
        name = os.path.basename(str(path))
        try:
            series = read_series(path).binned(minutes)
        except TessBackmlError as exc:
            refused.append(f"{name}: {exc}")
            continue
        span = float(np.ptp(series.time))
        if span < MIN_DARK_SPAN_DAYS:
            refused.append(f"{name}: spans {span:.1f} days, too short to know its dark level (at least "
                           f"{MIN_DARK_SPAN_DAYS:.0f} needed)")
            continue
        kept.append((path, series))
    for line in refused:
        log.warning("left out of training: %s", line)
    return kept, refused


def held_out_summary(series, truths, nested) -> dict:
    """The nested held-out figures of the metadata: per series and as medians."""
    from .safety import error_scores, scores

    none, model, anchored = (scores(truths, [np.zeros_like(t) for t in truths]), scores(truths, nested["prediction"]),
                             scores(truths, nested["anchored"]))
    return {
        "folds": "leave one sector out; every choice made inside the training sectors",
        "sl_left": {os.path.basename(s.source): {"series": f"{s.name} {s.kind}", "model": m, "anchored": a}
                    for s, m, a in zip(series, model["sl_left"], anchored["sl_left"])},
        "sl_left_median": model["median"], "sl_left_max": model["worst"], "worse": model["worse"],
        "anchored_median": anchored["median"], "anchored_max": anchored["worst"], "anchored_worse": anchored["worse"],
        "none_median": none["median"],
        "errors": error_scores(truths, nested["prediction"], nested["error"]),
        "anchored_errors": error_scores(truths, nested["anchored"], nested["anchored_error"]),
        "outside_training_cadences": int(sum(int(np.sum(o)) for o in nested["outside"])),
        "recipes_chosen": nested["recipes"],
    }


def train_real_model(paths, ephemeris=None, minutes: float = 30.0, evaluate: bool = True, progress: bool = False):
    """LightGBM trees trained safely on real series (see the module's notes).

    Parameters
    ----------
    paths : list
        Light curves, TPFs or cutouts (see :func:`tess_backml.series.read_series`).
    ephemeris : Ephemeris or str, optional
        Covering every series (a directory of Horizons tables does).
    minutes : float
        The series are fitted in means of this many minutes.
    evaluate : bool
        Also compute the nested held-out figures (slow: the whole choice once per sector).
    progress : bool
        Show a progress bar.

    Returns
    -------
    model, meta
        The fitted :class:`~tess_backml.model.estimators.GradientBoostingModel` and its
        description (files, recipe, shrink, error models, anchored recipe, domain,
        held-out figures).
    """
    from tqdm.auto import tqdm

    from ..geometry import load_ephemeris
    from .safety import CANDIDATES, TREE_SETTINGS, group_folds, nested_held_out, train_safe

    started = time.perf_counter()
    ephemeris = load_ephemeris(ephemeris)
    kept, refused = usable_series(paths, minutes)
    if len(kept) < 3:
        raise TessBackmlError(f"training needs at least 3 usable series, got {len(kept)}")
    series = [s for _, s in kept]
    features = [series_features(s, ephemeris) for s in series]
    targets = [np.clip(s.sl, 0, None) for s in series]
    groups = [s.sector for s in series]
    times = [s.time for s in series]
    if len(set(groups)) < 3:
        raise TessBackmlError(f"training needs series of at least 3 sectors (its folds leave one out), got {sorted(set(groups))}")
    keys = len({(r["feature_set"], r["max_leaf_nodes"], r["objective"]) for r in CANDIDATES})
    folds = len(group_folds(groups))
    total = keys * folds * (folds if evaluate else 1)
    with tqdm(total=total, desc="training", unit="fit", disable=not progress) as bar:
        trained = train_safe(features, targets, groups, times, progress=bar)
        nested = nested_held_out(features, targets, groups, times, progress=bar) if evaluate else None
    recipe = trained["recipe"]
    meta = {
        "training_files": [os.path.basename(str(path)) for path, _ in kept],
        "refused_files": refused,
        "series": [s.name for s in series],
        "recipe": {"estimator": "gbt (LightGBM)", "target": "asinh(SL / 10 e-/s)", "minutes": minutes,
                   "weights": "each series alike", **TREE_SETTINGS, **recipe},
        "anchor": trained["anchor"],
        "anchor_error_model": trained["anchor_error_model"],
        "error_model": trained["error_model"],
        "training_samples": int(sum(t.size for t in targets)),
        "domain": training_domain(np.vstack(features), np.concatenate(targets)),
    }
    if nested is not None:
        meta["held_out"] = held_out_summary(series, targets, nested)
    meta["training_seconds"] = round(time.perf_counter() - started, 1)
    return trained["model"], meta


def feature_set_of(meta) -> str:
    """The feature set a real-series model's trees use."""
    return meta.get("recipe", {}).get("feature_set", REAL_FEATURE_SET)


def format_recipe(meta) -> str:
    """One line: the recipe a real-series model chose."""
    recipe = meta.get("recipe", {})
    return (f"{recipe.get('feature_set')}, {recipe.get('max_leaf_nodes')} leaves, {recipe.get('objective')} loss, "
            f"shrink {recipe.get('shrink')}; anchored: {format_anchor(meta.get('anchor', {}))}")


def format_anchor(anchor) -> str:
    """The anchored recipe, in words."""
    if anchor.get("method") == "analog":
        how = "alone" if anchor["blend"] == "ratio" else "times the orbit's scale, geometric mean"
        return (f"the ratio over the {anchor['neighbours']} nearest cadences in the {anchor['geometry']} geometry "
                f"(floor {anchor['floor']:g} e-/s, to the power {anchor['pull']:g}), {how}")
    return (f"scale to the power {anchor.get('pull', 1.0)}, then {anchor.get('rounds', 0)} boosting rounds"
            + (f" (bend within x{np.exp(anchor['bend_limit']):.1f})" if anchor.get("bend_limit") and anchor.get("rounds") else ""))


def format_held_out(meta) -> str:
    """The nested held-out table of a model's metadata, as text."""
    held = meta["held_out"]
    lines = [f"nested held-out figures ({held['folds']}), SL left = RMS(real SL - model) / RMS(real SL):",
             f"{'':14s}{'median':>8s}{'worst':>8s}{'worse':>7s}{'|res|/err':>11s}{'within 1 err':>14s}",
             f"{'no correction':14s}{held['none_median']:8.2f}{1.0:8.2f}{0:7d}"]
    for name, prefix, errors in (("default", "sl_left", "errors"), ("anchored", "anchored", "anchored_errors")):
        median, worst = held[f"{prefix}_median"], held[f"{prefix}_max"]
        worse = held["worse" if prefix == "sl_left" else "anchored_worse"]
        lines.append(f"{name:14s}{median:8.2f}{worst:8.2f}{worse:7d}{held[errors]['median_ratio']:11.2f}"
                     f"{held[errors]['within_one_error']:14.2f}")
    lines.append(f"({len(held['sl_left'])} series; anchored: each orbit fitted on the other; honest errors give "
                 "|res|/err 0.67 and 0.68 within one error)")
    return "\n".join(lines)


def score_series(loaded, paths, ephemeris=None, minutes: float = 30.0) -> dict:
    """SL left by a real-series model on the series of ``paths`` (30-min means): the
    model (its shrink, nothing where it extrapolates), the model anchored each orbit on
    the other, and no correction; with the error scores."""
    from ..geometry import load_ephemeris
    from .anchor import cross_orbit
    from .real import model_error, outside_domain, sl_left
    from .safety import error_scores, safe_prediction

    meta = loaded.meta
    if "anchor" not in meta:
        raise TessBackmlError("this model was not trained on real series: score it on training sets (NPZ)")
    ephemeris = load_ephemeris(ephemeris)
    shrink = float(meta["recipe"].get("shrink", 1.0))
    columns = len(REAL_FEATURE_SETS[meta["feature_set"]])
    table = {}
    for path in paths:
        series = read_series(path).binned(minutes)
        features = series_features(series, ephemeris)  # the widest, for anchoring; the trees take their columns
        outside = outside_domain(meta.get("domain"), features)
        truth = np.clip(series.sl, 0, None)
        predicted = safe_prediction(loaded.model, features[:, :columns], shrink, outside)
        anchored = cross_orbit(predicted, truth, features, series.time, meta["anchor"], outside)
        errors = error_scores([truth], [predicted], [model_error(meta, predicted, outside)])
        table[f"{series.name} {series.kind}"] = {
            "file": os.path.basename(str(path)), "model": sl_left(truth, predicted),
            "anchored": sl_left(truth, anchored), "outside_training": int(outside.sum()), **errors,
        }
    return table


def format_scores(table) -> str:
    """:func:`score_series` as text."""
    lines = [f"{'series':36s}{'model':>7s}{'anchored':>10s}{'|res|/err':>11s}{'within 1 err':>14s}  (SL left; none = 1)"]
    for name, row in table.items():
        lines.append(f"{name:36.36s}{row['model']:7.2f}{row['anchored']:10.2f}{row['median_ratio']:11.2f}"
                     f"{row['within_one_error']:14.2f}")
    models, anchored = [row["model"] for row in table.values()], [row["anchored"] for row in table.values()]
    lines.append(f"{'median':36s}{np.median(models):7.2f}{np.median(anchored):10.2f}   "
                 f"made worse: {sum(m > 1 for m in models)} by the model, {sum(a > 1 for a in anchored)} anchored")
    return "\n".join(lines)
