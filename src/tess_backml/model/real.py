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
    a new one 1. Without it, leave-one-series-out predictions of the shared real
    series left 0.71 of their SL (median), with it 0.61.

Scores (:func:`sl_left`, :func:`explained_variance`) compare a model with the real SL
on the series' own cadences.
"""

from __future__ import annotations

import numpy as np

from ..constants import BODIES

REAL_FEATURE_SET = "real-1"
_PER_BODY = ("angle", "sin_azimuth", "cos_azimuth", "size", "camera_angle", "phase")
REAL_FEATURE_NAMES = tuple(f"{body}_{name}" for body in BODIES for name in _PER_BODY)


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


def grid_features(sector, camera, ccd, rows, cols, times, ephemeris=None) -> np.ndarray:
    """Features (ntimes * nrows * ncols, len(REAL_FEATURE_NAMES)) float32, time-major, on
    the grid of 1-based CCD ``rows`` x ``cols`` at BTJD ``times``."""
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
#: 26 training series, larger trees only learn the series by heart).
REAL_TREES = {"max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
              "l2_regularization": 1.0}


def error_model(truth, predicted) -> dict:
    """An error ``hypot(floor, fraction * SL)`` (e-/s) that gives held-out residuals
    ``truth - predicted`` a unit spread: the floor from where little light is predicted,
    the fraction from where much is (robust, 1.4826 x median absolute residual)."""
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    residual = np.abs(truth - predicted)
    faint = predicted < np.percentile(predicted, 50)
    floor = 1.4826 * float(np.median(residual[faint])) + 1.0
    bright = predicted > 20
    fraction = 1.4826 * float(np.median(residual[bright] / predicted[bright])) if bright.any() else 0.5
    return {"floor": floor, "fraction": fraction}


def model_error(meta: dict, flux) -> np.ndarray:
    """The error of a model's SL: from its error model, else its held-out RMS error."""
    errors = meta.get("error_model")
    if errors:
        return np.hypot(errors["floor"], errors["fraction"] * np.asarray(flux, float)).astype(np.float32)
    return np.full_like(np.asarray(flux, np.float32), float(meta.get("model_rmse", np.nan)))


def train_real_model(paths, ephemeris=None, minutes: float = 30.0, seed: int = 0, evaluate: bool = True):
    """Gradient-boosted trees (feature set real-1) trained on real series.

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
        meta["error_model"] = error_model(np.concatenate(targets), np.concatenate(held))
    model = make().fit(np.vstack(features), np.concatenate(targets))
    meta["training_seconds"] = time.perf_counter() - started
    return model, meta
