"""The report's figures: each a pure function of the data and the fits returning a matplotlib Figure,
drawn with the object API on the Agg canvas (no pyplot, no global backend state). Each draws into the
axes given as `ax` (one Axes, or one per panel) or into a new figure, in a style of analysis.figure_style
(`screen`, or `paper` for a 3.5-inch column); `save` writes PNG, SVG and PDF.

Units on every axis (parameters, tokens, FLOPs, nats/token); log scales for N, D and C, which the
sweeps space geometrically.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter

from analysis import frontier
from analysis.backtest import Backtest
from analysis.figure_style import drawing, fit_text, get_style, layout, legend, panels, place_labels, wrap_to_width
from analysis.isoflop import parabola_minimum
from analysis.loading import RunTable
from analysis.result import FitResult

METHOD_COLORS = {"parametric": "#1f77b4", "vpnls": "#17becf", "isoflop": "#ff7f0e", "envelope": "#2ca02c",
                 "kaplan": "#9467bd"}
METHOD_LABELS = {"parametric": "approach 3", "vpnls": "approach 3 (VPNLS)", "isoflop": "approach 2",
                 "envelope": "approach 1", "kaplan": "Kaplan form"}
PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day
REACH = np.log(10.0)  # isoFLOP minima further than a decade beyond the sizes trained are named, not drawn

# Published compute-optimal frontiers drawn for reference (both take C = 6ND).
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022, approach 3
KAPLAN_N_OPT = (1.3e9, 0.73)  # Kaplan et al. 2020, fig. 14: N_opt = 1.3e9 (C / PF-day)^0.73 (non-embedding N)
CHINCHILLA_TOKENS_PER_PARAM = 20.0  # the rule of thumb from Hoffmann et al. 2022


def pow10(x: float) -> str:
    """3e10 -> '$3{\\times}10^{10}$' (mathtext), 1e11 -> '$10^{11}$'."""
    if not np.isfinite(x) or x <= 0:
        return f"{x:g}"
    exponent = int(np.floor(np.log10(x) + 1e-9))
    mantissa = x / 10 ** exponent
    text = f"{mantissa:.2g}"
    if text == "1":
        return f"$10^{{{exponent}}}$"
    if text == "10":
        return f"$10^{{{exponent + 1}}}$"
    return f"${text}{{\\times}}10^{{{exponent}}}$"


def log_axis(axis) -> None:
    """Major ticks at 1, 2, 5 x 10^k when the axis spans under two decades (else 10^k only), labelled;
    minor ticks unlabelled, so that labels never collide."""
    lo, hi = axis.get_view_interval()
    subs = (1.0, 2.0, 5.0) if lo > 0 and np.log10(hi / lo) < 2 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf)))
    axis.set_minor_formatter(NullFormatter())


def budget_colors(budgets) -> dict[float, tuple]:
    """A colour per nominal budget, dark (small) to bright (large)."""
    budgets = sorted(set(float(b) for b in budgets if np.isfinite(b)))
    cmap = matplotlib.colormaps["plasma"]
    if len(budgets) == 1:
        return {budgets[0]: cmap(0.2)}
    return {b: cmap(0.05 + 0.8 * i / (len(budgets) - 1)) for i, b in enumerate(budgets)}


def loss_curves(curves: dict[str, pd.DataFrame], sizes: dict[str, float], flops_key: str = "flops_exact",
                ax=None, style="screen") -> Figure | None:
    """Training loss (lines) and validation loss (dots) of every run against tokens and against compute,
    coloured by model size; `ax`: two Axes. None when there are no curves."""
    curves = {k: v for k, v in curves.items() if k in sizes and "loss" in v and len(v)}
    if not curves:
        return None
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax_d, ax_c) = panels(ax, st, 2, (12.0, 4.8), extra_height=0.4, sharey=True)
        n_values = np.array([sizes[k] for k in curves])
        norm = LogNorm(n_values.min() / 1.05, n_values.max() * 1.05)
        cmap = matplotlib.colormaps["viridis"]
        for run_id, df in sorted(curves.items(), key=lambda item: sizes[item[0]]):
            df = df.sort_values("step")
            color = cmap(norm(sizes[run_id]))
            compute = df[flops_key] if flops_key in df else 6.0 * sizes[run_id] * df["tokens"]
            val = df["val_loss"].notna() if "val_loss" in df else pd.Series(False, index=df.index)
            for axis, x in ((ax_d, df["tokens"]), (ax_c, compute)):
                axis.plot(x, df["loss"], color=color, lw=1.1, alpha=0.75)
                axis.scatter(x[val], df.loc[val, "val_loss"], color=color, s=22 * st.marker, edgecolors="black",
                             linewidths=0.4, zorder=3)
        for axis in (ax_d, ax_c):
            axis.set_xscale("log")
            log_axis(axis.xaxis)
            axis.grid(True, which="major", alpha=0.3)
        ax_d.set_xlabel("tokens seen D (log scale)")
        ax_c.set_xlabel(f"training compute C (FLOPs, {_flops_name(flops_key)}, log scale)")
        ax_d.set_ylabel("loss (nats/token)")
        ax_d.set_title("Loss against tokens")
        ax_c.set_title("Loss against compute")
        handles = [Line2D([], [], color="0.3", lw=1.2, label="training loss"),
                   Line2D([], [], color="0.3", marker="o", ls="", mec="black", mew=0.4, label="validation loss")]
        legend(fig, ax_d, st, own, handles=handles, loc="upper right")
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=[ax_d, ax_c], label="model size N (parameters)",
                     pad=0.01)
        fit_text(fig, (ax_d, ax_c), st)
    return fig


def isoflop_curves(table: RunTable, nominal: np.ndarray, iso_fit: FitResult | None = None,
                   surface: FitResult | None = None, ax=None, style="screen") -> Figure:
    """Final loss against model size per budget, the parabola in log N through each budget's runs, its
    minimum, and (dashed) the L(N, D) surface along the same budget. Minima too far out to draw are named
    in a note below the axes, where it covers no data."""
    variant = iso_fit.spec.options.get("parabola", "loss") if iso_fit is not None else "loss"
    minima = {r["C"]: r for r in (iso_fit.details.get("per_budget", []) if iso_fit else [])}
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax,) = panels(ax, st, 1, (8.0, 5.4), extra_height=1.7)
        handles, far_minima = [], []
        for c, color in budget_colors(nominal).items():
            here = nominal == c
            handles.append(Line2D([], [], color=color, marker="o", mec="black", mew=0.5,
                                  label=f"C = {pow10(c)} FLOPs"))
            far_minima += _isoflop_budget(ax, st, table.N[here], table.D[here], table.loss[here], float(c), color,
                                          variant, minima.get(float(c)), surface)
        handles += _isoflop_key(minima, iso_fit, surface)
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        ax.set_xlabel("model size N (parameters, log scale)")
        ax.set_ylabel(table.loss_label)
        ax.set_title("IsoFLOP profiles: loss against model size at fixed compute")
        ax.grid(True, which="major", alpha=0.3)
        legend(fig, ax, st, own, handles=handles, loc="best")
        if far_minima:
            note_below(ax, far_minima, st)
        fit_text(fig, (ax,), st)
    return fig


def note_below(ax, lines: list[str], st) -> None:
    """Notes about the data (a warning) under the axis label, where they cannot cover a data point."""
    text = "\n".join(wrap_to_width(line, st, st.small) for line in lines)
    ax.annotate(text, xy=(0.5, 0.0), xycoords=ax.xaxis.label, xytext=(0, -3), textcoords="offset points",
                ha="center", va="top", fontsize=st.small, color="0.25")


def _isoflop_budget(ax, st, n, d, loss, c, color, variant, row, surface) -> list[str]:
    """One budget's runs, parabola, minimum and surface line; returns the note for a minimum not drawn."""
    ax.scatter(n, loss, color=color, s=36 * st.marker, edgecolors="black", linewidths=0.5, zorder=4)
    log_n = np.log(n)
    grid = np.linspace(log_n.min() - 0.15, log_n.max() + 0.15, 100)
    if surface is not None and len(np.unique(n)) >= 2:
        slope, intercept = np.polyfit(log_n, np.log(d), 1)  # this budget's D against N
        ax.plot(np.exp(grid), frontier.predicted_loss(surface, np.exp(grid), np.exp(intercept + slope * grid)),
                color=color, ls="--", lw=1.0, alpha=0.8)
    if len(np.unique(n)) < 3:
        return []
    y = loss if variant == "loss" else np.log(loss)
    back = (lambda v: v) if variant == "loss" else np.exp
    coef = np.polyfit(log_n, y, 2)
    ax.plot(np.exp(grid), back(np.polyval(coef, grid)), color=color, lw=1.6)
    vertex = parabola_minimum(log_n, y)
    if vertex is None:
        return [f"C = {pow10(c)}: the parabola opens downwards, no minimum"]
    if not log_n.min() - REACH <= vertex[0] <= log_n.max() + REACH:  # a star decades away would squash the data
        return [f"C = {pow10(c)}: minimum far outside the sizes trained, at N = {pow10(float(np.exp(vertex[0])))}"]
    if not grid[0] <= vertex[0] <= grid[-1]:
        side = np.linspace(vertex[0], grid[0] if vertex[0] < grid[0] else grid[-1], 50)
        ax.plot(np.exp(side), back(np.polyval(coef, side)), color=color, lw=1.2, ls=":")  # out to the minimum
    at = (row["N_opt"], row["L_min"]) if row and "N_opt" in row else (np.exp(vertex[0]), back(vertex[1]))
    # Hollow: left out of approach 2 (or, with no approach-2 fit, outside the sizes trained).
    used = row.get("used", True) if row else bool(log_n.min() <= vertex[0] <= log_n.max())
    ax.scatter([at[0]], [at[1]], marker="*", s=220 * st.marker, color=color if used else "white",
               edgecolors="black" if used else color, linewidths=0.8 if used else 1.4, zorder=5)
    return []


def _isoflop_key(minima: dict, iso_fit, surface) -> list:
    handles = [Line2D([], [], color="0.3", lw=1.6, label="parabola in log N (approach 2)"),
               Line2D([], [], color="0.3", lw=1.2, ls=":", label="parabola extrapolated to its minimum"),
               Line2D([], [], color="0.3", marker="*", ls="", ms=12, mec="black", label="parabola minimum N_opt")]
    if any(not r.get("used", True) and "N_opt" in r for r in minima.values()) or iso_fit is None:
        handles.append(Line2D([], [], color="white", marker="*", ls="", ms=12, mec="0.3", mew=1.4,
                              label="minimum left out (outside the sizes trained)"))
    if surface is not None:
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1.0,
                              label=f"L(N, D) of the {METHOD_LABELS.get(surface.spec.method, 'given')} fit"))
    return handles


def frontier_lines(fits: list[FitResult], table: RunTable, iso_fit: FitResult | None = None,
                   labels: list[str] | None = None, ax=None, style="screen") -> Figure:
    """N_opt(C) and D_opt(C) of every fit with a frontier, with bootstrap bands, the per-budget parabola
    minima, the runs trained, and published frontiers for reference; `ax`: two Axes."""
    labels = labels or [METHOD_LABELS.get(f.spec.method, f.spec.method) for f in fits]
    c_lo, c_hi = float(table.C.min()) / 3, float(table.C.max()) * 100
    grid = np.logspace(np.log10(c_lo), np.log10(c_hi), 120)
    st = get_style(style)
    with drawing(st):
        fig, (ax_n, ax_d) = panels(ax, st, 2, (12.0, 6.0), extra_height=1.3)
        ax_n.scatter(table.C, table.N, s=12 * st.marker, color="0.6", zorder=2, label="runs trained")
        ax_d.scatter(table.C, table.D, s=12 * st.marker, color="0.6", zorder=2)
        _fit_frontiers(ax_n, ax_d, fits, labels, grid, float(table.C.max()))
        if iso_fit is not None:
            for axis, key in ((ax_n, "N_opt"), (ax_d, "D_opt")):
                rows = [r for r in iso_fit.details.get("per_budget", []) if key in r]
                axis.scatter([r["C"] for r in rows], [r[key] for r in rows], marker="*", s=160 * st.marker,
                             color=METHOD_COLORS["isoflop"], edgecolors="black", linewidths=0.7, zorder=6,
                             label="isoFLOP parabola minima" if axis is ax_n else None)
        _published_frontiers(ax_n, ax_d, grid)
        for axis in (ax_n, ax_d):
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlim(c_lo, c_hi)
            axis.axvline(table.C.max(), color="0.75", lw=0.8, zorder=0)
            axis.grid(True, which="major", alpha=0.3)
            axis.set_xlabel("training compute C (FLOPs, log scale)")
        _clip_to(ax_n, np.r_[table.N, *[frontier.optimum(f, grid)["N_opt"] for f in fits]])
        _clip_to(ax_d, np.r_[table.D, *[frontier.optimum(f, grid)["D_opt"] for f in fits]])
        for axis in (ax_n, ax_d):
            log_axis(axis.yaxis)
        ax_n.set_ylabel("compute-optimal model size N_opt (parameters)")
        ax_d.set_ylabel("compute-optimal data D_opt (tokens)")
        ax_n.set_title("N_opt(C): solid within the budgets trained, dashed beyond")
        ax_d.set_title("D_opt(C) = C / (6 N_opt)")
        handles, names = ax_n.get_legend_handles_labels()
        columns = 1 if st.width is not None else min(4, len(names))
        if ax is None:
            fig.legend(handles, names, loc="outside lower center", ncols=columns, frameon=False)
        else:  # someone else's figure: its layout may have no room outside the axes
            ax_n.legend(handles, names, loc="best")
        fit_text(fig, (ax_n, ax_d), st)
    return fig


def _fit_frontiers(ax_n, ax_d, fits, labels, grid, c_max: float) -> None:
    """Each fit's N_opt and D_opt: solid within the budgets trained, dashed beyond, with its bands."""
    inside = grid <= c_max * 1.0001
    used = set()
    for result, label in zip(fits, labels):
        color = METHOD_COLORS.get(result.spec.method, "#d62728")
        if color in used:
            color = "#d62728"
        used.add(color)
        at = frontier.optimum(result, grid)
        bands = frontier.optimum_intervals(result, grid)
        for ax, key in ((ax_n, "N_opt"), (ax_d, "D_opt")):
            ax.plot(grid[inside], at[key][inside], color=color, lw=2.2, label=label, zorder=4)
            ax.plot(grid[~inside], at[key][~inside], color=color, lw=2.2, ls="--", zorder=4)
            if key in bands:
                ax.fill_between(grid, bands[key][0], bands[key][1], color=color, alpha=0.13, lw=0, zorder=1)
                for edge in bands[key]:
                    ax.plot(grid, edge, color=color, lw=0.6, alpha=0.6, zorder=1)


def _published_frontiers(ax_n, ax_d, grid) -> None:
    ref = frontier.optimum_from_params("chinchilla", HOFFMANN, grid)
    n20 = np.sqrt(grid / (6.0 * CHINCHILLA_TOKENS_PER_PARAM))
    k, e = KAPLAN_N_OPT
    n_kaplan = k * (grid / PF_DAY) ** e
    for ax, values in ((ax_n, (ref["N_opt"], n20, n_kaplan)),
                       (ax_d, (ref["D_opt"], CHINCHILLA_TOKENS_PER_PARAM * n20, grid / (6.0 * n_kaplan)))):
        ax.plot(grid, values[0], color="black", ls="-.", lw=1.1, label="Chinchilla approach 3 (Hoffmann et al. 2022)")
        ax.plot(grid, values[1], color="black", ls=":", lw=1.3, label="Chinchilla rule D = 20 N")
        ax.plot(grid, values[2], color="0.45", ls=(0, (6, 2)), lw=1.1,
                label="Kaplan et al. 2020: N = 1.3e9 (C/PF-day)^0.73")


def _clip_to(ax, values) -> None:
    """Keep the data and fits in view; reference lines far outside are cut, not zoomed out to."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values):
        ax.set_ylim(values.min() / 3, values.max() * 3)


def surface_contours(result: FitResult, table: RunTable, nominal: np.ndarray, ax=None, style="screen") -> Figure:
    """Contours of the fitted L(N, D), the runs coloured by their observed loss on the same scale, lines
    of constant compute through each budget's runs (labelled clear of the contour labels and the runs),
    and the compute-optimal path."""
    n_grid = np.logspace(np.log10(table.N.min() / 2.5), np.log10(table.N.max() * 2.5), 160)
    d_grid = np.logspace(np.log10(table.D.min() / 2.5), np.log10(table.D.max() * 2.5), 160)
    NN, DD = np.meshgrid(n_grid, d_grid)
    LL = frontier.predicted_loss(result, NN, DD)
    lo, hi = np.nanpercentile(LL, [0.5, 99.5])
    lo, hi = min(lo, table.loss.min()), max(min(hi, table.loss.max() * 1.3), table.loss.max())
    levels = MaxNLocator(16).tick_values(lo, hi)
    levels = levels[(levels >= lo - 1e-12) & (levels <= hi + 1e-12)]
    if len(levels) < 4:
        levels = np.linspace(lo, hi, 12)
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax,) = panels(ax, st, 1, (8.2, 6.2), extra_height=0.6)
        cmap = matplotlib.colormaps["viridis"]
        norm = Normalize(lo, hi)
        filled = ax.contourf(NN, DD, np.clip(LL, lo, hi), levels=levels, cmap=cmap, norm=norm)
        lines = ax.contour(NN, DD, LL, levels=levels[::3], colors="white", linewidths=0.6, alpha=0.7)
        ax.clabel(lines, fmt="%.2f", fontsize=st.small)
        anchors = []
        for c in budget_colors(nominal):
            here = nominal == c
            nd = np.exp(np.mean(np.log(table.N[here] * table.D[here])))
            ax.plot(n_grid, nd / n_grid, color="white", ls=":", lw=1.0)
            x_label = float(table.N[here].max())  # beside the budget's largest model, on its line
            anchors.append((x_label, nd / x_label, f"C = {pow10(c)}"))
        c_path = np.logspace(np.log10(6 * n_grid[0] * d_grid[0]), np.log10(6 * n_grid[-1] * d_grid[-1]), 200)
        at = frontier.optimum(result, c_path)
        ax.plot(at["N_opt"], at["D_opt"], color="#d62728", lw=2.0, label="compute-optimal N_opt(C), D_opt(C)")
        ax.scatter(table.N, table.D, c=table.loss, cmap=cmap, norm=norm, s=60 * st.marker, edgecolors="black",
                   linewidths=1.0, zorder=5, label="runs (colour: observed loss)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(n_grid[0], n_grid[-1])
        ax.set_ylim(d_grid[0], d_grid[-1])
        log_axis(ax.xaxis)
        log_axis(ax.yaxis)
        ax.set_xlabel("model size N (parameters, log scale)")
        ax.set_ylabel("training tokens D (log scale)")
        ax.set_title(f"Fitted L(N, D) ({METHOD_LABELS.get(result.spec.method, result.spec.method)}); "
                     "dotted: constant compute")
        legend(fig, ax, st, own, loc="upper right")
        fig.colorbar(filled, ax=ax, label="loss L(N, D) (nats/token)", pad=0.01)
        fit_text(fig, (ax,), st)
        xs, ys, names = zip(*anchors) if anchors else ((), (), ())
        place_labels(ax, xs, ys, names, st.small, color="white",
                     bbox={"boxstyle": "round,pad=0.2", "fc": "black", "alpha": 0.45, "lw": 0})
    return fig


def residuals(result: FitResult, table: RunTable, nominal: np.ndarray, ax=None, style="screen") -> Figure:
    """Relative residuals (observed - fitted) / fitted of every run against N and against D, by budget;
    rows the fit dropped are marked; `ax`: two Axes."""
    predicted = frontier.predicted_loss(result, table.N, table.D)
    rel = 100.0 * (table.loss - predicted) / predicted
    dropped = np.isin(table.labels, list(result.spec.dropped))
    kept = ~dropped
    rms = float(np.sqrt(np.mean(rel[kept] ** 2))) if kept.any() else float("nan")
    colors = budget_colors(nominal)
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax_n, ax_d) = panels(ax, st, 2, (12.0, 4.6), extra_height=0.2 + 0.14 * len(colors), sharey=True)
        for axis, x in ((ax_n, table.N), (ax_d, table.D)):
            for c, color in colors.items():
                here = (nominal == c) & kept
                axis.scatter(x[here], rel[here], color=color, s=34 * st.marker, edgecolors="black", linewidths=0.4,
                             label=f"C = {pow10(c)}", zorder=3)
            if dropped.any():
                axis.scatter(x[dropped], rel[dropped], marker="x", color="0.3", s=30 * st.marker,
                             label="dropped from the fit", zorder=3)
            axis.axhline(0.0, color="black", lw=0.9)
            axis.set_xscale("log")
            log_axis(axis.xaxis)
            axis.grid(True, which="major", alpha=0.3)
        ax_n.set_xlabel("model size N (parameters, log scale)")
        ax_d.set_xlabel("training tokens D (log scale)")
        ax_n.set_ylabel("residual (observed - fitted) / fitted (%)")
        ax_n.set_title(f"Residuals against N (RMS {rms:.2f}% over {int(kept.sum())} fitted runs)")
        ax_d.set_title("Residuals against D")
        if len(colors) <= 12:
            legend(fig, ax_n, st, own, loc="best", ncols=2 if len(colors) > 6 else 1)
        fit_text(fig, (ax_n, ax_d), st)
    return fig


def backtest_scatter(bt: Backtest, table: RunTable, ax=None, style="screen") -> Figure:
    """Predicted against observed loss: the runs the backtest fitted on, and the held-out runs it predicted,
    with their prediction intervals when the backtest was bootstrapped."""
    test_labels = {e["label"] for e in bt.loss_errors}
    train = ~np.isin(table.labels, list(test_labels))
    fitted_pred = frontier.predicted_loss(bt.fit, table.N[train], table.D[train])
    obs = np.array([e["loss"] for e in bt.loss_errors])
    pred = np.array([e["predicted"] for e in bt.loss_errors])
    has_bounds = bool(bt.loss_errors) and all(e.get("lo") is not None and e.get("hi") is not None
                                               and np.isfinite([e["lo"], e["hi"]]).all() for e in bt.loss_errors)
    bounds = np.array([[e["lo"], e["hi"]] for e in bt.loss_errors]) if has_bounds else np.empty((0, 2))
    all_values = np.r_[table.loss[train], fitted_pred, obs, pred, bounds.ravel()]
    all_values = all_values[np.isfinite(all_values)]
    lo, hi = all_values.min() * 0.97, all_values.max() * 1.03
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax,) = panels(ax, st, 1, (6.6, 6.0), extra_height=0.9)
        line = np.linspace(lo, hi, 10)
        ax.fill_between(line, line * 0.98, line * 1.02, color="0.9", lw=0, label="within 2%")
        ax.plot(line, line, color="black", lw=1.0, label="predicted = observed")
        ax.scatter(table.loss[train], fitted_pred, s=30 * st.marker, color="0.55", edgecolors="black",
                   linewidths=0.4, label=f"fitted on ({int(train.sum())} runs, in sample)", zorder=3)
        if has_bounds:
            level = bt.summary.get("coverage_level", 0.95)
            ax.errorbar(obs, pred, yerr=np.abs(np.c_[pred - bounds[:, 0], bounds[:, 1] - pred].T), fmt="none",
                        ecolor="#d62728", elinewidth=1.0, capsize=3, label=f"{level:.0%} prediction interval",
                        zorder=3.5)
        ax.scatter(obs, pred, s=70 * st.marker, marker="D", color="#d62728", edgecolors="black", linewidths=0.6,
                   label=f"held out ({len(obs)} runs, predicted)", zorder=4)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"observed {table.loss_label}")
        ax.set_ylabel("predicted loss (nats/token)")
        err, coverage = bt.summary.get("loss_mean_abs_rel_error"), bt.summary.get("coverage")
        second = [f"held-out MAPE {100 * err:.2f}%"] if err is not None else []
        if coverage is not None:
            second.append(f"coverage {coverage:.0%} (nominal {bt.summary['coverage_level']:.0%})")
        ax.set_title(f"Backtest: {bt.split}" + ("\n" + ", ".join(second) if second else ""), fontsize="medium")
        ax.grid(True, alpha=0.3)
        legend(fig, ax, st, own, loc="upper left")
        fit_text(fig, (ax,), st)
    return fig


def lr_panels(table: RunTable) -> dict[tuple[str, float], list]:
    """The lr choices grouped into panels: by nominal budget where the table has one (isoFLOP), else by
    tokens D (a grid's token counts); ordered small to large."""
    panels: dict[tuple[str, float], list] = {}
    for choice in table.lr_choices:
        key = ("C", choice.budget) if np.isfinite(choice.budget) else ("D", choice.D)
        panels.setdefault(key, []).append(choice)
    return dict(sorted(panels.items()))


def lr_sweep(table: RunTable, ax=None, style="screen") -> Figure | None:
    """Loss against lr at every point of an lr list, one line per model size, a panel per budget (`ax`: one
    Axes per panel, as many as lr_panels gives); a star marks the lr kept (--best-of lr), hollow where it is
    the edge of the lrs tried (not tuned, only bounded)."""
    groups = lr_panels(table)
    if not groups:
        return None
    sizes = [c.N for c in table.lr_choices]
    norm = LogNorm(min(sizes), max(sizes)) if min(sizes) < max(sizes) else Normalize(min(sizes) - 1, max(sizes) + 1)
    cmap = matplotlib.colormaps["viridis"]
    st, own = get_style(style), ax is None
    rows, columns = layout(st, len(groups))
    with drawing(st):
        fig, axes = panels(ax, st, len(groups), (4.2 * columns + 1.0, 3.6 * rows), extra_height=0.5)
        for axis, ((kind, value), choices) in zip(axes, groups.items()):
            for choice in sorted(choices, key=lambda c: c.N):
                color = cmap(norm(choice.N))
                axis.plot(choice.lrs, choice.losses, color=color, marker="o", ms=4 * np.sqrt(st.marker), lw=1.2)
                best = choice.losses[choice.lrs.index(choice.best)]
                axis.scatter([choice.best], [best], marker="*", s=180 * st.marker, zorder=5, linewidths=1.6,
                             color="white" if choice.at_edge else color,
                             edgecolors=color if choice.at_edge else "black")
            axis.set_xscale("log")
            log_axis(axis.xaxis)
            axis.set_title(f"C = {pow10(value)} FLOPs" if kind == "C" else f"D = {pow10(value)} tokens")
            axis.set_xlabel("peak learning rate (log scale)")
            axis.set_ylabel(table.loss_label)
            axis.grid(True, which="major", alpha=0.3)
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), label="model size N (parameters)")
        legend(fig, axes[0], st, own, loc="best", handles=[
            Line2D([], [], color="0.3", marker="*", ls="", ms=12, mec="black", label="lr kept"),
            Line2D([], [], color="white", marker="*", ls="", ms=12, mec="0.3", mew=1.2,
                   label="lr kept, at the edge of the grid")])
        fit_text(fig, axes, st)
    return fig


def _flops_name(key: str) -> str:
    return {"flops_exact": "exact", "flops_6nd": "6ND", "flops_6nd_nonembed": "6ND non-embedding"}.get(key, key)
