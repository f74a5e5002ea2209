"""Doubling times from log-linear least squares, with bootstrap intervals, and the fit windows we use.

Model: log2 y_i = c + s·(t_i - t_ref) + noise, fitted by ordinary least squares on the decimal release year
t. The doubling time is 1/s years (12/s months); growth per year is 2^s. Intervals: resample the rows
(models, chips or processors) with replacement, refit, and take percentiles of the slope; the doubling-time
interval is the slope interval inverted (a slope interval reaching zero or below gives an infinite upper
doubling time). Each point counts once: no weighting by confidence or by anything else.

Fit windows and series (what each headline number means):
- notable_compute: Epoch's notable models (every row of the notable-models download; in the full AI Models
  database, the rows with a notability criterion) with a training compute, published on or after 2010-01-01.
- frontier_lm_compute: the same file's frontier models (Epoch: in the top 10 by training compute when
  released; the `Frontier model` flag, or `Compute rank when published` <= 10 in the full database) whose
  domain includes Language, published on or after 2020-07-01 ("mid-2020"). The start date matters: starting
  in 2020-01 brings in GPT-3 and lowers the growth from about 4.8x to 4.4x per year (an alternative below).
  Without a models file, the built-in table of frontier LMs (frontier_models.py: the same rows, built in)
  is fitted over the same window.
- hardware_flops / hardware_flops_per_dollar: peak dense FP32 FLOP/s of every accelerator in Epoch's
  ML-hardware file, all years, and the same divided by launch price in US dollars (chips with a listed
  price). FP32 is the one format reported across the whole period. The same pair is fitted per number
  format, like for like: `_tensor16` (tensor FP16/BF16, from 2017) and `_fp8` (from 2022), each only where
  at least MIN_FORMAT_CHIPS chips have the figure (FP8 prices are too few: no FP8-per-dollar series). No
  series takes the fastest format per chip: that would turn the arrival of tensor cores into a per-chip
  trend. Each series has its own format's published comparator in published.py.
- transistors: Rupp's transistors per microprocessor, all years (1971-2021).

Definition sensitivity (`Trend.alternatives`, `Trend.band`): the bootstrap says how well the data pin
down one definition's slope, not how much the answer depends on the definition. So the compute and
hardware series are refitted (point estimates, no bootstrap) under reasonable alternatives: another window
start (ALTERNATIVE_SINCE), only the rows in the top N at release (TOP_N: rank by the fitted quantity among
everything released up to that date; Epoch's `Compute rank when published` where the file gives it), and a
Theil-Sen line (median of pairwise slopes, robust to outliers). `band` is the range of the main estimate
and its alternatives, shown beside the bootstrap interval.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from scaling.errors import DataError

NOTABLE_SINCE = "2010-01-01"
FRONTIER_LM_SINCE = "2020-07-01"
CI_LEVEL = 0.95
MIN_FORMAT_CHIPS = 10  # a number format other than FP32 gets its own hardware series from this many chips on
# Definition sensitivity (see the module docstring): alternative window starts and the top-N cut per series.
ALTERNATIVE_SINCE = {"notable_compute": ("2012-01-01", "2015-01-01"),
                     "frontier_lm_compute": ("2020-01-01", "2022-01-01"),
                     "fp32": ("2016-01-01",), "tensor_fp16": ("2020-01-01",), "fp8": ()}
TOP_N = {"notable_compute": 10, "frontier_lm_compute": 5, "hardware": 5}


@dataclass(frozen=True)
class Trend:
    """An exponential trend y = 2^(level + slope·(t - t_ref)), slope in doublings per year."""

    name: str
    definition: str
    slope: float
    level: float  # log2 of the fitted value at t_ref
    t_ref: float
    n: int
    year_min: float
    year_max: float
    boot_slopes: np.ndarray = field(repr=False)
    boot_levels: np.ndarray = field(repr=False)
    source: str = "fit"  # "fit"; "builtin" (fitted to the built-in table); "published" (no data given)
    points_year: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # the fitted data
    points_log2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    alternatives: dict[str, float] = field(default_factory=dict)  # alternative definition -> doubling months
    band: tuple[float, float] | None = None  # (min, max) doubling months over the main fit and alternatives

    @property
    def doubling_months(self) -> float:
        return 12.0 / self.slope if self.slope > 0 else float("inf")

    @property
    def growth_per_year(self) -> float:
        return float(2.0 ** self.slope)

    def ci_months(self, level: float = CI_LEVEL) -> tuple[float, float]:
        return tuple(doubling_time(self.slope, self.boot_slopes, 12.0, level)[1])

    def predict(self, year) -> np.ndarray:
        return 2.0 ** (self.level + self.slope * (np.asarray(year, dtype=float) - self.t_ref))


def slope_interval(slopes: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    finite = slopes[np.isfinite(slopes)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def doubling_time(rate: float, rates_B: np.ndarray, unit: float = 1.0,
                  level: float = CI_LEVEL) -> tuple[float, list[float]]:
    """unit / rate: the time to double (or, for a shrinking quantity, halve) at `rate` doublings per time,
    in units of 1/unit of it (unit 12: months at doublings per year), with the percentile interval of the
    replicates' rates inverted; infinite for a rate <= 0."""
    lo, hi = slope_interval(rates_B, level)
    def invert(r):
        return unit / r if r > 0 else float("inf")
    return invert(rate), [invert(hi), invert(lo)]


def fit_trend(year, value, name: str = "", definition: str = "", n_boot: int = 1000, seed: int = 0) -> Trend:
    """Least-squares fit of log2(value) on year, with `n_boot` row-resampling bootstrap replicates."""
    t, y = _usable(year, value)
    if t.size < 3 or np.ptp(t) == 0:
        raise DataError(f"trend '{name}' has {t.size} usable point(s) over {np.ptp(t) if t.size else 0:.2f} "
                        f"years; it needs at least 3 dated, positive values at different dates")
    t_ref = float(t.mean())
    slope, level = _ols(t - t_ref, y)
    rng = np.random.default_rng(seed)
    idx_BxN = rng.integers(0, t.size, size=(n_boot, t.size))
    boot_slopes, boot_levels = _ols_rows(t[idx_BxN] - t_ref, y[idx_BxN])
    return Trend(name, definition, float(slope), float(level), t_ref, int(t.size), float(t.min()),
                 float(t.max()), boot_slopes, boot_levels, "fit", t, y)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slopes, levels = _ols_rows(x[None, :], y[None, :])
    return slopes[0], levels[0]


def _ols_rows(x_BxN: np.ndarray, y_BxN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row OLS; returns slope and the fitted value at x = 0. Degenerate rows (one distinct x) -> NaN."""
    xm_B = x_BxN.mean(axis=1, keepdims=True)
    ym_B = y_BxN.mean(axis=1, keepdims=True)
    sxx_B = ((x_BxN - xm_B) ** 2).sum(axis=1)
    sxy_B = ((x_BxN - xm_B) * (y_BxN - ym_B)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope_B = np.where(sxx_B > 0, sxy_B / sxx_B, np.nan)
    level_B = ym_B[:, 0] - slope_B * xm_B[:, 0]
    return slope_B, level_B


def published_trend(name: str, months: float, definition: str, ci: tuple[float, float] | None = None,
                    n_boot: int = 1000, seed: int = 0) -> Trend:
    """A stand-in trend at a published doubling time. Its replicates are split log-normal around `months`:
    each side's sigma puts 1.96 sigma of the log at its own end of the published 95% interval (if any), so the
    replicates reproduce an asymmetric interval (Ho et al.'s 5-14 months around 8) and intervals propagate
    like fitted ones."""
    z = np.random.default_rng(seed).standard_normal(n_boot)
    if ci:
        sigma_lo = max(np.log(months) - np.log(ci[0]), 0.0) / 1.96
        sigma_hi = max(np.log(ci[1]) - np.log(months), 0.0) / 1.96
        months_B = months * np.exp(np.where(z < 0, sigma_lo, sigma_hi) * z)
    else:
        months_B = np.full(n_boot, float(months))
    return Trend(name, definition, 12.0 / months, 0.0, 0.0, 0, float("nan"), float("nan"),
                 12.0 / months_B, np.zeros(n_boot), source="published")


# --- definition sensitivity (see the module docstring) ---

def point_doubling_months(year, value) -> float | None:
    """Least-squares doubling time without a bootstrap; None when fewer than 3 points at different dates."""
    t, y = _usable(year, value)
    if t.size < 3 or np.ptp(t) == 0:
        return None
    slope, _ = _ols(t - t.mean(), y)
    return 12.0 / float(slope) if slope > 0 else float("inf")


def theil_sen_doubling_months(year, value) -> float | None:
    """Doubling time from the Theil-Sen slope (median of the pairwise slopes of log2 value on year)."""
    t, y = _usable(year, value)
    if t.size < 3 or np.ptp(t) == 0:
        return None
    slope = float(stats.theilslopes(y, t).slope)
    return 12.0 / slope if slope > 0 else float("inf")


def rank_at_release(dates: pd.Series, values: pd.Series) -> pd.Series:
    """1 + the number of rows released on or before each row's date with a larger value (NaN value -> NaN):
    the rank by that value when released, among the rows given."""
    d = dates.to_numpy(dtype="datetime64[ns]")
    v = values.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        beaten_NxN = (d[None, :] <= d[:, None]) & (v[None, :] > v[:, None])
    return pd.Series(np.where(np.isfinite(v), 1.0 + beaten_NxN.sum(axis=1), np.nan), index=values.index)


def alternative_months(pool: pd.DataFrame, value: pd.Series, rank: pd.Series, main: pd.Series,
                       since: tuple[str, ...], top_n: int) -> dict[str, float]:
    """Doubling months of `value` under each alternative definition; `main` marks the main fit's rows in
    `pool`. An alternative with too few points, or the same rows as the main fit, is left out."""
    subsets = {f"since {start[:7]}": pool["date"] >= pd.Timestamp(start) for start in since}
    subsets[f"top-{top_n} at release"] = main & (rank <= top_n)
    out = {}
    for label, rows in subsets.items():
        if not rows.equals(main):
            months = point_doubling_months(pool.loc[rows, "year"], value[rows])
            if months is not None:
                out[label] = months
    theil_sen = theil_sen_doubling_months(pool.loc[main, "year"], value[main])
    if theil_sen is not None:
        out["Theil-Sen"] = theil_sen
    return out


def with_alternatives(trend: Trend, alternatives: dict[str, float]) -> Trend:
    months = [trend.doubling_months, *alternatives.values()]
    return dataclasses.replace(trend, alternatives=dict(alternatives), band=(float(min(months)), float(max(months))))


def _usable(year, value) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(year, dtype=float)
    y = np.asarray(value, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y) & (y > 0)
    return t[keep], np.log2(y[keep])


# --- the series and windows (see the module docstring) ---

def _since(frame: pd.DataFrame, date: str) -> pd.Series:
    return frame["date"] >= pd.Timestamp(date)


def _model_ranks(models: pd.DataFrame) -> pd.Series:
    """Epoch's rank when the file gives it (the full database), else the rank within the file."""
    if "compute_rank" in models and models["compute_rank"].notna().any():
        return models["compute_rank"]
    return rank_at_release(models["date"], models["compute"])


def _fit_with_alternatives(pool: pd.DataFrame, value: pd.Series, rank: pd.Series, main: pd.Series, key: str,
                           definition: str, since: tuple[str, ...], top_n: int, n_boot: int, seed: int) -> Trend:
    trend = fit_trend(pool.loc[main, "year"], value[main], key, definition, n_boot, seed)
    return with_alternatives(trend, alternative_months(pool, value, rank, main, since, top_n))


def notable_compute_trend(models: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                          since: str = NOTABLE_SINCE) -> Trend:
    key = "notable_compute"
    rank = _model_ranks(models)
    pool = models[models["notable"]] if "notable" in models else models
    return _fit_with_alternatives(pool, pool["compute"], rank[pool.index], _since(pool, since), key,
                                  f"training compute (FLOP) of Epoch notable models published since {since}",
                                  ALTERNATIVE_SINCE[key], TOP_N[key], n_boot, seed)


def frontier_lm_rows(models: pd.DataFrame, since: str = FRONTIER_LM_SINCE) -> pd.DataFrame:
    return models[models["frontier"] & models["language"] & _since(models, since)]


def frontier_lm_compute_trend(models: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                              since: str = FRONTIER_LM_SINCE, builtin: bool = False) -> Trend:
    key = "frontier_lm_compute"
    definition = (f"training compute (FLOP) of the built-in table of frontier language models (top 10 by "
                  f"training compute when published, Epoch AI's estimates for closed models) since {since}"
                  if builtin else
                  f"training compute (FLOP) of Epoch frontier models (top 10 by training compute when published) "
                  f"with a Language domain since {since}")
    rank = _model_ranks(models)
    pool = models[models["frontier"] & models["language"]]
    trend = _fit_with_alternatives(pool, pool["compute"], rank[pool.index], _since(pool, since), key, definition,
                                   ALTERNATIVE_SINCE[key], TOP_N[key], n_boot, seed)
    return dataclasses.replace(trend, source="builtin") if builtin else trend


FORMAT_LABELS = {"fp32": ("", "FP32"), "tensor_fp16": ("_tensor16", "tensor FP16/BF16"), "fp8": ("_fp8", "FP8")}


def hardware_series(hardware: pd.DataFrame) -> dict[str, tuple[str, pd.Series, str]]:
    """key -> (format column, value, definition) for each format and for FLOP/s and FLOP/s per dollar."""
    series = {}
    for column, (suffix, label) in FORMAT_LABELS.items():
        if column not in hardware:
            continue
        flops = hardware[column]
        series[f"hardware_flops{suffix}"] = (column, flops, f"peak dense {label} FLOP/s per accelerator")
        series[f"hardware_flops_per_dollar{suffix}"] = (
            column, flops / hardware["price_usd"], f"peak dense {label} FLOP/s per launch-price US dollar")
    return series


def hardware_trends(hardware: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, Trend]:
    """Every hardware series the file supports. A format other than FP32 needs MIN_FORMAT_CHIPS chips; an
    FP32 series the file cannot fit (say, no prices) is left out, and `fit_all` then stands in the
    published rate, marked as such."""
    trends = {}
    for key, (column, value, definition) in hardware_series(hardware).items():
        usable = value.notna() & (value > 0)
        if column != "fp32" and usable.sum() < MIN_FORMAT_CHIPS:
            continue
        pool = hardware[usable]
        rank = rank_at_release(pool["date"], value[usable])
        main = pd.Series(True, index=pool.index)
        try:
            trends[key] = _fit_with_alternatives(pool, value[usable], rank, main, key, definition,
                                                 ALTERNATIVE_SINCE[column], TOP_N["hardware"], n_boot, seed)
        except DataError:
            continue
    return trends


def transistor_trend(transistors: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> Trend:
    return fit_trend(transistors["year"], transistors["transistors"], "transistors",
                     "transistors per microprocessor (Rupp)", n_boot, seed)


def fit_all(models: pd.DataFrame | None = None, hardware: pd.DataFrame | None = None,
            transistors: pd.DataFrame | None = None, n_boot: int = 1000, seed: int = 0) -> dict[str, Trend]:
    """Every headline series; a series whose file is absent stands in at its published rate."""
    from analysis.trends.frontier_models import frontier_table
    from analysis.trends.published import PUBLISHED

    trends: dict[str, Trend] = {}
    if models is not None:
        trends["notable_compute"] = notable_compute_trend(models, n_boot, seed)
        trends["frontier_lm_compute"] = frontier_lm_compute_trend(models, n_boot, seed + 1)
    else:
        trends["frontier_lm_compute"] = frontier_lm_compute_trend(frontier_table(), n_boot, seed + 1, builtin=True)
    if hardware is not None:
        trends.update(hardware_trends(hardware, n_boot, seed + 2))
    if transistors is not None:
        trends["transistors"] = transistor_trend(transistors, n_boot, seed + 3)
    for key in ("notable_compute", "hardware_flops", "hardware_flops_per_dollar", "transistors"):
        if key not in trends:
            ref = PUBLISHED[key]
            trends[key] = published_trend(key, ref.months, ref.what, ref.ci, n_boot, seed + 4)
    return trends
