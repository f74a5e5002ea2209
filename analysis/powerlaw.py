"""Power laws y = k x^p fitted by (weighted) least squares in log-log space."""

from __future__ import annotations

import numpy as np

from scaling.errors import DataError


def fit_power_law(x, y, weights=None, what: str = "power law") -> tuple[float, float]:
    """(k, p) for y = k x^p, by least squares on log y = log k + p log x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    keep = (w > 0) & (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if len(np.unique(x[keep])) < 2:
        raise DataError(f"{what}: a power law needs at least 2 distinct points, got {len(np.unique(x[keep]))}")
    p, logk = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1, w=np.sqrt(w[keep]))
    with np.errstate(over="ignore"):  # a wild bootstrap replicate may overflow k; it shows as inf
        return float(np.exp(logk)), float(p)
