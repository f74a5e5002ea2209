"""Algorithmic progress: how fast the compute needed to reach a fixed performance halves.

Three sources, one shape (`AlgorithmicProgress`, whose `trend` is the growth of the *effective-compute
multiplier* 2^(t / tau), so its slope is 12 / tau doublings per year and its bootstrap replicates carry the
interval into every result that uses it):
- the default: Ho et al. 2024 (arXiv:2403.05812), tau = 8 months, 95% CI 5-14, drawn split log-normal
  (each side matching its end of the interval);
- `--algorithmic-halving-months X`: tau set by hand, no interval (stated as such);
- `--algorithmic CSV`: a table of (date, compute needed to reach one fixed performance), fitted as a
  log-linear trend of 1 / compute on the decimal year with the row bootstrap of `doubling.fit_trend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.trends.doubling import Trend, fit_trend, published_trend
from analysis.trends.loaders import decimal_year, parse_dates
from analysis.trends.published import PUBLISHED, months_from_growth
from scaling.errors import ConfigError, DataError

HO_2024 = PUBLISHED["algorithmic_halving"]
COLUMN_ROLES = ("date", "compute")

# Faster published estimates, for the sensitivity line (months for the compute at fixed performance to halve).
FASTER_ESTIMATES = (
    (HO_2024.ci[0], "the fast end of Ho et al. 2024's 95% interval"),
    (months_from_growth(4.0), "about 4x per year, Amodei 2025, 'On DeepSeek and Export Controls' (an informal "
                              "estimate of today's rate)"),
)


@dataclass(frozen=True)
class AlgorithmicProgress:
    halving_months: float
    ci: tuple[float, float] | None  # 95%; None when set by hand
    source: str  # "published" | "fit" | "set by hand"
    description: str
    trend: Trend  # growth of the effective-compute multiplier, doublings per year

    def as_dict(self) -> dict:
        return {"halving_months": self.halving_months, "halving_months_ci": list(self.ci) if self.ci else None,
                "source": self.source, "description": self.description}


def default(n_boot: int = 1000, seed: int = 0) -> AlgorithmicProgress:
    trend = published_trend("algorithmic_halving", HO_2024.months, HO_2024.what, HO_2024.ci, n_boot, seed)
    return AlgorithmicProgress(HO_2024.months, HO_2024.ci, "published",
                               f"{HO_2024.what} ({HO_2024.citation}); replicates split log-normal on its 95% CI",
                               trend)


def by_hand(months: float, n_boot: int = 1000) -> AlgorithmicProgress:
    if not (np.isfinite(months) and months > 0):
        raise ConfigError(f"--algorithmic-halving-months {months} must be a positive number of months "
                          f"(default {HO_2024.months:g}, Ho et al. 2024)")
    trend = published_trend("algorithmic_halving", months, "set by hand", None, n_boot)
    return AlgorithmicProgress(float(months), None, "set by hand",
                               f"compute for a fixed performance halves every {months:g} months "
                               "(--algorithmic-halving-months; no interval)", trend)


def parse_columns(pairs: list[str] | None) -> dict[str, str]:
    """`date=COL compute=COL` -> {"date": COL, "compute": COL}; the roles default to their own names."""
    columns = {role: role for role in COLUMN_ROLES}
    for pair in pairs or []:
        role, sep, name = pair.partition("=")
        if not sep or role not in COLUMN_ROLES or not name:
            raise ConfigError(f"--algorithmic-columns {pair!r} is not ROLE=COLUMN with ROLE one of "
                              f"{', '.join(COLUMN_ROLES)}; e.g. --algorithmic-columns date=Date compute=FLOP")
        columns[role] = name
    return columns


def load_table(path: str | Path, columns: dict[str, str]) -> pd.DataFrame:
    """The (year, compute) rows of an algorithmic-progress CSV; unusable rows dropped, too few an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--algorithmic file not found: {path}; pass a CSV of (date, compute to reach a fixed "
                        "performance)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read --algorithmic CSV {path}: {str(err).splitlines()[0]}") from None
    missing = [f"{role}={name!r}" for role, name in columns.items() if name not in frame.columns]
    if missing:
        raise DataError(f"--algorithmic CSV {path} lacks column(s) {', '.join(missing)} (it has "
                        f"{', '.join(map(str, frame.columns))}); name them with --algorithmic-columns date=COL "
                        "compute=COL")
    year = _years(frame[columns["date"]], path)
    compute = pd.to_numeric(frame[columns["compute"]], errors="coerce")
    rows = pd.DataFrame({"year": year, "compute": compute.where(compute > 0)}).dropna()
    if len(rows) < 3 or rows["year"].nunique() < 2:
        raise DataError(f"--algorithmic CSV {path} has {len(rows)} usable row(s) (a date and a positive compute); "
                        "a halving time needs at least 3 at 2 or more dates")
    return rows.reset_index(drop=True)


def _years(raw: pd.Series, path: Path) -> pd.Series:
    """Decimal years when every non-empty value is a number, else dates parsed leniently."""
    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().sum() < raw.notna().sum():
        return decimal_year(parse_dates(raw))
    if not numeric.dropna().between(1900, 2200).all():
        raise DataError(f"--algorithmic CSV {path}: date column {raw.name!r} holds numbers outside 1900-2200; "
                        "give decimal years (2021.5) or dates (2021-07-01)")
    return numeric


def from_table(rows: pd.DataFrame, n_boot: int = 1000, seed: int = 0, where: str = "") -> AlgorithmicProgress:
    """Fit log2(1 / compute) on the year: its doubling time is the compute's halving time."""
    trend = fit_trend(rows["year"], 1.0 / rows["compute"], "algorithmic_halving",
                      f"compute to reach a fixed performance, {where}", n_boot, seed)
    if not trend.slope > 0:
        raise DataError(f"--algorithmic CSV {where}: the compute needed grows over time (no halving); check the "
                        "compute column is the compute needed to reach one fixed performance")
    return AlgorithmicProgress(trend.doubling_months, trend.ci_months(), "fit",
                               f"fitted to {trend.n} rows of {where} ({trend.year_min:.1f}-{trend.year_max:.1f})",
                               trend)


def sensitivity(progress: AlgorithmicProgress, compute_doubling_months: float) -> list[dict]:
    """Effective-compute doubling time (months) if algorithms moved at a faster published rate instead."""
    rows = []
    for months, what in FASTER_ESTIMATES:
        if months < progress.halving_months:
            rows.append({"algorithmic_halving_months": months, "source": what,
                         "effective_compute_doubling_months": 1.0 / (1.0 / compute_doubling_months + 1.0 / months)})
    return rows
