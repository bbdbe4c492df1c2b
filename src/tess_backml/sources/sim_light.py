"""The simulator's scattered-light model: light from the Earth and Moon at every pixel.

The scattered light of a body reaching a pixel depends on the pixel's angle to
the body ``theta`` and on the body itself::

    SL = A(t) * [exp(-(theta - theta_cam) / 8 deg) + 0.6 * ring(theta)]
    A(t) = K * (r / r_ref)^2 * S(theta_cam)

with ``theta`` the pixel's angle to the body (exact at nodes every 32 pixels,
bilinearly interpolated between them: the angle field is smooth, the
interpolation error is below 1e-4 relative), ``theta_cam`` the body's angle from
the camera boresight, ``r`` its angular radius, ``S`` a smooth step (5 deg wide)
that is 1 when the body is above the sunshade (``theta_cam`` below 50 deg for the
Earth, 45 deg for the Moon) and 0 below it, and ``ring`` a glint band 38-40 deg
(Earth) from the body, with 0.6 deg edges and 0.15 of the smooth light's amplitude,
that sweeps across the CCD as the body moves. Near perigee the Earth's light
reaches thousands of e-/s; most of the orbit it is nil.

Where the values come from. ``K``, ``r_ref``, the cut angles and the 8-deg scale
set where and how bright the light is (peaks of 10^3-10^4 e-/s, as in the real
backgrounds of Earth-rise episodes: 10^2-10^5). The step width, the ring's
amplitude and its edges set how fast the light changes, and they were calibrated
on real light (``benchmarks/bench_realism.py``: the share of a series' SL that 2-h
bin means plus a spline fail to follow, over the 28 shared real series, and over
48 places of the simulated Sector 4, camera 1): with the first light model (a
1.5-deg step, glints of 0.6 with 0.15-deg edges) the simulator's median was 6.4x
the real one, the glints alone making most of it (without them 2.5x); with these
values it is 1.8x and its 90th percentile 0.5x. Glints weaker than 0.12 leave the
simulator's tail too tame (90th percentile below 0.4x the real one).
"""

from __future__ import annotations

import numpy as np

from ..constants import (
    BODIES,
    BODY_RADII_KM,
    FIRST_SCIENCE_COLUMN,
    FIRST_SCIENCE_ROW,
    SCIENCE_SIZE,
    SUNSHADE_CUTOFF_DEG,
)

#: Scattered-light model parameters per body.
SL_MODEL = {
    "earth": {"K": 900.0, "r_ref": 3.0, "cut": SUNSHADE_CUTOFF_DEG["earth"], "ring": (38.0, 40.0)},
    "moon": {"K": 60.0, "r_ref": 0.25, "cut": SUNSHADE_CUTOFF_DEG["moon"], "ring": (30.0, 31.0)},
}
SL_SCALE_DEG = 8.0
SL_STEP_WIDTH_DEG = 5.0
RING_AMPLITUDE = 0.15
RING_EDGE_DEG = 0.6
#: Raised whenever the light changes: cached results of the simulator (its dark
#: frames) are keyed by it.
LIGHT_MODEL_VERSION = 2
NODE_SPACING = 32  # pixels between the nodes where angles are computed exactly


def bilinear_weights(n_pixels: int, spacing: int) -> np.ndarray:
    """(n_pixels, n_nodes) weights that interpolate node values (every ``spacing`` px) to pixels."""
    n_nodes = n_pixels // spacing + 1
    position = np.arange(n_pixels) / spacing
    left = np.minimum(np.floor(position).astype(int), n_nodes - 2)
    fraction = position - left
    weights = np.zeros((n_pixels, n_nodes), np.float32)
    weights[np.arange(n_pixels), left] = 1 - fraction
    weights[np.arange(n_pixels), left + 1] = fraction
    return weights


class ScatteredLightModel:
    """The model's light on one CCD at a series of frames.

    Parameters
    ----------
    geometry : tess_backml.geometry.CameraGeometry
        The camera's boresight, azimuth reference and pixel directions.
    ccd : int
        The CCD.
    body_vectors : dict of ndarray (nframes, 3)
        Spacecraft-to-body vectors (km) of ``"earth"`` and ``"moon"`` at the frames.

    Attributes
    ----------
    amplitude, camera_angle : dict of ndarray (nframes,)
        ``A(t)`` (e-/s) and ``theta_cam`` (deg) of each body.
    """

    def __init__(self, geometry, ccd: int, body_vectors: dict):
        from ..geometry import angle_and_azimuth

        self.geometry = geometry
        self.body_vectors = body_vectors
        self.amplitude, self.camera_angle = {}, {}
        for body in BODIES:
            vec = body_vectors[body]
            angle, _ = angle_and_azimuth(vec, geometry.boresight[None], geometry.reference)
            radius = np.degrees(np.arcsin(BODY_RADII_KM[body] / np.linalg.norm(vec, axis=1)))
            p = SL_MODEL[body]
            above = 0.5 * (1 + np.tanh((p["cut"] - angle[:, 0]) / SL_STEP_WIDTH_DEG))
            self.camera_angle[body] = angle[:, 0]
            self.amplitude[body] = p["K"] * (radius / p["r_ref"]) ** 2 * above
        nodes = np.arange(0, SCIENCE_SIZE + 1, NODE_SPACING, dtype=float)
        node_rows, node_cols = np.meshgrid(nodes + FIRST_SCIENCE_ROW, nodes + FIRST_SCIENCE_COLUMN, indexing="ij")
        self.node_los = geometry.pixel_directions(ccd, node_rows, node_cols).reshape(-1, 3)
        self.node_shape = node_rows.shape
        self.weights = bilinear_weights(SCIENCE_SIZE, NODE_SPACING)

    def node_angles(self, index: int, body: str) -> np.ndarray:
        """Angle (deg) between each node's line of sight and ``body`` at frame ``index``."""
        from ..geometry import angle_and_azimuth

        angle, _ = angle_and_azimuth(self.body_vectors[body][index][None], self.node_los, self.geometry.reference)
        return angle.reshape(self.node_shape)

    def to_pixels(self, nodes) -> np.ndarray:
        """Node values (float32) interpolated to every science pixel."""
        return self.weights @ np.asarray(nodes, np.float32) @ self.weights.T

    def _terms(self, index: int):
        """The smooth light on the nodes and the glint bands that reach the CCD."""
        smooth = np.zeros(self.node_shape, np.float64)
        rings = []
        for body in BODIES:
            amplitude = float(self.amplitude[body][index])
            if amplitude < 1e-3:
                continue  # below the sunshade: nothing reaches the CCD
            theta = self.node_angles(index, body)
            exponent = np.clip((self.camera_angle[body][index] - theta) / SL_SCALE_DEG, -30, 30)
            smooth += amplitude * np.exp(exponent)
            low, high = SL_MODEL[body]["ring"]
            # Interpolated angles stay within the node range, so this test is exact.
            if theta.min() < high + RING_EDGE_DEG and theta.max() > low - RING_EDGE_DEG:
                rings.append((amplitude, theta, low, high))
        return smooth, rings

    @staticmethod
    def _band(theta, amplitude, low, high):
        rise = np.clip((theta - low) / RING_EDGE_DEG + 0.5, 0, 1)
        fall = np.clip((high - theta) / RING_EDGE_DEG + 0.5, 0, 1, out=theta)
        rise *= fall
        rise *= amplitude * RING_AMPLITUDE
        return rise

    def light(self, index: int) -> np.ndarray:
        """The light of frame ``index`` reaching each science pixel (e-/s, float32), before
        the detector's response."""
        smooth, rings = self._terms(index)
        if not rings and not smooth.any():
            return np.zeros((SCIENCE_SIZE, SCIENCE_SIZE), np.float32)
        light = self.to_pixels(smooth)
        for amplitude, theta_nodes, low, high in rings:
            light += self._band(self.to_pixels(theta_nodes), amplitude, low, high)
        return light

    def node_light(self, index: int) -> np.ndarray:
        """The same light at the nodes only (every 32 pixels, ``node_shape``), float64: the
        pixels' values there, ~4,000 times cheaper than :meth:`light`."""
        smooth, rings = self._terms(index)
        for amplitude, theta_nodes, low, high in rings:
            smooth += self._band(theta_nodes.copy(), amplitude, low, high)
        return smooth
