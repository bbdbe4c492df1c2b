"""The simulated sector as files: SPOC calibrated FFIs that ``astrocut.CubeFactory`` accepts."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..constants import BTJD_OFFSET, FFI_SHAPE, SCIENCE_COLUMNS, SCIENCE_ROWS


def ffi_file_name(sim, index: int) -> str:
    """SPOC file name of frame ``index``: ``tess{YYYYDDDHHMMSS}-s{sector}-{camera}-{ccd}-{scid}-s_ffic.fits``."""
    start = Time(sim.time[index] - sim.cadence_s / 172800 + BTJD_OFFSET, format="jd", scale="tdb").utc
    stamp = start.strftime("%Y%j%H%M%S")
    return f"tess{stamp}-s{sim.sector:04d}-{sim.camera}-{sim.ccd}-{120 + sim.sector:04d}-s_ffic.fits"

def ffi_hdulist(sim, index: int) -> fits.HDUList:
    """Frame ``index`` as a SPOC calibrated FFI (full 2078 x 2136 image, collateral pixels zero)."""
    (index,) = sim.check_frames(index)
    flux, error = sim.frame(int(index))
    half = sim.cadence_s / 172800
    tstart, tstop = float(sim.time[index] - half), float(sim.time[index] + half)
    iso = Time(np.array([tstart, tstop]) + BTJD_OFFSET, format="jd", scale="tdb").utc.isot

    primary = fits.PrimaryHDU(header=sim.primary_header.copy())
    primary.header["TSTART"] = (tstart, "observation start time in BTJD")
    primary.header["TSTOP"] = (tstop, "observation stop time in BTJD")
    primary.header["DATE-OBS"] = (iso[0] + "Z", "TSTART as UTC calendar date")
    primary.header["DATE-END"] = (iso[1] + "Z", "TSTOP as UTC calendar date")
    primary.header["FFIINDEX"] = (int(sim.cadenceno[index]), "number of FFI cadence interval")

    image_header = _image_header(sim, index, tstart, tstop, iso)
    uncert_header = image_header.copy()
    uncert_header["EXTNAME"] = f"CAMERA.CCD {sim.camera}.{sim.ccd} uncert"
    uncert_header["IMAGTYPE"] = "uncert"

    full = np.zeros(FFI_SHAPE, np.float32)
    full[SCIENCE_ROWS, SCIENCE_COLUMNS] = flux
    full_error = np.zeros(FFI_SHAPE, np.float32)
    full_error[SCIENCE_ROWS, SCIENCE_COLUMNS] = error
    return fits.HDUList(
        [primary, fits.ImageHDU(full, header=image_header), fits.ImageHDU(full_error, header=uncert_header)]
    )

def _image_header(sim, index: int, tstart: float, tstop: float, iso) -> fits.Header:
    """The calibrated image's header: SPOC's time, exposure and quality keywords, the
    sector WCS and the physical (CCD pixel) WCS."""
    image_header = fits.Header()
    image_header["INHERIT"] = True
    image_header["EXTNAME"] = f"CAMERA.CCD {sim.camera}.{sim.ccd} cal"
    image_header["SIMDATA"] = (True, "file is based on simulated data")
    image_header["CAMERA"] = (sim.camera, "Camera number")
    image_header["CCD"] = (sim.ccd, "CCD chip number")
    image_header["TIMEREF"] = ("SOLARSYSTEM", "barycentric correction applied to times")
    image_header["TASSIGN"] = ("SPACECRAFT", "where time is assigned")
    image_header["TIMESYS"] = ("TDB", "time system is Barycentric Dynamical Time (TDB)")
    image_header["BJDREFI"] = (2457000, "integer part of BTJD reference date")
    image_header["BJDREFF"] = (0.0, "fraction of the day in BTJD reference date")
    image_header["TIMEUNIT"] = ("d", "time unit for TIME, TSTART and TSTOP")
    image_header["TSTART"] = (tstart, "observation start time in BTJD")
    image_header["TSTOP"] = (tstop, "observation stop time in BTJD")
    image_header["DATE-OBS"] = (iso[0] + "Z", "TSTART as UTC calendar date")
    image_header["DATE-END"] = (iso[1] + "Z", "TSTOP as UTC calendar date")
    image_header["TELAPSE"] = (tstop - tstart, "[d] TSTOP - TSTART")
    image_header["EXPOSURE"] = (sim.exposure_s / 86400, "[d] time on source")
    image_header["TIMEDEL"] = (sim.cadence_s / 86400, "[d] time resolution of data")
    image_header["BARYCORR"] = (float(sim.barycorr[index]), "[d] barycentric time correction")
    image_header["DEADC"] = (0.792, "deadtime correction")
    image_header["TIMEPIXR"] = (0.5, "bin time beginning=0 middle=0.5 end=1")
    image_header["INT_TIME"] = (1.98, "[s] photon accumulation time per frame")
    image_header["READTIME"] = (0.02, "[s] readout time per frame")
    image_header["FRAMETIM"] = (2.0, "[s] frame time (INT_TIME + READTIME)")
    image_header["NUM_FRM"] = (int(sim.cadence_s / 2), "number of frames per time stamp")
    image_header["BUNIT"] = ("electrons/s", "physical units of image data")
    image_header["DQUALITY"] = (int(sim.quality[index]), "data quality flags")
    image_header["FFIINDEX"] = (int(sim.cadenceno[index]), "number of FFI cadence interval")
    image_header["IMAGTYPE"] = ("cal", "FFI image type: raw, cal, uncert")
    image_header.extend(fits.Header.fromstring(_sector_wcs_header(sim.sector, sim.camera, sim.ccd)))
    # the physical (CCD pixel) WCS of SPOC FFIs: astrocut places cutouts with it
    for key, value, comment in (
        ("WCSNAMEP", "PHYSICAL", "name of world coordinate system alternate P"),
        ("WCSAXESP", 2, "number of WCS physical axes"),
        ("CTYPE1P", "RAWX", "physical WCS axis 1 type CCD col"),
        ("CUNIT1P", "PIXEL", "physical WCS axis 1 unit"),
        ("CRPIX1P", 1, "reference CCD column"),
        ("CRVAL1P", 1, "value at reference CCD column"),
        ("CDELT1P", 1.0, "physical WCS axis 1 step"),
        ("CTYPE2P", "RAWY", "physical WCS axis 2 type CCD row"),
        ("CUNIT2P", "PIXEL", "physical WCS axis 2 units"),
        ("CRPIX2P", 1, "reference CCD row"),
        ("CRVAL2P", 1, "value at reference CCD row"),
        ("CDELT2P", 1.0, "physical WCS axis 2 step"),
    ):
        image_header[key] = (value, comment)
    return image_header


def write_ffis(sim, directory, frames=None, progress: bool = True) -> list[str]:
    """Write frames of ``sim`` as SPOC FFI files: see ``SimulatedSector.write_ffis``."""
    import os

    from tqdm.auto import tqdm

    from .._files import atomic_output

    indices = np.arange(sim.nframes) if frames is None else sim.check_frames(frames)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for index in tqdm(indices, desc="writing FFIs", unit="frame", disable=not progress):
        path = os.path.join(str(directory), sim.ffi_file_name(int(index)))
        with atomic_output(path, None) as temporary:
            sim.ffi_hdulist(int(index)).writeto(temporary, overwrite=True)
        paths.append(path)
    return paths


def _sector_wcs_header(sector: int, camera: int, ccd: int) -> str:
    """The FITS header text of a CCD's WCS (with SIP), as ``tesswcs`` makes it."""
    from ..geometry import sector_wcs

    return sector_wcs(sector)[camera, ccd].to_header(relax=True).tostring()
