"""Packed sweeps: a sweep's throughput with `--pack` against `--no-pack`, measured back to back.

For each K, a grid sweep of K runs of one tiny shape that differ only in lr (an lr list of K values,
log-spaced over 4x) is run twice with `scaling sweep run` as a user runs it, once unpacked (K worker
processes, `--workers` at a time) and once packed (the K runs split over the workers as vmapped groups,
scaling.packed), each into a fresh sweep directory. Throughput = the tokens all K runs trained / the
command's wall time (planning, worker start-up, compilation, training, evaluation, checkpoints, collect:
everything a user waits for), and per CPU-second of the command and its workers (getrusage of the waited
children: on a machine shared with other work, the wall time stretches with their load, the CPU time much
less). Before the timed pairs, one untimed pair of each K fills the compilation and data caches, so both
modes load their programs from the cache as a repeated sweep would. With --workers W, the ready runs of
a shape are split over the W workers (sweeps.executors._pack_mates), so K <= W packs nothing.

    python bench/sweep_pack.py                              # K = 2 4 8, 3.3e4 parameters, 200 steps per run
    python bench/sweep_pack.py --k 2 8 --n-params 4.5e5 --steps 100 --repeats 2
    python bench/sweep_pack.py --json                       # one JSON list, a row per (K, mode, repeat)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEQ_LEN, BATCH = 32, 8

SPEC = """
kind = "grid"
[sizes]
n_params = [{n_params}]
aspect_ratio = 16
[hparams]
lr = {lrs}
lr_base_width = 32
batch_size = {batch}
[grid]
tokens = [{tokens}]
[base.data]
val_batches = 2
[base.train]
seq_len = {seq_len}
warmup_steps = 2
eval_every = {eval_every}
log_every = 10
peak_flops = 1e11
[base.checkpoint]
every = {eval_every}
keep = 2
"""


def spec_text(k: int, args) -> str:
    lrs = [float(f"{lr:.4g}") for lr in 3e-3 * 2.0 ** np.linspace(-1, 1, k)]
    return SPEC.format(n_params=args.n_params, lrs=lrs, batch=BATCH, tokens=args.steps * BATCH * SEQ_LEN,
                       seq_len=SEQ_LEN, eval_every=max(1, args.steps // 2))


def run_sweep(spec: Path, pack: bool, args) -> dict:
    """One `scaling sweep run` into a fresh directory: its wall time and the tokens its runs trained."""
    with tempfile.TemporaryDirectory(prefix="sweep_pack_") as out:
        cmd = [sys.executable, "-m", "scaling_cli", "sweep", "run", str(spec), "--out", out, "--quiet",
               "--pack" if pack else "--no-pack", "--workers", str(args.workers), "--threads", str(args.threads)]
        started, cpu_before = time.perf_counter(), children_cpu_s()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - started, children_cpu_s() - cpu_before
        if done.returncode != 0:
            sys.exit(f"error: {' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
        summaries = [json.loads(p.read_text()) for p in Path(out, "runs").glob("*/summary.json")]
    tokens = sum(s["tokens"] for s in summaries)
    return {"wall_s": wall, "cpu_s": cpu, "tokens": tokens, "tokens_per_s": tokens / wall,
            "tokens_per_cpu_s": tokens / cpu, "runs": len(summaries)}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[2, 4, 8], help="runs per sweep")
    parser.add_argument("--n-params", type=float, default=3.3e4, help="model size (the shape chooser's target)")
    parser.add_argument("--steps", type=int, default=200, help="train steps per run")
    parser.add_argument("--workers", type=int, default=2, help="sweep workers (default 2: this machine's CPUs)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--repeats", type=int, default=1, help="timed (unpacked, packed) pairs per K")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = parser.parse_args(argv)
    if min(args.k) < 1 or args.steps < 1 or args.workers < 1 or args.threads < 1 or args.repeats < 1:
        parser.error("--k, --steps, --workers, --threads and --repeats must be at least 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep_pack_specs_") as specs:
        for k in args.k:
            spec = Path(specs, f"pack{k}.toml")
            spec.write_text(spec_text(k, args))
            for pack in (False, True):  # untimed: fill the compilation and data caches
                run_sweep(spec, pack, args)
            for repeat in range(args.repeats):
                for pack in (False, True):
                    rows.append({"k": k, "mode": "packed" if pack else "unpacked", "repeat": repeat,
                                 **run_sweep(spec, pack, args)})
                    if not args.json:
                        r = rows[-1]
                        print(f"K={k:<3} {r['mode']:9} wall {r['wall_s']:7.1f} s {r['tokens_per_s']:8.0f} tokens/s   "
                              f"CPU {r['cpu_s']:7.1f} s {r['tokens_per_cpu_s']:8.0f} tokens/CPU-s", flush=True)
    if args.json:
        print(json.dumps(rows))
    else:
        for k in args.k:
            ratio = {key: np.mean([r[key] for r in rows if r["k"] == k and r["mode"] == "packed"])
                     / np.mean([r[key] for r in rows if r["k"] == k and r["mode"] == "unpacked"])
                     for key in ("tokens_per_s", "tokens_per_cpu_s")}
            print(f"K={k:<3} packed/unpacked: {ratio['tokens_per_s']:.2f}x tokens/s, "
                  f"{ratio['tokens_per_cpu_s']:.2f}x tokens/CPU-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
