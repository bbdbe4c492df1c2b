"""Real scattered light as training rows: features of a real place, and the scores."""

import numpy as np
import pytest
from conftest import shared_file

from tess_backml.model.real import (
    REAL_FEATURE_NAMES,
    explained_variance,
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


def test_scores():
    truth = np.array([0.0, 10.0, 20.0, 10.0])
    assert sl_left(truth, np.zeros(4)) == 1.0 and sl_left(truth, truth) == 0.0
    assert sl_left(truth, 2 * truth) == pytest.approx(1.0)  # twice the light is as bad as none
    assert explained_variance(truth, truth + 5) == pytest.approx(1.0)


def test_folds_hold_out_whole_groups_and_the_choice_puts_safety_first():
    from tess_backml.model.safety import choose_recipe, group_folds, recipe_key

    folds = group_folds([1, 1, 4, 4, 4, 7])
    assert [test.tolist() for _, test in folds] == [[0, 1], [2, 3, 4], [5]]
    assert all(set(train).isdisjoint(test) for train, test in folds)
    truths = [np.linspace(0, 100, 50) for _ in range(4)]
    bold = {"feature_set": "real-3", "max_leaf_nodes": 8, "objective": "l2"}
    careful = {"feature_set": "real-2", "max_leaf_nodes": 4, "objective": "l2"}
    held = {  # the bold trees follow three series closely and triple the fourth; the careful ones halve all
        recipe_key({**bold, "shrink": 1}): {0: truths[0], 1: truths[1], 2: truths[2], 3: 3 * truths[3]},
        recipe_key({**careful, "shrink": 1}): {k: 0.5 * truths[k] for k in range(4)},
    }
    recipes = [{**bold, "shrink": 1.0}, {**careful, "shrink": 1.0}, {**careful, "shrink": 0.8}]
    # the bold recipe has the lower median but makes a series worse: the careful one wins,
    # with the larger of its shrinks (0.5 x 1.0 leaves less than 0.5 x 0.8)
    assert choose_recipe(truths, held, recipes) == {**careful, "shrink": 1.0}


def test_calibrated_errors_cover_68_percent_per_series_and_report_it():
    from tess_backml.model.safety import calibrate_errors, error_scores

    rng = np.random.default_rng(5)
    predictions = [rng.uniform(0, 500, 300) for _ in range(12)]
    sigma = [np.hypot(4.0, 0.3 * p) for p in predictions]
    truths = [p + s * rng.standard_normal(p.size) for p, s in zip(predictions, sigma)]
    errors = calibrate_errors(truths, predictions)
    assert errors["fraction"] == pytest.approx(0.3, rel=0.2)
    modelled = [np.hypot(errors["floor"], errors["fraction"] * p) for p in predictions]
    honest = error_scores(truths, predictions, modelled)
    assert honest["within_one_error"] == pytest.approx(0.68, abs=0.01)
    assert honest["median_ratio"] == pytest.approx(0.67, abs=0.08)
    # errors too small by half are caught by both scores
    small = error_scores(truths, predictions, [m / 2 for m in modelled])
    assert small["within_one_error"] < 0.45 and small["median_ratio"] > 1.2


def test_anchoring_fits_each_orbit_and_an_orbit_with_little_light_cannot_run_away():
    from tess_backml.model.anchor import anchor_fit, cross_orbit, orbit_index, orbit_scale

    time = np.r_[np.linspace(0, 12, 300), np.linspace(13.5, 26, 300)]
    orbits = orbit_index(time)
    assert orbits[:300].sum() == 0 and orbits[300:].min() == 1
    model = 50 * np.exp(-((time % 13.5 - 11) ** 2))  # light near each perigee
    truth = np.where(orbits == 0, 3.0, 2.0) * model
    assert orbit_scale(model[:300], truth[:300]) == pytest.approx(3.0, rel=0.01)
    features = np.c_[time % 13.5, np.zeros_like(time)]
    fitted = anchor_fit(model, truth, features, orbits, np.ones(time.size, bool), {"rounds": 0})
    np.testing.assert_allclose(fitted, truth, rtol=0.01)
    # each orbit from the other alone: 2x and 3x swap
    crossed = cross_orbit(model, truth, features, time, {"rounds": 0})
    np.testing.assert_allclose(crossed[:300], 2.0 * model[:300], rtol=0.02)
    # a faint, noisy orbit gives a scale pulled back toward the model's, and capped
    faint = 0.01 * model[:300] + np.random.default_rng(0).normal(0, 5, 300)
    assert orbit_scale(0.01 * model[:300], faint) <= np.exp(2.0)


def test_analog_anchoring_follows_an_amplitude_that_changes_along_the_earths_track():
    """the same track each orbit, light 1x to 4x the model's along it: one scale per orbit
    averages that away, the ratio at analogous cadences of the other orbit keeps it."""
    from tess_backml.model.anchor import ANALOG_CANDIDATES, SCALE_CANDIDATES, cross_orbit
    from tess_backml.model.real import REAL_FEATURE_NAMES, sl_left

    time = np.r_[np.linspace(0, 12, 300), np.linspace(13.5, 25.5, 300)]
    phase = time % 13.5
    model = 50 * np.exp(-((phase - 6) ** 2) / 8)
    truth = model * (1 + 3 * phase / 12)  # the model's shape, but brighter late in each orbit
    features = np.zeros((time.size, len(REAL_FEATURE_NAMES)))
    features[:, REAL_FEATURE_NAMES.index("earth_angle")] = 1 - phase / 12
    features[:, REAL_FEATURE_NAMES.index("earth_cos_azimuth")] = np.cos(phase / 4)
    analog = next(r for r in ANALOG_CANDIDATES if r["geometry"] == "earth" and r["neighbours"] == 5
                  and r["floor"] == 1.0 and r["pull"] == 1.0 and r["blend"] == "ratio")
    scaled = cross_orbit(model, truth, features, time, SCALE_CANDIDATES[1])
    followed = cross_orbit(model, truth, features, time, analog)
    assert sl_left(truth, followed) < 0.05 and sl_left(truth, scaled) > 0.1
    # light the model does not predict at all cannot be scaled up without bound
    dark = cross_orbit(np.zeros_like(model), truth, features, time, analog)
    assert np.all(dark <= 0.0)
    bright = cross_orbit(0.01 * model, truth, features, time, analog)
    assert np.all(bright <= 0.01 * model * np.exp(2.0) + 1e-9)
    # the neighbours kept between recipes (found once, at the most any recipe asks)
    # give every recipe what it gets on its own
    kept = {}
    for recipe in [r for r in ANALOG_CANDIDATES if r["pull"] == 1.0 and r["floor"] == 1.0]:
        alone = cross_orbit(model, truth, features, time, recipe)
        assert np.array_equal(cross_orbit(model, truth, features, time, recipe, neighbours=kept), alone)
    assert set(kept) == {0, 1} and all(found.most == 40 for found in kept.values())


def test_a_model_trained_on_real_series_corrects_the_real_s12_cutout_and_s15_tpf(tmp_path, capsys):
    """train on real light curves (command line), then correct --model on the shared
    TESScut and SPOC TPF with the shared ephemeris directory."""
    from astropy.io import fits

    from tess_backml.cli import main
    from tess_backml.model import load_model
    from tess_backml.model.anchor import ANCHOR_CANDIDATES

    ephemeris = str(shared_file("ephemeris/20190101_tess_ephem.csv").parent)
    light_curves = sorted(str(p) for p in shared_file("real/lightcurves/eleanor-reference/target_s0012.fits").parent.glob("target_s001[0-5].fits"))
    model = tmp_path / "real_model.npz"
    assert main(["-q", "train", *light_curves, "--ephemeris", ephemeris, "--out", str(model), "--no-held-out"]) == 0
    assert "recipe real-" in capsys.readouterr().out
    loaded = load_model(model)
    assert loaded.meta["feature_set"] in ("real-2", "real-3") and len(loaded.meta["training_files"]) == len(light_curves)
    assert set(loaded.meta["error_model"]) == {"floor", "fraction"}
    assert loaded.meta["recipe"]["shrink"] in (0.6, 0.8, 1.0) and loaded.meta["anchor"] in ANCHOR_CANDIDATES
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
    from tess_backml.model.safety import CANDIDATES

    loaded = load_model(DEFAULT_MODEL)
    assert default_model_path().endswith("default_model.npz")
    meta = loaded.meta
    assert meta["kind"] == "gbt" and meta["recipe"]["minutes"] == 30.0
    assert {k: meta["recipe"][k] for k in CANDIDATES[0]} in CANDIDATES  # a recipe it chose, not one set by hand
    assert meta["feature_set"] == meta["recipe"]["feature_set"]
    assert len(meta["training_files"]) == len(meta["series"]) >= 30
    # every file it was given is either trained on or left out with its reason
    assert any("ffic" in line for line in meta["refused_files"])
    held = meta["held_out"]
    assert "leave one sector out" in held["folds"] and len(held["recipes_chosen"]) >= 10
    # the acceptance of the nested held-out figures: no series made worse, at most half
    # the light left on the median series; anchored (each orbit on the other) better still
    assert held["worse"] == 0 and held["sl_left_max"] <= 1.0 and held["sl_left_median"] <= 0.5
    assert held["anchored_worse"] == 0 and held["anchored_median"] < held["sl_left_median"]
    for errors in (held["errors"], held["anchored_errors"]):
        assert 0.5 <= errors["median_ratio"] <= 0.9 and 0.60 <= errors["within_one_error"] <= 0.76
    assert set(meta["domain"]) >= {"earth_angle", "moon_angle", "bright_sl"}
    with np.load(default_model_path(), allow_pickle=False) as arrays:
        assert all(arrays[key].dtype != object for key in arrays.files)


def test_the_anchored_mode_leaves_at_most_three_tenths_of_the_light_held_out():
    from tess_backml.model import load_model
    from tess_backml.model.anchor import ANCHOR_CANDIDATES

    meta = load_model("default").meta
    assert meta["anchor"] in ANCHOR_CANDIDATES  # chosen by the folds, not set by hand
    assert meta["held_out"]["anchored_median"] <= 0.3 and meta["held_out"]["anchored_worse"] == 0


def test_evaluate_prints_the_default_models_nested_table_and_scores_real_files(capsys):
    from tess_backml.cli import main

    assert main(["evaluate", "default"]) == 0
    out = capsys.readouterr().out
    assert "nested held-out" in out and all(name in out for name in ("no correction", "default", "anchored"))
    ephemeris = str(shared_file("ephemeris/20190101_tess_ephem.csv").parent)
    path = str(shared_file("real/lightcurves/tess2019357164649-s0020-0000000130181866-0165-s_lc.fits"))
    assert main(["evaluate", "default", path, "--ephemeris", ephemeris]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("S20"))
    model, anchored = (float(value) for value in row.split()[-4:-2])
    assert 0 < anchored < 1.0 and 0 < model <= 1.0


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
    # at a 30-min series' own cadences the corrector gives the trees' prediction itself
    # (what the benchmarks measure), not an interpolation of nodes near them
    from tess_backml.model import load_model
    from tess_backml.model.real import outside_domain, series_features
    from tess_backml.model.safety import predict_trees

    loaded = load_model("default")
    features = series_features(series, ephemeris)
    exact = predict_trees(loaded.model, features, loaded.meta["recipe"], outside_domain(loaded.meta["domain"], features))
    assert np.allclose(sl[:, 0, 0], exact, rtol=1e-5, atol=1e-4)
    # between nodes (a 2-min request) the trees' steps are joined linearly: no overshoot
    dense = np.arange(series.time[0], series.time[-1], 2 / 1440)
    fine, _ = corrector.evaluate_scatterlight_model(np.array([series.row]), np.array([series.column]), dense, method="model")
    assert np.nanmax(fine) <= exact.max() + 1e-3 and np.nanmin(fine) >= min(exact.min(), 0) - 1e-3
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
    """The command in docs/cli.md (every real file; here without the slow nested figures)
    rebuilds the shipped model: the same files, recipe and predictions."""
    from tess_backml.cli import main
    from tess_backml.model import load_model

    data = shared_file("real/tess-s0012-2-1_tesscut_1x1.fits").parent.parent
    files = sorted(str(p) for pattern in ("real/*.fits", "real/*/*.fits", "real/lightcurves/eleanor-reference/*.fits")
                   for p in data.glob(pattern))
    shipped = load_model("default")
    out = tmp_path / "retrained.npz"
    assert main(["-q", "train", *files, "--ephemeris", str(data / "ephemeris"), "--no-held-out", "--out", str(out)]) == 0
    retrained = load_model(out)
    for key in ("training_files", "recipe", "anchor"):
        assert retrained.meta[key] == shipped.meta[key]
    for key in ("floor", "fraction"):
        assert retrained.meta["error_model"][key] == pytest.approx(shipped.meta["error_model"][key], rel=1e-3)
    features = np.random.default_rng(0).uniform(0, 1, (500, len(shipped.meta["features"]))).astype(np.float32)
    np.testing.assert_allclose(retrained.model.predict(features), shipped.model.predict(features), rtol=1e-3, atol=0.1)


def test_correct_anchor_fits_the_default_model_to_a_cutouts_own_background(tmp_path, capsys):
    from astropy.io import fits

    from tess_backml.cli import main

    ephemeris = str(shared_file("ephemeris/20190101_tess_ephem.csv").parent)
    path = str(shared_file("real/tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"))
    own = read_series(path)
    left = {}
    for name, extra in (("plain", []), ("anchored", ["--anchor"])):
        out = tmp_path / f"{name}.fits"
        status = main(["-q", "correct", path, "--model", "default", "--ephemeris", ephemeris, "--out", str(out), *extra])
        assert status == 0, capsys.readouterr().err
        with fits.open(out) as hdul:
            assert ("anchored" in hdul[0].header.comments["SLMODEL"]) == (name == "anchored")
            time, model = hdul[1].data["TIME"], hdul[1].data["SL_MODEL"]
            at = np.searchsorted(time, own.time)
            sl = np.median(model[at].reshape(at.size, -1), axis=1)
            assert np.all(hdul[1].data["SL_MODEL_ERR"][at] > 0)
        good = np.isfinite(sl)
        assert good.mean() > 0.9
        left[name] = sl_left(own.sl[good], sl[good])
    # fitted to the stamp's own faint pixels, the model follows them better than alone
    assert left["anchored"] < min(left["plain"], 0.5)


def test_a_stamp_too_short_to_know_its_dark_level_is_not_anchored(tmp_path, capsys):
    from tess_backml.cli import main

    short = str(shared_file("real/tess-s0015-2-3_spoc_tpf_11x11_100cad.fits"))  # 100 cadences, 0.1 days
    out = tmp_path / "anchored.fits"
    assert main(["correct", short, "--model", "default", "--anchor", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "too short to know its dark level" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    # without anchoring the model alone corrects it
    assert main(["-q", "correct", short, "--model", "default", "--out", str(out)]) == 0 and out.is_file()
