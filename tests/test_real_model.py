"""Real scattered light as training rows: features of a real place, and the scores."""

import numpy as np
import pytest
from conftest import shared_file

from tess_backml.model.real import (
    REAL_FEATURE_NAMES,
    REAL_FEATURE_SET,
    explained_variance,
    leave_one_out,
    model_error,
    outside_domain,
    place_features,
    series_features,
    sl_left,
    training_domain,
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
    # the Earth in the spacecraft's frame: the same for every camera and pixel of a sector
    # (to the minutes by which the barycentric times of two cameras' directions differ)
    frame = [name for name in REAL_FEATURE_NAMES if "spacecraft" in name]
    other = place_features(12, 4, 3, 100.0, 1900.0, series.time[:3], ephemeris)
    for name in frame:
        np.testing.assert_allclose(other[:, REAL_FEATURE_NAMES.index(name)], named[name][:3], atol=0.01)
    np.testing.assert_allclose(named["earth_spacecraft_sin_azimuth"] ** 2 + named["earth_spacecraft_cos_azimuth"] ** 2, 1, atol=1e-5)
    # models saved with the previous set keep their columns: real-3 extends real-2
    from tess_backml.model.evaluation import model_features
    from tess_backml.model.real import REAL_FEATURE_SETS

    older = model_features(12, 2, 1, [series.row], [series.column], series.time[:3], ephemeris, feature_set="real-2")
    np.testing.assert_array_equal(older, features[:3, : len(REAL_FEATURE_SETS["real-2"])])


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
    assert loaded.meta["feature_set"] == REAL_FEATURE_SET and len(loaded.meta["training_files"]) == len(light_curves)
    assert set(loaded.meta["error_model"]) == {"floor", "fraction"}
    assert loaded.meta["domain"]["moon_angle"] < loaded.meta["domain"]["moon_camera_angle"] + 90
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


def test_the_training_domain_flags_a_body_nearer_than_any_training_cadence_and_widens_the_error():
    rng = np.random.default_rng(3)
    features = rng.uniform(0.5, 1.0, (200, len(REAL_FEATURE_NAMES)))  # every angle 45-90 deg
    domain = training_domain(features, np.linspace(0, 100, 200))
    assert domain["moon_angle"] == pytest.approx(features[:, REAL_FEATURE_NAMES.index("moon_angle")].min() * 90)
    assert domain["bright_sl"] == pytest.approx(99.0)
    assert not outside_domain(domain, features).any()
    near = features[:3].copy()
    near[0, REAL_FEATURE_NAMES.index("moon_angle")] = 5 / 90  # the Moon in the field
    near[1, REAL_FEATURE_NAMES.index("earth_camera_angle")] = (domain["earth_camera_angle"] - 1.0) / 90  # within the margin
    near[2, REAL_FEATURE_NAMES.index("earth_camera_angle")] = (domain["earth_camera_angle"] - 5.0) / 90
    np.testing.assert_array_equal(outside_domain(domain, near), [True, False, True])
    assert not outside_domain(None, near).any()  # models that record no domain flag nothing
    meta = {"error_model": {"floor": 3.0, "fraction": 0.5}, "domain": domain}
    flux = np.array([10.0, 10.0, 500.0])
    error = model_error(meta, flux, outside=np.array([False, True, True]))
    assert error[0] == pytest.approx(np.hypot(3.0, 5.0))
    assert error[1] == pytest.approx(99.0)  # at least the bright light the model learnt
    assert error[2] == pytest.approx(np.hypot(np.hypot(3.0, 250.0), 500.0))  # or the light itself


def test_the_default_model_ships_without_pickle_and_records_how_it_was_made():
    from tess_backml.model import DEFAULT_MODEL, default_model_path, load_model

    loaded = load_model(DEFAULT_MODEL)
    assert default_model_path().endswith("default_model.npz")
    meta = loaded.meta
    assert meta["feature_set"] == REAL_FEATURE_SET and meta["kind"] == "gbt"
    assert len(meta["training_files"]) == len(meta["series"]) >= 20
    assert meta["recipe"]["max_leaf_nodes"] == 5 and meta["recipe"]["minutes"] == 30.0
    # leave one series out: at most half the light left on the median series, and no
    # series made worse than no correction
    assert meta["held_out"]["sl_left_median"] <= 0.5 and meta["held_out"]["sl_left_max"] <= 1.0
    assert set(meta["domain"]) >= {"earth_angle", "moon_angle", "bright_sl"}
    with np.load(default_model_path(), allow_pickle=False) as arrays:
        assert all(arrays[key].dtype != object for key in arrays.files)


def test_the_default_model_corrects_real_files_from_python_and_the_command_line(tmp_path, capsys):
    from astropy.io import fits

    from tess_backml import ScatterLightCorrector
    from tess_backml.cli import main
    from tess_backml.corrector import OUTSIDE_TRAINING

    ephemeris = str(shared_file("ephemeris/20190101_tess_ephem.csv").parent)
    series = read_series(shared_file("real/tess-s0012-2-1_tesscut_1x1.fits")).binned(30.0)
    corrector = ScatterLightCorrector(12, 2, 1, model="default", ephemeris=ephemeris)
    sl, error = corrector.evaluate_scatterlight_model(np.array([series.row]), np.array([series.column]), series.time, method="model")
    assert sl.shape == error.shape == (series.time.size, 1, 1)
    assert np.isfinite(sl).mean() >= 0.9 and np.all(error[np.isfinite(sl)] > 0)
    assert not (corrector.flags & OUTSIDE_TRAINING).any()  # the Earth and Moon stay where the model learnt
    # the cutout is one of the training series: the model follows its light closely
    assert sl_left(series.sl, sl[:, 0, 0]) < 0.6
    for name in ("real/tess-s0012-2-1_tesscut_1x1.fits", "real/tess-s0015-2-3_spoc_tpf_11x11_100cad.fits"):
        out = tmp_path / ("corrected_" + name.split("/")[-1])
        status = main(["-q", "correct", str(shared_file(name)), "--model", "default", "--ephemeris", ephemeris, "--out", str(out)])
        assert status == 0, capsys.readouterr().err
        with fits.open(out) as hdul:
            assert hdul[0].header["SLMODEL"] == "default"  # the shipped model, by name
            finite = np.isfinite(hdul[1].data["SL_MODEL"]).reshape(len(hdul[1].data), -1).all(axis=1)
            assert finite.mean() >= 0.9


@pytest.mark.slow
def test_the_documented_command_retrains_the_default_model(tmp_path, capsys):
    """The command in docs/cli.md rebuilds the shipped model from the shared series: the
    same leave-one-series-out figures and the same predictions."""
    from tess_backml.cli import main
    from tess_backml.model import load_model

    data = shared_file("real/tess-s0012-2-1_tesscut_1x1.fits").parent.parent
    shipped = load_model("default")
    files = [str(data / "real" / "lightcurves" / name) for name in shipped.meta["training_files"][:-1]]
    files = [f if (data / "real" / "lightcurves" / f.split("/")[-1]).exists() else
             str(data / "real" / "lightcurves" / "eleanor-reference" / f.split("/")[-1]) for f in files]
    files.append(str(data / "real" / shipped.meta["training_files"][-1]))
    out = tmp_path / "retrained.npz"
    assert main(["-q", "train", *files, "--ephemeris", str(data / "ephemeris"), "--out", str(out)]) == 0
    retrained = load_model(out)
    for key in ("sl_left_median", "sl_left_max"):
        assert retrained.meta["held_out"][key] == pytest.approx(shipped.meta["held_out"][key], abs=0.02)
    features = np.random.default_rng(0).uniform(0, 1, (500, len(REAL_FEATURE_NAMES))).astype(np.float32)
    features[:, -1] = np.random.default_rng(1).integers(1, 5, 500)
    np.testing.assert_allclose(retrained.model.predict(features), shipped.model.predict(features), rtol=1e-3, atol=0.1)
