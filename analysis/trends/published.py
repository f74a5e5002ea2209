"""Published doubling (or halving) times that our fits are compared against, in months, with citations.

`ci` is the published 95% interval where the source gives one; for Epoch's "4-5x per year" it is the
stated range converted to months. These values also stand in for a fit when the matching data file is
not given, and are then labelled `source: "published"` in moore.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def months_from_growth(factor_per_year: float) -> float:
    """Doubling time in months of something that grows `factor_per_year` each year."""
    return 12.0 * math.log(2.0) / math.log(factor_per_year)


@dataclass(frozen=True)
class Published:
    months: float
    ci: tuple[float, float] | None
    what: str
    citation: str


PUBLISHED: dict[str, Published] = {
    "notable_compute": Published(
        months_from_growth(4.5), (months_from_growth(5.0), months_from_growth(4.0)),
        "training compute of notable models since 2010, 4-5x per year",
        "Sevilla & Roldan 2024, Training compute of frontier AI models grows by 4-5x per year, Epoch AI"),
    "frontier_lm_compute": Published(
        months_from_growth(5.0), None,
        "training compute of frontier language models since mid-2020, about 5x per year",
        "Sevilla & Roldan 2024, Training compute of frontier AI models grows by 4-5x per year, Epoch AI"),
    # Hardware: one comparator per number format, never a mixture (FP8 has no published trend yet).
    "hardware_flops": Published(
        2.3 * 12, None,
        "peak FP32 FLOP/s of ML accelerators (47 chips, 2010-2023), doubling every 2.3 years",
        "Hobbhahn, Heim & Aydos 2023, Trends in Machine Learning Hardware, Epoch AI"),
    "hardware_flops_per_dollar": Published(
        2.46 * 12, (2.24 * 12, 2.72 * 12),
        "GPU FP32 FLOP/s per dollar (470 GPUs, 2006-2021), doubling every 2.46 years",
        "Hobbhahn & Besiroglu 2022, Trends in GPU price-performance, Epoch AI (Table 1)"),
    "hardware_flops_tensor16": Published(
        2.7 * 12, None,
        "16-bit FLOP/s of ML hardware, +29% per year, doubling every 2.7 years",
        "Epoch AI 2025, Machine Learning Hardware (data hub, updated 2025-01-16), "
        "epoch.ai/data/machine-learning-hardware"),
    "hardware_flops_per_dollar_tensor16": Published(
        months_from_growth(1.30), None,
        "ML-hardware FLOP/s per dollar at a fixed number format, about +30% per year",
        "Epoch AI 2025, Machine Learning Hardware (data hub, updated 2025-01-16), "
        "epoch.ai/data/machine-learning-hardware"),
    "transistors": Published(
        24.0, None,
        "transistors per chip, doubling every two years",
        "Moore 1975, Progress in digital integrated electronics, IEDM"),
    "algorithmic_halving": Published(
        8.0, (5.0, 14.0),
        "compute needed to reach a fixed language-model perplexity, halving every 8 months",
        "Ho et al. 2024, Algorithmic progress in language models, arXiv:2403.05812"),
}
