"""Synthetic sweep directories for the report tests: the layout `scaling sweep run` writes (sweep.json,
runs/<id>/run.json, summary.json, metrics.jsonl), with final losses on a known L(N, D) surface and loss
curves that follow it during training, so no model is trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis.frontier import optimum_from_params

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def loss_at(truth: dict, N, D):
    return truth["E"] + truth["A"] / np.power(N, truth["alpha"]) + truth["B"] / np.power(D, truth["beta"])


def make_sweep(directory: Path, budgets=(1e17, 1e18, 1e19), sizes_per_budget: int = 5, width: float = 0.8,
               noise: float = 0.004, truth: dict = TRUTH, seed: int = 0, collect: bool = True,
               failed: int = 0) -> Path:
    """An isoFLOP sweep on `truth`: per budget, `sizes_per_budget` sizes spanning +-`width` decades around
    the true N_opt, taken from one grid so that sizes recur across budgets (as in a real sweep);
    `failed` extra runs recorded as failed (no loss). Writes results.parquet when `collect`."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    records = []
    step = 2 * width / (sizes_per_budget - 1)
    for c in budgets:
        n0 = float(optimum_from_params("chinchilla", truth, c)["N_opt"])
        first = np.round((np.log10(n0) - width) / step)  # on the grid 10^(k step)
        for k in range(sizes_per_budget):
            n = 10 ** ((first + k) * step)
            records.append(_run(directory, float(c), float(n), truth, noise, rng, "completed"))
    for i in range(failed):
        records.append(_run(directory, float(budgets[0]), 1e8 * (i + 1), truth, noise, rng, "failed"))
    (directory / "sweep.json").write_text(json.dumps({"name": "synthetic", "spec_path": "synthetic.toml",
                                                       "spec": "", "overrides": [],
                                                       "run_ids": [r["run_id"] for r in records]}))
    if collect:
        from sweeps.collector import collect as collect_results
        collect_results(directory)
    return directory


def _run(directory: Path, c: float, n: float, truth, noise, rng, status) -> dict:
    n = int(round(n))
    d = int(round(c / (6 * n)))
    run_id = f"r{len(list((directory / 'runs').glob('*'))) if (directory / 'runs').exists() else 0:03d}_{n}"
    run_dir = directory / "runs" / run_id
    run_dir.mkdir(parents=True)
    n_emb = min(n // 10, 50_000_000)
    flops = {"flops_6nd": 6.0 * n * d, "flops_6nd_nonembed": 6.0 * (n - n_emb) * d, "flops_exact": 6.3 * n * d}
    record = {
        "run_id": run_id, "role": "run", "label": f"C={c:.0e} N~{n:.2g}", "budget": c, "target_n": float(n),
        "sweep_name": "synthetic", "kind": "isoflop", "parent_run_id": None, "branch_tokens": None,
        "branch_step": None, "tokens_planned": d, "n_params": n, "n_params_embedding": n_emb,
        "n_params_nonembedding": n - n_emb, **flops,
        "config": {"model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256, "vocab_size": 256},
                   "train": {"seq_len": 64, "batch_size": 16, "lr": 3e-3, "warmup_steps": 10,
                             "schedule": "cosine", "steps": 100}},
    }
    final = float(loss_at(truth, n, d) * np.exp(noise * rng.standard_normal()))
    summary = {"status": status, "run_id": run_id, "n_params": n, "n_params_embedding": n_emb,
               "n_params_nonembedding": n - n_emb, "tokens": d if status == "completed" else 0,
               "unique_tokens": 10 * d, **flops, "final_val_loss": final if status == "completed" else None,
               "val_bpb": final / np.log(2) if status == "completed" else None, "wall_time_s": 1.0,
               "error": None if status == "completed" else "synthetic failure"}
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if status == "completed":
        lines = []
        for k in range(1, 21):
            tokens = d * k / 20
            loss = float(loss_at(truth, n, tokens) * (1 + 0.01 * rng.standard_normal()))
            row = {"step": 5 * k, "tokens": tokens, "loss": loss, "flops_exact": 6.3 * n * tokens,
                   "flops_6nd": 6.0 * n * tokens}
            if k % 5 == 0:
                row["val_loss"] = final if k == 20 else float(loss_at(truth, n, tokens))
            lines.append(json.dumps(row))
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return record
