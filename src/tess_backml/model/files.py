"""Model files: one NPZ of plain arrays plus a JSON description, loaded without pickle.

``np.load(..., allow_pickle=False)`` refuses any object array, so a file cannot
make the loader run code: a pickle renamed ``model.npz`` is refused, not executed.
The JSON entry (``__meta__``) records the format version, the model kind, the
feature set and names, the package version, the training data (files, sectors,
cameras, CCDs, orbit) and the held-out error; the loader checks all of it.
"""

from __future__ import annotations

import json
import zipfile
from typing import NamedTuple

import numpy as np

from .._files import atomic_output
from ..errors import FileFormatError, TessBackmlError
from .estimators import MODELS
from .features import FEATURE_NAMES, FEATURE_SET
from .real import REAL_FEATURE_SETS

MODEL_FORMAT = "tess-backml-model-1"
#: The name that selects the model shipped with the package (see :func:`default_model_path`).
DEFAULT_MODEL = "default"
#: The feature sets this version computes, and their feature names.
FEATURE_SETS = {FEATURE_SET: FEATURE_NAMES, **REAL_FEATURE_SETS}
BASELINE_PREFIX = "baseline__"


class LoadedModel(NamedTuple):
    model: object
    baseline: object  # the ridge baseline trained alongside, or None
    meta: dict


def save_model(model, path, metadata: dict, baseline=None, feature_set: str = FEATURE_SET) -> str:
    """Write ``model`` (an :class:`~tess_backml.model.estimators.SLModel`), the
    ``baseline`` trained alongside (optional) and their description; ``feature_set``
    names the features it was trained on (a key of :data:`FEATURE_SETS`)."""
    from .. import __version__

    arrays = {key: np.asarray(value) for key, value in model.to_arrays().items()}
    if baseline is not None:
        arrays.update({BASELINE_PREFIX + key: np.asarray(value) for key, value in baseline.to_arrays().items()})
    for key, value in arrays.items():
        if value.dtype == object:
            raise FileFormatError(f"model array {key!r} is not a plain array")
    meta = {
        "format": MODEL_FORMAT,
        "kind": model.kind,
        "feature_set": feature_set,
        "features": list(FEATURE_SETS[feature_set]),
        "package_version": __version__,
        **metadata,
    }
    arrays["__meta__"] = np.asarray(json.dumps(meta))
    with atomic_output(path, "wb") as stream:
        np.savez(stream, **arrays)
    return str(path)


def default_model_path() -> str:
    """The model shipped with the package: gradient-boosted trees trained on the 28
    shared real series (SPOC light curves' ``SAP_BKG`` and a TESScut, Sectors 1-23, all
    cameras), feature set ``real-3``. Its metadata lists the training files, the recipe,
    the leave-one-series-out figures and its error model; ``docs/cli.md`` gives the
    command that retrains it."""
    from importlib import resources

    path = resources.files("tess_backml.model").joinpath("data", "default_model.npz")
    if not path.is_file():
        raise FileFormatError("the default model is missing from this installation of tess-backml: reinstall it")
    return str(path)


def load_model(path) -> LoadedModel:
    """Read a model file: (model, baseline, metadata). Refuses anything else with a clear
    message. ``path`` may be ``"default"``: the model shipped with the package
    (:func:`default_model_path`; a file named so is ``./default``)."""
    if str(path) == DEFAULT_MODEL:
        path = default_model_path()
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise FileFormatError(f"{path} is not a tess-backml model file (not an NPZ archive)")
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise FileFormatError(f"no such model file: {path}") from None
    except FileFormatError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        # a pickle (allow_pickle=False refuses it), a truncated or corrupted archive
        raise FileFormatError(f"{path} is not a tess-backml model file ({exc})") from None
    if "__meta__" not in arrays or arrays["__meta__"].dtype.kind != "U":
        raise FileFormatError(f"{path} is not a tess-backml model file (no description)")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except json.JSONDecodeError:
        raise FileFormatError(f"{path}: the model description is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise FileFormatError(f"{path}: model format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {MODEL_FORMAT}")
    names = FEATURE_SETS.get(meta.get("feature_set"))
    if names is None or meta.get("features") != list(names):
        raise FileFormatError(
            f"{path} was trained on feature set {meta.get('feature_set')!r}, but this version of tess-backml "
            f"computes {' and '.join(repr(key) for key in FEATURE_SETS)}: retrain it with 'tess-backml train'"
        )
    kind = meta.get("kind")
    if kind not in MODELS:
        raise FileFormatError(f"{path}: unknown model kind {kind!r}")
    baseline_arrays = {k[len(BASELINE_PREFIX) :]: arrays.pop(k) for k in list(arrays) if k.startswith(BASELINE_PREFIX)}
    try:
        model = MODELS[kind].from_arrays(arrays)
        baseline = MODELS["ridge"].from_arrays(baseline_arrays) if baseline_arrays else None
    except KeyError as exc:
        raise FileFormatError(f"{path}: the model file lacks the array {exc}") from None
    except TessBackmlError as exc:
        raise FileFormatError(f"{path}: {exc}") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise FileFormatError(f"{path}: the model arrays are inconsistent ({exc})") from None
    for part in (model, baseline):
        if part is not None and (
            np.asarray(part.mean).shape != (len(names),) or np.asarray(part.scale).shape != (len(names),)
        ):
            raise FileFormatError(f"{path}: the model's feature scaling does not match its feature set")
    return LoadedModel(model, baseline, meta)
