"""SPICE kernels load whatever the install path, and environments sharing a user cache
do not disturb each other (lkspacecraft's own meta-kernel fails on both counts)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tess_backml.errors import TessBackmlError
from tess_backml.geometry.ephemeris.spice import (
    kernel_paths_from_meta_kernel,
    lkspacecraft_test_kernels,
    load_kernels,
)

# Sector 4 times the test kernels cover.
TIMES = [1410.5, 1415.25, 1430.0]


def deep_directory(base: Path, length: int = 160) -> Path:
    """A directory whose path is at least ``length`` characters long."""
    path = base
    while len(str(path)) < length:
        path = path / "a-directory-with-a-rather-long-name"
    path.mkdir(parents=True)
    return path


def test_meta_kernel_parser_joins_continued_path_values():
    folder = "/" + "/".join(["x" * 30] * 8)  # 248 characters
    pieces = [folder[i : i + 70] for i in range(0, len(folder), 70)]
    values = "\n".join(f"'{piece}+'" for piece in pieces[:-1]) + f"\n'{pieces[-1]}'"
    text = textwrap.dedent(
        f"""\
        KPL/MK
        A PATH_VALUES = ( 'ignored' ) outside the data section.
        \\begindata
        PATH_VALUES = ( {values} )
        PATH_SYMBOLS = ( 'cache' )
        KERNELS_TO_LOAD = ( '$cache/one.bsp'
                            '$cache/it''s.tls' )
        KERNELS_TO_LOAD += ( '/elsewhere/two.tsc' )
        \\begintext
        KERNELS_TO_LOAD = ( 'not/this/one' )
        """
    )
    assert kernel_paths_from_meta_kernel(text) == [f"{folder}/one.bsp", f"{folder}/it's.tls", "/elsewhere/two.tsc"]


@pytest.fixture
def reload_installed_kernels():
    """Tests here load other kernels into SPICE: the next user reloads the installed ones."""
    yield
    from tess_backml.geometry.ephemeris import spice

    spice._SPICE_STATE["loaded"] = None


def test_test_kernels_load_from_a_directory_path_of_150_characters(tmp_path, reload_installed_kernels):
    deep = deep_directory(tmp_path, 150)
    assert len(str(deep)) >= 150
    copies = []
    for path in lkspacecraft_test_kernels():
        shutil.copy(path, deep)
        copies.append(str(deep / os.path.basename(path)))
    start, stop = load_kernels(copies)
    assert start < 2458401.5 and stop > 2458439.5  # all of Sector 4
    import spiceypy

    loaded = [spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))]
    assert sorted(loaded) == sorted(copies)
    et = (TIMES[0] + 2457000.0 - 2451545.0) * 86400.0
    earth, _ = spiceypy.spkpos("EARTH", et, "J2000", "NONE", "-95")
    assert 50_000 < np.linalg.norm(earth) < 500_000  # TESS's orbit, km


def test_a_missing_kernel_is_a_clear_error(tmp_path, reload_installed_kernels):
    with pytest.raises(TessBackmlError, match="does not exist"):
        load_kernels([str(tmp_path / "missing.bsp")])


def test_kernels_beyond_the_255_characters_spice_accepts_load_through_short_links(tmp_path, reload_installed_kernels):
    deep = deep_directory(tmp_path, 280)
    copies = []
    for path in lkspacecraft_test_kernels():
        shutil.copy(path, deep)
        copies.append(str(deep / os.path.basename(path)))
    assert min(len(path) for path in copies) > 255
    assert load_kernels(copies) == load_kernels(lkspacecraft_test_kernels())
    assert load_kernels(copies)[0] < 2458401.5  # and again, reusing the links


ENVIRONMENT_SCRIPT = """
import json, sys
import lkspacecraft  # rewrites lkspacecraft's test meta-kernel in the shared cache
from tess_backml.geometry import SpiceEphemeris, camera_vectors
table = camera_vectors(4, 1, times={times}, ephemeris=SpiceEphemeris("test"))
print(json.dumps({{"lkspacecraft": lkspacecraft.__file__, "earth": list(table["Earth_Camera_Angle"])}}))
"""


@pytest.mark.slow
def test_two_environments_at_deep_paths_sharing_one_user_cache(tmp_path):
    """Two copies of lkspacecraft at deep paths (as two environments' site-packages) and
    one HOME/XDG cache: each imports lkspacecraft (which points the shared test
    meta-kernel at itself) and computes geometry; then one environment is removed and
    the other still works."""
    import lkspacecraft

    source = Path(lkspacecraft.__file__).parent
    home = tmp_path / "home"
    home.mkdir()
    sites = {}
    for name in ("env-a", "env-b"):
        site = deep_directory(tmp_path / name, 150)
        shutil.copytree(source, site / "lkspacecraft", ignore=shutil.ignore_patterns("__pycache__"))
        sites[name] = site
    assert len(str(sites["env-a"] / "lkspacecraft" / "data" / "kernels")) > 150

    def run(name):
        env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
        env["PYTHONPATH"] = os.pathsep.join([str(sites[name])] + sys.path)
        script = ENVIRONMENT_SCRIPT.format(times=TIMES)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["lkspacecraft"].startswith(str(sites[name]))
        return np.array(result["earth"])

    first = run("env-a")
    second = run("env-b")
    shutil.rmtree(sites["env-b"])  # env-b's meta-kernel is the one left in the shared cache
    third = run("env-a")
    assert np.all(np.isfinite(first)) and np.all(first >= 0) and np.all(first <= 180)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, third)
