"""Models from features to scattered light: a ridge baseline, a small neural network
and gradient-boosted trees.

Every model is plain arrays (:meth:`SLModel.to_arrays` / :meth:`SLModel.from_arrays`)
and predicts with numpy alone, so model files load without executing code and
need neither scikit-learn nor a GPU. The network is the main model: it is as
accurate as the trees here and, unlike them, smooth in its inputs, so corrected
light curves gain no steps (trees predict piecewise-constant values).

Targets are fitted as ``asinh(SL / 10 e-/s)``: scattered light spans 0 to
thousands of e-/s, and the transform keeps both the faint and the bright regime
in the loss (it is linear below ~10 e-/s and logarithmic above).
"""

from __future__ import annotations

import logging

import numba
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
    """Gradient-boosted trees (scikit-learn's histogram GBT for training, needs
    ``pip install 'tess-backml[ml]'``), stored as node arrays and evaluated in numpy."""

    kind = "gbt"

    def __init__(self, max_iter: int = 300, learning_rate: float = 0.1, max_leaf_nodes: int = 63, seed: int = 0, **options):
        super().__init__()
        # options: other HistGradientBoostingRegressor settings (min_samples_leaf, l2_regularization, ...)
        self.params = {"max_iter": max_iter, "learning_rate": learning_rate, "max_leaf_nodes": max_leaf_nodes, **options}
        self.seed = seed

    def fit(self, features, sl, progress=False):
        try:
            from sklearn.ensemble import HistGradientBoostingRegressor
        except ImportError:
            raise TessBackmlError("training gradient-boosted trees needs scikit-learn: pip install 'tess-backml[ml]'") from None
        x = self._standardise(features, fit=True)
        regressor = HistGradientBoostingRegressor(early_stopping=False, random_state=self.seed, **self.params)
        regressor.fit(x, to_target(sl))
        self.baseline = float(np.ravel(regressor._baseline_prediction)[0])
        trees = [predictors[0].nodes for predictors in regressor._predictors]
        self.offsets = np.cumsum([0] + [len(t) for t in trees[:-1]]).astype(np.int64)
        nodes = np.concatenate(trees)
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.left = nodes["left"].astype(np.int64)
        self.right = nodes["right"].astype(np.int64)
        self.leaf = nodes["is_leaf"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        # the exported trees must predict what scikit-learn's do
        sample = x[:2000].astype(np.float64)
        ours = _walk_trees(sample, self.offsets, self.feature, self.threshold, self.left, self.right, self.leaf, self.value)
        if not np.allclose(ours + self.baseline, regressor.predict(sample), rtol=1e-9, atol=1e-9):
            raise TessBackmlError("exporting the gradient-boosted trees failed: their predictions differ from scikit-learn's")
        return self

    def _predict(self, raw):
        x = self._standardise(raw).astype(np.float64)
        total = _walk_trees(x, self.offsets, self.feature, self.threshold, self.left, self.right, self.leaf, self.value)
        return from_target(total + self.baseline)

    def to_arrays(self):
        return {
            **super().to_arrays(),
            "baseline": np.float64(self.baseline),
            "offsets": self.offsets,
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "leaf": self.leaf,
            "value": self.value,
        }

    @classmethod
    def from_arrays(cls, arrays):
        model = super().from_arrays(arrays)
        model.baseline = float(arrays["baseline"])
        for key in ("offsets", "feature", "threshold", "left", "right", "leaf", "value"):
            setattr(model, key, np.asarray(arrays[key]))
        n = model.feature.size
        inner = ~model.leaf
        if (
            any(getattr(model, k).size != n for k in ("threshold", "left", "right", "leaf", "value"))
            or np.any(model.offsets < 0)
            or np.any(model.offsets >= max(n, 1))
            or np.any(model.feature[inner] < 0)
            or np.any(model.feature[inner] >= model.mean.size)
        ):
            raise TessBackmlError("model file: inconsistent tree arrays")
        # children must point forward within their tree, so evaluation always ends
        ends = np.append(model.offsets[1:], n)
        tree_end = np.repeat(ends, np.diff(np.append(model.offsets, n)))
        local = np.arange(n) - np.repeat(model.offsets, np.diff(np.append(model.offsets, n)))
        for child in (model.left, model.right):
            target = child + (np.arange(n) - local)
            if np.any(inner & ((child <= local) | (target >= tree_end))):
                raise TessBackmlError("model file: tree nodes point outside their tree")
        return model


@numba.njit(parallel=True, cache=True)
def _walk_trees(x, offsets, feature, threshold, left, right, leaf, value):
    """Sum of the trees' leaf values for each sample (children index within their tree)."""
    out = np.zeros(x.shape[0])
    for i in numba.prange(x.shape[0]):
        total = 0.0
        for offset in offsets:
            node = offset
            while not leaf[node]:
                node = offset + (left[node] if x[i, feature[node]] <= threshold[node] else right[node])
            total += value[node]
        out[i] = total
    return out


MODELS = {cls.kind: cls for cls in (RidgeModel, NeuralNetModel, GradientBoostingModel)}
