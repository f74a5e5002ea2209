"""Estimated training time of planned runs, from train steps measured on this device.

Two probe models, the plan's cheapest and dearest per step, are each timed for a few steps in a
worker process with the sweep's CPU share (`python -m sweeps.worker probe`), which also reports
its start-up time (imports, initialisation, compilation), charged once per run. A step's time is
modelled as overhead + FLOPs / rate, fitted through the two points, so that tiny models, whose
steps are mostly dispatch overhead, are not estimated at the large models' FLOP/s. Results are
cached in the scaling cache directory per device kind, CPU count, thread share, probe shape and code version.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess

from scaling import accounting, io
from scaling.config import EVAL_BATCH, to_dict
from scaling.errors import ScalingError
from sweeps.executors import worker_command
from sweeps.planner import Plan, PlannedRun


@dataclasses.dataclass(frozen=True)
class Estimate:
    seconds: dict[str, float]  # run id -> estimated training seconds
    startup_s: float  # per run: process start, imports, compilation
    overhead_s: float  # per step
    flops_per_s: float  # marginal rate
    how: str

    def total(self, workers: int = 1) -> float:
        return sum(self.seconds.values()) / max(workers, 1)


def code_version() -> str:
    """A fingerprint of what sets the step's speed (the model and step code, jax and the XLA flags),
    so that a measurement cached before any of them changed is not reused."""
    import hashlib

    import jax

    import scaling.model
    import scaling.step

    digest = hashlib.sha256(f"{jax.__version__}|{os.environ.get('XLA_FLAGS', '')}".encode())
    for module in (scaling.model, scaling.step):
        with open(module.__file__, "rb") as source:
            digest.update(source.read())
    return digest.hexdigest()[:12]


def step_flops(run: PlannedRun) -> float:
    t = run.config.train
    return accounting.flops_per_token(run.config.model, t.seq_len)["flops_exact"] * t.batch_size * t.seq_len


def _probe(run: PlannedRun, threads: int, steps: int) -> dict:
    config = dataclasses.replace(run.config, train=dataclasses.replace(run.config.train, steps=steps + 2))
    cmd = worker_command("probe", json.dumps(to_dict(config)), "--threads", str(threads), "--steps", str(steps))
    env = dict(os.environ, SWEEP_PARENT_PID=str(os.getpid()))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ScalingError(f"throughput probe of {run.label} failed: {tail[0]}; use --no-estimate to plan without it")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(plan: Plan, threads: int, steps: int = 5) -> Estimate:
    import jax

    device = jax.devices()[0].device_kind
    cache_path = io.cache_dir(plan.spec.base_config().data.cache_dir) / "sweep_throughput.json"
    cache = io.read_json(cache_path) if cache_path.exists() else {}
    probes = sorted({min(plan.runs, key=step_flops), max(plan.runs, key=step_flops)}, key=step_flops)
    points = []
    for run in probes:
        m, t = run.config.model, run.config.train
        key = (f"{device}|{os.cpu_count()}cpu|{threads}t|{m.dtype}|d{m.d_model}L{m.n_layers}f{m.d_ff}v{m.vocab_size}"
               f"{m.mlp}|b{t.batch_size}s{t.seq_len}a{t.grad_accum}|{code_version()}")
        if key not in cache:
            cache[key] = _probe(run, threads, steps)
            io.write_json(cache_path, cache)
        points.append((step_flops(run), cache[key]["seconds_per_step"], cache[key]["startup_s"]))
    (f0, t0, _), (f1, t1, _) = points[0], points[-1]
    startup = max(p[2] for p in points)
    if f1 > f0 * 1.05 and t1 > t0:
        seconds_per_flop = (t1 - t0) / (f1 - f0)
        overhead = max(t0 - f0 * seconds_per_flop, 0.0)
    else:
        seconds_per_flop, overhead = t1 / f1, 0.0
    seconds = {}
    for run in plan.runs:
        t = run.config.train
        evals = t.steps // t.eval_every + (1 if t.steps % t.eval_every else 0)
        eval_flops = step_flops(run) / 3 / t.batch_size * EVAL_BATCH  # forward only, one validation batch
        seconds[run.run_id] = (startup + t.steps * run.work_fraction * (overhead + step_flops(run) * seconds_per_flop)
                               + evals * run.config.data.val_batches * (overhead + eval_flops * seconds_per_flop))
    how = (f"measured on {device} with {threads} CPU thread(s) per run: {startup:.0f}s start-up per run, then "
           f"step time = {overhead * 1e3:.2f} ms + FLOPs / {1 / seconds_per_flop / 1e9:.3g} GFLOP/s (fitted to "
           f"{len(points)} probe model(s), cached in {cache_path})")
    return Estimate(seconds, startup, overhead, 1 / seconds_per_flop, how)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
