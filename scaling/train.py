"""The training loop: prepare data, build or resume the state, step, evaluate, log, checkpoint.

A run directory holds `config.toml` (the resolved config), `tokenizer.json`, `metrics.jsonl` (one
line per logged step), `checkpoints/`, and at the end `summary.json`. A run restarted on an
existing directory resumes from its newest checkpoint; the sampler's state is (seed, step), so
the resumed run sees exactly the batches it would have seen and, on CPU, reproduces the same losses
bit for bit. The host reads each step's metrics only after dispatching the next step, so it never
makes the device wait.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Callable, Collection

import jax
import numpy as np

from scaling import accounting, hardware, io
from scaling.checkpoint import Checkpoints, abstract_like
from scaling.config import RunConfig, config_hash, resolve, to_dict, to_toml
from scaling.data import Dataset, bits_per_byte, prepare_dataset, train_batch, val_batches
from scaling.errors import ConfigError, DivergedError
from scaling.model import compute_dtype
from scaling.progress import Progress
from scaling.schedules import lr_table
from scaling.step import compile_eval_step, compile_train_step, init_state, make_mesh, shard_batch

EVAL_BATCH = 16  # sequences per validation batch: the validation set is the same for every run
FINAL_LOSS_WINDOW = 10  # final_train_loss averages the last this-many steps


def resolve_for_run(config: RunConfig, ds: Dataset) -> RunConfig:
    """Resolve data-dependent fields and the compute dtype for this backend."""
    config = resolve(config, ds.vocab_size)
    model = dataclasses.replace(config.model, dtype=compute_dtype(config.model.dtype).name)
    return dataclasses.replace(config, model=model)


def check_run_dir(run_dir: Path, run_id: str) -> dict | None:
    """Refuse a directory that holds a different run; return its summary if it already finished."""
    stored = run_dir / "config.json"
    if stored.exists():
        previous = io.read_json(stored).get("run_id")
        if previous != run_id:
            raise ConfigError(f"{run_dir} holds run {previous}, but this config resolves to run {run_id}; "
                              "choose another --out or delete that directory")
    summary = run_dir / "summary.json"
    if summary.exists():
        finished = io.read_json(summary)
        if finished.get("status") == "completed":
            return finished
    return None


def evaluate(eval_step, params, batches: np.ndarray, mesh) -> float:
    losses = [eval_step(params, shard_batch(batch, mesh)) for batch in batches]
    return float(np.mean([float(loss) for loss in losses]))


def train(config: RunConfig, run_dir: str | Path, on_step: Callable[[int], None] | None = None,
          quiet: bool = False, keep_steps: Collection[int] = ()) -> dict:
    """Train (or resume, or return the summary of) the run in `run_dir`; returns summary.json's content.

    `keep_steps`: also checkpoint at these steps and never delete those checkpoints. A WSD sweep's
    stable-phase run keeps its branch points this way; each cooldown branch starts from a copy of one.
    """
    run_dir = Path(run_dir)
    started = time.time()
    hardware.enable_compilation_cache(io.cache_dir(config.data.cache_dir))
    ds = prepare_dataset(config.data, config.train.seq_len, config.model.vocab_size)
    config = resolve_for_run(config, ds)
    run_id = config_hash(config)
    finished = check_run_dir(run_dir, run_id)
    if finished is not None:
        return finished
    run_dir.mkdir(parents=True, exist_ok=True)
    m, t = config.model, config.train
    mesh = make_mesh()
    n_dev = mesh.shape["data"]
    if (t.batch_size // t.grad_accum) % n_dev:
        raise ConfigError(f"train.batch_size / train.grad_accum = {t.batch_size // t.grad_accum} sequences per "
                          f"micro-batch must be divisible by the {n_dev} devices")
    tokens_per_step = t.batch_size * t.seq_len
    total_tokens = t.steps * tokens_per_step
    epochs = total_tokens / ds.unique_train_tokens
    if epochs > 1:
        print(f"warning: this run reads {total_tokens:,} tokens but the training split holds {ds.unique_train_tokens:,} "
              f"unique tokens ({epochs:.2f} epochs): data will repeat", file=sys.stderr)

    io.write_json(run_dir / "config.json", {"run_id": run_id, "config": to_dict(config)})
    io.atomic_write(run_dir / "config.toml", to_toml(config))
    ds.save_tokenizer(run_dir / "tokenizer.json")

    counts = accounting.param_counts(m)
    per_token = accounting.flops_per_token(m, t.seq_len)
    tick = time.perf_counter()
    graphdef, state, _ = init_state(config, mesh)
    init_s = time.perf_counter() - tick  # mostly compiling the initialiser
    checkpoints = Checkpoints(run_dir / "checkpoints", config.checkpoint.keep, preserve=keep_steps)
    restored = checkpoints.restore_latest(abstract_like(state))
    start_step, prior_wall = 0, 0.0
    if restored is not None:
        start_step, state, meta = restored
        prior_wall = float(meta.get("wall_time_s", 0.0))
        print(f"resuming {run_dir} from step {start_step}", file=sys.stderr)
    io.truncate_jsonl(run_dir / "metrics.jsonl", start_step)

    step_fn = compile_train_step(config, graphdef, state, mesh)
    lrs = lr_table(t)
    eval_fn = compile_eval_step(graphdef, mesh)
    eval_batch = EVAL_BATCH * -(-n_dev // EVAL_BATCH)
    validation = val_batches(ds, config.data.val_batches, eval_batch, t.seq_len)
    peak = t.peak_flops or hardware.peak_flops(m.dtype, io.cache_dir(config.data.cache_dir))
    peak_source = "declared" if t.peak_flops else "measured"

    writer = io.JsonlWriter(run_dir / "metrics.jsonl")
    progress = Progress(t.steps, start_step, tokens_per_step, enabled=not quiet)
    recent_losses: collections.deque[float] = collections.deque(maxlen=FINAL_LOSS_WINDOW)
    status, val_loss, error = "completed", None, None
    window_start, window_steps, train_seconds = time.perf_counter(), 0, 0.0
    # Where this attempt's time went (seconds; bench/sweep_overhead.py reads them). setup_s includes init_s;
    # the loop's first step call traces and compiles (or loads from the compilation cache), and eval_first_s
    # includes the evaluation step's compilation; process_cpu_s is the process's CPU time (all threads) at the end.
    timings = {"setup_s": time.time() - started, "init_s": init_s, "first_step_s": 0.0, "eval_s": 0.0,
               "eval_first_s": 0.0, "evals": 0, "checkpoint_save_s": 0.0, "checkpoint_saves": 0,
               "checkpoint_wait_s": 0.0, "loop_s": 0.0}
    loop_start = time.perf_counter()

    def meta(step: int) -> dict:
        return {"step": step, "seed": t.seed, "sampler": "numpy default_rng([seed, step])",
                "tokens": step * tokens_per_step, "wall_time_s": prior_wall + time.time() - started}

    def record(step: int, metrics: dict, evaluated: float | None) -> dict:
        nonlocal window_start, window_steps, train_seconds
        elapsed = time.perf_counter() - window_start
        tokens_per_s = window_steps * tokens_per_step / elapsed if elapsed > 0 else float("nan")
        train_seconds += elapsed
        window_start, window_steps = time.perf_counter(), 0
        row = {"step": step, "tokens": step * tokens_per_step,
               **{name: float(f) * step * tokens_per_step for name, f in per_token.items()},
               "loss": metrics["loss"], "lr": metrics["lr"], "grad_norm": metrics["grad_norm"],
               "tokens_per_s": tokens_per_s, "mfu": tokens_per_s * per_token["flops_exact"] / (peak * n_dev)}
        if evaluated is not None:
            row |= {"val_loss": evaluated, "val_bpb": bits_per_byte(evaluated, ds.val_bytes_per_token)}
        writer.write(row)
        return row

    pending = None  # (step, device metrics) of the step before the one in flight
    try:
        for index in range(start_step, t.steps):
            batch = shard_batch(train_batch(ds, t.seed, index, t.batch_size, t.seq_len), mesh)
            tick = time.perf_counter()
            state, device_metrics = step_fn(state, batch, lrs[index])
            if index == start_step:
                timings["first_step_s"] = time.perf_counter() - tick
            step = index + 1
            if pending is not None:
                status = handle(pending, recent_losses, record, progress, t, evaluated=None)
                if status == "diverged":
                    break
            window_steps += 1
            pending = (step, device_metrics)
            if on_step is not None:
                on_step(step)
            do_eval = step % t.eval_every == 0 or step == t.steps
            do_save = ((config.checkpoint.every and step % config.checkpoint.every == 0) or step in keep_steps) \
                and step < t.steps
            if do_eval or do_save:
                jax.block_until_ready(device_metrics)
                tick = time.perf_counter()
                evaluated = evaluate(eval_fn, state.params, validation, mesh) if do_eval else None
                if do_eval:
                    timings["eval_first_s"] = timings["eval_first_s"] or time.perf_counter() - tick
                    timings["eval_s"] += time.perf_counter() - tick
                    timings["evals"] += 1
                status = handle(pending, recent_losses, record, progress, t, evaluated, force=True)
                pending = None
                if evaluated is not None:
                    val_loss = evaluated
                if status == "diverged":
                    break
                if do_save:
                    tick = time.perf_counter()
                    checkpoints.save(step, state, meta(step))
                    timings["checkpoint_save_s"] += time.perf_counter() - tick
                    timings["checkpoint_saves"] += 1
                window_start = time.perf_counter()
        if pending is not None and status != "diverged":
            status = handle(pending, recent_losses, record, progress, t, evaluated=None, force=True)
        if status == "completed":
            tick = time.perf_counter()
            checkpoints.save(t.steps, state, meta(t.steps))
            timings["checkpoint_save_s"] += time.perf_counter() - tick
            timings["checkpoint_saves"] += 1
        timings["loop_s"] = time.perf_counter() - loop_start
    except (KeyboardInterrupt, SystemExit):
        progress.close()
        writer.close()
        checkpoints.close()
        raise
    except Exception as err:  # noqa: BLE001 - recorded in the summary, then re-raised
        status, error = "failed", f"{type(err).__name__}: {err}"
        raise_after = err
    else:
        raise_after = None
    finally:
        progress.close()
        writer.close()
    tick = time.perf_counter()
    checkpoints.close()  # waits for the asynchronous checkpoint writes
    timings["checkpoint_wait_s"] = time.perf_counter() - tick

    steps_done = int(state.step) if status != "failed" else start_step
    if status == "diverged":
        error = f"non-finite training loss at step {progress.last_step}"
    wall = prior_wall + time.time() - started
    tokens_done = steps_done * tokens_per_step
    mean_tps = (steps_done - start_step) * tokens_per_step / train_seconds if train_seconds > 0 else None
    summary = {
        "status": status, "error": error, "run_id": run_id,
        **counts,
        "tokens": tokens_done, "tokens_planned": total_tokens, "unique_tokens": ds.unique_train_tokens,
        "epochs": tokens_done / ds.unique_train_tokens, "steps": steps_done, "tokens_per_step": tokens_per_step,
        **{name: float(f) * tokens_done for name, f in per_token.items()},
        "flops_per_token": per_token, "flop_formulas": accounting.FLOP_FORMULAS,
        "final_train_loss": float(np.mean(recent_losses)) if recent_losses else None,
        "final_val_loss": val_loss, "val_bpb": bits_per_byte(val_loss, ds.val_bytes_per_token) if val_loss else None,
        "val_tokens": int(validation.size - validation.shape[0] * validation.shape[1]),
        "wall_time_s": wall, "train_tokens_per_s": mean_tps,
        "mfu": mean_tps * per_token["flops_exact"] / (peak * n_dev) if mean_tps else None,
        "peak_flops_per_device": peak, "peak_flops_source": peak_source,
        "compute_dtype": m.dtype, "resumed_from_step": start_step or None,
        "timings": {**timings, "total_s": time.time() - started, "process_cpu_s": time.process_time()},
        **hardware.device_facts(), "versions": hardware.versions(),
        "corpus": ds.fingerprint, "tokenizer": ds.tokenizer.get("kind"),
        "config": to_dict(config),
    }
    io.write_json(run_dir / "summary.json", summary)
    if raise_after is not None:
        raise raise_after
    if status == "diverged":
        raise DivergedError(f"run {run_dir} diverged: {error}; summary written with status 'diverged'")
    return summary


def handle(pending, recent_losses, record, progress, train, evaluated, force: bool = False) -> str:
    """Read one step's metrics on the host: divergence check, log line, progress."""
    step, device_metrics = pending
    metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
    recent_losses.append(metrics["loss"])
    diverged = not math.isfinite(metrics["loss"])
    if force or diverged or step % train.log_every == 0 or step == train.steps:
        row = record(step, metrics, evaluated)
        progress.update(step, row)
    else:
        progress.update(step, None)
    return "diverged" if diverged else "completed"
