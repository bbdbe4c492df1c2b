"""Models from features to scattered light: a ridge baseline, a small neural network
and gradient-boosted trees.

Every model is plain arrays (:meth:`SLModel.to_arrays` / :meth:`SLModel.from_arrays`),
so model files load without executing code: the ridge and the network predict with
numpy, the trees with LightGBM from its own text model format. The network's Adam
optimiser is written here because its per-body gating (a branch per body, multiplied
by that body's lit solid angle) is not a layer that scikit-learn's MLP offers, and a
deep-learning framework would be a large dependency for 600 weights. The network is the main model: it is as
accurate as the trees here and, unlike them, smooth in its inputs, so corrected
light curves gain no steps (trees predict piecewise-constant values).

Targets are fitted as ``asinh(SL / 10 e-/s)``: scattered light spans 0 to
thousands of e-/s, and the transform keeps both the faint and the bright regime
in the loss (it is linear below ~10 e-/s and logarithmic above).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import TessBackmlError

log = logging.getLogger(__name__)

TARGET_SCALE = 10.0  # e-/s


def to_target(sl):
    return np.arcsinh(np.asarray(sl, np.float64) / TARGET_SCALE)


def from_target(value):
    return np.sinh(value) * TARGET_SCALE


class SLModel:
    """Common interface: ``fit(features, sl)``, ``predict(features)`` in e-/s, arrays in/out."""

    kind = ""

    def __init__(self):
        self.mean = None
        self.scale = None

    def _standardise(self, features, fit=False):
        features = np.asarray(features, np.float32)
        if fit:
            self.mean = features.mean(axis=0)
            scale = features.std(axis=0)
            self.scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
        return (features - self.mean) / self.scale

    def fit(self, features, sl, progress=False):
        raise NotImplementedError

    def predict(self, features, chunk: int = 200_000) -> np.ndarray:
        """The SL (e-/s, float32) at each row of ``features``, in chunks that bound memory."""
        raw = np.asarray(features, np.float32)
        out = np.empty(raw.shape[0], np.float32)
        for start in range(0, raw.shape[0], chunk):
            out[start : start + chunk] = self._predict(raw[start : start + chunk])
        return out

    def _predict(self, raw) -> np.ndarray:
        raise NotImplementedError

    def to_arrays(self) -> dict:
        return {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays):
        model = cls()
        model.mean, model.scale = arrays["mean"], arrays["scale"]
        return model


class RidgeModel(SLModel):
    """The baseline: ridge regression, gated per body like the network.

    ``SL = sum over bodies b of lit_solid_angle_b * (c_b + w_b . x_b)``, linear in
    the same inputs as the network's branches, fitted by ridge regression (e-/s,
    closed form). It shows what the network's non-linearity adds.
    """

    kind = "ridge"

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha
        self.coef = None

    def _design(self, raw, standardised):
        blocks = []
        for inputs, gate in NeuralNetModel._columns().values():
            lit = raw[:, gate : gate + 1].astype(np.float64)
            blocks += [lit, lit * standardised[:, inputs]]
        return np.hstack(blocks)

    def fit(self, features, sl, progress=False):
        raw = np.asarray(features, np.float32)
        design = self._design(raw, self._standardise(raw, fit=True))
        gram = design.T @ design
        gram += self.alpha * np.mean(np.diag(gram)) * 1e-6 * np.eye(design.shape[1])
        self.coef = np.linalg.solve(gram, design.T @ np.asarray(sl, np.float64))
        return self

    def _predict(self, raw):
        return self._design(raw, self._standardise(raw)) @ self.coef

    def to_arrays(self):
        return {**super().to_arrays(), "coef": self.coef}

    @classmethod
    def from_arrays(cls, arrays):
        model = super().from_arrays(arrays)
        model.coef = np.asarray(arrays["coef"], np.float64)
        expected = sum(len(inputs) + 1 for inputs, _ in NeuralNetModel._columns().values())
        if model.coef.shape != (expected,):
            raise TessBackmlError("model file: ridge coefficients do not match the feature set")
        return model


class NeuralNetModel(SLModel):
    """A small neural network shaped by the physics: one branch per body.

    Each body's light enters the camera once it clears the sunshade, in proportion
    to its solid angle, and spreads over the CCD according to where the body is
    seen from each pixel. So the prediction is::

        SL = sum over bodies b of  lit_solid_angle_b * exp(f_b(x_b))

    where ``lit_solid_angle_b`` is the feature of that name (the gate: zero when the
    body is below the shade, so a body that never lit the training data cannot
    invent light elsewhere) and ``f_b`` a multilayer perceptron (tanh: smooth in its
    inputs) of that body's angle, azimuth, size and camera angle and of the pixel's
    place. Trained with Adam on mini-batches, in numpy, on the loss
    ``(asinh(SL_pred / s) - asinh(SL / s))^2`` (see the module docstring).

    Parameters
    ----------
    hidden : tuple of int
        Widths of each branch's hidden layers.
    epochs, batch_size, learning_rate : training schedule (the rate decays
        linearly to a tenth over the epochs).
    seed : int
        Initial weights and batch order: training is reproducible.
    """

    kind = "nn"
    BRANCH_INPUTS = ("angle", "sin_azimuth", "cos_azimuth", "size", "camera_angle")
    SHARED_INPUTS = ("row", "column")

    def __init__(self, hidden=(16, 16), epochs: int = 15, batch_size: int = 512, learning_rate: float = 3e-3, seed: int = 0):
        super().__init__()
        self.hidden = tuple(int(h) for h in hidden)
        self.epochs, self.batch_size, self.learning_rate, self.seed = epochs, batch_size, learning_rate, seed
        self.branches = {}  # body -> (weights, biases)

    @classmethod
    def _columns(cls):
        from ..constants import BODIES
        from .features import FEATURE_NAMES

        index = {name: i for i, name in enumerate(FEATURE_NAMES)}
        shared = [index[n] for n in cls.SHARED_INPUTS]
        return {
            body: ([index[f"{body}_{n}"] for n in cls.BRANCH_INPUTS] + shared, index[f"{body}_lit_solid_angle"])
            for body in BODIES
        }

    @staticmethod
    def _branch(x, weights, biases, keep=False):
        activations = [x]
        for i, (w, b) in enumerate(zip(weights, biases)):
            x = x @ w + b
            if i < len(weights) - 1:
                x = np.tanh(x)
            activations.append(x)
        return activations if keep else x[:, 0]

    def _contributions(self, standardised, raw, keep=False):
        out = {}
        for body, (inputs, gate) in self._columns().items():
            weights, biases = self.branches[body]
            acts = self._branch(standardised[:, inputs], weights, biases, keep=True)
            light = raw[:, gate] * np.exp(np.clip(acts[-1][:, 0], -30.0, 30.0))
            out[body] = (light, acts) if keep else light
        return out

    def fit(self, features, sl, progress=False):
        from tqdm.auto import tqdm

        rng = np.random.default_rng(self.seed)
        raw = np.asarray(features, np.float32)
        x = self._standardise(raw, fit=True)
        target = to_target(sl).astype(np.float32)
        columns = self._columns()
        params, self.branches = [], {}
        for body, (inputs, _) in columns.items():
            sizes = (len(inputs), *self.hidden, 1)
            # Small initial weights (variance 1 / (2 fan-in)) start each branch near a smooth,
            # almost linear function: with variance 1 / fan-in the corrected light curves of a
            # held-out orbit kept 0.53-0.60 of the step-to-step change, with these 0.36-0.49.
            weights = [(rng.standard_normal((a, b)) * np.sqrt(0.5 / a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
            biases = [np.zeros(b, np.float32) for b in sizes[1:]]
            # start each branch near the typical brightness per unit lit solid angle
            lit = raw[:, columns[body][1]] > 1e-3
            if lit.any():
                ratio = np.asarray(sl, np.float64)[lit] / raw[lit, columns[body][1]]
                biases[-1][0] = np.log(max(float(np.median(np.clip(ratio, 1e-3, None))), 1e-3))
            self.branches[body] = (weights, biases)
            params += weights + biases
        first = [np.zeros_like(p) for p in params]
        second = [np.zeros_like(p) for p in params]
        beta1, beta2, step = 0.9, 0.999, 0
        nbatches = max(x.shape[0] // self.batch_size, 1)
        epochs = tqdm(range(self.epochs), desc="training", unit="epoch", disable=not progress)
        for epoch in epochs:
            rate = self.learning_rate * (1 - 0.9 * epoch / max(self.epochs - 1, 1))
            total = 0.0
            for batch in np.array_split(rng.permutation(x.shape[0]), nbatches):
                parts = self._contributions(x[batch], raw[batch], keep=True)
                prediction = sum(light for light, _ in parts.values())
                residual = np.arcsinh(prediction / TARGET_SCALE) - target[batch]
                total += float(np.sum(residual**2))
                d_prediction = 2.0 * residual / np.sqrt(TARGET_SCALE**2 + prediction**2) / len(batch)
                grads = []
                for body, (light, acts) in parts.items():
                    weights, _ = self.branches[body]
                    delta = (d_prediction * light)[:, None]
                    grads_w, grads_b = [], []
                    for layer in range(len(weights) - 1, -1, -1):
                        grads_w.append(acts[layer].T @ delta)
                        grads_b.append(delta.sum(axis=0))
                        if layer:
                            delta = (delta @ weights[layer].T) * (1 - acts[layer] ** 2)
                    grads += grads_w[::-1] + grads_b[::-1]
                step += 1
                for p, g, m, v in zip(params, grads, first, second):
                    m *= beta1
                    m += (1 - beta1) * g
                    v *= beta2
                    v += (1 - beta2) * g * g
                    p -= rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
            epochs.set_postfix(loss=f"{total / x.shape[0]:.4f}")
            log.debug("epoch %d loss %.5f", epoch, total / x.shape[0])
        return self

    def _predict(self, raw):
        return sum(self._contributions(self._standardise(raw), raw).values())

    def to_arrays(self):
        arrays = {**super().to_arrays(), "hidden": np.asarray(self.hidden, np.int64)}
        for body, (weights, biases) in self.branches.items():
            for i, (w, b) in enumerate(zip(weights, biases)):
                arrays[f"{body}_w{i}"], arrays[f"{body}_b{i}"] = w, b
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        model = super().from_arrays(arrays)
        model.hidden = tuple(int(h) for h in np.atleast_1d(arrays["hidden"]))
        nlayers = len(model.hidden) + 1
        for body, (inputs, _) in cls._columns().items():
            weights = [np.asarray(arrays[f"{body}_w{i}"], np.float32) for i in range(nlayers)]
            biases = [np.asarray(arrays[f"{body}_b{i}"], np.float32) for i in range(nlayers)]
            width = len(inputs)
            for w, b in zip(weights, biases):
                if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                    raise TessBackmlError("model file: inconsistent network layers")
                width = w.shape[1]
            if width != 1:
                raise TessBackmlError("model file: the network does not end in one output")
            model.branches[body] = (weights, biases)
        return model


class GradientBoostingModel(SLModel):
    """Gradient-boosted trees, trained and evaluated by LightGBM.

    LightGBM keeps its trees in a plain-text model format that it loads without pickle
    and predicts from quickly; the model file stores that text as a string array.
    The target is ``asinh(SL / 10 e-/s)`` (see the module docstring), so an ``"l2"``
    objective fits a geometric-mean-like level and ``"quantile"`` (with ``alpha``) a
    quantile of the SL itself (quantiles survive the monotone transform).

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Number of trees, shrinkage, leaves per tree, samples per leaf, L2 penalty on
        leaf values (the names of the scikit-learn estimator this replaced).
    objective : {"l2", "quantile"}
    alpha : float
        The quantile, with ``objective="quantile"``.
    seed : int
        LightGBM is run deterministically with this seed.
    """

    kind = "gbt"

    def __init__(self, max_iter: int = 300, learning_rate: float = 0.1, max_leaf_nodes: int = 63, seed: int = 0,
                 min_samples_leaf: int = 20, l2_regularization: float = 0.0, objective: str = "l2", alpha: float = 0.5):
        super().__init__()
        self.rounds = int(max_iter)
        self.params = {
            "objective": objective, "alpha": float(alpha), "learning_rate": float(learning_rate),
            "num_leaves": int(max_leaf_nodes), "min_data_in_leaf": int(min_samples_leaf),
            "lambda_l2": float(l2_regularization), "seed": int(seed), "deterministic": True,
            "force_row_wise": True, "num_threads": 2, "verbose": -1,
        }
        self.booster = None

    def fit(self, features, sl, progress=False, weight=None):
        import lightgbm

        raw = np.asarray(features, np.float32)
        self._standardise(raw, fit=True)  # kept for the feature-count checks of model files
        data = lightgbm.Dataset(raw, to_target(np.clip(sl, 0, None)), weight=weight, params={"verbose": -1})
        self.booster = lightgbm.train(self.params, data, num_boost_round=self.rounds)
        return self

    def _predict(self, raw):
        return from_target(self.booster.predict(raw, num_threads=2))

    def to_arrays(self):
        return {**super().to_arrays(), "lightgbm_model": np.asarray(self.booster.model_to_string())}

    @classmethod
    def from_arrays(cls, arrays):
        import lightgbm

        model = super().from_arrays(arrays)
        if "lightgbm_model" not in arrays:
            raise TessBackmlError("model file: trees of an older tess-backml (before LightGBM): retrain them")
        text = arrays["lightgbm_model"]
        if text.dtype.kind != "U" or text.ndim != 0:
            raise TessBackmlError("model file: the trees are not a LightGBM model text")
        try:
            model.booster = lightgbm.Booster(model_str=str(text))
        except lightgbm.basic.LightGBMError as exc:
            raise TessBackmlError(f"model file: LightGBM cannot read its trees ({str(exc).splitlines()[0]})") from None
        if model.booster.num_feature() != np.asarray(model.mean).size:
            raise TessBackmlError("model file: the trees' feature count does not match the feature set")
        return model


MODELS = {cls.kind: cls for cls in (RidgeModel, NeuralNetModel, GradientBoostingModel)}
