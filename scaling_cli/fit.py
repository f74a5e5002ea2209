"""`scaling fit` (`allocate`, `predict` and `backtest` are in predict.py). Heavy imports (jax, pandas)
stay inside the commands so that `scaling --help` stays fast."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from scaling.errors import ScalingError
from scaling_cli.tables import (add_bootstrap_argument, add_table_arguments, check_bootstrap, load_table,
                                parse_floats)

# The registry's names (analysis.fitting.METHODS), spelled out so that `scaling --help` imports no numpy;
# tests/test_scaling_cli_fit.py checks that the two agree.
METHOD_NAMES = ("parametric", "vpnls", "isoflop", "envelope", "kaplan")
STRICT_EXIT = 3

EPILOG = """\
methods: parametric (approach 3: L = E + A/N^alpha + B/D^beta, Huber on log loss, Hoffmann's 4,500 starts),
vpnls (the same surface by variable projection; --loss huber|mse), isoflop (approach 2: a parabola per
budget, then power laws), envelope (approach 1: lower envelope of loss against compute), kaplan (Kaplan et
al. 2020 forms). Several at once: --method parametric,isoflop,envelope (then their exponents are compared).

diagnostics: every fit is printed with what a referee would flag, each with a code and a severity:
  invalid  the numbers should not be used (an exponent outside what a power law can have, a collapsed
           term, a compute-optimal size that is infinite or lies over 1000x beyond the sizes trained)
  warning  usable with the stated caveat (a budget left out of approach 2 because its minimum lies
           outside its sizes, E collapsed to 0, few points per parameter, large residuals, a bootstrap
           whose refits failed more than 5% of the time, methods that disagree on a)
--strict exits 3 when any diagnostic is invalid. --json and --out include the diagnostics; numbers that
are not finite are written as null.

tuned rows: a sweep with an lr list has several runs per (N, D) point. --best-of lr (the default then)
averages seeds and keeps each point's lowest-loss lr, and the notes say how many rows it dropped.
--best-of none keeps every row: parametric, vpnls and kaplan then fit one surface through tuned and
untuned runs (an lr-averaged loss, biased high where the grid is wide); isoflop fits each budget's
parabola through every lr's loss; envelope, whose curves take one loss per (N, D), refuses it.

examples:
  scaling fit results.parquet --method parametric --bootstrap 200 --out fit.json
  scaling fit results.parquet --method parametric,isoflop,envelope --bootstrap 200
  scaling fit chinchilla.csv --columns N="Model Size" C="Training FLOP" --drop-highest 5
  scaling fit isoflops.csv --columns C=budget D=tokens loss=loss --method isoflop   # N = C/(6D)
"""

# CLI flag (argparse dest) -> the fit option it sets; a flag a method does not take is an error.
FIT_OPTIONS = {"delta": "delta", "budgets": "budgets", "parabola": "parabola", "window": "window",
               "keep_extrapolated": "keep_extrapolated", "budget_tolerance": "budget_tolerance",
               "kaplan_form": "form", "irreducible": "irreducible", "loss": "loss", "tie": "tie"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="fit a scaling law to a table of runs, with diagnostics",
        description="Fit a scaling law to runs (a sweep's results.parquet or a CSV with N, D, loss).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="results.parquet or a CSV of runs")
    p.add_argument("--method", default="parametric", metavar="METHOD[,METHOD...]",
                   help=f"one or more of {', '.join(METHOD_NAMES)} (default parametric)")
    add_table_arguments(p)
    p.add_argument("--drop-highest", type=int, default=0, metavar="K", help="drop the K highest-loss rows")
    p.add_argument("--delta", type=float, default=None,
                   help="Huber delta: parametric and kaplan on log-loss residuals (default 1e-3); vpnls --loss huber "
                        "on loss residuals in nats (default 1.0 as in the reference vpnls, which on language-model "
                        "losses acts like least squares: about the run-to-run noise, e.g. 0.01, resists outliers)")
    p.add_argument("--loss", choices=("mse", "huber"), default=None, help="vpnls objective (default mse)")
    p.add_argument("--tie", default=None, metavar="alpha=beta",
                   help="parametric, vpnls: tie the exponents (alpha = beta, as Muennighoff et al. fit)")
    p.add_argument("--budgets", default=None, metavar="C1,C2,...",
                   help="isoflop: nominal budgets to snap runs to (default: the budget column, else clusters)")
    p.add_argument("--budget-tolerance", type=float, default=None, metavar="R",
                   help="isoflop: runs whose C lie within R (relative, default 0.25) of a neighbour are one budget")
    p.add_argument("--parabola", choices=("loss", "log_loss"), default=None, help="isoflop parabola variant")
    p.add_argument("--window", type=int, default=None, metavar="K",
                   help="isoflop: fit each parabola to the K sizes nearest its minimum")
    p.add_argument("--keep-extrapolated", action="store_true", default=None,
                   help="isoflop: keep budgets whose minimum lies outside their sizes (biases a; off by default)")
    p.add_argument("--kaplan-form", choices=("nd", "n", "d", "c"), default=None, help="kaplan form (default nd)")
    p.add_argument("--irreducible", action="store_true", default=None,
                   help="kaplan n/d/c forms: add an irreducible E")
    add_bootstrap_argument(p, 0, "bootstrap resamples (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--predict-at", default=None, metavar="C1,C2,...", help="budgets to predict at")
    p.add_argument("--strict", action="store_true", help=f"exit {STRICT_EXIT} when any diagnostic is invalid")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", default=None, metavar="FIT.json", help="write the full fit result here (one method)")
    p.set_defaults(func=run_fit)


def run_fit(args) -> int:
    from analysis import diagnostics
    from scaling import hardware, io

    names = _parse_methods(args.method)
    _check_out(args.out, names)
    _check_options(args, names)
    check_bootstrap(args.bootstrap)
    hardware.enable_compilation_cache(io.cache_dir())  # a repeated fit skips XLA compilation
    from analysis.fitting import quiet_numerics

    table = load_table(args, loss_label=args.loss_label, best_of=args.best_of)
    _check_best_of(table, names, args.best_of)
    with quiet_numerics():  # overflow in a wild replicate is handled; the diagnostics say what matters
        results, failed = _fit_all(table, names, args)
    compared = diagnostics.compare_methods(results) if len(results) > 1 else ()
    if args.out:
        io.atomic_write(args.out, results[0].to_json())
    _print_results(results, compared, args, failed)
    invalid = [r.spec.method for r in results if diagnostics.has_invalid(r.diagnostics)]
    if invalid:
        print(f"warning: the {', '.join(invalid)} fit has invalid diagnostics: do not use its numbers"
              + (f" (--strict: exit {STRICT_EXIT})" if args.strict else "; --strict makes this exit "
                 f"{STRICT_EXIT}"), file=sys.stderr)
        if args.strict:
            return STRICT_EXIT
    return 0


def _fit_all(table, names: list[str], args):
    """Fit each method; with several, one the data cannot support is reported (not fatal) unless all fail."""
    from scaling.errors import DataError

    if len(names) == 1:
        return [_fit_one(table, names[0], args)], {}
    results, failed = [], {}
    for name in names:
        try:
            results.append(_fit_one(table, name, args))
        except DataError as err:
            failed[name] = str(err)
    if not results:
        raise DataError("no method could be fitted: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    return results, failed


def _fit_one(table, name: str, args):
    import dataclasses

    from analysis import frontier
    from analysis.resampling import bootstrap
    from analysis.fitting import fit, method

    accepted = method(name).options()
    options = {"drop_highest": args.drop_highest}
    for dest, option in FIT_OPTIONS.items():
        value = getattr(args, dest)
        if value is not None and option in accepted:
            options[option] = parse_floats(value, "--budgets") if dest == "budgets" else value
    result = fit(table, name, **options)
    predict_at = parse_floats(args.predict_at, "--predict-at")
    if args.bootstrap:
        return bootstrap(table, result, n=args.bootstrap, seed=args.seed, predict_at=predict_at)
    if frontier.has_frontier(result.spec.form):
        budgets = predict_at or frontier.default_budgets(float(table.C.max()))
        result = dataclasses.replace(result, predictions=frontier.predictions(result, budgets))
    return result


def _check_best_of(table, names: list[str], best_of: str | None) -> None:
    """Approach 1 interpolates each size's loss along C through one loss per point, so the repeated
    points that --best-of none keeps have no meaning there."""
    import numpy as np

    if best_of != "none" or "envelope" not in names:
        return
    points = len(np.unique(np.stack([table.N, table.D]), axis=1).T)
    if points < len(table):
        raise ScalingError(f"--best-of none keeps {len(table)} rows at {points} (N, D) points, and approach 1 "
                           "(envelope) needs one loss per point: use --best-of lr, or leave envelope out of --method")


def _check_options(args, names: list[str]) -> None:
    """A flag that none of the chosen methods takes is a mistake worth stopping for."""
    from analysis.fitting import method

    accepted = set().union(*(method(n).options() for n in names))
    for dest, option in FIT_OPTIONS.items():
        if getattr(args, dest) is not None and option not in accepted:
            raise ScalingError(f"--{dest.replace('_', '-')} does not apply to --method {','.join(names)}; "
                               f"see `scaling fit --help` for which method takes it")


def _parse_methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHOD_NAMES]
    if not names or unknown:
        raise ScalingError(f"--method {text!r}: use one or more of {', '.join(METHOD_NAMES)}, comma-separated")
    return list(dict.fromkeys(names))


def _check_out(out: str | None, names: list[str]) -> None:
    if out is None:
        return
    if len(names) > 1:
        raise ScalingError("--out writes one fit: pass a single --method with it")
    path = Path(out)
    if not out or path.is_dir() or out.endswith(("/", "\\")):
        raise ScalingError(f"--out {out!r} is a directory (or empty); pass a file path such as fit.json")
    if path.exists() and not _is_fit_file(path):
        raise ScalingError(f"--out {out} exists and is not a fit written by `scaling fit`; pass a new path "
                           "(scaling fit only replaces its own fit files)")


def _is_fit_file(path: Path) -> bool:
    from analysis.result import SCHEMA
    try:
        return json.loads(path.read_text()).get("schema") == SCHEMA
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def _print_results(results, compared, args, failed: dict[str, str]) -> None:
    from analysis.result import _clean

    if args.json:
        payload = summary(results[0]) if len(results) == 1 and not failed else {
            "fits": [summary(r) for r in results] + [{"method": k, "error": v} for k, v in failed.items()],
            "diagnostics": list(compared)}
        print(json.dumps(_clean(payload), indent=2, allow_nan=False, default=_jsonable))
        return
    blocks = [format_fit(r) for r in results] + [f"{k}: not fitted: {v}" for k, v in failed.items()]
    print("\n\n".join(blocks))
    if compared:
        print("\nacross methods:")
        print("\n".join(format_diagnostic(d) for d in compared))
    if args.out:
        print(f"\nwrote {args.out}")


def summary(result) -> dict:
    """The flat JSON the CLI prints: parameters and derived quantities at the top level, then how far to
    trust them (diagnostics, whether the intervals are reliable)."""
    from analysis.diagnostics import has_invalid

    out = {"method": result.spec.method, "form": result.spec.form, **result.params, **result.derived}
    if result.objective is not None:
        out["objective"] = result.objective
    out["n_points"] = result.spec.n_points
    out["valid"] = not has_invalid(result.diagnostics)
    out["diagnostics"] = list(result.diagnostics)
    if result.intervals:
        out["intervals"] = {k: list(v) for k, v in result.intervals.items()}
        out["intervals_reliable"] = bool(result.bootstrap.get("reliable", False))
        out["bootstrap"] = result.bootstrap
    if result.predictions:
        out["predictions"] = result.predictions
    out["loss_label"] = result.spec.loss_label
    out["fit_range"] = result.fit_range
    out["notes"] = list(result.notes)
    out["spec"] = result.to_dict()["spec"]
    return out


def format_diagnostic(d: dict) -> str:
    return f"  {'INVALID' if d['severity'] == 'invalid' else 'warning'} [{d['code']}] {d['message']}"


def format_fit(result) -> str:
    spec = result.spec
    lines = [f"{spec.method} fit ({spec.form}, loss {spec.loss}"
             + (f", delta {spec.delta:g}" if spec.delta else "") + f") on {spec.n_points} points of "
             f"{spec.source}", f"N convention {spec.n_convention}, C {spec.flops}, loss: {spec.loss_label}, "
             f"data hash {spec.data_hash}"]
    if spec.dropped:
        lines.append(f"dropped {len(spec.dropped)} row(s): {', '.join(spec.dropped[:10])}"
                     + (" ..." if len(spec.dropped) > 10 else ""))
    reliable = bool(result.bootstrap and result.bootstrap.get("reliable", False))
    if result.intervals:
        lines.append(_bootstrap_line(result.bootstrap))
    lines.append("")
    for name, value in {**result.params, **result.derived}.items():
        ci = (result.intervals or {}).get(name)
        text = f"   [{ci[0]:.4g}, {ci[1]:.4g}]" + ("" if reliable else " unreliable") if ci else ""
        lines.append(f"  {name:<10}{value:14.6g}{text}")
    if result.objective is not None:
        lines.append(f"  {'objective':<10}{result.objective:14.6g}")
    if result.predictions:
        lines += _prediction_lines(result.predictions, reliable)
    if result.diagnostics:
        lines += ["", "diagnostics:"] + [format_diagnostic(d) for d in result.diagnostics]
    else:
        lines += ["", "diagnostics: none (no check flagged this fit)"]
    if result.notes:
        lines.append("")
        lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _bootstrap_line(b: dict) -> str:
    what = f"{b['n_ok']}/{b['n']} usable refits ({b.get('scheme', 'cases')} resampled, {b['n_units']} {b['unit']}s)"
    if b.get("reliable", False):
        return f"{b['level']:.0%} bootstrap intervals from {what}"
    return (f"bootstrap intervals UNRELIABLE: {b['n'] - b['n_ok']} of {b['n']} refits failed or were degenerate; "
            f"the ranges below come from the {b['n_ok']} survivors and are not {b['level']:.0%} intervals")


def _prediction_lines(predictions, reliable: bool) -> list[str]:
    lines = ["", f"  {'C':>10} {'N_opt':>11} {'D_opt':>11} {'L_opt':>8} {'D/N':>7}"]
    for row in predictions:
        loss = f"{row['L_opt']:8.4f}" if "L_opt" in row else f"{'-':>8}"
        lines.append(f"  {row['C']:10.3g} {row.get('N_opt', math.nan):11.4g} {row.get('D_opt', math.nan):11.4g} "
                     f"{loss} {row.get('tokens_per_param', math.nan):7.1f}")
        if "N_opt_lo" in row:
            lines.append(f"  {'':10} [{row['N_opt_lo']:.3g}, {row['N_opt_hi']:.3g}]"
                         + (f"  L [{row['L_opt_lo']:.4f}, {row['L_opt_hi']:.4f}]" if "L_opt_lo" in row else "")
                         + ("" if reliable else "  unreliable"))
    return lines


def _jsonable(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

