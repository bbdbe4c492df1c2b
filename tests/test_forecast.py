"""The scattered-light forecast: which sectors see a position, and when the light comes."""

import csv

import numpy as np
import pytest
from conftest import shared_file

from tess_backml.errors import TessBackmlError
from tess_backml.forecast import (
    BAND_SIGMAS,
    END_MARGIN_DAYS,
    EPISODE_PADDING_HOURS,
    RELATIVE_THRESHOLD,
    episodes,
    forecast,
    observing,
)

#: Near the southern ecliptic pole: camera 4 of most southern sectors.
CVZ = (95.0, -65.0)


@pytest.fixture(scope="module")
def first_year():
    return forecast(*CVZ, sectors=range(1, 7))


def test_the_forecast_finds_the_sectors_and_cuts_episodes_at_its_threshold(first_year):
    from tess_backml.geometry import sector_time_range

    assert [s.sector for s in first_year.sectors] == [1, 2, 3, 4, 5, 6]
    assert {s.camera for s in first_year.sectors} == {4}
    for one in first_year.sectors:
        assert 1 <= one.row <= 2048 and 45 <= one.column <= 2092
        assert one.time.size > 1000 and np.all(np.diff(one.time) > 0)
        assert np.all(one.sl >= 0) and np.all(one.error > 0)
        # past the pointing table's end (real data run on), but the threshold is a share of
        # the peak within the table's span
        start, end = sector_time_range(one.sector)
        assert one.time[0] == start and end + END_MARGIN_DAYS - 1 / 48 - 1e-6 < one.time[-1] < end + END_MARGIN_DAYS
        assert one.peak == one.sl[one.time <= end].max()
        assert one.threshold == pytest.approx(RELATIVE_THRESHOLD * one.peak)
        # every cadence whose upper band reaches the threshold is in an episode, and every
        # episode cadence is within the padding (before, after) of one
        upper = one.sl + BAND_SIGMAS * one.error >= one.threshold
        assert np.all(one.in_episode[upper])
        later = one.time[upper][None, :] - one.time[one.in_episode][:, None]  # hit minus episode cadence
        before, after = np.asarray(EPISODE_PADDING_HOURS) / 24 + 1e-6
        assert np.all(np.any((later <= before) & (-later <= after), axis=1))
        assert one.affected_share == pytest.approx(one.in_episode.mean())
        for episode in one.episodes:
            assert episode["start"] <= episode["peak_time"] <= episode["end"] and episode["orbit"] in (1, 2)
            assert episode["peak_sl"] + BAND_SIGMAS * one.error.max() >= one.threshold
    # a faint sector's threshold lies within its error floor (all of it may be hit); not every one
    assert min(s.affected_share for s in first_year.sectors) < 0.7
    table = first_year.episodes_table()
    assert len(table) == sum(len(s.episodes) for s in first_year.sectors) > 0


def test_the_forecast_pixel_is_where_the_real_series_was_measured():
    from astropy.io import fits

    from tess_backml.series import read_series

    path = shared_file("real/lightcurves/tess2019357164649-s0020-0000000130181866-0165-s_lc.fits")
    header = fits.getheader(path)
    series = read_series(path)
    (sector, camera, ccd, row, column), = observing(header["RA_OBJ"], header["DEC_OBJ"], [20])
    assert (sector, camera, ccd) == (series.sector, series.camera, series.ccd)
    assert abs(row - series.row) < 3 and abs(column - series.column) < 3


def test_episodes_split_by_orbit_and_nothing_below_the_threshold():
    time = np.arange(0, 27, 0.02)
    sl = np.where((time > 3) & (time < 4), 50.0, 0.0) + np.where((time > 20) & (time < 21.5), 80.0, 0.0)
    orbits = np.where(time < 13.5, 1, 2)
    found = episodes(time, sl, 8.0, orbits, padding_hours=0)
    assert [(e["orbit"], round(e["peak_sl"])) for e in found] == [(1, 50), (2, 80)]
    assert found[0]["start"] == pytest.approx(3.02) and found[0]["end"] == pytest.approx(3.98)
    assert episodes(time, sl, 100.0, orbits) == [] and episodes(time, np.zeros_like(time), 0.0) == []


def test_episodes_take_the_upper_band_and_the_padding():
    time = np.arange(0, 27, 0.02)
    sl = np.where((time > 3) & (time < 4), 50.0, 0.0)
    error = np.where((time > 10) & (time < 11), 10.0, 1.0)
    # alone the forecast never reaches 60; one error above it, the uncertain stretch does
    assert episodes(time, sl, 60.0, padding_hours=0) == []
    banded = episodes(time, sl, 9.0, error=error, sigmas=1.0, padding_hours=0)
    assert [(round(e["start"], 2), round(e["end"], 2)) for e in banded] == [(3.02, 3.98), (10.02, 10.98)]
    # six hours on each side, and runs nearer than twice that merge
    padded = episodes(time, sl, 9.0, error=error, sigmas=1.0, padding_hours=6)
    assert [(round(e["start"], 2), round(e["end"], 2)) for e in padded] == [(2.76, 4.24), (9.76, 11.24)]
    merged = episodes(time, np.where((time > 3) & (time < 3.5) | (time > 3.8) & (time < 4), 50.0, 0.0), 9.0,
                      padding_hours=6)
    assert len(merged) == 1
    # padding before and after apart: a tail of 12 h, nothing before
    tailed = episodes(time, sl, 9.0, padding_hours=(0, 12))
    assert [(round(e["start"], 2), round(e["end"], 2)) for e in tailed] == [(3.02, 4.48)]


def test_forecast_command_writes_its_csv_and_plot(tmp_path, capsys):
    from tess_backml.cli import main

    out, plot = tmp_path / "forecast.csv", tmp_path / "forecast.png"
    assert main(["-q", "forecast", "--ra", str(CVZ[0]), "--dec", str(CVZ[1]), "--sectors", "1-3",
                 "--out", str(out), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "observed in 3 sectors" in printed and "orbit" in printed
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert {"sector", "camera", "ccd", "btjd", "sl", "sl_err", "in_episode", "stray_light"} <= set(rows[0])
    assert {int(r["sector"]) for r in rows} == {1, 2, 3} and all(float(r["sl_err"]) > 0 for r in rows)
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize("argv, message", [
    (["--ra", "abc", "--dec", "-65"], "must be numbers"),
    (["--ra", "95", "--dec", "95"], "not a sky position"),
    (["--ra", "95", "--dec", "-65", "--sectors", "190"], "no pointing"),
    (["--ra", "270", "--dec", "66.5", "--sectors", "1"], "observes"),
    (["--ra", "95", "--dec", "-65", "--sectors", "100"], "--ephemeris horizons"),
])
def test_bad_forecast_input_gets_one_line(argv, message, tmp_path, capsys):
    from tess_backml.cli import main

    out = tmp_path / "f.csv"
    assert main(["forecast", *argv, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_forecast_refuses_nonsense_in_python():
    with pytest.raises(TessBackmlError, match="sky position"):
        forecast(95.0, -91.0)


def _cutout_moved_to(source, destination, sector, camera, ccd, row, column):
    """The real S12 TESScut cutout, its keywords and times moved to another sector's CCD
    pixel: a cutout of that sector in TESScut's own layout, for the commands to read."""
    from astropy.io import fits

    from tess_backml.geometry import sector_time_range

    start, end = sector_time_range(sector)
    with fits.open(source) as hdul:
        header, pixels = hdul[0].header, hdul[1]
        header["SECTOR"], header["CAMERA"], header["CCD"] = sector, camera, ccd
        pixels.header["CAMERA"], pixels.header["CCD"] = camera, ccd
        for key in ("1CRV4P", "1CRV5P"):
            pixels.header[key] = int(column)
        for key in ("2CRV4P", "2CRV5P"):
            pixels.header[key] = int(row)
        time = pixels.data["TIME"]
        pixels.data["TIME"] = start + 0.2 + (time - np.nanmin(time)) * (end - start - 0.4) / np.nanmax(time - np.nanmin(time))
        hdul.writeto(destination)


@pytest.mark.slow
@pytest.mark.parametrize("sector", [1, 30, 60, 98, 110])
def test_forecast_and_the_default_model_run_offline_on_shipped_sectors(sector, monkeypatch, tmp_path, capsys):
    """The acceptance sectors of the shipped geometry: no ephemeris option, no
    environment variable, no network, and both commands answer."""
    from tess_backml.cli import main
    from tess_backml.geometry import CameraGeometry
    from tess_backml.geometry.ephemeris import EPHEMERIS_ENVIRONMENT

    monkeypatch.delenv(EPHEMERIS_ENVIRONMENT, raising=False)
    camera, ccd, row, column = 1, 2, 700, 900
    sky = CameraGeometry(sector, camera).wcs(ccd).pixel_to_world(column - 1, row - 1)
    out = tmp_path / "forecast.csv"
    assert main(["-q", "forecast", "--ra", f"{sky.ra.deg:.6f}", "--dec", f"{sky.dec.deg:.6f}", "--sectors", str(sector),
                 "--out", str(out)]) == 0, capsys.readouterr().err
    with open(out) as handle:
        rows = [r for r in csv.DictReader(handle) if (int(r["camera"]), int(r["ccd"])) == (camera, ccd)]
    assert rows and abs(float(rows[0]["row"]) - row) < 0.01 and abs(float(rows[0]["column"]) - column) < 0.01
    assert all(np.isfinite(float(r["sl"])) and float(r["sl_err"]) > 0 for r in rows)

    cutout = tmp_path / f"tess-s{sector:04d}-{camera}-{ccd}_cutout.fits"
    _cutout_moved_to(shared_file("real/tess-s0012-2-1_tesscut_1x1.fits"), cutout, sector, camera, ccd, row, column)
    corrected = tmp_path / "corrected.fits"
    assert main(["-q", "correct", str(cutout), "--model", "default", "--out", str(corrected)]) == 0, capsys.readouterr().err
    from astropy.io import fits

    with fits.open(corrected) as hdul:
        model = hdul[1].data["SL_MODEL"].reshape(len(hdul[1].data), -1)
    assert np.isfinite(model).all(axis=1).mean() >= 0.9


def test_the_forecast_span_holds_every_cadence_of_the_real_series():
    # tesswcs' pointing table gives whole days; real data run past its end (Sector 5's
    # camera 4 light curve by 0.8 d, with its brightest light in that last day)
    import glob

    from tess_backml.forecast import forecast_stop
    from tess_backml.geometry import sector_time_range
    from tess_backml.series import read_series

    folder = shared_file("real/lightcurves/eleanor-reference/target_s0005.fits").parents[1]
    files = sorted(glob.glob(str(folder / "**" / "*.fits"), recursive=True))
    assert len(files) > 20
    beyond = 0
    for path in files:
        series = read_series(path)
        start, end = sector_time_range(series.sector)
        assert start <= series.time.min() and series.time.max() <= forecast_stop(end), path
        beyond += series.time.max() > end
    assert beyond > 0  # the margin is needed, not only allowed
