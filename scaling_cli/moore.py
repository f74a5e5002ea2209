"""`scaling moore`: Moore's law for LLMs. Fits doubling times of training compute, accelerator FLOP/s
(per dollar) and transistor counts, runs compute scenarios through a compute-optimal frontier, and writes
figures, moore.json and a short summary (Markdown and HTML) to OUT_DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
data files (all optional; a missing series stands in at its published rate, marked "published"):
  --models       Epoch AI notable models CSV (epoch.ai/data/ai-models: notable_ai_models.csv)
  --hardware     Epoch AI ML hardware CSV (epoch.ai/data/machine-learning-hardware: ml_hardware.csv)
  --transistors  Karl Rupp's microprocessor trend data (long CSV, or 50yrs/transistors.dat)
Without --models the frontier-LM compute trend is fitted to the built-in table of frontier LMs.

frontier: --fit FIT.json takes E, A, B, alpha, beta, its fit_range and bootstrap samples from
`scaling fit --out FIT.json` (or E, A, B, alpha, beta and an optional fit_range from any JSON); its losses
are in its own runs' units, not the frontier models'. Default: Epoch AI's Chinchilla refit (E=1.8172,
A=482.0, B=2085.4, alpha=0.3478, beta=0.3658; fitted on C 1.4e18-1.3e22 FLOP), with approximate draws
consistent with Epoch's published 95% intervals.

extrapolation guard: the frontier is evaluated at every frontier model's C and every projected year's
effective compute; beyond --max-extrapolation (100x) of the fit's C range `moore` refuses.
--allow-extrapolation runs anyway and stamps every frontier-dependent number, sentence and figure
"extrapolated k orders of magnitude beyond the fit". Every published Chinchilla-type fit stops below
today's frontier runs, so the loss projections need the flag.

algorithmic progress: by default Ho et al. 2024 (compute for a fixed loss halves every 8 months, 95% CI
5-14), its interval carried into every result; --algorithmic-halving-months X sets it (no interval);
--algorithmic CSV fits it to rows of (date, compute needed to reach one fixed performance), columns named
with --algorithmic-columns date=COL compute=COL (default: columns named date and compute).

limits: --data-stock-tokens (3e14, Villalobos et al. 2024) and --max-feasible-compute (2e29 FLOP by 2030,
Sevilla et al. 2024, Epoch AI): each scenario says when it passes them; the projection's *_saturating
columns hold compute and tokens there.

outputs in OUT_DIR (a new or empty directory, or an earlier OUT_DIR): moore.json, summary.md, summary.html,
figures trends_exponentials, doubling_forest, loss_by_year, frontier_models (PNG and SVG; --format png,svg,pdf
adds PDF), and .scaling-manifest.json (the files written: a re-run replaces those and never touches other files).

figures: --style paper draws each figure 3.5 inches wide (a journal column) with no text under 7 pt,
panels stacked and legends below; SVG and PDF keep their text as text (editable, searchable).

example:
  scaling moore --models notable_ai_models.csv --hardware ml_hardware.csv \\
      --transistors microprocessor_trend_data.csv --allow-extrapolation --out runs/moore
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "moore", help="Moore's law for LLMs: compute/hardware trends -> projected loss per year",
        description="Moore's law for LLMs: fit doubling times of training compute, accelerator FLOP/s (per dollar) "
                    "and transistor counts; run compute scenarios through a compute-optimal frontier; write "
                    "figures, moore.json and a short summary (Markdown and HTML) to OUT_DIR.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", metavar="CSV", help="Epoch AI notable-models CSV")
    parser.add_argument("--hardware", metavar="CSV", help="Epoch AI ML-hardware CSV")
    parser.add_argument("--transistors", metavar="CSV", help="Rupp microprocessor trend data (CSV or .dat)")
    parser.add_argument("--fit", metavar="FIT.json", help="frontier fit with E, A, B, alpha, beta (default: Epoch refit)")
    parser.add_argument("--out", metavar="OUT_DIR", required=True, help="output directory (new, empty, or an earlier OUT_DIR)")
    parser.add_argument("--bootstrap", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--anchor-year", type=int, default=2025, metavar="YEAR",
                        help="year where every scenario starts from the frontier-LM compute trend (default 2025)")
    parser.add_argument("--until", type=int, default=2035, metavar="YEAR", help="last projected year (default 2035)")
    parser.add_argument("--max-extrapolation", type=float, default=100.0, metavar="X",
                        help="largest factor beyond the frontier fit's C range allowed without the flag (default 100)")
    parser.add_argument("--allow-extrapolation", action="store_true",
                        help="run beyond --max-extrapolation, stamping every frontier-dependent output")
    algorithmic = parser.add_mutually_exclusive_group()
    algorithmic.add_argument("--algorithmic", metavar="CSV",
                             help="fit algorithmic progress to (date, compute to reach a fixed performance) rows")
    algorithmic.add_argument("--algorithmic-halving-months", type=float, metavar="X",
                             help="algorithmic progress set by hand (default: 8 months, 95%% CI 5-14, Ho et al. 2024)")
    parser.add_argument("--algorithmic-columns", nargs="+", metavar="ROLE=COL",
                        help="column names in --algorithmic: date=COL compute=COL")
    parser.add_argument("--data-stock-tokens", type=float, default=3e14, metavar="TOKENS",
                        help="stock of public text (default 3e14, Villalobos et al. 2024)")
    parser.add_argument("--max-feasible-compute", type=float, default=2e29, metavar="FLOP",
                        help="largest training run feasible by 2030 (default 2e29, Sevilla et al. 2024)")
    parser.add_argument("--format", default="png,svg", metavar="FORMATS",
                        help="figure files, comma-separated from png, svg, pdf (default png,svg; "
                             "PNG always, for the summary); SVG and PDF keep their text as editable text")
    parser.add_argument("--style", choices=("screen", "paper"), default="screen",
                        help="figures for the screen (default), or for paper: 3.5 inches wide for a journal "
                             "column, no text under 7 pt, panels stacked")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import analysis

    result = analysis.moore(
        out=args.out, models=args.models, hardware=args.hardware, transistors=args.transistors, fit=args.fit,
        bootstrap=args.bootstrap, seed=args.seed, anchor_year=args.anchor_year, until=args.until,
        max_extrapolation=args.max_extrapolation, allow_extrapolation=args.allow_extrapolation,
        algorithmic=args.algorithmic, algorithmic_halving_months=args.algorithmic_halving_months,
        algorithmic_columns=args.algorithmic_columns, data_stock_tokens=args.data_stock_tokens,
        max_feasible_compute=args.max_feasible_compute, format=args.format, style=args.style)
    for warning in result.warnings:  # a file that supports no trend for a series must not pass for data
        print(f"warning: {warning}", file=sys.stderr)
    print(result)
    formats = dict.fromkeys(name.rsplit(".", 1)[-1].upper() for name in result.summary["figures"])
    print(f"outputs: {Path(args.out).resolve()} (moore.json, summary.md, summary.html, {len(result.figures)} figures "
          f"as {', '.join(formats)})")
    return 0
