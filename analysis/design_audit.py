"""Design audit: before a sweep is run, how well would its runs pin the compute-optimal exponent a?

The planned runs (their N, D and C as planned) are given losses from a prior law L(N, D) = E + A/N^alpha
+ B/D^beta times log-normal noise, `draws` times; approach 2 (isoFLOP parabolas, analysis.isoflop with
its default rules) and approach 3 (the Huber surface fit, solved for every draw at once by
analysis.optimize) are fitted to each draw. What the audit reports:
  * per budget, where the expected (noise-free) parabola minimum lies against the sizes, and in how many
    draws approach 2 could use the budget;
  * each approach's expected 95% interval of a (the 2.5-97.5 percentiles over the usable draws);
  * approach 2's bias on this grid (mean a over draws minus the prior's true a): parabolas in log N are
    only approximately right, and a budget centred off its optimum pulls its minimum;
  * what approach 1 (the envelope) reads on the noise-free prior at these runs: it needs each size at two
    or more budgets and each winner flanked by covering sizes, so a sparse grid biases it with no noise;
  * a one-line verdict.
The noise is given, measured from seed repeats in a finished sweep's results (`seed_repeat_noise`), or
the default below.
The draws' spread is the fit's sampling spread on this design, which is what a bootstrap of the real
sweep estimates afterwards.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from analysis import envelope, frontier, isoflop
from analysis.diagnostics import DESIGN_BIAS_WARNING
from analysis.loading import RunTable, from_arrays
from analysis.result import FitResult
from scaling.accounting import N_CONVENTIONS
from scaling.errors import DataError
from scaling.run_status import COMPLETED

# Default prior surface for byte-level models on the Python stdlib corpus (this project's default data):
# approach 3 as `make demo` fits it (sweeps/demo.toml: 21 runs at 1e11-3e12 FLOPs with the tuned lr, N total,
# C exact; run 2026-12-03, a = 0.60 [0.48, 0.72]), to 3 significant figures. a = beta / (alpha + beta) = 0.604.
DEFAULT_SURFACE = {"E": 1.07, "A": 286.0, "B": 6.18e5, "alpha": 0.679, "beta": 1.04}
DEFAULT_SURFACE_SOURCE = "approach 3 fit of make demo's 21 byte-level stdlib runs, 2026-12-03"
# Default loss noise: that fit's log-residual SD (details["log_residual_sd"] = 0.0224), rounded. It holds the
# surface's misfit as well as seed-to-seed noise, so it errs towards a wider interval.
DEFAULT_NOISE = 0.022
DEFAULT_NOISE_SOURCE = "log-residual SD of the make demo fit"
DEFAULT_DRAWS = 300
# Columns that must agree for runs to be seed repeats (the rest of a run's identity is its seed).
REPEAT_KEYS = ("n_params", "tokens", "budget", "lr", "batch_size", "seq_len", "warmup_steps", "weight_decay",
               "schedule", "mlp", "d_model", "n_layers")
MIN_DRAWS = 20  # fewer draws make a 95% interval from percentiles meaningless
LEVEL = 0.95
OFTEN_USED = 0.75  # a budget inside its sizes that approach 2 keeps in fewer draws is named in the verdict
A3_DELTA = 1e-3  # approach 3's Huber delta, as `scaling fit --method parametric` uses
A3_START_JITTER = 0.1  # extra starts at the truth +- this in each raw parameter, so no draw relies on one start


@dataclasses.dataclass(frozen=True)
class Prior:
    """The law the draws come from and where it came from (said in the output)."""

    params: dict  # E, A, B, alpha, beta
    source: str
    n_convention: str = "total"
    noise: float | None = None  # the fit's log-residual SD, when it recorded one

    @property
    def a(self) -> float:
        return frontier.chinchilla_exponents(self.params["alpha"], self.params["beta"])[0]


@dataclasses.dataclass(frozen=True)
class Design:
    """The planned runs as points: N (in the prior's convention), D tokens, C and nominal budget."""

    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    budget: np.ndarray


@dataclasses.dataclass(frozen=True)
class BudgetCheck:
    flops: float
    n_min: float  # smallest and largest size planned at this budget
    n_max: float
    expected_n_opt: float  # the noise-free parabola's minimum (nan when it opens downwards)
    usable_share: float  # share of draws in which approach 2 kept this budget
    few_sizes: bool = False  # fewer distinct sizes than a parabola needs

    @property
    def side(self) -> str | None:
        """None when the expected minimum lies among the sizes, else 'below', 'above', 'none' (the parabola
        opens downwards) or 'few' (too few sizes)."""
        if self.few_sizes:
            return "few"
        if not np.isfinite(self.expected_n_opt):
            return "none"
        if self.expected_n_opt < self.n_min:
            return "below"
        return "above" if self.expected_n_opt > self.n_max else None


@dataclasses.dataclass(frozen=True)
class ApproachDraws:
    name: str
    a_R: np.ndarray  # a per draw, nan where the fit was not usable

    @property
    def usable(self) -> np.ndarray:
        return self.a_R[np.isfinite(self.a_R)]

    def interval(self) -> tuple[float, float] | None:
        a = self.usable
        if len(a) < MIN_DRAWS:
            return None
        return float(np.percentile(a, 50 * (1 - LEVEL))), float(np.percentile(a, 50 * (1 + LEVEL)))

    def half_width(self) -> float | None:
        lo_hi = self.interval()
        return None if lo_hi is None else (lo_hi[1] - lo_hi[0]) / 2


@dataclasses.dataclass(frozen=True)
class Audit:
    prior: Prior
    noise: float
    noise_source: str
    draws: int
    budgets: tuple[BudgetCheck, ...]
    approach2: ApproachDraws
    approach3: ApproachDraws
    seconds: float
    approach1_noise_free: float | str = "not checked"  # a read by approach 1 on the prior itself, or why not

    @property
    def approach2_bias(self) -> float | None:
        a = self.approach2.usable
        return float(np.mean(a) - self.prior.a) if len(a) >= MIN_DRAWS else None

    @property
    def approach1_bias(self) -> float | None:
        read = self.approach1_noise_free
        return None if isinstance(read, str) else read - self.prior.a


def prior_from_fit(result: FitResult, path: str) -> Prior:
    """The surface of a FIT.json; only L(N, D) fits (approach 3, VPNLS) can generate losses."""
    if result.spec.form != "chinchilla":
        raise DataError(f"{path}: is a {result.spec.form!r} fit ({result.spec.method}); the audit draws losses "
                        "from an L(N, D) surface: pass a fit of --method parametric or vpnls")
    params = {k: float(result.params[k]) for k in ("E", "A", "B", "alpha", "beta")}
    sd = result.details.get("log_residual_sd")
    noise = float(sd) if isinstance(sd, (int, float)) and np.isfinite(sd) and sd > 0 else None
    return Prior(params, f"{path} ({result.spec.method} fit)", result.spec.n_convention, noise)


def default_prior() -> Prior:
    return Prior(dict(DEFAULT_SURFACE), DEFAULT_SURFACE_SOURCE)


def seed_repeat_noise(frame) -> tuple[float, int]:
    """The loss noise measured from seed repeats in a sweep's results (a DataFrame of results.parquet):
    the pooled SD of log(final_val_loss) within groups of completed runs that differ only in seed, and the
    number of such groups. Refuses results without seed repeats."""
    needed = {"seed", "final_val_loss", "status"} - set(frame.columns)
    if needed:
        raise DataError(f"results have no column(s) {sorted(needed)}: not a sweep's results.parquet; pass "
                        "the results of `scaling sweep collect`")
    done = frame[(frame["status"] == COMPLETED) & np.isfinite(frame["final_val_loss"].astype(float))
                 & (frame["final_val_loss"].astype(float) > 0)]
    keys = [k for k in REPEAT_KEYS if k in done.columns]
    squares, dof, groups = 0.0, 0, 0
    for _, group in done.groupby(keys, dropna=False, sort=False):
        if group["seed"].nunique() < 2:
            continue
        log_loss = np.log(group["final_val_loss"].to_numpy(float))
        squares += float(np.sum((log_loss - log_loss.mean()) ** 2))
        dof, groups = dof + len(log_loss) - 1, groups + 1
    if groups == 0:
        raise DataError("the results hold no seed repeats (completed runs with the same N, C and hyperparameters "
                        "but different seeds): add a seed list (hparams.seed = [0, 1]) or pass --audit-noise SD")
    return float(np.sqrt(squares / dof)), groups


def design_from_plan(plan, n_convention: str = "total") -> Design:
    """The isoFLOP runs of a sweeps.planner.Plan, with C under the spec's formula (as the sweep records it).
    One run per (size, budget, seed): the prior law gives every learning rate (or batch size) of a point the
    same loss, and the analysis keeps the best of them (--best-of lr), so they are one data point; seeds are
    repeats of it."""
    runs = list({(run.counts["n_params"], run.budget, run.config.train.seed): run for run in plan.runs
                 if run.role == "run" and run.budget is not None}.values())
    if plan.spec.kind != "isoflop" or not runs:
        raise DataError(f"{plan.spec.path}: --audit audits isoFLOP sweeps; this is a {plan.spec.kind!r} spec")
    formula = plan.spec.isoflop.formula
    key = N_CONVENTIONS[n_convention]
    return Design(N=np.array([run.counts[key] for run in runs], float), D=np.array([run.tokens for run in runs], float),
                  C=np.array([run.flops[formula] for run in runs], float),
                  budget=np.array([run.budget for run in runs], float))


def simulate_losses(design: Design, prior: Prior, noise: float, draws: int, seed: int = 0) -> np.ndarray:
    """draws x runs losses: the prior's L(N, D) times exp(noise * standard normal)."""
    clean = frontier.chinchilla_loss(prior.params, design.N, design.D)
    rng = np.random.default_rng(seed)
    return clean[None, :] * np.exp(noise * rng.standard_normal((draws, len(clean))))


def _table(design: Design, loss: np.ndarray) -> RunTable:
    return from_arrays(design.N, design.D, loss, C=design.C, budget=design.budget, source="<design audit>")


def approach2_draws(design: Design, loss_RxN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a per draw (nan where fewer than 2 budgets were usable) and which budgets each draw used
    (draws x budgets, budgets ascending), by approach 2's own rules."""
    table = _table(design, loss_RxN[0])
    opts, ones = isoflop.Options(), np.ones(len(table))
    a_R = np.full(len(loss_RxN), np.nan)
    used_RxB = np.zeros((len(loss_RxN), len(np.unique(design.budget))), bool)
    for r, loss in enumerate(loss_RxN):
        rows = isoflop.profiles(dataclasses.replace(table, loss=loss), table.budget, opts, ones)
        used_RxB[r] = [row["used"] for row in rows]
        params = isoflop.power_laws(rows)
        if params is not None:
            a_R[r] = params["a"]
    return a_R, used_RxB


def expected_minima(design: Design, prior: Prior) -> list[dict]:
    """Approach 2's per-budget rows on the noise-free losses: where each parabola's minimum is expected."""
    clean = frontier.chinchilla_loss(prior.params, design.N, design.D)
    table = _table(design, clean)
    return isoflop.profiles(table, table.budget, isoflop.Options(), np.ones(len(table)))


def approach1_on_prior(design: Design, prior: Prior) -> float | str:
    """a from approach 1 on the noise-free prior at the planned runs, or the reason it cannot be fitted."""
    clean = frontier.chinchilla_loss(prior.params, design.N, design.D)
    try:
        return float(envelope.fit_envelope(_table(design, clean)).derived["a"])
    except DataError as err:
        return str(err)


def _draws_fgh(x_WxP, weights_and_log_loss_WxM, data):
    """Approach 3's objective with each draw's losses riding in its weight row ([weights | log losses]):
    `analysis.optimize.minimize` shares `data` among tasks but gives each task its own row, so one
    batched solve fits every draw."""
    from analysis.parametric import chinchilla_fgh

    n = data["log_n"].shape[0]
    return chinchilla_fgh(x_WxP, weights_and_log_loss_WxM[:, :n],
                          {**data, "log_loss": weights_and_log_loss_WxM[:, n:]})


def approach3_draws(design: Design, loss_RxN: np.ndarray, prior: Prior) -> np.ndarray:
    """a per draw from approach 3 (Huber on log residuals, delta 1e-3), started at the prior and at a few
    points around it (as the bootstrap starts from the fit's minima); nan where no start converged."""
    from analysis.optimize import CONVERGED, MAX_ITER, STALLED, minimize
    from analysis.parametric import _to_raw

    truth = np.asarray(_to_raw(prior.params))
    starts_SxP = np.stack([truth, truth + A3_START_JITTER, truth - A3_START_JITTER])
    R, S = len(loss_RxN), len(starts_SxP)
    rows_RxM = np.concatenate([np.ones_like(loss_RxN), np.log(loss_RxN)], axis=1)
    data = {"log_n": np.log(design.N), "log_d": np.log(design.D), "delta": np.float64(A3_DELTA)}
    sol = minimize(_draws_fgh, np.tile(starts_SxP, (R, 1)), rows_RxM, data, task_replicate_T=np.repeat(np.arange(R), S))
    ok_T = np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER)) & np.isfinite(sol.f_T)
    f_RxS = np.where(ok_T, sol.f_T, np.inf).reshape(R, S)
    x_RxP = sol.x_TxP.reshape(R, S, -1)[np.arange(R), np.argmin(f_RxS, axis=1)]
    alpha, beta = x_RxP[:, 3], x_RxP[:, 4]
    a_R = frontier.chinchilla_exponents(alpha, beta)[0]
    usable = np.isfinite(f_RxS).any(axis=1) & (alpha > 0) & (beta > 0)
    return np.where(usable, a_R, np.nan)


def audit(design: Design, prior: Prior, noise: float, noise_source: str, draws: int = DEFAULT_DRAWS,
          seed: int = 0) -> Audit:
    """Simulate `draws` sweeps of this design under `prior` and fit approaches 2 and 3 to each."""
    if not (np.isfinite(noise) and noise > 0):
        raise DataError(f"--audit-noise {noise}: the loss noise (log SD) must be a positive number, e.g. 0.01")
    if draws < MIN_DRAWS:
        raise DataError(f"--audit-draws {draws}: at least {MIN_DRAWS} draws are needed for a 95% interval")
    start = time.perf_counter()
    loss_RxN = simulate_losses(design, prior, noise, draws, seed)
    a2_R, used_RxB = approach2_draws(design, loss_RxN)
    a3_R = approach3_draws(design, loss_RxN, prior)
    checks = tuple(BudgetCheck(row["C"], row.get("N_min", np.nan), row.get("N_max", np.nan),
                               row.get("N_opt", np.nan) if row["reason"] != "opens_downwards" else np.nan,
                               float(used_RxB[:, b].mean()), row["reason"] == "too_few_sizes")
                   for b, row in enumerate(expected_minima(design, prior)))
    return Audit(prior, noise, noise_source, draws, checks, ApproachDraws("approach 2", a2_R),
                 ApproachDraws("approach 3", a3_R), time.perf_counter() - start, approach1_on_prior(design, prior))


def verdict(result: Audit) -> str:
    """One line: the budgets approach 2 cannot use, then how tightly the design pins a."""
    parts = []
    for check in result.budgets:
        if check.side == "few":
            parts.append(f"budget {check.flops:.3g}: fewer than 3 sizes, approach 2 cannot use it")
        elif check.side == "none":
            parts.append(f"budget {check.flops:.3g}: the expected parabola opens downwards, approach 2 cannot "
                         "use it")
        elif check.side is not None:
            edge = "smallest" if check.side == "below" else "largest"
            parts.append(f"budget {check.flops:.3g}: minimum {check.side} the {edge} size, approach 2 cannot use it")
        elif check.usable_share < OFTEN_USED:
            parts.append(f"budget {check.flops:.3g}: minimum near the edge of its sizes, approach 2 loses it in "
                         f"{1 - check.usable_share:.0%} of draws")
    bias1 = result.approach1_bias
    if bias1 is not None and abs(bias1) > DESIGN_BIAS_WARNING:
        parts.append(f"approach 1 reads a {bias1:+.2f} off even without noise")
    widths = [(d.half_width(), d.name) for d in (result.approach3, result.approach2) if d.half_width() is not None]
    if widths:
        best, name = min(widths)
        parts.append(f"this design pins a to ±{best:.2g} ({name})")
    else:
        parts.append("neither approach fits enough draws: this design cannot pin a")
    return "; ".join(parts)


def format_audit(result: Audit) -> str:
    p = result.prior.params
    lines = [f"design audit: {result.draws} simulated sweeps under L(N, D) = {p['E']:.3g} + {p['A']:.3g}/N^"
             f"{p['alpha']:.3g} + {p['B']:.3g}/D^{p['beta']:.3g} (true a = {result.prior.a:.3f}; "
             f"{result.prior.source}), loss noise {result.noise:.3g} log SD ({result.noise_source})"]
    for check in result.budgets:
        if check.side == "few":
            lines.append(f"  budget {check.flops:.3g}: fewer than 3 sizes, no parabola; approach 2 cannot use it")
            continue
        where = {None: "inside its sizes", "none": "none (the parabola opens downwards)",
                 "below": "BELOW the smallest size", "above": "ABOVE the largest size"}[check.side]
        lines.append(f"  budget {check.flops:.3g}: expected minimum N {check.expected_n_opt:.3g}, {where} "
                     f"({check.n_min:.3g} .. {check.n_max:.3g}); approach 2 uses it in {check.usable_share:.0%} "
                     "of draws")
    for draws in (result.approach2, result.approach3):
        lo_hi, n_ok = draws.interval(), len(draws.usable)
        span = (f"expected 95% interval of a [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}] (±{draws.half_width():.3f})"
                if lo_hi else "too few usable fits for an interval")
        lines.append(f"  {draws.name}: {span}; {n_ok}/{result.draws} draws usable")
    bias = result.approach2_bias
    if bias is not None:
        lines.append(f"  approach 2 bias on this grid: {bias:+.3f} (mean a minus true a)")
    read = result.approach1_noise_free
    lines.append(f"  approach 1 on the noise-free prior at these runs: a = {read:.3f} (bias {read - result.prior.a:+.3f})"
                 if not isinstance(read, str) else f"  approach 1 on the noise-free prior at these runs: not fitted ({read})")
    lines.append(f"verdict: {verdict(result)}")
    if result.seconds > 3:
        lines.append(f"(audit took {result.seconds:.1f} s)")
    return "\n".join(lines)
