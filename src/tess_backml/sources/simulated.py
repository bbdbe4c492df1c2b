"""A simulated sector with real timing and geometry, and a known scattered-light truth.

The embedded default of the package: everything downstream (cube, corrector,
model) can run and be scored offline on it.

What is real: the sector's span and FFI cadence (``tesswcs`` pointings), the
downlink gaps at perigee (from the ephemeris), the camera/CCD WCS and every
pixel's angle to the Earth and Moon (:mod:`tess_backml.geometry`).

What is made up, with plausible numbers: a fixed star field (counts rising as
10^(0.3 T), 15,000 e-/s at T = 10, Gaussian PSF of 1.4-2 px FWHM, saturation
with bleed columns), a smooth static sky of a few tens of e-/s, strap columns
with an 8% higher response, photon and read noise with a matching error image,
momentum dumps (flagged Desat, 1-pixel jitter) and a few coarse-pointing frames
(flagged, star field shifted by several pixels). Data run from the end of the
downlink at one perigee to the start of the next-but-one, with a ``gap_days``
gap at the perigee between (the sector's two orbits).

The scattered light of a body reaching a pixel depends on the pixel's angle to
the body ``theta`` and on the body itself::

    SL = A(t) * [exp(-(theta - theta_cam) / 8 deg) + 0.6 * ring(theta)]
    A(t) = K * (r / r_ref)^2 * S(theta_cam)

with ``theta`` the pixel's angle to the body (exact at nodes every 32 pixels,
bilinearly interpolated between them: the angle field is smooth, the
interpolation error is below 1e-4 relative), ``theta_cam`` the body's angle from
the camera boresight, ``r`` its angular
radius, ``S`` a smooth step (1.5 deg wide) that is 1 when the body is above the
sunshade (``theta_cam`` below 50 deg for the Earth, 45 deg for the Moon) and 0
below it, and ``ring`` a sharp-edged (0.15 deg edges) glint band 38-40 deg (Earth)
from the body that sweeps across the CCD as the body moves. Near perigee the
Earth's light reaches thousands of e-/s; most of the orbit it is nil.

Frame ``i`` depends only on (sector, camera, CCD, seed, cadence, i): any frame
can be regenerated alone, and frames are made on request, never held.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..constants import (
    BODIES,
    BODY_RADII_KM,
    BTJD_OFFSET,
    FFI_SHAPE,
    FIRST_SCIENCE_COLUMN,
    FIRST_SCIENCE_ROW,
    QUALITY_FLAGS,
    SCIENCE_COLUMNS,
    SCIENCE_ROWS,
    SCIENCE_SIZE,
    STRAP_COLUMNS,
    SUNSHADE_CUTOFF_DEG,
    ffi_cadence_seconds,
)
from ..errors import TessBackmlError
from .base import FFISource

log = logging.getLogger(__name__)

#: Scattered-light model parameters per body.
SL_MODEL = {
    "earth": {"K": 900.0, "r_ref": 3.0, "cut": SUNSHADE_CUTOFF_DEG["earth"], "ring": (38.0, 40.0)},
    "moon": {"K": 60.0, "r_ref": 0.25, "cut": SUNSHADE_CUTOFF_DEG["moon"], "ring": (30.0, 31.0)},
}
SL_SCALE_DEG = 8.0
SL_STEP_WIDTH_DEG = 1.5
RING_AMPLITUDE = 0.6
RING_EDGE_DEG = 0.15
NODE_SPACING = 32  # pixels between the nodes where angles are computed exactly
STRAP_RESPONSE = 1.08
SATURATION = 8.0e4  # e-/s in one pixel: stars brighter than T ~ 6.8 saturate
READ_NOISE_E = 10.0  # e- per 2-s readout
DUMP_INTERVAL_DAYS = 3.125


def _bilinear_weights(n_pixels: int, spacing: int) -> np.ndarray:
    """(n_pixels, n_nodes) weights that interpolate node values (every ``spacing`` px) to pixels."""
    n_nodes = n_pixels // spacing + 1
    position = np.arange(n_pixels) / spacing
    left = np.minimum(np.floor(position).astype(int), n_nodes - 2)
    fraction = position - left
    weights = np.zeros((n_pixels, n_nodes), np.float32)
    weights[np.arange(n_pixels), left] = 1 - fraction
    weights[np.arange(n_pixels), left + 1] = fraction
    return weights


class SimulatedSector(FFISource):
    """A simulated sector/camera/CCD of FFIs with known scattered light.

    Parameters
    ----------
    sector, camera, ccd : int
        Default Sector 4, camera 1, CCD 1: the offline SPICE kernels cover Sector 4.
    cadence_s : float, optional
        FFI cadence in seconds; default the sector's (1800 s for Sector 4).
    seed : int
        Seeds the star field, the bad frames and the noise.
    gap_days : float
        Length of the data-downlink gap at each perigee.
    n_stars : int
        Stars on the CCD.
    ephemeris : Ephemeris or str, optional
        As in :mod:`tess_backml.geometry`; default SPICE (offline for Sector 4).

    Notes
    -----
    Reads return science-region pixels like every source; :meth:`read_frames`
    is the cheap read (frames are generated one at a time), the other reads
    generate every frame. :meth:`true_scattered_light` gives the SL truth, as the
    detector records it (strap response included).
    """

    cheap_read = "frames"

    def __init__(self, sector=4, camera=1, ccd=1, cadence_s=None, seed=0, gap_days=1.0, n_stars=20000, ephemeris=None):
        from .. import geometry

        self.sector = geometry.validate_sector(sector)
        self.camera, self.ccd = geometry.validate_camera_ccd(camera, ccd)
        if cadence_s is None:
            cadence_s = ffi_cadence_seconds(self.sector)
        if not (np.isfinite(cadence_s) and 20 <= cadence_s <= 7200):
            raise TessBackmlError(f"cadence_s must be between 20 and 7200 seconds, got {cadence_s}")
        self.cadence_s = float(cadence_s)
        self.seed = int(seed)
        self.n_stars = int(n_stars)
        self.gap_days = float(gap_days)
        self._ephemeris = geometry.load_ephemeris(ephemeris)
        self._geometry = geometry.CameraGeometry(self.sector, self.camera)

        start, end = geometry.sector_time_range(self.sector)
        step = self.cadence_s / 86400.0
        grid = start + (np.arange(int((end - start) / step)) + 0.5) * step
        self.perigees = self._perigee_times(start, end)
        keep = np.ones(len(grid), bool)
        for perigee in self.perigees:
            keep &= np.abs(grid - perigee) > self.gap_days / 2
        if len(self.perigees) >= 2:
            # Science data run from the end of one downlink to the start of another.
            keep &= (grid > self.perigees[0]) & (grid < self.perigees[-1])
        self._grid_index = np.flatnonzero(keep)
        self.time = grid[keep]
        self.cadenceno = self._grid_index + 1
        if self.nframes == 0:
            raise TessBackmlError("the simulated sector has no frames outside the perigee gaps")

        jd = self._geometry.spacecraft_time(self.time, self._ephemeris)
        #: barycentric correction of each frame (days): BTJD minus spacecraft time
        self.barycorr = self.time + BTJD_OFFSET - jd
        vectors = self._ephemeris.body_vectors(jd)
        self._body_vectors = {body: vectors.body(body) for body in BODIES}
        self.amplitude = {}
        self.camera_angle = {}
        for body in BODIES:
            vec = self._body_vectors[body]
            angle, _ = geometry.angle_and_azimuth(vec, self._geometry.boresight[None], self._geometry.reference)
            radius = np.degrees(np.arcsin(BODY_RADII_KM[body] / np.linalg.norm(vec, axis=1)))
            p = SL_MODEL[body]
            above = 0.5 * (1 + np.tanh((p["cut"] - angle[:, 0]) / SL_STEP_WIDTH_DEG))
            self.camera_angle[body] = angle[:, 0]
            self.amplitude[body] = p["K"] * (radius / p["r_ref"]) ** 2 * above
        self.quality, self._offsets = self._bad_frames()
        self.primary_header = self._make_primary_header()

        nodes = np.arange(0, SCIENCE_SIZE + 1, NODE_SPACING, dtype=float)
        node_rows, node_cols = np.meshgrid(nodes + FIRST_SCIENCE_ROW, nodes + FIRST_SCIENCE_COLUMN, indexing="ij")
        self._node_los = self._geometry.pixel_directions(self.ccd, node_rows, node_cols).reshape(-1, 3)
        self._node_shape = node_rows.shape
        self._weights = _bilinear_weights(SCIENCE_SIZE, NODE_SPACING)
        exposure = self.cadence_s * 0.792 * 0.8  # dead time, cosmic-ray mitigation
        self._exposure_s = exposure
        self._read_variance = (self.cadence_s / 2 * 0.8) * READ_NOISE_E**2 / exposure**2

    # ------------------------------------------------------------------ set-up
    def _perigee_times(self, start, end) -> np.ndarray:
        """BTJD of the Earth-distance minima within the sector (and just outside it)."""
        grid = np.arange(start - 1.0, end + 1.0, 0.01)
        try:
            earth = self._ephemeris.body_vectors(self._geometry.spacecraft_time(grid, self._ephemeris)).earth
        except TessBackmlError:
            grid = grid[(grid >= start) & (grid <= end)]
            earth = self._ephemeris.body_vectors(self._geometry.spacecraft_time(grid, self._ephemeris)).earth
        distance = np.linalg.norm(earth, axis=1)
        minima = np.flatnonzero((distance[1:-1] < distance[:-2]) & (distance[1:-1] <= distance[2:])) + 1
        return grid[minima]

    def _bad_frames(self):
        """Quality flags and star-field offsets (rows, cols) of every frame."""
        quality = np.zeros(self.nframes, np.int32)
        offsets = np.zeros((self.nframes, 2), int)
        rng = np.random.default_rng([self.seed, self.sector, self.camera, self.ccd, 7])
        dumps = np.arange(self.time[0] + DUMP_INTERVAL_DAYS / 2, self.time[-1], DUMP_INTERVAL_DAYS)
        for dump in dumps:
            i = int(np.argmin(np.abs(self.time - dump)))
            quality[i] |= QUALITY_FLAGS["Desat"]
            offsets[i] = (1, 0)
        coarse = rng.choice(self.nframes, size=min(3, self.nframes), replace=False)
        for i in coarse:
            quality[i] |= QUALITY_FLAGS["CoarsePoint"]
            offsets[i] = rng.integers(2, 6, size=2) * rng.choice([-1, 1], size=2)
        stray = self.amplitude["earth"] + self.amplitude["moon"] > 50
        quality[stray] |= QUALITY_FLAGS["Straylight2"]
        return quality, offsets

    def _make_primary_header(self) -> fits.Header:
        header = fits.Header()
        header["ORIGIN"] = ("tess-backml", "simulated sector")
        header["TELESCOP"] = "TESS"
        header["INSTRUME"] = "TESS Photometer"
        header["SIMDATA"] = (True, "file is based on simulated data")
        header["SECTOR"] = (self.sector, "observing sector")
        header["CAMERA"] = (self.camera, "camera number")
        header["CCD"] = (self.ccd, "CCD chip number")
        header["SIMSEED"] = (self.seed, "simulation seed")
        header["TSTART"] = (float(self.time[0] - self.cadence_s / 172800), "observation start, BTJD")
        header["TSTOP"] = (float(self.time[-1] + self.cadence_s / 172800), "observation stop, BTJD")
        return header

    @functools.cached_property
    def static_scene(self) -> np.ndarray:
        """The scene without scattered light: stars and sky times the response (science region)."""
        rng = np.random.default_rng([self.seed, self.sector, self.camera, self.ccd, 1])
        size = SCIENCE_SIZE
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / (size / 2) - 1
        c = rng.uniform(-1, 1, 4)
        scene = (35 + 6 * c[0] * x + 6 * c[1] * y + 4 * c[2] * x * y + 3 * c[3] * x * x).astype(np.float32)

        low, high = 10 ** (0.3 * 4.0), 10 ** (0.3 * 16.0)
        magnitude = np.log10(low + rng.uniform(0, 1, self.n_stars) * (high - low)) / 0.3
        flux = 15000.0 * 10 ** (-0.4 * (magnitude - 10))
        rows = rng.uniform(-2, size + 2, self.n_stars)
        cols = rng.uniform(-2, size + 2, self.n_stars)
        sigma = rng.uniform(0.6, 0.85, self.n_stars)
        half = 4
        offsets = np.arange(-half, half + 1)
        centre_r, centre_c = np.round(rows).astype(int), np.round(cols).astype(int)
        profile_r = np.exp(-0.5 * ((centre_r[:, None] + offsets - rows[:, None]) / sigma[:, None]) ** 2)
        profile_c = np.exp(-0.5 * ((centre_c[:, None] + offsets - cols[:, None]) / sigma[:, None]) ** 2)
        profile_r /= profile_r.sum(axis=1, keepdims=True)
        profile_c /= profile_c.sum(axis=1, keepdims=True)
        stamps = flux[:, None, None] * profile_r[:, :, None] * profile_c[:, None, :]
        pixel_r = (centre_r[:, None, None] + offsets[None, :, None]) + 0 * offsets[None, None, :]
        pixel_c = (centre_c[:, None, None] + offsets[None, None, :]) + 0 * offsets[None, :, None]
        inside = (pixel_r >= 0) & (pixel_r < size) & (pixel_c >= 0) & (pixel_c < size)
        stars = np.zeros(size * size, np.float64)
        np.add.at(stars, (pixel_r * size + pixel_c)[inside], stamps[inside])
        stars = stars.reshape(size, size)
        self._bleed(stars)
        scene += stars.astype(np.float32)
        scene *= self.response
        return scene

    @staticmethod
    def _bleed(stars: np.ndarray):
        """Spread charge above saturation up and down the column, in place."""
        size = stars.shape[0]
        for col in np.unique(np.nonzero(stars > SATURATION)[1]):
            column = stars[:, col]
            excess = np.clip(column - SATURATION, 0, None).sum()
            saturated = np.flatnonzero(column > SATURATION)
            column[saturated] = SATURATION
            extra = int(np.ceil(excess / SATURATION))
            low = max(saturated.min() - extra // 2 - 1, 0)
            high = min(saturated.max() + extra - extra // 2 + 1, size - 1)
            column[low : high + 1] = SATURATION

    @functools.cached_property
    def response(self) -> np.ndarray:
        """Relative response of each science column (straps respond more): shape (2048,)."""
        response = np.ones(SCIENCE_SIZE, np.float32)
        response[np.asarray(STRAP_COLUMNS) - 1] = STRAP_RESPONSE
        return response

    # ------------------------------------------------------------------ truth
    def body_angle_image(self, index: int, body: str) -> np.ndarray:
        """Angle (deg) between each science pixel's line of sight and ``body`` at frame ``index``."""
        from ..geometry import angle_and_azimuth

        vec = self._body_vectors[body][index][None]
        angle, _ = angle_and_azimuth(vec, self._node_los, self._geometry.reference)
        nodes = angle.reshape(self._node_shape).astype(np.float32)
        return self._weights @ nodes @ self._weights.T

    def true_scattered_light(self, index) -> np.ndarray:
        """The scattered light of frame ``index`` (science region, e-/s, float32)."""
        from ..geometry import angle_and_azimuth

        (index,) = self.check_frames(index)
        smooth = np.zeros(self._node_shape, np.float64)
        rings = []
        for body in BODIES:
            amplitude = float(self.amplitude[body][index])
            if amplitude < 1e-3:
                continue  # below the sunshade: nothing reaches the CCD
            angle, _ = angle_and_azimuth(self._body_vectors[body][index][None], self._node_los, self._geometry.reference)
            theta = angle.reshape(self._node_shape)
            exponent = np.clip((self.camera_angle[body][index] - theta) / SL_SCALE_DEG, -30, 30)
            smooth += amplitude * np.exp(exponent)
            low, high = SL_MODEL[body]["ring"]
            # Interpolated angles stay within the node range, so this test is exact.
            if theta.min() < high + RING_EDGE_DEG and theta.max() > low - RING_EDGE_DEG:
                rings.append((amplitude, theta, low, high))
        if not rings and not smooth.any():
            return np.zeros((SCIENCE_SIZE, SCIENCE_SIZE), np.float32)
        light = self._weights @ smooth.astype(np.float32) @ self._weights.T
        for amplitude, theta_nodes, low, high in rings:
            theta = self._weights @ theta_nodes.astype(np.float32) @ self._weights.T
            rise = np.clip((theta - low) / RING_EDGE_DEG + 0.5, 0, 1)
            fall = np.clip((high - theta) / RING_EDGE_DEG + 0.5, 0, 1, out=theta)
            rise *= fall
            rise *= amplitude * RING_AMPLITUDE
            light += rise
        light *= self.response
        return light

    # ------------------------------------------------------------------ frames
    def _frame(self, index: int, flux=None, error=None):
        """Generate frame ``index`` into ``flux`` and ``error`` (new arrays if not given)."""
        scene = self.static_scene
        shift = self._offsets[index]
        if shift.any():
            scene = np.roll(scene, tuple(shift), axis=(0, 1))
        flux = np.empty_like(scene) if flux is None else flux
        error = np.empty_like(scene) if error is None else error
        np.add(scene, self.true_scattered_light(index), out=flux)
        np.maximum(flux, 0, out=error)
        error *= np.float32(1 / self._exposure_s)
        error += np.float32(self._read_variance)
        np.sqrt(error, out=error)
        rng = np.random.default_rng([self.seed, self.sector, self.camera, self.ccd, int(self.cadenceno[index])])
        noise = rng.standard_normal(flux.shape, dtype=np.float32)
        noise *= error
        flux += noise
        return flux, error

    def _read_frames(self, indices):
        flux = np.empty((len(indices), SCIENCE_SIZE, SCIENCE_SIZE), np.float32)
        error = np.empty_like(flux)
        for k, index in enumerate(indices):
            self._frame(int(index), flux[k], error[k])
        return flux, error

    def _read_rows(self, start, stop, frames):
        flux = np.empty((len(frames), stop - start, SCIENCE_SIZE), np.float32)
        error = np.empty_like(flux)
        for k, index in enumerate(frames):
            frame, frame_error = self._frame(int(index))
            flux[k], error[k] = frame[start:stop], frame_error[start:stop]
        return flux, error

    def _read_pixels(self, rows, columns):
        flux = np.empty((self.nframes, len(rows)), np.float32)
        error = np.empty_like(flux)
        for index in range(self.nframes):
            frame, frame_error = self._frame(index)
            flux[index], error[index] = frame[rows, columns], frame_error[rows, columns]
        return flux, error

    # ------------------------------------------------------------------ files
    def ffi_file_name(self, index: int) -> str:
        """SPOC file name of frame ``index``: ``tess{YYYYDDDHHMMSS}-s{sector}-{camera}-{ccd}-{scid}-s_ffic.fits``."""
        start = Time(self.time[index] - self.cadence_s / 172800 + BTJD_OFFSET, format="jd", scale="tdb").utc
        stamp = start.strftime("%Y%j%H%M%S")
        return f"tess{stamp}-s{self.sector:04d}-{self.camera}-{self.ccd}-{120 + self.sector:04d}-s_ffic.fits"

    def ffi_hdulist(self, index: int) -> fits.HDUList:
        """Frame ``index`` as a SPOC calibrated FFI (full 2078 x 2136 image, collateral pixels zero)."""
        (index,) = self.check_frames(index)
        flux, error = self._frame(int(index))
        half = self.cadence_s / 172800
        tstart, tstop = float(self.time[index] - half), float(self.time[index] + half)
        iso = Time(np.array([tstart, tstop]) + BTJD_OFFSET, format="jd", scale="tdb").utc.isot

        primary = fits.PrimaryHDU(header=self.primary_header.copy())
        primary.header["TSTART"] = (tstart, "observation start time in BTJD")
        primary.header["TSTOP"] = (tstop, "observation stop time in BTJD")
        primary.header["DATE-OBS"] = (iso[0] + "Z", "TSTART as UTC calendar date")
        primary.header["DATE-END"] = (iso[1] + "Z", "TSTOP as UTC calendar date")
        primary.header["FFIINDEX"] = (int(self.cadenceno[index]), "number of FFI cadence interval")

        image_header = fits.Header()
        image_header["INHERIT"] = True
        image_header["EXTNAME"] = f"CAMERA.CCD {self.camera}.{self.ccd} cal"
        image_header["SIMDATA"] = (True, "file is based on simulated data")
        image_header["CAMERA"] = (self.camera, "Camera number")
        image_header["CCD"] = (self.ccd, "CCD chip number")
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
        image_header["EXPOSURE"] = (self._exposure_s / 86400, "[d] time on source")
        image_header["TIMEDEL"] = (self.cadence_s / 86400, "[d] time resolution of data")
        image_header["BARYCORR"] = (float(self.barycorr[index]), "[d] barycentric time correction")
        image_header["DEADC"] = (0.792, "deadtime correction")
        image_header["TIMEPIXR"] = (0.5, "bin time beginning=0 middle=0.5 end=1")
        image_header["INT_TIME"] = (1.98, "[s] photon accumulation time per frame")
        image_header["READTIME"] = (0.02, "[s] readout time per frame")
        image_header["FRAMETIM"] = (2.0, "[s] frame time (INT_TIME + READTIME)")
        image_header["NUM_FRM"] = (int(self.cadence_s / 2), "number of frames per time stamp")
        image_header["BUNIT"] = ("electrons/s", "physical units of image data")
        image_header["DQUALITY"] = (int(self.quality[index]), "data quality flags")
        image_header["FFIINDEX"] = (int(self.cadenceno[index]), "number of FFI cadence interval")
        image_header["IMAGTYPE"] = ("cal", "FFI image type: raw, cal, uncert")
        image_header.extend(fits.Header.fromstring(_sector_wcs_header(self.sector, self.camera, self.ccd)))
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
        uncert_header = image_header.copy()
        uncert_header["EXTNAME"] = f"CAMERA.CCD {self.camera}.{self.ccd} uncert"
        uncert_header["IMAGTYPE"] = "uncert"

        full = np.zeros(FFI_SHAPE, np.float32)
        full[SCIENCE_ROWS, SCIENCE_COLUMNS] = flux
        full_error = np.zeros(FFI_SHAPE, np.float32)
        full_error[SCIENCE_ROWS, SCIENCE_COLUMNS] = error
        return fits.HDUList(
            [primary, fits.ImageHDU(full, header=image_header), fits.ImageHDU(full_error, header=uncert_header)]
        )

    def write_ffis(self, directory, frames=None, progress: bool = True) -> list[str]:
        """Write frames as SPOC calibrated FFI files that ``astrocut.CubeFactory`` accepts.

        Parameters
        ----------
        directory : str or path-like
            Created if missing.
        frames : array_like of int, optional
            Frame indices; default all.
        progress : bool
            Show a progress bar.

        Returns
        -------
        list of str
            The paths written, in frame order.
        """
        import os

        from tqdm.auto import tqdm

        from .._files import atomic_output

        indices = np.arange(self.nframes) if frames is None else self.check_frames(frames)
        os.makedirs(directory, exist_ok=True)
        paths = []
        for index in tqdm(indices, desc="writing FFIs", unit="frame", disable=not progress):
            path = os.path.join(str(directory), self.ffi_file_name(int(index)))
            with atomic_output(path, None) as temporary:
                self.ffi_hdulist(int(index)).writeto(temporary, overwrite=True)
            paths.append(path)
        return paths


def _sector_wcs_header(sector: int, camera: int, ccd: int) -> str:
    """The FITS header text of a CCD's WCS (with SIP), as ``tesswcs`` makes it."""
    from ..geometry import sector_wcs

    return sector_wcs(sector)[camera, ccd].to_header(relax=True).tostring()
