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
