"""`scaling report`: an HTML report (figures as PNG, SVG, PDF beside it, tables of every fit) of a sweep
directory or a results table. Heavy imports stay inside the command so `scaling --help` stays fast."""

from __future__ import annotations

import argparse
import shlex
import sys

from analysis import collect_if_needed  # noqa: F401 (the sweep-collecting step, named here as before)
from scaling_cli.tables import (add_bootstrap_argument, add_columns_argument, add_flops_argument,
                                add_n_convention_argument, parse_columns, parse_floats)

EPILOG = """\
input: a sweep directory (its results.parquet, collected first if missing or older than a run's
summary.json, and each run's metrics.jsonl for the loss curves), or a results table (.parquet or .csv;
then no loss curves).

fits: with --fit FIT.json (from `scaling fit --out`) the report shows that fit, plus approaches 2 and 1;
otherwise it fits approach 3 (parametric L(N, D)), approach 2 (isoFLOP parabolas) and approach 1 (lower
envelope) where the data allow, each with --bootstrap resamples. A fit the data cannot support is listed
with its reason; a barely determined one is shown with a warning.

outputs in REPORT_DIR (a new or empty directory, or an earlier report): index.html, figures/*.png and
*.svg (and *.pdf with --format png,svg,pdf), fits.json (every fit in full), report.json (headline numbers)
and .scaling-manifest.json (the files written: a re-run replaces those and never touches files the report
did not write).

figures: --style paper draws each figure 3.5 inches wide (a journal column) with no text under 7 pt,
panels stacked and legends below; SVG and PDF keep their text as text (editable, searchable).

examples:
  scaling report sweeps_out/quickstart --out sweeps_out/quickstart/report
  scaling report runs/demo/sweep --fit runs/demo/fit.json --out runs/demo/report
  scaling report runs/demo/sweep --style paper --format pdf --out runs/demo/paper
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
    p.add_argument("--format", default="png,svg", metavar="FORMATS",
                   help="figure files, comma-separated from png, svg, pdf (default png,svg; "
                        "PNG and SVG always, for the page); SVG and PDF keep their text as editable text")
    p.add_argument("--style", choices=("screen", "paper"), default="screen",
                   help="figures for the screen (default), or for paper: 3.5 inches wide for a journal "
                        "column, no text under 7 pt, panels stacked")
    p.set_defaults(func=run)


def run(args) -> int:
    import analysis

    command = "scaling " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["report"] else \
        f"scaling report {shlex.quote(str(args.input))} --out {shlex.quote(str(args.out))}"
    report = analysis.report(args.input, args.out, fit=args.fit, columns=parse_columns(args.columns),
                             n_convention=args.n_convention, flops=args.flops,
                             budgets=parse_floats(args.budgets, "--budgets"), drop_highest=args.drop_highest,
                             bootstrap=args.bootstrap, seed=args.seed, title=args.title,
                             loss_label=args.loss_label, command=command, format=args.format, style=args.style)
    if report.headline:
        h = report.headline
        parts = [f"{k} = {h[k]['value']:.3g}" + (f" [{h[k]['interval'][0]:.3g}, {h[k]['interval'][1]:.3g}]"
                                               if h[k]["interval"] else "")
                 for k in ("a", "b", "tokens_per_param") if k in h]
        print(f"headline ({report.headline_from}): " + ", ".join(parts))
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {(report.out / 'index.html').resolve()} ({len(report.figures)} figures as "
          f"{', '.join(report.figure_formats).upper()})")
    return 0
