"""Fit speed: Hoffmann's 4,500-start approach-3 fit on Epoch's 240 Chinchilla points, 1,000 bootstrap
refits, and a scipy L-BFGS-B loop over the same starts for reference.

    python bench/fit_speed.py [--json] [--scipy-starts 100] [--bootstrap 1000]

The scipy loop is timed on a random subset of the starts and extrapolated to all 4,500 (said so in
the output). "cold" includes JAX compilation, as a fresh `scaling fit` process pays it; "warm" is a
second call in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EPOCH_CSV = ROOT.parent / "shared" / "data" / "epoch-analyzing-chinchilla__svg_extracted_data.csv"


def scipy_reference(table, n_starts: int, seed: int = 0) -> dict:
    """Epoch's procedure: scipy L-BFGS-B from each start, finite-difference gradients, one by one."""
    from scipy.optimize import minimize

    from analysis.loading import drop_highest_loss
    from analysis.parametric import HOFFMANN_GRID, grid_points

    fit_table, _ = drop_highest_loss(table, 5)
    lN, lD, lL = np.log(fit_table.N), np.log(fit_table.D), np.log(fit_table.loss)
    delta = 1e-3

    def objective(x):
        a, b, e, alpha, beta = x
        r = np.logaddexp(np.logaddexp(a - alpha * lN, b - beta * lD), e) - lL
        ar = np.abs(r)
        return np.sum(np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta)))

    starts = grid_points(HOFFMANN_GRID)
    pick = np.random.default_rng(seed).choice(len(starts), n_starts, replace=False)
    t0 = time.perf_counter()
    results = [minimize(objective, starts[i], method="L-BFGS-B") for i in pick]
    seconds = time.perf_counter() - t0
    best = min(results, key=lambda r: r.fun)
    return {"starts_timed": n_starts, "seconds": seconds, "seconds_per_start": seconds / n_starts,
            "extrapolated_4500_s": seconds / n_starts * len(starts), "best_objective_in_subset": float(best.fun)}


def main(argv=None) -> int:
    from scaling import xla_defaults

    xla_defaults.apply()  # the settings every entry point applies before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scipy-starts", type=int, default=100)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)
    if not EPOCH_CSV.exists():
        print(f"skipped: {EPOCH_CSV} not found (the shared reference data is not in the repository)")
        return 0
    sys.path.insert(0, str(ROOT))
    from analysis.resampling import bootstrap
    from analysis.loading import load_runs
    from analysis.parametric import fit_parametric
    from scaling import hardware

    out = {"machine": hardware.machine_facts(), "command": "python bench/fit_speed.py",
           "date": time.strftime("%Y-%m-%d")}
    table = load_runs(EPOCH_CSV, columns={"N": "Model Size", "C": "Training FLOP"})
    timings = {}
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        fit = fit_parametric(table, drop_highest=5)
        timings[f"fit_4500_starts_{label}_s"] = time.perf_counter() - t0
    out["fit"] = {**fit.params, "objective": fit.objective, "status": fit.details["status"],
                  "starts_reaching_best": fit.details["starts_reaching_best"]}
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        boot = bootstrap(table, fit, n=args.bootstrap, seed=0)
        timings[f"bootstrap_{args.bootstrap}_{label}_s"] = time.perf_counter() - t0
    out["bootstrap"] = {"alpha": boot.intervals["alpha"], "beta": boot.intervals["beta"],
                        "E": boot.intervals["E"], "a_sd": boot.bootstrap["sd"]["a"], "n_ok": boot.bootstrap["n_ok"]}
    out["scipy"] = scipy_reference(table, args.scipy_starts) if args.scipy_starts else None
    out["timings"] = timings
    out["machine"]["load_average_at_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    m = out["machine"]
    print(f"machine: {m['nproc']} CPUs, {m['cpu']}, load average at start {m['load_average_at_start']}")
    print(f"approach 3, 4,500 starts, 240 points: cold {timings['fit_4500_starts_cold_s']:.2f} s "
          f"(incl. compile), warm {timings['fit_4500_starts_warm_s']:.2f} s")
    print(f"  E={fit.params['E']:.4f} A={fit.params['A']:.1f} B={fit.params['B']:.1f} "
          f"alpha={fit.params['alpha']:.4f} beta={fit.params['beta']:.4f} objective={fit.objective:.5e}")
    print(f"bootstrap, {args.bootstrap} refits: cold {timings[f'bootstrap_{args.bootstrap}_cold_s']:.2f} s, "
          f"warm {timings[f'bootstrap_{args.bootstrap}_warm_s']:.2f} s; alpha 95% {boot.intervals['alpha']}")
    if out["scipy"]:
        s = out["scipy"]
        print(f"scipy L-BFGS-B loop: {s['starts_timed']} random starts in {s['seconds']:.1f} s "
              f"({s['seconds_per_start'] * 1e3:.1f} ms each) -> about {s['extrapolated_4500_s']:.0f} s for "
              f"4,500 (extrapolated); best objective in the subset {s['best_objective_in_subset']:.5e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
