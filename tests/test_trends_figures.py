import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis import figure_style
from analysis.trends import doubling, figures, summary
from analysis.trends.synthesis import EPOCH_CHINCHILLA
from figure_helpers import data_points, drawn_texts, overlapping, text_box


@pytest.fixture(scope="module")
def analysis():
    rng = np.random.default_rng(0)
    year, t_year = 2010 + 14 * rng.random(80), 1971 + 50 * rng.random(60)
    fake = {
        "transistors": doubling.fit_trend(t_year, 2e3 * 2.0 ** ((t_year - 1971) / 2), "transistors", n_boot=50),
        "hardware_flops": doubling.fit_trend(year, 1e12 * 2.0 ** ((year - 2010) / 2.5), "hardware_flops", n_boot=50),
    }
    result, trends, projection, placed = summary.analyze(options=summary.Options(n_boot=50, allow_extrapolation=True))
    trends.update(fake)
    return result, trends, projection, placed


def test_exponentials_share_one_log_axis_with_moore_lines(analysis):
    _, trends, _, _ = analysis
    fig = figures.exponentials(trends)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and "2020" in ax.get_ylabel() and ax.get_xlabel()
    labels = [line.get_label() for line in ax.get_lines()]
    assert any("Moore 1975" in label for label in labels) and any("Moore 1965" in label for label in labels)
    # Published stand-ins are not data: only fitted series are drawn.
    assert any("Transistors" in label for label in labels) and not any("notable" in label for label in labels)
    # Every fitted line passes through 1 at the reference year.
    for line in ax.get_lines():
        x, y = line.get_data()
        if "x2 every" in line.get_label() and "Moore" not in line.get_label() and x[0] <= 2020 <= x[-1]:
            assert np.interp(2020, x, np.log(y)) == pytest.approx(0, abs=1e-6)


def test_forest_plot_has_ours_and_published(analysis):
    result = analysis[0]
    fig = figures.forest(result)
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == len(result["doubling_months"]) + 2 and "Compute for a fixed LM loss (halving)" in ticks
    assert "Effective compute, frontier LMs x algorithms" in ticks
    # The effective-compute headline is drawn at its value with its interval.
    value = result["effective_compute_doubling_months"]
    assert any(np.isclose(line.get_xdata()[0], value) for line in ax.get_lines() if len(line.get_xdata()) == 1)
    assert ax.get_xscale() == "log" and "months" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("our fit" in t for t in legend) and any("published" in t for t in legend)


def test_loss_by_year_has_one_line_per_scenario_and_writes_png_and_svg(analysis, tmp_path):
    result, _, projection, placed = analysis
    fig = figures.loss_by_year(projection, EPOCH_CHINCHILLA, 2025, placed)
    ax_loss, ax_red = fig.axes
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    for name in result["loss_halving_years"]:
        assert name.replace("_", " ") in labels
    assert ax_red.get_yscale() == "log" and "nats" in ax_loss.get_ylabel()
    paths = figure_style.save(fig, tmp_path, "loss")
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 20_000
    assert b"<svg" in paths[1].read_bytes()[:2000]


def test_frontier_models_figure_labels_every_model(analysis):
    placed = analysis[3]
    fig = figures.frontier_models(placed, EPOCH_CHINCHILLA)
    ax_n, ax_r = fig.axes
    assert ax_n.get_xscale() == ax_n.get_yscale() == "log" and "FLOP" in ax_n.get_xlabel()
    names = {t.get_text() for t in ax_n.texts}
    assert names == set(placed["model"])


def test_frontier_figures_carry_the_extrapolation_stamp_in_their_title(analysis):
    result, _, projection, placed = analysis
    stamp = result["stamp"]
    assert stamp and "orders of magnitude beyond the fit" in stamp
    fig = figures.loss_by_year(projection, EPOCH_CHINCHILLA, 2025, placed, stamp)
    assert stamp in fig._suptitle.get_text()
    fig = figures.frontier_models(placed, EPOCH_CHINCHILLA, result["frontier_models_stamp"])
    assert result["frontier_models_stamp"] in fig._suptitle.get_text()
    assert "WARNING" not in figures.loss_by_year(projection, EPOCH_CHINCHILLA, 2025, placed)._suptitle.get_text()


def test_loss_bands_include_the_frontier_draws_and_the_saturating_variant(analysis):
    _, _, projection, placed = analysis
    fig = figures.loss_by_year(projection, EPOCH_CHINCHILLA, 2025, placed)
    ax_loss, _ = fig.axes
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert any("saturating" in label for label in labels)
    # E's draws reach below the point E, and the axis shows the whole band.
    assert projection["loss_lo"].min() < EPOCH_CHINCHILLA.E and ax_loss.get_ylim()[0] < projection["loss_lo"].min()


def test_forest_shows_the_definition_band_when_given(analysis):
    result = dict(analysis[0])
    key = "frontier_lm_compute"  # fitted to the built-in table, so drawn as ours
    result["doubling_months_band"] = {key: [3.0, 40.0]}
    (ax,) = figures.forest(result).axes
    assert any("alternative definitions" in t.get_text() for t in ax.get_legend().get_texts())
    assert any(list(line.get_xdata()) == [3.0, 40.0] for line in ax.get_lines())


def test_frontier_models_figure_without_placeable_models_says_so(analysis):
    fig = figures.frontier_models(analysis[3].iloc[:0], EPOCH_CHINCHILLA)
    assert "no model with a published N and D" in {t.get_text() for t in fig.axes[0].texts}


def every_figure(analysis, style="screen"):
    """Each public figure function of the module: name -> (panels, draw(ax))."""
    result, trends, projection, placed = analysis
    stamp = result["frontier_models_stamp"]
    return {
        "exponentials": (1, lambda ax: figures.exponentials(trends, ax=ax, style=style)),
        "forest": (1, lambda ax: figures.forest(result, ax=ax, style=style)),
        "loss_by_year": (2, lambda ax: figures.loss_by_year(projection, EPOCH_CHINCHILLA, 2025, placed, result["stamp"],
                                                            ax=ax, style=style)),
        "frontier_models": (2, lambda ax: figures.frontier_models(placed, EPOCH_CHINCHILLA, stamp, ax=ax, style=style)),
    }


def test_every_figure_draws_into_the_axes_given(analysis):
    for name, (n, draw) in every_figure(analysis).items():
        fig = Figure(figsize=(10, 8))
        given = list(fig.subplots(1, n, squeeze=False).ravel())
        assert draw(given[0] if n == 1 else given) is fig, name
        for ax in given:
            assert ax.lines or ax.collections, f"{name}: nothing drawn into {ax}"
        assert fig.axes == given and fig.get_suptitle() == "", name  # no axes or title of its own on someone's figure
        with pytest.raises(ValueError, match="panel"):
            draw(given[:1] if n > 1 else given * 2)


def test_the_stamp_stays_above_the_data_in_axes_given(analysis):
    result, _, _, placed = analysis
    fig = Figure(figsize=(10, 5))
    ax_n, ax_r = fig.subplots(1, 2)
    figures.frontier_models(placed, EPOCH_CHINCHILLA, result["frontier_models_stamp"], ax=[ax_n, ax_r])
    drawn_texts(fig)
    (stamp,) = [t for t in ax_n.texts if result["frontier_models_stamp"] in t.get_text()]
    assert text_box(stamp).y0 >= ax_n.get_window_extent().y1  # in the title area, over no point


def test_paper_figures_are_a_column_wide_with_no_text_under_7_pt(analysis):
    for name, (_, draw) in every_figure(analysis, "paper").items():
        fig = draw(None)
        assert fig.get_figwidth() == pytest.approx(3.5), name
        texts = drawn_texts(fig)
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 7]
        assert not small, f"{name}: {small}"
        assert all(text_box(t).x0 >= -1 and text_box(t).x1 <= fig.bbox.width + 1 for t in texts), name  # on the page


@pytest.mark.parametrize("style", ["screen", "paper"])
def test_model_labels_overlap_no_other_text_and_no_point(analysis, style):
    placed = analysis[3]
    fig = figures.frontier_models(placed, EPOCH_CHINCHILLA, style=style)
    drawn_texts(fig)
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_text() in set(placed["model"])]
        assert len(labels) == len(placed)
        boxes = [text_box(t) for t in labels] + [lg.get_window_extent() for lg in [ax.get_legend()] if lg]
        assert overlapping(boxes) == [], [t.get_text() for t in labels]
        points = data_points(ax)
        assert not any(text_box(t).contains(x, y) for t in labels for x, y in points)


def test_write_all_saves_each_figure_in_each_format_with_text_kept_as_text(analysis, tmp_path):
    result, trends, projection, placed = analysis
    names = figures.write_all(tmp_path, result, trends, projection, placed, EPOCH_CHINCHILLA, 2025,
                              formats=("svg", "pdf"), style="paper")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.{ext}" for n in names for ext in ("svg", "pdf"))
    svg = (tmp_path / "frontier_models.svg").read_text()
    assert "release year" in re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert b"/FontFile2" in (tmp_path / "frontier_models.pdf").read_bytes()
