"""Doubling times from log-linear least squares, with bootstrap intervals, and the fit windows we use.

Model: log2 y_i = c + s·(t_i - t_ref) + noise, fitted by ordinary least squares on the decimal release year
t. The doubling time is 1/s years (12/s months); growth per year is 2^s. Intervals: resample the rows
(models, chips or processors) with replacement, refit, and take percentiles of the slope; the doubling-time
interval is the slope interval inverted (a slope interval reaching zero or below gives an infinite upper
doubling time). Each point counts once: no weighting by confidence or by anything else.

Fit windows and series (what each headline number means):
- notable_compute: Epoch "Notable AI Models" with a training compute, published on or after 2010-01-01.
- frontier_lm_compute: the same file, rows flagged `Frontier model` (Epoch: in the top 10 by training
  compute when released) whose domain includes Language, published on or after 2020-07-01 ("mid-2020").
  The start date matters: moving it to 2020-05-01 brings in GPT-3 and lowers the growth from about 4.8x to
  4.5x per year. Without a models file, the built-in table of frontier LMs (frontier_models.py) is fitted.
- hardware_flops: peak dense FP32 FLOP/s of every accelerator in Epoch's ML-hardware file, all years.
  FP32 is the one format reported across the whole period, so format changes (tensor cores, FP16, FP8) do
  not masquerade as a per-chip trend; it is also the published metric. `hardware_flops_tensor16` (tensor
  FP16/BF16, from 2017) is reported beside it.
- hardware_flops_per_dollar: peak FLOP/s in the fastest float format of at least 16 bits a chip offers
  (tensor FP16/BF16, else FP16, TF32, FP32: what a buyer trains in) divided by launch price in US dollars,
  for chips with a listed price. This is the rate behind the "hardware only, constant spend" scenario.
  The FP32-per-dollar rate is reported beside it as `hardware_flops_per_dollar_fp32`; it is slower because
  data-centre parts are priced for their tensor throughput, not their FP32 throughput.
- transistors: Rupp's transistors per microprocessor, all years (1971-2021).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling.errors import DataError

NOTABLE_SINCE = "2010-01-01"
FRONTIER_LM_SINCE = "2020-07-01"
CI_LEVEL = 0.95


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

    @property
    def doubling_months(self) -> float:
        return 12.0 / self.slope if self.slope > 0 else float("inf")

    @property
    def growth_per_year(self) -> float:
        return float(2.0 ** self.slope)

    def ci_months(self, level: float = CI_LEVEL) -> tuple[float, float]:
        lo, hi = slope_interval(self.boot_slopes, level)
        return (12.0 / hi if hi > 0 else float("inf"), 12.0 / lo if lo > 0 else float("inf"))

    def predict(self, year) -> np.ndarray:
        return 2.0 ** (self.level + self.slope * (np.asarray(year, dtype=float) - self.t_ref))


def slope_interval(slopes: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    finite = slopes[np.isfinite(slopes)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def fit_trend(year, value, name: str = "", definition: str = "", n_boot: int = 1000, seed: int = 0) -> Trend:
    """Least-squares fit of log2(value) on year, with `n_boot` row-resampling bootstrap replicates."""
    t = np.asarray(year, dtype=float)
    y = np.asarray(value, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y) & (y > 0)
    t, y = t[keep], np.log2(y[keep])
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
    """A stand-in trend at a published doubling time. Its replicates are log-normal around `months` with the
    published 95% interval (if any) as +-1.96 sigma of the log, so intervals propagate like fitted ones."""
    sigma = (np.log(ci[1]) - np.log(ci[0])) / (2 * 1.96) if ci else 0.0
    months_B = months * np.exp(sigma * np.random.default_rng(seed).standard_normal(n_boot))
    return Trend(name, definition, 12.0 / months, 0.0, 0.0, 0, float("nan"), float("nan"),
                 12.0 / months_B, np.zeros(n_boot), source="published")


# --- the series and windows (see the module docstring) ---

def _since(frame: pd.DataFrame, date: str) -> pd.DataFrame:
    return frame[frame["date"] >= pd.Timestamp(date)]


def notable_compute_trend(models: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                          since: str = NOTABLE_SINCE) -> Trend:
    rows = _since(models, since)
    return fit_trend(rows["year"], rows["compute"], "notable_compute",
                     f"training compute (FLOP) of Epoch notable models published since {since}", n_boot, seed)


def frontier_lm_rows(models: pd.DataFrame, since: str = FRONTIER_LM_SINCE) -> pd.DataFrame:
    return _since(models[models["frontier"] & models["language"]], since)


def frontier_lm_compute_trend(models: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                              since: str = FRONTIER_LM_SINCE, builtin: bool = False) -> Trend:
    rows = models if builtin else frontier_lm_rows(models, since)
    definition = ("training compute (FLOP) of the built-in table of frontier language models (dense models with "
                  "published N and D; closed models such as GPT-4 are absent, so it understates the frontier)"
                  if builtin else
                  f"training compute (FLOP) of Epoch 'Frontier model' rows with a Language domain since {since}")
    trend = fit_trend(rows["year"], rows["compute"], "frontier_lm_compute", definition, n_boot, seed)
    return dataclasses.replace(trend, source="builtin") if builtin else trend


HARDWARE_SERIES = {
    "hardware_flops": ("fp32", None, "peak dense FP32 FLOP/s per accelerator"),
    "hardware_flops_tensor16": ("tensor_fp16", None, "peak dense tensor FP16/BF16 FLOP/s per accelerator"),
    "hardware_flops_per_dollar": ("training_flops", "price_usd",
                                  "peak FLOP/s in the fastest >=16-bit float format per launch-price USD"),
    "hardware_flops_per_dollar_fp32": ("fp32", "price_usd", "peak dense FP32 FLOP/s per launch-price USD"),
}


def hardware_trends(hardware: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, Trend]:
    """Every hardware series the file supports; one it cannot (say, no prices) is left out, and `fit_all`
    then stands in the published rate, marked as such."""
    trends = {}
    for key, (numerator, denominator, definition) in HARDWARE_SERIES.items():
        value = hardware[numerator] / (hardware[denominator] if denominator else 1.0)
        try:
            trends[key] = fit_trend(hardware["year"], value, key, definition, n_boot, seed)
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
