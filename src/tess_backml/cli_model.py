"""The model commands of ``tess-backml``: ``train``, ``evaluate`` and ``forecast``
(see :mod:`tess_backml.cli`)."""

from __future__ import annotations

import numpy as np

from .errors import TessBackmlError


def _orbit(value):
    return None if value == "all" else int(value)


def run_train(args) -> int:
    from ._files import check_writable
    from .model import format_table, save_model, train_model

    check_writable(args.out)
    real = [path.lower().endswith((".fits", ".fits.gz")) for path in args.data]
    if any(real):
        return _train_real(args) if all(real) else _refuse_mixed()
    kind = args.model or "nn"
    options = {"epochs": args.epochs} if args.epochs and kind == "nn" else {}
    model, baseline, meta = train_model(
        args.data, kind=kind, train_orbit=_orbit(args.train_orbit), max_samples=args.max_samples,
        seed=args.seed, progress=not args.quiet, **options,
    )
    save_model(model, args.out, meta, baseline=baseline)
    print(f"{args.out}: {kind} model trained on {meta['training_samples']} samples in {meta['training_seconds']:.1f} s")
    if "held_out" in meta:
        print(f"held out (orbit {3 - meta['train_orbit']}):")
        print(format_table(meta["held_out"]))
    return 0


def _refuse_mixed():
    raise TessBackmlError("train on real series (FITS) or on cube training sets (NPZ), not both: their features differ")


def _train_real(args) -> int:
    from .model import save_model
    from .model.default import feature_set_of, format_held_out, format_recipe, train_real_model

    if args.model not in (None, "gbt"):
        raise TessBackmlError(f"real series train gradient-boosted trees (--model gbt), not {args.model}")
    model, meta = train_real_model(args.data, ephemeris=args.ephemeris, evaluate=not args.no_held_out,
                                   progress=not args.quiet)
    save_model(model, args.out, meta, feature_set=feature_set_of(meta))
    print(f"{args.out}: gbt model trained on {len(meta['training_files'])} real series ({meta['training_samples']} "
          f"30-min means) in {meta['training_seconds']:.0f} s; recipe {format_recipe(meta)}")
    for line in meta["refused_files"]:
        print(f"left out: {line}")
    if "held_out" in meta:
        print(format_held_out(meta))
    return 0


def run_evaluate(args) -> int:
    import json

    from .model import evaluate_model, format_table

    real = [path.lower().endswith((".fits", ".fits.gz")) for path in args.data]
    if not args.data or all(real):
        return _evaluate_real(args)
    if any(real):
        return _refuse_mixed()
    table, data, mask, loaded = evaluate_model(args.model, args.data, orbit=_orbit(args.orbit))
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print(f"{args.model} on {mask.sum()} samples ({'all orbits' if args.orbit == 'all' else 'orbit ' + args.orbit}):")
        print(format_table(table))
    if args.plot:
        from .plotting import plot_evaluation

        plot_evaluation(table, data, mask, loaded, args.plot)
        if not args.json:
            print(f"figure: {args.plot}")
    return 0


def _evaluate_real(args) -> int:
    import json

    from .model import load_model
    from .model.default import format_held_out, format_scores, score_series

    loaded = load_model(args.model)
    if not args.data:
        if "held_out" not in loaded.meta or "none_median" not in loaded.meta["held_out"]:
            raise TessBackmlError(f"{args.model} records no nested held-out figures: give series to score it on")
        print(json.dumps(loaded.meta["held_out"], indent=2) if args.json else format_held_out(loaded.meta))
        return 0
    table = score_series(loaded, args.data, ephemeris=args.ephemeris)
    print(json.dumps(table, indent=2) if args.json else format_scores(table))
    return 0


def run_forecast(args) -> int:
    from ._files import check_writable
    from .distributed import parse_range
    from .forecast import forecast

    for path in (args.out, args.plot):
        if path:
            check_writable(path)
    sectors = parse_range(args.sectors, 1, 200, "--sectors") if args.sectors else None
    result = forecast(args.ra, args.dec, sectors=sectors, model=args.model, ephemeris=args.ephemeris,
                      threshold=args.threshold, progress=not args.quiet)
    print(format_forecast(result))
    if args.out:
        print(f"forecast: {result.write_csv(args.out)}")
    if args.plot:
        result.plot(args.plot)
        print(f"figure: {args.plot}")
    return 0


def format_forecast(result) -> str:
    """The forecast's sectors and episodes as text."""
    from .forecast import episode_rule_text

    lines = [f"RA {result.ra:.4f} Dec {result.dec:.4f}: observed in {len(result.sectors)} sectors"
             + (f" (sectors {', '.join(map(str, result.skipped))} not covered by the ephemeris)" if result.skipped else "")]
    for one in result.sectors:
        lines.append(f"sector {one.sector:3d} camera {one.camera} CCD {one.ccd} row {one.row:6.1f} column {one.column:6.1f}: "
                     f"peak {np.max(one.sl, initial=0):8.1f} e-/s/pixel, {100 * one.affected_share:3.0f}% of the sector "
                     f"in {len(one.episodes)} episodes ({episode_rule_text()}, {one.threshold:.1f})"
                     + (f", {int(one.outside_training.sum())} cadences outside the training" if one.outside_training.any() else ""))
        for e in one.episodes:
            lines.append(f"    orbit {e['orbit']}: BTJD {e['start']:.2f}-{e['end']:.2f}, peak {e['peak_sl']:.1f} at {e['peak_time']:.2f}")
    return "\n".join(lines)
