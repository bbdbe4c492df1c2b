"""The pixel coordinate convention, checked against real TESS headers."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from conftest import shared_file

from tess_backml import constants
from tess_backml.geometry import CameraGeometry, radec_to_unit


def separation_arcsec(u, v):
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v)), np.sum(u * v, -1))) * 3600


def test_science_region_slices():
    image = np.arange(np.prod(constants.FFI_SHAPE)).reshape(constants.FFI_SHAPE)
    science = image[constants.SCIENCE_ROWS, constants.SCIENCE_COLUMNS]
    assert science.shape == (2048, 2048)
    # CCD column 45, row 1 (1-based) is the first science pixel.
    assert science[0, 0] == image[0, 44]
    assert science[-1, -1] == image[2047, 2091]
    assert constants.ccd_to_science(1, 45) == (0, 0)
    row, col = constants.science_to_ccd(2047, 2047)
    assert (row, col) == (2048, 2092)


def test_straps_match_instrument_handbook_table():
    import csv

    with open(shared_file("straps.csv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    assert tuple(int(row["Column"]) for row in rows) == constants.STRAP_COLUMNS


@pytest.mark.parametrize(
    "name",
    ["real/tess-s0012-2-1_tesscut_1x1.fits", "real/tess-s0015-2-3_spoc_tpf_11x11_100cad.fits"],
)
def test_cutout_corner_is_one_based_ccd_coordinate(name):
    """A TPF's 1CRV4P/2CRV4P, read as 1-based CCD coordinates, lands on its own WCS."""
    with fits.open(shared_file(name)) as hdul:
        sector, camera, ccd = (hdul[0].header[k] for k in ("SECTOR", "CAMERA", "CCD"))
        column, row = hdul[1].header["1CRV4P"], hdul[1].header["2CRV4P"]
        aperture_wcs = WCS(hdul[2].header)
    ra, dec = aperture_wcs.all_pix2world(0, 0, 0)
    truth = radec_to_unit(ra, dec)
    geometry = CameraGeometry(sector, camera)
    assert separation_arcsec(geometry.pixel_directions(ccd, row, column), truth) < 5
    # One pixel off in either axis is a whole 21" pixel away: the test can tell.
    for d_row, d_col in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        assert separation_arcsec(geometry.pixel_directions(ccd, row + d_row, column + d_col), truth) > 15


def test_spoc_ffi_wcs_matches_image_index_convention():
    with fits.open(shared_file("real/tess2018206192942-s0001-1-4-0120-s_ffic.fits")) as hdul:
        ffi_wcs = WCS(hdul[1].header)
    geometry = CameraGeometry(1, 1)
    rows = np.array([5, 64, 120])
    cols = np.array([50, 100, 170])  # 0-based image indices of the cropped FFI
    ra, dec = ffi_wcs.all_pix2world(cols, rows, 0)
    ours = geometry.pixel_directions(4, rows + 1, cols + 1)
    assert np.all(separation_arcsec(ours, radec_to_unit(ra, dec)) < 8)
    shifted = geometry.pixel_directions(4, rows + 1, cols + 2)
    assert np.all(separation_arcsec(shifted, radec_to_unit(ra, dec)) > 12)



def test_top_level_names_import_lazily():
    """``from tess_backml import BackgroundCube, ScatterLightCorrector`` works as in the
    original, and ``import tess_backml`` alone loads neither numba nor lightkurve."""
    import subprocess
    import sys

    script = (
        "import sys, tess_backml\n"
        "heavy = [m for m in ('numba', 'lightkurve', 'tess_backml.cube', 'tess_backml.corrector') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from tess_backml import BackgroundCube, ScatterLightCorrector, train_model, evaluate_model, load_model\n"
        "from tess_backml.cube import BackgroundCube as cube_class\n"
        "from tess_backml.corrector import ScatterLightCorrector as corrector_class\n"
        "assert BackgroundCube is cube_class and ScatterLightCorrector is corrector_class\n"
        "assert callable(train_model) and callable(evaluate_model) and callable(load_model)\n"
        "assert {'BackgroundCube', 'ScatterLightCorrector'} <= set(dir(tess_backml))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
