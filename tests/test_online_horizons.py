"""Horizons tables fetched on demand: cached, reused offline, failures said clearly. The
download is replaced by slices of a shared real table (same text format); the real
fetch runs only with the internet (marked network)."""

import numpy as np
import pytest
from conftest import shared_file

from tess_backml import geometry
from tess_backml.errors import EphemerisRangeError, FileFormatError

TIMES = [1630.0, 1640.5]  # Sector 12


def table_slice(start_jd, stop_jd):
    """The shared 2019 table cut to [start_jd, stop_jd], as Horizons would answer."""
    lines = shared_file("ephemeris/20190101_tess_ephem.csv").read_text().splitlines()
    start, stop = lines.index("#$$SOE"), lines.index("#$$EOE")

    def keep(line):
        try:
            return start_jd <= float(line.split(",")[0]) <= stop_jd
        except ValueError:
            return True  # the column line some saved tables have after the start marker

    rows = [line for line in lines[start + 1 : stop] if keep(line)]
    return "\n".join(lines[: start + 1] + rows + lines[stop:]) + "\n"


def test_tables_are_fetched_once_cached_and_reused(tmp_path):
    calls = []

    def download(start_jd, stop_jd):
        calls.append((start_jd, stop_jd))
        return table_slice(start_jd, stop_jd)

    online = geometry.OnlineHorizons(tmp_path, download=download)
    fetched = geometry.camera_vectors(12, 2, times=TIMES, ephemeris=online)
    reference = geometry.camera_vectors(12, 2, times=TIMES, ephemeris=str(shared_file("ephemeris/20190101_tess_ephem.csv")))
    np.testing.assert_allclose(fetched["Earth_Camera_Angle"], reference["Earth_Camera_Angle"], atol=1e-9)
    assert len(calls) == 1 and calls[0][0] <= TIMES[0] + 2457000 - 1 and calls[0][1] >= TIMES[1] + 2457000 + 1
    assert len(list(tmp_path.glob("tess_horizons_*.csv"))) == 1
    geometry.camera_vectors(12, 2, times=[1635.0], ephemeris=geometry.OnlineHorizons(tmp_path, download=download))
    assert len(calls) == 1  # a new process (object) finds the cached table


def test_a_failed_download_or_an_error_page_is_a_clear_error_and_nothing_is_kept(tmp_path):
    def offline(start_jd, stop_jd):
        raise OSError("Name or service not known")

    with pytest.raises(EphemerisRangeError, match="could not fetch a JPL Horizons table.*Name or service not known"):
        geometry.camera_vectors(12, 2, times=TIMES, ephemeris=geometry.OnlineHorizons(tmp_path, download=offline))
    with pytest.raises(FileFormatError, match="not a usable JPL Horizons vector table"):
        geometry.camera_vectors(12, 2, times=TIMES, ephemeris=geometry.OnlineHorizons(tmp_path, download=lambda a, b: "<html>busy</html>"))
    assert not list(tmp_path.iterdir())


@pytest.mark.network
def test_a_real_horizons_table_agrees_with_the_spice_kernels(tmp_path):
    times = geometry.sector_ffi_times(4)[::200]
    fetched = geometry.camera_vectors(4, 1, times=times, ephemeris=geometry.OnlineHorizons(tmp_path))
    spice = geometry.camera_vectors(4, 1, times=times, ephemeris="test")
    np.testing.assert_allclose(fetched["Earth_Camera_Angle"], spice["Earth_Camera_Angle"], atol=0.01)
