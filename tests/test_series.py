"""Real scattered-light series from SPOC light curves, SPOC TPFs and TESScut cutouts."""

import numpy as np
import pytest
from astropy.io import fits
from conftest import shared_file

from tess_backml.errors import FileFormatError, TessBackmlError
from tess_backml.series import SPIKE, STRAY_LIGHT_BITS, make_series, read_series

LIGHT_CURVE = "real/lightcurves/tess2019357164649-s0020-0000000130181866-0165-s_lc.fits"


def test_a_spoc_light_curve_gives_its_background_per_pixel_above_the_dark_level():
    path = shared_file(LIGHT_CURVE)
    series = read_series(path)
    assert (series.sector, series.camera, series.ccd, series.kind) == (20, 1, 4, "light curve")
    with fits.open(path) as hdul:
        aperture = (hdul[2].data & 2) > 0
        data = hdul[1].data
        expected = data["SAP_BKG"] / aperture.sum()
        rows, cols = np.nonzero(aperture)
        assert series.row == pytest.approx(hdul[2].header["CRVAL2P"] + rows.mean())
        good = np.isfinite(data["TIME"]) & np.isfinite(expected) & ((data["QUALITY"] & ~STRAY_LIGHT_BITS) == 0)
    assert series.time.size == good.sum()
    np.testing.assert_allclose(series.sl + series.level, expected[good], rtol=1e-6)
    clean = series.sl[(series.flags & SPIKE) == 0]
    assert np.mean(clean < 0) == pytest.approx(0.02, abs=0.005)  # the level is the 2nd percentile
    assert clean.max() > 10_000  # the Earth in camera 1's view
    assert np.any(series.flags & STRAY_LIGHT_BITS)  # stray-light cadences kept, with their bits


def test_spikes_are_flagged_and_left_out_of_bins():
    time = 1500 + np.arange(200) / 720
    values = 100 + 20 * np.sin(time * 3)
    values[[50, 120]] += 400  # a cosmic ray, an asteroid
    series = make_series(5, 1, 1, 500, 500, time, values, np.full(200, 0.5), np.zeros(200, int), "test", "light curve")
    assert np.flatnonzero(series.flags & SPIKE).tolist() == [50, 120]
    binned = series.binned(30.0)
    assert binned.time.size == 14 and binned.sl.max() < 45
    assert np.all((binned.error[1:-1] > 0.5 / np.sqrt(17)) & (binned.error[1:-1] < 0.5 / np.sqrt(13)))  # mean of ~15


def test_the_tesscut_cutout_and_the_spoc_tpf_give_series_too():
    cutout = read_series(shared_file("real/tess-s0012-2-1_tesscut_1x1.fits"))
    assert (cutout.sector, cutout.camera, cutout.ccd, cutout.kind) == (12, 2, 1, "cutout")
    assert (cutout.row, cutout.column) == (1458.0, 379.0)
    assert cutout.sl.max() > 500 and cutout.time.size > 1200
    tpf = read_series(shared_file("real/tess-s0015-2-3_spoc_tpf_11x11_100cad.fits"))
    assert (tpf.sector, tpf.camera, tpf.ccd, tpf.kind) == (15, 2, 3, "tpf")
    assert tpf.time.size == 100 and np.all(np.isfinite(tpf.sl))


def test_bad_input_gets_one_clear_error(tmp_path):
    with fits.open(shared_file(LIGHT_CURVE)) as hdul:
        table = hdul[1]
        kept = fits.ColDefs([c for c in table.columns if c.name != "SAP_BKG"])
        no_background = fits.HDUList([hdul[0].copy(), fits.BinTableHDU.from_columns(kept, header=table.header), hdul[2].copy()])
        no_background.writeto(tmp_path / "no_bkg.fits")
        flagged = fits.HDUList([hdul[0].copy(), table.copy(), hdul[2].copy()])
        flagged[1].data["QUALITY"][:] = 32  # every cadence a momentum dump
        flagged.writeto(tmp_path / "all_flagged.fits")
        qlp = fits.HDUList([hdul[0].copy(), table.copy(), hdul[2].copy()])  # SPOC's column names, QLP's origin
        qlp[0].header["ORIGIN"] = "MIT/QLP"
        qlp.writeto(tmp_path / "qlp.fits")
    with pytest.raises(FileFormatError, match="no SAP_BKG column"):
        read_series(tmp_path / "no_bkg.fits")
    with pytest.raises(TessBackmlError, match="no valid cadence"):
        read_series(tmp_path / "all_flagged.fits")
    with pytest.raises(FileFormatError, match="QLP light curve.*TESScut cutout"):
        read_series(tmp_path / "qlp.fits")
    with pytest.raises(FileFormatError, match="is an SL cube, not a series.*--cube"):
        read_series(shared_file("ffi_sl_cube_sector002_1-1_test.fits"))
    with pytest.raises(FileFormatError, match="one full-frame image .*tess-backml cube --source"):
        read_series(shared_file("real/tess2018206192942-s0001-1-4-0120-s_ffic.fits"))
    (tmp_path / "text.fits").write_text("not FITS")
    with pytest.raises(TessBackmlError, match="cannot read"):
        read_series(tmp_path / "text.fits")


PIPELINES = "real/ffi-pipelines/"
PI_MEN = {  # one star (TIC 261136679, S1 camera 4 CCD 2) measured by four pipelines
    "spoc": "real/lightcurves/tess2018206045859-s0001-0000000261136679-0120-s_lc.fits",
    "tess-spoc": PIPELINES + "hlsp_tess-spoc_tess_phot_0000000261136679-s0001_tess_v1_lc.fits",
    "tasoc": PIPELINES + "hlsp_tasoc_tess_ffi_tic00261136679-s0001-cam4-ccd2-c1800_tess_v05_ens-lc.fits",
    "eleanor-lite": PIPELINES + "hlsp_gsfc-eleanor-lite_tess_ffi_s0001-0000000261136679_tess_v1.0_lc.fits",
}


def test_four_pipelines_measure_the_same_light_per_pixel_at_the_same_place():
    series = {name: read_series(shared_file(path)) for name, path in PI_MEN.items()}
    for name, s in series.items():
        assert (s.sector, s.camera, s.ccd, s.kind) == (1, 4, 2, "light curve"), name
        # the FFI pipelines are placed by their target's RA/Dec through tesswcs, SPOC by its aperture
        assert abs(s.row - series["spoc"].row) < 3 and abs(s.column - series["spoc"].column) < 3, name
        # per pixel: the summed backgrounds (SPOC, TESS-SPOC, TASOC) divided by their apertures
        assert 60 < s.level < 120, name
    spoc = series["spoc"].binned(30.0)
    for name in ("tess-spoc", "tasoc", "eleanor-lite"):
        other = series[name]
        common = np.interp(other.time, spoc.time, spoc.sl)
        inside = (other.time > spoc.time[0]) & (other.time < spoc.time[-1])
        # the same scattered light, cadence by cadence, to a few e-/s
        assert np.median(np.abs(other.sl[inside] - common[inside])) < 5, name
        assert np.corrcoef(other.sl[inside], common[inside])[0, 1] > 0.8, name


def test_tglc_light_curves_give_their_per_pixel_background():
    path = shared_file(PIPELINES + "hlsp_tglc_tess_ffi_gaiaid-5707485527450614656-s0008-cam2-ccd4_tess_v2_llc.fits")
    series = read_series(path)
    assert (series.sector, series.camera, series.ccd) == (8, 2, 4)
    with fits.open(path) as hdul:
        background = hdul[1].data["background"]
        good = np.isfinite(background) & ((hdul[1].data["TESS_flags"] & ~STRAY_LIGHT_BITS) == 0)
    assert series.time.size == good.sum()
    np.testing.assert_allclose(series.sl + series.level, background[good], rtol=1e-6)
    assert series.sl.max() > 20 * series.level  # S8's scattered light, to ~30x the sky


def test_an_early_tesscut_with_broken_corner_and_sector_keywords_is_placed_on_its_target():
    """SECTOR is blank and 2CRV4P = -856: the sector comes from its FFI files' names and
    the place from RA_OBJ/DEC_OBJ (its own WCS is off by ~1000 rows too)."""
    path = shared_file("real/tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits")
    series = read_series(path)
    assert (series.sector, series.camera, series.ccd, series.kind) == (1, 4, 3, "cutout")
    from tess_backml.series import place_on_ccd

    row, column = place_on_ccd(1, 4, 3, 107.27, -70.0)
    assert abs(series.row - row) < 2.5 and abs(series.column - column) < 2.5
    assert series.time.size > 1200 and series.sl.max() > 50


def test_every_shared_real_file_is_read_or_refused_in_one_line():
    from conftest import SHARED_DATA

    files = sorted((SHARED_DATA / "real").rglob("*")) if (SHARED_DATA / "real").is_dir() else []
    files = [f for f in files if f.is_file()]
    if not files:
        pytest.skip("no shared real data")
    read = 0
    for path in files:
        try:
            series = read_series(path)
        except TessBackmlError as exc:
            assert "\n" not in str(exc) and str(path.name) in str(exc)
            continue
        assert series.time.size > 0 and np.all(np.isfinite(series.sl))
        read += 1
    assert read >= 38  # every light curve, pipeline product, cutout and TPF; the FFI and the CSV refused
