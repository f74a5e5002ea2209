"""What the figure tests measure on a drawn figure: text boxes, overlaps, font sizes, data points."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.text import Text


def text_box(text):
    """The display box of a text alone (an Annotation's own extent also covers its leader line)."""
    return Text.get_window_extent(text)


def overlapping(boxes) -> list[tuple[int, int]]:
    """Index pairs of boxes that intersect."""
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def drawn_texts(fig) -> list[Text]:
    """Every visible, non-empty text of a figure once it is laid out (tick labels exist only then), less
    the labels of ticks outside the axis' view, which matplotlib keeps but does not draw."""
    fig.draw_without_rendering()
    hidden = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
              for tick in axis.get_major_ticks() + axis.get_minor_ticks() if not _in_view(axis, tick.get_loc())
              for label in (tick.label1, tick.label2)}
    return [t for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.figure is not None and id(t) not in hidden]


def _in_view(axis, loc) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    span = axis.get_transform().transform([lo, hi])
    at = axis.get_transform().transform([loc])[0]
    return min(span) - 1e-9 * abs(span[1] - span[0]) <= at <= max(span) + 1e-9 * abs(span[1] - span[0])


def data_points(ax) -> np.ndarray:
    """Display coordinates of every scatter point and marker drawn in the axes."""
    found = [col.get_offset_transform().transform(col.get_offsets()) for col in ax.collections
             if isinstance(col, PathCollection) and len(col.get_offsets())]
    found += [line.get_transform().transform(line.get_xydata()) for line in ax.lines
              if line.get_marker() not in (None, "", " ", "None", "none") and len(line.get_xydata())]
    return np.concatenate(found) if found else np.empty((0, 2))
