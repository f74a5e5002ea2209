#!/usr/bin/env bash
# `make demo`: the whole pipeline on the embedded default, calling the CLIs a user would:
# the demo sweep on the Python stdlib corpus -> collect -> fit (approaches 1, 2 and 3 compared; approach 3
# with a bootstrap) -> HTML report -> Moore's-law synthesis through Epoch's Chinchilla refit (the demo's own fit
# stays within its range: `moore` refuses to carry it to frontier scale); then the report's path and the
# headline numbers. Outputs under runs/demo/ (DEMO_OUT): sweep/, approaches.json, fit.json,
# report/index.html, moore/. Re-running reuses finished runs. The Moore's-law trends use ../shared/data's
# Epoch and Rupp tables when present, else the built-in frontier-LM table and published rates.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=${DEMO_OUT:-runs/demo}
SPEC=${DEMO_SPEC:-sweeps/demo.toml}
DATA=${DEMO_DATA:-../shared/data}
scaling() { "$VENV/bin/scaling" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "1/5 sweep: $SPEC -> $OUT/sweep"
scaling sweep run "$SPEC" --out "$OUT/sweep" --quiet
step "2/5 collect"
scaling sweep collect "$OUT/sweep"
step "3/5 fit: approaches 1, 2 and 3 compared -> $OUT/approaches.json; approach 3 with 200 bootstrap resamples -> $OUT/fit.json"
# A method that refuses this data (it says why on stderr) leaves the comparison out of the headline.
scaling fit "$OUT/sweep/results.parquet" --method parametric,isoflop,envelope --bootstrap 200 --json \
    > "$OUT/approaches.json" || rm -f "$OUT/approaches.json"
scaling fit "$OUT/sweep/results.parquet" --method parametric --bootstrap 200 --out "$OUT/fit.json"
step "4/5 report -> $OUT/report"
scaling report "$OUT/sweep" --fit "$OUT/fit.json" --out "$OUT/report" --title "make demo: scaling laws of tiny byte-level transformers on the Python stdlib"
step "5/5 Moore's law for LLMs through Epoch's Chinchilla refit (the default frontier) -> $OUT/moore"
trends=()
for pair in "models:epoch__notable_ai_models_2025-05.csv" "hardware:epoch__ml_hardware_2025-12.csv" \
            "transistors:rupp__microprocessor_trend_data_50yrs.csv"; do
    if [ -f "$DATA/${pair#*:}" ]; then trends+=("--${pair%%:*}" "$DATA/${pair#*:}"); fi
done
[ ${#trends[@]} -gt 0 ] || echo "(no trend tables in $DATA: built-in frontier-LM table and published rates)"
# Every published Chinchilla-type fit stops below today's frontier runs: the loss projections are
# extrapolations, run with the flag and stamped as such.
scaling moore ${trends[@]+"${trends[@]}"} --allow-extrapolation --bootstrap 1000 --out "$OUT/moore"
# The demo's own fit (tiny byte-level models) is not carried to frontier scale: `moore` refuses it in one line.
if own_fit_refusal=$(scaling moore --fit "$OUT/fit.json" --bootstrap 20 --out "$OUT/moore-own-fit" 2>&1 >/dev/null); then
    own_fit_refusal="NOT refused (unexpected): see $OUT/moore-own-fit"
fi

"$VENV/bin/python" - "$OUT" "$own_fit_refusal" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
own_fit_refusal = sys.argv[2]
fit = json.loads((out / "fit.json").read_text())
moore = json.loads((out / "moore" / "moore.json").read_text())
ci = fit.get("intervals") or {}
boot = fit.get("bootstrap") or {}
# Intervals are 95% intervals only when the bootstrap was reliable (at most 5% of refits failed).
ci_name = "95% CI" if boot.get("reliable") else "interval UNRELIABLE"
def with_ci(name, value, fmt="{:.3f}"):
    lo_hi = ci.get(name)
    return fmt.format(value) + (f"  ({ci_name} {fmt.format(lo_hi[0])} to {fmt.format(lo_hi[1])})" if lo_hi else "")
p, d = fit["params"], fit["derived"]
at = fit["predictions"][0]
print("\n== headline")
print(f"report:  {(out / 'report' / 'index.html').resolve()}")
print(f"fit:     L(N, D) = {p['E']:.3g} + {p['A']:.4g}/N^{p['alpha']:.3f} + {p['B']:.4g}/D^{p['beta']:.3f} "
      f"on {fit['spec']['n_points']} runs")
if boot and not boot.get("reliable"):
    print(f"bootstrap: {boot['n'] - boot['n_ok']} of {boot['n']} refits failed or were degenerate: the ranges "
          "below are not 95% intervals")
for diag in fit.get("diagnostics", []):
    print(f"{'INVALID' if diag['severity'] == 'invalid' else 'warning'} [{diag['code']}] {diag['message']}")
print(f"a = {with_ci('a', d['a'])}    N_opt grows as C^a")
print(f"b = {with_ci('b', d['b'])}    D_opt grows as C^b")
approaches = json.loads((out / "approaches.json").read_text()) if (out / "approaches.json").exists() else {}
approach_names = {"envelope": "approach 1 (envelope)", "isoflop": "approach 2 (isoFLOP parabolas)",
                  "parametric": "approach 3 (parametric)"}
for f in sorted(approaches.get("fits", []), key=lambda f: list(approach_names).index(f["method"])):
    if "error" in f:  # the data could not support this method: say why instead of a number
        print(f"  {approach_names[f['method']]:31s} not fitted: {f['error']}")
        continue
    lo_hi = (f.get("intervals") or {}).get("a")
    boot = f.get("bootstrap") or {}
    label = "95% CI" if boot.get("reliable") else "interval UNRELIABLE"
    band = f"  ({label} {lo_hi[0]:.3f} to {lo_hi[1]:.3f}; {boot['n_ok']}/{boot['n']} refits usable)" if lo_hi else ""
    invalid = ", ".join(x["code"] for x in f["diagnostics"] if x["severity"] == "invalid")
    print(f"  {approach_names[f['method']]:31s} a = {f['a']:.3f}{band}" + (f"  INVALID {invalid}" if invalid else ""))
for diag in approaches.get("diagnostics", []):
    print(f"  across approaches: {diag['message']}")
tpp = at["tokens_per_param"]
band = f"  ({ci_name} {at['tokens_per_param_lo']:.3g} to {at['tokens_per_param_hi']:.3g})" if "tokens_per_param_lo" in at else ""
print(f"tokens/parameter at C = {at['C']:.3g} FLOPs: {tpp:.3g}{band}; N_opt = {at['N_opt']:.3g}, "
      f"L_opt = {at['L_opt']:.3f} nats/token")
def ci95(pair, digits=1):
    return f"95% CI {pair[0]:.{digits}f}-{pair[1]:.{digits}f}"
def stamped(stamp):  # frontier-dependent lines carry moore's extrapolation stamp
    return f" [{stamp}]" if stamp else ""
print(f"effective compute (frontier-LM compute x algorithmic progress) doubles every "
      f"{moore['effective_compute_doubling_months']:.1f} months ({ci95(moore['effective_compute_doubling_months_ci'])})")
cost = moore["cost_to_fixed_loss"]
print(f"compute to reach a fixed loss halves every {cost['compute_halving_months']:.1f} months "
      f"({ci95(cost['compute_halving_months_ci'])}); its cost every {cost['cost_halving_months']:.1f} months "
      f"({ci95(cost['cost_halving_months_ci'])})")
budget = moore["loss_at_fixed_budget"]
print("loss at the " + str(budget[0]["year"]) + " frontier budget: " + ", ".join(
    f"{b['year']} {b['loss']:.3f} ({ci95(b['loss_ci'], 3)})" for b in budget[::5]) + stamped(moore["loss_at_fixed_budget_stamp"]))
months = moore["doubling_months"]
names = {"frontier_lm_compute": "frontier-LM training compute", "notable_compute": "notable-model training compute",
         "hardware_flops_per_dollar_tensor16": "accelerator tensor-FP16/BF16 FLOP/s per $",
         "hardware_flops_per_dollar": "accelerator FP32 FLOP/s per $", "transistors": "transistors per chip"}
for key, label in names.items():
    if key in months:
        lo, hi = moore["doubling_months_ci"][key]
        source = moore["series"][key]["source"]
        print(f"doubling time, {label}: {months[key]:.1f} months (95% CI {lo:.1f}-{hi:.1f}; {source})")
algo = moore["algorithmic"]
print(f"algorithmic progress: compute for a fixed loss halves every {algo['halving_months']:.0f} months ({algo['source']})")
best = moore["scenarios"]["compute_plus_algorithms"]
print(f"reducible loss L_opt - E halves every {best['loss_halving_years']:.1f} years "
      f"({ci95(best['loss_halving_years_ci'])}) on the compute and algorithm trends, if E = {moore['frontier']['E']:.3f} "
      f"is the floor{stamped(best['stamp'])}")
print(f"own fit: fitted on C = {fit['fit_range']['C'][0]:.2g}-{fit['fit_range']['C'][1]:.2g} FLOPs; `scaling moore --fit` "
      f"refuses it at frontier scale: {own_fit_refusal.strip()}")
print(f"moore:   {(out / 'moore' / 'summary.html').resolve()}")
PY
