"""The learnt model: accuracy on a held-out orbit, smoothness, safe model files,
on-the-fly evaluation in the corrector, and the train/evaluate commands."""

import json
import os
import pickle

import numpy as np
import pytest
from conftest import shared_file

from tess_backml.cli import main
from tess_backml.corrector import ScatterLightCorrector
from tess_backml.errors import FileFormatError, TessBackmlError
from tess_backml.model import (
    FEATURE_NAMES,
    TrainingSet,
    evaluate_model,
    load_model,
    save_model,
)
from tess_backml.model.estimators import (
    GradientBoostingModel,
    NeuralNetModel,
    RidgeModel,
)

pytestmark = pytest.mark.slow  # the shared fixture builds a cube (~1 min)


def test_main_model_explains_ninety_percent_of_a_held_out_orbit(trained_model, small_training_set):
    table, *_ = evaluate_model(trained_model, [small_training_set], orbit=2)
    model, baseline, none = table["nn"], table["ridge baseline"], table["no correction"]
    assert model["explained_variance"] >= 0.90
    assert model["rmse"] < baseline["rmse"] < none["rmse"]
    assert none["explained_variance"] == 0.0
    # smooth in time: the corrected light curve is much steadier than the raw one
    # (a quarter of its step-to-step change is left on the demo data), and the
    # predictions move about as much as the SL does, not more than twice
    assert model["residual_step_ratio"] <= 0.5
    assert model["step_ratio"] <= 2.0


def test_the_model_carries_over_to_a_ccd_it_never_saw(small_training_set, tmp_path):
    """Trained on CCDs 2-4 of camera 1, scored on CCD 1: the geometry carries over
    (with detector one-hot features it did worse than no correction)."""
    from tess_backml.cube import BackgroundCube
    from tess_backml.model import train_model

    paths = []
    for ccd in (2, 3, 4):
        cube = BackgroundCube(4, 1, ccd, img_bin=32, source="sim", progress=False)
        cube.get_scatter_light_cube(frames=slice(None, None, 16))
        cube.bin_time_axis(2.0)
        cube.get_vector_maps()
        paths.append(cube.save_to_npz(str(tmp_path / f"ccd{ccd}.npz"), save_maps=True))
    model, baseline, meta = train_model(paths, kind="nn", train_orbit=None, progress=False)
    save_model(model, str(tmp_path / "model.npz"), meta, baseline=baseline)
    table, *_ = evaluate_model(str(tmp_path / "model.npz"), [small_training_set], orbit=None)
    model, baseline = table["nn"], table["ridge baseline"]
    assert model["explained_variance"] >= 0.85  # 0.90 measured
    assert model["rmse"] < baseline["rmse"]
    assert model["residual_step_ratio"] <= 0.5


def test_model_file_records_what_it_was_trained_on(trained_model, small_training_set):
    from tess_backml import __version__

    loaded = load_model(trained_model)
    meta = loaded.meta
    assert meta["kind"] == "nn" and meta["features"] == list(FEATURE_NAMES)
    assert meta["package_version"] == __version__ and meta["train_orbit"] == 1
    assert meta["training_data"][0]["path"] == small_training_set and meta["training_data"][0]["sector"] == 4
    assert meta["held_out"]["model"]["explained_variance"] > meta["held_out"]["baseline"]["explained_variance"]
    data = TrainingSet([small_training_set])
    sample = data.features[:5000]
    assert np.all(np.isfinite(loaded.model.predict(sample))) and loaded.baseline is not None


@pytest.mark.parametrize("kind", [RidgeModel, NeuralNetModel, GradientBoostingModel])
def test_every_model_kind_round_trips_through_its_file(kind, small_training_set, tmp_path):
    data = TrainingSet([small_training_set])
    rng = np.random.default_rng(1)
    rows = rng.choice(np.flatnonzero(data.valid), 4000, replace=False)
    options = {"epochs": 2} if kind is NeuralNetModel else ({"max_iter": 10} if kind is GradientBoostingModel else {})
    model = kind(**options).fit(data.features[rows], data.target[rows])
    path = save_model(model, tmp_path / "m.npz", {"note": "test"})
    loaded = load_model(path)
    assert type(loaded.model) is kind and loaded.meta["note"] == "test"
    assert np.array_equal(loaded.model.predict(data.features[rows]), model.predict(data.features[rows]))


def _pickle_bomb(path, marker):
    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(path, "wb") as stream:
        pickle.dump({"w0": Bomb()}, stream)


def test_a_pickle_named_like_a_model_is_refused_not_executed(tmp_path):
    marker = tmp_path / "exploded"
    bomb = tmp_path / "model.npz"
    _pickle_bomb(bomb, marker)
    with pytest.raises(FileFormatError, match="not a tess-backml model file"):
        load_model(bomb)
    assert not marker.exists()
    # the same bomb inside an NPZ archive (an object array) is refused too
    inside = tmp_path / "inside.npz"
    np.savez(inside, __meta__=np.asarray("{}"), w0=np.array([None], dtype=object))
    with pytest.raises(FileFormatError):
        load_model(inside)
    real_cutout = str(shared_file("real/tess-s0012-2-1_tesscut_1x1.fits"))
    assert main(["correct", real_cutout, "--model", str(bomb), "--out", str(tmp_path / "o.fits")]) == 2
    assert not marker.exists() and not (tmp_path / "o.fits").exists()


def test_tampered_foreign_and_broken_model_files_are_refused(trained_model, small_training_set, tmp_path):
    with np.load(trained_model, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays["__meta__"]))

    def variant(name, **changes):
        path = tmp_path / name
        new_meta = {**meta, **changes.pop("meta", {})}
        np.savez(path, **{**arrays, "__meta__": np.asarray(json.dumps(new_meta)), **changes})
        return path

    cases = [
        (variant("features.npz", meta={"feature_set": "geometry-0"}), "feature set"),
        (variant("format.npz", meta={"format": "something-else"}), "model format"),
        (variant("kind.npz", meta={"kind": "svm"}), "unknown model kind"),
        (variant("layers.npz", earth_w1=np.zeros((3, 3), np.float32)), "inconsistent"),
        (small_training_set, "no description"),  # a training set is not a model
    ]
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(open(trained_model, "rb").read()[:2000])
    cases.append((truncated, "not a tess-backml model file"))
    cases.append((tmp_path / "missing.npz", "no such model file"))
    for path, message in cases:
        with pytest.raises(FileFormatError, match=message):
            load_model(path)


def test_corrector_evaluates_the_model_without_a_cube(trained_model, small_training_set):
    from tess_backml.geometry import sector_time_range

    corrector = ScatterLightCorrector(4, 1, 1, model=trained_model)
    start, stop = sector_time_range(4)
    times = np.linspace(start + 0.1, stop - 0.1, 3000)
    rows, cols = np.arange(1000, 1025), np.arange(500, 527)
    flux, error = corrector.evaluate_scatterlight_model(rows, cols, times, method="nn")
    assert flux.shape == (3000, 25, 27) and np.all(np.isfinite(flux))
    assert np.allclose(error, load_model(trained_model).meta["model_rmse"])
    # it agrees with the model evaluated directly at the pixels (the node grid costs little)
    from tess_backml.model import predict_cube

    direct = predict_cube(load_model(trained_model).model, 4, 1, 1, rows[::8], cols[::8], times[::50])
    scale = max(float(np.abs(direct).max()), 1.0)
    assert np.abs(flux[::50, ::8, ::8] - direct).max() <= 0.05 * scale
    with pytest.raises(TessBackmlError, match="no SL cube"):
        corrector.evaluate_scatterlight_model(rows, cols, times, method="sl_cube")
    with pytest.raises(TessBackmlError, match="outside sector 4"):
        corrector.evaluate_scatterlight_model(rows, cols, np.array([start - 2.0]))


def test_train_and_evaluate_commands(small_training_set, tmp_path, capsys):
    model_file = str(tmp_path / "ridge.npz")
    assert main(["-q", "train", small_training_set, "--out", model_file, "--model", "ridge"]) == 0
    assert "held out (orbit 2)" in capsys.readouterr().out
    figure = tmp_path / "evaluation.png"
    assert main(["evaluate", model_file, small_training_set, "--json", "--plot", str(figure)]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"ridge", "ridge baseline", "no correction"}
    assert set(table["ridge"]) >= {"rmse", "mae", "explained_variance"}
    assert figure.stat().st_size > 10_000
    for argv, message in [
        (["evaluate", model_file, str(tmp_path / "none.npz")], "no such file"),
        (["evaluate", small_training_set, small_training_set], "no description"),
        (["train", model_file, "--out", str(tmp_path / "x.npz")], "not a training set"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "x.npz")
