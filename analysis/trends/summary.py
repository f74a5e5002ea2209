"""The whole trends analysis as one function returning plain numbers (moore.json), plus its one-sentence
answers and a short Markdown/HTML summary."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd

from analysis.trends import doubling, synthesis
from analysis.trends.frontier_models import frontier_table
from analysis.trends.published import PUBLISHED

HEADLINE_KEYS = ("notable_compute", "frontier_lm_compute", "hardware_flops", "hardware_flops_per_dollar",
                 "transistors")
EXTRA_KEYS = ("hardware_flops_tensor16", "hardware_flops_per_dollar_fp32")


def analyze(models: pd.DataFrame | None = None, hardware: pd.DataFrame | None = None,
            transistors: pd.DataFrame | None = None, frontier: synthesis.LossFrontier = synthesis.EPOCH_CHINCHILLA,
            n_boot: int = 1000, seed: int = 0, anchor_year: int = 2025, until: int = 2035,
            history_from: int = 2020, inputs: dict | None = None):
    """Returns (result dict for moore.json, trends, projection frame, placed-models frame).

    The projection covers every scenario from `anchor_year` to `until`; rows before the anchor (from
    `history_from`, `projected` false) are the fitted compute trend alone, for context."""
    trends = doubling.fit_all(models, hardware, transistors, n_boot, seed)
    ho = PUBLISHED["algorithmic_halving"]
    algorithms = doubling.published_trend("algorithmic_halving", ho.months, ho.what, ho.ci, n_boot, seed + 5)
    scenarios = synthesis.build_scenarios(trends, algorithms)
    rates = {s.name: synthesis.scenario_rates(frontier, s, n_boot) for s in scenarios}
    anchor = trends["frontier_lm_compute"]
    history = synthesis.project(frontier, [s for s in scenarios if s.name == "compute_trend"], anchor, anchor_year,
                                range(history_from, anchor_year))
    future = synthesis.project(frontier, scenarios, anchor, anchor_year, range(anchor_year, until + 1))
    projection = pd.concat([history.assign(projected=False), future.assign(projected=True)], ignore_index=True)
    placed = synthesis.place_models(frontier, frontier_table())

    keys = [k for k in HEADLINE_KEYS + EXTRA_KEYS if k in trends]
    result = {
        "question": "How fast does the compute-optimal LLM frontier move as compute grows?",
        "inputs": dict(inputs or {}),
        "doubling_months": {k: trends[k].doubling_months for k in keys},
        "doubling_months_ci": {k: list(trends[k].ci_months()) for k in keys},
        "growth_per_year": {k: trends[k].growth_per_year for k in keys},
        "series": {k: {"definition": trends[k].definition, "source": trends[k].source, "n": trends[k].n,
                       "first_year": _round_year(trends[k].year_min), "last_year": _round_year(trends[k].year_max)}
                   for k in keys},
        "published": {k: {"doubling_months": p.months, "ci": list(p.ci) if p.ci else None, "what": p.what,
                          "citation": p.citation} for k, p in PUBLISHED.items()},
        "algorithmic_halving_months": ho.months,
        "algorithmic_halving_months_ci": list(ho.ci),
        "frontier": frontier.as_dict(),
        "loss_halving_years": {name: r["loss_halving_years"] for name, r in rates.items()},
        "loss_halving_years_ci": {name: r["loss_halving_years_ci"] for name, r in rates.items()},
        "scenarios": rates,
        "anchor": {"year": anchor_year, "compute": float(trends["frontier_lm_compute"].predict(anchor_year)),
                   "note": "every scenario starts from the frontier-LM compute trend's value at the anchor year"},
        "definitions": {
            "doubling_months": "12 / slope of a least-squares line of log2(value) on decimal release year",
            "doubling_months_ci": f"{int(doubling.CI_LEVEL * 100)}% percentile bootstrap over rows ({n_boot} resamples)",
            "loss_halving_years": "years for the compute-optimal reducible loss L_opt(C_eff) - E to halve: "
                                  "1 / (gamma * effective-compute doublings per year), gamma = alpha*beta/(alpha+beta)",
            "n_opt_doubling_years": "1 / (a * physical-compute doublings per year), a = beta/(alpha+beta)",
            "d_opt_doubling_years": "1 / (b * physical-compute doublings per year), b = alpha/(alpha+beta)",
            "frontier_models": "tokens per parameter against the compute-optimal D_opt/N_opt at C = 6ND; "
                               f"over-trained above {synthesis.OVERTRAINED_FACTOR:g}x, under-trained below "
                               f"1/{synthesis.OVERTRAINED_FACTOR:g}",
        },
        "projection": _records(projection),  # 'projected' false: the fitted trend before the anchor year
        "frontier_models": _records(placed),
    }
    result["answers"] = answers(result)
    return result, trends, projection, placed


def _round_year(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value, 2)


def _records(frame: pd.DataFrame) -> list[dict]:
    records = frame.to_dict(orient="records")
    def plain(v):
        if isinstance(v, (np.bool_, bool)):
            return bool(v)
        return float(v) if isinstance(v, (np.floating, float)) else v
    return [{k: plain(v) for k, v in r.items()} for r in records]


def _ci(ci) -> str:
    lo, hi = ci
    hi_text = "unbounded" if not math.isfinite(hi) else f"{hi:.1f}"
    return f"95% CI {lo:.1f}-{hi_text}"


def answers(result: dict) -> list[str]:
    """One sentence per question, from the numbers in `result`."""
    dm, ci, series, pub = result["doubling_months"], result["doubling_months_ci"], result["series"], result["published"]

    def trend_sentence(key: str, subject: str, unit: str = "months", verb: str = "doubles") -> str:
        scale = 12.0 if unit == "years" else 1.0
        value, (lo, hi) = dm[key] / scale, (ci[key][0] / scale, ci[key][1] / scale)
        growth = result["growth_per_year"][key]
        p = pub[key]
        if series[key]["source"] == "published":
            return (f"{subject} {verb} every {value:.1f} {unit}, the published value ({p['citation']}); "
                    f"no data were given to fit it.")
        where = " (built-in table of frontier LMs)" if series[key]["source"] == "builtin" else ""
        return (f"{subject}{where} {verb} every {value:.1f} {unit} ({_ci((lo, hi))}; {growth:.2f}x per year); "
                f"published: {p['doubling_months'] / scale:.1f} {unit} ({p['citation']}).")

    scen = result["scenarios"]
    best, hw = scen["compute_plus_algorithms"], scen["hardware_only"]
    sentences = [
        f"Headline: if training compute and algorithms keep their trends, the compute-optimal reducible loss "
        f"L_opt - E halves every {best['loss_halving_years']:.1f} years ({_ci(best['loss_halving_years_ci'])}); "
        f"from hardware price-performance alone at constant spend it halves only every "
        f"{hw['loss_halving_years']:.1f} years ({_ci(hw['loss_halving_years_ci'])}).",
        trend_sentence("notable_compute", "Training compute of notable AI models since 2010"),
        trend_sentence("frontier_lm_compute", "Training compute of frontier language models"),
        trend_sentence("hardware_flops", "Peak FP32 FLOP/s of ML accelerators", "years"),
        trend_sentence("hardware_flops_per_dollar", "ML-accelerator FLOP/s per dollar", "years"),
        trend_sentence("transistors", "Transistors per microprocessor", verb="double"),
    ]
    gamma = result["frontier"]["gamma"]
    for name, r in result["scenarios"].items():
        lo, hi = r["loss_halving_years_ci"]
        sentences.append(
            f"Under '{name}' ({r['description']}; effective compute doubling every "
            f"{r['effective_compute_doubling_months']:.1f} months), the compute-optimal reducible loss "
            f"L_opt - E halves every {r['loss_halving_years']:.1f} years ({_ci((lo, hi))}), while N_opt doubles every "
            f"{r['n_opt_doubling_years']:.1f} and D_opt every {r['d_opt_doubling_years']:.1f} years.")
    sentences.append(f"Rule of thumb for this frontier: the reducible loss halves once per 1/gamma = {1 / gamma:.1f} "
                     f"doublings ({2 ** (1 / gamma):.0f}x) of effective compute (gamma = alpha*beta/(alpha+beta) = "
                     f"{gamma:.3f}).")
    placed = result["frontier_models"]
    counts = {v: sum(m["verdict"] == v for m in placed) for v in ("over-trained", "near compute-optimal", "under-trained")}
    extreme = max(placed, key=lambda m: m["ratio_to_optimal"])
    sentences.append(
        f"Of {len(placed)} frontier language models in the built-in table, {counts['over-trained']} are over-trained, "
        f"{counts['near compute-optimal']} near compute-optimal and {counts['under-trained']} under-trained relative to "
        f"this frontier; the most over-trained, {extreme['model']}, saw {extreme['tokens_per_param']:.0f} tokens per "
        f"parameter against a compute-optimal {extreme['optimal_tokens_per_param']:.0f}.")
    return sentences


def markdown(result: dict, figures: list[str]) -> str:
    lines = ["# Moore's law for LLMs", "", f"*{result['question']}*", "", "## Answers", ""]
    lines += [f"- {s}" for s in result["answers"]]
    lines += ["", "## Doubling times (months)", "", "| series | ours | 95% CI | published | source of ours |",
              "|---|---|---|---|---|"]
    for key, value in result["doubling_months"].items():
        lo, hi = result["doubling_months_ci"][key]
        pub = result["published"].get(key)
        lines.append(f"| {key} | {value:.1f} | {lo:.1f}-{hi:.1f} | {pub['doubling_months']:.1f} |"
                     f" {result['series'][key]['source']} |" if pub else
                     f"| {key} | {value:.1f} | {lo:.1f}-{hi:.1f} | - | {result['series'][key]['source']} |")
    lines += ["", "Series: " + "; ".join(f"**{k}**: {v['definition']} ({v['n']} points)" if v["n"] else
                                      f"**{k}**: {v['definition']} (published value)"
                                      for k, v in result["series"].items()) + "."]
    lines += ["", "## Reducible-loss halving time per scenario (years)", "",
              "| scenario | L_opt - E halves every | 95% CI | N_opt doubles every | D_opt doubles every |",
              "|---|---|---|---|---|"]
    for name, r in result["scenarios"].items():
        lo, hi = r["loss_halving_years_ci"]
        lines.append(f"| {name} | {r['loss_halving_years']:.2f} | {lo:.2f}-{hi:.2f} | "
                     f"{r['n_opt_doubling_years']:.2f} | {r['d_opt_doubling_years']:.2f} |")
    f = result["frontier"]
    lines += ["", f"Frontier: E={f['E']:.4g}, A={f['A']:.4g}, B={f['B']:.4g}, alpha={f['alpha']:.4g}, "
                  f"beta={f['beta']:.4g} ({f['source']}).", "", "## Figures", ""]
    lines += [f"![{name}]({name}.png)" for name in figures]
    lines += ["", "Definitions: " + "; ".join(f"**{k}**: {v}" for k, v in result["definitions"].items()), ""]
    return "\n".join(lines)


def html_page(markdown_text: str) -> str:
    """A dependency-free HTML rendering of the summary: headings, bullet lists, tables and images."""
    body, in_list, in_table = [], False, False
    for line in markdown_text.splitlines():
        if in_list and not line.startswith("- "):
            body.append("</ul>")
            in_list = False
        if in_table and not line.startswith("|"):
            body.append("</table>")
            in_table = False
        if line.startswith("# ") or line.startswith("## "):
            level = 1 if line.startswith("# ") else 2
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        elif line.startswith("!["):
            name = line[line.index("(") + 1:line.rindex(")")]
            body.append(f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}" style="max-width:100%"></p>')
        elif line.strip():
            text = html.escape(line.strip() if not line.startswith("*") or line.startswith("**") else line.strip("*"))
            text = re.sub(r"[*][*](.+?)[*][*]", r"<b>\1</b>", text)
            body.append(f"<p>{text}</p>")
    if in_list:
        body.append("</ul>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
             "td:first-child,th:first-child{text-align:left}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Moore's law for LLMs</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
