"""What a reader must know before trusting a fit: one list of {code, severity, message} per result.

Severity `invalid` means the numbers should not be used (an exponent outside the range a power law can
have, a compute-optimal size that is not finite or lies orders of magnitude beyond the sizes trained);
`warning` means they can be used with the stated caveat. Every method's result gets the same checks
(`diagnose`; it also flags a tuned lr at the edge of its grid); the methods add their own (approach 2's per-budget exclusions); the bootstrap adds its
failure rate; `compare_methods` checks several methods against each other and, given the table, how far
the design alone moves approaches 1 and 2 (`design_bias`). The CLI, the JSON and the
report all print this one list.
"""

from __future__ import annotations

import numpy as np

from analysis import frontier
from analysis.loading import RunTable
from analysis.result import FitResult
from scaling.errors import DataError

WARNING, INVALID = "warning", "invalid"

POINTS_PER_PARAMETER = 3
EXPONENT_RANGE = (0.01, 3.0)  # a loss exponent below or above is a collapsed or runaway term
E_COLLAPSED = 1e-3  # E below this share of the lowest loss: the irreducible term is not identified
EXTRAPOLATED_INVALID = 1000.0  # N_opt or D_opt this far beyond the sizes (tokens) trained: not a result
RESIDUAL_RMS_WARNING = 0.03  # relative RMS misfit of a loss surface
RESIDUAL_MAX_WARNING = 0.15
UNRELIABLE_FAILURES = 0.05  # bootstrap failure share above which intervals are not 95% intervals
DESIGN_BIAS_WARNING = 0.05  # a method reading a this far off on a known law at the runs' own sizes and budgets
DESIGN_CHECKED = ("isoflop", "envelope")  # methods that read a from the design's discrete sizes and budgets


def diagnostic(code: str, severity: str, message: str) -> dict:
    return {"code": code, "severity": severity, "message": message}


def has_invalid(diagnostics) -> bool:
    return any(d["severity"] == INVALID for d in diagnostics)


def fit_range(table: RunTable) -> dict[str, list[float]]:
    return {k: [float(np.min(v)), float(np.max(v))] for k, v in (("N", table.N), ("D", table.D), ("C", table.C))}


def extrapolation_factor(x, lo: float, hi: float):
    """How far x lies beyond [lo, hi], as a factor >= 1 (1 inside)."""
    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.maximum(np.maximum(x / hi, lo / x), 1.0)


def diagnose(result: FitResult, table: RunTable) -> tuple[dict, ...]:
    """The checks every fit gets, on the table it was fitted to."""
    out = list(_nonfinite(result))
    form = result.spec.form
    if form == "chinchilla":
        out += _chinchilla(result, table)
    elif form == "power_law":
        out += _power_law(result)
    elif form.startswith("kaplan"):
        out += _kaplan(result)
    out += _few_points(result)
    if frontier.has_loss_surface(form):
        out += _residuals(result, table)
    if frontier.has_frontier(form) and not has_invalid(out):
        out += _optimum_in_range(result, table)
    out += _lr_at_edge(table)
    return tuple(out)


def _nonfinite(result: FitResult) -> list[dict]:
    names = [k for k, v in {**result.params, **result.derived}.items() if not np.isfinite(v)]
    if not names:
        return []
    return [diagnostic("nonfinite_value", INVALID, f"{', '.join(names)} not finite (written as null): the fit "
                       "ran off to a degenerate limit")]


def _chinchilla(result: FitResult, table: RunTable) -> list[dict]:
    p, out = result.params, []
    lo, hi = EXPONENT_RANGE
    for name in ("alpha", "beta"):
        if np.isfinite(p[name]) and not lo <= p[name] <= hi:
            what = "collapsed towards 0: that term is a constant" if p[name] < lo else "runaway (> 3)"
            out.append(diagnostic(f"{name}_out_of_range", INVALID, f"{name} = {p[name]:.3g} {what}; the data "
                                  "do not resolve this power law"))
    for name in ("A", "B"):
        if np.isfinite(p[name]) and not p[name] > 0:
            out.append(diagnostic(f"{name}_at_bound", INVALID, f"{name} = {p[name]:.3g} sits on its bound 0: "
                                  "the loss does not depend on " + ("N" if name == "A" else "D") + " in this fit"))
    if np.isfinite(p["E"]) and p["E"] < E_COLLAPSED * float(np.min(table.loss)):
        out.append(diagnostic("E_collapsed", WARNING, f"E = {p['E']:.3g} collapsed to 0: the irreducible loss is "
                              "not identified by these runs, so the exponents absorb it and L_opt beyond the "
                              "data is unreliable"))
    return out


def _power_law(result: FitResult) -> list[dict]:
    out = []
    for name, what in (("a", "N_opt"), ("b", "D_opt")):
        value = result.params.get(name, np.nan)
        if not np.isfinite(value):
            continue
        if not 0.0 <= value <= 1.0:
            out.append(diagnostic(f"{name}_out_of_range", INVALID, f"{name} = {value:.3g} lies outside [0, 1]: "
                                  f"{what} cannot {'shrink' if value < 0 else 'outgrow'} compute; the fit is "
                                  "degenerate"))
        elif value < EXPONENT_RANGE[0]:
            out.append(diagnostic(f"{name}_collapsed", INVALID, f"{name} = {value:.3g} collapsed to 0: {what} does "
                                  "not grow with compute in this fit, which no scaling law allows; the data do not "
                                  "resolve the optimum"))
        elif not 0.05 <= value <= 0.95:
            out.append(diagnostic(f"{name}_extreme", WARNING, f"{name} = {value:.3g} is near the edge of [0, 1]: "
                                  f"{what} barely {'grows' if value < 0.5 else 'leaves room for the other'}"))
    return out


def _kaplan(result: FitResult) -> list[dict]:
    out = []
    lo, hi = EXPONENT_RANGE
    for name, value in result.params.items():
        if name.startswith("alpha_") and np.isfinite(value) and not lo <= value <= hi:
            out.append(diagnostic(f"{name}_out_of_range", INVALID, f"{name} = {value:.3g} is outside "
                                  f"[{lo}, {hi}]: the power law in {name[6:]} is not resolved"))
    return out


def _few_points(result: FitResult) -> list[dict]:
    if result.spec.form == "power_law":
        used = int(result.details.get("n_power_law_points", result.spec.n_points))
        k, what = 2, "points on the N_opt(C) power law"
    else:
        tied = 1 if result.spec.options.get("tie") else 0  # alpha = beta: one exponent fewer is free
        used, k, what = result.spec.n_points, len(result.params) - tied, "points"
    if used >= POINTS_PER_PARAMETER * k:
        return []
    return [diagnostic("few_points", WARNING, f"{k} parameters fitted to {used} {what} (fewer than "
                       f"{POINTS_PER_PARAMETER} per parameter): the law is loosely determined")]


def relative_residuals(result: FitResult, table: RunTable) -> np.ndarray:
    with np.errstate(all="ignore"):
        return table.loss / frontier.predicted_loss(result, table.N, table.D) - 1.0


def log_residual_sd(result: FitResult, table: RunTable) -> float:
    """Run-to-run scatter about the surface, log(observed/predicted), corrected for the parameters."""
    with np.errstate(all="ignore"):
        r = np.log(table.loss / frontier.predicted_loss(result, table.N, table.D))
    dof = max(len(r) - len(result.params), 1)
    return float(np.sqrt(np.sum(r * r) / dof))


def _residuals(result: FitResult, table: RunTable) -> list[dict]:
    r = relative_residuals(result, table)
    if not np.all(np.isfinite(r)):
        return [diagnostic("nonfinite_prediction", INVALID, "the fitted surface gives a non-finite loss at some "
                           "of the runs it was fitted to")]
    rms, worst = float(np.sqrt(np.mean(r * r))), int(np.argmax(np.abs(r)))
    if rms <= RESIDUAL_RMS_WARNING and abs(r[worst]) <= RESIDUAL_MAX_WARNING:
        return []
    return [diagnostic("large_residuals", WARNING, f"the surface misses the runs by {rms:.1%} RMS (worst "
                       f"{r[worst]:+.1%} at {table.labels[worst]}, N = {table.N[worst]:.3g}, D = "
                       f"{table.D[worst]:.3g}): the form does not describe these data well")]


def _optimum_in_range(result: FitResult, table: RunTable) -> list[dict]:
    """At the largest budget trained, is the compute-optimal (N, D) finite and among the sizes trained?"""
    c_max = float(np.max(table.C))
    with np.errstate(all="ignore"):
        at = {k: float(np.asarray(v).ravel()[0]) for k, v in frontier.optimum(result, c_max).items()}
    out = []
    for name, values in (("N_opt", table.N), ("D_opt", table.D)):
        value = at[name]
        if not (np.isfinite(value) and value > 0):
            out.append(diagnostic("nonfinite_optimum", INVALID, f"{name} at the largest budget ({c_max:.3g} FLOPs) "
                                  f"is {value:.3g}: the fit has no compute-optimal frontier"))
            continue
        lo, hi = float(values.min()), float(values.max())
        factor = float(extrapolation_factor(value, lo, hi))
        if factor > EXTRAPOLATED_INVALID:
            out.append(diagnostic("optimum_far_outside", INVALID, f"{name} = {value:.3g} at the largest budget "
                                  f"({c_max:.3g} FLOPs) lies {factor:.3g}x beyond the range trained "
                                  f"[{lo:.3g}, {hi:.3g}]: not a result these runs support"))
        elif factor > 1.0:
            out.append(diagnostic("optimum_outside_range", WARNING, f"{name} = {value:.3g} at the largest budget "
                                  f"({c_max:.3g} FLOPs) lies {factor:.3g}x beyond the range trained "
                                  f"[{lo:.3g}, {hi:.3g}] (extrapolated)"))
    return out


def _lr_at_edge(table: RunTable) -> list[dict]:
    """--best-of lr: a point whose lowest-loss lr is the smallest or largest tried is not tuned, only
    bounded; its loss may be higher than the tuned one, which biases the law toward that size."""
    edges = [c for c in table.lr_choices if len(c.lrs) > 1 and c.at_edge]
    if not edges:
        return []
    worst = edges[0]
    side = "smallest" if worst.best == worst.lrs[0] else "largest"
    return [diagnostic("best_lr_at_edge", WARNING, f"at {len(edges)} of {len(table.lr_choices)} points the best "
                       f"lr is at the edge of the lrs tried (e.g. N = {worst.N:.3g}, D = {worst.D:.3g}: "
                       f"{worst.best:g}, the {side} of {len(worst.lrs)} from {worst.lrs[0]:g} to {worst.lrs[-1]:g}): "
                       "those losses may not be tuned; extend hparams.lr (or lr_multiplier) beyond that edge")]


def valid_samples(result: FitResult, samples: dict[str, np.ndarray], derived: dict[str, np.ndarray]) -> np.ndarray:
    """Which bootstrap refits are usable: finite, and not `invalid` under the per-fit checks above."""
    values = {**samples, **derived}
    ok = np.all([np.isfinite(v) for v in values.values()], axis=0)
    form = result.spec.form
    lo, hi = EXPONENT_RANGE
    with np.errstate(invalid="ignore"):
        if form == "chinchilla":
            for k in ("alpha", "beta"):
                ok &= (values[k] >= lo) & (values[k] <= hi)
            ok &= (values["A"] > 0) & (values["B"] > 0)
        elif form == "power_law":
            ok &= (values["a"] >= 0) & (values["a"] <= 1) & (values["b"] >= 0) & (values["b"] <= 1)
        elif form.startswith("kaplan"):
            for k in values:
                if k.startswith("alpha_"):
                    ok &= (values[k] >= lo) & (values[k] <= hi)
    if frontier.has_frontier(form) and result.fit_range:
        ok &= _optimum_within(form, samples, result.fit_range)
    return ok


def _optimum_within(form: str, samples: dict, rng: dict) -> np.ndarray:
    with np.errstate(all="ignore"):
        at = frontier.optimum_from_params(form, samples, rng["C"][1])
        ok = np.ones(len(next(iter(samples.values()))), bool)
        for name, key in (("N_opt", "N"), ("D_opt", "D")):
            value = np.asarray(at[name], float)
            ok &= np.isfinite(value) & (value > 0)
            ok &= extrapolation_factor(np.where(value > 0, value, 1.0), *rng[key]) <= EXTRAPOLATED_INVALID
    return ok


WIDE_A_INTERVAL = 0.5
# Quantities whose bootstrap should straddle the fit's own value (coefficients like k_N or G are skewed
# enough that a percentile interval can legitimately miss them).
CENTRED = ("a", "b", "alpha", "beta", "E", "alpha_N", "alpha_D")


def bootstrap_diagnostics(n: int, n_ok: int, level: float, intervals: dict,
                          result: FitResult | None = None) -> tuple[dict, ...]:
    out, failed = [], n - n_ok
    if result is not None and has_invalid(result.diagnostics):
        out.append(diagnostic("intervals_of_invalid_fit", WARNING, "the fit itself is invalid, while the "
                              "intervals come from the refits that are not: they describe other fits, not this "
                              "one, and are marked unreliable"))
    values = {} if result is None else {**result.params, **result.derived}
    outside = [k for k, (lo, hi) in intervals.items() if k in CENTRED and k in values and np.isfinite(values[k])
               and not lo <= values[k] <= hi]
    if outside and not has_invalid(result.diagnostics):
        out.append(diagnostic("estimate_outside_interval", WARNING, f"{', '.join(outside)}: the fit's own value "
                              "lies outside its bootstrap interval, so the replicates are not centred on this "
                              "fit; read the intervals with care"))
    if failed > UNRELIABLE_FAILURES * n:
        out.append(diagnostic("bootstrap_unreliable", WARNING, f"{failed} of {n} bootstrap refits failed or were "
                              f"degenerate ({failed / n:.0%} > {UNRELIABLE_FAILURES:.0%}): the intervals come from "
                              f"the {n_ok} that survived and are not {level:.0%} intervals"))
    lo, hi = intervals.get("a", (0.0, 0.0))
    if hi - lo > WIDE_A_INTERVAL:
        out.append(diagnostic("a_interval_wide", WARNING, f"the interval of a is [{lo:.2f}, {hi:.2f}], wider than "
                              f"{WIDE_A_INTERVAL}: the data do not pin down how N_opt grows with compute"))
    return tuple(out)


def compare_methods(results: list[FitResult], table: RunTable | None = None) -> tuple[dict, ...]:
    """Several methods on one table: do their exponents a agree within what their intervals allow? With the
    table, also how far this design alone moves approaches 1 and 2 (`design_bias`)."""
    have = [r for r in results if "a" in {**r.params, **r.derived} and np.isfinite(r.value("a"))
            and not has_invalid(r.diagnostics)]
    out = []
    for i, first in enumerate(have):
        for second in have[i + 1:]:
            gap = abs(first.value("a") - second.value("a"))
            allowed = _allowed_gap(first, second)
            if gap > allowed:
                out.append(diagnostic("methods_disagree", WARNING, f"{first.spec.method} gives a = "
                                      f"{first.value('a'):.3f}, {second.spec.method} a = {second.value('a'):.3f}: "
                                      f"they differ by {gap:.3f}, more than their intervals allow ({allowed:.3f})"))
    return tuple(out) + (design_bias(table, results) if table is not None else ())


def design_bias(table: RunTable, results: list[FitResult]) -> tuple[dict, ...]:
    """Approaches 1 and 2 read a off the sizes and budgets trained, so a sparse design can bias them with no
    noise at all. Each is refitted to approach 3's own noise-free law at its own runs: what it reads there,
    against the law's a, is the design's share of any disagreement with approach 3."""
    law = next((r for r in results if r.spec.form == "chinchilla" and not has_invalid(r.diagnostics)
                and r.spec.data_hash == table.data_hash), None)
    if law is None:
        return ()
    truth = law.value("a")
    out = []
    for r in results:
        if r.spec.method not in DESIGN_CHECKED or has_invalid(r.diagnostics) or r.spec.data_hash != table.data_hash:
            continue  # (a fit of another table, e.g. a given fit file, is not re-read on this one)
        read = _read_on_law(table, r, law.params)
        if read is None:
            out.append(diagnostic("design_bias", WARNING, f"{r.spec.method} cannot be fitted to {law.spec.method}'s "
                                  f"own noise-free law at these runs' sizes and budgets: this design cannot "
                                  f"support it, whatever the data"))
        elif abs(read - truth) > DESIGN_BIAS_WARNING:
            out.append(diagnostic("design_bias", WARNING, f"on {law.spec.method}'s own noise-free law (a = "
                                  f"{truth:.3f}) at these runs' sizes and budgets, {r.spec.method} reads a = "
                                  f"{read:.3f} ({read - truth:+.3f}): this design alone moves it by more than "
                                  f"{DESIGN_BIAS_WARNING}, so its gap from {law.spec.method} is partly the design's "
                                  "(more sizes per budget, budgets closer together)"))
    return tuple(out)


def _read_on_law(table: RunTable, result: FitResult, law: dict) -> float | None:
    import dataclasses

    from analysis import fitting  # fitting imports this module

    accepted = fitting.method(result.spec.method).options()
    given = result.spec.options or {}
    options = {k: v for k, v in given.items() if k in accepted and k not in ("drop_highest", "budgets")}
    if "budgets" in accepted:  # approach 2 records how it found the budgets; the list given is kept beside
        options["budgets"] = given.get("given_budgets")
    rows = fitting.fitted_rows(table, result)
    clean = dataclasses.replace(rows, loss=frontier.chinchilla_loss(law, rows.N, rows.D))
    try:
        a = fitting.fit(clean, result.spec.method, **options).value("a")
    except DataError:
        return None
    return float(a) if np.isfinite(a) else None


def _allowed_gap(first: FitResult, second: FitResult) -> float:
    """Half-widths of the two intervals combined in quadrature; 0.1 when either has no interval."""
    half = []
    for r in (first, second):
        ci = (r.intervals or {}).get("a")
        if ci is None or not (r.bootstrap or {}).get("reliable", False):
            return 0.1
        half.append((ci[1] - ci[0]) / 2)
    return float(np.hypot(*half))
