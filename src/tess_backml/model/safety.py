"""Choosing, scoring and calibrating a model of real scattered light honestly.

Real series are few (a few dozen places, a few hundred cadences each) and their
light is correlated within a series and within a sector, so every figure here is
*held out by group*: the folds leave out whole sectors (:func:`group_folds`), and
every choice (feature set, tree size, loss, the shrink of the prediction, the error
model) is made by :func:`choose_recipe` from the training folds' own inner folds. The
figures quoted (:func:`nested_held_out`) were never used to choose anything.

**Safe by construction.** Among the candidate recipes (:data:`CANDIDATES`) the one
chosen is the one with the lowest median SL left over the inner folds' series among
those that made none of them worse than no correction (else the one that made the
fewest worse). Each recipe carries a shrink factor: the model's prediction times
0.6-1.0, since a prediction that is too large makes a light curve worse while one
too small only leaves light in it. Where the model extrapolates (a body nearer than
in any training series: :func:`tess_backml.model.real.outside_domain`) it predicts
nothing and says so with the ``OUTSIDE_TRAINING`` flag.

**Errors** (:func:`calibrate_errors`): ``scale * hypot(floor, fraction * SL)``, the
floor and fraction from the held-out residuals at low and high predicted light, the
scale set so that on the mean over series (each series weighted alike) 68% of the
held-out cadences lie within one error. MAPIE and crepes calibrate exchangeable
samples; here the cadences of a series are not exchangeable (its residuals move
together), and the target is the share per series, so the calibration is this one
bisection on the held-out residuals.
"""

from __future__ import annotations

import numpy as np

from .real import REAL_FEATURE_SETS, sl_left

#: Candidate recipes: feature set, leaves per tree, loss, shrink of the prediction.
CANDIDATES = tuple(
    {"feature_set": feature_set, "max_leaf_nodes": leaves, "objective": objective, "shrink": shrink}
    for feature_set in ("real-2", "real-3")
    for leaves in (4, 8)
    for objective in ("l2", "quantile")
    for shrink in (0.6, 0.8, 1.0)
)
#: Settings every recipe shares: many small, slow trees with large leaves.
TREE_SETTINGS = {"max_iter": 150, "learning_rate": 0.05, "min_samples_leaf": 40, "l2_regularization": 1.0}
#: The share of held-out cadences (mean over series) within one error.
COVERAGE = 0.68


def recipe_key(recipe) -> tuple:
    """What distinguishes recipes that need their own trees (the shrink needs none)."""
    return recipe["feature_set"], recipe["max_leaf_nodes"], recipe["objective"]


def feature_columns(feature_set) -> int:
    """How many leading columns of the widest real feature set ``feature_set`` uses."""
    return len(REAL_FEATURE_SETS[feature_set])


def group_folds(groups) -> list:
    """(train, test) index arrays, one fold per distinct group (e.g. sector)."""
    groups = np.asarray(groups)
    return [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in np.unique(groups)]


def fit_trees(features, targets, members, recipe, seed=0):
    """Trees of ``recipe`` fitted on the series ``members`` (indices), each series weighted
    alike (a long series must not outvote a short one)."""
    from .estimators import GradientBoostingModel

    columns = feature_columns(recipe["feature_set"])
    x = np.vstack([features[k][:, :columns] for k in members])
    y = np.concatenate([targets[k] for k in members])
    weight = np.concatenate([np.full(targets[k].size, 1.0 / targets[k].size) for k in members])
    model = GradientBoostingModel(seed=seed, max_leaf_nodes=recipe["max_leaf_nodes"], objective=recipe["objective"],
                                  **TREE_SETTINGS)
    return model.fit(x, y, weight=weight * weight.size / weight.sum())


def safe_prediction(model, features, shrink: float = 1.0, outside=None) -> np.ndarray:
    """The SL a real-series model gives: its trees clipped at zero (light is never
    negative), times its recipe's ``shrink``, and nothing where it would extrapolate
    (``outside``, one flag per row of ``features``). Training, the held-out figures,
    scoring and the corrector all go through here, so they judge the same prediction."""
    predicted = np.clip(model.predict(features), 0, None) * float(shrink)
    return predicted if outside is None else np.where(outside, 0.0, predicted)


def predict_trees(model, features, recipe, outside=None) -> np.ndarray:
    """:func:`safe_prediction` of the recipe's trees on all the real features (the
    recipe's feature set is their first columns)."""
    columns = feature_columns(recipe["feature_set"])
    return safe_prediction(model, np.asarray(features)[:, :columns], recipe["shrink"], outside)


def fold_outside(features, targets, groups, members) -> dict:
    """Series index -> the cadences outside the domain of its fold's training series
    (where every recipe predicts nothing)."""
    from .real import outside_domain, training_domain

    members = np.asarray(members)
    outside = {}
    for train, test in group_folds(np.asarray(groups)[members]):
        domain = training_domain(np.vstack([features[k] for k in members[train]]),
                                 np.concatenate([targets[k] for k in members[train]]))
        outside.update({k: outside_domain(domain, features[k]) for k in members[test]})
    return outside


def out_of_fold(features, targets, groups, members, recipes, progress=None) -> dict:
    """Held-out predictions of the series ``members`` by each recipe: per recipe key, a
    dict series index -> prediction without shrink, each from trees trained on the
    other groups among ``members`` (nothing where outside their domain), and under
    ``"outside"`` the :func:`fold_outside` masks."""
    members = np.asarray(members)
    out = {"outside": fold_outside(features, targets, groups, members)}
    for key in sorted({recipe_key(r) for r in recipes}):
        recipe = dict(zip(("feature_set", "max_leaf_nodes", "objective"), key), shrink=1.0)
        held = {}
        for train, test in group_folds(np.asarray(groups)[members]):
            model = fit_trees(features, targets, members[train], recipe)
            for k in members[test]:
                held[k] = predict_trees(model, features[k], recipe, out["outside"][k])
            if progress is not None:
                progress.update(1)
        out[key] = held
    return out


def scores(truths, predictions) -> dict:
    """Median and worst SL left, and how many series were made worse, of lists of arrays."""
    left = [sl_left(t, p) for t, p in zip(truths, predictions)]
    return {"median": float(np.median(left)), "worst": float(np.max(left)),
            "worse": int(sum(value > 1.0 for value in left)), "sl_left": left}


def choose_recipe(targets, held, recipes=CANDIDATES) -> dict:
    """The safest good recipe on held-out predictions ``held`` (from :func:`out_of_fold`):
    the lowest median SL left among those that made no series worse, else the one that
    made the fewest worse (then the lowest median)."""
    ranked = []
    for recipe in recipes:
        predictions = held[recipe_key(recipe)]
        members = sorted(predictions)
        score = scores([targets[k] for k in members], [predictions[k] * recipe["shrink"] for k in members])
        ranked.append((score["worse"], score["median"], -recipe["shrink"], len(ranked)))
    return dict(recipes[min(ranked)[3]])


def calibrate_errors(truths, predictions, coverage=COVERAGE) -> dict:
    """The error model ``scale * hypot(floor, fraction * SL)`` (e-/s) from held-out
    predictions of series (lists of arrays): see the module's notes."""
    truth = np.concatenate(truths).astype(float)
    predicted = np.concatenate(predictions).astype(float)
    residual = np.abs(truth - predicted)
    faint = predicted <= np.percentile(predicted, 50)
    floor = 1.4826 * float(np.median(residual[faint])) + 1.0
    bright = predicted > max(5 * floor, 10.0)
    fraction = 1.4826 * float(np.median(residual[bright] / predicted[bright])) if bright.sum() > 20 else 0.5

    def covered(scale):
        return np.mean([np.mean(np.abs(np.asarray(t, float) - p) <= scale * np.hypot(floor, fraction * np.asarray(p, float)))
                        for t, p in zip(truths, predictions)])

    low, high = 1e-3, 1e3
    for _ in range(60):  # bisection in log: the share covered grows with the scale
        middle = np.sqrt(low * high)
        low, high = (middle, high) if covered(middle) < coverage else (low, middle)
    scale = float(np.sqrt(low * high))
    return {"floor": floor * scale, "fraction": fraction * scale}


def error_scores(truths, predictions, errors) -> dict:
    """How honest errors are, each series weighted alike: the median over series of the
    median |residual| / error (0.67 for exact Gaussian errors) and the mean share of
    cadences within one error (0.68)."""
    ratios = [np.abs(np.asarray(t, float) - p) / e for t, p, e in zip(truths, predictions, errors)]
    return {"median_ratio": float(np.median([np.median(r) for r in ratios])),
            "within_one_error": float(np.mean([np.mean(r <= 1) for r in ratios]))}


def choose_anchor(targets, predictions, features, times, outside) -> tuple:
    """The anchored recipe (of :data:`~tess_backml.model.anchor.ANCHOR_CANDIDATES`) and its
    error model, chosen and calibrated on held-out ``predictions`` of the series given
    (``outside``: where they extrapolate), each orbit anchored on the other."""
    from .anchor import ANCHOR_CANDIDATES, cross_orbit

    ranked, anchored = [], []
    neighbours = [{} for _ in targets]  # the analog recipes' neighbours, found once per series and orbit
    for recipe in ANCHOR_CANDIDATES:
        fitted = [cross_orbit(p, t, f, time, recipe, o, found)
                  for p, t, f, time, o, found in zip(predictions, targets, features, times, outside, neighbours)]
        score = scores(targets, fitted)
        ranked.append((score["worse"], score["median"], len(ranked)))
        anchored.append(fitted)
    best = min(ranked)[2]
    return dict(ANCHOR_CANDIDATES[best]), calibrate_errors(targets, anchored[best])


def train_safe(features, targets, groups, times, recipes=CANDIDATES, progress=None) -> dict:
    """Choose a recipe, an error model and an anchored recipe on the series given (all of
    them, through inner folds by group), then fit the trees on them all.

    Returns
    -------
    dict
        ``model``, ``recipe``, ``error_model``, ``anchor`` (the anchored recipe),
        ``anchor_error_model`` and ``held_out`` (the inner held-out predictions).
    """
    chosen = choose_trees(features, targets, groups, recipes, progress)
    predictions = chosen["held_out"]
    anchor, anchor_errors = choose_anchor(targets, predictions, features, times, chosen["outside"])
    return {"model": fit_trees(features, targets, np.arange(len(features)), chosen["recipe"]),
            "recipe": chosen["recipe"], "error_model": chosen["error_model"], "anchor": anchor,
            "anchor_error_model": anchor_errors, "held_out": predictions}


def choose_trees(features, targets, groups, recipes=CANDIDATES, progress=None) -> dict:
    """The recipe and its error model chosen on the series given, through inner folds by
    group (the trees' part of :func:`train_safe`, without fitting them or anchoring).

    Returns
    -------
    dict
        ``recipe``, ``error_model``, and per series its inner ``held_out`` prediction
        (times the recipe's shrink) and ``outside`` flags.
    """
    members = np.arange(len(features))
    held = out_of_fold(features, targets, groups, members, recipes, progress)
    recipe = choose_recipe(targets, held, recipes)
    predictions = [held[recipe_key(recipe)][k] * recipe["shrink"] for k in members]
    return {"recipe": recipe, "error_model": calibrate_errors(targets, predictions), "held_out": predictions,
            "outside": [held["outside"][k] for k in members]}


def nested_held_out(features, targets, groups, times, recipes=CANDIDATES, progress=None) -> dict:
    """The honest figures: for each outer fold (one group held out), :func:`train_safe` on
    the other groups alone, then its model, shrink, domain, anchored recipe and error
    models applied to the held-out series (anchored: each orbit on the other).

    Returns
    -------
    dict
        Per series (lists): ``prediction``, ``error``, ``outside`` (flags), ``anchored``,
        ``anchored_error``; and ``recipes``, the recipe each fold chose, by group.
    """
    from .anchor import cross_orbit
    from .real import model_error, outside_domain, training_domain

    keys = ("prediction", "error", "outside", "anchored", "anchored_error")
    out = {key: [None] * len(features) for key in keys}
    out["recipes"] = {}
    for outer_train, outer_test in group_folds(groups):
        sub = [features[k] for k in outer_train]
        trained = train_safe(sub, [targets[k] for k in outer_train], np.asarray(groups)[outer_train],
                             [times[k] for k in outer_train], recipes, progress)
        meta = {"error_model": trained["error_model"],
                "domain": training_domain(np.vstack(sub), np.concatenate([targets[k] for k in outer_train]))}
        for k in outer_test:
            outside = outside_domain(meta["domain"], features[k])
            prediction = predict_trees(trained["model"], features[k], trained["recipe"], outside)
            out["prediction"][k], out["outside"][k] = prediction, outside
            out["error"][k] = model_error(meta, prediction, outside)
            anchored = cross_orbit(prediction, targets[k], features[k], times[k], trained["anchor"], outside)
            out["anchored"][k] = anchored
            out["anchored_error"][k] = model_error({"error_model": trained["anchor_error_model"]}, anchored)
        out["recipes"][str(np.asarray(groups)[outer_test][0])] = {**trained["recipe"], **trained["anchor"]}
    return out
