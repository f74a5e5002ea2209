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
PNG+SVG figures trends_exponentials, doubling_forest, loss_by_year, frontier_models, and .scaling-manifest.json
(the files written: a re-run replaces those and never touches other files).

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
    parser.set_defaults(func=run)


HARDWARE_KEYS = ("hardware_flops", "hardware_flops_per_dollar")


def check_hardware_rows(hardware, path: str) -> None:
    """A hardware file too short for any trend is an error, not a silent fall-back to the published rate."""
    from scaling.errors import DataError

    dates = hardware["year"].nunique()
    if dates < 3:
        raise DataError(f"--hardware {path} has {len(hardware)} accelerator(s) at {dates} release date(s); a doubling "
                        "time needs at least 3 at different dates: pass Epoch's ml_hardware.csv, or leave --hardware "
                        "out to use the published rate")


def check_numbers(args: argparse.Namespace) -> None:
    from scaling.errors import ConfigError

    if args.bootstrap < 10:
        raise ConfigError(f"--bootstrap {args.bootstrap} is too few for a 95% interval; use at least 10 (default 2000)")
    if not args.anchor_year < args.until <= args.anchor_year + 100:
        raise ConfigError(f"--until {args.until} must be after --anchor-year {args.anchor_year} and within "
                          f"100 years of it")
    for flag, value in (("--max-extrapolation", args.max_extrapolation),
                        ("--data-stock-tokens", args.data_stock_tokens),
                        ("--max-feasible-compute", args.max_feasible_compute)):
        if not value > 0 or value == float("inf"):
            raise ConfigError(f"{flag} {value} must be a positive finite number")
    if args.max_extrapolation < 1:
        raise ConfigError(f"--max-extrapolation {args.max_extrapolation} must be at least 1 (1 = no extrapolation)")
    if args.algorithmic_columns and not args.algorithmic:
        raise ConfigError("--algorithmic-columns names columns of --algorithmic CSV; pass --algorithmic too")


def algorithmic_progress(args: argparse.Namespace):
    from analysis.trends import algorithmic

    if args.algorithmic:
        columns = algorithmic.parse_columns(args.algorithmic_columns)
        rows = algorithmic.load_table(args.algorithmic, columns)
        return algorithmic.from_table(rows, args.bootstrap, args.seed + 6, where=args.algorithmic)
    if args.algorithmic_halving_months is not None:
        return algorithmic.by_hand(args.algorithmic_halving_months, args.bootstrap)
    return None


def run(args: argparse.Namespace) -> int:
    check_numbers(args)
    out = Path(args.out)
    from scaling.io import atomic_write, check_output_dir, staged_directory, to_json

    check_output_dir(out, "scaling moore")  # before the bootstrap: a directory of the user's is refused at once

    from analysis.trends import figures, limits, loaders, summary, synthesis

    models = loaders.load_notable_models(args.models) if args.models else None
    hardware = loaders.load_hardware(args.hardware) if args.hardware else None
    if hardware is not None:
        check_hardware_rows(hardware, args.hardware)
    transistors = loaders.load_transistors(args.transistors) if args.transistors else None
    frontier = synthesis.load_frontier(args.fit) if args.fit else synthesis.EPOCH_CHINCHILLA
    options = summary.Options(
        n_boot=args.bootstrap, seed=args.seed, anchor_year=args.anchor_year, until=args.until,
        history_from=min(2020, args.anchor_year - 5), algorithms=algorithmic_progress(args),
        limits=limits.Limits(args.data_stock_tokens, args.max_feasible_compute),
        max_extrapolation=args.max_extrapolation, allow_extrapolation=args.allow_extrapolation)
    inputs = {"models": args.models, "hardware": args.hardware, "transistors": args.transistors,
              "fit": args.fit, "algorithmic": args.algorithmic, "bootstrap": args.bootstrap, "seed": args.seed,
              "allow_extrapolation": args.allow_extrapolation, "max_extrapolation": args.max_extrapolation}
    result, trends, projection, placed = summary.analyze(models, hardware, transistors, frontier, options, inputs)

    # Built beside OUT_DIR and moved in only when complete: a failure leaves OUT_DIR untouched. A re-run
    # replaces only the files listed in OUT_DIR/.scaling-manifest.json; files the user added stay.
    with staged_directory(out, "scaling moore") as staging:
        names = figures.write_all(staging, result, trends, projection, placed, frontier, args.anchor_year)
        result["figures"] = [f"{name}.{ext}" for name in names for ext in ("png", "svg")]
        text = summary.markdown(result, names)
        atomic_write(staging / "summary.md", text)
        atomic_write(staging / "summary.html", summary.html_page(text))
        atomic_write(staging / "moore.json", to_json(result) + "\n")

    for key in HARDWARE_KEYS:  # a file that supports no trend for a series must not pass for data
        if args.hardware and result["series"][key]["source"] == "published":
            print(f"warning: --hardware {args.hardware} gives no trend for {key} (it needs 3 or more accelerators "
                  f"with the figures at different dates); the published rate stands in", file=sys.stderr)
    for sentence in result["answers"]:
        print(f"- {sentence}")
    print(f"outputs: {out.resolve()} (moore.json, summary.md, summary.html, {len(names)} figures as PNG and SVG)")
    return 0
