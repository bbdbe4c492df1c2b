"""BackgroundCube: the façade over the stages of a cube build."""

from __future__ import annotations

import logging

import numpy as np

from .._files import release_free_memory
from ..constants import SCIENCE_SIZE, bin_centres
from ..downsample import check_img_bin, rolling_noise_factor
from ..errors import TessBackmlError
from ..io import SLCube, write_npz, write_sl_cube
from ..masks import bad_frames
from . import darkness, outputs, plan, statics, timebins, units

log = logging.getLogger(__name__)


def compute_unit_task(cube, unit) -> dict:
    """A work unit of a prepared :class:`BackgroundCube`, as a Dask task."""
    return cube.compute_unit(unit)


#: Memory (GB) for the pixels of one work unit of a local MAST cube: 34 frames x 160
#: rows at img_bin 16.
DEFAULT_MEMORY_GB = 0.25


def concurrent_kernels_safe() -> bool:
    """Whether two threads may run the parallel numba kernels at once: not with numba's
    own "workqueue" threading layer (used where neither OpenMP nor TBB is installed)."""
    import numba

    from ..downsample import pool_frames

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        pool_frames(np.zeros((1, 4, 4), np.float32), 2)
        layer = numba.threading_layer()
    return layer != "workqueue"


def computed_units(cube, todo, client=None, remote=None):
    """(unit, result) pairs of ``cube``'s work units ``todo`` as they finish: in this
    process (in order down the CCD, a row block's halo kept from the block before), or
    as tasks on the Dask ``client``."""
    from tqdm.auto import tqdm

    description = {"frames": "frame chunks", "tile": "tiles", "rows": "row blocks"}[todo[0][0] if todo else "rows"]
    bar = tqdm(total=len(todo), desc=description, unit="unit", disable=not cube.progress)
    if client is None or not todo:
        reader = units.RowReuse(cube.source) if todo and todo[0][0] == "tile" else None
        # not for blocks of every frame: a remote cube's source downloads its next rows itself
        if cube.read_ahead and todo[0][0] != "rows" and concurrent_kernels_safe():
            reader = units.ReadAhead(cube.pooling, todo, reader)
        try:
            for unit in todo:
                yield unit, cube.compute_unit(unit, reader)
                release_free_memory()  # the unit's work arrays: the peak stays one unit's
                bar.update()
        finally:
            if isinstance(reader, units.ReadAhead):
                reader.close()
            cube.source.close()  # e.g. a remote cube's scratch bands: not kept beyond the build
    else:
        from distributed import as_completed

        remote = remote if remote is not None else client.scatter(cube, broadcast=False)
        futures = {client.submit(compute_unit_task, remote, unit, pure=False): unit for unit in todo}
        for future, result in as_completed(futures, with_results=True):
            yield futures[future], result
            bar.update()
    bar.close()


def resumed_and_computed_units(cube, checkpoint=None, client=None, remote=None):
    """(unit, result) of every work unit of a prepared cube: first those ``checkpoint``
    holds, then the others as they are computed (and saved to ``checkpoint``)."""
    todo_units = cube.work_units()
    resumed = set()
    for unit, result in checkpoint.load_all(todo_units) if checkpoint is not None else ():
        resumed.add(unit)
        yield unit, result
    if resumed:
        log.info("resumed %d of %d work units from %s", len(resumed), len(todo_units), checkpoint.directory)
    todo = [unit for unit in todo_units if unit not in resumed]
    log.info("computing %d work units", len(todo))
    for unit, result in computed_units(cube, todo, client, remote):
        if checkpoint is not None:
            checkpoint.save(unit, result)
        yield unit, result


class BackgroundCube:
    """Build the scattered-light cube of a sector/camera/CCD from its FFIs.

    Parameters
    ----------
    sector, camera, ccd : int
        Which CCD.
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
        Rows per block when a source is read in row blocks (MAST cubes; default 8
        x img_bin for short local cubes read through maps, 2 x img_bin for those
        copied in bands: remote ones and any of a sector's length).
    memory_gb : float
        Memory for the pixels of one work unit of a MAST cube (a tile of
        ``block_rows`` rows plus their halo x as many frames as fit; default
        ``DEFAULT_MEMORY_GB``): the build's memory does not grow with the sector's
        length beyond the output cube (131 kB per frame at img_bin 16). MAST cubes
        of a sector's length and remote ones are copied in bands of rows to scratch
        files and pooled in row blocks of such tiles: the same bound (see
        :class:`~tess_backml.sources.MASTCubeSource`).
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
        Cadence number of each frame (mean per time bin).
    pixel_counts : ndarray (nrow, ncol)
        Valid pixels per bin.
    dark_frames : ndarray
        Indices (into the source's frames) of the dark frames.
    static, star_mask, strap_mask : ndarray
        Static scene (frame-read sources) and masks.
    earth_maps, moon_maps, earth_vectors, moon_vectors : dict
        From :meth:`get_vector_maps`.
    read_ahead : bool
        In one process, read the next frame chunk or tile while this one is pooled
        (memory for one more unit's pixels, counted in ``memory_gb``). Off by default:
        it measured 0.99-1.08x locally, where the kernel's own read-ahead on memory
        maps already overlaps the disk, and the reading thread's heap kept memory.
    """

    FRAME_CHUNK = units.FRAME_CHUNK
    read_ahead = False

    def __init__(self, sector: int = 1, camera: int = 1, ccd: int = 1, img_bin: int = 16, downsize: str = "binning",
                 source="mast", quality_bits=None, block_rows: int | None = None, progress: bool = True,
                 memory_gb: float | None = None, **source_options):
        from ..geometry import validate_camera_ccd, validate_sector
        from ..sources import resolve_source

        self.sector = validate_sector(sector)
        self.camera, self.ccd = validate_camera_ccd(camera, ccd)
        self.img_bin = check_img_bin(img_bin)
        if downsize not in ("binning", "sparse"):
            raise TessBackmlError(f"downsize must be 'binning' or 'sparse', got {downsize!r}")
        self.downsize = downsize
        self.source = resolve_source(source, self.sector, self.camera, self.ccd, **source_options)
        self.quality_bits = quality_bits
        self.quality = bad_frames(self.source.quality, quality_bits)
        # tiles (local MAST cubes) bound their memory by their frames: taller blocks pool
        # fewer halo rows; blocks of every frame stay short
        default_rows = (8 if self.source.frame_ranges_cheap else 2) * self.img_bin
        self.block_rows = max(int(block_rows or default_rows), self.img_bin)
        self.block_rows -= self.block_rows % self.img_bin
        memory_gb = DEFAULT_MEMORY_GB if memory_gb is None else memory_gb
        if not isinstance(memory_gb, (int, float)) or not np.isfinite(memory_gb) or memory_gb <= 0:
            raise TessBackmlError(f"memory_gb must be a positive number of GB, got {memory_gb!r}")
        self.memory_gb = float(memory_gb)
        self.progress = progress
        self.nt = self.source.nframes
        self.time_binned = False
        self.time_bin_hours = 0.0

    def __repr__(self):
        return f"TESS FFI Background object (Sector, Camera, CCD, N times): {self.sector}, {self.camera}, {self.ccd}, {self.nt}"

    # ------------------------------------------------------------------ the build
    def get_scatter_light_cube(self, frames=None, mask_straps: bool = True, plot: bool = False, rolling: bool = True,
                               errors: bool = True, checkpoint=None, client=None):
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

    def prepare(self, frames=None, mask_straps: bool = True, rolling: bool = True, errors: bool = True):
        """Everything before the pooling: frames, dark frames, static scene, masks, outputs."""
        self.rolling = bool(rolling)
        self.errors = bool(errors)
        self._noise_factor = rolling_noise_factor(self.img_bin) if self.rolling else 1.0
        self.frame_indices = plan.select_frames(self.source, self.quality, frames)
        key = darkness.cache_key(self.source, self.sector, self.camera, self.ccd, self.quality_bits, self.frame_indices)
        self.dark_frames, self.darkest_frame, level = darkness.find_dark_frames(self.source, self.frame_indices, key, self.progress)
        if level is not None:
            self.bkg_lc = level
        scene = statics.static_scene(self.source, self.dark_frames, self.darkest_frame, self.img_bin, mask_straps)
        self.static, self.thresholds, self.star_mask, self.strap_mask = scene.static, scene.thresholds, scene.star_mask, scene.strap_mask
        if scene.darkest is not None:
            self.ffi_dark = scene.darkest
        self._static_var = np.pi / 2 / len(self.dark_frames)  # variance factor of the dark frames' median
        self.pooling = units.PoolingSetup(
            self.source, self.frame_indices, self.dark_frames, self.img_bin, self.rolling, self.block_rows,
            self.static, self.thresholds, self.star_mask, self.strap_mask, self._static_var,
        )
        self.pooling.tile_frames = units.frames_per_tile(self.pooling, self.memory_gb, self.read_ahead)
        nbin, n = SCIENCE_SIZE // self.img_bin, len(self.frame_indices)
        self.scatter_cube = np.full((n, nbin, nbin), np.nan, np.float32)
        self.scatter_err_cube = np.full((n, nbin, nbin), np.nan, np.float32)
        self.pixel_counts = np.zeros((nbin, nbin), np.int32)

    def work_units(self) -> list:
        """The independent parts of the pooling (see :mod:`tess_backml.cube.units`)."""
        return self.pooling.work_units()

    def compute_unit(self, unit, reader=None) -> dict:
        """Pool one work unit; a dict of arrays (pure: the same unit gives the same arrays;
        ``reader``, a :class:`~tess_backml.cube.units.RowReuse` or
        :class:`~tess_backml.cube.units.ReadAhead`, only changes how the pixels are read)."""
        return units.compute_unit(self.pooling, unit, reader)

    def apply_unit(self, unit, result: dict):
        """Put a work unit's result into the cube."""
        noise = self._noise_factor if self.errors else None
        units.apply_unit(self.pooling, unit, result, self.scatter_cube, self.scatter_err_cube, self.pixel_counts, noise)

    def run_units(self, checkpoint=None, client=None, remote=None):
        """Compute the work units of a prepared cube (taking those ``checkpoint``
        holds), put them together and finish the cube.

        ``client`` runs them as Dask tasks on ``remote``, this cube already on the
        cluster (a future), or a copy scattered to it.
        """
        if self.downsize == "sparse":
            units.sparse_cube(self.pooling, self.scatter_cube, self.scatter_err_cube, self.pixel_counts)
            self.finish()
            return
        # each result goes into the cube as it comes (units do not depend on each other's
        # order), so the results of a whole sector are never held beside the cube
        for unit, result in resumed_and_computed_units(self, checkpoint, client, remote):
            self.apply_unit(unit, result)
        self.finish()

    def finish(self):
        """Fill empty bins and set the cube's times once every unit is in."""
        if self.pixel_counts.max() == 0:
            raise TessBackmlError("every pixel is masked: no background pixels left to measure the scattered light")
        self.empty_bins = ~np.isfinite(self.scatter_cube).all(axis=0)
        if self.empty_bins.any():
            log.info("filling %d empty bins with a smooth 2-D fit", int(self.empty_bins.sum()))
            self.scatter_cube = units.fill_empty_bins(self.scatter_cube, in_place=True)
            err = self.scatter_err_cube
            np.copyto(err, np.nanmax(err, axis=(1, 2), keepdims=True), where=~np.isfinite(err))
        self.time = self.source.time[self.frame_indices]
        self.cadenceno = self.source.cadenceno[self.frame_indices]
        self.frames_per_bin = np.ones(len(self.frame_indices), int)
        self.bin_start = self.bin_stop = self.time
        self.time_binned = self.time_bin_adaptive = False
        self.time_bin_hours = 0.0

    def build_identity(self) -> dict:
        """What determines the cube's values: a checkpoint is only reused for the same."""
        return plan.build_identity(self)

    # ------------------------------------------------------------------ time
    def bin_time_axis(self, bin_size: float = 2.0, adaptive: bool = False):
        """Bin the cube in time: per orbit, bins of ``bin_size`` hours.

        Frames are split into orbits at gaps longer than half a day; each orbit is
        cut into bins from its first frame. With ``adaptive``, bins are halved (down
        to single frames) where the light changes faster than a spline through the
        bin means can follow within the errors, up to twice the number of fixed bins
        (:func:`tess_backml.cube.timebins.adaptive_bin_starts`). A bin's value is the
        mean of its frames; its error is the error of that mean,
        ``sqrt(sum(err^2)) / N``. ``frames_per_bin`` records ``N``; ``bin_start`` and
        ``bin_stop`` the times of each bin's first and last frame.
        """
        outputs.require_cube(self)
        if self.time_binned:
            raise TessBackmlError("the cube is already binned in time")
        if not isinstance(adaptive, (bool, np.bool_)):
            raise TessBackmlError(f"adaptive must be True or False, got {adaptive!r}")
        starts = timebins.bin_starts(self.time, self.scatter_cube, self.scatter_err_cube, bin_size, adaptive)
        binned = timebins.bin_in_time(starts, self.time, self.cadenceno, self.scatter_cube, self.scatter_err_cube)
        self.scatter_cube, self.scatter_err_cube = binned["cube"], binned["cube_err"]
        self.time, self.cadenceno, self.frames_per_bin = binned["time"], binned["cadenceno"], binned["frames_per_bin"]
        self.bin_start, self.bin_stop = binned["start"], binned["stop"]
        self.time_binned, self.time_bin_adaptive = True, bool(adaptive)
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
        if not hasattr(self, "time"):
            raise TessBackmlError("compute the cube first (get_scatter_light_cube)")
        rows, cols = self.bin_centres()
        for name, value in outputs.vector_maps(self, rows, cols, ang_size, ephemeris).items():
            setattr(self, name, value)
        self.maps_ang_size = ang_size

    # ------------------------------------------------------------------ outputs
    def to_sl_cube(self) -> SLCube:
        """The cube as an :class:`tess_backml.io.SLCube` (what the FITS file holds)."""
        return outputs.to_sl_cube(self)

    def default_name(self, kind: str = "fits") -> str:
        """The original's file name of the SL cube (``"fits"``) or the training set (``"npz"``)."""
        return outputs.default_name(self.sector, self.camera, self.ccd, self.img_bin, kind)

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
        arrays = outputs.training_arrays(self, save_maps)
        path = out_file or self.default_name("npz")
        write_npz(path, arrays)
        log.info("wrote %s", path)
        return str(path)

    def truth_cube(self) -> np.ndarray:
        """The simulator's true SL processed like the data (simulated sources only)."""
        return outputs.truth_cube(self)

    def plot_dark_frame(self, mask_straps: bool = True, path=None):
        """Static scene, star mask and strap mask (the dark-frame diagnostic)."""
        from ..plotting import plot_dark_frame

        return plot_dark_frame(self, mask_straps=mask_straps, path=path)

    def animate_data(self, data: str = "sl", step: int = 1, file_name=None, save: bool = False):
        """Animate the SL cube (``data="sl"``) or a map (``"earth_alt"``, ``"moon_az"``, ...).

        With ``save`` (or a ``file_name``) writes a GIF (or MP4 when the name ends
        in .mp4 and ffmpeg exists) and returns its path; otherwise returns the
        animation for display in a notebook.
        """
        from ..plotting import animate_background

        return animate_background(self, data=data, step=step, file_name=file_name, save=save)
