import numpy as np
import pandas as pd
import pytest

from analysis.backtest import backtest
from analysis.resampling import bootstrap
from analysis.fitting import fit
from analysis.isoflop import nominal_budgets
from analysis.reporting import figures
from analysis_helpers import chinchilla_surface


@pytest.fixture(scope="module")
def fitted():
    table, truth = chinchilla_surface(budgets=(1e17, 1e18, 1e19), sizes_per_budget=5, width=0.8, noise=0.003)
    surface = bootstrap(table, fit(table, "parametric"), n=20, seed=0)
    iso = bootstrap(table, fit(table, "isoflop"), n=20, seed=0)
    nominal, _ = nominal_budgets(table)
    return table, surface, iso, nominal


def labelled(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_title() is not None, ax
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_pow10_labels():
    assert figures.pow10(1e11) == "$10^{11}$"
    assert figures.pow10(3e10) == "$3{\\times}10^{10}$"
    assert figures.pow10(9.99e10) == "$10^{11}$"


def test_isoflop_draws_a_parabola_and_minimum_per_budget(fitted):
    table, surface, iso, nominal = fitted
    fig = figures.isoflop_curves(table, nominal, iso, surface)
    (ax,) = labelled(fig)
    assert ax.get_xscale() == "log" and "parameters" in ax.get_xlabel() and ax.get_ylabel() == table.loss_label
    stars = [c for c in ax.collections if c.get_offsets().shape[0] == 1]
    assert len(stars) == 3  # one minimum per budget
    minima = sorted(float(s.get_offsets()[0, 0]) for s in stars)
    expected = sorted(r["N_opt"] for r in iso.details["per_budget"])
    np.testing.assert_allclose(minima, expected, rtol=1e-9)
    assert len([ln for ln in ax.lines if ln.get_linestyle() == "--"]) == 3  # the surface along each budget


def test_frontier_has_bands_references_and_log_axes(fitted):
    table, surface, iso, _ = fitted
    fig = figures.frontier_lines([surface, iso], table, iso)
    ax_n, ax_d = labelled(fig)
    for ax in (ax_n, ax_d):
        assert ax.get_xscale() == ax.get_yscale() == "log" and "FLOPs" in ax.get_xlabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("Chinchilla approach 3" in t for t in labels) and any("Kaplan" in t for t in labels)
    assert any("D = 20 N" in t for t in labels)
    bands = [c for c in ax_n.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")]
    assert len(bands) == 2  # one bootstrap band per fit


def test_surface_residuals_and_backtest(fitted, tmp_path):
    table, surface, _, nominal = fitted
    fig = figures.surface_contours(surface, table, nominal)
    ax = labelled(fig)[0]
    assert ax.get_xscale() == ax.get_yscale() == "log" and "tokens" in ax.get_ylabel()
    fig = figures.residuals(surface, table, nominal)
    ax_n, _ = labelled(fig)
    assert "%" in ax_n.get_ylabel() and "RMS" in ax_n.get_title()
    bt = backtest(table, "parametric", by="C", cutoff=1e18)
    fig = figures.backtest_scatter(bt, table)
    ax = labelled(fig)[0]
    assert "observed" in ax.get_xlabel() and "predicted" in ax.get_ylabel()
    paths = figures.save(fig, tmp_path, "backtest")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 10_000 for p in paths)


def test_loss_curves_by_size():
    curves = {f"run{i}": pd.DataFrame({"step": [1, 2, 3], "tokens": [1e5, 2e5, 3e5], "loss": [4.0, 3.5, 3.2],
                                       "flops_exact": [1e10, 2e10, 3e10], "val_loss": [np.nan, np.nan, 3.3]})
              for i in range(3)}
    sizes = {"run0": 1e4, "run1": 3e4, "run2": 1e5}
    fig = figures.loss_curves(curves, sizes)
    axes = labelled(fig)
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    assert len(axes[0].lines) == 3
    assert any("model size N" in ax.get_ylabel() for ax in fig.axes)  # the colour bar says what colour means
    assert figures.loss_curves({}, sizes) is None


def lr_table(best_lr):
    """chinchilla_surface trained at four lrs per point, loss quadratic in log lr about best_lr(N)."""
    from analysis.loading import load_runs

    clean, _ = chinchilla_surface(budgets=(1e17, 1e18), sizes_per_budget=3, width=0.5)
    rows = [{"N": n, "D": d, "C": c, "budget": c, "lr": lr, "loss": loss + 0.1 * np.log(lr / best_lr(n)) ** 2}
            for n, d, c, loss in zip(clean.N, clean.D, clean.C, clean.loss) for lr in (1e-3, 2e-3, 4e-3, 8e-3)]
    return load_runs(pd.DataFrame(rows))


def test_lr_sweep_has_a_panel_per_budget_a_line_per_size_and_marks_the_lr_kept():
    largest = 2e8  # only the largest size of the larger budget wants an lr below the grid
    table = lr_table(lambda n: 2e-3 if n < largest else 0.5e-3)
    assert sum(choice.at_edge for choice in table.lr_choices) == 1
    fig = figures.lr_sweep(table)
    axes = labelled(fig)
    assert [ax.get_title() for ax in axes] == [f"C = {figures.pow10(c)} FLOPs" for c in (1e17, 1e18)]
    for ax, c in zip(axes, (1e17, 1e18)):
        here = [choice for choice in table.lr_choices if choice.budget == c]
        assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
        assert len(ax.get_lines()) == len(here) == 3  # one line per size
        stars = [tuple(col.get_offsets()[0]) for col in ax.collections]
        assert sorted(stars) == sorted((ch.best, ch.losses[ch.lrs.index(ch.best)]) for ch in here)
        edge = [ch for ch in here if ch.at_edge]
        assert all(ch.best == 1e-3 and ch.N >= largest for ch in edge)
        hollow = [col for col in ax.collections if tuple(col.get_facecolor()[0]) == (1.0, 1.0, 1.0, 1.0)]
        assert len(hollow) == len(edge)


def test_lr_sweep_draws_nothing_without_an_lr_list(fitted):
    table, *_ = fitted
    assert table.lr_choices == () and figures.lr_sweep(table) is None
