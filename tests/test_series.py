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
    with pytest.raises(FileFormatError, match="no SAP_BKG column"):
        read_series(tmp_path / "no_bkg.fits")
    with pytest.raises(TessBackmlError, match="no valid cadence"):
        read_series(tmp_path / "all_flagged.fits")
    with pytest.raises(FileFormatError, match="not a TESS light curve"):
        read_series(shared_file("ffi_sl_cube_sector002_1-1_test.fits"))
    (tmp_path / "text.fits").write_text("not FITS")
    with pytest.raises(TessBackmlError, match="cannot read"):
        read_series(tmp_path / "text.fits")
