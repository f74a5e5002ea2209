import numpy as np
import pytest

from analysis import design_audit
from analysis.fitting import fit, quiet_numerics
from analysis.loading import from_arrays
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

# A synthetic truth with a = beta / (alpha + beta) = 0.45, and a design of 3 budgets x 6 sizes (16x span)
# centred on its optimum.
TRUTH = design_audit.Prior({"E": 1.0, "A": 60.0, "B": 400.0, "alpha": 0.44, "beta": 0.36}, "synthetic truth")
BUDGETS = (1e11, 3e11, 1e12)
NOISE = 0.01


def n_opt(prior, flops):
    p = prior.params
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    return G * (flops / 6) ** prior.a


def design(offsets=None, span=16.0, points=6):
    """Sizes log-spaced over `span` around N_opt(C) times offsets[C] (1: centred), on C = 6ND."""
    N, C = [], []
    for flops in BUDGETS:
        centre = n_opt(TRUTH, flops) * (offsets or {}).get(flops, 1.0)
        N += list(centre * np.geomspace(span ** -0.5, span ** 0.5, points))
        C += [flops] * points
    N, C = np.array(N), np.array(C)
    return design_audit.Design(N=N, D=C / (6 * N), C=C, budget=C)


def width(a):
    lo, hi = np.percentile(a, [2.5, 97.5])
    return hi - lo


@pytest.fixture(scope="module")
def centred_audit():
    with quiet_numerics():
        return design_audit.audit(design(), TRUTH, NOISE, "test", draws=200, seed=0)


def test_predicted_interval_of_a_agrees_with_real_fits_on_simulated_sweeps(centred_audit):
    """The audit's interval widths against a Monte-Carlo of `analysis.fitting.fit` on independently drawn
    tables of the same design (approach 3 from a small start grid around the truth, to stay fast)."""
    d = design()
    losses = design_audit.simulate_losses(d, TRUTH, NOISE, draws=200, seed=123)
    tables = [from_arrays(d.N, d.D, loss, C=d.C, budget=d.budget) for loss in losses]
    a2 = [fit(t, "isoflop").params["a"] for t in tables]
    grid = {"name": "small", "alpha": [0.3, 0.6], "beta": [0.25, 0.5], "e": [-0.2, 0.2], "a": [3.0, 5.0],
            "b": [5.0, 7.0]}
    a3 = [fit(t, "parametric", grid=grid).derived["a"] for t in tables[:100]]
    assert width(centred_audit.approach2.usable) == pytest.approx(width(a2), rel=0.3)
    # 100 fits: compare the normal-theory width (3.92 SD), steadier than percentiles of 100 values.
    predicted3 = 3.92 * np.std(centred_audit.approach3.usable)
    assert predicted3 == pytest.approx(3.92 * np.std(a3), rel=0.3)
    assert np.mean(a3) == pytest.approx(TRUTH.a, abs=0.03)  # the real fits find the truth: the design is sound


def test_centred_design_uses_every_budget_and_pins_a(centred_audit):
    assert [c.side for c in centred_audit.budgets] == [None, None, None]
    assert all(c.usable_share > 0.9 for c in centred_audit.budgets)
    lo, hi = centred_audit.approach3.interval()
    assert lo < TRUTH.a < hi
    assert abs(centred_audit.approach2_bias) < 0.05
    assert "this design pins a to ±" in design_audit.verdict(centred_audit)


def test_more_noise_widens_the_interval():
    with quiet_numerics():
        quiet = design_audit.audit(design(), TRUTH, NOISE, "test", draws=100, seed=0)
        loud = design_audit.audit(design(), TRUTH, 4 * NOISE, "test", draws=100, seed=0)
    assert loud.approach3.half_width() > 2 * quiet.approach3.half_width()


def test_a_budget_whose_minimum_is_below_its_sizes_is_named():
    offsets = {1e11: 16.0}  # the smallest budget's sizes run from 4x to 64x its optimum
    with quiet_numerics():
        result = design_audit.audit(design(offsets), TRUTH, NOISE, "test", draws=60, seed=0)
    first = result.budgets[0]
    assert first.flops == 1e11 and first.side == "below"
    assert first.expected_n_opt < first.n_min
    assert first.usable_share < 0.2
    assert [c.side for c in result.budgets[1:]] == [None, None]
    line = design_audit.verdict(result)
    assert line.startswith("budget 1e+11: minimum below the smallest size, approach 2 cannot use it")
    text = design_audit.format_audit(result)
    assert "budget 1e+11: expected minimum" in text and "BELOW the smallest size" in text


@pytest.mark.parametrize("noise", [0.0, -0.01, float("nan")])
def test_noise_must_be_positive(noise):
    with pytest.raises(DataError, match="audit-noise"):
        design_audit.audit(design(), TRUTH, noise, "test", draws=50)


def test_too_few_draws_are_refused():
    with pytest.raises(DataError, match="at least"):
        design_audit.audit(design(), TRUTH, NOISE, "test", draws=5)


def test_a_fit_without_a_loss_surface_is_refused():
    spec = FitSpec(method="isoflop", form="power_law", loss="ols_loglog", delta=None, init_grid=None,
                   n_convention="total", flops="exact", data_hash="x", n_points=9)
    result = FitResult(spec=spec, params={"k_N": 0.1, "a": 0.5, "k_D": 1.0, "b": 0.5})
    with pytest.raises(DataError, match="L\\(N, D\\) surface"):
        design_audit.prior_from_fit(result, "fit.json")


def test_default_prior_states_its_source():
    prior = design_audit.default_prior()
    assert "make demo" in prior.source
    assert 0.3 < prior.a < 0.8


def test_a_budget_with_too_few_sizes_is_named():
    d = design(points=6)
    keep = (d.budget != 1e11) | (d.N < np.sort(d.N[d.budget == 1e11])[2])  # 2 sizes left at 1e11
    few = design_audit.Design(d.N[keep], d.D[keep], d.C[keep], d.budget[keep])
    with quiet_numerics():
        result = design_audit.audit(few, TRUTH, NOISE, "test", draws=30, seed=0)
    assert result.budgets[0].side == "few" and result.budgets[0].usable_share == 0
    assert design_audit.verdict(result).startswith("budget 1e+11: fewer than 3 sizes, approach 2 cannot use it")


def seed_results(sd, seeds=8, seed=0):
    """results.parquet-like rows: 6 (N, C) points x `seeds` seeds with log-normal noise `sd`, plus runs at
    another lr (one seed each, far off) that are not seed repeats."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(np.geomspace(1e4, 1e5, 6)):
        for s in range(seeds):
            rows.append({"n_params": int(n), "tokens": 10 ** 6, "budget": 1e12, "lr": 1e-3, "seed": s,
                         "status": "completed", "final_val_loss": (2.0 + i * 0.1) * np.exp(sd * rng.standard_normal())})
        rows.append({"n_params": int(n), "tokens": 10 ** 6, "budget": 1e12, "lr": 1e-2, "seed": 0,
                     "status": "completed", "final_val_loss": 5.0 + i})
    rows.append({"n_params": 1, "tokens": 1, "budget": 1e12, "lr": 1e-3, "seed": 1, "status": "failed",
                 "final_val_loss": float("nan")})
    return pd.DataFrame(rows)


def test_noise_is_measured_from_runs_that_differ_only_in_seed():
    sd, groups = design_audit.seed_repeat_noise(seed_results(0.03, seeds=30))
    assert groups == 6
    assert sd == pytest.approx(0.03, rel=0.1)  # 174 degrees of freedom: about 5% standard error


def test_results_without_seed_repeats_are_refused():
    frame = seed_results(0.03, seeds=1)
    with pytest.raises(DataError, match="no seed repeats"):
        design_audit.seed_repeat_noise(frame)
    with pytest.raises(DataError, match="seed"):
        design_audit.seed_repeat_noise(frame.drop(columns=["seed"]))


def test_a_budget_whose_minimum_sits_near_an_edge_is_named():
    offsets = {1e11: 3.2}  # the optimum sits just inside the smallest budget's smallest size
    with quiet_numerics():
        result = design_audit.audit(design(offsets), TRUTH, 3 * NOISE, "test", draws=60, seed=0)
    first = result.budgets[0]
    assert first.side is None and first.usable_share < design_audit.OFTEN_USED
    assert design_audit.verdict(result).startswith("budget 1e+11: minimum near the edge of its sizes, approach 2 "
                                                   "loses it in ")


def ladder_design(budgets, per_budget: int, step: float):
    """Sizes from one ladder (so they recur across budgets, as approach 1 needs): per budget the
    `per_budget` rungs nearest the truth's N_opt."""
    ladder = 1e3 * step ** np.arange(40)
    N, C = [], []
    for flops in budgets:
        k = int(np.argmin(abs(np.log(ladder / n_opt(TRUTH, flops)))))
        rungs = ladder[k - per_budget // 2: k - per_budget // 2 + per_budget]
        N += list(rungs)
        C += [flops] * len(rungs)
    N, C = np.array(N), np.array(C)
    return design_audit.Design(N=N, D=C / (6 * N), C=C, budget=C)


def test_approach_1_is_read_on_the_noise_free_prior_and_a_biased_grid_is_named_in_the_verdict():
    from analysis.envelope import fit_envelope
    from analysis.frontier import chinchilla_loss
    sparse = ladder_design(np.geomspace(1e11, 1e14, 7), per_budget=4, step=4.0)  # sizes 4x apart
    with quiet_numerics():
        result = design_audit.audit(sparse, TRUTH, NOISE, "test", draws=40, seed=0)
    clean = chinchilla_loss(TRUTH.params, sparse.N, sparse.D)
    expected = fit_envelope(from_arrays(sparse.N, sparse.D, clean, C=sparse.C, budget=sparse.budget)).derived["a"]
    assert result.approach1_noise_free == pytest.approx(expected)
    assert abs(result.approach1_bias) > 0.05
    assert f"approach 1 reads a {result.approach1_bias:+.2f} off even without noise" in design_audit.verdict(result)
    assert f"a = {expected:.3f} (bias" in design_audit.format_audit(result)


def test_a_dense_grid_leaves_approach_1_out_of_the_verdict_and_an_unfittable_one_says_why(centred_audit):
    dense = ladder_design(np.geomspace(1e11, 1e14, 13), per_budget=7, step=1.4)
    assert abs(design_audit.approach1_on_prior(dense, TRUTH) - TRUTH.a) < 0.05
    # Sizes that never recur across budgets give approach 1 no curves: the audit says so instead of a number.
    assert "approach 1 needs at least 2 model sizes" in centred_audit.approach1_noise_free
    assert "approach 1" not in design_audit.verdict(centred_audit)
    assert "approach 1 on the noise-free prior at these runs: not fitted" in design_audit.format_audit(centred_audit)
