"""Packed training: K runs of one shape that differ only in train.seed and/or train.lr, trained as one
vmapped program (scaling.replicas), each member keeping the run directory a run of its own would write.

Each member has its own scaling.training.Attempt, metrics.jsonl, checkpoints/ (its own replica's state, saved
with scaling.checkpoint at the same steps as a single run), summary.json, and its own data stream (the
batches of its own seed). Only the step is shared. The per-member bookkeeping is scaling.training's own
(write_run_files, _restore, read_metrics, _timed_eval, _timed_save, _write_summary), so a member's files are
those of a single run; its losses equal the single run's to float32 rounding (the batched matmuls round
differently) and an interrupted pack resumed as a pack reproduces its own losses exactly.

Resume: the members resume together from their common latest checkpoint step. A kill can land between
two members' asynchronous saves, so one member may hold a checkpoint the others lack; that newer
checkpoint is dropped and recomputed (training is deterministic, so it comes back the same). A member
already completed, or whose final checkpoint exists (only its summary is missing), is not trained again.

Divergence: the members are independent inside the vmapped step, so a member whose loss turns
non-finite is finished as a single run would be (summary.json with status "diverged", no further log
lines or checkpoints) while the others train on; its replica keeps computing (it costs its share of the
step) until the pack ends. A failure (an exception) or a stop signal ends every member still training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling import hardware, io
from scaling.checkpoint import Checkpoints, abstract_like, checkpoint_steps
from scaling.config import RunConfig, config_hash, resolve
from scaling.data import prepare_dataset, train_batch
from scaling.errors import ConfigError, DivergedError, PreemptedError
from scaling.preemption import stop_on_signals
from scaling.replicas import (check_replicas, compile_replicas_step, init_replicas, replica, replica_lr_tables,
                              shard_replica_batch)
from scaling.run_status import COMPLETED, DIVERGED, FAILED, PREEMPTED
from scaling.step import compile_eval_step, make_mesh
from scaling.timing import Stopwatch
from scaling.training import (Attempt, Boundary, _close_checkpoints, _close_log, _open_log, _restore, _timed_eval,
                           _timed_save, _write_summary, available_bytes, check_devices, check_memory, check_run_dir,
                           checked_out_dir, estimated_bytes, read_metrics, restart_window, run_directory,
                           start_timings, train, usable_cache_dir, validation_set, write_run_files)

SHARED_SECTIONS = ("data", "checkpoint")  # besides model and train (checked by scaling.replicas)


@dataclasses.dataclass(eq=False)
class Member:
    """One packed run: its Attempt (scaling.training's per-run state, with its open log) and its checkpoints."""
    attempt: Attempt
    checkpoints: Checkpoints
    status: str = COMPLETED  # "completed" while training and after; or diverged, preempted, failed
    diverged_state: object = None  # the member's state when its divergence was seen


def train_packed(configs: Sequence[RunConfig], run_dirs: Sequence[str | Path], quiet: bool = True,
                 lock: bool = False) -> list[dict]:
    """Train the runs `configs[k]` into `run_dirs[k]` as one packed program; returns each member's summary.

    A diverged member's summary (status "diverged") is returned like the others; a failure or a stop
    signal is raised after every member's summary is written. `lock`: hold each run directory's lock.
    """
    started = time.time()
    if len(configs) != len(run_dirs) or not configs:
        raise ConfigError(f"train_packed needs one run directory per config (got {len(configs)} configs and "
                          f"{len(run_dirs)} directories)")
    dirs = [checked_out_dir(d) for d in run_dirs]
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise ConfigError("packed members need distinct run directories; the same directory is named twice")
    _check_shared_sections(configs)
    hardware.enable_compilation_cache(usable_cache_dir(configs[0].data.cache_dir))
    ds = prepare_dataset(configs[0].data, configs[0].train.seq_len, configs[0].model.vocab_size)
    resolved = check_replicas([resolve(c, ds.vocab_size) for c in configs])
    mesh = make_mesh()
    check_devices(resolved[0], mesh.shape["data"])
    check_memory(resolved[0], mesh.shape["data"])
    check_pack_memory(resolved, mesh.shape["data"])
    with contextlib.ExitStack() as held:
        for directory in dirs:
            held.enter_context(run_directory(directory, lock))
        summaries = {}
        todo = []
        for k, (config, directory) in enumerate(zip(resolved, dirs)):
            finished = check_run_dir(directory, config_hash(config))
            if finished is not None:
                summaries[k] = finished
            elif config.train.steps in checkpoint_steps(directory):  # only the summary is missing
                summaries[k] = train(config, directory, quiet=True)
            else:
                todo.append(k)
        if todo:
            trained = _train_members([resolved[k] for k in todo], [dirs[k] for k in todo], ds, mesh, started, quiet)
            summaries.update(zip(todo, trained))
    return [summaries[k] for k in range(len(configs))]


def _check_shared_sections(configs: Sequence[RunConfig]) -> None:
    for i, config in enumerate(configs[1:], start=1):
        differing = [s for s in SHARED_SECTIONS if getattr(config, s) != getattr(configs[0], s)]
        if differing:
            raise ConfigError(f"packed replicas may differ only in train.seed and train.lr, but replica {i} "
                              f"differs from replica 0 in its [{'], ['.join(differing)}] section(s)")


def check_pack_memory(configs: Sequence[RunConfig], n_dev: int) -> None:
    """Refuse, before allocating, a pack whose K members together cannot fit where one member would."""
    available = available_bytes()
    need = len(configs) * estimated_bytes(configs[0], n_dev)
    if available is not None and need > available[0]:
        gib = 2**30
        raise ConfigError(f"these {len(configs)} packed runs need at least {need / gib:.1f} GiB per device together, "
                          f"more than the {available[0] / gib:.1f} GiB of {available[1]}; pack fewer runs "
                          "(sweep run --no-pack trains them one at a time)")


def trim_to_common_step(run_dirs: Sequence[Path]) -> int:
    """The newest step every member has a checkpoint of (0: none); newer checkpoints are removed, since
    resuming the pack recomputes them exactly."""
    common = min((max(checkpoint_steps(d), default=0) for d in run_dirs), default=0)
    for directory in run_dirs:
        for step in checkpoint_steps(directory):
            if step > common:
                print(f"{directory}: dropping the checkpoint of step {step}, which the other packed members lack "
                      f"(resuming the pack from step {common} recomputes it)", file=sys.stderr)
                shutil.rmtree(directory / "checkpoints" / str(step))
    return common


def _open_members(configs, dirs, ds, mesh, started, tries: int = 3):
    """Attempts restored to one common step, and the stacked states. A checkpoint that fails to restore
    makes its member fall back to an older one; the others are then trimmed to it and restored again."""
    graphdef, states = init_replicas(configs, mesh)
    abstract = abstract_like(replica(states, 0))
    for _ in range(tries):
        trim_to_common_step(dirs)
        members = []
        for config, directory in zip(configs, dirs):
            a = Attempt(config, ds, directory, config_hash(config), mesh, started)
            checkpoints = Checkpoints(directory / "checkpoints", config.checkpoint.keep)
            members.append(Member(a, checkpoints))
        restored = [_restore(m.attempt, m.checkpoints, abstract) for m in members]
        if len({m.attempt.start_step for m in members}) == 1:
            if members[0].attempt.start_step > 0:
                states = _stack(restored, mesh)
            return graphdef, states, members
        for m in members:
            m.checkpoints.close()
    raise ConfigError(f"the packed members in {dirs[0].parent} could not be restored to one common step; "
                      "rerun the same command")


def _stack(member_states: list, mesh) -> object:
    stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *member_states)
    return jax.device_put(stacked, NamedSharding(mesh, P()))


def _train_members(configs, dirs, ds, mesh, started: float, quiet: bool) -> list[dict]:
    watch = Stopwatch()
    with watch("init"):
        graphdef, states, members = _open_members(configs, dirs, ds, mesh, started)
    step_fn = compile_replicas_step(configs, graphdef, states, mesh)
    eval_fn = compile_eval_step(graphdef, mesh)
    validation = validation_set(members[0].attempt)
    for i, m in enumerate(members):
        a = m.attempt
        write_run_files(a)
        io.truncate_jsonl(a.run_dir / "metrics.jsonl", a.start_step)
        a.watch.add("init", watch.seconds["init"])
        start_timings(a)
        _open_log(a, quiet, show_progress=i == 0)
    error, raise_after = None, None
    try:
        with stop_on_signals() as members[0].attempt.stop:
            states = _loop(members, states, step_fn, eval_fn, validation)
    except Exception as err:  # noqa: BLE001 - recorded in every live member's summary, then re-raised
        error, raise_after = f"{type(err).__name__}: {err}", err
        for m in _live(members):
            m.status = FAILED
    finally:
        for m in members:
            _close_log(m.attempt)
    return _finish(members, states, validation, error, raise_after)


def _live(members: list[Member]) -> list[Member]:
    return [m for m in members if m.status == COMPLETED]


def _loop(members: list[Member], states, step_fn, eval_fn, validation):
    """scaling.training._loop for K members: the same steps, logging, evaluations and checkpoints per member,
    so each member's metrics.jsonl is the one its single run writes. Returns the final stacked states."""
    first = members[0].attempt  # its stop event is the pack's
    t, mesh = first.config.train, first.mesh
    lrs_SxK = replica_lr_tables([m.attempt.config for m in members])
    seeds = [m.attempt.config.train.seed for m in members]
    watch = Stopwatch()  # the pack's step and loop times, each member's too
    _restart_windows(members)
    pending = None
    with watch("loop"):
        for index in range(first.start_step, t.steps):
            batch_KxBxL1 = np.stack([train_batch(first.ds, seed, index, t.batch_size, t.seq_len) for seed in seeds])
            with watch("first_step") if index == first.start_step else contextlib.nullcontext():
                states, device_metrics = step_fn(states, shard_replica_batch(batch_KxBxL1, mesh), lrs_SxK[index])
            step = index + 1
            if pending is not None and not _handle(members, pending, states, None):
                break
            for m in _live(members):
                m.attempt.window_steps += 1
            pending = (step, device_metrics)
            boundary = Boundary.at(first, step)
            if boundary:
                goes_on = _at_boundary(members, boundary, states, pending, eval_fn, validation)
                pending = None
                if not goes_on:
                    break
        if pending is not None and _live(members):
            _handle(members, pending, states, None, force=True)
        if first.start_step < t.steps:  # at start_step == steps the final checkpoint exists
            _save(members, t.steps, states)
    for m in members:
        for phase, seconds in watch.seconds.items():
            m.attempt.watch.add(phase, seconds)
    return states


def _at_boundary(members: list[Member], boundary: Boundary, states, pending, eval_fn, validation) -> bool:
    """scaling.training._at_boundary for every member still training; returns whether any goes on."""
    jax.block_until_ready(pending[1])
    evaluated = [_timed_eval(m.attempt, eval_fn, replica(states, k), validation)
                 if boundary.evaluate and m.status == COMPLETED else None for k, m in enumerate(members)]
    if not _handle(members, pending, states, evaluated, force=boundary.evaluate or boundary.save):
        return False
    if boundary.save or boundary.preempt:
        _save(members, pending[0], states)
    if boundary.preempt:
        for m in _live(members):
            m.status = PREEMPTED
        return False
    _restart_windows(members)
    return True


def _restart_windows(members: list[Member]) -> None:
    for m in members:
        restart_window(m.attempt)


def _handle(members: list[Member], pending, states, evaluated: list | None, force: bool = False) -> bool:
    """scaling.training.read_metrics for each live member's slice of the step's metrics; a member whose loss is
    non-finite becomes "diverged". Returns whether any member is still training."""
    step, device_metrics = pending
    host = jax.device_get(device_metrics)
    for k, m in enumerate(members):
        if m.status != COMPLETED:
            continue
        member_metrics = {name: values[k] for name, values in host.items()}
        if read_metrics(m.attempt, step, member_metrics, evaluated and evaluated[k], force):
            m.status, m.diverged_state = DIVERGED, replica(states, k)
    return bool(_live(members))


def _save(members: list[Member], step: int, states) -> None:
    """Checkpoint each member still training (a diverged one saves nothing, as a single run)."""
    for k, m in enumerate(members):
        if m.status == COMPLETED:
            _timed_save(m.attempt, m.checkpoints, step, replica(states, k))


def _finish(members: list[Member], states, validation, error: str | None, raise_after) -> list[dict]:
    """Close each member's checkpoints and write its summary (scaling.training._write_summary); a diverged
    member's DivergedError is its summary's status, not the pack's failure. Raises the pack's failure or
    stop after every summary is written."""
    summaries, raised = [], raise_after
    for k, m in enumerate(members):
        status, member_error, member_raise = m.status, error, raise_after
        save_error = _close_checkpoints(m.attempt, m.checkpoints)
        if save_error is not None:
            status, member_error = FAILED, f"{type(save_error).__name__}: {save_error}"
            member_raise = member_raise or save_error
        # a failed pack's states may have been donated to the step that failed; a failed summary needs none
        state = m.diverged_state if status == DIVERGED else None if status == FAILED else replica(states, k)
        try:
            summaries.append(_write_summary(m.attempt, state, status, member_error, member_raise, validation))
        except DivergedError:
            summaries.append(io.read_json(m.attempt.run_dir / "summary.json"))
        except PreemptedError as err:
            raised = raised or err
        except Exception as err:  # noqa: BLE001 - the pack's own failure, raised once every member is written
            raised = raised or err
    if raised is not None:
        raise raised
    return summaries
