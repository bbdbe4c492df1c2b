"""Features of the scattered light: what a model sees at one cube bin and time.

The feature set (version :data:`FEATURE_SET`), per body (Earth, then Moon):

``<body>_angle``
    Angle between the bin's line of sight and the body, in units of 90 deg.
``<body>_sin_azimuth``, ``<body>_cos_azimuth``
    Azimuth of the body around the line of sight (as sin/cos: no jump at 360 deg).
``<body>_size``
    The body's angular diameter, deg.
``<body>_camera_angle``
    Angle between the camera boresight and the body, in units of 90 deg.
``<body>_above_sunshade``
    A smooth 0-1 indicator that the body is above the sunshade:
    ``1 / (1 + exp((camera_angle - cut) / 1 deg))`` with the nominal cut-off of
    :data:`tess_backml.constants.SUNSHADE_CUTOFF_DEG`. Smooth, because a 0/1 flag
    would put steps into light curves; the model also sees the camera angle.
``<body>_lit_solid_angle``
    ``(size / typical size)^2 x above_sunshade``: the light entering the camera
    scales with the body's solid angle once it clears the shade.

then the bin's place on its CCD: ``row``, ``column`` (0-1 across the science
region).

No detector identity: set ``geometry-1`` also had one-hot camera and CCD
columns, and with them a network trained on three CCDs of camera 1 predicted
the fourth worse than no correction (explained variance -2.1 to 0.65 over the
four choices); without them it explains 0.905-0.989 (simulated Sector 4, 32-px
bins), and 93% of a held-out orbit of a CCD it was trained on (96% with them).
The angles and azimuths already say where the light comes from.
"""

from __future__ import annotations

import numpy as np

from ..constants import BODIES, FIRST_SCIENCE_COLUMN, FIRST_SCIENCE_ROW, SCIENCE_SIZE, SUNSHADE_CUTOFF_DEG
from ..errors import FileFormatError

FEATURE_SET = "geometry-2"
TYPICAL_SIZE_DEG = {"earth": 20.0, "moon": 0.5}
_PER_BODY = ("angle", "sin_azimuth", "cos_azimuth", "size", "camera_angle", "above_sunshade", "lit_solid_angle")
FEATURE_NAMES = tuple(f"{body}_{name}" for body in BODIES for name in _PER_BODY) + ("row", "column")


def geometry_features(maps, vectors, rows, cols) -> np.ndarray:
    """Feature matrix (ntimes * nrows * ncols, nfeatures) float32, time-major.

    Parameters
    ----------
    maps : dict
        ``maps[body][key]`` with ``key`` in ``angle``, ``azimuth``, ``size``, each
        (ntimes, nrows, ncols) in degrees.
    vectors : dict
        ``vectors[body]["camera_angle"]``: (ntimes,) degrees.
    rows, cols : ndarray
        1-based CCD rows (nrows,) and columns (ncols,) of the pixels or bin centres.
    """
    ntimes, nrows, ncols = maps["earth"]["angle"].shape
    size = ntimes * nrows * ncols
    out = np.empty((size, len(FEATURE_NAMES)), np.float32)
    column = 0
    for body in BODIES:
        angle = np.asarray(maps[body]["angle"], float).reshape(-1)
        azimuth = np.radians(np.asarray(maps[body]["azimuth"], float).reshape(-1))
        body_size = np.asarray(maps[body]["size"], float).reshape(-1)
        camera_angle = np.asarray(vectors[body]["camera_angle"], float)
        above = 1.0 / (1.0 + np.exp(np.clip((camera_angle - SUNSHADE_CUTOFF_DEG[body]) / 1.0, -50, 50)))
        per_time = np.repeat(np.arange(ntimes), nrows * ncols)
        values = (
            angle / 90.0,
            np.sin(azimuth),
            np.cos(azimuth),
            body_size,
            (camera_angle / 90.0)[per_time],
            above[per_time],
            (body_size / TYPICAL_SIZE_DEG[body]) ** 2 * above[per_time],
        )
        for value in values:
            out[:, column] = value
            column += 1
    row_grid, col_grid = np.meshgrid(
        (np.asarray(rows, float) - FIRST_SCIENCE_ROW) / SCIENCE_SIZE,
        (np.asarray(cols, float) - FIRST_SCIENCE_COLUMN) / SCIENCE_SIZE,
        indexing="ij",
    )
    out[:, column] = np.tile(row_grid.reshape(-1), ntimes)
    out[:, column + 1] = np.tile(col_grid.reshape(-1), ntimes)
    return out


TRAINING_KEYS = (
    "scatter_cube",
    "time_btjd",
    "bin_row",
    "bin_col",
    "sector",
    "camera",
    "ccd",
    "earth_alt",
    "moon_alt",
    "earth_alt_map",
    "earth_az_map",
    "earth_dist_map",
    "moon_alt_map",
    "moon_az_map",
    "moon_dist_map",
    "maps_dist_is_angular_size",
)


class TrainingSet:
    """Samples (one per cube bin and time) from one or more training-set NPZ files.

    Attributes
    ----------
    features : ndarray (nsamples, nfeatures) float32
    target : ndarray (nsamples,) float32
        SL cube values, e-/s.
    time : ndarray (nsamples,)
        BTJD.
    orbit : ndarray (nsamples,) int8
        1 or 2: before or after the sector's perigee gap (the largest gap in its times).
    group : ndarray (nsamples,) int32
        Index into :attr:`sources` (one per file: sector, camera, CCD).
    shapes : list of (ntimes, nrows, ncols)
        Per file, to put predictions back into cubes.
    sources : list of dict
        Per file: path, sector, camera, ccd.
    """

    def __init__(self, paths):
        if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__"):
            paths = [paths]
        paths = [str(p) for p in paths]
        if not paths:
            raise FileFormatError("no training-set files given")
        parts = [self._read(path) for path in paths]
        self.features = np.concatenate([p["features"] for p in parts])
        self.target = np.concatenate([p["target"] for p in parts])
        self.time = np.concatenate([p["time"] for p in parts])
        self.orbit = np.concatenate([p["orbit"] for p in parts])
        self.group = np.concatenate([np.full(p["target"].size, i, np.int32) for i, p in enumerate(parts)])
        self.shapes = [p["shape"] for p in parts]
        self.sources = [p["source"] for p in parts]
        finite = np.isfinite(self.target) & np.all(np.isfinite(self.features), axis=1)
        self.valid = finite

    def __len__(self):
        return self.target.size

    @staticmethod
    def _read(path):
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [key for key in TRAINING_KEYS if key not in data.files]
                if missing:
                    raise FileFormatError(
                        f"{path} is not a training set with maps (missing {', '.join(missing[:4])}): "
                        "make one with 'tess-backml dataset'"
                    )
                arrays = {key: data[key] for key in TRAINING_KEYS}
        except FileNotFoundError:
            raise FileFormatError(f"no such file: {path}") from None
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise FileFormatError(f"{path} is not a readable training-set NPZ ({exc})") from None
        if not bool(arrays["maps_dist_is_angular_size"]):
            raise FileFormatError(f"{path}: its maps hold distances, not angular sizes; rebuild with the default maps")
        cube = np.asarray(arrays["scatter_cube"], np.float32)
        if cube.ndim != 3 or any(arrays[f"{b}_{k}_map"].shape != cube.shape for b in BODIES for k in ("alt", "az", "dist")):
            raise FileFormatError(f"{path}: maps and scatter_cube differ in shape")
        ntimes = cube.shape[0]
        time = np.asarray(arrays["time_btjd"], float)
        if time.shape != (ntimes,):
            raise FileFormatError(f"{path}: time_btjd does not match the cube")
        maps = {b: {"angle": arrays[f"{b}_alt_map"], "azimuth": arrays[f"{b}_az_map"], "size": arrays[f"{b}_dist_map"]} for b in BODIES}
        vectors = {b: {"camera_angle": np.asarray(arrays[f"{b}_alt"], float)} for b in BODIES}
        camera, ccd = int(arrays["camera"]), int(arrays["ccd"])
        features = geometry_features(maps, vectors, arrays["bin_row"], arrays["bin_col"])
        per_time_orbit = orbit_of(time)
        return {
            "features": features,
            "target": cube.reshape(-1),
            "time": np.repeat(time, cube.shape[1] * cube.shape[2]),
            "orbit": np.repeat(per_time_orbit, cube.shape[1] * cube.shape[2]),
            "shape": cube.shape,
            "source": {"path": path, "sector": int(arrays["sector"]), "camera": camera, "ccd": ccd},
        }


def orbit_of(btjd) -> np.ndarray:
    """1 before the largest gap in the times (the perigee downlink), 2 after it."""
    btjd = np.asarray(btjd, float)
    orbit = np.ones(btjd.size, np.int8)
    if btjd.size > 1:
        gap = int(np.argmax(np.diff(btjd)))
        orbit[gap + 1 :] = 2
    return orbit
