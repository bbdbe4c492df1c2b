"""Real scattered light as training rows: features of a real place, and the scores."""

import numpy as np
import pytest
from conftest import shared_file

from tess_backml.model.real import (
    REAL_FEATURE_NAMES,
    explained_variance,
    leave_one_out,
    place_features,
    series_features,
    sl_left,
)
from tess_backml.series import read_series


def test_features_of_the_real_s12_cutout_follow_the_earth_and_the_moon():
    ephemeris = str(shared_file("ephemeris/20190101_tess_ephem.csv").parent)
    series = read_series(shared_file("real/tess-s0012-2-1_tesscut_1x1.fits")).binned(120.0)
    features = series_features(series, ephemeris)
    assert features.shape == (series.time.size, len(REAL_FEATURE_NAMES))
    named = dict(zip(REAL_FEATURE_NAMES, features.T))
    assert np.all((named["earth_angle"] > 0) & (named["earth_angle"] <= 2))
    np.testing.assert_allclose(named["earth_sin_azimuth"] ** 2 + named["earth_cos_azimuth"] ** 2, 1, atol=1e-5)
    # Seen from TESS, the Moon and the Earth go through their phases within a sector (the
    # Earth once per 13.7-day orbit)
    for body in ("earth", "moon"):
        assert named[f"{body}_phase"].min() < 30 / 180 and named[f"{body}_phase"].max() > 150 / 180
    # the brightest SL comes with the Earth nearest the boresight
    assert named["earth_camera_angle"][np.argmax(series.sl)] < np.median(named["earth_camera_angle"])
    single = place_features(12, 2, 1, series.row, series.column, series.time[:3], ephemeris)
    np.testing.assert_array_equal(single, features[:3])


def test_scores_and_leave_one_out():
    truth = np.array([0.0, 10.0, 20.0, 10.0])
    assert sl_left(truth, np.zeros(4)) == 1.0 and sl_left(truth, truth) == 0.0
    assert sl_left(truth, 2 * truth) == pytest.approx(1.0)  # twice the light is as bad as none
    assert explained_variance(truth, truth + 5) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    features = [rng.uniform(0, 1, (50, 3)) for _ in range(4)]
    targets = [20 * f[:, 0] + 5 for f in features]

    class LeastSquares:
        def fit(self, x, y):
            self.coefficients = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
            return self

        def predict(self, x):
            return np.c_[x, np.ones(len(x))] @ self.coefficients

    predictions = leave_one_out(features, targets, LeastSquares)
    assert len(predictions) == 4
    for truth, predicted in zip(targets, predictions):
        assert sl_left(truth, predicted) < 0.1  # a linear law is learnt from the others


def test_a_model_trained_on_real_series_corrects_the_real_s12_cutout_and_s15_tpf(tmp_path, capsys):
    """train on real light curves (command line), then correct --model on the shared
    TESScut and SPOC TPF with the shared ephemeris directory."""
    from astropy.io import fits

    from tess_backml.cli import main
    from tess_backml.model import load_model

    ephemeris = str(shared_file("ephemeris/20190101_tess_ephem.csv").parent)
    light_curves = sorted(str(p) for p in shared_file("real/lightcurves/eleanor-reference/target_s0012.fits").parent.glob("target_s001[0-5].fits"))
    model = tmp_path / "real_model.npz"
    assert main(["-q", "train", *light_curves, "--ephemeris", ephemeris, "--out", str(model)]) == 0
    assert "leave one series out: SL left median" in capsys.readouterr().out
    loaded = load_model(model)
    assert loaded.meta["feature_set"] == "real-1" and len(loaded.meta["training_files"]) == len(light_curves)
    assert set(loaded.meta["error_model"]) == {"floor", "fraction"}
    for name in ("real/tess-s0012-2-1_tesscut_1x1.fits", "real/tess-s0015-2-3_spoc_tpf_11x11_100cad.fits"):
        out = tmp_path / ("corrected_" + name.split("/")[-1])
        status = main(["-q", "correct", str(shared_file(name)), "--model", str(model), "--ephemeris", ephemeris, "--out", str(out)])
        assert status == 0, capsys.readouterr().err
        with fits.open(out) as hdul:
            assert hdul[0].header["SLMODEL"] == "real_model.npz"
            sl = hdul[1].data["SL_MODEL"]
            error = hdul[1].data["SL_MODEL_ERR"]
            finite = np.isfinite(sl).reshape(len(sl), -1).all(axis=1)
            assert finite.mean() >= 0.9  # the model predicts at (nearly) every cadence
            assert np.all(error[finite] > 0)  # the error model: a floor and a share of the light
    # mixing real series and cube training sets is refused with one line
    status = main(["-q", "train", light_curves[0], "cube.npz", "--out", str(tmp_path / "x.npz")])
    assert status == 2 and "not both" in capsys.readouterr().err
