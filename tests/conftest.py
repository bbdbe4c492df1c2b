"""Shared fixtures: the real TESS files in ../shared/data, and the network switch."""

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
