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

The scattered light follows the Earth and Moon above the sunshade: its model is in
:mod:`tess_backml.sources.sim_light`, the SPOC-format files in
:mod:`tess_backml.sources.sim_files`.

Frame ``i`` depends only on (sector, camera, CCD, seed, cadence, i): any frame
can be regenerated alone, and frames are made on request, never held.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from astropy.io import fits

from ..constants import (
    BODIES,
    BTJD_OFFSET,
    QUALITY_FLAGS,
    SCIENCE_SIZE,
    STRAP_COLUMNS,
    ffi_cadence_seconds,
)
from ..errors import TessBackmlError
from . import sim_files
from .base import FFISource
from .sim_light import LIGHT_MODEL_VERSION, ScatteredLightModel

log = logging.getLogger(__name__)

STRAP_RESPONSE = 1.08
SATURATION = 8.0e4  # e-/s in one pixel: stars brighter than T ~ 6.8 saturate
READ_NOISE_E = 10.0  # e- per 2-s readout
DUMP_INTERVAL_DAYS = 3.125


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
    #: The version of its light (see :mod:`tess_backml.sources.sim_light`).
    light_model_version = LIGHT_MODEL_VERSION

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
        self.light_model = ScatteredLightModel(self._geometry, self.ccd, {body: vectors.body(body) for body in BODIES})
        #: per body: the light's amplitude (e-/s) and the body's angle from the boresight (deg)
        self.amplitude, self.camera_angle = self.light_model.amplitude, self.light_model.camera_angle
        self.quality, self._offsets = self._bad_frames()
        self.primary_header = self._make_primary_header()

        self.exposure_s = self.cadence_s * 0.792 * 0.8  # dead time, cosmic-ray mitigation
        self._read_variance = (self.cadence_s / 2 * 0.8) * READ_NOISE_E**2 / self.exposure_s**2

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
        return self.light_model.to_pixels(self.light_model.node_angles(index, body))

    def true_scattered_light(self, index) -> np.ndarray:
        """The scattered light of frame ``index`` (science region, e-/s, float32), as the
        detector records it (strap response included)."""
        (index,) = self.check_frames(index)
        light = self.light_model.light(index)
        light *= self.response
        return light

    # ------------------------------------------------------------------ frames
    def frame(self, index: int, flux=None, error=None):
        """Generate frame ``index`` into ``flux`` and ``error`` (new arrays if not given)."""
        scene = self.static_scene
        shift = self._offsets[index]
        if shift.any():
            scene = np.roll(scene, tuple(shift), axis=(0, 1))
        flux = np.empty_like(scene) if flux is None else flux
        error = np.empty_like(scene) if error is None else error
        np.add(scene, self.true_scattered_light(index), out=flux)
        np.maximum(flux, 0, out=error)
        error *= np.float32(1 / self.exposure_s)
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
            self.frame(int(index), flux[k], error[k])
        return flux, error

    def _read_rows(self, start, stop, frames):
        flux = np.empty((len(frames), stop - start, SCIENCE_SIZE), np.float32)
        error = np.empty_like(flux)
        for k, index in enumerate(frames):
            frame, frame_error = self.frame(int(index))
            flux[k], error[k] = frame[start:stop], frame_error[start:stop]
        return flux, error

    def _read_pixels(self, rows, columns, frames):
        flux = np.empty((len(frames), len(rows)), np.float32)
        error = np.empty_like(flux)
        for k, index in enumerate(frames):
            frame, frame_error = self.frame(int(index))
            flux[k], error[k] = frame[rows, columns], frame_error[rows, columns]
        return flux, error

    # ------------------------------------------------------------------ files
    def ffi_file_name(self, index: int) -> str:
        """SPOC file name of frame ``index``: ``tess{YYYYDDDHHMMSS}-s{sector}-{camera}-{ccd}-{scid}-s_ffic.fits``."""
        return sim_files.ffi_file_name(self, index)

    def ffi_hdulist(self, index: int) -> fits.HDUList:
        """Frame ``index`` as a SPOC calibrated FFI (full 2078 x 2136 image, collateral pixels zero)."""
        return sim_files.ffi_hdulist(self, index)

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
        return sim_files.write_ffis(self, directory, frames, progress)
