"""How far the synthesis pushes a loss frontier beyond the data it was fitted on, and the guard.

The factor at a value x for a fitted span [lo, hi] is max(x / hi, lo / x, 1): 1 inside the span, 100 two
orders of magnitude outside it. The synthesis's factor is the largest over every compute at which it
evaluates the frontier (the frontier models' C = 6ND, each projected year's effective compute). Beyond
`max_factor` (100 by default) `scaling moore` refuses unless `--allow-extrapolation`, which then stamps every
frontier-dependent number, sentence and figure with `stamp`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaling.errors import ConfigError

DEFAULT_MAX_FACTOR = 100.0


def factor(values, span) -> np.ndarray:
    """Per-value extrapolation factor against [lo, hi]; NaN when the span is unknown."""
    values = np.asarray(values, dtype=float)
    if span is None:
        return np.full(values.shape, np.nan)
    lo, hi = span
    return np.maximum(np.maximum(values / hi, lo / values), 1.0)


@dataclass(frozen=True)
class Extrapolation:
    factor: float  # largest over the evaluated computes; NaN when the fit records no range
    at_compute: float  # the compute where it is largest (or the largest evaluated)
    fit_range_C: tuple[float, float] | None
    max_factor: float
    allowed: bool  # --allow-extrapolation given

    @property
    def orders(self) -> float:
        return math.log10(self.factor) if math.isfinite(self.factor) else float("nan")

    @property
    def beyond(self) -> bool:
        return not (self.factor <= self.max_factor)  # an unknown range counts as beyond

    @property
    def stamp(self) -> str:
        """The words every frontier-dependent output carries when run beyond the guard; '' within it."""
        return self.stamp_at(self.factor)

    def stamp_at(self, value: float) -> str:
        """The stamp for one output whose own largest factor is `value` ('' within the guard)."""
        if not self.beyond:
            return ""
        if not math.isfinite(value):
            return "extrapolated an unknown distance beyond the fit (it records no fit range)"
        return f"extrapolated {math.log10(max(value, 1.0)):.1f} orders of magnitude beyond the fit"

    def as_dict(self) -> dict:
        return {"factor": self.factor, "orders_of_magnitude": self.orders, "at_compute": self.at_compute,
                "fit_range_C": list(self.fit_range_C) if self.fit_range_C else None,
                "max_factor": self.max_factor, "allowed_by_flag": self.allowed, "beyond_guard": self.beyond,
                "stamp": self.stamp or None}


def assess(computes, fit_range: dict | None, max_factor: float = DEFAULT_MAX_FACTOR,
           allowed: bool = False) -> Extrapolation:
    """The synthesis's extrapolation over every compute it evaluates the frontier at."""
    computes = np.asarray(computes, dtype=float).ravel()
    computes = computes[np.isfinite(computes) & (computes > 0)]
    span = tuple(fit_range["C"]) if fit_range and "C" in fit_range else None
    per = factor(computes, span)
    i = int(np.nanargmax(per)) if np.isfinite(per).any() else int(np.argmax(computes))
    worst = float(per[i]) if np.isfinite(per[i]) else float("nan")
    return Extrapolation(worst, float(computes[i]), span, max_factor, allowed)


def check(extrapolation: Extrapolation, frontier_source: str) -> None:
    """Refuse, in one line naming the factor and the flag, a synthesis beyond the guard without the flag."""
    if not extrapolation.beyond or extrapolation.allowed:
        return
    x = extrapolation
    if not math.isfinite(x.factor):
        raise ConfigError(f"the frontier ({frontier_source}) records no fit range, so how far the synthesis "
                          f"extrapolates it (up to C = {x.at_compute:.2g} FLOPs) is unknown; add fit_range to it or "
                          "pass --allow-extrapolation to stamp every output as extrapolated")
    lo, hi = x.fit_range_C
    raise ConfigError(f"the synthesis evaluates the frontier at C = {x.at_compute:.2g} FLOPs, {x.factor:.2g}x "
                      f"({x.orders:.1f} orders of magnitude) beyond its fitted C range {lo:.2g}-{hi:.2g}, past the "
                      f"{x.max_factor:g}x limit (--max-extrapolation); pass --allow-extrapolation to run anyway with "
                      "every output stamped as extrapolated")
