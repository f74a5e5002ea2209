"""The flags that say how to read a table of runs, shared by `scaling fit`, `backtest`, `report` and
`predict`, and their parsers. Defined once here; each command adds the ones it takes. No heavy import at
module level: `scaling --help` builds every parser."""

from __future__ import annotations

import math

from scaling import accounting
from scaling.errors import ConfigError

# The conventions come from scaling.accounting (no numpy); BEST_OF is analysis.loading's, spelled out because
# analysis.loading imports numpy and `scaling --help` must not. tests/test_scaling_cli_tables.py checks that
# the loader takes exactly these.
N_CONVENTIONS = tuple(accounting.N_CONVENTIONS)
FLOP_FORMULAS = tuple(accounting.FLOPS_COLUMNS)  # the --flops names
BEST_OF = ("lr", "none")
COLUMN_NAMES = ("N", "D", "C", "loss", "run_id", "budget")


def add_columns_argument(p, help: str) -> None:
    p.add_argument("--columns", action="extend", nargs="+", default=[], metavar="NAME=COLUMN", help=help)


def add_n_convention_argument(p, default: str | None = "total", help: str | None = None) -> None:
    p.add_argument("--n-convention", choices=N_CONVENTIONS, default=default, help=help)


def add_flops_argument(p, help: str) -> None:
    p.add_argument("--flops", choices=FLOP_FORMULAS, default=None, help=help)


def add_bootstrap_argument(p, default: int, help: str) -> None:
    p.add_argument("--bootstrap", type=int, default=default, metavar="B", help=help)


def add_table_arguments(p) -> None:
    """The flags that say how to read a table of runs (shared by fit, backtest and report)."""
    add_columns_argument(p, 'map N, D, C, loss, run_id, budget to the table\'s columns, e.g. '
                            '--columns N="Model Size" C="Training FLOP" (or comma-separated)')
    add_n_convention_argument(p)
    add_flops_argument(p, "which recorded FLOP formula is C (sweep results; default exact)")
    p.add_argument("--drop-invalid", action="store_true",
                   help="drop rows with non-finite or non-positive values instead of stopping")
    p.add_argument("--final-only", action="store_true", help="keep only the last row of each run_id")
    p.add_argument("--loss-label", default=None, metavar="TEXT",
                   help="what the loss column is, for tables and figures (default: the mapped column's name; "
                        "sweep results: final validation loss)")
    p.add_argument("--best-of", choices=BEST_OF, default=None,
                   help="rows with an lr column: 'lr' (the default when some (N, D) point has several lrs) keeps "
                        "the lowest-loss lr per point, seeds averaged first (the tuned setting); 'none' keeps every "
                        "row, untuned lrs and seeds included")


def load_table(args, **options):
    """The runs in `args.input`, read as the table flags say; `options` go on to analysis.loading.load_runs."""
    from analysis.loading import load_runs

    return load_runs(args.input, columns=parse_columns(args.columns), n_convention=args.n_convention,
                     flops=args.flops, final_only=args.final_only, drop_invalid=args.drop_invalid, **options)


def parse_columns(items: list[str]) -> dict[str, str] | None:
    """--columns N="Model Size",C="Training FLOP" (repeatable) -> {"N": "Model Size", ...}."""
    mapping = {}
    for item in items:
        for pair in item.split(","):
            if not pair.strip():
                continue
            name, sep, column = pair.partition("=")
            name, column = name.strip(), column.strip().strip("\"'")
            if not sep or not name or not column:
                raise ConfigError(f"--columns {pair!r}: expected NAME=COLUMN, e.g. N=\"Model Size\"")
            if name not in COLUMN_NAMES:
                raise ConfigError(f"--columns {pair!r}: NAME must be one of {', '.join(COLUMN_NAMES)}")
            mapping[name] = column
    return mapping or None


def parse_floats(text: str | None, flag: str) -> list[float] | None:
    """'1e19,1e20' -> [1e19, 1e20] for a flag of positive numbers (None when the flag was not given)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 1e19,1e20") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"{flag} {text!r}: expected positive numbers, e.g. 1e19,1e20")
    return values
