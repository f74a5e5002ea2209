"""`scaling fit` (`allocate`, `predict` and `backtest` are in predict_cli.py). Heavy imports (jax, pandas)
stay inside the commands so that `scaling --help` stays fast."""

from __future__ import annotations

import json
import math

from scaling.errors import ScalingError

METHODS = ("parametric", "vpnls", "isoflop", "envelope", "kaplan")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit a scaling law to a table of runs",
        description="Fit a scaling law to runs (a sweep's results.parquet or a CSV with N, D, loss).")
    p.add_argument("input", help="results.parquet or a CSV of runs")
    p.add_argument("--method", choices=METHODS, default="parametric",
                   help="parametric: approach 3 (Huber, Hoffmann grid); vpnls: variable projection; "
                        "isoflop: approach 2; envelope: approach 1; kaplan: Kaplan et al. forms")
    p.add_argument("--columns", action="extend", nargs="+", default=[], metavar="NAME=COLUMN",
                   help='map N, D, C, loss, run_id, budget to the table\'s columns, e.g. '
                        '--columns N="Model Size" C="Training FLOP" (or comma-separated)')
    p.add_argument("--n-convention", choices=("total", "nonembedding"), default="total")
    p.add_argument("--flops", choices=("exact", "6nd", "6nd_nonembed"), default=None,
                   help="which recorded FLOP formula is C (sweep results; default exact)")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K", help="drop the K highest-loss rows")
    p.add_argument("--drop-invalid", action="store_true",
                   help="drop rows with non-finite or non-positive values instead of stopping")
    p.add_argument("--final-only", action="store_true", help="keep only the last row of each run_id")
    p.add_argument("--delta", type=float, default=1e-3, help="Huber delta (parametric, kaplan)")
    p.add_argument("--budgets", default=None, metavar="C1,C2,...",
                   help="nominal budgets to snap runs to (isoflop); default: the budget column or clusters")
    p.add_argument("--parabola", choices=("loss", "log_loss"), default="loss", help="isoflop parabola variant")
    p.add_argument("--kaplan-form", choices=("nd", "n", "d", "c"), default="nd")
    p.add_argument("--irreducible", action="store_true", help="kaplan n/d/c forms: add an irreducible E")
    p.add_argument("--bootstrap", type=int, default=0, metavar="B", help="bootstrap resamples (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--predict-at", default=None, metavar="C1,C2,...", help="budgets to predict at")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--out", default=None, metavar="FIT.json", help="write the full fit result here")
    p.set_defaults(func=run_fit)


def run_fit(args) -> int:
    from analysis.bootstrap import bootstrap
    from analysis.fit import fit
    from analysis.load import load_runs
    from scaling.io import atomic_write
    from scaling import hardware, io

    hardware.enable_compilation_cache(io.cache_dir())  # a repeated fit skips XLA compilation
    table = load_runs(args.input, columns=_parse_columns(args.columns), n_convention=args.n_convention,
                      flops=args.flops, final_only=args.final_only, drop_invalid=args.drop_invalid)
    options = {"drop_highest": args.drop_highest}
    if args.method in ("parametric", "kaplan"):
        options["delta"] = args.delta
    if args.method == "isoflop":
        options.update(parabola=args.parabola, budgets=_parse_floats(args.budgets, "--budgets"))
    if args.method == "kaplan":
        options.update(form=args.kaplan_form, irreducible=args.irreducible)
    result = fit(table, args.method, **options)
    predict_at = _parse_floats(args.predict_at, "--predict-at")
    if args.bootstrap:
        result = bootstrap(table, result, n=args.bootstrap, seed=args.seed, predict_at=predict_at)
    else:
        from analysis import frontier
        if frontier.has_frontier(result.spec.form):
            budgets = predict_at or frontier.default_budgets(float(table.C.max()))
            result = _with_predictions(result, frontier.predictions(result, budgets))
    if args.out:
        atomic_write(args.out, result.to_json())
    if args.json:
        print(json.dumps(summary(result), indent=2, allow_nan=False, default=_jsonable))
    else:
        print(format_fit(result))
        if args.out:
            print(f"\nwrote {args.out}")
    return 0


def summary(result) -> dict:
    """The flat JSON the CLI prints: parameters and derived quantities at the top level."""
    out = {"method": result.spec.method, "form": result.spec.form, **result.params, **result.derived}
    if result.objective is not None:
        out["objective"] = result.objective
    out["n_points"] = result.spec.n_points
    if result.intervals:
        out["intervals"] = {k: list(v) for k, v in result.intervals.items()}
        out["bootstrap"] = result.bootstrap
    if result.predictions:
        out["predictions"] = result.predictions
    out["notes"] = list(result.notes)
    out["spec"] = result.to_dict()["spec"]
    return out


def format_fit(result) -> str:
    spec = result.spec
    lines = [f"{spec.method} fit ({spec.form}, loss {spec.loss}"
             + (f", delta {spec.delta:g}" if spec.delta else "") + f") on {spec.n_points} points of "
             f"{spec.source}", f"N convention {spec.n_convention}, C {spec.flops}, data hash {spec.data_hash}"]
    if spec.dropped:
        lines.append(f"dropped {len(spec.dropped)} row(s): {', '.join(spec.dropped[:10])}"
                     + (" ..." if len(spec.dropped) > 10 else ""))
    if result.intervals:
        b = result.bootstrap
        lines.append(f"{b['level']:.0%} bootstrap intervals from {b['n_ok']}/{b['n']} resamples of "
                     f"{b['n_units']} {b['unit']}s")
    lines.append("")
    for name, value in {**result.params, **result.derived}.items():
        ci = (result.intervals or {}).get(name)
        lines.append(f"  {name:<10}{value:14.6g}" + (f"   [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
    if result.objective is not None:
        lines.append(f"  {'objective':<10}{result.objective:14.6g}")
    if result.predictions:
        lines += ["", f"  {'C':>10} {'N_opt':>11} {'D_opt':>11} {'L_opt':>8} {'D/N':>7}"]
        for row in result.predictions:
            loss = f"{row['L_opt']:8.4f}" if "L_opt" in row else f"{'-':>8}"
            lines.append(f"  {row['C']:10.3g} {row['N_opt']:11.4g} {row['D_opt']:11.4g} {loss} "
                         f"{row['tokens_per_param']:7.1f}")
            if "N_opt_lo" in row:
                lines.append(f"  {'':10} [{row['N_opt_lo']:.3g}, {row['N_opt_hi']:.3g}]"
                             + (f"  L [{row['L_opt_lo']:.4f}, {row['L_opt_hi']:.4f}]" if "L_opt_lo" in row else ""))
    if result.notes:
        lines.append("")
        lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _with_predictions(result, rows):
    import dataclasses
    return dataclasses.replace(result, predictions=rows)


def _parse_columns(items: list[str]) -> dict[str, str] | None:
    """--columns N="Model Size",C="Training FLOP" (repeatable) -> {"N": "Model Size", ...}."""
    mapping = {}
    for item in items:
        for pair in item.split(","):
            if not pair.strip():
                continue
            name, sep, column = pair.partition("=")
            name, column = name.strip(), column.strip().strip("\"'")
            if not sep or not name or not column:
                raise ScalingError(f"--columns {pair!r}: expected NAME=COLUMN, e.g. N=\"Model Size\"")
            if name not in ("N", "D", "C", "loss", "run_id", "budget"):
                raise ScalingError(f"--columns {pair!r}: NAME must be one of N, D, C, loss, run_id, budget")
            mapping[name] = column
    return mapping or None


def _parse_floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ScalingError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 1e19,1e20") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ScalingError(f"{flag} {text!r}: expected positive numbers, e.g. 1e19,1e20")
    return values


def _jsonable(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

