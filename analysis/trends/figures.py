"""Figures for the trends analysis, drawn with matplotlib's object API on the Agg canvas (no pyplot, no
global backend state). Each draws into the axes given as `ax` (one Axes, or one per panel) or into a new
figure, in a style of analysis.figure_style (`screen`, or `paper` for a 3.5-inch column); `write_all`
saves them as PNG, SVG and/or PDF."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.figure_style import (DEFAULT_FORMATS, drawing, fit_text, get_style, legend, panels, place_labels, save,
                                   wrap_to_width)
from analysis.trends.doubling import Trend
from analysis.trends.loss_frontier import LossFrontier
from analysis.trends.synthesis import OVERTRAINED_FACTOR

REFERENCE_YEAR = 2020.0
LABELS = {
    "notable_compute": "Training compute, notable models",
    "frontier_lm_compute": "Training compute, frontier LMs",
    "hardware_flops": "Accelerator FP32 FLOP/s",
    "hardware_flops_tensor16": "Accelerator tensor-FP16/BF16 FLOP/s",
    "hardware_flops_per_dollar": "Accelerator FP32 FLOP/s per $",
    "hardware_flops_per_dollar_tensor16": "Accelerator tensor-FP16/BF16 FLOP/s per $",
    "hardware_flops_fp8": "Accelerator FP8 FLOP/s",
    "hardware_flops_per_dollar_fp8": "Accelerator FP8 FLOP/s per $",
    "hardware_flops_per_dollar_fp32": "Accelerator FP32 FLOP/s per $",
    "transistors": "Transistors per microprocessor",
    "algorithmic_halving": "Compute for a fixed LM loss (halving)",
    "effective_compute": "Effective compute, frontier LMs x algorithms",
}
COLORS = {
    "notable_compute": "#1f77b4", "frontier_lm_compute": "#d62728", "hardware_flops": "#2ca02c",
    "hardware_flops_tensor16": "#98df8a", "hardware_flops_per_dollar": "#9467bd",
    "hardware_flops_per_dollar_fp32": "#c5b0d5", "hardware_flops_per_dollar_tensor16": "#c5b0d5",
    "hardware_flops_fp8": "#bcbd22", "hardware_flops_per_dollar_fp8": "#dbdb8d", "transistors": "#7f7f7f",
    "algorithmic_halving": "#ff7f0e", "effective_compute": "#17becf",
}
SCENARIO_COLORS = {"hardware_only": "#9467bd", "hardware_plus_algorithms": "#ff7f0e",
                   "compute_trend": "#d62728", "compute_plus_algorithms": "#1f77b4"}
VERDICT_COLORS = {"over-trained": "#1f77b4", "near compute-optimal": "#2ca02c", "under-trained": "#d62728"}
SUMMARY_FORMATS = ("png",)  # summary.md and summary.html show each figure's PNG
HEADLINE = ("transistors", "hardware_flops", "hardware_flops_per_dollar", "notable_compute", "frontier_lm_compute")


def exponentials(trends: dict[str, Trend], keys=HEADLINE, reference_year: float = REFERENCE_YEAR, ax=None,
                 style="screen") -> Figure:
    """Every fitted series divided by its own trend line's value in `reference_year`, on one log axis,
    with Moore's-law lines (doubling every 2 years, Moore 1975; every year, Moore 1965) through 1."""
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax,) = panels(ax, st, 1, (9.0, 6.0), extra_height=1.6)
        spans = [_relative_series(ax, st, key, trends[key], reference_year) for key in keys
                 if key in trends and trends[key].source != "published"]
        if not spans:
            ax.text(0.5, 0.5, "no data files given", transform=ax.transAxes, ha="center")
            return fig
        lows, highs, x_lo, x_hi = zip(*spans)
        years = np.linspace(min(x_lo) - 1, max(x_hi) + 1, 100)
        for months, ls, label in ((24.0, "--", "Moore 1975: x2 every 2 years"),
                                  (12.0, ":", "Moore 1965: x2 every year")):
            ax.plot(years, 2.0 ** ((years - reference_year) * 12.0 / months), color="black", ls=ls, lw=1.2,
                    label=label)
        ax.set_yscale("log")
        ax.set_ylim(min(lows) / 3, max(highs) * 3)
        ax.set_xlim(years[0], years[-1])
        ax.set_xlabel("release year")
        ax.set_ylabel(f"value relative to its own trend in {reference_year:.0f} (log scale)")
        ax.set_title("Exponential trends in compute, hardware and transistors")
        ax.axvline(reference_year, color="0.8", lw=0.8, zorder=0)
        ax.grid(True, which="major", alpha=0.3)
        legend(fig, ax, st, own, loc="upper left")
        fit_text(fig, (ax,), st)
    return fig


def _relative_series(ax, st, key: str, trend: Trend, reference_year: float) -> tuple[float, float, float, float]:
    """One series' points and trend line relative to the line's value in the reference year; returns the
    (lowest, highest, first year, last year) drawn."""
    shift = trend.level + trend.slope * (reference_year - trend.t_ref)
    rel = 2.0 ** (trend.points_log2 - shift)
    color = COLORS.get(key, None)
    ax.scatter(trend.points_year, rel, s=10 * st.marker, alpha=0.6 if key == "transistors" else 0.35, color=color,
               linewidths=0)
    span = np.linspace(trend.year_min, trend.year_max, 50)
    ax.plot(span, trend.predict(span) / 2.0 ** shift, color=color, lw=2.2,
            label=f"{LABELS.get(key, key)}{' (built-in table)' if trend.source == 'builtin' else ''}: "
                  f"x2 every {_duration(trend.doubling_months)}")
    return rel.min(), rel.max(), trend.year_min, trend.year_max


def _duration(months: float) -> str:
    if not np.isfinite(months):
        return "never"
    return f"{months:.1f} months" if months < 18 else f"{months / 12:.1f} years"


def _ours(result: dict) -> dict[str, tuple[float, list[float]]]:
    """Our estimates (value, 95% interval) per forest row: fitted trends, the effective-compute headline,
    and algorithmic progress when it was fitted or set rather than published."""
    ours = {k: (v, result["doubling_months_ci"][k]) for k, v in result["doubling_months"].items()
            if result["series"][k]["source"] != "published"}
    if "effective_compute_doubling_months" in result:
        ours["effective_compute"] = (result["effective_compute_doubling_months"],
                                     result["effective_compute_doubling_months_ci"])
    algo = result.get("algorithmic") or {}
    if algo.get("source", "published") != "published":
        ours["algorithmic_halving"] = (algo["halving_months"], algo["halving_months_ci"] or [algo["halving_months"]] * 2)
    return ours


def forest(result: dict, ax=None, style="screen") -> Figure:
    """Doubling times (months, log axis) with 95% intervals: our fits beside the published values, with
    the range across alternative definitions where given, the effective-compute headline and algorithmic
    progress."""
    keys = list(result["doubling_months"]) + ["effective_compute", "algorithmic_halving"]
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax,) = panels(ax, st, 1, (9.0, 0.55 * len(keys) + 1.6), print_height=0.45 * len(keys) + 2.4)
        published, ours = result["published"], _ours(result)
        for y, key in enumerate(reversed(keys)):
            color = COLORS.get(key, "k")
            if key in ours:
                _our_estimate(ax, st, y, color, *ours[key], result.get("doubling_months_band", {}).get(key))
            if key in published:
                p = published[key]
                err = [[p["doubling_months"] - p["ci"][0]], [p["ci"][1] - p["doubling_months"]]] if p["ci"] else None
                ax.errorbar([p["doubling_months"]], [y - 0.15], xerr=err, fmt="D", mfc="white",
                            color=color, capsize=3, ms=5 * np.sqrt(st.marker))
                ax.annotate(f"{p['doubling_months']:.1f}", (p["doubling_months"], y - 0.15), xytext=(0, -11),
                            textcoords="offset points", ha="center", fontsize=st.tiny + 1, color="0.35")
        ax.plot([], [], "o", color="0.3", label="our fit, 95% bootstrap CI")
        ax.plot([], [], "D", mfc="white", color="0.3", label="published (interval where given)")
        if result.get("doubling_months_band"):
            ax.plot([], [], color="0.3", lw=4, alpha=0.35, label="range across alternative definitions")
        ax.axvline(24.0, color="black", ls="--", lw=1, label="Moore 1975 (24 months)")
        names = [LABELS.get(k, k) for k in reversed(keys)]
        ax.set_yticks(range(len(keys)), [textwrap.fill(n, 24) for n in names] if st.wrap else names)
        ax.set_xscale("log")
        ax.set_xticks([3, 6, 12, 24, 48, 96], ["3", "6", "12", "24", "48", "96"])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("doubling time (months, log scale); algorithmic progress: halving time")
        ax.set_title("Doubling times: our fits and published values")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        legend(fig, ax, st, own, loc="lower right")
        fit_text(fig, (ax,), st)
    return fig


def _our_estimate(ax, st, y: float, color, value: float, interval, band) -> None:
    """Our estimate with its interval, its value above it, and the definitions' band below it."""
    lo, hi = interval
    ax.errorbar([value], [y + 0.15], xerr=[[value - lo], [min(hi, 1e4) - value]], fmt="o", color=color, capsize=3,
                ms=6 * np.sqrt(st.marker))
    ax.annotate(f"{value:.1f}", (value, y + 0.15), xytext=(0, 5), textcoords="offset points", ha="center",
                fontsize=st.tiny + 1)
    if band:  # the spread across alternative definitions, between ours and the published value
        ax.plot([band[0], min(band[1], 1e4)], [y] * 2, color=color, lw=4, alpha=0.35, solid_capstyle="butt")


def loss_by_year(projection: pd.DataFrame, frontier: LossFrontier, anchor_year: float,
                 placed: pd.DataFrame | None = None, stamp: str | None = None, ax=None, style="screen") -> Figure:
    """Compute-optimal loss per calendar year under each scenario (left, dotted: the saturating variant)
    and its reducible part (right); bands include the frontier's draws; `ax`: two Axes."""
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax_loss, ax_red) = panels(ax, st, 2, (12.0, 5.0), extra_height=1.6)
        for name, rows in projection.groupby("scenario", sort=False):
            _scenario(ax_loss, ax_red, name, rows)
        if placed is not None and len(placed):
            ax_loss.scatter(placed.year, placed.predicted_loss, marker="x", color="black", s=25 * st.marker, zorder=5,
                            label="frontier LMs: L(N, D) of the fit")
            ax_red.scatter(placed.year, placed.predicted_loss - frontier.E, marker="x", color="black",
                           s=25 * st.marker, zorder=5)
        ax_loss.axhline(frontier.E, color="0.4", ls=":", lw=1.2, label=f"irreducible E = {frontier.E:.3g}")
        upper = max(projection["loss_hi"].max(),
                    placed.predicted_loss.max() if placed is not None and len(placed) else 0)
        lower = min(projection["loss_lo"].min(), frontier.E)  # E's own draws reach below the point E
        ax_loss.set_ylim(lower - 0.02, max(upper, frontier.E + 0.1) + 0.02)
        if "loss_saturating" in projection:
            ax_loss.plot([], [], color="0.3", ls=":", lw=1.5, label="saturating at the compute and data limits")
        ax_red.set_yscale("log")
        for axis in (ax_loss, ax_red):
            axis.axvline(anchor_year, color="0.75", lw=0.8, zorder=0)
            axis.set_xlabel("calendar year (dashed: fitted frontier-LM compute trend before the anchor)")
            axis.grid(True, alpha=0.3)
        ax_loss.set_ylabel("compute-optimal loss L_opt (nats/token)")
        ax_red.set_ylabel("reducible loss L_opt - E (nats/token, log scale)")
        ax_loss.set_title("Projected compute-optimal loss by scenario")
        ax_red.set_title("Reducible loss: straight lines, slope = halving time")
        legend(fig, ax_loss, st, own, loc="upper right")
        _stamp(fig, ax_loss, st, own, frontier, stamp)
        fit_text(fig, (ax_loss, ax_red), st)
    return fig


def _scenario(ax_loss, ax_red, name: str, rows: pd.DataFrame) -> None:
    """One scenario's loss and reducible loss: dashed up to the anchor, solid beyond, with its band."""
    color = SCENARIO_COLORS.get(name)
    past, future = rows[~rows.projected], rows[rows.projected]
    for ax, column in ((ax_loss, "loss"), (ax_red, "reducible_loss")):
        if len(past):  # the fitted trend up to the anchor year, joined to the projection
            joined = pd.concat([past, future.iloc[:1]])
            ax.plot(joined.year, joined[column], color=color, ls="--", lw=1.3)
        ax.plot(future.year, future[column], color=color, lw=2, label=name.replace("_", " "))
        band = ("loss_lo", "loss_hi") if column == "loss" else ("reducible_lo", "reducible_hi")
        ax.fill_between(rows.year, rows[band[0]], rows[band[1]], color=color, alpha=0.12, lw=0)
    if "loss_saturating" in rows:
        ax_loss.plot(future.year, future["loss_saturating"], color=color, ls=":", lw=1.5)


def _stamp(fig: Figure, ax, st, own: bool, frontier: LossFrontier, stamp: str | None) -> None:
    """The frontier's source, with the extrapolation stamp in red when the run went past the guard: the
    figure's title in a figure of our own, else a line above the first axes' title (never over data)."""
    text = f"WARNING: {stamp} -- frontier: {frontier.source}" if stamp else f"Frontier: {frontier.source}"
    size, color = (st.small + 1, "#b00000") if stamp else (st.small, "0.35")
    if own:
        fig.suptitle(wrap_to_width(text, st, size), fontsize=size, color=color)
    else:
        ax.annotate(text, xy=(0.5, 1.0), xycoords=ax.title, xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=size, color=color)


def frontier_models(placed: pd.DataFrame, frontier: LossFrontier, stamp: str | None = None, ax=None,
                    style="screen") -> Figure:
    """Frontier LMs against the compute-optimal line: N against C = 6ND (left), tokens per parameter
    against release year (right); every model labelled, no label over another or over a point."""
    st, own = get_style(style), ax is None
    with drawing(st):
        fig, (ax_n, ax_r) = panels(ax, st, 2, (12.0, 5.8), extra_height=1.4)
        if placed.empty:  # closed models publish compute only: nothing to place
            ax_n.text(0.5, 0.5, "no model with a published N and D", transform=ax_n.transAxes, ha="center")
            _stamp(fig, ax_n, st, own, frontier, stamp)
            return fig
        _models_and_line(ax_n, ax_r, st, placed, frontier)
        ax_n.set_xlabel("training compute C = 6ND (FLOP)")
        ax_n.set_ylabel("parameters N")
        ax_n.set_title("Frontier LMs against the compute-optimal line")
        ax_r.set_xlabel("release year")
        ax_r.set_ylabel("training tokens per parameter D/N (log scale)")
        ax_r.set_title("Over- (above) and under-trained (below) models")
        named = {h.get_label(): h for axis in (ax_n, ax_r) for h in axis.get_legend_handles_labels()[0]}
        if own:  # one legend below both panels, where it covers no model
            fig.legend(handles=list(named.values()), loc="outside lower center", frameon=False,
                       ncols=1 if st.width is not None else 3)
        else:
            ax_n.legend(loc="lower right")
            ax_r.legend(loc="best")
        _stamp(fig, ax_n, st, own, frontier, stamp)
        fit_text(fig, (ax_n, ax_r), st)
        for axis, x, y in ((ax_n, placed.compute_6nd, placed.params),
                           (ax_r, placed.year, placed.tokens_per_param)):
            place_labels(axis, np.asarray(x, float), np.asarray(y, float), list(placed.model), st.tiny)
    return fig


def _models_and_line(ax_n, ax_r, st, placed: pd.DataFrame, frontier: LossFrontier) -> None:
    c = np.logspace(np.log10(placed.compute_6nd.min()) - 0.5, np.log10(placed.compute_6nd.max()) + 0.5, 100)
    n_opt = frontier.n_opt(c)
    ax_n.plot(c, n_opt, color="black", lw=2, label=f"compute-optimal N_opt = G (C/6)^{frontier.a:.3f}")
    band = np.sqrt(OVERTRAINED_FACTOR)  # at fixed C, N/N_opt = ratio^(-1/2)
    ax_n.fill_between(c, n_opt / band, n_opt * band, color="0.85", lw=0,
                      label=f"tokens/param within {OVERTRAINED_FACTOR:g}x of optimal")
    for verdict, rows in placed.groupby("verdict"):
        color = VERDICT_COLORS.get(verdict)
        ax_n.scatter(rows.compute_6nd, rows.params, color=color, s=30 * st.marker, zorder=5, label=verdict)
        ax_r.scatter(rows.year, rows.tokens_per_param, color=color, s=30 * st.marker, zorder=5, label=verdict)
    ax_r.scatter(placed.year, placed.optimal_tokens_per_param, color="black", marker="_", s=120 * st.marker, lw=2,
                 label="compute-optimal D/N at that model's C")
    for ax in (ax_n, ax_r):
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
    ax_n.set_xscale("log")


def write_all(directory: str | Path, result: dict, trends: dict[str, Trend], projection: pd.DataFrame,
              placed: pd.DataFrame, frontier: LossFrontier, anchor_year: float, formats=DEFAULT_FORMATS,
              style="screen") -> list[str]:
    """Draws and saves every figure into `directory`, in each of `formats`; returns the figure names
    (without extension)."""
    figures = {
        "trends_exponentials": exponentials(trends, style=style),
        "doubling_forest": forest(result, style=style),
        "loss_by_year": loss_by_year(projection, frontier, anchor_year, placed, result.get("stamp"), style=style),
        "frontier_models": frontier_models(placed, frontier, result.get("frontier_models_stamp"), style=style),
    }
    for name, fig in figures.items():
        save(fig, directory, name, formats, style)
    return list(figures)
