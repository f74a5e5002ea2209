"""Build a report directory: index.html, figures/*.png|svg (and *.pdf when asked), fits.json (every fit in
full, bootstrap replicates included) and report.json (the headline numbers). Everything is written into a staging
directory beside REPORT_DIR and moved into place at the end, so a failure leaves no half-written report;
REPORT_DIR/.scaling-manifest.json lists the files written, the only ones a re-run replaces or deletes."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import numpy as np

from analysis import figure_style, frontier
from analysis.isoflop import nominal_budgets
from analysis.reporting import figures, fits, inputs, page
from scaling.accounting import FLOPS_COLUMNS


PAGE_FORMATS = ("png", "svg")  # index.html shows each figure's PNG and links its SVG


@dataclasses.dataclass(frozen=True)
class Report:
    out: Path
    headline: dict  # name -> {"value", "interval", "meaning"}
    headline_from: str | None
    figures: list[str]
    warnings: list[str]
    figure_formats: tuple[str, ...] = PAGE_FORMATS  # the files written per figure

    def to_frame(self):
        """The headline numbers: one row each, with its interval and what it means."""
        import pandas as pd

        rows = [{"quantity": k, "estimate": v["value"], "lo": (v["interval"] or (None, None))[0],
                 "hi": (v["interval"] or (None, None))[1], "meaning": v["meaning"]} for k, v in self.headline.items()]
        return pd.DataFrame(rows, columns=["quantity", "estimate", "lo", "hi", "meaning"])

    def _repr_html_(self) -> str:
        import html

        index = self.out / "index.html"
        warnings = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
        return (f"<div><p>report: <a href=\"{html.escape(index.as_uri() if index.is_absolute() else str(index))}\">"
                f"{html.escape(str(index))}</a>, {len(self.figures)} figures; headline from "
                f"{html.escape(str(self.headline_from))}</p>"
                + self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)
                + (f"<p>warnings:</p><ul>{warnings}</ul>" if warnings else "") + "</div>")


def build_report(source: str | Path, out: str | Path, fit_path: str | Path | None = None,
                 columns: dict[str, str] | None = None, n_convention: str | None = None, flops: str | None = None,
                 n_boot: int = 200, seed: int = 0, drop_highest: int = 0, budgets=None, title: str | None = None,
                 command: str = "scaling report", loss_label: str | None = None,
                 notes: tuple[str, ...] = (), formats=figure_style.DEFAULT_FORMATS, style: str = "screen") -> Report:
    """The report of `source` (a sweep directory with its results.parquet, or a results table) in `out`;
    `notes` are the caller's lines for the page (e.g. that it collected the results first). The figures are
    drawn in `style` and saved in `formats`, and in PNG and SVG too, which the page shows and links."""
    from analysis.result import load_fit
    from scaling import hardware, io

    out = Path(out)
    io.check_output_dir(out, "scaling report")  # before the fits: a directory of the user's is refused at once
    formats, style = figure_style.parse_formats(formats, also=PAGE_FORMATS), figure_style.get_style(style)
    given = load_fit(fit_path) if fit_path else None
    if n_convention is None:
        n_convention = given.spec.n_convention if given else "total"
    if flops is None and given is not None and given.spec.flops in FLOPS_COLUMNS:
        flops = given.spec.flops
    inp = inputs.read_input(source, columns=columns, n_convention=n_convention, flops=flops)
    if loss_label:
        inp = dataclasses.replace(inp, table=dataclasses.replace(inp.table, loss_label=loss_label))
    hardware.enable_compilation_cache(io.cache_dir())  # approach 3 compiles once per shape of data
    table = inp.table
    with np.errstate(all="ignore"):  # wild bootstrap replicates overflow; they land outside the intervals
        entries = fits.compute_fits(table, given, str(fit_path) if fit_path else None, n_boot=n_boot, seed=seed,
                                    drop_highest=drop_highest, budgets=budgets)
        surface = fits.surface_entry(entries)
        bt = fits.run_backtest(table, surface.result if surface else None, budgets)
        main = fits.primary(entries)
        headline = headline_numbers(main.result, float(table.C.max())) if main else {}
    nominal, how_budgets = nominal_budgets(table, budgets)

    # A re-run replaces the files of the report before it (a reader sees the old report or the new one) and
    # leaves files the user added alone.
    with io.staged_directory(out, "scaling report") as staging:
        (staging / "figures").mkdir()
        with np.errstate(all="ignore"):
            drawn, missing, problems = draw_figures(staging / "figures", inp, entries, bt, nominal, n_convention,
                                                    formats, style)
        conventions = (f"N: {table.n_convention} parameters; C: {table.flops} FLOPs"
                       + (" (the fits' frontiers use C = 6ND)" if table.flops != "6ND (computed)" else "")
                       + f"; budgets: {how_budgets}; loss: {table.loss_label}.")
        content = page.Content(
            title=title or f"Scaling-law report: {inp.sweep_name or Path(str(source)).name}",
            source=str(source), kind=inp.kind, counts=inputs.counts(inp), conventions=conventions,
            notes=list(notes) + list(inp.notes) + list(table.notes), problems=problems,
            headline=[(k, v["value"], v["interval"], v["meaning"]) for k, v in headline.items()],
            headline_from=main.title if main else "", headline_warnings=list(main.warnings) if main else [],
            figures=drawn, missing_figures=missing, entries=entries,
            backtest=bt, runs=inp.results,
            generated=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), command=command,
            headline_intervals=_interval_sentence(main.result if main else None))
        io.atomic_write(staging / "index.html", page.render(content))
        io.write_json(staging / "fits.json", [_entry_dict(e) for e in entries])
        summary = {"source": str(source), "headline_from": main.title if main else None, "headline": headline,
                   "counts": content.counts, "figures": [f.name for f in drawn],
                   "missing_figures": [t for t, _ in missing], "notes": content.notes, "problems": problems,
                   "fits": {e.key: {"title": e.title, "error": e.error, "warnings": list(e.warnings)} for e in entries},
                   "backtest": bt.result.to_dict() if bt.result else {"error": bt.error},
                   "backtest_by_budget": bt.by_budget.to_dict() if bt.by_budget else {"error": bt.budget_error},
                   "backtest_by_size": bt.by_size.to_dict() if bt.by_size else {"error": bt.size_error}}
        io.write_json(staging / "report.json", summary)
    warnings = [w for e in entries for w in e.warnings] + list(inp.warnings)
    return Report(out, headline, main.title if main else None, [f.name for f in drawn], warnings, formats)


def _interval_sentence(result) -> str:
    if result is None or not result.bootstrap:
        return "No bootstrap intervals."
    return page.bootstrap_sentence(result.bootstrap)


def headline_numbers(result, c_max: float) -> dict:
    """a, b and, at the largest budget trained, N_opt, D_opt, D/N and L_opt, with intervals."""
    intervals = result.intervals or {}
    out = {}
    for name, meaning in (("a", "N_opt grows as C^a"), ("b", "D_opt grows as C^b")):
        if name in result.derived or name in result.params:
            out[name] = {"value": result.value(name), "interval": intervals.get(name), "meaning": meaning}
    if result.spec.form == "chinchilla":
        for name, meaning in (("alpha", "L falls as N^-alpha"), ("beta", "L falls as D^-beta"),
                              ("E", "irreducible loss (nats/token)")):
            out[name] = {"value": result.params[name], "interval": intervals.get(name), "meaning": meaning}
    at = frontier.predictions(result, [c_max])[0]
    where = f"at C = {c_max:.3g} FLOPs, the largest budget trained"
    for name, meaning in (("tokens_per_param", f"compute-optimal D/N {where}"), ("N_opt", f"parameters {where}"),
                          ("D_opt", f"tokens {where}"), ("L_opt", f"loss (nats/token) {where}")):
        if name in at:
            lo, hi = at.get(f"{name}_lo"), at.get(f"{name}_hi")
            out[name] = {"value": at[name], "interval": (lo, hi) if lo is not None else None, "meaning": meaning}
    return out


def draw_figures(directory: Path, inp, entries, bt, nominal, n_convention, formats=PAGE_FORMATS, style="screen"):
    """Draw and save every figure the data allow. Returns (drawn FigureInfos, [(title, why not)], problems):
    a figure that fails to draw is reported on the page instead of stopping the report."""
    table = inp.table
    iso = fits.entry(entries, "isoflop")
    iso_fit = iso.result if iso and iso.result else None
    surface = fits.surface_entry(entries)
    surface_fit = surface.result if surface else None
    frontier_fits = [e for e in entries if e.result is not None and frontier.has_frontier(e.result.spec.form)]
    drawn, missing, problems = [], [], []
    flops_key = FLOPS_COLUMNS.get(table.flops, "flops_exact")
    no_surface = "no fit with an L(N, D) surface (approach 3) could be made; see Fits"

    def add(name, title, caption, make, why_not=None):
        if why_not:
            missing.append((title, why_not))
            return
        try:
            fig = make(style)
            if fig is None:
                missing.append((title, "nothing to draw"))
                return
            figure_style.save(fig, directory, name, formats, style)
        except Exception as err:  # one broken figure should not cost the whole report
            problems.append(f"figure '{title}' could not be drawn: {type(err).__name__}: {err}")
            return
        drawn.append(page.FigureInfo(name, title, caption, int(round(fig.get_figwidth() * 100))))

    add("loss_curves", "Loss curves",
        "Training loss (lines) and validation loss (dots) of every completed run, against tokens seen and "
        "against training compute, coloured by model size N.",
        lambda st: figures.loss_curves(inp.curves, inputs.run_sizes(inp.results, n_convention), flops_key, style=st),
        None if inp.curves else ("the input is a results table, not a sweep directory, so there are no "
                                 "per-run metrics" if inp.kind == "table" else "no run has a metrics.jsonl"))
    add("isoflop", "IsoFLOP profiles",
        "Final validation loss against model size at each compute budget; solid: the parabola in log N "
        "(approach 2) through each budget with 3 or more sizes, star: its minimum; dashed: the fitted "
        "L(N, D) surface along the same budget.",
        lambda st: figures.isoflop_curves(table, nominal, iso_fit, surface_fit, style=st))
    labels = [("given fit: " if e.given else "") + figures.METHOD_LABELS.get(e.result.spec.method, e.result.spec.method)
              for e in frontier_fits]
    add("frontier", "Compute-optimal N_opt(C) and D_opt(C)",
        "Compute-optimal model size and data against compute for every fit, with 95% bootstrap bands (solid "
        "where budgets were trained, dashed beyond the largest, marked by the grey vertical line); stars: the "
        "isoFLOP parabola minima; grey dots: the runs. Black lines: published frontiers for reference "
        "(Hoffmann et al. 2022 approach 3 and the D = 20N rule; Kaplan et al. 2020, whose N is non-embedding), "
        "extrapolated far below the compute they were fitted at.",
        lambda st: figures.frontier_lines([e.result for e in frontier_fits], table, iso_fit, labels, style=st),
        None if frontier_fits else "no fit with a compute-optimal frontier could be made; see Fits")
    add("surface", "Fitted loss surface L(N, D)",
        "Filled contours: the fitted L(N, D); dots: the runs, coloured by their observed loss on the same colour "
        "scale (a dot that stands out from its background is a misfit); dotted: constant compute through each "
        "budget's runs; red: the compute-optimal path.",
        lambda st: figures.surface_contours(surface_fit, table, nominal, style=st), None if surface_fit else no_surface)
    add("residuals", "Residuals of the L(N, D) fit",
        "Relative residual (observed - fitted) / fitted of every run, against N and against D, by budget. "
        "A trend with N or D means the functional form misses something.",
        lambda st: figures.residuals(surface_fit, table, nominal, style=st), None if surface_fit else no_surface)
    if table.lr_choices:  # only a sweep with an lr list has several lrs per point
        add("lr_sweep", "Loss against learning rate",
            "Final validation loss against peak learning rate at every point (N, D) trained at several lrs, "
            "one line per model size (colour), a panel per budget; seeds are averaged. Star: the lr kept for the "
            "fits (--best-of lr); hollow where it is the smallest or largest tried, so the tuned loss may lie "
            "beyond the grid (diagnostic best_lr_at_edge).",
            lambda st: figures.lr_sweep(table, style=st))
    add("backtest", "Backtest: predicted against held-out loss",
        "The same method fitted on the smaller budgets (or sizes) only, predicting the held-out runs' loss; "
        "grey: the runs it was fitted on, red: held out.",
        lambda st: figures.backtest_scatter(bt.result, table, style=st),
        None if bt.result is not None and bt.result.loss_errors else (bt.error or "no held-out loss predictions"))
    return drawn, missing, problems


def _entry_dict(e: fits.FitEntry) -> dict:
    return {"key": e.key, "title": e.title, "given": e.given, "error": e.error, "warnings": list(e.warnings),
            "result": e.result.to_dict() if e.result else None}
