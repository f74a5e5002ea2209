"""`scaling report`: an HTML report (figures as PNG and SVG beside it, tables of every fit) of a sweep
directory or a results table. Heavy imports stay inside the command so `scaling --help` stays fast."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from scaling_cli.tables import (add_bootstrap_argument, add_columns_argument, add_flops_argument,
                                add_n_convention_argument, check_bootstrap, parse_columns, parse_floats)

EPILOG = """\
input: a sweep directory (its results.parquet, collected first if missing or older than a run's
summary.json, and each run's metrics.jsonl for the loss curves), or a results table (.parquet or .csv;
then no loss curves).

fits: with --fit FIT.json (from `scaling fit --out`) the report shows that fit, plus approaches 2 and 1;
otherwise it fits approach 3 (parametric L(N, D)), approach 2 (isoFLOP parabolas) and approach 1 (lower
envelope) where the data allow, each with --bootstrap resamples. A fit the data cannot support is listed
with its reason; a barely determined one is shown with a warning.

outputs in REPORT_DIR (a new or empty directory, or an earlier report): index.html, figures/*.png and
*.svg, fits.json (every fit in full), report.json (headline numbers) and .scaling-manifest.json (the files
written: a re-run replaces those and never touches files the report did not write).

examples:
  scaling report sweeps_out/quickstart --out sweeps_out/quickstart/report
  scaling report runs/demo/sweep --fit runs/demo/fit.json --out runs/demo/report
  scaling report chinchilla.csv --columns N="Model Size" C="Training FLOP" --drop-highest 5 --out out/chinchilla
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="HTML report of a sweep or results table: figures, fits, backtest",
        description="Write an HTML report of a sweep directory or results table: loss curves, isoFLOP "
                    "profiles, N_opt(C) and D_opt(C) with bootstrap bands, the fitted L(N, D) surface, residuals, "
                    "a backtest, and tables of every fit.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="SWEEP_DIR_OR_RESULTS", help="a sweep directory, or results.parquet / a CSV")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report directory (new, empty, or an earlier report)")
    p.add_argument("--fit", metavar="FIT.json", help="show this fit (written by `scaling fit --out`)")
    add_columns_argument(p, 'map N, D, C, loss, run_id, budget to a table\'s columns, e.g. --columns N="Model Size"')
    add_n_convention_argument(p, None, "N for the fits (default: the --fit's, else total)")
    add_flops_argument(p, "which recorded FLOP formula is C (default: the --fit's, else exact)")
    p.add_argument("--budgets", default=None, metavar="C1,C2,...", help="nominal budgets to snap runs to")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K", help="drop the K highest-loss rows from fits")
    add_bootstrap_argument(p, 200, "bootstrap resamples per fit (default 200; 0: no intervals)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--loss-label", default=None, metavar="TEXT",
                   help="what the loss column is, for tables and figures (default: the mapped column's name; "
                        "sweeps: final validation loss)")
    p.set_defaults(func=run)


def run(args) -> int:
    from analysis.reporting.build import build_report
    from scaling.io import check_output_dir

    check_bootstrap(args.bootstrap, " (default 200)")
    command = "scaling " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["report"] else \
        f"scaling report {shlex.quote(str(args.input))} --out {shlex.quote(str(args.out))}"
    # Bad flags and a refused --out are reported before anything is collected into the sweep.
    columns, budgets = parse_columns(args.columns), parse_floats(args.budgets, "--budgets")
    check_output_dir(args.out, "scaling report")
    report = build_report(args.input, args.out, fit_path=args.fit, columns=columns,
                          n_convention=args.n_convention, flops=args.flops, n_boot=args.bootstrap, seed=args.seed,
                          drop_highest=args.drop_highest, budgets=budgets, title=args.title, command=command,
                          loss_label=args.loss_label, notes=collect_if_needed(Path(args.input)))
    if report.headline:
        h = report.headline
        parts = [f"{k} = {h[k]['value']:.3g}" + (f" [{h[k]['interval'][0]:.3g}, {h[k]['interval'][1]:.3g}]"
                                               if h[k]["interval"] else "")
                 for k in ("a", "b", "tokens_per_param") if k in h]
        print(f"headline ({report.headline_from}): " + ", ".join(parts))
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {(report.out / 'index.html').resolve()} ({len(report.figures)} figures as PNG and SVG)")
    return 0


def collect_if_needed(source: Path) -> tuple[str, ...]:
    """Collect a sweep directory's results.parquet when it is missing or older than a run's summary.json.
    The analysis reads result files only; writing them into the sweep is the sweep layer's job, done here,
    above both. Returns the note for the page (none when nothing was collected)."""
    from sweeps import store
    from sweeps.collector import collect

    results = source / "results.parquet"
    if not source.is_dir() or not (source / "sweep.json").exists():
        return ()  # a results table, or not a sweep: the analysis says what is wrong with it
    if results.exists():
        newest = max((p.stat().st_mtime for p in store.runs_dir(source).glob("*/summary.json")), default=0.0)
        if newest <= results.stat().st_mtime:
            return ()
        why = "older than a run's summary.json"
    else:
        why = "missing"
    try:
        _, n_rows = collect(source)
    except OSError as err:
        if why == "missing":
            raise
        return (f"results.parquet is {why} and could not be collected again ({err.strerror or err}): "
                "the report shows it as it is",)
    return (f"results.parquet was {why}: collected {n_rows} row(s) from {source}",)
