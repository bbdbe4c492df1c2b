"""The learnt model: training time, held-out accuracy and on-the-fly inference time.

Trains the main model (and the ridge baseline) on orbit 1 of a training set and
scores orbit 2, then evaluates it through the corrector at 25 x 27 pixels and
20,000 times (target < 2 s). The training set is the demo's NPZ if given, else a
small one is built from the simulated Sector 4 (every 8th frame, 32-pixel bins).

    python benchmarks/bench_model.py [TRAINING_SET.npz]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tess_backml.corrector import ScatterLightCorrector
from tess_backml.geometry import sector_time_range
from tess_backml.model import format_table, save_model, train_model


def small_training_set(folder):
    from tess_backml.cube import BackgroundCube

    cube = BackgroundCube(4, 1, 1, img_bin=32, source="sim", progress=False)
    cube.get_scatter_light_cube(frames=slice(None, None, 8))
    cube.bin_time_axis(2.0)
    return cube.save_to_npz(str(Path(folder) / cube.default_name("npz")), save_maps=True)


def main():
    with tempfile.TemporaryDirectory() as folder:
        data = sys.argv[1] if len(sys.argv) > 1 else small_training_set(folder)
        for kind in ("nn", "ridge"):
            model, baseline, meta = train_model([data], kind=kind, progress=False)
            print(f"{kind}: trained on {meta['training_samples']} samples in {meta['training_seconds']:.1f} s (2 cores)")
        model, baseline, meta = train_model([data], kind="nn", progress=False)
        print(format_table(meta["held_out"]))
        path = save_model(model, str(Path(folder) / "model.npz"), meta, baseline=baseline)

        corrector = ScatterLightCorrector(4, 1, 1, model=path)
        start, stop = sector_time_range(4)
        times = np.linspace(start + 0.01, stop - 0.01, 20_000)
        rows, cols = np.arange(1000, 1025), np.arange(500, 527)
        began = time.perf_counter()
        corrector.evaluate_scatterlight_model(rows, cols, times)
        first = time.perf_counter() - began
        runs = []
        for _ in range(5):
            began = time.perf_counter()
            corrector.evaluate_scatterlight_model(rows, cols, times)
            runs.append(time.perf_counter() - began)
        print(
            f"model inference, 25x27 pixels x 20000 times: {np.median(runs):.2f} s (median of 5; "
            f"first call with imports and kernel loading {first:.2f} s; target < 2 s)"
        )


if __name__ == "__main__":
    main()
