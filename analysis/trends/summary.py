"""The whole trends analysis as one function returning plain numbers (moore.json), plus its one-sentence
answers and a short Markdown/HTML summary."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.trends import algorithmic, doubling, extrapolation, headlines, limits as limits_mod, synthesis
from analysis.trends.frontier_models import frontier_table
from analysis.trends.published import PUBLISHED

HEADLINE_KEYS = ("notable_compute", "frontier_lm_compute", "hardware_flops", "hardware_flops_per_dollar",
                 "transistors")
# Like-for-like hardware per number format (each present only where the hardware file supports it).
EXTRA_KEYS = ("hardware_flops_tensor16", "hardware_flops_per_dollar_tensor16", "hardware_flops_fp8",
              "hardware_flops_per_dollar_fp8", "hardware_flops_per_dollar_fp32")
INTERVALS = {
    "doubling_months_ci": "the trend's row bootstrap alone (how well the data pin down one definition); "
                          "doubling_months_band, where given, spans alternative definitions",
    "effective_compute_doubling_months_ci": "compute-trend bootstrap x algorithmic-progress replicates (no frontier)",
    "cost_to_fixed_loss": "algorithmic-progress replicates x FLOP/s-per-dollar bootstrap (no frontier)",
    "loss_halving_years_ci": "compute-trend bootstrap x algorithmic replicates x the frontier's draws of gamma",
    "n_opt_doubling_years_ci": "compute-trend bootstrap x the frontier's draws of a (d_opt: of b)",
    "projection loss_lo/loss_hi, reducible_lo/reducible_hi, loss_at_fixed_budget": (
        "compute-trend bootstrap (level and slope) x algorithmic replicates x the frontier's draws of E, A, B, "
        "alpha, beta, paired one to one; E's uncertainty is included"),
}


@dataclass(frozen=True)
class Options:
    """How `analyze` runs beyond the data: bootstrap, years, algorithmic progress, limits, the guard."""

    n_boot: int = 1000
    seed: int = 0
    anchor_year: int = 2025
    until: int = 2035
    history_from: int = 2020
    algorithms: algorithmic.AlgorithmicProgress | None = None  # None: Ho et al. 2024
    limits: limits_mod.Limits = limits_mod.Limits()
    max_extrapolation: float = extrapolation.DEFAULT_MAX_FACTOR
    allow_extrapolation: bool = False


def analyze(models: pd.DataFrame | None = None, hardware: pd.DataFrame | None = None,
            transistors: pd.DataFrame | None = None, frontier: synthesis.LossFrontier = synthesis.EPOCH_CHINCHILLA,
            options: Options = Options(), inputs: dict | None = None):
    """Returns (result dict for moore.json, trends, projection frame, placed-models frame).

    The projection covers every scenario from the anchor year to `until`; rows before the anchor (from
    `history_from`, `projected` false) are the fitted compute trend alone, for context. Raises the guard's
    one-line error when the frontier is pushed past `max_extrapolation` without `allow_extrapolation`."""
    o = options
    trends = doubling.fit_all(models, hardware, transistors, o.n_boot, o.seed)
    progress = o.algorithms or algorithmic.default(o.n_boot, o.seed + 5)
    scenarios = synthesis.build_scenarios(trends, progress.trend)
    anchor = trends["frontier_lm_compute"]
    history = synthesis.project(frontier, [s for s in scenarios if s.name == "compute_trend"], anchor, o.anchor_year,
                                range(o.history_from, o.anchor_year), limits=o.limits)
    future = synthesis.project(frontier, scenarios, anchor, o.anchor_year, range(o.anchor_year, o.until + 1),
                               limits=o.limits)
    projection = pd.concat([history.assign(projected=False), future.assign(projected=True)], ignore_index=True)
    placed = synthesis.place_models(frontier, frontier_table())
    guard = extrapolation.assess(np.r_[projection["effective_compute"], placed["compute_6nd"]], frontier.fit_range,
                                 o.max_extrapolation, o.allow_extrapolation)
    extrapolation.check(guard, frontier.source)

    rates = {s.name: synthesis.scenario_rates(frontier, s, o.n_boot) for s in scenarios}
    c0 = float(anchor.predict(o.anchor_year))
    for s in scenarios:
        rates[s.name]["limits"] = limits_mod.crossings(frontier, c0, o.anchor_year, s.compute_slope, o.limits)
        rows = projection[(projection["scenario"] == s.name) & projection["projected"]]
        rates[s.name]["extrapolation_factor"] = _max_factor(rows["extrapolation_factor"])
        rates[s.name]["stamp"] = guard.stamp_at(rates[s.name]["extrapolation_factor"]) or None
        last = rows.iloc[-1]
        rates[s.name]["at_until"] = {"year": int(last["year"]), "loss": float(last["loss"]),
                                     "loss_saturating": float(last["loss_saturating"])}
    budget_stamp = rates[headlines.FIXED_BUDGET_SCENARIO]["stamp"]
    keys = [k for k in HEADLINE_KEYS + EXTRA_KEYS if k in trends]
    best = rates["compute_plus_algorithms"]
    price_key = synthesis.price_performance_key(trends)
    result = {
        "question": "How fast does the compute-optimal LLM frontier move as compute grows?",
        "inputs": dict(inputs or {}),
        "stamp": guard.stamp or None,
        "extrapolation": guard.as_dict(),
        "effective_compute_doubling_months": best["effective_compute_doubling_months"],
        "effective_compute_doubling_months_ci": best["effective_compute_doubling_months_ci"],
        "cost_to_fixed_loss": headlines.cost_to_fixed_loss(progress.trend, trends[price_key], o.n_boot),
        "loss_at_fixed_budget": headlines.loss_at_fixed_budget(projection),
        "loss_at_fixed_budget_stamp": budget_stamp,
        "frontier_models_stamp": guard.stamp_at(_max_factor(placed["extrapolation_factor"])) or None,
        **_trend_block(trends, keys),
        "published": {k: {"doubling_months": p.months, "ci": list(p.ci) if p.ci else None, "what": p.what,
                          "citation": p.citation} for k, p in PUBLISHED.items()},
        "algorithmic": {**progress.as_dict(),
                        "sensitivity": algorithmic.sensitivity(progress, anchor.doubling_months)},
        "algorithmic_halving_months": progress.halving_months,
        "algorithmic_halving_months_ci": list(progress.ci) if progress.ci else None,
        "frontier": frontier.as_dict(),
        "loss_halving_years": {name: r["loss_halving_years"] for name, r in rates.items()},
        "loss_halving_years_ci": {name: r["loss_halving_years_ci"] for name, r in rates.items()},
        "scenarios": rates,
        "limits": o.limits.as_dict(),
        "anchor": {"year": o.anchor_year, "compute": c0,
                   "reducible_loss": float(frontier.reducible_opt(c0)),
                   "note": "every scenario starts from the frontier-LM compute trend's value at the anchor year"},
        "intervals": INTERVALS,
        "definitions": _definitions(o.n_boot),
        "projection": _records(projection),  # 'projected' false: the fitted trend before the anchor year
        "frontier_models": _records(placed),
    }
    result["answers"] = answers(result)
    return result, trends, projection, placed


def _max_factor(values: pd.Series) -> float:
    return float(values.max()) if len(values) and values.notna().all() else float("nan")


def _trend_block(trends: dict, keys: list[str]) -> dict:
    """Doubling times, intervals, growth, definitions and (where the trend has them) definition bands."""
    return {
        "doubling_months": {k: trends[k].doubling_months for k in keys},
        "doubling_months_ci": {k: list(trends[k].ci_months()) for k in keys},
        "doubling_months_band": {k: list(trends[k].band) for k in keys if getattr(trends[k], "band", None)},
        "doubling_months_alternatives": {k: dict(trends[k].alternatives) for k in keys
                                         if getattr(trends[k], "alternatives", None)},
        "growth_per_year": {k: trends[k].growth_per_year for k in keys},
        "series": {k: {"definition": trends[k].definition, "source": trends[k].source, "n": trends[k].n,
                       "first_year": _round_year(trends[k].year_min), "last_year": _round_year(trends[k].year_max)}
                   for k in keys},
    }


def _definitions(n_boot: int) -> dict:
    return {
        "doubling_months": "12 / slope of a least-squares line of log2(value) on decimal release year",
        "doubling_months_ci": f"{int(doubling.CI_LEVEL * 100)}% percentile bootstrap over rows ({n_boot} resamples)",
        "effective_compute_doubling_months": "12 / (physical frontier-LM compute doublings per year + 12 / "
                                             "algorithmic halving months)",
        "cost_to_fixed_loss": "compute for a fixed loss halves every algorithmic halving time; its cost every "
                              "12 / (12 / tau + FLOP/s-per-dollar doublings per year) months",
        "loss_at_fixed_budget": "compute-optimal loss bought each year by the anchor year's frontier compute at "
                                "constant dollars (hardware_plus_algorithms)",
        "loss_halving_years": "years for the compute-optimal reducible loss L_opt(C_eff) - E to halve: "
                              "1 / (gamma * effective-compute doublings per year), gamma = alpha*beta/(alpha+beta); "
                              "it presumes E is the true irreducible loss",
        "n_opt_doubling_years": "1 / (a * physical-compute doublings per year), a = beta/(alpha+beta)",
        "d_opt_doubling_years": "1 / (b * physical-compute doublings per year), b = alpha/(alpha+beta)",
        "extrapolation_factor": "max(C / C_hi, C_lo / C, 1) against the frontier fit's C range",
        "frontier_models": "tokens per parameter against the compute-optimal D_opt/N_opt at C = 6ND; "
                           f"over-trained above {synthesis.OVERTRAINED_FACTOR:g}x, under-trained below "
                           f"1/{synthesis.OVERTRAINED_FACTOR:g}",
    }


def _round_year(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value, 2)


def _records(frame: pd.DataFrame) -> list[dict]:
    records = frame.to_dict(orient="records")
    def plain(v):
        if isinstance(v, (np.bool_, bool)):
            return bool(v)
        return float(v) if isinstance(v, (np.floating, float)) else v
    return [{k: plain(v) for k, v in r.items()} for r in records]


def _ci(ci, digits: int = 1) -> str:
    lo, hi = ci
    hi_text = "unbounded" if not math.isfinite(hi) else f"{hi:.{digits}f}"
    return f"95% CI {lo:.{digits}f}-{hi_text}"


def _stamped(sentence: str, stamp: str | None) -> str:
    """A frontier-dependent sentence carries the extrapolation stamp when there is one."""
    return f"{sentence[:-1]} [{stamp}]." if stamp else sentence


def _years_text(months: float) -> str:
    return f"{months:.1f} months" if months < 24 else f"{months / 12:.1f} years"


def headline_sentences(result: dict) -> list[str]:
    """The three Moore-type headlines, then the reducible-loss halving with its dependence on E."""
    alg, cost = result["algorithmic"], result["cost_to_fixed_loss"]
    best, hw = result["scenarios"]["compute_plus_algorithms"], result["scenarios"]["hardware_only"]
    alg_ci = f"{_ci(alg['halving_months_ci'])}, " if alg["halving_months_ci"] else "no interval, "
    budget = result["loss_at_fixed_budget"]
    first, mid, last = budget[0], budget[min(5, len(budget) - 1)], budget[-1]
    e = result["frontier"]["E"]
    e_ci = result["frontier"]["E_ci"]
    e_range = (f"E's 95% range over the frontier's draws {e_ci[0]:.3f}-{e_ci[1]:.3f}" if e_ci else
               "E held fixed: the frontier has no draws")
    sentences = [
        f"Headline: effective training compute of frontier LMs (physical compute times algorithmic progress) "
        f"doubles every {result['effective_compute_doubling_months']:.1f} months "
        f"({_ci(result['effective_compute_doubling_months_ci'])}): physical compute every "
        f"{best['compute_doubling_months']:.1f} months and the compute needed for a fixed loss halving every "
        f"{alg['halving_months']:.1f} months ({alg_ci}{alg['source']}).",
        f"The compute needed to reach a fixed loss halves every {cost['compute_halving_months']:.1f} months "
        f"({_ci(cost['compute_halving_months_ci']) if alg['halving_months_ci'] else 'set by hand, no interval'}) "
        f"and its cost every {cost['cost_halving_months']:.1f} months ({_ci(cost['cost_halving_months_ci'])}"
        f"{'' if alg['halving_months_ci'] else ': FLOP/s per dollar only'}), with FLOP/s per dollar from "
        f"{cost['price_performance_series']}.",
        _stamped(
            f"At a fixed budget (the {first['year']} frontier run's dollars, {first['effective_compute']:.1e} FLOP "
            f"then), the reachable compute-optimal loss falls from {first['loss']:.3f} in {first['year']} to "
            f"{mid['loss']:.3f} ({_ci(mid['loss_ci'], 3)}) in {mid['year']} and {last['loss']:.3f} "
            f"({_ci(last['loss_ci'], 3)}) in {last['year']}, in {result['frontier']['units']}.",
            result["loss_at_fixed_budget_stamp"]),
        _stamped(
            f"Second, and only if E = {e:.3f} is the true irreducible loss ({e_range}, against a "
            f"{result['anchor']['year']} reducible loss of "
            f"{result['anchor']['reducible_loss']:.3f} nats): L_opt - E halves every {best['loss_halving_years']:.1f} "
            f"years ({_ci(best['loss_halving_years_ci'])}) on the compute and algorithm trends, and every "
            f"{hw['loss_halving_years']:.1f} years ({_ci(hw['loss_halving_years_ci'])}) from hardware "
            f"price-performance alone at constant spend.", best["stamp"]),
    ]
    for row in alg["sensitivity"]:
        sentences.append(f"Sensitivity: with algorithmic progress at {row['algorithmic_halving_months']:.1f} months "
                         f"({row['source']}), effective compute would double every "
                         f"{row['effective_compute_doubling_months']:.1f} months.")
    return sentences


def trend_sentence(result: dict, key: str) -> str:
    dm, ci, series, pub = result["doubling_months"], result["doubling_months_ci"], result["series"], result["published"]
    subject = SUBJECTS.get(key, key)
    value, p = dm[key], pub.get(key)
    published = f"published: {_years_text(p['doubling_months'])} ({p['citation']})" if p else "no published comparator"
    if series[key]["source"] == "published":
        return (f"{subject} doubles every {_years_text(value)}, the published value ({p['citation']}); no data were "
                "given to fit it.")
    where = " (built-in table of frontier LMs)" if series[key]["source"] == "builtin" else ""
    lo, hi = ci[key]
    band = result["doubling_months_band"].get(key)
    band_text = (f"; {_years_text(band[0])} to {_years_text(band[1])} across alternative definitions"
                 if band else "")
    unit_scale = 12.0 if value >= 24 else 1.0
    interval = _ci((lo / unit_scale, hi / unit_scale))
    return (f"{subject}{where} doubles every {_years_text(value)} ({interval}{' years' if unit_scale > 1 else ''}; "
            f"{result['growth_per_year'][key]:.2f}x per year{band_text}); {published}.")


SUBJECTS = {
    "notable_compute": "Training compute of notable AI models since 2010",
    "frontier_lm_compute": "Training compute of frontier language models",
    "hardware_flops": "Peak FP32 FLOP/s of ML accelerators",
    "hardware_flops_per_dollar": "ML-accelerator FP32 FLOP/s per dollar",
    "hardware_flops_tensor16": "Peak tensor-FP16/BF16 FLOP/s of ML accelerators",
    "hardware_flops_per_dollar_tensor16": "ML-accelerator tensor-FP16/BF16 FLOP/s per dollar",
    "hardware_flops_fp8": "Peak FP8 FLOP/s of ML accelerators",
    "hardware_flops_per_dollar_fp8": "ML-accelerator FP8 FLOP/s per dollar",
    "hardware_flops_per_dollar_fp32": "ML-accelerator FP32 FLOP/s per dollar",
    "transistors": "Transistors per microprocessor",
}


def scenario_sentence(name: str, r: dict, limits: dict) -> str:
    lim = r["limits"]
    return _stamped(
        f"Under '{name}' ({r['description']}; effective compute doubling every "
        f"{_years_text(r['effective_compute_doubling_months'])}), L_opt - E halves every {r['loss_halving_years']:.1f} "
        f"years ({_ci(r['loss_halving_years_ci'])}), N_opt doubles every {r['n_opt_doubling_years']:.1f} and D_opt "
        f"every {r['d_opt_doubling_years']:.1f} years; D_opt passes the stock of public text "
        f"({limits['data_stock_tokens']:.0e} tokens) in {_year(lim['d_opt_passes_data_stock_year'])} and physical "
        f"compute the largest run feasible by 2030 ({limits['max_feasible_compute']:.0e} FLOP) in "
        f"{_year(lim['compute_passes_feasible_year'])}; by {r['at_until']['year']} L_opt is "
        f"{r['at_until']['loss']:.3f}, or {r['at_until']['loss_saturating']:.3f} if compute and tokens saturate at "
        f"those limits.", r["stamp"])


def _year(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:.0f}"


def placement_sentence(result: dict) -> str:
    placed = result["frontier_models"]
    if not placed:
        return "No model in the built-in table has a published N and D to place against the frontier."
    verdicts = ("over-trained", "near compute-optimal", "under-trained")
    counts = {v: sum(m["verdict"] == v for m in placed) for v in verdicts}
    farthest = max(m["extrapolation_factor"] for m in placed)
    extreme = max(placed, key=lambda m: m["ratio_to_optimal"])
    most = "the most over-trained" if counts["over-trained"] else "the one trained on the most tokens per parameter"
    return _stamped(
        f"Of {len(placed)} frontier language models with a published N and D, relative to this frontier: "
        f"over-trained {counts['over-trained']}, near compute-optimal {counts['near compute-optimal']}, under-trained "
        f"{counts['under-trained']} (evaluated up to {farthest:.2g}x beyond its fitted range); "
        f"{most}, {extreme['model']}, saw {extreme['tokens_per_param']:.0f} tokens per parameter against a "
        f"compute-optimal {extreme['optimal_tokens_per_param']:.0f}.", result["frontier_models_stamp"])


def frontier_sentence(result: dict) -> str:
    f, x = result["frontier"], result["extrapolation"]
    reach = ("records no fit range" if x["fit_range_C"] is None else
             f"was fitted on C {x['fit_range_C'][0]:.2g}-{x['fit_range_C'][1]:.2g} FLOP and is evaluated up to "
             f"{x['factor']:.2g}x ({x['orders_of_magnitude']:.1f} orders of magnitude) beyond it")
    units = "" if f["in_frontier_units"] else f"; its losses are in {f['units']}, so only its exponents carry over"
    return (f"The frontier ({f['source']}) {reach} (limit {x['max_factor']:g}x"
            f"{', exceeded with --allow-extrapolation' if x['beyond_guard'] else ''}){units}; its intervals use "
            f"{f['draws_note']}.")


def answers(result: dict) -> list[str]:
    """One sentence per question, from the numbers in `result`: headlines first."""
    sentences = headline_sentences(result)
    sentences += [trend_sentence(result, key) for key in result["doubling_months"]]
    sentences += [scenario_sentence(name, r, result["limits"]) for name, r in result["scenarios"].items()]
    gamma = result["frontier"]["gamma"]
    sentences.append(_stamped(
        f"Rule of thumb for this frontier: the reducible loss halves once per 1/gamma = {1 / gamma:.1f} doublings "
        f"({2 ** (1 / gamma):.0f}x) of effective compute (gamma = alpha*beta/(alpha+beta) = {gamma:.3f}).", None))
    sentences += [placement_sentence(result), frontier_sentence(result)]
    return sentences


def markdown(result: dict, figures: list[str]) -> str:
    lines = ["# Moore's law for LLMs", "", f"*{result['question']}*", ""]
    if result["stamp"]:
        lines += [f"**Every loss, N_opt/D_opt and placement below is extrapolated beyond the fit, each stamped with "
                  f"its own distance; the farthest: {result['stamp']}** (--allow-extrapolation).", ""]
    lines += ["## Answers", ""] + [f"- {s}" for s in result["answers"]]
    lines += ["", "## Doubling times (months)", "",
              "| series | ours | 95% CI | across definitions | published | source of ours |",
              "|---|---|---|---|---|---|"]
    for key, value in result["doubling_months"].items():
        lo, hi = result["doubling_months_ci"][key]
        band = result["doubling_months_band"].get(key)
        pub = result["published"].get(key)
        band_text = f"{band[0]:.1f}-{band[1]:.1f}" if band else "-"
        pub_text = f"{pub['doubling_months']:.1f}" if pub else "-"
        lines.append(f"| {key} | {value:.1f} | {lo:.1f}-{hi:.1f} | {band_text} | {pub_text} | "
                     f"{result['series'][key]['source']} |")
    lines += ["", "Series: " + "; ".join(f"**{k}**: {v['definition']} ({v['n']} points)" if v["n"] else
                                      f"**{k}**: {v['definition']} (published value)"
                                      for k, v in result["series"].items()) + "."]
    lines += _scenario_table(result)
    f = result["frontier"]
    lines += ["", f"Frontier: E={f['E']:.4g}, A={f['A']:.4g}, B={f['B']:.4g}, alpha={f['alpha']:.4g}, "
                  f"beta={f['beta']:.4g} ({f['source']}); units: {f['units']}.", "", "## What each interval covers", ""]
    lines += [f"- **{k}**: {v}" for k, v in result["intervals"].items()]
    lines += ["", "## Figures", ""] + [f"![{name}]({name}.png)" for name in figures]
    lines += ["", "Definitions: " + "; ".join(f"**{k}**: {v}" for k, v in result["definitions"].items()), ""]
    return "\n".join(lines)


def _scenario_table(result: dict) -> list[str]:
    lim = result["limits"]
    lines = ["", "## Scenarios", "",
             "| scenario | effective compute doubles (months) | L_opt - E halves (years) | 95% CI | "
             "N_opt doubles (years) "
             f"| D_opt doubles (years) | D_opt passes {lim['data_stock_tokens']:.0e} tokens | compute passes "
             f"{lim['max_feasible_compute']:.0e} FLOP | extrapolation |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["scenarios"].items():
        lo, hi = r["loss_halving_years_ci"]
        cross = r["limits"]
        lines.append(f"| {name} | {r['effective_compute_doubling_months']:.1f} | {r['loss_halving_years']:.2f} | "
                     f"{lo:.2f}-{hi:.2f} | {r['n_opt_doubling_years']:.2f} | {r['d_opt_doubling_years']:.2f} | "
                     f"{_year(cross['d_opt_passes_data_stock_year'])} | "
                     f"{_year(cross['compute_passes_feasible_year'])} | "
                     f"{r['extrapolation_factor']:.2g}x |")
    lines += ["", f"Limits: stock of public text {lim['data_stock_tokens']:.0e} tokens ({lim['data_stock_citation']}); "
                  f"largest feasible run by 2030 {lim['max_feasible_compute']:.0e} FLOP "
                  f"({lim['max_feasible_citation']}). "
                  "The projection's `*_saturating` columns hold compute and tokens at these limits."]
    return lines


def _bold(text: str) -> str:
    return re.sub(r"[*][*](.+?)[*][*]", r"<b>\1</b>", text)


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
            body.append(f"<li>{_bold(html.escape(line[2:]))}</li>")
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
            body.append(f"<p>{_bold(text)}</p>")
    if in_list:
        body.append("</ul>")
    if in_table:
        body.append("</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}"
             "td:first-child,th:first-child{text-align:left}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Moore's law for LLMs</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
