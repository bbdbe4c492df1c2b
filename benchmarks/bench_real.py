"""How well models follow REAL scattered light, held out honestly.

Every real series in ../shared/data/real that tess_backml.series reads (SPOC light
curves' SAP_BKG, FFI pipelines' backgrounds, TESScut cutouts; a file too short to
know its dark level is left out, with the reason), in 30-min means. Figures, each
series weighted alike (SL left = RMS(real SL - model) / RMS(real SL); 1 = nothing
removed, above 1 = made worse):

1. nested, leave one sector out (the default model's own procedure,
   tess_backml.model.default.train_real_model): for each sector, the recipe (feature
   set, tree size, loss, shrink), the error models and the anchored recipe are chosen
   on the other sectors alone, through their own leave-one-sector-out folds; the model,
   and the model anchored each orbit on the other, are scored on the held-out sector;
2. no correction, and the model trained on the simulator alone (the demo's recipe):
   no real series is in its training;
3. by kind of file: cutouts scored by a model chosen and trained on light curves
   alone, and light curves by trees trained on the cutouts alone;
4. border against interior: the whole-sector 5x5 TESScut (Sector 1 camera 4 CCD 3),
   anchored on its 16 border pixels and scored on its 9 interior ones, against no
   correction and against the border's own raw background.

    python benchmarks/bench_real.py [--data ../shared/data]     # about an hour on 2 cores
    python benchmarks/bench_real.py --nested-from default       # the shipped model's nested figures
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tess_backml.geometry import load_ephemeris  # noqa: E402
from tess_backml.model import load_model, predict_cube  # noqa: E402
from tess_backml.model.default import format_held_out, train_real_model, usable_series  # noqa: E402
from tess_backml.model.real import (  # noqa: E402
    REAL_FEATURE_SETS,
    outside_domain,
    series_features,
    sl_left,
    training_domain,
)
from tess_backml.model.safety import fit_trees, predict_trees, safe_prediction, scores, train_safe  # noqa: E402


def real_files(data: Path) -> list:
    return sorted(f for f in glob.glob(str(data / "real" / "**" / "*.fits"), recursive=True))


def simulation_model(folder):
    """The main model trained on the simulated Sector 4 (camera 1, CCD 1, 32-px bins,
    every 8th frame, both orbits)."""
    from tess_backml import BackgroundCube
    from tess_backml.model import save_model, train_model

    cube = BackgroundCube(4, 1, 1, img_bin=32, source="sim", progress=False)
    cube.get_scatter_light_cube(frames=slice(None, None, 8))
    cube.bin_time_axis(2.0)
    cube.get_vector_maps()
    npz = cube.save_to_npz(os.path.join(folder, cube.default_name("npz")), save_maps=True)
    model, baseline, meta = train_model([npz], kind="nn", train_orbit=None, progress=False)
    return load_model(save_model(model, os.path.join(folder, "sim_model.npz"), meta, baseline=baseline))


def on_series(estimator, series, ephemeris):
    flux = predict_cube(estimator, series.sector, series.camera, series.ccd, [series.row], [series.column],
                        series.time, ephemeris=ephemeris)
    return np.clip(flux[:, 0, 0], 0, None)


def by_kind(series, features, targets):
    """Cutouts scored by a model of light curves alone, and the reverse."""
    cutout = np.array([s.kind == "cutout" for s in series])
    lines = []
    for name, train in (("light curves", ~cutout), ("cutouts", cutout)):
        members = np.flatnonzero(train)
        test = np.flatnonzero(~train)
        if len({series[k].sector for k in members}) >= 3:
            sub = [features[k] for k in members]
            trained = train_safe(sub, [targets[k] for k in members], [series[k].sector for k in members],
                                 [series[k].time for k in members])
            model, recipe = trained["model"], trained["recipe"]
        else:  # too few groups to choose in folds: the shared tree settings, no shrink
            recipe = {"feature_set": "real-3", "max_leaf_nodes": 4, "objective": "l2", "shrink": 1.0}
            model = fit_trees(features, targets, members, recipe)
        held = scores([targets[k] for k in test], [predict_trees(model, features[k], recipe) for k in test])
        lines.append(f"trained on the {name} alone ({len(members)}), scored on the other {len(test)}: "
                     f"median {held['median']:.2f}, worst {held['worst']:.2f}, {held['worse']} made worse")
    return lines


def border_and_interior(path, ephemeris, trained_meta, model):
    """The 5x5 cutout anchored on its border, scored on its interior."""
    import lightkurve as lk

    from tess_backml.model.anchor import anchor_fit, orbit_index
    from tess_backml.series import make_series, tpf_corner, tpf_sector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpf = lk.read(path, quality_bitmask="none")
    flux = np.asarray(tpf.hdu[1].data["FLUX"], float)
    border = np.ones(flux.shape[1:], bool)
    border[1:-1, 1:-1] = False
    row0, col0 = tpf_corner(tpf)
    data = tpf.hdu[1].data
    sector = tpf_sector(tpf)

    def part(mask, name):
        rows, cols = np.nonzero(mask)
        values = np.nanmedian(flux[:, mask] - np.nanpercentile(flux[:, mask], 2, axis=0), axis=1)
        return make_series(sector, tpf.camera, tpf.ccd, row0 + rows.mean(), col0 + cols.mean(), data["TIME"],
                           values, np.zeros(len(data)), data["QUALITY"], name, "cutout").binned(30.0)

    outer, inner = part(border, "border"), part(~border, "interior")
    common = np.intersect1d(np.round(outer.time, 5), np.round(inner.time, 5))
    pick = lambda s: np.isin(np.round(s.time, 5), common)  # noqa: E731
    outer_sl, inner_sl, time = outer.sl[pick(outer)], np.clip(inner.sl[pick(inner)], 0, None), inner.time[pick(inner)]
    shrink = trained_meta["recipe"]["shrink"]
    feature_set = trained_meta["recipe"]["feature_set"]
    columns = len(REAL_FEATURE_SETS[feature_set])
    def at(s):
        features = series_features(s, ephemeris)[pick(s)]
        outside = outside_domain(trained_meta["domain"], features)
        return safe_prediction(model, features[:, :columns], shrink, outside), outside

    (model_inner, _), (model_outer, outside) = at(inner), at(outer)
    features = series_features(outer, ephemeris)[pick(outer)]  # anchoring takes the widest real features
    anchored = anchor_fit(model_outer, outer_sl, features, orbit_index(time), ~outside, trained_meta["anchor"])
    floor = trained_meta["anchor_error_model"]["floor"]
    anchored_inner = anchored * (model_inner + floor) / (model_outer + floor)
    return {"no correction": 1.0, "the border's raw background": sl_left(inner_sl, outer_sl),
            "model": sl_left(inner_sl, model_inner), "anchored on the border": sl_left(inner_sl, anchored_inner)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--nested-from", metavar="MODEL",
                        help="take the nested figures from this model's metadata (e.g. 'default', whose training ran "
                             "them on the same files) instead of running them again (21 minutes)")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "real").is_dir():
        sys.exit(f"bench_real: no real data in {data} (give --data)")
    ephemeris = load_ephemeris(str(data / "ephemeris"))
    started = time.perf_counter()
    files = real_files(data)
    kept, refused = usable_series(files)
    print(f"{len(files)} real files: {len(kept)} series used, {len(refused)} left out")
    for line in refused:
        print(f"  left out: {line}")
    series = [s for _, s in kept]
    features = [series_features(s, ephemeris) for s in series]
    targets = [np.clip(s.sl, 0, None) for s in series]

    if args.nested_from:
        meta = load_model(args.nested_from).meta
        names = [os.path.basename(str(path)) for path, _ in kept]
        if sorted(meta.get("training_files", [])) != sorted(names) or "held_out" not in meta:
            sys.exit(f"bench_real: {args.nested_from} was not trained, with nested figures, on these {len(names)} files")
        print(f"nested figures from {args.nested_from} (trained on these files)")
    else:
        _, meta = train_real_model([path for path, _ in kept], ephemeris=ephemeris, evaluate=True)
    with tempfile.TemporaryDirectory() as folder:
        simulated = simulation_model(folder)
    sim = scores(targets, [on_series(simulated.model, s, ephemeris) for s in series])
    held = meta["held_out"]
    print(f"\n{'series':40s}{'simulator':>10s}{'default':>9s}{'anchored':>10s}")
    for k, one in enumerate(series):
        row = held["sl_left"][os.path.basename(one.source)]
        print(f"{row['series']:40.40s}{sim['sl_left'][k]:10.2f}{row['model']:9.2f}{row['anchored']:10.2f}")
    print()
    print(format_held_out(meta))
    print(f"simulator-trained: median {sim['median']:.2f}, worst {sim['worst']:.2f}, {sim['worse']} made worse")
    print("recipes chosen per held-out sector: " + "; ".join(
        f"S{sector} {r['feature_set']}/{r['max_leaf_nodes']}/{r['objective']}/x{r['shrink']}/"
        + (f"{r['geometry']}:{r['neighbours']}/{r['blend']}^{r['pull']}" if r.get("method") == "analog"
           else f"^{r['pull']}+{r['rounds']}")
        for sector, r in held["recipes_chosen"].items()))
    print(f"cadences predicted as zero outside the training domain: {held['outside_training_cadences']}")
    print("\nby kind of file:")
    for line in by_kind(series, features, targets):
        print("  " + line)
    cutout = data / "real" / "tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"
    if cutout.is_file():
        print("\n5x5 TESScut (S1 4-3), SL left in its 9 interior pixels (the default recipe, trained without S1):")
        others = [k for k, s in enumerate(series) if s.sector != 1]
        trained = train_safe([features[k] for k in others], [targets[k] for k in others],
                             [series[k].sector for k in others], [series[k].time for k in others])
        trained_meta = {"recipe": trained["recipe"], "anchor": trained["anchor"],
                        "anchor_error_model": trained["anchor_error_model"],
                        "domain": training_domain(np.vstack([features[k] for k in others]),
                                                  np.concatenate([targets[k] for k in others]))}
        for name, value in border_and_interior(cutout, ephemeris, trained_meta, trained["model"]).items():
            print(f"  {name:32s}{value:6.2f}")
    print(f"\ndone in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
