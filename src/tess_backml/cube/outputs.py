"""Outputs of a built cube: the SL cube file, the training set, the simulator's truth."""

from __future__ import annotations

import numpy as np

from ..constants import BTJD_OFFSET
from ..downsample import pool_frames
from ..errors import TessBackmlError
from ..io import SLCube
from .units import fill_empty_bins


def require_cube(cube):
    if not hasattr(cube, "scatter_cube"):
        raise TessBackmlError("compute the cube first (get_scatter_light_cube)")


def default_name(sector: int, camera: int, ccd: int, img_bin: int, kind: str = "fits") -> str:
    """The original package's file names: the SL cube (FITS) or the training set (NPZ)."""
    if kind == "fits":
        return f"ffi_sl_cube_sector{sector:03d}_{camera}-{ccd}.fits"
    return f"ffi_cubes_bin{img_bin}_sector{sector:03d}_{camera}-{ccd}.npz"


def vector_maps(cube, rows, cols, ang_size: bool = True, ephemeris=None) -> dict:
    """``earth_maps``, ``moon_maps`` (per bin: ``alt``, ``az``, ``dist``) and
    ``earth_vectors``, ``moon_vectors`` (per time, at the boresight) of a cube."""
    from ..geometry import camera_vectors, pixel_maps

    maps = pixel_maps(cube.sector, cube.camera, cube.ccd, rows, cols, cube.time, ephemeris=ephemeris)
    table = camera_vectors(cube.sector, cube.camera, times=cube.time, ephemeris=ephemeris)
    result = {}
    for body in ("earth", "moon"):
        name = body.capitalize()
        distance, size = np.asarray(table[f"{name}_Distance"]), np.asarray(table[f"{name}_Angular_Size"])
        angle = maps[f"{body}_angle"]
        result[f"{body}_maps"] = {
            "alt": angle,
            "az": maps[f"{body}_azimuth"],
            "dist": maps[f"{body}_angular_size"] if ang_size else np.broadcast_to(distance[:, None, None], angle.shape),
        }
        result[f"{body}_vectors"] = {
            "alt": np.asarray(table[f"{name}_Camera_Angle"]),
            "az": np.asarray(table[f"{name}_Camera_Azimuth"]),
            "dist": size if ang_size else distance,
        }
    return result


def to_sl_cube(cube) -> SLCube:
    """A built :class:`~tess_backml.cube.BackgroundCube` as the SL cube file holds it."""
    require_cube(cube)
    return SLCube(
        sector=cube.sector,
        camera=cube.camera,
        ccd=cube.ccd,
        flux=cube.scatter_cube,
        flux_err=cube.scatter_err_cube,
        time=cube.time,
        pixel_counts=cube.pixel_counts.astype(np.int64),
        pixel_bin=cube.img_bin,
        binned=cube.time_binned,
        time_bin_hours=cube.time_bin_hours,
        pixel_bin_method="median" if cube.downsize == "binning" else "sparse",
        frames_per_bin=cube.frames_per_bin,
        cadenceno=cube.cadenceno,
        time_bin_method="adaptive mean" if cube.time_bin_adaptive else "mean",
        bin_start=cube.bin_start,
        bin_stop=cube.bin_stop,
    )


def training_arrays(cube, save_maps: bool = False) -> dict:
    """The arrays of the training-set NPZ (format ``tess-backml-npz-1``)."""
    require_cube(cube)
    rows, cols = cube.bin_centres()
    arrays = {
        "scatter_cube": cube.scatter_cube,
        "scatter_err_cube": cube.scatter_err_cube,
        "time": cube.time + BTJD_OFFSET,
        "time_btjd": cube.time,
        "cadenceno": cube.cadenceno,
        "frames_per_bin": cube.frames_per_bin,
        "bin_start": cube.bin_start,
        "bin_stop": cube.bin_stop,
        "pixel_counts": cube.pixel_counts,
        "bin_row": rows[:, 0],
        "bin_col": cols[0],
        "sector": np.int64(cube.sector),
        "camera": np.int64(cube.camera),
        "ccd": np.int64(cube.ccd),
        "img_bin": np.int64(cube.img_bin),
        "time_bin_hours": np.float64(cube.time_bin_hours),
        "format_version": np.str_("tess-backml-npz-1"),
    }
    if save_maps:
        if not hasattr(cube, "earth_maps"):
            cube.get_vector_maps()
        for body in ("earth", "moon"):
            for key in ("alt", "az", "dist"):
                arrays[f"{body}_{key}"] = getattr(cube, f"{body}_vectors")[key]
                arrays[f"{body}_{key}_map"] = np.ascontiguousarray(getattr(cube, f"{body}_maps")[key], dtype=np.float32)
        arrays["maps_dist_is_angular_size"] = np.bool_(cube.maps_ang_size)
    return arrays


def truth_cube(cube) -> np.ndarray:
    """The simulator's true SL processed like the data: relative to the dark-frame
    level, masked, pooled and time-binned the same way. Only for simulated sources."""
    from ..sources import SimulatedSector

    if not isinstance(cube.source, SimulatedSector):
        raise TessBackmlError("the truth is known only for a SimulatedSector source")
    dark_level = np.median([cube.source.true_scattered_light(i) for i in cube.dark_frames], axis=0)
    mask = cube.star_mask | cube.strap_mask[None, :]
    pooled = []
    for index in cube.frame_indices:
        data = cube.source.true_scattered_light(index) - dark_level
        data[mask] = np.nan
        pooled.append(pool_frames(data, cube.img_bin, rolling=cube.rolling)[0])
    truth = fill_empty_bins(np.array(pooled)) if cube.empty_bins.any() else np.array(pooled)
    if cube.time_binned:
        starts = np.r_[0, np.cumsum(cube.frames_per_bin)[:-1]]
        truth = np.add.reduceat(truth.astype(np.float64), starts, axis=0) / cube.frames_per_bin[:, None, None]
    return truth.astype(np.float32)
