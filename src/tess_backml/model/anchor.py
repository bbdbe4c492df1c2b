"""The anchored mode: the model's shape, the stamp's own amplitude.

The geometry says *when* scattered light comes and how it spreads over a stamp far
better than *how much* comes (the peak at one place varies 30x between series). Most
inputs carry their own evidence of the light: a SPOC TPF's ``FLUX_BKG``, a light
curve's ``SAP_BKG``, a cutout's faintest pixels. Anchoring fits the model to that
evidence (:func:`anchor_fit`):

1. one amplitude per orbit: the least-squares scale of the model to the anchor,
   pulled toward 1 by a prior of width :data:`PRIOR_LOG_WIDTH` (in ln) so that an
   orbit with little light cannot give a wild scale, and capped at ``exp(2 x width)``;
   the recipe's ``pull`` keeps that power of it (amplitudes change between orbits more
   than one orbit's fit can tell: the held-out orbit says how much to trust it);
2. then (when the recipe says so) a few strongly regularised boosting rounds from
   the scaled model (LightGBM's ``init_score``) on the anchor's own cadences, which
   bend the model's shape in time where the anchor disagrees: by at most the prior's
   factor ``exp(width)`` either way of the scaled model (so that a bend learnt on one
   orbit cannot invent light on another), or never above the light the anchor saw;
   which of the two, like the number of rounds and the pull, the training folds say.

Or (the ``"analog"`` recipes) the amplitude follows the geometry: at each cadence,
the ratio of the anchor's light to the model's over its ``neighbours`` nearest anchor
cadences in the Earth's (and the Moon's, or the spacecraft-frame Earth's) geometry
(:func:`analog_ratio`). Seen from one place, the Earth rises past the sunshade along
nearly the same track every orbit, so the other orbit's light at the same place of the
track says how much the model misses there, which one scale per orbit averages away.
Its ratio is capped like the scale, and its recipe either takes it alone or as the
geometric mean with the orbit's scale (``blend``).

Cadences where the model extrapolates (``OUTSIDE_TRAINING``: it predicts nothing there)
are left out of the fit and stay at nothing: that light (the Moon crossing the field)
is not light the model's shape knows, so it must not set the amplitude or the bend.

Times of an orbit the anchor does not cover take the scale of the orbits it does.
The recipe (:data:`ANCHOR_CANDIDATES`) is chosen, and the anchored errors calibrated,
on the training folds' series alone, fitted on one orbit and scored on the other
(:mod:`tess_backml.model.safety` does the same for the model itself).
"""

from __future__ import annotations

import numpy as np

from .estimators import from_target, to_target

#: Width (ln) of the prior on an orbit's amplitude around the model's.
PRIOR_LOG_WIDTH = 1.0
#: Scale recipes: boosting rounds after the scale (0: the scale alone), and
#: the pull, the power of the fitted scale that is kept (1: all of it; 0.5: its square
#: root, for amplitudes that change from orbit to orbit more than the fit can know).
#: After boosting, the bend is limited either to the prior's factor ``exp(width)`` of
#: the scaled model either way (``bend_limit`` = width), or only by the brightest light
#: the anchor saw (None).
SCALE_CANDIDATES = tuple({"rounds": 0, "pull": pull, "bend_limit": None} for pull in (0.5, 1.0)) + tuple(
    {"rounds": rounds, "pull": pull, "bend_limit": limit}
    for rounds in (20, 60) for pull in (0.5, 1.0) for limit in (PRIOR_LOG_WIDTH, None)
)
_EARTH = ("earth_angle", "earth_sin_azimuth", "earth_cos_azimuth", "earth_size", "earth_camera_angle")
#: The geometries an analogous cadence is looked for in (names of real features).
ANALOG_GEOMETRIES = {
    "earth": _EARTH,
    "earth+spacecraft": _EARTH + ("earth_spacecraft_angle", "earth_spacecraft_sin_azimuth", "earth_spacecraft_cos_azimuth"),
    "earth+moon": _EARTH + ("moon_angle", "moon_sin_azimuth", "moon_cos_azimuth"),
}
#: Analog recipes: geometry, neighbours, the floor (e-/s) added to both sides of the
#: ratio (faint light cannot give a wild one), its pull, and ``blend``: "ratio" (the
#: ratio alone) or "geo" (its geometric mean with the orbit's scale).
ANALOG_CANDIDATES = tuple(
    {"method": "analog", "geometry": geometry, "neighbours": neighbours, "floor": floor, "pull": pull, "blend": blend}
    for geometry in ANALOG_GEOMETRIES for neighbours in (5, 15, 40) for floor in (1.0, 5.0) for pull in (0.5, 1.0)
    for blend in ("ratio", "geo")
)
ANCHOR_CANDIDATES = SCALE_CANDIDATES + ANALOG_CANDIDATES
_BOOST = {"objective": "l2", "num_leaves": 4, "learning_rate": 0.05, "min_data_in_leaf": 40, "lambda_l2": 10.0,
          "verbose": -1, "num_threads": 2, "seed": 0, "deterministic": True, "force_row_wise": True}


def orbit_index(time) -> np.ndarray:
    """0 for the first orbit, 1 for the second: split at the longest gap in the middle
    half of the series (the downlink at perigee); all 0 for a series too short to tell."""
    time = np.asarray(time, float)
    if time.size < 8:
        return np.zeros(time.size, int)
    order = np.argsort(time)
    steps = np.diff(time[order])
    low, high = time.size // 4, 3 * time.size // 4
    cut = low + int(np.argmax(steps[low:high]))
    index = np.zeros(time.size, int)
    index[order[cut + 1 :]] = 1
    return index


def orbit_scale(model_sl, observed) -> float:
    """The model's amplitude on one orbit of the anchor (see the module's notes)."""
    model_sl, observed = np.asarray(model_sl, float), np.asarray(observed, float)
    power = float(np.sum(model_sl**2))
    if power <= 0:
        return 1.0
    scale = max(float(np.sum(model_sl * observed)) / power, 0.0)
    variance = float(np.mean((observed - scale * model_sl) ** 2)) / power
    prior = (np.exp(PRIOR_LOG_WIDTH) - 1) ** 2
    pulled = (scale / max(variance, 1e-12) + 1 / prior) / (1 / max(variance, 1e-12) + 1 / prior)
    return float(min(pulled, np.exp(2 * PRIOR_LOG_WIDTH)))


def anchor_fit(model_sl, observed, features, orbits, fit, recipe, neighbours=None) -> np.ndarray:
    """The anchored SL at every cadence given.

    Parameters
    ----------
    model_sl : ndarray
        The model's SL at the cadences (e-/s).
    observed : ndarray
        The anchor's SL (e-/s), used where ``fit`` is True.
    features : ndarray (ncadences, nfeatures)
        The real features at the anchor's place and cadences (the boosting rounds learn
        on them, the analog recipes look for neighbours in them).
    orbits : ndarray of int
        :func:`orbit_index` of the cadences.
    fit : ndarray of bool
        The cadences the anchor may use.
    recipe : dict
        One of :data:`ANCHOR_CANDIDATES`: a scale recipe, or an analog one (its
        ``features`` must be the widest real feature set's).
    neighbours : AnalogNeighbours, optional
        The nearest ``fit`` cadences already found (of these ``features`` and ``fit``),
        for analog recipes tried one after another on the same anchor.
    """
    model_sl, observed = np.asarray(model_sl, float), np.asarray(observed, float)
    fit = np.asarray(fit, bool)
    pull = float(recipe.get("pull", 1.0))
    scale = np.full(model_sl.size, orbit_scale(model_sl[fit], observed[fit]) ** pull)
    for orbit in np.unique(orbits[fit]):
        here = orbits == orbit
        scale[here] = orbit_scale(model_sl[here & fit], observed[here & fit]) ** pull
    scaled = scale * model_sl
    if recipe.get("method") == "analog":
        if fit.sum() < int(recipe["neighbours"]):  # too few anchor cadences to find analogues among
            return scaled
        ratio = analog_ratio(model_sl, observed, features, fit, recipe, neighbours) ** pull
        return model_sl * (ratio if recipe["blend"] == "ratio" else np.sqrt(ratio * scale))
    if not recipe.get("rounds") or fit.sum() < 2 * _BOOST["min_data_in_leaf"]:
        return scaled
    import lightgbm

    base = to_target(scaled)
    data = lightgbm.Dataset(np.asarray(features, np.float32)[fit], to_target(np.clip(observed[fit], 0, None)),
                            init_score=base[fit], params={"verbose": -1})
    booster = lightgbm.train(_BOOST, data, num_boost_round=int(recipe["rounds"]))
    bent = np.clip(from_target(booster.predict(np.asarray(features, np.float32)) + base), 0, None)
    limit = recipe.get("bend_limit")
    if limit is not None:
        return np.clip(bent, scaled / np.exp(limit), scaled * np.exp(limit))
    return np.minimum(bent, max(float(np.max(observed[fit], initial=0.0)), float(np.max(scaled, initial=0.0))))


class AnalogNeighbours:
    """The nearest ``fit`` cadences of every cadence in an analog geometry, found once
    per geometry for the recipes that share it: at least ``most`` of them, sliced for the
    recipes that ask for fewer."""

    def __init__(self, features, fit, most: int | None = None):
        self.features, self.fit = np.asarray(features, float), np.asarray(fit, bool)
        self.most = MOST_NEIGHBOURS if most is None else int(most)
        self._found = {}

    def nearest(self, geometry: str, count: int) -> np.ndarray:
        """Indices (into the ``fit`` cadences) of each cadence's ``count`` nearest, nearest
        first, each feature of ``geometry`` in units of its spread over the ``fit`` cadences."""
        found = self._found.get(geometry)
        if found is None or found.shape[1] < count:
            from scipy.spatial import cKDTree

            from .real import REAL_FEATURE_NAMES

            columns = [REAL_FEATURE_NAMES.index(name) for name in ANALOG_GEOMETRIES[geometry]]
            points = self.features[:, columns]
            spread = points[self.fit].std(axis=0) + 1e-6
            asked = max(count, self.most)
            _, found = cKDTree(points[self.fit] / spread).query(points / spread, k=asked)
            self._found[geometry] = found = np.asarray(found).reshape(len(points), asked)
        return found[:, :count]


#: The most neighbours any analog recipe asks for (found once, sliced for the others).
MOST_NEIGHBOURS = max(recipe["neighbours"] for recipe in ANALOG_CANDIDATES)


def analog_ratio(model_sl, observed, features, fit, recipe, neighbours=None) -> np.ndarray:
    """At every cadence, (anchor + floor) / (model + floor) summed over its
    ``recipe["neighbours"]`` nearest ``fit`` cadences in the recipe's geometry (see
    :class:`AnalogNeighbours`, which ``neighbours`` may give already built), capped at
    ``exp(2 x width)`` either way. ``features`` are the widest real feature set's columns."""
    count = int(recipe["neighbours"])
    neighbours = AnalogNeighbours(features, fit, most=count) if neighbours is None else neighbours
    nearest = neighbours.nearest(recipe["geometry"], count)
    floor = float(recipe["floor"]) * count
    seen = np.clip(observed[fit], 0, None)[nearest].sum(axis=1)
    ratio = (seen + floor) / (model_sl[fit][nearest].sum(axis=1) + floor)
    return np.clip(ratio, np.exp(-2 * PRIOR_LOG_WIDTH), np.exp(2 * PRIOR_LOG_WIDTH))


def cross_orbit(model_sl, observed, features, time, recipe, outside=None, neighbours=None) -> np.ndarray:
    """Each orbit predicted from an anchor on the other orbit alone (the honest score of
    anchoring); a series of one orbit is returned unanchored. ``outside``: the cadences
    where the model extrapolates (left out of the fit, kept at the model's value).
    ``neighbours``: a dict, kept between calls on the same series, in which each orbit's
    :class:`AnalogNeighbours` are kept."""
    orbits = orbit_index(time)
    out = np.asarray(model_sl, float).copy()
    known = np.ones(out.size, bool) if outside is None else ~np.asarray(outside, bool)
    for orbit in np.unique(orbits):
        scored = orbits == orbit
        if scored.all() or not (known & ~scored).any():
            continue
        fit = ~scored & known
        if neighbours is not None and int(orbit) not in neighbours:
            neighbours[int(orbit)] = AnalogNeighbours(features, fit)
        found = None if neighbours is None else neighbours[int(orbit)]
        out[scored & known] = anchor_fit(model_sl, observed, features, orbits, fit, recipe, found)[scored & known]
    return out
