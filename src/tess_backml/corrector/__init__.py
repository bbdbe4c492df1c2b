"""Evaluate the scattered light of an SL cube or a learnt model at any pixels and times.

The package: ``scatter_light`` (:class:`ScatterLightCorrector`, the façade, and
:func:`correct`), ``operator`` (the cube's interpolation operator and the
:class:`~tess_backml.corrector.operator.SLEvaluator` interface it shares with the
model path), ``splines`` (the B-spline weights and kernels), ``model_path`` (the
learnt model on a grid of nodes), ``tpf`` (the lightkurve glue).

Conventions
-----------
* Pixels are **1-based CCD coordinates** (what TPF headers and lightkurve's
  ``tpf.row`` / ``tpf.column`` give), and must be science pixels: rows 1-2048,
  columns 45-2092.
* Times may be BTJD, JD (BTJD + 2457000) or an astropy ``Time``: BTJD values are
  below 10^5 and JD above 2.4 x 10^6, so numbers are told apart by size.

The interpolation is a linear operator. By default it uses the original
package's orders, a quadratic spline in time and a cubic spline in space, but
over the whole cube: the weights of the interpolating B-splines (the same ones
``scipy.interpolate.make_interp_spline`` builds, and that ``interp1d(kind=
"quadratic")`` and ``RectBivariateSpline(kx=ky=3, s=0)`` use) are computed once
per call, and the cube is contracted with them at once, with no loop over
times or pixels in Python. In space the weights are dense (the bins whose
weights are below 1e-12 of the largest are left out: their contribution is far
below float32 rounding). In time the spline is kept in its B-spline form: the
cube is solved once for its spline coefficients (a banded system), and each
time then needs only the ``order + 1`` basis functions that are non-zero there,
which makes the cost per output value a handful of multiply-adds.

Uncertainties: the cube's errors are propagated through the same weights, with
variances through squared weights, treating the bins' errors as independent.
In time the squared weights are carried by the inverse collocation matrix,
whose entries decay geometrically away from the diagonal; it is kept to the
band holding everything above 1e-13 of each column's largest entry.
They cover the statistical error of the cube; not the interpolation error
between bins (scattered light that changes faster than the time bins or on
scales smaller than the pixel bins), nor the cube's systematic errors.

Edges, handled explicitly (see ``ScatterLightCorrector.flags``):

* pixels beyond the outermost bin centres take the value at the outermost
  centre (constant extension: a cubic spline extrapolates badly);
* times within half a time bin beyond the first or last cube time, or beyond the
  edges of a data gap, take the nearest bin's value (flag ``EXTRAPOLATED``);
* other times in a gap (e.g. the downlink at perigee) or beyond the cube but
  inside the sector get NaN (flags ``IN_GAP``, ``OUTSIDE_CUBE``);
* times outside the sector or pixels off the science region raise an error;
* with a model, times when the Earth or the Moon is nearer the pixels or the
  boresight than in any of its training series get the flag ``OUTSIDE_TRAINING``
  and an error at least as large as the bright light the model learnt.
"""

from .operator import (
    EXTRAPOLATED,
    IN_GAP,
    OUTSIDE_CUBE,
    OUTSIDE_TRAINING,
    CubeInterpolator,
    SLEvaluator,
)
from .scatter_light import ScatterLightCorrector, correct
from .splines import spline_weights
from .tpf import lightkurve_module, tpf_corner

__all__ = [
    "EXTRAPOLATED",
    "IN_GAP",
    "OUTSIDE_CUBE",
    "OUTSIDE_TRAINING",
    "CubeInterpolator",
    "SLEvaluator",
    "ScatterLightCorrector",
    "correct",
    "lightkurve_module",
    "spline_weights",
    "tpf_corner",
]
