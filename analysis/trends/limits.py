"""Limits the exponential scenarios run into, and a saturating variant of each.

- The stock of public human-generated text: about 3e14 tokens (Villalobos et al. 2024, "Will we run out of
  data? Limits of LLM scaling based on human-generated data", ICML 2024, arXiv:2211.04325; 90% interval
  1e14-1e15). The compute-optimal D_opt passes it in the year `crossing_year` gives.
- The largest training run thought feasible by 2030: about 2e29 FLOP (Sevilla et al. 2024, "Can AI scaling
  continue through 2030?", Epoch AI; bound by power, chips, data and latency).

Both are overridable (`--data-stock-tokens`, `--max-feasible-compute`). The saturating variant holds
physical compute at the feasible maximum once reached and training tokens at the stock (the remaining
compute goes to a larger model); algorithmic progress still multiplies effective compute, and the loss
given away by training on fewer tokens than compute-optimal is added at physical compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DATA_STOCK_TOKENS = 3e14
DATA_STOCK_CITATION = ("Villalobos et al. 2024, Will we run out of data? Limits of LLM scaling based on "
                       "human-generated data, arXiv:2211.04325")
MAX_FEASIBLE_COMPUTE = 2e29
MAX_FEASIBLE_CITATION = "Sevilla et al. 2024, Can AI scaling continue through 2030?, Epoch AI"


@dataclass(frozen=True)
class Limits:
    data_stock_tokens: float = DATA_STOCK_TOKENS
    max_feasible_compute: float = MAX_FEASIBLE_COMPUTE

    def as_dict(self) -> dict:
        """The limits with their sources: the published citation only for the published value; an overridden
        limit is attributed to its flag, not to a paper that never gave that number."""
        def source(value, default, citation, flag):
            return citation if value == default else f"set by {flag} (published: {default:.0e}, {citation})"
        return {"data_stock_tokens": self.data_stock_tokens,
                "data_stock_citation": source(self.data_stock_tokens, DATA_STOCK_TOKENS, DATA_STOCK_CITATION,
                                              "--data-stock-tokens"),
                "max_feasible_compute": self.max_feasible_compute,
                "max_feasible_citation": source(self.max_feasible_compute, MAX_FEASIBLE_COMPUTE,
                                                MAX_FEASIBLE_CITATION, "--max-feasible-compute")}


def crossing_year(start_value: float, start_year: float, doublings_per_year: float, limit: float) -> float:
    """Year when start_value * 2^(s (t - start_year)) reaches `limit` (may precede start_year if already
    past it); infinite if it never grows there."""
    if start_value >= limit:
        if doublings_per_year <= 0:
            return start_year
        return start_year - math.log2(start_value / limit) / doublings_per_year
    if doublings_per_year <= 0:
        return float("inf")
    return start_year + math.log2(limit / start_value) / doublings_per_year


def crossings(frontier, compute_at_anchor: float, anchor_year: float, compute_slope: float, limits: Limits) -> dict:
    """When a scenario's physical compute passes the feasible maximum and its D_opt the stock of text."""
    d0 = float(frontier.d_opt(compute_at_anchor))
    return {"compute_passes_feasible_year": crossing_year(compute_at_anchor, anchor_year, compute_slope,
                                                          limits.max_feasible_compute),
            "d_opt_passes_data_stock_year": crossing_year(d0, anchor_year, frontier.b * compute_slope,
                                                          limits.data_stock_tokens)}


def saturating(frontier, compute, effective_compute, limits: Limits) -> dict[str, np.ndarray]:
    """Physical compute capped at the feasible maximum, tokens at the stock; the loss that follows."""
    compute = np.asarray(compute, dtype=float)
    multiplier = np.asarray(effective_compute, dtype=float) / compute  # algorithmic progress
    capped = np.minimum(compute, limits.max_feasible_compute)
    tokens = np.minimum(frontier.d_opt(capped), limits.data_stock_tokens)
    params = capped / (6.0 * tokens)
    data_penalty = frontier.loss(params, tokens) - frontier.loss_opt(capped)  # zero while D_opt fits the stock
    return {"compute_saturating": capped, "d_saturating": tokens,
            "loss_saturating": frontier.loss_opt(capped * multiplier) + data_penalty}
