"""Real scattered light as training rows: the geometry of a real series, and how well a
model follows real light.

A real series (:class:`tess_backml.series.SLSeries`) is one place on a CCD; its
features (set :data:`REAL_FEATURE_SET`) are, per body (Earth, then Moon):

``<body>_angle``
    Angle between the place's line of sight and the body, in units of 90 deg.
``<body>_sin_azimuth``, ``<body>_cos_azimuth``
    The body's azimuth around that line of sight.
``<body>_size``
    Its angular diameter, deg.
``<body>_camera_angle``
    Its angle from the camera boresight, in units of 90 deg.
``<body>_phase``
    Its phase angle (Sun-body-spacecraft), in units of 180 deg: a full Earth is 0,
    a new one 1.

and the ``camera`` number (1-4): the cameras sit at different places in the array,
so the same angles reach them through different parts of the sunshade; and the
Earth's place in the spacecraft's frame:

``earth_spacecraft_angle``
    Its angle from the spacecraft boresight (midway between cameras 2 and 3), in
    units of 90 deg.
``earth_spacecraft_sin_azimuth``, ``earth_spacecraft_cos_azimuth``
    Its azimuth around that boresight, zero towards camera 1.

The sunshade is fixed to the spacecraft, so where the Earth stands in its frame sets
how its light gets past the shade, whichever camera sees it.

Why these (leave one series out over the 28 shared real series, median SL left /
worst series): the pixel angles, azimuths and sizes alone 0.71; with the phase 0.61
(set ``real-1``); with the camera number as well and trees of 7 leaves 0.46 / 1.75
(``real-2``: S2 camera 2 CCD 1 got 3x too much light, a day too early); with the
Earth in the spacecraft's frame and trees of 5 leaves (:data:`REAL_TREES`) 0.43 /
1.00 (this set, ``real-3``; 4 leaves 0.44, 6 leaves 0.44, 7 leaves 0.47, all with a
worst of 1.00: the Moon crossing S20 camera 1, which no other series saw, and which
the model leaves alone). Tried and not kept: the Moon in the spacecraft's frame as
well (0.45), the Sun's angle (0.52-0.57 but a worse worst series), the CCD number
(0.51-0.58), the bodies' azimuth around the camera boresight and the pixel's place in
the camera (0.55-0.59), a ridge fit in front of the trees (0.46-0.65, depending on the
tree size), bagging over series (0.47-0.56), Poisson, absolute and quantile losses
(0.56-0.79), monotonic constraints (0.64), a log target (0.46-0.55), and shrinking
every prediction (x0.6: worst 1.00 but median 0.57).

Scores (:func:`sl_left`, :func:`explained_variance`) compare a model with the real SL
on the series' own cadences.
"""

from __future__ import annotations

import numpy as np

from ..constants import BODIES

_PER_BODY = ("angle", "sin_azimuth", "cos_azimuth", "size", "camera_angle", "phase")
_REAL_2 = tuple(f"{body}_{name}" for body in BODIES for name in _PER_BODY) + ("camera",)
_SPACECRAFT_FRAME = ("earth_spacecraft_angle", "earth_spacecraft_sin_azimuth", "earth_spacecraft_cos_azimuth")
#: The real-series feature sets this version computes (models saved with ``real-2``
#: keep working); each extends the one before, so their shared columns agree.
REAL_FEATURE_SETS = {"real-2": _REAL_2, "real-3": _REAL_2 + _SPACECRAFT_FRAME}
REAL_FEATURE_SET = "real-3"
REAL_FEATURE_NAMES = REAL_FEATURE_SETS[REAL_FEATURE_SET]


def phase_angles(vectors, jd_tdb) -> dict:
    """Phase angle (deg) of each body seen from the spacecraft: the angle at the body
    between the Sun and the spacecraft."""
    from astropy.coordinates import get_body_barycentric
    from astropy.time import Time

    sun = get_body_barycentric("sun", Time(jd_tdb, format="jd", scale="tdb"), ephemeris="builtin").xyz.to_value("km").T
    phases = {}
    for body in BODIES:
        to_body = vectors.body(body)
        to_sun = sun - (vectors.spacecraft_ssb + to_body)
        cosine = np.sum(to_sun * -to_body, axis=1) / np.linalg.norm(to_sun, axis=1) / np.linalg.norm(to_body, axis=1)
        phases[body] = np.degrees(np.arccos(np.clip(cosine, -1, 1)))
    return phases


def grid_features(sector, camera, ccd, rows, cols, times, ephemeris=None, feature_set=REAL_FEATURE_SET) -> np.ndarray:
    """Features (ntimes * nrows * ncols, len(names)) float32, time-major, on the grid of
    1-based CCD ``rows`` x ``cols`` at BTJD ``times``; ``names`` are those of
    ``feature_set`` (a key of :data:`REAL_FEATURE_SETS`)."""
    from ..geometry import CameraGeometry, load_ephemeris, pixel_maps
    from ..geometry.maps import angle_and_azimuth

    ephemeris = load_ephemeris(ephemeris)
    times = np.asarray(times, float)
    grid_rows, grid_cols = np.meshgrid(np.asarray(rows, float), np.asarray(cols, float), indexing="ij")
    maps = pixel_maps(sector, camera, ccd, grid_rows, grid_cols, times, ephemeris=ephemeris)
    geometry = CameraGeometry(sector, camera)
    jd = geometry.spacecraft_time(times, ephemeris)
    vectors = ephemeris.body_vectors(jd)
    phases = phase_angles(vectors, jd)
    per_time = np.repeat(np.arange(times.size), grid_rows.size)
    columns = []
    for body in BODIES:
        camera_angle, _ = angle_and_azimuth(vectors.body(body), geometry.boresight[None], geometry.reference)
        azimuth = np.radians(maps[f"{body}_azimuth"].reshape(-1))
        columns += [
            maps[f"{body}_angle"].reshape(-1) / 90.0,
            np.sin(azimuth),
            np.cos(azimuth),
            maps[f"{body}_angular_size"].reshape(-1),
            camera_angle[per_time, 0] / 90.0,
            phases[body][per_time] / 180.0,
        ]
    columns.append(np.full(per_time.size, float(geometry.camera)))
    if feature_set == "real-3":
        array = CameraGeometry(sector, 1)
        angle, azimuth = angle_and_azimuth(vectors.body("earth"), array.spacecraft_boresight[None], array.boresight)
        azimuth = np.radians(azimuth[per_time, 0])
        columns += [angle[per_time, 0] / 90.0, np.sin(azimuth), np.cos(azimuth)]
    elif feature_set != "real-2":
        raise ValueError(f"unknown real feature set {feature_set!r}")
    return np.column_stack(columns).astype(np.float32)


def place_features(sector, camera, ccd, row, column, times, ephemeris=None) -> np.ndarray:
    """Features (ntimes, len(REAL_FEATURE_NAMES)) float32 of one place at BTJD ``times``."""
    return grid_features(sector, camera, ccd, [row], [column], times, ephemeris)


def series_features(series, ephemeris=None) -> np.ndarray:
    """Features of a real series at its own cadences."""
    return place_features(series.sector, series.camera, series.ccd, series.row, series.column, series.time, ephemeris)


def sl_left(truth, model) -> float:
    """RMS of (truth - model) over RMS of truth: 1 means nothing removed."""
    truth, model = np.asarray(truth, float), np.asarray(model, float)
    return float(np.sqrt(np.mean((truth - model) ** 2)) / max(np.sqrt(np.mean(truth**2)), 1e-12))


def explained_variance(truth, model) -> float:
    """1 - var(truth - model) / var(truth)."""
    truth, model = np.asarray(truth, float), np.asarray(model, float)
    return float(1 - np.var(truth - model) / max(np.var(truth), 1e-12))


def leave_one_out(features, targets, make_model) -> list:
    """Held-out predictions of each series by a model trained on all the others.

    ``features`` and ``targets`` are lists (one entry per series); ``make_model()``
    returns a fresh :class:`~tess_backml.model.estimators.SLModel`.
    """
    predictions = []
    for held in range(len(features)):
        train = [k for k in range(len(features)) if k != held]
        model = make_model().fit(np.vstack([features[k] for k in train]), np.concatenate([targets[k] for k in train]))
        predictions.append(np.clip(model.predict(features[held]), 0, None))
    return predictions


#: Gradient-boosted trees for real series: small trees, large leaves, a slow rate (with
#: 27 training series, larger trees learn the series by heart; on ``real-3``, 7 leaves
#: left 0.47 of the held-out SL, 6 leaves 0.44, 5 leaves 0.43, 4 leaves 0.44).
REAL_TREES = {"max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 5, "min_samples_leaf": 40,
              "l2_regularization": 1.0}


#: The angles whose training range bounds where a real-series model is trusted: a body
#: nearer a pixel's line of sight or the boresight than any training cadence saw (by more
#: than :data:`DOMAIN_MARGIN_DEG`) is outside what the model learnt. In the shared
#: series this is the Moon crossing the field of S20 camera 1 (3.6 deg from the
#: pixel; 140,000 e-/s), which no other series comes within 28 deg of.
DOMAIN_ANGLES = ("earth_angle", "earth_camera_angle", "moon_angle", "moon_camera_angle")
DOMAIN_MARGIN_DEG = 2.0


def training_domain(features, targets) -> dict:
    """What a model trained on ``features`` (rows of :data:`REAL_FEATURE_NAMES`) and SL
    ``targets`` learnt: the smallest of each of :data:`DOMAIN_ANGLES` (deg), and
    ``bright_sl``, the 99th percentile of the SL (e-/s)."""
    features = np.asarray(features, float)
    domain = {name: float(features[:, REAL_FEATURE_NAMES.index(name)].min() * 90.0) for name in DOMAIN_ANGLES}
    domain["bright_sl"] = float(np.percentile(np.asarray(targets, float), 99))
    return domain


def outside_domain(domain, features) -> np.ndarray:
    """True for the rows of ``features`` (of any real set: the domain's angles are among
    the columns they share) outside a model's :func:`training_domain` (all False for
    models that record none)."""
    features = np.asarray(features)
    outside = np.zeros(len(features), bool)
    for name in DOMAIN_ANGLES:
        if domain and name in domain:
            outside |= features[:, REAL_FEATURE_NAMES.index(name)] * 90.0 < domain[name] - DOMAIN_MARGIN_DEG
    return outside


def error_model(truths, predictions) -> dict:
    """An error ``hypot(floor, fraction * SL)`` (e-/s) for held-out predictions of
    series (lists of arrays, one per series: real SL and the held-out model).

    The floor comes from where little light is predicted, the fraction from where
    much is (robust, 1.4826 x median absolute residual); then both are scaled so that
    the typical series (the median one) has residuals of unit spread: residuals are
    correlated within a series, so pooled cadences alone mislead (the errors came
    out 1.6x too large for most series that way).
    """
    truth, predicted = np.concatenate(truths).astype(float), np.concatenate(predictions).astype(float)
    residual = np.abs(truth - predicted)
    faint = predicted < np.percentile(predicted, 50)
    floor = 1.4826 * float(np.median(residual[faint])) + 1.0
    bright = predicted > 20
    fraction = 1.4826 * float(np.median(residual[bright] / predicted[bright])) if bright.any() else 0.5
    spreads = [np.std((np.asarray(t, float) - p) / np.hypot(floor, fraction * np.asarray(p, float)))
               for t, p in zip(truths, predictions)]
    scale = float(np.median(spreads))
    return {"floor": floor * scale, "fraction": fraction * scale}


def model_error(meta: dict, flux, outside=None) -> np.ndarray:
    """The error of a model's SL: from its error model, else its held-out RMS error.

    Where ``outside`` (broadcast against ``flux``) is True, the model extrapolates: the
    error is at least the bright light it learnt (its domain's ``bright_sl``), since the
    light there may be anything up to that and beyond."""
    flux = np.asarray(flux, float)
    errors = meta.get("error_model")
    if errors:
        error = np.hypot(errors["floor"], errors["fraction"] * flux)
    else:
        error = np.full_like(flux, float(meta.get("model_rmse", np.nan)))
    if outside is not None and np.any(outside):
        bright = float((meta.get("domain") or {}).get("bright_sl", np.nan))
        error = np.where(outside, np.fmax(np.hypot(error, flux), bright), error)
    return error.astype(np.float32)


def train_real_model(paths, ephemeris=None, minutes: float = 30.0, seed: int = 0, evaluate: bool = True):
    """Gradient-boosted trees (feature set :data:`REAL_FEATURE_SET`) trained on real series.

    Parameters
    ----------
    paths : list
        SPOC light curves, SPOC TPFs or TESScut cutouts (see :func:`tess_backml.series.read_series`).
    ephemeris : Ephemeris or str, optional
        Covering every series (a directory of Horizons tables does).
    minutes : float
        The series are fitted in means of this many minutes.
    evaluate : bool
        Also score the recipe leaving one series out (with 3 series or more): the
        figures and the error model go into the metadata.

    Returns
    -------
    model, meta
        The fitted :class:`~tess_backml.model.estimators.GradientBoostingModel` and its
        description (training files, recipe, held-out figures, error model).
    """
    import os
    import time

    from ..geometry import load_ephemeris
    from ..series import read_series
    from .estimators import GradientBoostingModel

    started = time.perf_counter()
    ephemeris = load_ephemeris(ephemeris)
    series = [read_series(path).binned(minutes) for path in paths]
    features = [series_features(s, ephemeris) for s in series]
    targets = [np.clip(s.sl, 0, None) for s in series]
    meta = {
        "training_files": [os.path.basename(str(path)) for path in paths],
        "series": [s.name for s in series],
        "recipe": {"estimator": "gbt", "target": "asinh(SL / 10 e-/s)", "minutes": minutes, "seed": seed, **REAL_TREES},
        "training_samples": int(sum(t.size for t in targets)),
    }

    def make():
        return GradientBoostingModel(seed=seed, **REAL_TREES)

    if evaluate and len(series) >= 3:
        held = leave_one_out(features, targets, make)
        left = [sl_left(t, p) for t, p in zip(targets, held)]
        meta["held_out"] = {
            "sl_left": dict(zip(meta["series"], left)),
            "sl_left_median": float(np.median(left)),
            "sl_left_max": float(np.max(left)),
        }
        meta["error_model"] = error_model(targets, held)
    meta["domain"] = training_domain(np.vstack(features), np.concatenate(targets))
    model = make().fit(np.vstack(features), np.concatenate(targets))
    meta["training_seconds"] = time.perf_counter() - started
    return model, meta
