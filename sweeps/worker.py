"""A child process that trains one planned run (or times a probe model), isolated from the sweep.

  python -P -m sweeps.worker run RUN_DIR [--threads T] [--cores 0,1]
  python -P -m sweeps.worker group RUN_DIR RUN_DIR ... [--threads T] [--cores 0,1]   (packed: scaling.packed)
  python -P -m sweeps.worker probe CONFIG_JSON [--threads T] [--steps S]
(-P: the installed code, never a sweeps/ in the working directory; see executors.worker_command)

Why a process per run: a crash (segfault, out of memory) loses one run, not the sweep; and the CPU
share must be fixed before JAX starts. XLA:CPU sizes its thread pool from the CPUs the process may
run on, and the pool size changes how matmuls are split, hence the last bits of the losses (with
JAX 0.10, a d_model=128 model's loss after 30 steps differs in the 3rd decimal between 1 and 2
CPUs). So each worker is pinned (sched_setaffinity) to exactly `threads` CPUs whatever the number
of workers, which makes a run's result independent of the sweep's parallelism. Setting XLA_FLAGS
`--xla_cpu_multi_thread_eigen=false` changed neither the losses nor the speed here, so it is not used.
The worker dies with its parent (PR_SET_PDEATHSIG), so killing the sweep kills its training too and
frees the run's lock, which the worker inherits from the executor.

A SIGTERM or SIGINT reaching the worker (from SLURM, or forwarded by the sweep) is handled by the training
loop itself: it checkpoints its current step and the worker exits EXIT_PREEMPTED.

Exit codes: 0 completed, 3 diverged, 4 branch source missing, 75 preempted (checkpointed; resume it),
1 any other failure.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()  # the probe reports start-up (imports, init, compile) as a per-run cost
EXIT_DIVERGED = 3
EXIT_NO_SOURCE = 4
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    expected = os.environ.get("SWEEP_PARENT_PID")
    if expected and os.getppid() != int(expected):
        sys.exit(1)  # the parent died before prctl took effect


def pin_threads(threads: int, cores: list[int] | None) -> None:
    """Restrict this process to `threads` CPUs (chosen from `cores`) before JAX is imported."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not available:
        return
    threads = max(1, min(threads, len(available)))
    chosen = [c for c in (cores or []) if c in available][:threads]
    for core in available:  # fill up from the rest when the requested cores are not all ours
        if len(chosen) >= threads:
            break
        if core not in chosen:
            chosen.append(core)
    os.sched_setaffinity(0, chosen)


def prepare_branch(run_dir: Path, record: dict) -> None:
    """Start a WSD branch from its parent's checkpoint at the branch point, unless it has progress of its own.

    The checkpoint (parameters, optimizer state, step) is copied into this run's checkpoints/ and the
    parent's metrics up to the branch point into its metrics.jsonl, so that train() simply resumes.
    """
    from scaling import io
    from scaling.run_status import FINAL
    from sweeps.store import has_checkpoint, read_summary

    # A summary that is not a finished one (a "failed" stub, or one damaged on disk) is no progress: the
    # branch must still start from its parent, not from scratch.
    if has_checkpoint(run_dir) or (read_summary(run_dir) or {}).get("status") in FINAL:
        return
    step = record["branch_step"]
    parent = run_dir.parent / record["parent_run_id"]
    source = parent / "checkpoints" / str(step)
    if not source.is_dir():
        print(f"error: parent run {record['parent_run_id']} has no checkpoint at step {step}", file=sys.stderr)
        sys.exit(EXIT_NO_SOURCE)
    staging = run_dir / f".branch-{step}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    os.replace(staging, run_dir / "checkpoints" / str(step))
    rows = [r for r in io.read_jsonl(parent / "metrics.jsonl") if r.get("step", 0) <= step]
    io.atomic_write(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    print(f"branch: starting from parent {record['parent_run_id']} at step {step} (copied its checkpoint)",
          file=sys.stderr, flush=True)


def with_sweep_tracking(config, record: dict):
    """A sweep's runs report as one (when [base.log] turns tracking on): W&B group = the sweep's name (unless
    base.log.group says otherwise), each run named by its label, and its TensorBoard files in
    SWEEP_DIR/tensorboard/<label>_<run id>, so that `tensorboard --logdir SWEEP_DIR/tensorboard` shows every
    run's curves. Not part of the run id, nor of pack keys (run.json keeps the spec's [base.log])."""
    from scaling.tracking import TENSORBOARD_DIR

    log = config.log
    if not (log.tensorboard or log.wandb):
        return config
    label = re.sub(r"[^A-Za-z0-9_.=~+-]+", "_", record["label"]).strip("_")
    events = Path("..", "..", TENSORBOARD_DIR, f"{label}_{record['run_id']}")  # from SWEEP_DIR/runs/<id>
    log = dataclasses.replace(log, group=log.group or record["sweep_name"], name=record["label"],
                              tensorboard_dir=str(events))
    return dataclasses.replace(config, log=log)


def run(run_dir: Path) -> int:
    from scaling import hardware, io
    from scaling.config import from_dict
    from scaling.errors import EXIT_PREEMPTED, DivergedError, PreemptedError
    from scaling.training import train

    record = io.read_json(run_dir / "run.json")
    config = with_sweep_tracking(from_dict(record["config"]), record)
    hardware.split_cpus_into_devices(config.train.batch_size, config.train.grad_accum)
    if record.get("role") == "branch":
        prepare_branch(run_dir, record)
    print(f"worker pid {os.getpid()} on cpus {sorted(os.sched_getaffinity(0))} "
          f"cuda {os.environ.get('CUDA_VISIBLE_DEVICES', '-')}: run {record['run_id']} ({record['label']})",
          file=sys.stderr, flush=True)
    try:
        summary = train(config, run_dir, keep_steps=record.get("keep_steps") or ())
    except DivergedError as err:
        print(f"diverged: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except PreemptedError as err:
        print(f"preempted: {err}", file=sys.stderr)
        return EXIT_PREEMPTED
    print(f"run {record['run_id']} {summary['status']}: val_loss {summary['final_val_loss']}", file=sys.stderr)
    return 0


def group(run_dirs: list[Path]) -> int:
    """Train runs of one shape that differ only in seed/lr as one packed program (scaling.packed). Each member
    writes its own summary; the exit code sums up the pack: 0 all completed, 3 some diverged (the others
    completed), EXIT_PREEMPTED stopped by a signal, 1 a failure."""
    from scaling import hardware, io
    from scaling.config import from_dict
    from scaling.errors import EXIT_PREEMPTED, PreemptedError
    from scaling.packed import train_packed
    from scaling.run_status import COMPLETED

    records = [io.read_json(d / "run.json") for d in run_dirs]
    configs = [with_sweep_tracking(from_dict(r["config"]), r) for r in records]
    hardware.split_cpus_into_devices(configs[0].train.batch_size, configs[0].train.grad_accum)
    print(f"worker pid {os.getpid()} on cpus {sorted(os.sched_getaffinity(0))} "
          f"cuda {os.environ.get('CUDA_VISIBLE_DEVICES', '-')}: {len(records)} runs packed: "
          + ", ".join(f"{r['run_id']} ({r['label']})" for r in records), file=sys.stderr, flush=True)
    try:
        summaries = train_packed(configs, run_dirs)
    except PreemptedError as err:
        print(f"preempted: {err}", file=sys.stderr)
        return EXIT_PREEMPTED
    for record, summary in zip(records, summaries):
        print(f"run {record['run_id']} {summary['status']}: val_loss {summary['final_val_loss']}", file=sys.stderr)
    statuses = {s["status"] for s in summaries}
    return 0 if statuses == {COMPLETED} else EXIT_DIVERGED


def probe(config_json: str, steps: int) -> dict:
    """Seconds per train step of a config (after compilation), timed on random tokens."""
    import jax
    import numpy as np

    from scaling import hardware
    from scaling.config import from_dict
    from scaling.step import compile_train_step, init_state, make_mesh, shard_batch
    from scaling.timing import time_train_step

    config = from_dict(json.loads(config_json))
    hardware.split_cpus_into_devices(config.train.batch_size, config.train.grad_accum)
    mesh = make_mesh()
    graphdef, state = init_state(config, mesh)
    step_fn = compile_train_step(config, graphdef, state, mesh)
    t = config.train
    rng = np.random.default_rng(0)
    batch = shard_batch(rng.integers(0, config.model.vocab_size, (t.batch_size, t.seq_len + 1), dtype=np.int32), mesh)
    timing, _ = time_train_step(step_fn, state, batch, np.float32(t.lr), warmup=1, chunk_steps=steps, min_chunks=1)
    return {"seconds_per_step": timing.seconds_per_step,
            "startup_s": time.perf_counter() - STARTED - timing.timed_s,
            "device_kind": jax.devices()[0].device_kind, "backend": jax.default_backend()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeps.worker")
    parser.add_argument("mode", choices=("run", "group", "probe"))
    parser.add_argument("target", nargs="+", help="RUN_DIR (run), RUN_DIRs (group) or a run config as JSON (probe)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cores", default="", help="comma-separated CPU ids to prefer")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    die_with_parent()
    pin_threads(args.threads, [int(c) for c in args.cores.split(",") if c])
    from scaling import xla_defaults

    xla_defaults.apply()  # before JAX starts, as in every entry point (importing scaling sets nothing)
    if args.mode == "group":
        return group([Path(t) for t in args.target])
    if len(args.target) != 1:
        parser.error(f"{args.mode} takes one target, got {len(args.target)}")
    if args.mode == "probe":
        print(json.dumps(probe(args.target[0], args.steps)))
        return 0
    return run(Path(args.target[0]))


def exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: the run's files are written and closed by now, and
    unwinding JAX, XLA and orbax's threads is a fixed cost of every run (BENCHMARKS.md, Sweep overhead)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
