"""`scaling fit` (`allocate`, `predict` and `backtest` are in predict.py). Heavy imports (jax, pandas)
stay inside the commands so that `scaling --help` stays fast."""

from __future__ import annotations

import argparse
import json
import sys

from scaling_cli.tables import add_bootstrap_argument, add_table_arguments, parse_columns, parse_floats

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
    import analysis
    from analysis.diagnostics import has_invalid
    from analysis.result import FitComparison

    options = {name: getattr(args, name) for name in analysis.FIT_OPTIONS}
    options["budgets"] = parse_floats(args.budgets, "--budgets")
    fitted = analysis.fit(args.input, method=args.method, columns=parse_columns(args.columns),
                          n_convention=args.n_convention, flops=args.flops, drop_invalid=args.drop_invalid,
                          final_only=args.final_only, loss_label=args.loss_label, best_of=args.best_of,
                          drop_highest=args.drop_highest, bootstrap=args.bootstrap, seed=args.seed,
                          predict_at=parse_floats(args.predict_at, "--predict-at"), out=args.out, **options)
    if not isinstance(fitted, FitComparison):
        fitted = FitComparison((fitted,))
    _print_results(fitted, args)
    invalid = [r.spec.method for r in fitted.results if has_invalid(r.diagnostics)]
    if invalid:
        print(f"warning: the {', '.join(invalid)} fit has invalid diagnostics: do not use its numbers"
              + (f" (--strict: exit {STRICT_EXIT})" if args.strict else "; --strict makes this exit "
                 f"{STRICT_EXIT}"), file=sys.stderr)
        if args.strict:
            return STRICT_EXIT
    return 0


def _print_results(fitted, args) -> None:
    from analysis.result import _clean

    if args.json:
        payload = summary(fitted.results[0]) if len(fitted.results) == 1 and not fitted.failed else {
            "fits": [summary(r) for r in fitted.results] + [{"method": k, "error": v} for k, v in fitted.failed.items()],
            "diagnostics": list(fitted.compared)}
        print(json.dumps(_clean(payload), indent=2, allow_nan=False, default=_jsonable))
        return
    print(fitted)
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


def _jsonable(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

