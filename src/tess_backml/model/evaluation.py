"""Training, held-out evaluation and on-the-fly prediction of the scattered light.

Metrics (per model, on the held-out samples):

``rmse``, ``mae``
    Of the residual ``SL - prediction``, e-/s.
``explained_variance``
    ``1 - sum(residual^2) / sum(SL^2)``: the fraction of the scattered light's
    variance removed, taken about zero because zero means no scattered light
    (the cube is relative to the darkest frames). "No correction" scores 0.
``step_ratio``
    Median absolute difference between consecutive predictions of a bin divided
    by that of the truth, over consecutive times where the SL exceeds 1 e-/s
    (elsewhere both are ~0): above 1 the model moves more than the SL does.
``residual_step_ratio``
    The same for the corrected light curve (``SL - prediction``): below 1 the
    correction leaves the light curve steadier than it was; above 1 it adds steps.
"""

from __future__ import annotations

import logging
import time as _time

import numpy as np

from ..errors import TessBackmlError
from .estimators import MODELS, RidgeModel
from .features import TrainingSet

log = logging.getLogger(__name__)

DEFAULT_MAX_SAMPLES = 300_000
LIT = 1.0  # e-/s: steps are compared where the SL exceeds this at both times


def _split(data: TrainingSet, train_orbit):
    if train_orbit is None:
        return data.valid, np.zeros_like(data.valid)
    if train_orbit not in (1, 2):
        raise TessBackmlError(f"the training orbit must be 1 or 2, got {train_orbit}")
    train = data.valid & (data.orbit == train_orbit)
    test = data.valid & (data.orbit != train_orbit)
    if not train.any():
        raise TessBackmlError(f"the training sets have no samples in orbit {train_orbit}")
    return train, test


def train_model(paths, kind: str = "nn", train_orbit=1, max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0, progress=True, **options):
    """Train a model (and the ridge baseline) on training-set NPZ files.

    Parameters
    ----------
    paths : list of str
        Training sets (``tess-backml dataset`` output), any sectors/cameras/CCDs.
    kind : {"nn", "gbt", "ridge"}
    train_orbit : {1, 2, None}
        Train on this orbit of every sector and hold the other out; None: all.
    max_samples : int
        Random subset of the training samples used (the baseline uses them all).

    Returns
    -------
    model, baseline, metadata
        ``metadata`` records the data, the split and (with a held-out orbit) the
        held-out metrics; :func:`tess_backml.model.save_model` writes all three.
    """
    if kind not in MODELS:
        raise TessBackmlError(f"model must be one of {', '.join(sorted(MODELS))}, got {kind!r}")
    data = TrainingSet(paths)
    train, test = _split(data, train_orbit)
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(train)
    if chosen.size > max_samples:
        chosen = np.sort(rng.choice(chosen, max_samples, replace=False))
    started = _time.perf_counter()
    model = MODELS[kind](**options) if kind != "ridge" else RidgeModel()
    model.fit(data.features[chosen], data.target[chosen], progress=progress)
    training_seconds = _time.perf_counter() - started
    baseline = RidgeModel().fit(data.features[train], data.target[train])
    metadata = {
        "training_data": data.sources,
        "train_orbit": train_orbit,
        "training_samples": int(chosen.size),
        "training_seconds": round(training_seconds, 2),
        "seed": seed,
    }
    if test.any():
        table = metrics_table(data, test, {"model": model, "baseline": baseline})
        metadata["held_out"] = table
        metadata["model_rmse"] = table["model"]["rmse"]
    else:
        metadata["model_rmse"] = float(np.sqrt(np.mean((model.predict(data.features[chosen]) - data.target[chosen]) ** 2)))
    return model, baseline, metadata


def _metrics(truth, prediction, shapes_index):
    residual = truth - prediction
    scores = {
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "explained_variance": float(1.0 - np.sum(residual**2) / max(np.sum(truth**2), 1e-30)),
    }
    if shapes_index is not None:
        true_steps, predicted_steps, residual_steps = [], [], []
        for index in shapes_index:  # (ntimes, nbins) index arrays into the held-out samples
            lit = (truth[index][1:] > LIT) & (truth[index][:-1] > LIT)
            true_steps.append(np.abs(np.diff(truth[index], axis=0))[lit])
            predicted_steps.append(np.abs(np.diff(prediction[index], axis=0))[lit])
            residual_steps.append(np.abs(np.diff(truth[index] - prediction[index], axis=0))[lit])
        true_median = np.median(np.concatenate(true_steps)) if true_steps else np.nan
        for key, steps in (("step_ratio", predicted_steps), ("residual_step_ratio", residual_steps)):
            scores[key] = float(np.median(np.concatenate(steps)) / true_median) if true_median > 0 else float("nan")
    return scores


def _time_series_index(data: TrainingSet, mask):
    """Per file, a (ntimes, nbins) index of the masked samples whose times are all masked."""
    out, start = [], 0
    positions = np.cumsum(mask) - 1
    for shape in data.shapes:
        size = int(np.prod(shape))
        block = mask[start : start + size].reshape(shape[0], -1)
        times = np.flatnonzero(block.all(axis=1))
        if times.size > 1:
            out.append(positions[start : start + size].reshape(shape[0], -1)[times])
        start += size
    return out


def metrics_table(data: TrainingSet, mask, models: dict) -> dict:
    """Metrics of each model (name -> SLModel) and of no correction on ``data[mask]``."""
    truth = data.target[mask].astype(np.float64)
    index = _time_series_index(data, mask)
    table = {}
    for name, model in models.items():
        table[name] = _metrics(truth, model.predict(data.features[mask]).astype(np.float64), index)
    table["no correction"] = _metrics(truth, np.zeros_like(truth), index)
    return table


def evaluate_model(model_path, paths, orbit=2):
    """Metrics of a model file (and its baseline) on training sets, on one orbit or all.

    Returns
    -------
    table : dict
        name -> {"rmse", "mae", "explained_variance", "step_ratio"}.
    data, mask, loaded
        The samples used, for figures.
    """
    from .files import load_model

    loaded = load_model(model_path)
    data = TrainingSet(paths)
    if orbit is None:
        mask = data.valid
    elif orbit in (1, 2):
        mask = data.valid & (data.orbit == orbit)
    else:
        raise TessBackmlError(f"the orbit must be 1 or 2, got {orbit}")
    if not mask.any():
        raise TessBackmlError(f"no samples in orbit {orbit}")
    models = {loaded.meta["kind"]: loaded.model}
    if loaded.baseline is not None:
        models["ridge baseline"] = loaded.baseline
    return metrics_table(data, mask, models), data, mask, loaded


def format_table(table: dict) -> str:
    lines = [f"{'model':16s} {'RMSE':>9s} {'MAE':>9s} {'explained':>10s} {'steps':>7s} {'left':>6s}"]
    for name, row in table.items():
        lines.append(
            f"{name:16s} {row['rmse']:9.3f} {row['mae']:9.3f} {100 * row['explained_variance']:9.1f}% "
            f"{row.get('step_ratio', float('nan')):7.2f} {row.get('residual_step_ratio', float('nan')):6.2f}"
        )
    lines.append(
        "(RMSE, MAE in e-/s; explained: fraction of the SL variance removed; steps: median step between "
        "consecutive predictions over the truth's; left: the same for the corrected light curve)"
    )
    return "\n".join(lines)


def model_features(sector, camera, ccd, rows, cols, times, ephemeris=None, feature_set=None) -> np.ndarray:
    """A model's features (ntimes * nrows * ncols, nfeatures), time-major, at 1-based CCD
    ``rows`` x ``cols`` and BTJD ``times``.

    ``feature_set``: the features the model was trained on (its file's ``feature_set``;
    default the cube training sets' ``geometry-2``)."""
    from ..geometry import camera_vectors, pixel_maps
    from .features import FEATURE_SET, geometry_features
    from .real import REAL_FEATURE_SETS, grid_features

    rows, cols, times = np.asarray(rows, float), np.asarray(cols, float), np.asarray(times, float)
    if feature_set in REAL_FEATURE_SETS:
        return grid_features(sector, camera, ccd, rows, cols, times, ephemeris, feature_set)
    if feature_set not in (None, FEATURE_SET):
        raise TessBackmlError(f"unknown feature set {feature_set!r}")
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    maps = pixel_maps(sector, camera, ccd, grid_rows, grid_cols, times, ephemeris=ephemeris)
    table = camera_vectors(sector, camera, times=times, ephemeris=ephemeris)
    body_maps, vectors = {}, {}
    for body in ("earth", "moon"):
        body_maps[body] = {
            "angle": maps[f"{body}_angle"],
            "azimuth": maps[f"{body}_azimuth"],
            "size": maps[f"{body}_angular_size"],
        }
        vectors[body] = {"camera_angle": np.asarray(table[f"{body.capitalize()}_Camera_Angle"], float)}
    return geometry_features(body_maps, vectors, rows, cols)


def predict_cube(model, sector, camera, ccd, rows, cols, times, ephemeris=None, feature_set=None) -> np.ndarray:
    """The model's SL (ntimes, nrows, ncols) at 1-based CCD ``rows`` x ``cols`` and BTJD
    ``times``; ``feature_set`` as in :func:`model_features`."""
    features = model_features(sector, camera, ccd, rows, cols, times, ephemeris, feature_set)
    return model.predict(features).reshape(np.size(times), np.size(rows), np.size(cols))
