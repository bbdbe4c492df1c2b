"""BackgroundCube: the scattered-light cube of one sector/camera/CCD.

The steps (as in the original tess-backml, made exact and streaming):

1. drop frames with bad quality bits (default CoarsePoint);
2. find the dark frames: the median of a sparse pixel sample gives a background
   light curve; the 10 darkest good frames below its 3rd percentile are kept
   (cached per source in a JSON file in the user cache directory);
3. static scene = median of the dark frames; star mask from the static scene and
   its gradient, thresholded with global statistics of the sparse sample;
   strap mask from the strap table;
4. every frame: subtract the static scene, mask, downsize (NaN-median pooling or
   sparse pixels), with errors and pixel counts; fill empty bins with a smooth
   2-D polynomial, vectorised over frames. A bin's error is the standard error
   of a median, ``sqrt(pi/2) * rms(pixel error) / sqrt(N)`` over its N valid
   pixels, including the noise of the subtracted static scene (a median of 10
   frames), times the measured noise reduction of the rolling pooling
   (:func:`tess_backml.downsample.rolling_noise_factor`). It covers photon and
   read noise, not systematic errors (star residuals, an imperfect static scene);
5. :meth:`BackgroundCube.bin_time_axis`: per-orbit time bins;
6. :meth:`BackgroundCube.get_vector_maps`: real per-pixel Earth/Moon maps.

Sources are read in their cheap order: frame by frame (FFI files, the
simulator) or in row blocks with a halo (MAST cubes). Both orders give the same
cube: the star mask uses global thresholds and the halo covers the reach of the
mask and of the pooling windows.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from .constants import BTJD_OFFSET, SCIENCE_SIZE, bin_centres
from .downsample import bin_errors, check_img_bin, pool_frames, rolling_noise_factor
from .errors import TessBackmlError
from .io import SLCube, write_npz, write_sl_cube
from .masks import StarThresholds, bad_frames, strap_columns, star_mask

log = logging.getLogger(__name__)

N_DARK_FRAMES = 10
SAMPLE_STEP = 32  # sparse sample every 32 pixels (4,096 points)


def _progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def compute_unit_task(cube, unit) -> dict:
    """A work unit of a prepared :class:`BackgroundCube`, as a Dask task."""
    return cube.compute_unit(unit)


class BackgroundCube:
    """Build the scattered-light cube of a sector/camera/CCD from its FFIs.

    Parameters
    ----------
    sector, camera, ccd : int
    img_bin : int
        Pixel bin size, a power of two dividing 2048 (16 gives 128 x 128 bins).
    downsize : {"binning", "sparse"}
        NaN-median binning of all background pixels, or one background pixel per bin.
    source : str or FFISource
        ``"mast"`` (the public S3 cube), ``"sim"`` (the simulated sector), a local
        cube file or FFI directory, or a :mod:`tess_backml.sources` object.
    quality_bits : int or list, optional
        Frames with these quality flags are dropped (default CoarsePoint).
    block_rows : int, optional
        Rows per block when a source is read in row blocks (MAST cubes). Memory
        is about ``(block_rows + 2 * halo) * nframes * 28`` kB (measured; the halo
        is 32 rows at img_bin 16), plus the source's read buffer.
    progress : bool
        Show progress bars.
    **source_options
        Passed to the source when ``source`` is a string.

    Attributes
    ----------
    scatter_cube, scatter_err_cube : ndarray (ntime, nrow, ncol)
        The SL cube and its errors (e-/s), per frame or per time bin.
    time : ndarray
        BTJD of each frame or time bin.
    cadenceno : ndarray
    pixel_counts : ndarray (nrow, ncol)
    dark_frames : ndarray
        Indices (into the source's frames) of the dark frames.
    static, star_mask, strap_mask : ndarray
        Static scene (frame-read sources) and masks.
    earth_maps, moon_maps, earth_vectors, moon_vectors : dict
        From :meth:`get_vector_maps`.
    """

    def __init__(
        self,
        sector: int = 1,
        camera: int = 1,
        ccd: int = 1,
        img_bin: int = 16,
        downsize: str = "binning",
        source="mast",
        quality_bits=None,
        block_rows: int | None = None,
        progress: bool = True,
        **source_options,
    ):
        from .geometry import validate_camera_ccd, validate_sector
        from .sources import resolve_source

        self.sector = validate_sector(sector)
        self.camera, self.ccd = validate_camera_ccd(camera, ccd)
        self.img_bin = check_img_bin(img_bin)
        if downsize not in ("binning", "sparse"):
            raise TessBackmlError(f"downsize must be 'binning' or 'sparse', got {downsize!r}")
        self.downsize = downsize
        self.source = resolve_source(source, self.sector, self.camera, self.ccd, **source_options)
        self.quality_bits = quality_bits
        self.quality = bad_frames(self.source.quality, quality_bits)
        self.block_rows = max(int(block_rows or 2 * self.img_bin), self.img_bin)
        self.block_rows -= self.block_rows % self.img_bin
        self.progress = progress
        self.nt = self.source.nframes
        self.time_binned = False
        self.time_bin_hours = 0.0

    def __repr__(self):
        return (
            f"TESS FFI Background object (Sector, Camera, CCD, N times): "
            f"{self.sector}, {self.camera}, {self.ccd}, {self.nt}"
        )

    # ------------------------------------------------------------------ selection
    def _select_frames(self, frames) -> np.ndarray:
        """Indices of the frames to process: the requested range minus bad-quality frames."""
        if frames is None:
            indices = np.arange(self.nt)
        elif isinstance(frames, slice):
            from .sources.base import frame_range_indices

            indices = frame_range_indices(frames, self.nt)
        elif isinstance(frames, tuple):
            # the original's (stop,), (start, stop) or (start, stop, step)
            return self._select_frames(slice(*frames) if len(frames) > 1 else slice(0, frames[0]))
        else:
            indices = self.source.check_frames(frames)
        good = indices[~self.quality[indices]]
        if good.size == 0:
            raise TessBackmlError(
                f"no good frames to process: all {indices.size} selected frames have bad quality flags"
            )
        return good

    # ------------------------------------------------------------------ dark frames
    def _sample_pixels(self):
        """Sparse sample of science pixels (0-based) and their four neighbours."""
        centres = np.arange(SAMPLE_STEP // 2, SCIENCE_SIZE - 1, SAMPLE_STEP)
        rows, cols = (grid.ravel() for grid in np.meshgrid(centres, centres, indexing="ij"))
        offsets = [(0, 0), (1, 0), (-1, 0), (0, -1), (0, 1)]
        return rows, cols, offsets

    def _cache_key(self, candidates) -> str:
        digest = hashlib.sha1()
        for array in (self.source.time, self.source.quality, candidates):
            digest.update(np.ascontiguousarray(array).tobytes())
        identity = (type(self.source).__name__, getattr(self.source, "seed", None), self.quality_bits)
        digest.update(repr(identity).encode())
        return f"s{self.sector:04d}-{self.camera}-{self.ccd}-{digest.hexdigest()[:16]}"

    def _get_dark_frame_idx(self, candidates=None, low_per: float = 3.0):
        """Find the dark frames among ``candidates`` (good frames); cached in a JSON file."""
        from ._files import cache_dir

        candidates = self._select_frames(None) if candidates is None else np.asarray(candidates)
        cache_file = cache_dir() / "dark_frames.json"
        key = self._cache_key(candidates)
        try:
            cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        except (OSError, ValueError):
            cache = {}
        if key in cache:
            self.dark_frames = np.asarray(cache[key], dtype=int)
            self.darkest_frame = int(self.dark_frames[0])
            log.info("dark frames from the cache: %s", self.dark_frames.tolist())
            return
        rows, cols, _ = self._sample_pixels()
        rows, cols = rows[::2], cols[::2]  # every other sample point, as the original did
        log.info("reading %d sample pixels of %d frames to find the dark frames", rows.size, candidates.size)
        self.bkg_lc = np.full(self.nt, np.nan)
        if self.source.cheap_read == "frames":
            chunk = 8
            for start in _progress(range(0, candidates.size, chunk), desc="dark frames", unit="chunk", disable=not self.progress):
                part = candidates[start : start + chunk]
                flux, _ = self.source.read_frames(part)
                self.bkg_lc[part] = np.nanmedian(flux[:, rows, cols], axis=1)
        else:
            flux, _ = self.source.read_pixels(rows, cols)
            self.bkg_lc[candidates] = np.nanmedian(flux[candidates], axis=1)
        levels = self.bkg_lc[candidates]
        dark = candidates[levels <= np.nanpercentile(levels, low_per)]
        dark = dark[np.argsort(self.bkg_lc[dark], kind="stable")]
        if dark.size < N_DARK_FRAMES:
            dark = candidates[np.argsort(levels, kind="stable")][:N_DARK_FRAMES]
        self.dark_frames = np.sort(dark[:N_DARK_FRAMES])
        self.darkest_frame = int(dark[0])
        cache[key] = self.dark_frames.tolist()
        from ._files import atomic_output

        try:
            with atomic_output(cache_file, "w") as stream:
                json.dump(cache, stream)
        except (OSError, TessBackmlError) as exc:
            log.debug("could not cache the dark frames: %s", exc)

    # ------------------------------------------------------------------ static scene and masks
    def _thresholds_from(self, static_at) -> StarThresholds:
        rows, cols, offsets = self._sample_pixels()
        values = [static_at(np.clip(rows + dr, 0, SCIENCE_SIZE - 1), np.clip(cols + dc, 0, SCIENCE_SIZE - 1)) for dr, dc in offsets]
        return StarThresholds.from_samples(*values)

    def _prepare_masks(self, mask_straps: bool):
        self.strap_mask = strap_columns(dilation=2 if self.img_bin >= 12 else 1) if mask_straps else np.zeros(SCIENCE_SIZE, bool)
        if self.source.cheap_read == "frames":
            flux, _ = self.source.read_frames(self.dark_frames)
            self.static = np.median(flux, axis=0).astype(np.float32)
            self.ffi_dark = flux[list(self.dark_frames).index(self.darkest_frame)]
            self.thresholds = self._thresholds_from(lambda r, c: self.static[r, c])
            self.star_mask = star_mask(self.static, self.thresholds)
        else:
            rows, cols, offsets = self._sample_pixels()
            sample_rows = np.concatenate([np.clip(rows + dr, 0, SCIENCE_SIZE - 1) for dr, _ in offsets])
            sample_cols = np.concatenate([np.clip(cols + dc, 0, SCIENCE_SIZE - 1) for _, dc in offsets])
            flux, _ = self.source.read_pixels(sample_rows, sample_cols)
            static = np.median(flux[self.dark_frames], axis=0).reshape(len(offsets), -1)
            self.thresholds = StarThresholds.from_samples(*static)
            self.static = None  # built block by block
            self.star_mask = np.zeros((SCIENCE_SIZE, SCIENCE_SIZE), bool)

    # ------------------------------------------------------------------ the cube
    def get_scatter_light_cube(
        self,
        frames=None,
        mask_straps: bool = True,
        plot: bool = False,
        rolling: bool = True,
        errors: bool = True,
        checkpoint=None,
        client=None,
    ):
        """Compute the scattered-light cube (per frame; bin it with :meth:`bin_time_axis`).

        Parameters
        ----------
        frames : slice, tuple or array of int, optional
            Frames to process (default all); bad-quality frames are skipped. The
            dark frames are searched among the processed frames.
        mask_straps : bool
            Mask the strap columns (they respond differently).
        plot : bool
            Show the dark-frame / mask diagnostic.
        rolling : bool
            Rolling 4x4/stride-2 pooling (True) or fixed bins (False).
        errors : bool
            Compute errors (otherwise ``scatter_err_cube`` is NaN).
        checkpoint : tess_backml.io.Checkpoint, optional
            Keep each finished work unit (row block or frame chunk) there, and take
            the units it already holds instead of computing them again.
        client : dask.distributed.Client, optional
            Compute the work units as tasks on this Dask cluster.
        """
        self.prepare(frames, mask_straps=mask_straps, rolling=rolling, errors=errors)
        self.run_units(checkpoint=checkpoint, client=client)
        if plot:
            self.plot_dark_frame(mask_straps=mask_straps)

    def run_units(self, checkpoint=None, client=None, remote=None):
        """Compute the work units of a prepared cube (taking those ``checkpoint``
        holds), put them together and finish the cube.

        ``client`` runs them as Dask tasks on ``remote``, this cube already on the
        cluster (a future), or a copy scattered to it.
        """
        if self.downsize == "sparse":
            self._sparse_cube()
            self.finish()
            return
        units = self.work_units()
        results = dict(checkpoint.load_all(units)) if checkpoint is not None else {}
        if results:
            log.info("resumed %d of %d work units from %s", len(results), len(units), checkpoint.directory)
        todo = [unit for unit in units if unit not in results]
        log.info("computing %d work units", len(todo))
        for unit, result in self._compute(todo, client, remote):
            if checkpoint is not None:
                checkpoint.save(unit, result)
            results[unit] = result
        for unit in units:
            self.apply_unit(unit, results[unit])
        self.finish()

    def _compute(self, units, client, remote=None):
        """(unit, result) pairs as they finish: in this process, or as tasks on ``client``."""
        description = "row blocks" if self.source.cheap_read != "frames" else "frame chunks"
        bar = _progress(total=len(units), desc=description, unit="unit", disable=not self.progress)
        if client is None or not units:
            for unit in units:
                yield unit, self.compute_unit(unit)
                bar.update()
        else:
            from distributed import as_completed

            remote = remote if remote is not None else client.scatter(self, broadcast=False)
            futures = {client.submit(compute_unit_task, remote, unit, pure=False): unit for unit in units}
            for future, result in as_completed(futures, with_results=True):
                yield futures[future], result
                bar.update()
        bar.close()

    # ------------------------------------------------------------------ the build, in parts
    def prepare(self, frames=None, mask_straps: bool = True, rolling: bool = True, errors: bool = True):
        """Everything before the pooling: frames, dark frames, static scene, masks, outputs."""
        self.rolling = bool(rolling)
        self.errors = bool(errors)
        self._noise_factor = rolling_noise_factor(self.img_bin) if self.rolling else 1.0
        self.frame_indices = self._select_frames(frames)
        self._get_dark_frame_idx(self.frame_indices)
        self._prepare_masks(mask_straps)
        self._static_var = np.pi / 2 / len(self.dark_frames)  # variance factor of the dark frames' median
        nbin = SCIENCE_SIZE // self.img_bin
        n = len(self.frame_indices)
        self.scatter_cube = np.full((n, nbin, nbin), np.nan, np.float32)
        self.scatter_err_cube = np.full((n, nbin, nbin), np.nan, np.float32)
        self.pixel_counts = np.zeros((nbin, nbin), np.int32)

    FRAME_CHUNK = 8

    def work_units(self) -> list:
        """The independent parts of the pooling: ("frames", first) chunks of
        :attr:`FRAME_CHUNK` frames for frame-read sources, ("rows", first) blocks of
        ``block_rows`` rows for row-read sources (a MAST cube)."""
        if self.source.cheap_read == "frames":
            return [("frames", start) for start in range(0, len(self.frame_indices), self.FRAME_CHUNK)]
        return [("rows", start) for start in range(0, SCIENCE_SIZE, self.block_rows)]

    def compute_unit(self, unit) -> dict:
        """Pool one work unit; a dict of arrays (pure: the same unit gives the same arrays)."""
        kind, start = unit
        b = self.img_bin
        if kind == "frames":
            part = self.frame_indices[start : start + self.FRAME_CHUNK]
            flux, error = self.source.read_frames(part)
            data = self._masked(flux, self.static, self.star_mask | self.strap_mask[None, :])
            pooled = pool_frames(data, b, rolling=self.rolling)
            err, count = bin_errors(data, error, b, self._static_var)
            return {"cube": pooled, "err": err, "count": count[0]}
        # Rows near a block's cut edge have an unfinished star mask (gradient and dilation:
        # 3 rows), and rolling windows reach img_bin - 1 rows beyond a bin: the halo covers
        # both, in whole bins so the pooling grid stays aligned.
        reach = 3 + (b - 1 if self.rolling else 0)
        halo = b * int(np.ceil(reach / b))
        stop = min(start + self.block_rows, SCIENCE_SIZE)
        lo, hi = max(start - halo, 0), min(stop + halo, SCIENCE_SIZE)
        # Only the frames pooled and the dark frames are read, once each.
        needed = np.union1d(self.frame_indices, self.dark_frames)
        flux, error = self.source.read_rows(lo, hi, needed)
        static = np.median(flux[np.searchsorted(needed, self.dark_frames)], axis=0).astype(np.float32)
        stars = star_mask(static, self.thresholds)
        core = slice(start - lo, stop - lo)  # the block's own rows within the halo
        error = error[:, core]
        if not np.array_equal(needed, self.frame_indices):
            pooled_frames = np.searchsorted(needed, self.frame_indices)
            flux, error = flux[pooled_frames], error[pooled_frames]
        data = self._masked(flux, static, stars | self.strap_mask[None, :])
        pooled = pool_frames(data, b, rolling=self.rolling)
        inner = slice((start - lo) // b, (stop - lo) // b)
        err, count = bin_errors(data[:, core], error, b, self._static_var)
        return {"cube": pooled[:, inner], "err": err, "count": count[0], "stars": stars[start - lo : stop - lo]}

    def apply_unit(self, unit, result: dict):
        """Put a work unit's result into the cube."""
        kind, start = unit
        b = self.img_bin
        if kind == "frames":
            where = (slice(start, start + len(result["cube"])),)
            self.pixel_counts[:] = result["count"]
        else:
            stop = min(start + self.block_rows, SCIENCE_SIZE)
            where = (slice(None), slice(start // b, stop // b))
            self.star_mask[start:stop] = result["stars"]
            self.pixel_counts[start // b : stop // b] = result["count"]
        self.scatter_cube[where] = result["cube"]
        if self.errors:
            self.scatter_err_cube[where] = result["err"] * self._noise_factor

    def finish(self):
        """Fill empty bins and set the cube's times once every unit is in."""
        if self.pixel_counts.max() == 0:
            raise TessBackmlError("every pixel is masked: no background pixels left to measure the scattered light")
        cube, cube_err = self.scatter_cube, self.scatter_err_cube
        self.empty_bins = ~np.isfinite(cube).all(axis=0)
        if self.empty_bins.any():
            log.info("filling %d empty bins with a smooth 2-D fit", int(self.empty_bins.sum()))
            cube = fill_empty_bins(cube)
            cube_err = np.where(np.isfinite(cube_err), cube_err, np.nanmax(cube_err, axis=(1, 2), keepdims=True))
        self.scatter_cube = cube
        self.scatter_err_cube = cube_err
        n = len(self.frame_indices)
        self.time = self.source.time[self.frame_indices]
        self.cadenceno = self.source.cadenceno[self.frame_indices]
        self.frames_per_bin = np.ones(n, int)
        self.time_binned = False
        self.time_bin_hours = 0.0

    def build_identity(self) -> dict:
        """What determines the cube's values: a checkpoint is only reused for the same."""
        from . import __version__

        digest = hashlib.sha1(np.ascontiguousarray(self.frame_indices).tobytes()).hexdigest()[:16]
        return {
            "package_version": __version__,
            "sector": self.sector,
            "camera": self.camera,
            "ccd": self.ccd,
            "img_bin": self.img_bin,
            "downsize": self.downsize,
            "rolling": self.rolling,
            "errors": self.errors,
            "block_rows": self.block_rows,
            "frames": digest,
            "dark_frames": [int(i) for i in self.dark_frames],
            "source": [type(self.source).__name__, str(getattr(self.source, "path", getattr(self.source, "seed", "")))],
        }

    def _masked(self, flux, static, mask):
        """``flux`` minus the static scene, masked pixels NaN, in place (frames are read for this alone)."""
        flux -= static
        flux[:, mask] = np.nan
        return flux

    def _sparse_cube(self):
        """One background pixel per bin: the unmasked pixel nearest the bin centre."""
        cube, cube_err, counts, static_var = self.scatter_cube, self.scatter_err_cube, self.pixel_counts, self._static_var
        b = self.img_bin
        nbin = SCIENCE_SIZE // b
        if self.static is None:
            raise TessBackmlError("sparse downsizing reads whole frames for the static scene; use binning for row-read sources")
        mask = self.star_mask | self.strap_mask[None, :]
        local = np.add.outer((np.arange(b) - (b - 1) / 2) ** 2, (np.arange(b) - (b - 1) / 2) ** 2).ravel()
        order = np.argsort(local, kind="stable")
        rows, cols = [], []
        for i in range(nbin):
            for j in range(nbin):
                block = mask[i * b : (i + 1) * b, j * b : (j + 1) * b].ravel()[order]
                free = np.flatnonzero(~block)
                if free.size:
                    r, c = divmod(int(order[free[0]]), b)
                    rows.append(i * b + r)
                    cols.append(j * b + c)
                    counts[i, j] = 1
                else:
                    rows.append(-1)
                    cols.append(-1)
        rows, cols = np.array(rows), np.array(cols)
        valid = rows >= 0
        n = len(self.frame_indices)
        flux = np.empty((n, int(valid.sum())), np.float32)
        error = np.empty_like(flux)
        if self.source.cheap_read == "frames":  # read only the selected frames
            for start in range(0, n, 8):
                part = self.frame_indices[start : start + 8]
                frames, frame_errors = self.source.read_frames(part)
                flux[start : start + len(part)] = frames[:, rows[valid], cols[valid]]
                error[start : start + len(part)] = frame_errors[:, rows[valid], cols[valid]]
        else:
            all_flux, all_error = self.source.read_pixels(rows[valid], cols[valid])
            flux, error = all_flux[self.frame_indices], all_error[self.frame_indices]
        values = np.full((n, nbin * nbin), np.nan, np.float32)
        values[:, valid] = flux - self.static[rows[valid], cols[valid]]
        errs = np.full_like(values, np.nan)
        errs[:, valid] = error * np.sqrt(1 + static_var)
        cube[:] = values.reshape(-1, nbin, nbin)
        cube_err[:] = errs.reshape(-1, nbin, nbin)

    # ------------------------------------------------------------------ time
    def bin_time_axis(self, bin_size: float = 2.0):
        """Bin the cube in time: per orbit, bins of ``bin_size`` hours.

        Frames are split into orbits at gaps longer than half a day; each orbit is
        cut into bins from its first frame. A bin's value is the mean of its
        frames; its error is the error of that mean, ``sqrt(sum(err^2)) / N``.
        Empty bins are dropped. ``frames_per_bin`` records ``N``.
        """
        if not hasattr(self, "scatter_cube"):
            raise TessBackmlError("compute the cube first (get_scatter_light_cube)")
        if self.time_binned:
            raise TessBackmlError("the cube is already binned in time")
        if not (np.isfinite(bin_size) and bin_size > 0):
            raise TessBackmlError(f"bin_size must be a positive number of hours, got {bin_size}")
        time = self.time
        orbit = np.concatenate([[0], np.cumsum(np.diff(time) > 0.5)])
        labels = np.empty(len(time), np.int64)
        width = bin_size / 24.0
        offset = 0
        for k in np.unique(orbit):
            members = orbit == k
            # the small tolerance keeps a frame that falls on a bin edge in the later bin
            local = np.floor((time[members] - time[members][0]) / width + 1e-6).astype(np.int64)
            labels[members] = local + offset
            offset = labels[members].max() + 1
        starts = np.flatnonzero(np.r_[True, np.diff(labels) != 0])
        n = np.diff(np.r_[starts, len(time)])
        self.scatter_cube = (np.add.reduceat(self.scatter_cube.astype(np.float64), starts, axis=0) / n[:, None, None]).astype(np.float32)
        variance = np.add.reduceat(self.scatter_err_cube.astype(np.float64) ** 2, starts, axis=0)
        self.scatter_err_cube = (np.sqrt(variance) / n[:, None, None]).astype(np.float32)
        self.time = np.add.reduceat(time, starts) / n
        self.cadenceno = np.add.reduceat(self.cadenceno.astype(float), starts) / n
        self.frames_per_bin = n
        self.time_binned = True
        self.time_bin_hours = float(bin_size)

    # ------------------------------------------------------------------ geometry
    def bin_centres(self):
        """Bin centres in 1-based CCD coordinates, as 2-D (row, column) grids."""
        nbin = SCIENCE_SIZE // self.img_bin
        return np.meshgrid(*bin_centres(nbin, nbin, self.img_bin), indexing="ij")

    def get_vector_maps(self, ang_size: bool = True, ephemeris=None):
        """Earth and Moon maps on the bin centres at the cube's times.

        ``*_maps`` have keys ``alt`` (angle between the bin's line of sight and the
        body, deg), ``az`` (azimuth around it, deg) and ``dist`` (angular diameter
        in deg when ``ang_size``, else distance in Earth radii), each
        (ntime, nrow, ncol). ``*_vectors`` hold the camera-boresight values per time.
        """
        from .geometry import camera_vectors, pixel_maps

        if not hasattr(self, "time"):
            raise TessBackmlError("compute the cube first (get_scatter_light_cube)")
        rows, cols = self.bin_centres()
        maps = pixel_maps(self.sector, self.camera, self.ccd, rows, cols, self.time, ephemeris=ephemeris)
        table = camera_vectors(self.sector, self.camera, times=self.time, ephemeris=ephemeris)
        for body in ("earth", "moon"):
            name = body.capitalize()
            distance = np.asarray(table[f"{name}_Distance"])
            size = np.asarray(table[f"{name}_Angular_Size"])
            body_maps = {
                "alt": maps[f"{body}_angle"],
                "az": maps[f"{body}_azimuth"],
                "dist": maps[f"{body}_angular_size"] if ang_size else np.broadcast_to(distance[:, None, None], maps[f"{body}_angle"].shape),
            }
            vectors = {
                "alt": np.asarray(table[f"{name}_Camera_Angle"]),
                "az": np.asarray(table[f"{name}_Camera_Azimuth"]),
                "dist": size if ang_size else distance,
            }
            setattr(self, f"{body}_maps", body_maps)
            setattr(self, f"{body}_vectors", vectors)
        self.maps_ang_size = ang_size

    # ------------------------------------------------------------------ outputs
    def to_sl_cube(self) -> SLCube:
        """The cube as an :class:`tess_backml.io.SLCube` (what the FITS file holds)."""
        if not hasattr(self, "scatter_cube"):
            raise TessBackmlError("compute the cube first (get_scatter_light_cube)")
        return SLCube(
            sector=self.sector,
            camera=self.camera,
            ccd=self.ccd,
            flux=self.scatter_cube,
            flux_err=self.scatter_err_cube,
            time=self.time,
            pixel_counts=self.pixel_counts.astype(np.int64),
            pixel_bin=self.img_bin,
            binned=self.time_binned,
            time_bin_hours=self.time_bin_hours,
            pixel_bin_method="median" if self.downsize == "binning" else "sparse",
            frames_per_bin=self.frames_per_bin,
            cadenceno=self.cadenceno,
        )

    def default_name(self, kind: str = "fits") -> str:
        if kind == "fits":
            return f"ffi_sl_cube_sector{self.sector:03d}_{self.camera}-{self.ccd}.fits"
        return f"ffi_cubes_bin{self.img_bin}_sector{self.sector:03d}_{self.camera}-{self.ccd}.npz"

    def save_to_fits(self, out_file=None, binned: bool = True) -> str:
        """Write the cube in the SL cube FITS format (atomically); returns the path."""
        if binned and not self.time_binned:
            self.bin_time_axis()
        path = out_file or self.default_name("fits")
        write_sl_cube(path, self.to_sl_cube())
        log.info("wrote %s", path)
        return str(path)

    def save_to_npz(self, out_file=None, save_maps: bool = False) -> str:
        """Write the training-set NPZ; with ``save_maps`` the per-pixel Earth/Moon maps too."""
        if not hasattr(self, "scatter_cube"):
            raise TessBackmlError("compute the cube first (get_scatter_light_cube)")
        rows, cols = self.bin_centres()
        arrays = {
            "scatter_cube": self.scatter_cube,
            "scatter_err_cube": self.scatter_err_cube,
            "time": self.time + BTJD_OFFSET,
            "time_btjd": self.time,
            "cadenceno": self.cadenceno,
            "frames_per_bin": self.frames_per_bin,
            "pixel_counts": self.pixel_counts,
            "bin_row": rows[:, 0],
            "bin_col": cols[0],
            "sector": np.int64(self.sector),
            "camera": np.int64(self.camera),
            "ccd": np.int64(self.ccd),
            "img_bin": np.int64(self.img_bin),
            "time_bin_hours": np.float64(self.time_bin_hours),
            "format_version": np.str_("tess-backml-npz-1"),
        }
        if save_maps:
            if not hasattr(self, "earth_maps"):
                self.get_vector_maps()
            for body in ("earth", "moon"):
                for key in ("alt", "az", "dist"):
                    arrays[f"{body}_{key}"] = getattr(self, f"{body}_vectors")[key]
                    arrays[f"{body}_{key}_map"] = np.ascontiguousarray(getattr(self, f"{body}_maps")[key], dtype=np.float32)
            arrays["maps_dist_is_angular_size"] = np.bool_(self.maps_ang_size)
        path = out_file or self.default_name("npz")
        write_npz(path, arrays)
        log.info("wrote %s", path)
        return str(path)

    # ------------------------------------------------------------------ truth (simulated sources)
    def truth_cube(self) -> np.ndarray:
        """The simulator's true SL processed like the data: relative to the dark-frame
        level, masked, pooled and time-binned the same way. Only for simulated sources."""
        from .sources import SimulatedSector

        if not isinstance(self.source, SimulatedSector):
            raise TessBackmlError("the truth is known only for a SimulatedSector source")
        dark_level = np.median([self.source.true_scattered_light(i) for i in self.dark_frames], axis=0)
        mask = self.star_mask | self.strap_mask[None, :]
        pooled = []
        for index in self.frame_indices:
            data = self.source.true_scattered_light(index) - dark_level
            data[mask] = np.nan
            pooled.append(pool_frames(data, self.img_bin, rolling=self.rolling)[0])
        truth = fill_empty_bins(np.array(pooled)) if self.empty_bins.any() else np.array(pooled)
        if self.time_binned:
            starts = np.r_[0, np.cumsum(self.frames_per_bin)[:-1]]
            truth = np.add.reduceat(truth.astype(np.float64), starts, axis=0) / self.frames_per_bin[:, None, None]
        return truth.astype(np.float32)

    # ------------------------------------------------------------------ plots
    def plot_dark_frame(self, mask_straps: bool = True, path=None):
        """Static scene, star mask and strap mask (the dark-frame diagnostic)."""
        from .plotting import plot_dark_frame

        return plot_dark_frame(self, mask_straps=mask_straps, path=path)

    def animate_data(self, data: str = "sl", step: int = 1, file_name=None, save: bool = False):
        """Animate the SL cube (``data="sl"``) or a map (``"earth_alt"``, ``"moon_az"``, ...).

        With ``save`` (or a ``file_name``) writes a GIF (or MP4 when the name ends
        in .mp4 and ffmpeg exists) and returns its path; otherwise returns the
        animation for display in a notebook.
        """
        from .plotting import animate_cube

        if data == "sl":
            cube, label = self.scatter_cube, "SL flux [e-/s]"
        else:
            body, _, key = data.partition("_")
            maps = getattr(self, f"{body}_maps", None)
            if maps is None or key not in maps:
                raise TessBackmlError(f"data must be 'sl' or one of earth/moon_alt/az/dist, got {data!r} (call get_vector_maps first)")
            cube, label = maps[key], f"{body} {key} [deg]"
        title = f"Sector {self.sector} camera {self.camera} CCD {self.ccd}"
        if save and file_name is None:
            file_name = f"ffi_{data}_bin{self.img_bin}_sector{self.sector:03d}_{self.camera}-{self.ccd}.gif"
        return animate_cube(cube, self.time, self.cadenceno, title=title, label=label, step=step, path=file_name)


def fill_empty_bins(cube, degree: int = 3) -> np.ndarray:
    """Fill NaN bins with a smooth 2-D polynomial fitted to each frame's valid bins.

    Frames sharing a pattern of empty bins are solved together with one least
    squares fit (vectorised over frames).
    """
    cube = np.array(cube, dtype=np.float32)
    nt, ny, nx = cube.shape
    y, x = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    design = np.stack([y.ravel() ** i * x.ravel() ** j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)
    flat = cube.reshape(nt, -1)
    empty = ~np.isfinite(flat)
    patterns, inverse = np.unique(empty, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        if not pattern.any():
            continue
        frames = np.flatnonzero(inverse.ravel() == k)
        valid = ~pattern
        if valid.sum() < design.shape[1]:
            raise TessBackmlError(
                f"too few valid bins ({int(valid.sum())}) to fill the empty ones: the masked region covers almost the whole CCD"
            )
        coefficients, *_ = np.linalg.lstsq(design[valid], flat[np.ix_(frames, np.flatnonzero(valid))].T, rcond=None)
        flat[np.ix_(frames, np.flatnonzero(pattern))] = (design[pattern] @ coefficients).T
    return flat.reshape(nt, ny, nx)


__all__ = ["BackgroundCube", "fill_empty_bins"]
