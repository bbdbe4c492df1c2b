"""Shared fixtures: the real TESS files in ../shared/data, and the network switch."""

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Every test session gets its own cache directory (WCS headers, dark frames), so
    results never depend on what an earlier run left in the user's cache."""
    previous = os.environ.get("TESS_BACKML_CACHE")
    os.environ["TESS_BACKML_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("TESS_BACKML_CACHE", None)
    else:
        os.environ["TESS_BACKML_CACHE"] = previous


def shared_file(name: str) -> Path:
    """Path of a file in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real data file {path} is not available (expected ../shared/data beside the repository)")
    return path


def unused_port() -> int:
    """A localhost port that was free a moment ago: nothing listens there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _online() -> bool:
    if os.environ.get("TESS_BACKML_OFFLINE"):
        return False
    try:
        socket.create_connection(("s3.amazonaws.com", 443), timeout=3).close()
        return True
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    if not any("network" in item.keywords for item in items):
        return
    if _online():
        return
    skip = pytest.mark.skip(reason="needs the internet (offline here)")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def small_training_set(tmp_path_factory):
    """A training set made the user's way (cube, maps, NPZ) from the simulated Sector 4,
    smaller than the demo's: every 8th frame, 32-pixel bins, 2-h time bins."""
    from tess_backml.cube import BackgroundCube

    cube = BackgroundCube(4, 1, 1, img_bin=32, source="sim", progress=False)
    cube.get_scatter_light_cube(frames=slice(None, None, 8))
    cube.bin_time_axis(2.0)
    cube.get_vector_maps()
    path = tmp_path_factory.mktemp("training") / cube.default_name("npz")
    return cube.save_to_npz(str(path), save_maps=True)


@pytest.fixture(scope="session")
def trained_model(small_training_set, tmp_path_factory):
    """The main model trained on orbit 1 of the small training set, saved as a file."""
    from tess_backml.model import save_model, train_model

    model, baseline, meta = train_model([small_training_set], kind="nn", train_orbit=1, progress=False)
    path = tmp_path_factory.mktemp("model") / "model.npz"
    save_model(model, str(path), meta, baseline=baseline)
    return str(path)
