"""Property tests of every reader: truncated, bit-flipped, wrong-typed and empty inputs
give our clear errors (TessBackmlError and its subclasses) or a well-formed result,
never another exception, a hang (each example has a deadline) or a crash."""

import shutil

import numpy as np
import pytest
from conftest import shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_geometry import horizons_text

from tess_backml import geometry
from tess_backml.errors import TessBackmlError
from tess_backml.io import read_sl_cube
from tess_backml.model import load_model, save_model
from tess_backml.model.estimators import RidgeModel
from tess_backml.model.features import FEATURE_NAMES
from tess_backml.sources import FFIFilesSource, MASTCubeSource, SimulatedSector

pytestmark = pytest.mark.filterwarnings("ignore")  # damaged FITS headers warn by the thousand

FUZZ = settings(
    max_examples=20,
    deadline=20_000,  # ms: a reader that hangs fails here
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def damaged(draw, original: bytes, region: int | None = None):
    """``original`` truncated, with flipped bits (within the first ``region`` bytes),
    replaced by other bytes, or emptied."""
    kind = draw(st.sampled_from(["truncate", "flip", "garbage", "empty"]))
    if kind == "empty":
        return b""
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=4096))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    data = bytearray(original)
    limit = min(region or len(data), len(data))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, limit - 1))
        data[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def _write(path, data: bytes):
    with open(path, "wb") as stream:
        stream.write(data)
    return path


def _survives(read, path):
    try:
        return read(path)
    except TessBackmlError as exc:
        assert str(exc).strip(), "an error needs a message"
        return None


# --------------------------------------------------------------------------- SL cube files
@pytest.fixture(scope="module")
def sl_cube_bytes():
    return shared_file("ffi_sl_cube_sector002_1-1_test.fits").read_bytes()


@FUZZ
@given(data=st.data())
def test_sl_cube_reader(sl_cube_bytes, tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("sl") / "cube.fits", data.draw(damaged(sl_cube_bytes)))
    cube = _survives(read_sl_cube, path)
    if cube is not None:
        assert cube.flux.shape == cube.flux_err.shape and cube.flux.shape[0] == len(cube.time)


# --------------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    rng = np.random.default_rng(0)
    features = rng.random((500, len(FEATURE_NAMES)), np.float32)
    model = RidgeModel().fit(features, rng.random(500))
    path = save_model(model, tmp_path_factory.mktemp("model") / "m.npz", {"note": "fuzz"})
    return open(path, "rb").read()


@FUZZ
@given(data=st.data())
def test_model_file_reader(model_bytes, tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("m") / "model.npz", data.draw(damaged(model_bytes)))
    loaded = _survives(load_model, path)
    if loaded is not None:
        prediction = loaded.model.predict(np.zeros((3, len(FEATURE_NAMES)), np.float32))
        assert prediction.shape == (3,)


# --------------------------------------------------------------------------- text tables
@pytest.fixture(scope="module")
def horizons_bytes():
    jd = np.arange(2458405.0, 2458406.0, 1 / 24)
    xyz = np.column_stack([np.full(jd.size, 3e5), np.linspace(0, 1e5, jd.size), np.full(jd.size, 1e4)])
    return horizons_text(jd, xyz).encode()


@FUZZ
@given(data=st.data())
def test_horizons_reader(horizons_bytes, tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("h") / "horizons.csv", data.draw(damaged(horizons_bytes)))
    ephemeris = _survives(geometry.HorizonsEphemeris, path)
    if ephemeris is not None:
        vectors = ephemeris.body_vectors(np.array([2458405.5]))
        assert np.all(np.isfinite(vectors.earth)) and np.all(np.isfinite(vectors.moon))


@pytest.fixture(scope="module")
def vectors_bytes():
    text = shared_file("real/TessVectors_S001_C4_FFI.csv").read_text().splitlines()
    return ("\n".join(text[:60]) + "\n").encode()


@FUZZ
@given(data=st.data())
def test_tess_vectors_reader(vectors_bytes, tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("v") / "vectors.csv", data.draw(damaged(vectors_bytes)))
    table = _survives(geometry.read_tess_vectors, path)
    if table is not None:
        assert table.colnames == list(geometry.VECTOR_COLUMNS)


# --------------------------------------------------------------------------- FFI files and cubes
@pytest.fixture(scope="module")
def ffi_and_cube(tmp_path_factory):
    from tess_backml.sources.mast import make_astrocut_cube

    folder = tmp_path_factory.mktemp("ffis")
    ffis = SimulatedSector().write_ffis(folder / "ffis", [0], progress=False)
    cube = make_astrocut_cube(ffis, str(folder / "tess-s0004-1-1-cube.fits"), sector=4)
    return ffis[0], cube


HEADER_BYTES = 2880 * 12  # the headers of both files lie within the first few FITS blocks


def _damaged_copy(original, folder, data, name):
    """A copy of a large file with its headers damaged, or truncated (a sparse copy)."""
    size = original.stat().st_size
    head = original.open("rb").read(HEADER_BYTES)
    kind = data.draw(st.sampled_from(["headers", "truncate", "empty"]))
    path = folder / name
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncate":
        shutil.copyfile(original, path)
        with open(path, "r+b") as stream:
            stream.truncate(data.draw(st.integers(0, size - 1)))
    else:
        shutil.copyfile(original, path)
        with open(path, "r+b") as stream:
            stream.write(data.draw(damaged(head, region=HEADER_BYTES)).ljust(len(head), b" ")[: len(head)])
    return path


@pytest.mark.slow
@settings(max_examples=12, deadline=60_000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_ffi_file_reader(ffi_and_cube, tmp_path_factory, data):
    from pathlib import Path

    path = _damaged_copy(Path(ffi_and_cube[0]), tmp_path_factory.mktemp("f"), data, Path(ffi_and_cube[0]).name)

    def read(p):
        source = FFIFilesSource([str(p)])
        flux, error = source.read_frames(np.array([0]))
        return flux

    flux = _survives(read, path)
    if flux is not None:
        assert flux.shape == (1, 2048, 2048)


@pytest.mark.slow
@settings(max_examples=12, deadline=60_000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mast_cube_reader(ffi_and_cube, tmp_path_factory, data):
    from pathlib import Path

    path = _damaged_copy(Path(ffi_and_cube[1]), tmp_path_factory.mktemp("c"), data, "tess-s0004-1-1-cube.fits")

    def read(p):
        source = MASTCubeSource(str(p))
        flux, _ = source.read_rows(0, 16)
        return flux

    flux = _survives(read, path)
    if flux is not None:
        assert flux.shape == (1, 16, 2048)
