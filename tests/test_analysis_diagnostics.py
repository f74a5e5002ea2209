"""Fits that know when they are wrong: each failure case of issue 11 as a small synthetic table with a
known truth, checked through the diagnostics every result carries."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis import diagnostics
from analysis.resampling import bootstrap
from analysis.fitting import fit
from analysis.loading import from_arrays, load_runs
from analysis.result import FitResult, FitSpec
from analysis_helpers import chinchilla_surface, ladder_isoflop_table
from scaling.errors import DataError

TRUE_A = 0.28 / (0.34 + 0.28)  # beta / (alpha + beta) of chinchilla_surface's default truth


def codes(result) -> list[str]:
    return [d["code"] for d in result.diagnostics]


def shifted_budget_table(factor: float = 20.0):
    """Five clean isoFLOP budgets, the smallest one trained only at sizes `factor` x above its optimum
    (its parabola minimum has to be extrapolated far below the sizes trained)."""
    table, _ = chinchilla_surface(sizes_per_budget=5, width=0.6)
    N, D, C = table.N.copy(), table.D.copy(), table.C.copy()
    first = C == C.min()
    N[first] *= factor
    D[first] = C[first] / (6 * N[first])
    loss = 1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28
    return from_arrays(N, D, loss, C=C, budget=C)


def test_an_extrapolated_minimum_is_left_out_by_default_and_named():
    table = shifted_budget_table()
    result = fit(table, "isoflop")
    outside = [d for d in result.diagnostics if d["code"] == "minimum_outside_sizes"]
    assert len(outside) == 1 and "1e+17" in outside[0]["message"] and "left out" in outside[0]["message"]
    assert abs(result.derived["a"] - TRUE_A) < 0.02
    kept = fit(table, "isoflop", keep_extrapolated=True)
    assert "kept" in [d for d in kept.diagnostics if d["code"] == "minimum_outside_sizes"][0]["message"]
    # The extrapolated minimum drags a away from the truth: that is why it is left out by default.
    assert abs(kept.derived["a"] - TRUE_A) > 2 * abs(result.derived["a"] - TRUE_A)


def test_a_downward_parabola_is_left_out_and_named():
    table, _ = chinchilla_surface(sizes_per_budget=5, width=0.6)
    loss = table.loss.copy()
    last = table.C == table.C.max()
    loss[last] = loss[last].max() - 0.05 * (np.log(table.N[last]) - np.log(table.N[last]).mean()) ** 2
    result = fit(from_arrays(table.N, table.D, loss, C=table.C, budget=table.C), "isoflop")
    down = [d for d in result.diagnostics if d["code"] == "parabola_opens_downwards"]
    assert len(down) == 1 and "1e+21" in down[0]["message"]
    used = [r for r in result.details["per_budget"] if r["used"]]
    assert len(used) == 4 and abs(result.derived["a"] - TRUE_A) < 0.02


def test_approach_2_refuses_when_no_budget_is_usable_and_says_why():
    table, _ = chinchilla_surface(budgets=(1e18, 1e19), sizes_per_budget=4, width=0.5)
    shifted = table.N * 30
    loss = 1.69 + 406.4 / shifted ** 0.34 + 410.7 / (table.C / (6 * shifted)) ** 0.28
    with pytest.raises(DataError, match="minimum N = .* lies .*x below the smallest size.*--keep-extrapolated"):
        fit(from_arrays(shifted, table.C / (6 * shifted), loss, C=table.C, budget=table.C), "isoflop")


def test_a_degenerate_replicate_counts_as_a_failed_refit():
    result = fit(chinchilla_surface(noise=0.01)[0], "isoflop")
    samples = {"k_N": np.array([0.1, 0.1, 0.1]), "a": np.array([0.45, -11.4, 0.46]),
               "k_D": np.array([1.0, 1.0, 1.0]), "b": np.array([0.55, 0.5, 0.54])}
    far = dict(samples, k_N=np.array([0.1, 0.1, 1e30]))  # N_opt = 1e30 x C^a: far beyond the sizes
    assert diagnostics.valid_samples(result, samples, {}).tolist() == [True, False, True]
    assert diagnostics.valid_samples(result, far, {}).tolist() == [True, False, False]


def test_bootstrap_of_a_small_isoflop_sweep_keeps_its_refits():
    """The demo's shape (3 budgets x 4 sizes): resampling runs drops sizes and most refits fail;
    resampling residuals with the design kept leaves nearly all usable, and says how many."""
    table, _ = chinchilla_surface(budgets=(1e17, 1e18, 1e19), sizes_per_budget=4, width=0.5, noise=0.005)
    result = fit(table, "isoflop")
    cases = bootstrap(table, result, n=100, seed=1, resample="cases")
    residuals = bootstrap(table, result, n=100, seed=1)
    assert cases.bootstrap["n_ok"] < 80 and not cases.bootstrap["reliable"]
    assert "bootstrap_unreliable" in codes(cases)
    assert residuals.bootstrap["scheme"] == "residuals" and residuals.bootstrap["n_ok"] >= 95
    assert residuals.bootstrap["reliable"] and "bootstrap_unreliable" not in codes(residuals)
    lo, hi = residuals.intervals["a"]
    assert 0 <= lo <= TRUE_A <= hi <= 1


def test_non_finite_values_are_json_null_with_a_diagnostic():
    spec = FitSpec(method="kaplan", form="kaplan_nd", loss="huber_log", delta=1e-3, init_grid=None,
                   n_convention="total", flops="given", data_hash="x", n_points=10)
    result = FitResult(spec=spec, params={"N_c": float("inf"), "D_c": 1e13, "alpha_N": 0.07, "alpha_D": 0.09},
                       predictions=[{"C": 1e20, "N_opt": float("inf"), "D_opt": 0.0}])
    found = diagnostics._nonfinite(result)
    assert found[0]["code"] == "nonfinite_value" and "N_c" in found[0]["message"]
    text = result.to_json()
    parsed = json.loads(text)  # strict JSON: no Infinity or NaN tokens
    assert parsed["params"]["N_c"] is None and parsed["predictions"][0]["N_opt"] is None
    assert "Infinity" not in text and "NaN" not in text


def test_a_collapsed_irreducible_loss_is_flagged():
    N = np.repeat([1e7, 3e7, 1e8, 3e8, 1e9], 4)
    D = np.tile([1e9, 3e9, 1e10, 3e10], 5)
    loss = 406.4 / N ** 0.34 + 410.7 / D ** 0.28  # E = 0: nothing irreducible to find
    result = fit(from_arrays(N, D, loss), "vpnls")
    assert "E_collapsed" in codes(result)
    assert [d["severity"] for d in result.diagnostics if d["code"] == "E_collapsed"] == ["warning"]


def test_a_table_of_budget_tokens_and_loss_gets_n_from_c_and_d(tmp_path):
    table, _ = chinchilla_surface(sizes_per_budget=5, width=0.6)
    path = tmp_path / "isoflops.csv"
    pd.DataFrame({"budget": table.C, "tokens": table.D, "loss": table.loss}).to_csv(path, index=False)
    loaded = load_runs(path, columns={"C": "budget", "D": "tokens"})
    np.testing.assert_allclose(loaded.N, table.N, rtol=1e-12)
    assert any(n.startswith("N derived as C/(6D)") for n in loaded.notes)
    assert abs(fit(loaded, "isoflop").derived["a"] - TRUE_A) < 0.02


def test_budgets_without_a_column_are_geometric_means_and_a_plus_b_is_one():
    """Runs near (not at) their budgets, as digitised tables give them: rounding the clusters to one
    significant figure moved a and broke a + b = 1."""
    table, _ = chinchilla_surface(budgets=(1.25e16, 2.56e17, 2.56e18, 2.56e19), sizes_per_budget=5, width=0.6)
    jitter = np.exp(np.random.default_rng(0).uniform(-0.03, 0.03, len(table)))
    C = table.C * jitter
    result = fit(from_arrays(table.N, C / (6 * table.N), table.loss, C=C), "isoflop")
    budgets = sorted(r["C"] for r in result.details["per_budget"])
    assert budgets[0] != 1e16 and abs(np.log(budgets[0] / 1.25e16)) < 0.03
    assert result.derived["a"] + result.derived["b"] == pytest.approx(1.0, abs=1e-9)


def test_exponents_out_of_range_make_a_fit_invalid():
    spec = FitSpec(method="isoflop", form="power_law", loss="ols_loglog", delta=None, init_grid=None,
                   n_convention="total", flops="given", data_hash="x", n_points=12)
    result = FitResult(spec=spec, params={"k_N": 1.0, "a": -1.4e-14, "k_D": 1.0, "b": 1.0},
                       details={"n_power_law_points": 3})
    found = diagnostics._power_law(result) + diagnostics._few_points(result)
    assert {d["code"]: d["severity"] for d in found} == {"a_out_of_range": "invalid", "b_extreme": "warning",
                                                         "few_points": "warning"}
    assert diagnostics.has_invalid(found)


def test_an_optimum_far_beyond_the_sizes_trained_is_invalid():
    table, truth = chinchilla_surface(noise=0.0)
    result = fit(table, "vpnls")
    assert not diagnostics.has_invalid(result.diagnostics)
    wrong = FitResult(spec=result.spec, params=dict(result.params, A=result.params["A"] * 1e12),
                      derived=result.derived)
    found = diagnostics._optimum_in_range(wrong, table)
    assert [d["code"] for d in found][:1] == ["optimum_far_outside"] and found[0]["severity"] == "invalid"


def test_methods_that_disagree_on_a_are_flagged():
    table, _ = chinchilla_surface(noise=0.0)
    first = fit(table, "isoflop")
    second = FitResult(spec=first.spec, params=dict(first.params, a=first.params["a"] + 0.3),
                       derived={"a": first.params["a"] + 0.3})
    assert [d["code"] for d in diagnostics.compare_methods([first, second])] == ["methods_disagree"]
    assert diagnostics.compare_methods([first, first]) == ()


def test_n_and_d_scaled_out_of_float_range_are_refused():
    table, _ = chinchilla_surface()
    frame = pd.DataFrame({"N": table.N * 1e290, "D": table.D * 1e290, "loss": table.loss})
    with pytest.raises(DataError, match="overflows"):
        load_runs(frame)


def test_approach_1_refuses_a_single_winning_size():
    """The demo's failure: one size wins at every covered budget, and the power law through it had a = 1e-14."""
    N = np.repeat([1e7, 2e7, 4e7], 3)
    C = np.tile([1e17, 2e17, 4e17], 3)
    D = C / (6 * N)
    loss = 3.0 + 0.2 * (np.log(N / 2e7)) ** 2 - 0.05 * np.log(C / 1e17)  # N = 2e7 is best everywhere
    with pytest.raises(DataError, match="same size .* has the lowest loss at every budget"):
        fit(from_arrays(N, D, loss, C=C), "envelope")


def test_a_collapsed_allocation_exponent_is_invalid():
    spec = FitSpec(method="envelope", form="power_law", loss="ols_loglog", delta=None, init_grid=None,
                   n_convention="total", flops="given", data_hash="x", n_points=12)
    result = FitResult(spec=spec, params={"k_N": 1.6e4, "a": 7.7e-15, "k_D": 1e-5, "b": 0.5})
    assert [d["code"] for d in diagnostics._power_law(result)] == ["a_collapsed"]


def test_approach_1_bootstrap_is_centred_on_curved_learning_curves():
    """Learning curves bend towards their floor: a straight-line smoother moved the replicates' envelope
    and gave an interval for a that missed the fit's own a."""
    N = np.repeat(np.logspace(7, 9.5, 10), 12)
    D = np.tile(np.logspace(8.5, 11.5, 12), 10)
    table = from_arrays(N, D, 1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28)
    result = bootstrap(table, fit(table, "envelope"), n=100, seed=0)
    lo, hi = result.intervals["a"]
    assert lo <= result.derived["a"] <= hi and "estimate_outside_interval" not in codes(result)


def test_intervals_of_an_invalid_fit_are_never_called_reliable():
    table = shifted_budget_table(factor=40.0)
    result = fit(table, "isoflop", keep_extrapolated=True)
    forced = dataclasses.replace(result, diagnostics=result.diagnostics + (
        diagnostics.diagnostic("made_invalid", diagnostics.INVALID, "by the test"),))
    boot = bootstrap(table, forced, n=40, seed=0)
    assert not boot.bootstrap["reliable"] and "intervals_of_invalid_fit" in codes(boot)


def test_approach_2_says_when_parabolas_or_the_power_law_miss_their_points():
    table, _ = chinchilla_surface(sizes_per_budget=7, width=0.8)
    bumpy = table.loss * (1 + 0.08 * (np.arange(len(table)) % 2))  # every other run 8% higher
    assert "parabola_misfit" in codes(fit(from_arrays(table.N, table.D, bumpy, C=table.C, budget=table.C),
                                          "isoflop"))
    # Optima that wander by a factor of 3 from budget to budget: the power law only loosely describes them.
    shift = np.repeat(np.exp([0.0, 1.1, -1.1, 1.1, -1.1]), 7)
    N = table.N * shift
    D = table.C / (6 * N)
    loss = 1.69 + 406.4 / (N / shift) ** 0.34 + 410.7 / (D * shift) ** 0.28  # each profile moved along N
    found = codes(fit(from_arrays(N, D, loss, C=table.C, budget=table.C), "isoflop"))
    assert "power_law_scatter" in found and "parabola_misfit" not in found


def lr_sweep_table(best_lr):
    """The isoFLOP design of chinchilla_surface trained at three lrs per point; a point's loss rises
    quadratically in log lr away from best_lr(N), so the tuned rows are the clean surface near it."""
    clean, _ = chinchilla_surface(sizes_per_budget=5, width=0.6)
    rows = [{"N": n, "D": d, "C": c, "budget": c, "lr": lr, "run_id": f"{i}-{lr:g}",
             "loss": loss + 0.1 * np.log(lr / best_lr(n)) ** 2}
            for i, (n, d, c, loss) in enumerate(zip(clean.N, clean.D, clean.C, clean.loss))
            for lr in (1e-3, 2e-3, 4e-3)]
    return load_runs(pd.DataFrame(rows))


def test_a_best_lr_at_the_edge_of_its_grid_is_flagged_and_an_inner_one_is_not():
    assert "best_lr_at_edge" not in codes(fit(lr_sweep_table(lambda n: 2e-3), "isoflop"))
    large = 2e9  # the largest sizes of the design want a smaller lr than any tried
    table = lr_sweep_table(lambda n: 2e-3 if n < large else 0.5e-3)
    flagged = [d for d in fit(table, "isoflop").diagnostics if d["code"] == "best_lr_at_edge"]
    n_edge = int(np.sum(table.N >= large))
    assert n_edge > 0 and len(flagged) == 1 and flagged[0]["severity"] == diagnostics.WARNING
    message = flagged[0]["message"]
    assert f"at {n_edge} of {len(table)} points" in message and "the smallest of 3" in message


def test_a_design_that_biases_approach_1_on_a_known_law_is_flagged_with_what_it_reads_there():
    table = ladder_isoflop_table([1e17, 1e18, 1e19, 1e20], per_budget=3, step=4.0)
    law, envelope = fit(table, "parametric"), fit(table, "envelope")
    assert law.value("a") == pytest.approx(TRUE_A, abs=1e-3)  # noise-free: approach 3 recovers the law
    found = [d for d in diagnostics.compare_methods([law, envelope], table) if d["code"] == "design_bias"]
    # The table is the law itself, so what approach 1 reads on it is its design bias, all of it.
    assert abs(envelope.value("a") - TRUE_A) > diagnostics.DESIGN_BIAS_WARNING
    assert len(found) == 1 and found[0]["severity"] == "warning"
    assert f"envelope reads a = {envelope.value('a'):.3f}" in found[0]["message"]


def test_a_dense_design_gives_no_design_bias_and_without_a_law_nothing_is_checked():
    table = ladder_isoflop_table(np.logspace(17, 20, 13), per_budget=7, step=1.4)
    law, envelope, isoflop = fit(table, "parametric"), fit(table, "envelope"), fit(table, "isoflop")
    assert abs(envelope.value("a") - TRUE_A) < diagnostics.DESIGN_BIAS_WARNING
    assert diagnostics.design_bias(table, [law, envelope, isoflop]) == ()
    assert diagnostics.design_bias(table, [envelope, isoflop]) == ()
