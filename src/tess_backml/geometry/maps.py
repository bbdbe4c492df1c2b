"""Angles between bodies and lines of sight, and per-pixel Earth/Moon maps."""

from __future__ import annotations

import numpy as np

from ..constants import BODIES, BODY_RADII_KM
from ..errors import TessBackmlError
from .ephemeris import load_ephemeris
from .pointing import CameraGeometry, _normalize, to_btjd, validate_camera_ccd

#: Keys of the per-pixel maps returned by :func:`pixel_maps`.
MAP_KEYS = tuple(
    f"{body}_{quantity}" for body in BODIES for quantity in ("angle", "azimuth", "angular_size")
)


# --------------------------------------------------------------------------- angles
def angle_and_azimuth(body, line_of_sight, reference, dtype=np.float64):
    """Angle of bodies from lines of sight, and their azimuth around them.

    Parameters
    ----------
    body : array_like (nt, 3)
        Vectors from the spacecraft to the body (any length).
    line_of_sight : array_like (npix, 3)
        Unit vectors of the lines of sight (a boresight or pixels).
    reference : array_like (3,)
        Azimuth zero direction. For each line of sight it is projected onto the
        plane perpendicular to that line of sight, so the azimuth is continuous
        across pixels and equals the camera value at the boresight.
    dtype : numpy dtype
        Output type. With float32 the azimuth is computed in float32 (about
        1e-5 deg); the angle is always computed in float64, which keeps it
        exact to ~1e-6 deg even next to the line of sight.

    Returns
    -------
    angle, azimuth : ndarray (nt, npix)
        Degrees. ``angle`` in [0, 180]; ``azimuth`` in [0, 360), increasing from
        the reference toward ``line_of_sight x reference``.
    """
    body = np.atleast_2d(np.asarray(body, dtype=float))
    los = np.atleast_2d(np.asarray(line_of_sight, dtype=float))
    reference = np.asarray(reference, dtype=float)
    axis_x = _normalize(reference - (los @ reference)[:, None] * los)
    axis_y = np.cross(los, axis_x)
    unit = _normalize(body)
    # einsum beats BLAS for an inner dimension of 3.
    along = np.einsum("tk,pk->tp", unit, los)
    np.clip(along, -1.0, 1.0, out=along)
    angle = np.degrees(np.arccos(along, out=along), out=along).astype(dtype, copy=False)
    work = np.result_type(dtype, np.float32)
    # atan2(-y, -x) + 180 deg lands in [0, 360] with no wrapping pass over the data.
    minus_unit = (-unit).astype(work)
    x = np.einsum("tk,pk->tp", minus_unit, axis_x.astype(work))
    y = np.einsum("tk,pk->tp", minus_unit, axis_y.astype(work))
    azimuth = np.arctan2(y, x, out=y)
    azimuth *= work.type(180.0 / np.pi)
    azimuth += work.type(180.0)
    np.subtract(azimuth, 360.0, out=azimuth, where=azimuth >= 360.0)
    return angle, azimuth.astype(dtype, copy=False)


def angular_size(distance_km, radius_km) -> np.ndarray:
    """Angular diameter in degrees of a sphere of ``radius_km`` at ``distance_km``."""
    ratio = np.clip(np.asarray(radius_km, dtype=float) / np.asarray(distance_km, dtype=float), 0, 1)
    return np.degrees(2 * np.arcsin(ratio))




def iter_pixel_maps(sector, camera, ccd, row, column, times, ephemeris=None, chunk_size=64):
    """Yield per-pixel maps in chunks of times: ``(time_slice, maps)``.

    Memory stays bounded by ``chunk_size x npix`` whatever the number of times.
    See :func:`pixel_maps` for the arguments and the map keys.
    """
    geometry = CameraGeometry(sector, camera)
    _, ccd = validate_camera_ccd(camera, ccd)
    if ccd is None:
        raise TessBackmlError("a CCD (1-4) is needed for pixel maps")
    ephemeris = load_ephemeris(ephemeris)
    btjd = to_btjd(times)
    los = geometry.pixel_directions(ccd, row, column)
    grid_shape = los.shape[:-1]
    los = los.reshape(-1, 3)
    jd_spacecraft = geometry.spacecraft_time(btjd, ephemeris)
    vectors = ephemeris.body_vectors(jd_spacecraft)
    chunk_size = max(int(chunk_size), 1)
    for start in range(0, len(btjd), chunk_size):
        part = slice(start, min(start + chunk_size, len(btjd)))
        maps = {}
        for body in BODIES:
            vec = vectors.body(body)[part]
            angle, azimuth = angle_and_azimuth(vec, los, geometry.reference, dtype=np.float32)
            shape = (len(vec),) + grid_shape
            maps[f"{body}_angle"] = angle.reshape(shape)
            maps[f"{body}_azimuth"] = azimuth.reshape(shape)
            size = angular_size(np.linalg.norm(vec, axis=1), BODY_RADII_KM[body]).astype(np.float32)
            maps[f"{body}_angular_size"] = np.broadcast_to(
                size.reshape((-1,) + (1,) * len(grid_shape)), shape
            )
        yield part, maps


def pixel_maps(sector, camera, ccd, row, column, times, ephemeris=None, chunk_size=64) -> dict:
    """Earth and Moon angle, azimuth and angular size for every pixel and time.

    Parameters
    ----------
    sector, camera, ccd : int
        Where the pixels are.
    row, column : array_like
        1-based CCD coordinates of the pixels (any shape, broadcast together;
        fractional values such as bin centres are fine).
    times : array_like or astropy.time.Time
        FFI times, BTJD or JD (see :func:`to_btjd`).
    ephemeris : Ephemeris or str, optional
        As in :func:`camera_vectors`.
    chunk_size : int
        Times computed at once; bounds the working memory.

    Returns
    -------
    dict of ndarray
        Keys :data:`MAP_KEYS`, each float32 of shape ``(ntimes,) + grid shape``,
        in degrees. ``*_angle`` is the angle between the pixel's line of sight
        and the body; ``*_azimuth`` the body's azimuth around that line of sight
        (the camera convention, with the reference direction projected onto the
        pixel's plane); ``*_angular_size`` the body's angular diameter, the same
        for every pixel of a frame.
    """
    maps = None
    for part, chunk in iter_pixel_maps(sector, camera, ccd, row, column, times, ephemeris, chunk_size):
        if maps is None:
            ntimes = len(to_btjd(times))
            maps = {key: np.empty((ntimes,) + value.shape[1:], np.float32) for key, value in chunk.items()}
        for key, value in chunk.items():
            maps[key][part] = value
    return maps
