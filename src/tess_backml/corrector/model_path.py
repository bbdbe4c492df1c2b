"""The learnt-model path: the SL from the Earth/Moon geometry, no cube needed."""

from __future__ import annotations

import numpy as np

from ..errors import TessBackmlError
from .operator import (
    FIRST_SCIENCE_COLUMN,
    FIRST_SCIENCE_ROW,
    LAST_SCIENCE_COLUMN,
    LAST_SCIENCE_ROW,
    OUTSIDE_TRAINING,
    CubeInterpolator,
    check_on_science_region,
)
from .splines import TimeSpline

#: Spacing of the nodes the model is evaluated on, in pixels and minutes.
MODEL_NODE_PIXELS = 16
MODEL_NODE_MINUTES = 30.0


def _nodes(values, step):
    if np.ptp(values) == 0:
        return values[:1]
    return np.linspace(values.min(), values.max(), max(int(np.ceil(np.ptp(values) / step)) + 1, 2))


def _time_nodes(btjd, start, stop):
    """The times the model is evaluated at: the asked times themselves when they are no
    more than nodes every :data:`MODEL_NODE_MINUTES` over them would be (a forecast, a
    30-min series: exact, as the model was measured), else such nodes, one beyond each end."""
    step = MODEL_NODE_MINUTES / 1440
    first, last = max(btjd.min() - step, start), min(btjd.max() + step, stop)
    count = max(int(np.ceil((last - first) / step)) + 1, 3)
    asked = np.unique(btjd)
    return asked if 2 <= asked.size <= count else np.linspace(first, last, count)


class ModelEvaluator:
    """A learnt model evaluated on a grid of nodes (every 16 pixels, every 30 minutes,
    spanning the request; the asked times themselves when there are no more of them)
    and interpolated like a cube, linearly in time: geometry changes slowly, so this
    costs little accuracy and makes 10^7 pixel-times take a fraction of a second.

    The prediction is the model's times its recipe's shrink (models trained on real
    series: see :mod:`tess_backml.model.safety`). The error comes from the model's error
    model (calibrated on held-out series, growing with the light), or is its held-out
    RMS error: a systematic uncertainty. Times when the Earth or the Moon is nearer the
    pixels or the boresight than in any training cadence are flagged
    ``OUTSIDE_TRAINING``: the model predicts nothing there (it does not know that light)
    and the error is at least the bright light it learnt (see
    :func:`tess_backml.model.real.model_error`).

    Parameters
    ----------
    model : object with ``predict``
        A loaded model (:func:`tess_backml.model.load_model`).
    meta : dict
        Its description (``model_rmse`` gives the error).
    sector, camera, ccd : int
        Where the pixels are.
    span : (float, float)
        BTJD range of the sector.
    ephemeris : Ephemeris, optional
        For the geometry (default: SPICE).
    """

    def __init__(self, model, meta, sector, camera, ccd, span, ephemeris=None):
        self.model, self.meta = model, meta
        self.sector, self.camera, self.ccd = sector, camera, ccd
        self.span, self.ephemeris = span, ephemeris

    def evaluate(self, rows, cols, btjd):
        from ..model.evaluation import model_features
        from ..model.real import model_error, outside_domain
        from ..model.safety import safe_prediction

        start, stop = self.span
        if btjd.min() < start or btjd.max() > stop:
            raise TessBackmlError(
                f"times BTJD {btjd.min():.4f}-{btjd.max():.4f} are outside sector {self.sector} (BTJD {start:.4f}-{stop:.4f})"
            )
        check_on_science_region(rows, FIRST_SCIENCE_ROW, LAST_SCIENCE_ROW, "rows")
        check_on_science_region(cols, FIRST_SCIENCE_COLUMN, LAST_SCIENCE_COLUMN, "columns")
        time_nodes = _time_nodes(btjd, start, stop)
        row_nodes, col_nodes = _nodes(rows, MODEL_NODE_PIXELS), _nodes(cols, MODEL_NODE_PIXELS)
        features = model_features(
            self.sector, self.camera, self.ccd, row_nodes, col_nodes, time_nodes,
            ephemeris=self.ephemeris, feature_set=self.meta.get("feature_set"),
        )
        node_outside = outside_domain(self.meta.get("domain"), features)
        # the model's own safety: its shrink, and nothing where it extrapolates
        shrink = float(self.meta.get("recipe", {}).get("shrink", 1.0))
        predicted = safe_prediction(self.model, features, shrink, node_outside)
        predicted = predicted.reshape(time_nodes.size, row_nodes.size, col_nodes.size).astype(np.float32)
        # the predictions on the nodes are a cube like any other: interpolate them the same way
        half_bin = float(np.median(np.diff(time_nodes)) / 2)
        # linear in time: a spline through the trees' steps would overshoot them
        nodes = CubeInterpolator(
            time_nodes, predicted, np.zeros_like(predicted), row_nodes, col_nodes, half_bin, [], self.span, self.sector,
            spline=TimeSpline(time_nodes, order=1),
        )
        flux, _, flags = nodes.evaluate(rows, cols, btjd)
        node_outside = node_outside.reshape(time_nodes.size, -1).any(axis=1)
        # a time is outside when either node around it is
        outside = np.interp(btjd, time_nodes, node_outside.astype(float)) > 0
        flags[outside] |= OUTSIDE_TRAINING
        return flux, model_error(self.meta, flux, outside[:, None, None]), flags
