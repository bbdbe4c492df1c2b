"""Learning the scattered light from the Earth/Moon geometry.

* :mod:`.features` — the feature set and training sets read from ``dataset`` NPZ files;
* :mod:`.estimators` — a ridge baseline, a neural network (the main model) and
  gradient-boosted trees, all stored as plain arrays;
* :mod:`.files` — model files that load without executing code, and the default model;
* :mod:`.real` — real SL series as training rows, the default model's recipe;
* :mod:`.evaluation` — training, held-out metrics, figures, and on-the-fly
  prediction at any pixels and times.
"""

from .estimators import MODELS, GradientBoostingModel, NeuralNetModel, RidgeModel
from .evaluation import evaluate_model, format_table, predict_cube, train_model
from .features import FEATURE_NAMES, FEATURE_SET, TrainingSet, geometry_features
from .files import (
    DEFAULT_MODEL,
    LoadedModel,
    default_model_path,
    load_model,
    save_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "FEATURE_NAMES",
    "FEATURE_SET",
    "MODELS",
    "GradientBoostingModel",
    "LoadedModel",
    "NeuralNetModel",
    "RidgeModel",
    "TrainingSet",
    "default_model_path",
    "evaluate_model",
    "format_table",
    "geometry_features",
    "load_model",
    "predict_cube",
    "save_model",
    "train_model",
]
