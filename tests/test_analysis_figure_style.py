import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis import figure_style
from figure_helpers import overlapping, text_box
from scaling.errors import ConfigError


def test_formats_are_a_comma_list_in_the_order_given_and_bad_names_are_refused():
    assert figure_style.parse_formats("png,svg,pdf") == ("png", "svg", "pdf")
    assert figure_style.parse_formats(" PDF, png ,pdf") == ("pdf", "png")
    assert figure_style.parse_formats(["svg"], also=("png", "svg")) == ("svg", "png")
    for bad in ("jpg", "png,,eps", ""):
        with pytest.raises(ConfigError, match=r"^--format .*use one or more of png, svg, pdf"):
            figure_style.parse_formats(bad)


def test_styles_are_named_and_an_unknown_one_is_refused():
    assert figure_style.get_style("paper") is figure_style.PAPER and figure_style.PAPER.width == 3.5
    assert figure_style.get_style(figure_style.SCREEN) is figure_style.SCREEN
    with pytest.raises(ConfigError, match="--style 'print' .*screen, paper"):
        figure_style.get_style("print")


def labelled_figure(style):
    with figure_style.drawing(style):
        fig, (ax,) = figure_style.panels(None, style, 1, (6.0, 4.0))
        ax.plot([1, 2, 3], [3, 1, 2])
        ax.set_xlabel("model size N (parameters)")
        ax.set_ylabel("loss (nats/token)")
    return fig


@pytest.mark.parametrize("style", ["screen", "paper"])
def test_svg_and_pdf_keep_the_text_as_text(tmp_path, style):
    paths = figure_style.save(labelled_figure(style), tmp_path, "fig", "png,svg,pdf", style)
    assert [p.name for p in paths] == ["fig.png", "fig.svg", "fig.pdf"]
    svg = paths[1].read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "model size N (parameters)" in texts and "loss (nats/token)" in texts
    pdf = paths[2].read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf  # TrueType embedded as a font, not glyphs drawn as paths
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_figures_are_a_column_wide_and_panels_stack():
    fig, axes = figure_style.panels(None, "paper", 2, (12.0, 5.0))
    assert fig.get_figwidth() == 3.5 and len(axes) == 2
    (top, bottom) = [ax.get_subplotspec().rowspan.start for ax in axes]
    assert bottom > top  # one above the other, not side by side
    fig, axes = figure_style.panels(None, "screen", 2, (12.0, 5.0))
    assert tuple(fig.get_size_inches()) == (12.0, 5.0) and len({ax.get_subplotspec().rowspan.start for ax in axes}) == 1


def test_panels_draw_into_the_axes_given_and_refuse_the_wrong_number():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    assert figure_style.panels([ax1, ax2], "paper", 2, (1, 1)) == (fig, [ax1, ax2])
    assert figure_style.panels(ax1, "screen", 1, (1, 1)) == (fig, [ax1])
    with pytest.raises(ValueError, match="2 panel.*a sequence of 2 Axes"):
        figure_style.panels(ax1, "screen", 2, (1, 1))


def test_paper_wraps_a_title_longer_than_its_axes():
    with figure_style.drawing("paper"):
        fig, (ax,) = figure_style.panels(None, "paper", 1, (1, 1))
        ax.set_title("a title far longer than the axes of a journal column could ever hold on one line of text")
        figure_style.fit_text(fig, [ax], "paper")
    fig.draw_without_rendering()
    assert "\n" in ax.get_title() and ax.title.get_window_extent().width <= ax.get_window_extent().width * 1.02


def test_labels_of_crowded_points_cover_no_other_label_and_no_point():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, 12), rng.uniform(0, 1, 12)
    with figure_style.drawing("paper"):
        fig, (ax,) = figure_style.panels(None, "paper", 1, (1, 1))
        ax.scatter(x, y, s=20)
        ax.set_xlim(-0.2, 1.2), ax.set_ylim(-0.2, 1.2)
        ax.legend(["points"], loc="best")
        labels = figure_style.place_labels(ax, x, y, [f"model number {i}" for i in range(12)], 7)
    fig.draw_without_rendering()
    boxes = [text_box(t) for t in labels] + [ax.get_legend().get_window_extent()]
    assert overlapping(boxes) == []
    points = ax.transData.transform(np.c_[x, y])
    assert not any(box.contains(px, py) for box in boxes[:-1] for px, py in points)
    frame = ax.get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes[:-1])


def test_a_print_legend_goes_below_the_axes_with_its_entries_wrapped():
    with figure_style.drawing("paper"):
        fig, (ax,) = figure_style.panels(None, "paper", 1, (1, 1))
        ax.plot([0, 1], [0, 1], label="a legend entry much longer than a journal column is wide, so it wraps")
        legend = figure_style.legend(fig, ax, "paper", own=True, loc="upper left")
    fig.draw_without_rendering()
    assert legend in fig.legends and "\n" in legend.get_texts()[0].get_text()
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0
    assert legend.get_window_extent().width <= fig.bbox.width


@pytest.mark.parametrize("command", ["report", "moore"])
def test_the_commands_offer_every_format_and_style(command, capsys):
    from scaling_cli.main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{{{','.join(figure_style.STYLES)}}}" in text and "default png,svg" in text
    assert f"comma-separated from {', '.join(figure_style.FORMATS)}" in text
    assert f"{figure_style.PAPER.width} inches wide" in text and f"under {figure_style.MIN_PAPER_PT:g} pt" in text


def test_labels_and_wrapping_work_in_a_subfigure():
    fig = Figure(figsize=(7, 3), layout="constrained")
    left, _ = fig.subfigures(1, 2)
    ax = left.subplots()
    ax.scatter([0, 1], [0, 1])
    ax.set_title("a title far longer than half of this small figure could ever hold on one line")
    figure_style.fit_text(left, [ax], "paper")
    labels = figure_style.place_labels(ax, [0, 1], [0, 1], ["first point", "second point"], 7)
    fig.draw_without_rendering()
    assert "\n" in ax.get_title() and overlapping([text_box(t) for t in labels]) == []


@pytest.mark.parametrize("command, flags", [("report", ["no-such-results.csv"]), ("moore", ["--bootstrap", "20"])])
def test_a_bad_format_is_one_line_exit_2_before_anything_is_written(command, flags, tmp_path, capsys):
    from scaling_cli.main import main

    out = tmp_path / "out"
    assert main([command, *flags, "--format", "png,tiff", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--format 'png,tiff'" in err and "png, svg, pdf" in err
    assert not out.exists()
