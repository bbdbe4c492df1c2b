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

How these came about: an earlier session chose the set ``real-3`` and the tree size
by leaving one series out of 28 and keeping what scored best, so those figures were
chosen on their own test series. The default model now chooses between ``real-2``
and ``real-3`` (and its tree size, loss and shrink) inside training folds only
(:mod:`tess_backml.model.safety`); its nested held-out figures are in its metadata.

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
