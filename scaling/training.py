"""The training loop: prepare data, build or resume the state, step, evaluate, log, checkpoint.

A run directory holds `config.toml` (the resolved config), `tokenizer.json`, `metrics.jsonl` (one
line per logged step), `checkpoints/`, and at the end `summary.json`; with a [log] section the same rows
also go to TensorBoard and/or W&B (scaling.tracking: `tensorboard/`, `wandb/`). A run restarted on an
existing directory resumes from its newest checkpoint; the sampler's state is (seed, step), so
the resumed run sees exactly the batches it would have seen and, on CPU, reproduces the same losses
bit for bit. The host reads each step's metrics only after dispatching the next step, so it never
makes the device wait.

A run can always be finished: each checkpoint's meta carries what the summary needs beyond the state
(the last losses, the last validation loss), so a run stopped between its final checkpoint and its
summary (killed, or summary.json deleted, unreadable or replaced by a "failed" stub) is finished from
that checkpoint without training or saving again. Everything that can be checked before the run
directory exists (config values, data, devices, memory, the directory itself) is checked first.

SIGTERM or SIGINT stops a run after its current step with a checkpoint at that step (scaling.preemption),
summary status "preempted" and PreemptedError (exit 75); the rerun resumes there. In a multi-process run
(jax.distributed) every process trains and checkpoints its shards, process 0 alone writes the run's other
files, and the processes agree on the step to stop at.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Collection

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling import accounting, hardware, io, tracking
from scaling.checkpoint import Checkpoints, abstract_like, checkpoint_steps
from scaling.config import EVAL_BATCH, RunConfig, config_hash, resolve, to_dict, to_toml
from scaling.data import Dataset, bits_per_byte, prepare_dataset, train_batch, val_batches
from scaling.errors import ConfigError, DivergedError, PreemptedError, ScalingError
from scaling.preemption import stop_on_signals
from scaling.progress import Progress, run_header
from scaling.provenance import provenance
from scaling.run_status import COMPLETED, DIVERGED, FAILED, FINAL, PREEMPTED
from scaling.schedules import lr_table
from scaling.step import compile_eval_step, compile_train_step, init_state, make_mesh, shard_batch
from scaling.timing import Stopwatch

FINAL_LOSS_WINDOW = 10  # final_train_loss averages the last this-many steps
BYTES_PER_PARAM = 16  # float32 parameter, gradient and Adam's two moments
BYTES_PER_LOGIT = 12  # float32 logits, their softmax and their gradient


def checked_out_dir(run_dir: str | Path) -> Path:
    """The run directory as a Path; an empty name (which would train into the current folder) or a path
    through an existing file is refused before anything is written."""
    if not str(run_dir).strip():
        raise ConfigError("the run directory (--out) is empty; name a directory, e.g. --out runs/tiny")
    path = Path(run_dir)
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            raise ConfigError(f"the run directory {path} cannot be created: {candidate} is an existing file; "
                              "choose another --out")
    return path


def usable_cache_dir(configured: str) -> Path:
    """The cache directory, created if needed; refused here rather than after the run directory exists."""
    path = io.cache_dir(configured)
    where = "data.cache_dir" if configured else "$SCALING_CACHE" if os.environ.get("SCALING_CACHE") else "the cache"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where} {path} is a file, not a directory; point data.cache_dir at a directory "
                          "(or leave it unset for ~/.cache/scaling)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {where} {path}: {err.strerror}; point data.cache_dir at a writable "
                          "directory") from err
    return path


def check_devices(config: RunConfig, n_dev: int) -> None:
    t = config.train
    micro = t.batch_size // t.grad_accum
    if micro % n_dev:
        divisors = ", ".join(str(n) for n in range(1, micro + 1) if micro % n == 0)
        raise ConfigError(f"train.batch_size / train.grad_accum = {micro} sequences per micro-batch cannot be split "
                          f"over {n_dev} devices; use a device count that divides it ({divisors}) or change the batch")


def estimated_bytes(config: RunConfig, n_dev: int) -> int:
    """A lower bound on the memory one device needs to train: the parameters with their gradients and Adam
    moments (split over the devices with FSDP), plus the logits of its share of a micro-batch."""
    m, t = config.model, config.train
    state = BYTES_PER_PARAM * accounting.param_counts(m)["n_params"]
    logits = BYTES_PER_LOGIT * (t.batch_size // t.grad_accum) * t.seq_len * m.vocab_size
    return (state // n_dev if t.fsdp else state) + logits // n_dev


def available_bytes() -> tuple[int, str] | None:
    """(bytes, what) one device may use: a GPU/TPU's memory limit, or on CPU this machine's memory shared by
    its host devices; None where it cannot be told."""
    device = jax.local_devices()[0]  # in a multi-process run another process's devices cannot be queried
    if jax.default_backend() == "cpu":
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None
        return total // jax.local_device_count(), f"this machine's memory over {jax.local_device_count()} device(s)"
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    return (int(limit), f"the memory of one {device.device_kind}") if limit else None


def check_memory(config: RunConfig, n_dev: int) -> None:
    """Refuse, before allocating, a model that cannot fit (e.g. model.vocab_size=100000000)."""
    available = available_bytes()
    need = estimated_bytes(config, n_dev)
    if available is None or need <= available[0]:
        return
    m = config.model
    gib = 2**30
    raise ConfigError(f"this model needs at least {need / gib:.1f} GiB per device to train "
                      f"({accounting.param_counts(m)['n_params']:,} parameters with model.vocab_size={m.vocab_size:,}, "
                      f"model.d_model={m.d_model}), more than the {available[0] / gib:.1f} GiB of {available[1]}; "
                      "lower model.vocab_size (or leave it unset for the tokenizer's), the model or train.batch_size")


def check_run_dir(run_dir: Path, run_id: str, warn: bool = True) -> dict | None:
    """Refuse a directory that holds a different run with progress; return its summary if it already finished.
    `warn`: print the warnings (train() checks twice, before and after taking the lock)."""
    stored = run_dir / "config.json"
    if stored.exists():
        try:
            previous = io.read_json(stored).get("run_id")
        except (OSError, ValueError, AttributeError) as err:
            raise ConfigError(f"{stored} is unreadable ({err}), so the run in {run_dir} cannot be identified; "
                              "choose another --out or delete that directory") from err
        if previous != run_id:
            if has_progress(run_dir):
                raise ConfigError(f"{run_dir} holds run {previous}, but this config resolves to run {run_id}; "
                                  "choose another --out or delete that directory")
            if warn:
                print(f"warning: {run_dir} holds run {previous}, which has no checkpoint and no metrics; "
                      f"starting run {run_id} there instead", file=sys.stderr)
    finished = read_summary(run_dir, warn)
    return finished if finished is not None and finished.get("status") == COMPLETED else None


def has_progress(run_dir: Path) -> bool:
    """Whether a run directory holds anything a rerun could lose: a checkpoint, metrics, or a final summary."""
    if checkpoint_steps(run_dir):
        return True
    summary = read_summary(run_dir, warn=False)
    return bool(io.read_jsonl(run_dir / "metrics.jsonl")) or (summary or {}).get("status") in FINAL


def read_summary(run_dir: Path, warn: bool = True) -> dict | None:
    """summary.json, or None when it is missing or unreadable (a resume rebuilds it)."""
    path = run_dir / "summary.json"
    if not path.exists():
        return None
    try:
        summary = io.read_json(path)
    except (OSError, ValueError) as err:
        if warn:
                print(f"warning: {path} is unreadable ({type(err).__name__}); the run will be finished from its "
                  "checkpoints", file=sys.stderr)
        return None
    return summary if isinstance(summary, dict) else None


@contextlib.contextmanager
def run_directory(run_dir: Path, lock: bool):
    """Create the run directory and, with `lock`, hold its lock (the file sweeps.store locks; a sweep worker
    trains under the lock its executor took, so it passes lock=False). In a multi-process run process 0
    holds it for all: the others train the same run with it."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = io.try_lock_directory(run_dir) if lock and jax.process_index() == 0 else -1
    except OSError as err:
        raise ScalingError(f"cannot write the run directory {run_dir}: {err.strerror}; choose a writable --out") from err
    if fd is None:
        raise ScalingError(f"another process is training in {run_dir} (it holds {run_dir / io.LOCK_FILE}); "
                           "wait for it to finish or choose another --out")
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def as_os_error(err: BaseException) -> OSError | None:
    """The operating-system error behind `err`, if any. Orbax's background writes report one (a full disk) as
    a ValueError from TensorStore whose message carries `[os_error_code='28']` and the file's path."""
    if isinstance(err, OSError):
        return err
    code = re.search(r"os_error_code='(\d+)'", str(err))
    if code is None:
        return None
    path = re.search(r'local file "([^"]+)"', str(err))
    path = path.group(1) if path else None
    temporary = re.match(r"(.*)/(\d+)\.orbax-checkpoint-tmp", path or "")
    if temporary:  # orbax's temporary directory inside checkpoints/: name what the user knows
        path = f"{temporary.group(1)} (saving the checkpoint of step {temporary.group(2)})"
    return OSError(int(code.group(1)), os.strerror(int(code.group(1))), path)


def storage_error(err: OSError, run_dir: Path) -> ScalingError:
    """A full disk, a read-only or vanished directory: one line naming the path; the run stays resumable."""
    path = err.filename or run_dir
    return ScalingError(f"{path}: {err.strerror or err}; fix that (free space, permissions) and rerun the same "
                        f"command: the run resumes from its last checkpoint in {run_dir / 'checkpoints'}")


def evaluate(eval_step, params, batches: np.ndarray, mesh) -> float:
    losses = [eval_step(params, shard_batch(batch, mesh)) for batch in batches]
    return float(np.mean([float(loss) for loss in losses]))


def train(config: RunConfig, run_dir: str | Path, on_step: Callable[[int], None] | None = None,
          quiet: bool = False, keep_steps: Collection[int] = (), lock: bool = False) -> dict:
    """Train (or resume, or finish, or return the summary of) the run in `run_dir`; returns summary.json's content.

    `keep_steps`: also checkpoint at these steps and never delete those checkpoints. A WSD sweep's
    stable-phase run keeps its branch points this way; each cooldown branch starts from a copy of one.
    `lock`: hold the run directory's lock while training, refusing when another process holds it
    (`scaling train` does; a sweep worker runs under its executor's lock).
    """
    started = time.time()
    run_dir = checked_out_dir(run_dir)
    tracking.check_installed(config.log)
    hardware.enable_compilation_cache(usable_cache_dir(config.data.cache_dir))
    ds = prepare_dataset(config.data, config.train.seq_len, config.model.vocab_size)
    config = resolve(config, ds.vocab_size)
    run_id = config_hash(config)
    finished = check_run_dir(run_dir, run_id, warn=False)
    if finished is not None:
        return finished
    mesh = make_mesh()
    check_devices(config, mesh.shape["data"])
    check_memory(config, mesh.shape["data"])
    with run_directory(run_dir, lock):
        finished = check_run_dir(run_dir, run_id)  # another process may have finished it meanwhile
        if finished is not None:
            return finished
        attempt = Attempt(config, ds, run_dir, run_id, mesh, started)
        try:
            with stop_on_signals() as attempt.stop:  # from here on a signal stops the run with a checkpoint
                return _train(attempt, on_step, quiet, keep_steps)
        except Exception as err:
            os_error = as_os_error(err)
            if os_error is None:
                raise
            raise storage_error(os_error, run_dir) from err


@dataclasses.dataclass
class Attempt:
    """One attempt at a run: its fixed facts, its open log, and what the loop accumulates. A checkpoint's meta carries
    the accumulated losses (see `checkpoint_meta`), so a resumed attempt continues them exactly."""
    config: RunConfig
    ds: Dataset
    run_dir: Path
    run_id: str
    mesh: jax.sharding.Mesh
    started: float  # time.time() at the start of this attempt
    start_step: int = 0
    prior_wall: float = 0.0  # wall time of the attempts before this one
    devices_at_start: int = 0  # devices the run's first attempt trained on
    peak: float = 0.0
    recent_losses: collections.deque = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=FINAL_LOSS_WINDOW))
    val_loss: float | None = None
    train_seconds: float = 0.0
    mean_tokens_per_s: float | None = None  # this attempt's, or the finished attempt's when rebuilding
    window_start: float = 0.0  # perf_counter() at the start of the throughput window
    window_steps: int = 0  # steps in the throughput window
    watch: Stopwatch = dataclasses.field(default_factory=Stopwatch)  # where this attempt's time went
    writer: io.JsonlWriter | None = None  # metrics.jsonl while the loop runs (os.devnull off process 0)
    tracker: tracking.Tracker = dataclasses.field(default_factory=tracking.Tracker)  # [log]: fed the same rows
    progress: Progress | None = None
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)  # set by SIGTERM/SIGINT

    @property
    def primary(self) -> bool:
        """Whether this process writes the run's files (metrics, summary, logs): process 0 of a multi-process
        run, or the only one. Checkpoints are written by all, through orbax's multi-process path."""
        return jax.process_index() == 0

    @property
    def n_dev(self) -> int:
        return self.mesh.shape["data"]

    @property
    def tokens_per_step(self) -> int:
        return self.config.train.batch_size * self.config.train.seq_len

    @property
    def per_token(self) -> dict[str, int]:
        return accounting.flops_per_token(self.config.model, self.config.train.seq_len)


def _train(a: Attempt, on_step, quiet: bool, keep_steps: Collection[int]) -> dict:
    """Set up, loop, summarise. One exit path: whatever ends the loop (an interrupt included), the log and
    the checkpoints are closed once, here, and the summary says how it ended."""
    state, checkpoints, step_fn, eval_fn, validation = _set_up(a, keep_steps)
    _open_log(a, quiet)
    status, error, raise_after = COMPLETED, None, None
    try:
        state, status = _loop(a, state, step_fn, eval_fn, validation, checkpoints, on_step, keep_steps)
    except Exception as err:  # noqa: BLE001 - recorded in the summary, then re-raised
        status, error, raise_after = FAILED, f"{type(err).__name__}: {err}", err
    finally:
        _close_log(a)
        save_error = _close_checkpoints(a, checkpoints)
    if save_error is not None:  # an asynchronous save failed (e.g. a full disk)
        status, error, raise_after = FAILED, f"{type(save_error).__name__}: {save_error}", raise_after or save_error
    return _write_summary(a, state, status, error, raise_after, validation)


def _set_up(a: Attempt, keep_steps: Collection[int]):
    """The run's files, its state (restored from the newest checkpoint, if any), the compiled steps and the
    validation set: (state, checkpoints, step_fn, eval_fn, validation)."""
    if a.primary:
        write_run_files(a)
    with a.watch("init"):  # mostly compiling the initialiser
        graphdef, state = init_state(a.config, a.mesh)
    checkpoints = Checkpoints(a.run_dir / "checkpoints", a.config.checkpoint.keep, preserve=keep_steps)
    state = _restore(a, checkpoints, state)
    if a.primary:
        io.truncate_jsonl(a.run_dir / "metrics.jsonl", a.start_step)
    step_fn = compile_train_step(a.config, graphdef, state, a.mesh)
    eval_fn = compile_eval_step(graphdef, a.mesh)
    validation = validation_set(a)
    start_timings(a)
    if a.start_step == a.config.train.steps:
        _finish_from_final_checkpoint(a, state, eval_fn, validation)
    return state, checkpoints, step_fn, eval_fn, validation


def _open_log(a: Attempt, quiet: bool, show_progress: bool = True) -> None:
    if a.primary:
        rows = io.read_jsonl(a.run_dir / "metrics.jsonl")  # already cut back to the checkpoint on resume
        a.tracker = tracking.open_tracker(a.config.log, a.run_dir, a.run_id, rows, to_dict(a.config))
    a.writer = io.JsonlWriter(a.run_dir / "metrics.jsonl" if a.primary else os.devnull)
    a.progress = Progress(a.config.train.steps, a.start_step, a.tokens_per_step,
                          enabled=not quiet and show_progress and a.primary)
    if not quiet and a.primary:
        print(header(a), file=sys.stderr, flush=True)


def header(a: Attempt) -> str:
    """The line before the first step: the run, its planned N, D and C (flops_exact), and its devices."""
    counts, tokens = accounting.param_counts(a.config.model), a.config.train.steps * a.tokens_per_step
    return run_header(a.run_id, counts["n_params"], counts["n_params_nonembedding"], tokens,
                      a.per_token["flops_exact"] * tokens, a.n_dev, a.mesh.devices.flat[0].device_kind)


def _close_log(a: Attempt) -> None:
    a.progress.close()
    a.writer.close()
    a.tracker.close()


def write_run_files(a: Attempt) -> None:
    """What a run directory holds before its first step: config.json, config.toml, tokenizer.json."""
    _warn_epochs(a)
    io.write_json(a.run_dir / "config.json", {"run_id": a.run_id, "config": to_dict(a.config)})
    io.atomic_write(a.run_dir / "config.toml", to_toml(a.config))
    a.ds.save_tokenizer(a.run_dir / "tokenizer.json")


def validation_set(a: Attempt) -> np.ndarray:
    """The validation batches, each a multiple of EVAL_BATCH sequences that the devices split evenly."""
    eval_batch = EVAL_BATCH * -(-a.n_dev // EVAL_BATCH)
    return val_batches(a.ds, a.config.data.val_batches, eval_batch, a.config.train.seq_len)


def start_timings(a: Attempt) -> None:
    """The peak FLOP/s that MFU divides by, and the set-up time (which includes init)."""
    t = a.config.train
    a.peak = t.peak_flops or hardware.peak_flops(a.config.model.dtype, io.cache_dir(a.config.data.cache_dir))
    a.watch.add("setup", time.time() - a.started)


def timings(a: Attempt) -> dict:
    """Where this attempt's time went, in seconds (bench/sweep_overhead.py reads them). The loop's first step
    call traces and compiles (or loads from the compilation cache), and eval_first_s includes the evaluation
    step's compilation; process_cpu_s is the process's CPU time (all threads) at the end."""
    seconds, calls = a.watch.seconds, a.watch.calls
    return {"setup_s": seconds.get("setup", 0.0), "init_s": seconds.get("init", 0.0),
            "first_step_s": seconds.get("first_step", 0.0), "eval_s": seconds.get("eval", 0.0),
            "eval_first_s": a.watch.first.get("eval", 0.0), "evals": calls.get("eval", 0),
            "checkpoint_save_s": seconds.get("checkpoint_save", 0.0),
            "checkpoint_saves": calls.get("checkpoint_save", 0),
            "checkpoint_wait_s": seconds.get("checkpoint_wait", 0.0), "loop_s": seconds.get("loop", 0.0),
            "total_s": time.time() - a.started, "process_cpu_s": time.process_time()}


def _close_checkpoints(a: Attempt, checkpoints: Checkpoints) -> Exception | None:
    """Wait for the asynchronous checkpoint writes; the error of a failed one is returned, not raised."""
    with a.watch("checkpoint_wait"):
        try:
            checkpoints.close()
            return None
        except Exception as err:  # noqa: BLE001
            return err


def _warn_epochs(a: Attempt) -> None:
    total_tokens = a.config.train.steps * a.tokens_per_step
    epochs = total_tokens / a.ds.unique_train_tokens
    if epochs > 1:
        print(f"warning: this run reads {total_tokens:,} tokens but the training split holds "
              f"{a.ds.unique_train_tokens:,} unique tokens ({epochs:.2f} epochs): data will repeat", file=sys.stderr)


def _restore(a: Attempt, checkpoints: Checkpoints, state):
    """Resume from the newest usable checkpoint, if any: step, state, wall time and the loop's running values."""
    a.devices_at_start = a.n_dev
    restored = checkpoints.restore_latest(abstract_like(state))
    if restored is None:
        return state
    a.start_step, state, meta = restored
    a.prior_wall = float(meta.get("wall_time_s", 0.0))
    a.devices_at_start = int(meta.get("n_devices", a.n_dev))
    a.recent_losses.extend(meta.get("recent_losses", []))
    a.val_loss = meta.get("val_loss")
    a.mean_tokens_per_s = meta.get("train_tokens_per_s")
    print(f"resuming {a.run_dir} from step {a.start_step}", file=sys.stderr)
    if a.devices_at_start != a.n_dev:
        print(f"warning: resuming on {a.n_dev} devices, the run started on {a.devices_at_start}: losses will not be "
              "bitwise identical to an uninterrupted run", file=sys.stderr)
    return state


def _finish_from_final_checkpoint(a: Attempt, state, eval_fn, validation: np.ndarray) -> None:
    """The run stopped after its final checkpoint but before its summary: take the final losses from the
    checkpoint's meta, or (checkpoints written before the meta carried them) from metrics.jsonl, or by
    evaluating the restored parameters again."""
    t = a.config.train
    print(f"{a.run_dir}: the final checkpoint (step {t.steps}) exists; writing the summary from it", file=sys.stderr)
    rows = io.read_jsonl(a.run_dir / "metrics.jsonl")
    if not a.recent_losses:
        a.recent_losses.extend(r["loss"] for r in rows if r.get("step", 0) > t.steps - FINAL_LOSS_WINDOW)
    if a.val_loss is None:
        a.val_loss = next((r["val_loss"] for r in rows if r.get("step") == t.steps and "val_loss" in r), None)
    if a.val_loss is None:
        a.val_loss = evaluate(eval_fn, state.params, validation, a.mesh)


def checkpoint_meta(a: Attempt, step: int) -> dict:
    """Everything a resume needs beyond the state, and what the summary needs if it is lost."""
    return {"step": step, "seed": a.config.train.seed, "sampler": "numpy default_rng([seed, step])",
            "tokens": step * a.tokens_per_step, "wall_time_s": a.prior_wall + time.time() - a.started,
            "n_devices": a.devices_at_start, "recent_losses": list(a.recent_losses), "val_loss": a.val_loss,
            "train_tokens_per_s": _mean_tokens_per_s(a, step)}


def _mean_tokens_per_s(a: Attempt, step: int) -> float | None:
    if a.train_seconds > 0:
        return (step - a.start_step) * a.tokens_per_step / a.train_seconds
    return a.mean_tokens_per_s


def _loop(a: Attempt, state, step_fn, eval_fn, validation, checkpoints: Checkpoints, on_step,
          keep_steps: Collection[int]):
    """Steps start_step+1 .. steps, then the final checkpoint; returns (state, "completed", "diverged" or
    "preempted"). The host reads each step's metrics after dispatching the next. A stop request (a.stop) ends
    the loop after the step in flight, with a checkpoint at it; its metrics row is written only if an
    uninterrupted run would write it, so the resumed log is the same."""
    t = a.config.train
    lrs = lr_table(t)
    restart_window(a)
    pending = None  # (step, device metrics) of the step before the one in flight
    with a.watch("loop"):
        for index in range(a.start_step, t.steps):
            if index == a.start_step and stop_requested(a):  # the signal came during set-up: nothing new to save
                return state, PREEMPTED
            batch = global_train_batch(a, index)
            with a.watch("first_step") if index == a.start_step else contextlib.nullcontext():
                state, device_metrics = step_fn(state, batch, lrs[index])
            step = index + 1
            if pending is not None and read_metrics(a, *pending):
                return state, DIVERGED
            a.window_steps += 1
            pending = (step, device_metrics)
            if on_step is not None:
                on_step(step)
            boundary = Boundary.at(a, step, keep_steps)
            if boundary:
                status = _at_boundary(a, boundary, state, pending, eval_fn, validation, checkpoints)
                pending = None
                if status is not None:
                    return state, status
        if pending is not None and read_metrics(a, *pending, force=True):
            return state, DIVERGED
        if a.start_step < t.steps:  # at start_step == steps the final checkpoint exists
            _timed_save(a, checkpoints, t.steps, state)
    return state, COMPLETED


@dataclasses.dataclass(frozen=True)
class Boundary:
    """What happens after a step besides logging: an evaluation, a checkpoint, a stop."""
    evaluate: bool
    save: bool
    preempt: bool

    def __bool__(self) -> bool:
        return self.evaluate or self.save or self.preempt

    @staticmethod
    def at(a: Attempt, step: int, keep_steps: Collection[int] = ()) -> Boundary:
        t, every = a.config.train, a.config.checkpoint.every
        return Boundary(evaluate=step % t.eval_every == 0 or step == t.steps,
                        save=bool((every and step % every == 0) or step in keep_steps) and step < t.steps,
                        preempt=stop_requested(a) and step < t.steps)  # at the last step the run simply completes


def _at_boundary(a: Attempt, boundary: Boundary, state, pending, eval_fn, validation,
                 checkpoints: Checkpoints) -> str | None:
    """Evaluate, read the step's metrics, checkpoint: None to go on, or "diverged" or "preempted"."""
    step, device_metrics = pending
    jax.block_until_ready(device_metrics)
    evaluated = _timed_eval(a, eval_fn, state, validation) if boundary.evaluate else None
    if read_metrics(a, step, device_metrics, evaluated, force=boundary.evaluate or boundary.save):
        return DIVERGED
    if boundary.save or boundary.preempt:
        _timed_save(a, checkpoints, step, state)
    if boundary.preempt:
        return PREEMPTED
    restart_window(a)  # evaluating and saving are not training time
    return None


def restart_window(a: Attempt) -> None:
    a.window_start = time.perf_counter()


def global_train_batch(a: Attempt, index: int) -> jax.Array:
    """Training batch `index` sharded over the mesh's `data` axis. Each process builds only the rows of its
    own devices: every process draws the same offsets from (seed, step), so together they hold exactly the
    batch a single process would build, and the losses match it."""
    t = a.config.train
    return jax.make_array_from_callback(
        (t.batch_size, t.seq_len + 1), NamedSharding(a.mesh, P("data")),
        lambda where: train_batch(a.ds, t.seed, index, t.batch_size, t.seq_len, rows=where[0]))


def stop_requested(a: Attempt) -> bool:
    """Whether to stop after this step (SIGTERM/SIGINT). The processes of a multi-process run must stop at the
    same step, or the others would wait forever in the next step's collectives: a request in any process
    stops all, for one small all-gather between processes per step."""
    if jax.process_count() == 1:
        return a.stop.is_set()
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.int32(a.stop.is_set()))))


def _timed_eval(a: Attempt, eval_fn, state, validation) -> float:
    with a.watch("eval"):
        a.val_loss = evaluate(eval_fn, state.params, validation, a.mesh)
    return a.val_loss


def _timed_save(a: Attempt, checkpoints: Checkpoints, step: int, state) -> None:
    with a.watch("checkpoint_save"):
        checkpoints.save(step, state, checkpoint_meta(a, step))


def read_metrics(a: Attempt, step: int, device_metrics: dict, evaluated: float | None = None,
                 force: bool = False) -> bool:
    """Read one step's metrics on the host: a log line (every log_every steps, at the last, when `force`d or
    when the loss is not finite) and the progress bar. Returns whether the run diverged (a non-finite loss)."""
    metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
    a.recent_losses.append(metrics["loss"])
    diverged = not math.isfinite(metrics["loss"])
    if force or diverged or step % a.config.train.log_every == 0 or step == a.config.train.steps:
        a.progress.update(step, record(a, step, metrics, evaluated))
    else:
        a.progress.update(step, None)
    return diverged


def record(a: Attempt, step: int, metrics: dict, evaluated: float | None) -> dict:
    """One metrics.jsonl row; throughput is over the steps since the previous row."""
    elapsed = time.perf_counter() - a.window_start
    tokens_per_s = a.window_steps * a.tokens_per_step / elapsed if elapsed > 0 else float("nan")
    a.train_seconds += elapsed
    restart_window(a)
    a.window_steps = 0
    per_token = a.per_token
    tokens = step * a.tokens_per_step
    row = {"step": step, "tokens": tokens, **{name: float(f) * tokens for name, f in per_token.items()},
           "loss": metrics["loss"], "lr": metrics["lr"], "grad_norm": metrics["grad_norm"],
           "tokens_per_s": tokens_per_s, "mfu": tokens_per_s * per_token["flops_exact"] / (a.peak * a.n_dev)}
    if evaluated is not None:
        row |= {"val_loss": evaluated, "val_bpb": bits_per_byte(evaluated, a.ds.val_bytes_per_token)}
    a.writer.write(row)
    a.tracker.write(row)
    return row


def _write_summary(a: Attempt, state, status: str, error: str | None, raise_after: Exception | None,
                   validation: np.ndarray) -> dict:
    """Write summary.json, then raise what ended the attempt (a failure, DivergedError or PreemptedError)."""
    if status == DIVERGED:
        error = f"non-finite training loss at step {a.progress.last_step}"
    steps_done = int(state.step) if status != FAILED else a.start_step
    summary = summary_record(a, status, error, steps_done, validation)
    try:
        if a.primary:
            io.write_json(a.run_dir / "summary.json", summary)
    except OSError as err:
        raise_after = raise_after or err  # the disk that stopped the run may refuse the summary too
    if raise_after is not None:
        raise raise_after
    if status == DIVERGED:
        raise DivergedError(f"run {a.run_dir} diverged: {error}; summary written with status 'diverged'")
    if status == PREEMPTED:
        raise PreemptedError(f"run {a.run_dir} stopped by a signal at step {steps_done} and checkpointed there; "
                             "rerun the same command to resume from that step")
    return summary


def summary_record(a: Attempt, status: str, error: str | None, steps_done: int, validation: np.ndarray) -> dict:
    config, m, t, ds = a.config, a.config.model, a.config.train, a.ds
    per_token = a.per_token
    tokens_done = steps_done * a.tokens_per_step
    mean_tps = _mean_tokens_per_s(a, steps_done)
    return {
        "status": status, "error": error, "run_id": a.run_id,
        **accounting.param_counts(m),
        "tokens": tokens_done, "tokens_planned": t.steps * a.tokens_per_step, "unique_tokens": ds.unique_train_tokens,
        "epochs": tokens_done / ds.unique_train_tokens, "steps": steps_done, "tokens_per_step": a.tokens_per_step,
        **{name: float(f) * tokens_done for name, f in per_token.items()},
        "flops_per_token": per_token, "flop_formulas": accounting.FLOP_FORMULAS,
        "final_train_loss": float(np.mean(a.recent_losses)) if a.recent_losses else None,
        "final_val_loss": a.val_loss,
        "val_bpb": bits_per_byte(a.val_loss, ds.val_bytes_per_token) if a.val_loss else None,
        "val_tokens": int(validation.size - validation.shape[0] * validation.shape[1]),
        "wall_time_s": a.prior_wall + time.time() - a.started, "train_tokens_per_s": mean_tps,
        "mfu": mean_tps * per_token["flops_exact"] / (a.peak * a.n_dev) if mean_tps else None,
        "peak_flops_per_device": a.peak, "peak_flops_source": "declared" if t.peak_flops else "measured",
        "compute_dtype": m.dtype, "resumed_from_step": a.start_step or None,
        "timings": timings(a),
        **hardware.device_facts(), "versions": hardware.versions(), "provenance": provenance(),
        "corpus": ds.fingerprint, "tokenizer": ds.tokenizer.get("kind"),
        "config": to_dict(config),
    }
