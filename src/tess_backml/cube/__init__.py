"""BackgroundCube: the scattered-light cube of one sector/camera/CCD.

:class:`BackgroundCube` (``background``) is a façade over the stages of a build,
each a module of its own (as in the original tess-backml, made exact and streaming):

1. ``plan``: the frames to process, without those with bad quality bits (default
   CoarsePoint);
2. ``darkness``: the dark frames: the median of a sparse pixel sample gives a
   background light curve; the 10 darkest good frames below its 3rd percentile are
   kept (cached per source in a JSON file in the user cache directory);
3. ``statics``: static scene = median of the dark frames; star mask from the static
   scene and its gradient, thresholded with global statistics of the sparse sample;
   strap mask from the strap table;
4. ``units``: every frame minus the static scene, masked and downsized (NaN-median
   pooling or sparse pixels), with errors and pixel counts, in work units (frame
   chunks or row blocks: the tasks of Dask builds and the pieces of checkpoints);
   empty bins filled with a smooth 2-D polynomial, vectorised over frames. A bin's
   error is the standard error of a median, ``sqrt(pi/2) * rms(pixel error) /
   sqrt(N)`` over its N valid pixels, including the noise of the subtracted static
   scene (a median of 10 frames), times the measured noise reduction of the rolling
   pooling (:func:`tess_backml.downsample.rolling_noise_factor`). It covers photon
   and read noise, not systematic errors (star residuals, an imperfect static scene);
5. ``timebins``: per-orbit time bins (:meth:`BackgroundCube.bin_time_axis`);
6. ``outputs``: the SL cube file, the training set with the real per-pixel
   Earth/Moon maps (:meth:`BackgroundCube.get_vector_maps`), the simulator's truth.

Sources are read in their cheap order: frame by frame (FFI files, the simulator) or
in row blocks with a halo (MAST cubes). Both orders give the same cube.
"""

from .background import BackgroundCube, compute_unit_task
from .darkness import N_DARK_FRAMES, SAMPLE_STEP
from .units import fill_empty_bins

__all__ = ["N_DARK_FRAMES", "SAMPLE_STEP", "BackgroundCube", "compute_unit_task", "fill_empty_bins"]
