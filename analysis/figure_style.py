"""How every figure (the report's and `moore`'s) is sized, lettered, laid out and saved: the style presets
(`screen`, and `paper` for a 3.5-inch journal column), the file formats, and label placement that keeps
text off other text and off the data.

SVG and PDF keep their text as text (SVG <text> elements; TrueType fonts embedded in the PDF), so that a
figure's words can be edited and searched in the file a journal receives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from scaling.errors import ConfigError

FORMATS = ("png", "svg", "pdf")
DEFAULT_FORMATS = ("png", "svg")
# Text stays text: SVG <text> instead of glyph paths; Type 42 (TrueType) fonts in PDF/PS instead of Type 3.
EDITABLE_TEXT = {"svg.fonttype": "none", "pdf.fonttype": 42, "ps.fonttype": 42}
MIN_PAPER_PT = 7.0  # the smallest text the paper style draws (journals ask for about 6-8 pt at print size)


@dataclasses.dataclass(frozen=True)
class Style:
    name: str
    rc: dict  # matplotlib rcParams while drawing and saving
    width: float | None  # inches every new figure is drawn at; None: each figure's own width
    panel_height: float  # inches per row of panels when `width` is set
    columns: int  # most panels side by side
    small: float  # pt: annotations and notes
    tiny: float  # pt: labels of many points, where room is scarce
    marker: float  # scale of marker areas
    wrap: bool  # wrap titles and axis labels to their axes


_COMMON = {"axes.spines.top": False, "axes.spines.right": False, "legend.framealpha": 0.9, **EDITABLE_TEXT}
SCREEN = Style("screen", rc={**_COMMON, "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
                             "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 8, "savefig.dpi": 200,
                             "lines.linewidth": 1.6},
               width=None, panel_height=0.0, columns=3, small=8.0, tiny=6.5, marker=1.0, wrap=False)
PAPER = Style("paper", rc={**_COMMON, "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
                           "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "savefig.dpi": 300,
                           "lines.linewidth": 1.1, "lines.markersize": 4, "axes.linewidth": 0.6,
                           "xtick.major.width": 0.6, "ytick.major.width": 0.6, "legend.borderpad": 0.3,
                           "legend.handlelength": 1.6},
              width=3.5, panel_height=2.5, columns=1, small=MIN_PAPER_PT, tiny=MIN_PAPER_PT, marker=0.45,
              wrap=True)
STYLES = {s.name: s for s in (SCREEN, PAPER)}


def get_style(style: str | Style = "screen") -> Style:
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise ConfigError(f"--style {style!r} is not a figure style; use one of {', '.join(STYLES)} (default screen)")
    return STYLES[style]


def parse_formats(formats: str | tuple | list = DEFAULT_FORMATS, also: tuple[str, ...] = ()) -> tuple[str, ...]:
    """'png,svg,pdf' (or a list of names) -> the formats in the order given, each once, then those of
    `also` not given (the formats a page made beside the figures shows)."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [str(n).strip().lower().lstrip(".") for n in names if str(n).strip()]
    unknown = [n for n in names if n not in FORMATS]
    if not names or unknown:
        raise ConfigError(f"--format {formats if isinstance(formats, str) else ','.join(map(str, formats))!r}: "
                          f"use one or more of {', '.join(FORMATS)}, comma-separated (default "
                          f"{','.join(DEFAULT_FORMATS)})")
    return tuple(dict.fromkeys([*names, *also]))


@contextlib.contextmanager
def drawing(style: str | Style = "screen"):
    """Artists take their sizes from rcParams when made, so a figure is drawn inside its style."""
    with matplotlib.rc_context(get_style(style).rc):
        yield


def save(fig: Figure, directory: str | Path, name: str, formats=DEFAULT_FORMATS,
         style: str | Style = "screen") -> list[Path]:
    """DIRECTORY/NAME.<format> for each format; the text settings are read at save time, so saving also
    happens inside the style."""
    paths = [Path(directory) / f"{name}.{fmt}" for fmt in parse_formats(formats)]
    with drawing(style):
        for path in paths:
            fig.savefig(path)
    return paths


def layout(style: str | Style, n: int) -> tuple[int, int]:
    """(rows, columns) for n panels: side by side up to the style's columns, then further rows."""
    columns = max(1, min(n, get_style(style).columns))
    return -(-n // columns), columns


def panels(ax, style: str | Style, n: int, screen_size: tuple[float, float], extra_height: float = 0.0,
           print_height: float | None = None, **subplot_kw) -> tuple[Figure, list[Axes]]:
    """(figure, n Axes): the axes given (one Axes, or a sequence of n), or a new figure laid out for the
    style: `screen_size` inches on screen; in print the style's width, and its panel height per row plus
    `extra_height` for legends (or `print_height` in all)."""
    if ax is not None:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != n or not all(isinstance(a, Axes) for a in axes):
            wanted = "one Axes" if n == 1 else f"a sequence of {n} Axes, one per panel"
            raise ValueError(f"ax: this figure has {n} panel(s); pass {wanted}, or None for a new figure")
        return axes[0].figure, axes
    st = get_style(style)
    rows, columns = layout(st, n)
    height = print_height if print_height is not None else rows * st.panel_height + extra_height
    size = screen_size if st.width is None else (st.width, height)
    fig = Figure(figsize=size, layout="constrained")
    fig.set_dpi(100)
    grid = fig.subplots(rows, columns, squeeze=False, **subplot_kw).ravel()
    for spare in grid[n:]:
        spare.set_visible(False)
    return fig, list(grid[:n])


def legend(fig: Figure, ax: Axes, style: str | Style, own: bool, handles=None, **kw):
    """The legend: inside the axes (`kw`) on screen or in a figure someone else laid out; below the axes in
    a print style's own figure, where a small axes has no room for it without covering data."""
    st = get_style(style)
    if own and st.width is not None:
        handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
        size = matplotlib.rcParams["legend.fontsize"]
        labels = [wrap_to_width(h.get_label(), st, size, margin_pt=40) for h in handles]
        return fig.legend(handles, labels, loc="outside lower center", ncols=1, frameon=False)
    return ax.legend(**kw) if handles is None else ax.legend(handles=handles, **kw)


def fit_text(fig: Figure, axes, style: str | Style) -> None:
    """In a style that wraps, break each title and axis label that is longer than its axes into lines."""
    if not get_style(style).wrap:
        return
    texts = [(ax, text, side) for ax in axes
             for text, side in ((ax.title, "width"), (ax.xaxis.label, "width"), (ax.yaxis.label, "height"))]
    originals = {id(text): text.get_text() for _, text, _ in texts}
    for _ in range(3):  # wrapping moves the layout, which changes the room: settle in a few passes
        fig.figure.draw_without_rendering()  # the whole figure, when `fig` is a subfigure
        changed = False
        for ax, text, side in texts:
            box = ax.get_window_extent()
            changed |= _wrap(text, box.width if side == "width" else box.height, originals[id(text)])
        if not changed:
            return


def _wrap(text, room: float, original: str) -> bool:
    """Wrap `original` (its own line breaks kept) to fit `room` px, judged from the text as now drawn."""
    content = text.get_text()
    if not content:
        return False
    extent = text.get_window_extent()
    length = max(extent.width, extent.height)
    longest = max(len(line) for line in content.split("\n"))
    if length <= room * 1.02 or longest <= 12:
        return False
    chars = max(12, int(longest * room / length) - 1)
    wrapped = "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in original.split("\n"))
    text.set_text(wrapped)
    return wrapped != content


def wrap_to_width(text: str, style: str | Style, fontsize: float, margin_pt: float = 0.0) -> str:
    """A figure-wide line (a suptitle, a note, a legend entry) broken to the style's width less
    `margin_pt`, estimated from the font size; as it is in a style without a width."""
    width = get_style(style).width
    if width is None:
        return text
    chars = int((width * 72 - margin_pt) / (0.6 * fontsize))
    return textwrap.fill(text, max(20, chars), break_on_hyphens=False)


# ---- labels beside points, clear of other text and of the data ------------------------------------------

DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))  # beside, above/below, corners
GAPS_PT = (1.5, 5.0, 10.0, 18.0, 28.0)
LEADER = {"arrowstyle": "-", "lw": 0.5, "color": "0.4", "shrinkA": 0, "shrinkB": 3}  # from a label to its point


def place_labels(ax: Axes, xs, ys, texts, fontsize: float, **text_kw) -> list:
    """Annotate each point (x, y) with its text at the nearest of a ring of positions around it whose box
    stays inside the axes and covers no other text, legend, data point or label already placed; a label
    pushed away from its point gets a leader line. The layout is settled first, so the boxes measured are
    the ones drawn."""
    fig = ax.figure.figure  # the whole figure, when the axes are in a subfigure
    fig.draw_without_rendering()
    _freeze_legend(ax)
    px_per_pt = fig.dpi / 72.0
    frame = ax.get_window_extent()
    texts_in_the_way = _text_boxes(ax)
    points = _point_boxes(ax, px_per_pt)
    placed = []
    for x, y, text in zip(xs, ys, texts):
        probe = ax.annotate(text, (x, y), fontsize=fontsize, ha="center", va="center", **text_kw)
        extent = probe.get_window_extent()
        probe.remove()
        px, py = ax.transData.transform((x, y))
        air = 0.4 * fontsize * px_per_pt if "bbox" in text_kw else 0.0  # room for a box drawn round the text
        offset, box, far = _best_spot((px, py), (extent.width + air, extent.height + air), frame, texts_in_the_way,
                                      points, px_per_pt)
        leader = {"arrowprops": LEADER} if far else {}
        placed.append(ax.annotate(text, (x, y), xytext=(offset[0] / px_per_pt, offset[1] / px_per_pt),
                                  textcoords="offset points", ha="center", va="center", fontsize=fontsize,
                                  **leader, **text_kw))
        texts_in_the_way.append(box)
    return placed


def _freeze_legend(ax: Axes) -> None:
    """Pin a "best" legend where it was drawn: "best" avoids texts, so it would move when the labels come."""
    lg = ax.get_legend()
    if lg is not None:
        corner = lg.get_window_extent().transformed(ax.transAxes.inverted())
        lg.set_loc((corner.x0, corner.y0))


def _best_spot(point, size, frame, texts, points, px_per_pt):
    """(offset in px, box, whether it is away from the point) of the first candidate clear of everything,
    else the one covering least text."""
    px, py = point
    w, h = size
    best = None
    for gap, (ux, uy) in itertools.product(GAPS_PT, DIRECTIONS):
        reach = gap * px_per_pt
        dx, dy = ux * (w / 2 + reach + 3 * px_per_pt), uy * (h / 2 + reach + 2 * px_per_pt)
        box = (px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2)
        inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
        score = (not inside, sum(_overlap(box, t) for t in texts), sum(_overlap(box, p) > 0 for p in points))
        if score == (False, 0, 0):
            return (dx, dy), box, gap > GAPS_PT[0]
        if best is None or score < best[0]:
            best = (score, (dx, dy), box, gap > GAPS_PT[0])
    return best[1:]


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _text_boxes(ax: Axes) -> list[tuple]:
    """Display boxes of the axes' texts (contour labels included) and of any legend over the axes."""
    artists = [t for t in ax.texts if t.get_visible() and t.get_text()]
    artists += [lg for lg in [ax.get_legend(), *ax.figure.legends] if lg is not None]
    return [tuple(a.get_window_extent().extents) for a in artists]


def _point_boxes(ax: Axes, px_per_pt: float) -> list[tuple]:
    """Display boxes of every scatter point and marker in the axes."""
    centres, radii = [], []
    for col in ax.collections:
        if isinstance(col, PathCollection) and len(col.get_offsets()):
            xy = col.get_offset_transform().transform(col.get_offsets())
            sizes = np.resize(col.get_sizes() if len(col.get_sizes()) else [36.0], len(xy))
            centres.append(xy), radii.append(np.sqrt(sizes) / 2 * px_per_pt)
    for line in ax.lines:
        if line.get_marker() not in (None, "", " ", "None", "none") and len(line.get_xydata()):
            xy = line.get_transform().transform(line.get_xydata())
            centres.append(xy), radii.append(np.full(len(xy), line.get_markersize() / 2 * px_per_pt))
    if not centres:
        return []
    xy, r = np.concatenate(centres), np.concatenate(radii)
    keep = np.isfinite(xy).all(axis=1)
    return [(x - s, y - s, x + s, y + s) for (x, y), s in zip(xy[keep], r[keep])]
