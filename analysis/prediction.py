"""The loss a fit predicts for new runs at (N, D), with intervals, and how far each point lies beyond the data.

Two intervals per point, both percentiles over the fit's bootstrap replicates:
  * the fit interval: the replicates' L(N, D), i.e. the uncertainty of the fitted surface alone;
  * the prediction interval: each replicate's L(N, D) times exp(eps), eps ~ Normal(0, log_residual_sd),
    the run-to-run scatter of the fitted runs about the surface (`details["log_residual_sd"]`). A new run
    scatters like the old ones did, so this is the interval a new run's loss should fall in.
Extrapolation factor per quantity x in N, D, C = 6ND: max(x / hi, lo / x, 1) against the [lo, hi] the fit
saw (`fit_range`); 1 inside the data, 10 a decade beyond it.
"""

from __future__ import annotations

import dataclasses
import html
import math

import numpy as np

from analysis import frontier
from analysis.diagnostics import extrapolation_factor
from analysis.result import FitResult, _clean, _frame_html, _html_list
from scaling.errors import DataError

NOISE_DRAWS = 4000  # at least this many (replicate, noise) pairs, so the noise adds little Monte Carlo error
RELIABLE_FAILURES = 0.05  # the share of failed bootstrap refits above which an interval is not trusted
AXES = ("N", "D", "C")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Per point (N, D): predicted loss, intervals (None without bootstrap samples), extrapolation factors
    (None when the fit's range is unknown). `interval` says what [lo, hi] covers: "prediction" (fit and
    run-to-run noise), "fit" (fit uncertainty only) or None."""

    method: str
    form: str
    loss_label: str
    level: float
    interval: str | None
    log_residual_sd: float | None
    n_samples: int
    reliable: bool | None
    fit_range: dict | None
    max_extrapolation: float
    points: tuple[dict, ...]  # N, D, C, loss, lo, hi, fit_lo, fit_hi, extrapolation {N, D, C} | None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready: NaN and inf become None (JSON has neither)."""
        return _clean(dataclasses.asdict(self))

    def to_frame(self):
        """One row per point, extrapolation factors as columns extrap_N, extrap_D, extrap_C."""
        import pandas as pd

        rows = []
        for p in self.points:
            row = {k: v for k, v in p.items() if k != "extrapolation"}
            row.update({f"extrap_{k}": (p["extrapolation"] or {}).get(k) for k in AXES})
            rows.append(row)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        """The notebook view: the points table, then the warnings and notes."""
        head = (f"<p><b>{html.escape(self.method)} prediction</b> of {html.escape(self.loss_label)}: "
                f"{self.interval or 'no'} interval at {self.level:.0%}</p>")
        return (f"<div>{head}{_frame_html(self.to_frame())}{_html_list('warnings', list(self.warnings))}"
                f"{_html_list('notes', list(self.notes))}</div>")


def predict(result: FitResult, N, D, level: float = 0.95, max_extrapolation: float = 100.0,
            seed: int = 0) -> Prediction:
    """Predicted loss at paired (N, D) points (a single N or D is paired with every value of the other)."""
    N, D = _points(N, D)
    _check(result, level, max_extrapolation)
    loss = np.asarray(frontier.predicted_loss(result, N, D), float)
    sd = _log_residual_sd(result)
    samples = _replicate_losses(result, N, D)
    notes, bounds, kind = [], {}, None
    if samples is None:
        notes.append("no interval: the fit has no bootstrap samples; re-fit with `scaling fit --bootstrap 200 "
                     "--out FIT.json`")
    else:
        with np.errstate(all="ignore"):  # replicates that overflowed make undefined (NaN) bounds, said as such
            bounds = _intervals(samples, sd, level, seed)
        kind = "prediction" if sd is not None else "fit"
        if sd is None:
            notes.append("the interval covers fit uncertainty only: the fit records no run-to-run scatter "
                         "(details['log_residual_sd']); re-fit with a current `scaling fit` to add it")
    reliable = _reliable(result)
    if reliable is False:
        b = result.bootstrap
        notes.append(f"the interval is unreliable: {b.get('n', 0) - b.get('n_ok', 0)} of {b.get('n')} bootstrap "
                     "refits failed; treat it as a rough guide")
    factors = extrapolation_factors(result.fit_range, {"N": N, "D": D, "C": 6.0 * N * D})
    if factors is None:
        notes.append("extrapolation unknown: the fit file does not record the range of N, D and C it was fitted "
                     "on; re-fit with a current `scaling fit` to record it")
    points = tuple(_point(i, N, D, loss, bounds, factors) for i in range(len(N)))
    warnings = tuple(w for p in points if (w := extrapolation_warning(p, result.fit_range, max_extrapolation)))
    return Prediction(method=result.spec.method, form=result.spec.form, loss_label=result.spec.loss_label,
                      level=level, interval=kind, log_residual_sd=sd,
                      n_samples=0 if samples is None else samples.shape[0], reliable=reliable,
                      fit_range=result.fit_range, max_extrapolation=max_extrapolation, points=points,
                      notes=tuple(notes), warnings=warnings)


def extrapolation_factors(fit_range: dict | None, values: dict) -> dict | None:
    """{name: factor array} for each name in `values` that `fit_range` covers; None when the range is unknown."""
    if not fit_range:
        return None
    out = {}
    for name, x in values.items():
        span = fit_range.get(name)
        if not span or len(span) != 2 or not all(v is not None and v > 0 for v in span):
            continue
        out[name] = extrapolation_factor(x, float(span[0]), float(span[1]))
    return out or None


def extrapolation_warning(point: dict, fit_range: dict | None, max_extrapolation: float) -> str | None:
    """One line naming each quantity of `point` that lies more than `max_extrapolation` times beyond the data."""
    factors = point.get("extrapolation") or {}
    beyond = [f"{k} = {point[k]:.3g} is {f:.3g}x outside the fitted {k} range [{fit_range[k][0]:.3g}, "
              f"{fit_range[k][1]:.3g}]" for k, f in factors.items() if f is not None and f > max_extrapolation]
    if not beyond:
        return None
    return "; ".join(beyond) + f" (more than {max_extrapolation:g}x): the law is extrapolated far past its data"


def _points(N, D) -> tuple[np.ndarray, np.ndarray]:
    N, D = np.atleast_1d(np.asarray(N, float)), np.atleast_1d(np.asarray(D, float))
    if N.ndim != 1 or D.ndim != 1 or (len(N) != len(D) and 1 not in (len(N), len(D))):
        raise DataError(f"got {N.size} value(s) of N and {D.size} of D: give them in pairs (N1 N2 with D1 D2), "
                        "or one of them once to pair it with every value of the other")
    for name, x in (("N", N), ("D", D)):
        if x.size == 0 or not np.all(np.isfinite(x) & (x > 0)):
            raise DataError(f"{name} must be positive finite numbers, got {x.tolist()}")
    return np.broadcast_arrays(N, D)


def _check(result: FitResult, level: float, max_extrapolation: float) -> None:
    if not frontier.has_loss_surface(result.spec.form):
        raise DataError(f"this {result.spec.method} fit ({result.spec.form}) has no loss surface L(N, D) to predict "
                        "from; predict needs approach 3 (`scaling fit --method parametric` or `--method vpnls`) "
                        "or Kaplan's L(N, D) (`--method kaplan --kaplan-form nd`)")
    if not 0 < level < 1:
        raise DataError(f"interval level must be between 0 and 1 (e.g. 0.95), got {level}")
    check_max_extrapolation(max_extrapolation)


def check_max_extrapolation(value: float) -> None:
    if not (math.isfinite(value) and value >= 1):
        raise DataError(f"--max-extrapolation must be a number >= 1 (a factor beyond the data), got {value}")


def _log_residual_sd(result: FitResult) -> float | None:
    sd = (result.details or {}).get("log_residual_sd")
    if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not math.isfinite(sd) or sd < 0:
        return None
    return float(sd)


def _replicate_losses(result: FitResult, N: np.ndarray, D: np.ndarray) -> np.ndarray | None:
    """R x P: each bootstrap replicate's L(N, D) at the P points; None without samples."""
    samples = result.samples or {}
    if not samples or any(k not in samples for k in result.params):
        return None
    params = {k: np.asarray(samples[k], float)[:, None] for k in result.params}
    if params[next(iter(params))].shape[0] < 2:
        return None
    probe = dataclasses.replace(result, params=params)
    with np.errstate(all="ignore"):  # a wild replicate may overflow; it lands outside the percentiles
        return np.asarray(frontier.predicted_loss(probe, N[None, :], D[None, :]), float)


def _intervals(losses_RxP: np.ndarray, sd: float | None, level: float, seed: int) -> dict:
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    out = {"fit_lo": np.nanpercentile(losses_RxP, lo, axis=0), "fit_hi": np.nanpercentile(losses_RxP, hi, axis=0)}
    if sd is None:
        out["lo"], out["hi"] = out["fit_lo"], out["fit_hi"]
        return out
    # Several noise draws per replicate: the percentiles then reflect the replicates, not a few noise draws.
    repeat = max(1, -(-NOISE_DRAWS // losses_RxP.shape[0]))
    eps_KxRxP = np.random.default_rng(seed).standard_normal((repeat, *losses_RxP.shape)) * sd
    noisy = (losses_RxP[None] * np.exp(eps_KxRxP)).reshape(-1, losses_RxP.shape[1])
    out["lo"], out["hi"] = np.nanpercentile(noisy, lo, axis=0), np.nanpercentile(noisy, hi, axis=0)
    return out


def _reliable(result: FitResult) -> bool | None:
    """The bootstrap's own verdict; for files written before it had one, at most 5% of refits failed."""
    b = result.bootstrap
    if not b:
        return None
    if "reliable" in b:
        return bool(b["reliable"])
    if b.get("n") and b.get("n_ok") is not None:
        return (b["n"] - b["n_ok"]) <= RELIABLE_FAILURES * b["n"]
    return None


def _point(i: int, N, D, loss, bounds: dict, factors: dict | None) -> dict:
    n, d = float(N[i]), float(D[i])
    point = {"N": n, "D": d, "C": 6.0 * n * d, "loss": float(loss[i])}
    for key in ("lo", "hi", "fit_lo", "fit_hi"):
        point[key] = float(bounds[key][i]) if key in bounds else None
    point["extrapolation"] = {k: float(v[i]) for k, v in factors.items()} if factors else None
    return point

