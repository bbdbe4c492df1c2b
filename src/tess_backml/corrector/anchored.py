"""The anchored model path: the learnt model's shape across the stamp and in time,
its amplitude fitted to the stamp's own background (see :mod:`tess_backml.model.anchor`)."""

from __future__ import annotations

import numpy as np

from ..errors import TessBackmlError


def anchored_sl(evaluator, anchor, rows, cols, btjd):
    """The SL (ntimes, nrows, ncols), its error and flags at ``btjd`` on the grid of
    ``rows`` x ``cols``, anchored on ``anchor`` (an :class:`~tess_backml.series.SLSeries`
    of the same stamp: its own background).

    ``evaluator`` is the :class:`~tess_backml.corrector.model_path.ModelEvaluator` of the
    model. At each time the SL over the stamp is the anchored SL at the anchor's place
    times the ratio of the model over the stamp to the model at that place (the error
    floor keeps faint times from dividing by nothing); the error comes from the
    model's anchored error model, calibrated each orbit on the other on held-out series.
    The anchor is fitted in the means the model was trained on (its recipe's minutes).
    """
    from ..model.anchor import anchor_fit, orbit_index
    from ..model.real import model_error, place_features
    from ..series import MIN_DARK_SPAN_DAYS
    from .model_path import OUTSIDE_TRAINING

    meta = evaluator.meta
    if "anchor" not in meta or "anchor_error_model" not in meta:
        raise TessBackmlError("this model has no anchored recipe (models trained on real series have one: "
                              "'tess-backml train' on light curves, or model='default')")
    # in the means the recipe was chosen and its errors calibrated on (30 min)
    anchor = anchor.binned(float(meta.get("recipe", {}).get("minutes", 30.0)))  # spikes left out
    inside = (anchor.time >= btjd.min() - 1) & (anchor.time <= btjd.max() + 1)
    time, observed = anchor.time[inside], anchor.sl[inside]
    span = float(np.ptp(time)) if time.size else 0.0
    if time.size >= 2 and span < MIN_DARK_SPAN_DAYS:  # its SL above a dark level it never saw would anchor near nothing
        raise TessBackmlError(f"the stamp spans {span:.1f} days: too short to know its dark level, so its own background "
                              f"cannot anchor the model (at least {MIN_DARK_SPAN_DAYS:g} days); correct without anchoring")
    if time.size < 10:
        raise TessBackmlError(f"the stamp's own background has {time.size} usable cadences: too few to "
                              "anchor the model on (at least 10)")
    place_sl, _, place_flags = evaluator.evaluate(np.array([anchor.row]), np.array([anchor.column]), time)
    place_sl = np.nan_to_num(place_sl[:, 0, 0].astype(float))
    known = (place_flags & OUTSIDE_TRAINING) == 0  # light the model does not know cannot anchor it
    # the anchored recipes were chosen on the widest real features, whatever the trees use
    features = place_features(evaluator.sector, evaluator.camera, evaluator.ccd, anchor.row, anchor.column, time,
                              evaluator.ephemeris)
    fitted = anchor_fit(place_sl, observed, features, orbit_index(time), known, meta["anchor"])
    floor = float(meta["anchor_error_model"]["floor"])
    flux, _, flags = evaluator.evaluate(rows, cols, btjd)
    at_place = np.interp(btjd, time, place_sl)[:, None, None]
    flux = (np.interp(btjd, time, fitted)[:, None, None] * (flux + floor) / (at_place + floor)).astype(np.float32)
    return flux, model_error({"error_model": meta["anchor_error_model"]}, flux), flags
