"""The compute-optimal loss frontier the synthesis runs through: a Chinchilla-form fit, the range of N, D
and C it was fitted on, the units of its loss, and draws of its parameters for intervals.

Derivation (each formula below is defined once, in scaling.chinchilla and analysis.frontier). With x = C/6 and
D = x/N, minimising A N^-alpha + B D^-beta over N gives alpha A N^-alpha = beta B D^-beta, hence
N_opt = G x^a, D_opt = x / N_opt, and L_opt(C) - E = K (C/6)^-gamma with gamma = alpha beta / (alpha + beta),
K = A G^-alpha (alpha + beta) / beta. Every property works elementwise, so a frontier whose parameters are
arrays of draws (`drawn`) gives one value per draw.

Draws: from a FIT.json's bootstrap `samples`; for Epoch's refit (which publishes intervals, not draws) an
approximation: alpha, beta and E split-normal on Epoch's 95% intervals (independent), and A, B chosen per draw
so that the loss at the middle of the Chinchilla data stays at the headline fit's (the data pin it there),
the reducible part split between the N and D terms as in the headline fit. (The draws' a = beta/(alpha+beta)
has an SD of 0.018 against Epoch's bootstrap 0.020.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from analysis import frontier
from analysis.result import SCHEMA, load_fit
from scaling.errors import DataError

PARAMS = ("E", "A", "B", "alpha", "beta")
FRONTIER_UNITS = "nats per token of frontier LMs' tokenizers and web-scale text (Chinchilla's MassiveText)"

# Besiroglu et al. 2024 (arXiv:2404.10102): Huber-likelihood headline and 95% bootstrap intervals (4,000
# resamples), and the span of the 245 digitised Chinchilla points it was fitted on (../shared/data).
EPOCH_POINT = {"E": 1.8172, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3658}
EPOCH_CI = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
EPOCH_RANGE = {"N": [5.73e7, 1.62e10], "D": [2.45e8, 3.18e11], "C": [1.40e18, 1.30e22]}
EPOCH_PIVOT = (1.0e9, 1.6e10)  # (N, D) at the middle of the Chinchilla data, where the draws keep the loss
EPOCH_DRAWS = 4000


@dataclass(frozen=True)
class LossFrontier:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""
    fit_range: dict | None = None  # {"N": [lo, hi], "D": [lo, hi], "C": [lo, hi]}; None: not recorded
    units: str = FRONTIER_UNITS  # what its loss is measured in; another tokenizer/corpus is "other units"
    draws: dict | None = field(default=None, repr=False, compare=False)  # name -> array of parameter draws
    draws_note: str = "none: the frontier is held fixed"

    @property
    def params(self) -> dict:
        return {k: getattr(self, k) for k in PARAMS}

    @property
    def a(self):
        return frontier.chinchilla_exponents(self.alpha, self.beta)[0]

    @property
    def b(self):
        return frontier.chinchilla_exponents(self.alpha, self.beta)[1]

    @property
    def G(self):
        return frontier.chinchilla_G(self.A, self.B, self.alpha, self.beta)

    @property
    def gamma(self):
        return frontier.chinchilla_loss_exponent(self.alpha, self.beta)

    @property
    def K(self):
        return frontier.chinchilla_K(self.A, self.B, self.alpha, self.beta)

    @property
    def in_frontier_units(self) -> bool:
        return self.units == FRONTIER_UNITS

    def loss(self, N, D):
        return frontier.chinchilla_loss(self.params, np.asarray(N, dtype=float), np.asarray(D, dtype=float))

    def n_opt(self, C):
        return frontier.chinchilla_n_opt(self.params, C)

    def d_opt(self, C):
        return frontier.chinchilla_d_opt(self.params, C)

    def reducible_opt(self, C):
        return frontier.chinchilla_reducible_opt(self.params, C)

    def loss_opt(self, C):
        return self.E + self.reducible_opt(C)

    def drawn(self, n: int) -> LossFrontier:
        """A frontier whose parameters are n draws as (n, 1) columns (broadcast against (n, years)); the
        point frontier repeated when there are no draws."""
        if not self.draws:
            return self
        columns = {k: np.resize(np.asarray(self.draws[k], float), n)[:, None] for k in PARAMS}
        return replace(self, **columns, draws=None)

    def as_dict(self) -> dict:
        n_draws = len(self.draws["E"]) if self.draws else 0
        e_ci = [float(v) for v in np.percentile(self.draws["E"], [2.5, 97.5])] if self.draws else None
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": self.a,
                "b": self.b, "G": self.G, "gamma": self.gamma, "K": self.K, "source": self.source,
                "fit_range": self.fit_range, "units": self.units, "in_frontier_units": self.in_frontier_units,
                "E_ci": e_ci, "draws": n_draws, "draws_note": self.draws_note}


def epoch_draws(n: int = EPOCH_DRAWS, seed: int = 0) -> dict[str, np.ndarray]:
    """Approximate draws of Epoch's refit consistent with its published 95% intervals (module docstring)."""
    rng = np.random.default_rng(seed)
    drawn = {}
    for name, (lo, hi) in EPOCH_CI.items():  # split normal: each side matches its end of the interval
        z = rng.standard_normal(n)
        point = EPOCH_POINT[name]
        drawn[name] = point + z * np.where(z < 0, point - lo, hi - point) / 1.96
    n0, d0 = EPOCH_PIVOT
    p0, q0 = EPOCH_POINT["A"] * n0 ** -EPOCH_POINT["alpha"], EPOCH_POINT["B"] * d0 ** -EPOCH_POINT["beta"]
    reducible = p0 + q0 + EPOCH_POINT["E"] - drawn["E"]  # total loss at the pivot held fixed
    keep = reducible > 0
    drawn = {k: v[keep] for k, v in drawn.items()}
    share = reducible[keep] / (p0 + q0)
    drawn["A"] = p0 * share * n0 ** drawn["alpha"]
    drawn["B"] = q0 * share * d0 ** drawn["beta"]
    return drawn


EPOCH_CHINCHILLA = LossFrontier(
    **EPOCH_POINT,
    source=("Epoch AI refit of Chinchilla approach 3, Huber-likelihood headline (Besiroglu et al. 2024, "
            "arXiv:2404.10102)"),
    fit_range=EPOCH_RANGE, draws=epoch_draws(),
    draws_note=(f"{EPOCH_DRAWS} approximate draws consistent with Epoch's published 95% intervals for alpha, beta "
                "and E (independent split normals; A and B keep the loss at the middle of the data): an approximation"))


def load_frontier(path: str | Path) -> LossFrontier:
    """A fit written by `scaling fit --out FIT.json` (method parametric or vpnls), or any JSON object with
    top-level numbers E, A, B, alpha, beta (and optionally fit_range {N, D, C: [lo, hi]})."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"fit file not found: {path}; pass the JSON written by `scaling fit --out`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"fit file {path} is not valid JSON ({err}); pass the JSON written by "
                        "`scaling fit --out`") from None
    if not isinstance(data, dict):
        raise DataError(f"fit file {path} holds a JSON {type(data).__name__}, not an object with keys "
                        f"{', '.join(PARAMS)}")
    if data.get("schema") == SCHEMA:
        return _from_fit_result(path)
    values = _five_numbers(data, path)
    fit_range = data.get("fit_range")
    if fit_range is not None and not _is_range(fit_range):
        raise DataError(f"fit file {path}: 'fit_range' must map N, D and C to [low, high] numbers; fix it or drop it")
    return LossFrontier(**values, source=f"fit from {path}", fit_range=fit_range,
                        units=f"other units: a user fit ({path.name}), tokenizer and corpus not recorded")


def _five_numbers(data: dict, path: Path) -> dict[str, float]:
    values = {}
    for key in PARAMS:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"fit file {path}: top-level '{key}' is {value!r}, not a finite number; "
                            f"it needs numbers {', '.join(PARAMS)}")
        values[key] = float(value)
    if min(values["A"], values["B"], values["alpha"], values["beta"]) <= 0 or values["E"] < 0:
        raise DataError(f"fit file {path}: A, B, alpha, beta must be > 0 and E >= 0 (got {values}); "
                        f"a Chinchilla-form fit is needed for a compute-optimal frontier")
    return values


def _is_range(value) -> bool:
    return isinstance(value, dict) and {"N", "D", "C"} <= set(value) and all(
        isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) and x > 0 for x in v)
        for k, v in value.items() if k in ("N", "D", "C"))


def _from_fit_result(path: Path) -> LossFrontier:
    result = load_fit(path)
    if result.spec.form != "chinchilla":
        raise DataError(f"fit file {path} is a {result.spec.form!r} fit; a Chinchilla-form fit (scaling fit --method "
                        "parametric or vpnls) is needed for a compute-optimal loss frontier")
    values = _five_numbers(result.params, path)
    samples = result.samples or {}
    draws, note = None, "none: the fit has no bootstrap samples, so the frontier is held fixed"
    if all(k in samples for k in PARAMS):
        stacked = np.array([samples[k] for k in PARAMS], dtype=float)
        ok = np.isfinite(stacked).all(axis=0)
        if ok.sum() >= 10:
            draws = {k: stacked[i, ok] for i, k in enumerate(PARAMS)}
            boot = result.bootstrap or {}
            note = (f"{int(ok.sum())} bootstrap draws from {path.name}"
                    + ("" if boot.get("reliable", True) else " (the fit's bootstrap is marked unreliable)"))
    vocab = f", vocabulary {result.spec.vocab_size}" if result.spec.vocab_size else ""
    return LossFrontier(**values, source=f"fit from {path}", fit_range=result.fit_range,
                        units=f"other units: {result.spec.loss_label}{vocab} of this fit's runs, not the frontier "
                              "models' tokenizer and corpus",
                        draws=draws, draws_note=note)
