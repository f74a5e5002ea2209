import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis import figure_style
from analysis.backtest import backtest
from analysis.resampling import bootstrap
from analysis.fitting import fit
from analysis.isoflop import nominal_budgets
from analysis.reporting import figures
from analysis.loading import from_arrays
from analysis_helpers import chinchilla_surface
from figure_helpers import data_points, drawn_texts, overlapping, text_box


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
    paths = figure_style.save(fig, tmp_path, "backtest")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 10_000 for p in paths)
    paths = figure_style.save(fig, tmp_path, "backtest", "svg,pdf")
    assert ax.get_ylabel() in re.findall(r"<text[^>]*>([^<]*)</text>", paths[0].read_text())  # editable text
    assert b"/FontFile2" in paths[1].read_bytes()


def three_curves():
    curves = {f"run{i}": pd.DataFrame({"step": [1, 2, 3], "tokens": [1e5, 2e5, 3e5], "loss": [4.0, 3.5, 3.2],
                                       "flops_exact": [1e10, 2e10, 3e10], "val_loss": [np.nan, np.nan, 3.3]})
              for i in range(3)}
    return curves, {"run0": 1e4, "run1": 3e4, "run2": 1e5}


def test_loss_curves_by_size():
    curves, sizes = three_curves()
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


def every_figure(fitted, style="screen", axes=None):
    """Each public figure function of the module, drawn from the fixtures: name -> (panels, draw(ax))."""
    table, surface, iso, nominal = fitted
    bt = backtest(table, "parametric", by="C", cutoff=1e18)
    curves, sizes = three_curves()
    lr = lr_table(lambda n: 2e-3)
    return {
        "loss_curves": (2, lambda ax: figures.loss_curves(curves, sizes, ax=ax, style=style)),
        "isoflop": (1, lambda ax: figures.isoflop_curves(table, nominal, iso, surface, ax=ax, style=style)),
        "frontier": (2, lambda ax: figures.frontier_lines([surface, iso], table, iso, ax=ax, style=style)),
        "surface": (1, lambda ax: figures.surface_contours(surface, table, nominal, ax=ax, style=style)),
        "residuals": (2, lambda ax: figures.residuals(surface, table, nominal, ax=ax, style=style)),
        "backtest": (1, lambda ax: figures.backtest_scatter(bt, table, ax=ax, style=style)),
        "lr_sweep": (len(figures.lr_panels(lr)), lambda ax: figures.lr_sweep(lr, ax=ax, style=style)),
    }


def test_every_figure_draws_into_the_axes_given(fitted):
    for name, (n, draw) in every_figure(fitted).items():
        fig = Figure(figsize=(10, 8))
        given = list(fig.subplots(1, n, squeeze=False).ravel())
        assert draw(given[0] if n == 1 else given) is fig, name
        for ax in given:
            assert ax.lines or ax.collections, f"{name}: nothing drawn into {ax}"
        assert all(ax in given or ax.get_label() == "<colorbar>" for ax in fig.axes), name  # no axes of its own
        with pytest.raises(ValueError, match="panel"):
            draw(given[:1] if n > 1 else given * 2)


def test_paper_figures_are_a_column_wide_with_no_text_under_7_pt(fitted):
    for name, (_, draw) in every_figure(fitted, "paper").items():
        fig = draw(None)
        assert fig.get_figwidth() == pytest.approx(3.5), name
        small = [(t.get_text(), t.get_fontsize()) for t in drawn_texts(fig) if t.get_fontsize() < 7]
        assert not small, f"{name}: {small}"


@pytest.mark.parametrize("style", ["screen", "paper"])
def test_surface_labels_overlap_no_other_label_and_no_run(fitted, style):
    table, surface, _, nominal = fitted
    fig = figures.surface_contours(surface, table, nominal, style=style)
    ax = fig.axes[0]
    texts = drawn_texts(fig) and [t for t in ax.texts if t.get_visible() and t.get_text()]
    budget_labels = [t for t in texts if t.get_text().startswith("C = ")]
    assert len(budget_labels) == 3 and len(texts) > 3  # the contour labels are texts too
    assert overlapping([text_box(t) for t in texts]) == []
    runs = data_points(ax)
    assert not any(text_box(t).contains(x, y) for t in budget_labels for x, y in runs)


def far_minimum_table():
    """Two budgets with a clear minimum, and one whose losses fall almost linearly in log N: its
    parabola's minimum lies decades beyond the sizes trained."""
    table, _ = chinchilla_surface(budgets=(1e17, 1e18), sizes_per_budget=5, width=0.8)
    n_far = np.logspace(7, 8, 5)
    loss_far = 3.0 - 0.1 * np.log(n_far / 1e7) + 0.001 * np.log(n_far / 1e7) ** 2
    N, D = np.r_[table.N, n_far], np.r_[table.D, 1e19 / (6 * n_far)]
    C = np.r_[table.C, np.full(5, 1e19)]
    return from_arrays(N, D, np.r_[table.loss, loss_far], C=C, budget=C)


@pytest.mark.parametrize("style", ["screen", "paper"])
def test_a_far_minimum_is_named_below_the_axes_not_over_the_data(style):
    table = far_minimum_table()
    nominal, _ = nominal_budgets(table)
    fig = figures.isoflop_curves(table, nominal, style=style)
    ax = fig.axes[0]
    drawn_texts(fig)
    (note,) = [t for t in ax.texts if "far outside the sizes trained" in t.get_text()]
    box = text_box(note)
    assert box.y1 <= ax.get_window_extent().y0  # below the axes
    assert box.y1 <= text_box(ax.xaxis.label).y0 + 1e-6  # and below the axis label
    assert not any(box.contains(x, y) for x, y in data_points(ax))
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width + 1e-6  # all of it on the page
