"""`scaling predict`, `scaling allocate` and `scaling backtest`: what a fit says about runs not yet made, and
how well such predictions held up on runs held out. Heavy imports stay inside the commands so that
`scaling --help` stays fast."""

from __future__ import annotations

import json
import math

from scaling_cli.fit import METHOD_NAMES as METHODS
from scaling_cli.tables import (add_bootstrap_argument, add_columns_argument, add_flops_argument,
                                add_n_convention_argument, load_table, parse_columns, parse_floats)


def register(subparsers) -> None:
    _register_predict(subparsers)
    _register_allocate(subparsers)
    _register_backtest(subparsers)


def _register_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predicted loss of new runs at (N, D), with intervals",
        description="From a saved fit with a loss surface (approach 3, VPNLS, Kaplan nd): the loss of a new run "
                    "at each (N, D), its bootstrap prediction interval, and how far each point extrapolates.")
    p.add_argument("--fit", required=True, metavar="FIT.json", help="a fit written by `scaling fit --out`")
    p.add_argument("--N", nargs="+", type=float, default=None, metavar="N", help="model sizes (parameters)")
    p.add_argument("--D", nargs="+", type=float, default=None, metavar="D",
                   help="training tokens, paired with --N in order (one value pairs with every N)")
    p.add_argument("--points", default=None, metavar="CSV", help="a CSV with columns N and D, instead of --N/--D")
    add_columns_argument(p, "map N and D to the CSV's columns, e.g. --columns N=params,D=tokens")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--max-extrapolation", type=float, default=100.0, metavar="X",
                   help="warn when a point lies more than X times beyond the fitted N, D or C (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run-to-run noise draws")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run_predict)


def _register_allocate(subparsers) -> None:
    a = subparsers.add_parser("allocate", help="compute-optimal N, D and model shape for a budget",
                              description="From a saved fit and a FLOP budget: N_opt, D_opt, L_opt, shape.")
    a.add_argument("--fit", required=True, metavar="FIT.json", help="a fit written by `scaling fit --out`")
    a.add_argument("--budget", required=True, type=float, metavar="C", help="training FLOPs, e.g. 1e21")
    a.add_argument("--vocab-size", type=int, default=None, metavar="V",
                   help="vocabulary of the shape (default: the one the fit recorded from its runs)")
    a.add_argument("--max-extrapolation", type=float, default=100.0, metavar="X",
                   help="warn when C, N_opt or D_opt lies more than X times beyond the fit's data (default 100)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=run_allocate)


def _register_backtest(subparsers) -> None:
    b = subparsers.add_parser(
        "backtest", help="fit on the smaller runs, predict the held-out larger ones, report the errors",
        description="Hold out the largest budgets (or model sizes), fit on the rest, and report the error of the "
                    "predicted loss (MAPE), the share of held-out runs inside their prediction intervals "
                    "(coverage) and the error of N_opt at held-out budgets.")
    b.add_argument("input", help="results.parquet or a CSV of runs")
    b.add_argument("--by", choices=("budget", "size"), default="budget", help="hold out budgets or model sizes")
    b.add_argument("--holdout", type=int, default=None, metavar="K",
                   help="hold out the K largest budgets or sizes (default: 1 budget, or the largest fifth of the sizes)")
    b.add_argument("--method", choices=METHODS, default="parametric")
    add_columns_argument(b, "map N, D, C, loss, run_id, budget to the table's columns (as `scaling fit`)")
    add_n_convention_argument(b)
    add_flops_argument(b, "which recorded FLOP formula is C (sweep results; default exact)")
    b.add_argument("--final-only", action="store_true", help="keep only the last row of each run_id")
    b.add_argument("--drop-invalid", action="store_true",
                   help="drop rows with non-finite or non-positive values instead of stopping")
    b.add_argument("--budgets", default=None, metavar="C1,C2,...", help="nominal budgets to snap runs to")
    add_bootstrap_argument(b, 100, "bootstrap resamples of the training fit, for the intervals (default 100; "
                                   "0: no coverage)")
    b.add_argument("--level", type=float, default=0.95, help="prediction interval level (default 0.95)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    b.set_defaults(func=run_backtest)


def run_predict(args) -> int:
    import analysis

    prediction = analysis.predict(args.fit, args.N, args.D, points=args.points,
                                  columns=parse_columns(args.columns), level=args.level,
                                  max_extrapolation=args.max_extrapolation, seed=args.seed)
    if args.json:
        print(json.dumps(prediction.to_dict(), indent=2, allow_nan=False))
    else:
        print(format_prediction(prediction, args.fit))
    return 0


def format_prediction(p, source: str) -> str:
    pct = f"{p.level:.0%}" if p.reliable is not False else "unreliable"  # not a 95% interval then
    lines = [f"{p.method} fit ({p.form}) from {source}: predicted {p.loss_label} of a new run at each (N, D)"]
    if p.interval == "prediction":
        lines.append(f"{pct} prediction interval: {p.n_samples} bootstrap fits, each with run-to-run scatter "
                     f"(sd {p.log_residual_sd:.3g} in log loss); 'fit only' leaves the scatter out")
    head = f"  {'N':>10} {'D':>10} {'C = 6ND':>10} {'loss':>8}"
    if p.interval:
        head += f"  {pct + (' prediction' if p.interval == 'prediction' else ' fit only'):>20}"
        if p.interval == "prediction":
            head += f"  {pct + ' fit only':>20}"
    head += "   beyond data x (N, D, C)"
    lines += ["", head]
    for pt in p.points:
        row = f"  {pt['N']:10.3g} {pt['D']:10.3g} {pt['C']:10.3g} {pt['loss']:8.4f}"
        if p.interval:
            row += f"  {_bounds(pt['lo'], pt['hi']):>20}"
            if p.interval == "prediction":
                row += f"  {_bounds(pt['fit_lo'], pt['fit_hi']):>20}"
        ex = pt["extrapolation"]
        row += "   " + (" ".join(_factor(ex.get(k)) for k in ("N", "D", "C")) if ex else "unknown")
        lines.append(row)
    if p.fit_range:
        r = p.fit_range
        lines.append("  fitted on " + ", ".join(f"{k} in [{r[k][0]:.3g}, {r[k][1]:.3g}]" for k in ("N", "D", "C")
                                                 if r.get(k)))
    lines += [f"warning: {w}" for w in p.warnings]
    lines += [f"note: {n}" for n in p.notes]
    return "\n".join(lines)


def _bounds(lo, hi) -> str:
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "undefined"
    return f"[{lo:.4f}, {hi:.4f}]"


def _factor(f) -> str:
    return "-" if f is None else ("1x" if f == 1 else f"{f:.3g}x")


def run_allocate(args) -> int:
    import analysis
    from analysis.result import load_fit

    result = load_fit(args.fit)
    alloc = analysis.allocate(result, args.budget, vocab_size=args.vocab_size, max_extrapolation=args.max_extrapolation)
    if args.json:
        print(json.dumps(alloc.to_dict(), indent=2, allow_nan=False))
        return 0
    print(f"budget C = {alloc.C:.3g} FLOPs ({result.spec.method} fit, N convention {alloc.n_convention})")
    for name in ("N_opt", "D_opt", "L_opt", "tokens_per_param"):
        value = getattr(alloc, name)
        if value is None:
            continue
        ci = alloc.intervals.get(name)
        print(f"  {name:<17}{value:12.4g}" + (f"   [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
    if alloc.shape:
        s = alloc.shape
        print(f"  shape            d_model={s['d_model']} n_layers={s['n_layers']} n_heads={s['n_heads']} "
              f"d_ff={s['d_ff']} vocab={s['vocab_size']} -> N={s['n_params']:,} "
              f"(non-embedding {s['n_params_nonembedding']:,})")
    if alloc.extrapolation:
        print("  beyond data      " + ", ".join(f"{k} {_factor(v)}" for k, v in alloc.extrapolation.items()))
    for warning in alloc.warnings:
        print(f"warning: {warning}")
    for note in alloc.notes:
        print(f"  note: {note}")
    return 0


def run_backtest(args) -> int:
    from analysis.backtest import backtest
    from scaling import hardware, io

    hardware.enable_compilation_cache(io.cache_dir())  # the training fit and its bootstrap compile once
    table = load_table(args)
    bt = backtest(table, args.method, by=args.by, budgets=parse_floats(args.budgets, "--budgets"),
                  holdout=args.holdout, n_boot=args.bootstrap, level=args.level, seed=args.seed)
    if args.json:
        print(json.dumps(bt.to_dict(), indent=2, allow_nan=False))
    else:
        print(format_backtest(bt))
    return 0


def format_backtest(bt) -> str:
    s = bt.summary
    lines = [f"backtest by {'budget' if bt.by == 'C' else 'size'}: {bt.method} fitted on {bt.n_train} runs "
             f"({bt.split}), predicting {bt.n_test} held-out run{'' if bt.n_test == 1 else 's'}"]
    if "loss_mean_abs_rel_error" in s:
        lines.append(f"  loss: MAPE {100 * s['loss_mean_abs_rel_error']:.2f}% "
                     f"(max {100 * s['loss_max_abs_rel_error']:.2f}%)")
    if "coverage" in s:
        inside = sum(e["inside"] for e in bt.loss_errors)
        lines.append(f"  coverage: {inside} of {len(bt.loss_errors)} held-out runs ({s['coverage']:.0%}) inside "
                     f"their {s['coverage_level']:.0%} prediction intervals (nominal {s['coverage_level']:.0%})")
    if "n_opt_mean_abs_rel_error" in s:
        lines.append(f"  N_opt at held-out budgets: mean |error| {100 * s['n_opt_mean_abs_rel_error']:.1f}% "
                     f"(max {100 * s['n_opt_max_abs_rel_error']:.1f}%)")
    if bt.loss_errors:
        lines += ["", f"  {'run':<12} {'N':>10} {'D':>10} {'observed':>9} {'predicted':>9} {'error':>8}  interval"]
        for e in bt.loss_errors:
            ci = (_bounds(e["lo"], e["hi"]) + ("" if e["inside"] else "  outside")) if "lo" in e else ""
            lines.append(f"  {e['label'][:12]:<12} {e['N']:10.3g} {e['D']:10.3g} {e['loss']:9.4f} "
                         f"{e['predicted']:9.4f} {100 * e['rel_error']:+7.2f}%  {ci}")
    if bt.n_opt_errors:
        lines += ["", f"  {'budget C':>10} {'N_opt obs':>11} {'N_opt pred':>11} {'error':>8}"]
        lines += [f"  {e['C']:10.3g} {e['observed']:11.4g} {e['predicted']:11.4g} {100 * e['rel_error']:+7.1f}%"
                  for e in bt.n_opt_errors]
    lines += [f"note: {n}" for n in bt.notes]
    return "\n".join(lines)
