"""The report's HTML: one static page (no scripts, no external resources) beside its figures."""

from __future__ import annotations

import dataclasses
import html
import json
import math

import numpy as np
import pandas as pd

from analysis.reporting.fits import BacktestEntry, FitEntry
from scaling.provenance import describe, provenance

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; max-width: 1180px;
       margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-bottom: 0.3em; }
.meta { color: #555; font-size: 0.92em; }
.warn { background: #fff6dd; border-left: 4px solid #e0a800; padding: 0.45em 0.8em; margin: 0.5em 0; }
.note { background: #eef4fb; border-left: 4px solid #5b8fd0; padding: 0.45em 0.8em; margin: 0.5em 0; }
.error { background: #fde8e8; border-left: 4px solid #c0392b; padding: 0.45em 0.8em; margin: 0.5em 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d5d5d5; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
figure { margin: 1.2em 0 2em; break-inside: avoid; page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #333; margin-top: 0.3em; }
pre { background: #f7f7f7; padding: 0.7em; overflow-x: auto; font-size: 0.82em; }
.headline td:first-child { text-align: left; }
@media print { body { max-width: none; margin: 0; } details { display: block; } a { color: inherit; } }
"""


@dataclasses.dataclass(frozen=True)
class FigureInfo:
    name: str  # file stem under figures/
    title: str
    caption: str
    width_px: int = 0  # display width: the figure's inches at 100 CSS px per inch, so text sizes match


@dataclasses.dataclass(frozen=True)
class Content:
    title: str
    source: str
    kind: str  # sweep | table
    counts: dict
    conventions: str
    notes: list[str]  # about the input
    problems: list[str]  # figures that could not be drawn, and why
    headline: list[tuple[str, float, tuple | None, str]]  # (name, value, interval, meaning)
    headline_from: str
    headline_warnings: list[str]
    figures: list[FigureInfo]
    missing_figures: list[tuple[str, str]]  # (title, why not drawn)
    entries: list[FitEntry]
    backtest: BacktestEntry
    runs: pd.DataFrame
    generated: str
    command: str
    headline_intervals: str = "Intervals are 95% bootstrap percentiles."
    made_by: dict = dataclasses.field(default_factory=provenance)  # the code that built the report


def render(c: Content) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             f"<title>{_e(c.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>"]
    parts.append(f"<h1>{_e(c.title)}</h1>")
    counts = c.counts
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts["status"].items()))
    kind = "sweep directory" if c.kind == "sweep" else "results table"
    parts.append(f"<p class=\"meta\">Source: <code>{_e(c.source)}</code> ({kind}); "
                 f"{counts['rows']} rows ({_e(status)}); {counts['points']} points fitted over {counts['sizes']} model "
                 f"sizes and {counts['budgets'] or 'no nominal'} budgets, C from {_num(counts['C_range'][0])} to "
                 f"{_num(counts['C_range'][1])} FLOPs. {_e(c.conventions)}<br>Generated {_e(c.generated)} by "
                 f"<code>{_e(c.command)}</code></p>")
    parts += [f"<div class=\"note\">{_e(n)}</div>" for n in c.notes]
    parts += [f"<div class=\"error\">{_e(p)}</div>" for p in c.problems]

    parts.append("<h2>Headline</h2>")
    if c.headline:
        parts.append(f"<p>Fit: {_e(c.headline_from)}. {_e(c.headline_intervals)}</p>")
        parts += [_warning(w) for w in c.headline_warnings]
        rows = "".join(f"<tr><td class=\"l\">{_e(name)}</td><td>{_num(v)}</td><td>{_interval(ci)}</td>"
                       f"<td class=\"l\">{_e(meaning)}</td></tr>" for name, v, ci, meaning in c.headline)
        label = ("interval (unreliable)" if "UNRELIABLE" in c.headline_intervals else
                 "95% interval" if "95%" in c.headline_intervals else "interval")
        parts.append(f"<table class=\"headline\"><tr><th class=\"l\">quantity</th><th>value</th><th>{label}</th>"
                     f"<th class=\"l\">meaning</th></tr>{rows}</table>")
    else:
        parts.append("<div class=\"warn\">No fit with a compute-optimal frontier could be made from these data; "
                     "see the fits below for the reasons.</div>")

    parts.append("<h2>Figures</h2>")
    for f in c.figures:
        parts.append(f"<figure id=\"{_e(f.name)}\"><h3>{_e(f.title)}</h3>"
                     f"<img src=\"figures/{_e(f.name)}.png\" alt=\"{_e(f.title)}\""
                     + (f" width=\"{f.width_px}\"" if f.width_px else "") + ">"
                     f"<figcaption>{_e(f.caption)} <a href=\"figures/{_e(f.name)}.svg\">SVG</a> · "
                     f"<a href=\"figures/{_e(f.name)}.png\">PNG</a></figcaption></figure>")
    for title, why in c.missing_figures:
        parts.append(f"<h3>{_e(title)}</h3><div class=\"warn\">Not drawn: {_e(why)}</div>")

    parts.append("<h2>Fits</h2>")
    for entry in c.entries:
        parts.append(fit_section(entry))

    parts.append("<h2>Backtest</h2>")
    parts.append(backtest_section(c.backtest))

    parts.append("<h2>Runs</h2>")
    parts.append(f"<details><summary>{len(c.runs)} rows of the results table</summary>{runs_table(c.runs)}</details>")
    parts.append(f"<footer class=\"meta\"><p>Made with {_e(describe(c.made_by))}.</p></footer>")
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def fit_section(entry: FitEntry) -> str:
    out = [f"<h3 id=\"fit-{_e(entry.key)}\">{_e(entry.title)}</h3>"]
    if entry.result is None:
        out.append(f"<div class=\"warn\">Not fitted: {_e(entry.error or 'unknown reason')}</div>")
        return "\n".join(out)
    r = entry.result
    spec = r.spec
    out += [_warning(w) for w in entry.warnings]
    desc = (f"{spec.method} fit, form {spec.form}, objective {spec.loss}"
            + (f" (Huber delta {spec.delta:g})" if spec.delta else "")
            + f", on {spec.n_points} points; N convention {spec.n_convention}, C formula {spec.flops}")
    if spec.dropped:
        desc += f"; dropped {len(spec.dropped)}: {', '.join(spec.dropped[:8])}" + (" ..." if len(spec.dropped) > 8 else "")
    out.append(f"<p class=\"meta\">{_e(desc)}</p>")
    if r.bootstrap:
        out.append(f"<p class=\"meta\">{_e(bootstrap_sentence(r.bootstrap))}</p>")
    sd = (r.bootstrap or {}).get("sd", {})
    rows = []
    for kind, values in (("parameter", r.params), ("derived", r.derived)):
        for name, value in values.items():
            ci = (r.intervals or {}).get(name)
            rows.append(f"<tr><td class=\"l\">{_e(name)}</td><td class=\"l\">{kind}</td><td>{_num(value)}</td>"
                        f"<td>{_interval(ci)}</td><td>{_num(sd[name]) if name in sd else ''}</td></tr>")
    if r.objective is not None:
        rows.append(f"<tr><td class=\"l\">objective</td><td class=\"l\">{_e(spec.loss)}</td><td>{_num(r.objective)}</td>"
                    "<td></td><td></td></tr>")
    label = "95% interval" if (r.bootstrap or {}).get("reliable", False) else "interval (unreliable)" \
        if r.bootstrap else "interval"
    out.append(f"<table><tr><th class=\"l\">name</th><th class=\"l\">kind</th><th>value</th><th>{label}</th>"
               f"<th>bootstrap SD</th></tr>{''.join(rows)}</table>")
    if r.predictions:
        out.append(predictions_table(r.predictions))
    if r.notes:
        out += [f"<div class=\"note\">{_e(n)}</div>" for n in r.notes]
    full = r.to_dict()
    full.pop("samples", None)  # the replicates are in fits.json; the page shows everything else
    out.append(f"<details><summary>Full specification and diagnostics (JSON)</summary><pre>"
               f"{_e(json.dumps(full, indent=2, allow_nan=False))}</pre></details>")
    return "\n".join(out)


def bootstrap_sentence(b: dict) -> str:
    what = (f"{b['n_ok']} of {b['n']} bootstrap refits usable ({b.get('scheme', 'cases')} resampled, "
            f"{b['n_units']} {b['unit']}s, seed {b['seed']})")
    if b.get("reliable", False):
        return f"{b['level']:.0%} percentile intervals from {what}."
    return (f"Intervals UNRELIABLE: only {what}; more than 5% of refits failed or were degenerate, so the "
            f"ranges shown are not {b['level']:.0%} intervals.")


def predictions_table(rows: list[dict]) -> str:
    def cell(row, key):
        value = row.get(key)
        if value is None:
            return "<td>-</td>"
        lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
        return f"<td>{_num(value)}" + (f"<br><small>[{_num(lo)}, {_num(hi)}]</small>" if lo is not None else "") + "</td>"

    body = "".join("<tr>" + f"<td>{_num(r['C'])}</td>" + "".join(cell(r, k) for k in
                   ("N_opt", "D_opt", "tokens_per_param", "L_opt")) + "</tr>" for r in rows)
    return ("<table><tr><th>budget C (FLOPs)</th><th>N_opt (parameters)</th><th>D_opt (tokens)</th>"
            f"<th>D/N (tokens per parameter)</th><th>L_opt (nats/token)</th></tr>{body}</table>")


def backtest_section(bt: BacktestEntry) -> str:
    """Both splits side by side (MAPE, coverage, N_opt error), then each split's held-out runs."""
    if bt.result is None:
        return f"<div class=\"warn\">No backtest: {_e(bt.error or 'unknown reason')}</div>"
    out = ["<p>The method of the L(N, D) fit, refitted without the largest budget (or without the largest model "
           "size), predicting the runs held out. MAPE: mean |predicted - observed| / observed of the held-out "
           "loss. Coverage: the share of held-out runs inside their prediction intervals (bootstrap of the "
           "refit with the runs' scatter about it); well below the nominal level, the intervals are too narrow "
           "for extrapolating this far. The backtest figure above shows the split by budget "
           "(or by size when there is none).</p>",
           "<table><tr><th class=\"l\">held out</th><th class=\"l\">fitted on</th><th>runs fitted / held out</th>"
           "<th>loss MAPE</th><th>max |error|</th><th>coverage</th><th>N_opt mean |error|</th></tr>"
           + "".join(_backtest_row(by, b, err) for by, b, err in bt.splits()) + "</table>"]
    for by, b, _ in bt.splits():
        if b is not None:
            out.append(_backtest_details(by, b))
    return "\n".join(out)


def _backtest_row(by: str, b, error: str | None) -> str:
    name = f"largest {by}"
    if b is None:
        return f"<tr><td class=\"l\">{name}</td><td class=\"l\" colspan=\"6\">not made: {_e(error)}</td></tr>"
    s = b.summary
    pct = lambda key, digits=2: f"{100 * s[key]:.{digits}f}%" if key in s else "-"
    coverage = "-"
    if "coverage" in s:
        inside = sum(e["inside"] for e in b.loss_errors)
        coverage = f"{inside}/{len(b.loss_errors)} ({s['coverage']:.0%}) at {s['coverage_level']:.0%}"
    return (f"<tr><td class=\"l\">{name}</td><td class=\"l\">{_e(b.split)}</td><td>{b.n_train} / {b.n_test}</td>"
            f"<td>{pct('loss_mean_abs_rel_error')}</td><td>{pct('loss_max_abs_rel_error')}</td><td>{coverage}</td>"
            f"<td>{pct('n_opt_mean_abs_rel_error', 1)}</td></tr>")


def _backtest_details(by: str, b) -> str:
    out = [f"<h3>Held out: the largest {by}</h3>"]
    if b.loss_errors:
        level = b.summary.get("coverage_level")
        head = f"{level:.0%} prediction interval" if level else "prediction interval"
        rows = "".join(f"<tr><td class=\"l\">{_e(e['label'])}</td><td>{_num(e['N'])}</td><td>{_num(e['D'])}</td>"
                       f"<td>{e['loss']:.4f}</td><td>{e['predicted']:.4f}</td><td>{100 * e['rel_error']:+.2f}%</td>"
                       f"<td>{_backtest_interval(e)}</td></tr>" for e in b.loss_errors)
        out.append("<table><tr><th class=\"l\">held-out run</th><th>N</th><th>D</th><th>observed loss</th>"
                   f"<th>predicted loss</th><th>relative error</th><th>{head}</th></tr>{rows}</table>")
    if b.n_opt_errors:
        rows = "".join(f"<tr><td>{_num(e['C'])}</td><td>{_num(e['observed'])}</td><td>{_num(e['predicted'])}</td>"
                       f"<td>{100 * e['rel_error']:+.1f}%</td></tr>" for e in b.n_opt_errors)
        out.append("<table><tr><th>held-out budget C</th><th>N_opt observed (parabola)</th><th>N_opt predicted</th>"
                   f"<th>relative error</th></tr>{rows}</table>")
    out += [f"<div class=\"note\">{_e(n)}</div>" for n in b.notes]
    params = ", ".join(f"{k} = {_num(v)}" for k, v in b.fit.params.items())
    out.append(f"<p class=\"meta\">Backtest fit ({_e(b.split)}): {_e(params)}</p>")
    return "\n".join(out)


def _backtest_interval(e: dict) -> str:
    if "lo" not in e:
        return "-"
    return _interval((e["lo"], e["hi"])) + ("" if e["inside"] else " <b>outside</b>")


RUN_COLUMNS = ("run_id", "status", "budget", "n_params", "n_params_nonembedding", "tokens", "flops_exact",
               "final_val_loss", "val_bpb", "d_model", "n_layers", "lr", "steps", "wall_time_s")


def runs_table(frame: pd.DataFrame) -> str:
    cols = [c for c in RUN_COLUMNS if c in frame.columns] or list(frame.columns)[:12]
    head = "".join(f"<th>{_e(str(c))}</th>" for c in cols)
    body = []
    for _, row in frame[cols].iterrows():
        body.append("<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in cols) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else _num(float(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return _e("" if value is None else str(value))


def _num(value) -> str:
    if value is None:
        return ""
    value = float(value)
    if not math.isfinite(value):
        return "-" if math.isnan(value) else str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _warning(text: str) -> str:
    """A diagnostic line: `invalid` ones in the error style, so they cannot be read past."""
    return f"<div class=\"{'error' if text.startswith('INVALID') else 'warn'}\">{_e(text)}</div>"


def _interval(ci) -> str:
    if not ci:
        return ""
    if not all(v is not None and math.isfinite(v) for v in ci):
        return "undefined"  # some bootstrap replicates give no value (e.g. a negative exponent)
    return f"[{_num(ci[0])}, {_num(ci[1])}]"


def _e(text) -> str:
    return html.escape(str(text), quote=True)
