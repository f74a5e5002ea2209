"""The sweep directory: the plan, one directory per run, per-run locks, and each run's state.

  SWEEP_DIR/sweep.json            the spec (text and name) and the planned run ids, in order
  SWEEP_DIR/runs/<run_id>/        what scaling.training writes (config.json, config.toml, metrics.jsonl,
                                  checkpoints/, summary.json), plus:
      run.json                    the planned run: resolved config, role, budget label, parent
      .lock                       fcntl.flock'ed (exclusive) by the process that trains the run
      attempts.jsonl              one line per attempt: start, end, exit code, outcome
      worker.log                  the worker's output

A run is finished when summary.json has status completed, diverged or failed; "preempted" (the run
stopped at SIGTERM/SIGINT with a checkpoint at that step) is not finished: it is resumed. The lock, not a
status file, says a run is being trained: the kernel drops it when its holder dies, even by SIGKILL,
so a crashed sweep never leaves a run that looks taken. An unreadable summary.json (damaged on disk)
makes the run "corrupt summary": shown with a warning, and trained again (resumed) by the next run.

Run ids come from disk (sweep.json, run.json) and name directories, so they are checked before use:
a run id is letters, digits, '_', '-' and '.', never a path.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import time
from pathlib import Path

from scaling import io
from scaling.errors import ScalingError
from scaling.run_status import FAILED, FINAL, FINISHED, PREEMPTED

# A run's state in a sweep: a summary status (scaling.run_status) or one of these.
RUNNING = "running"  # locked: a process is training it
INTERRUPTED = "interrupted"  # has progress (metrics or a checkpoint) but no summary: resumed by the next run
WAITING = "waiting"  # a WSD branch whose parent has not reached the branch point
PENDING = "pending"
CORRUPT = "corrupt summary"  # the run state of a run whose summary.json cannot be read
IN_PROGRESS = (RUNNING, PREEMPTED, INTERRUPTED)  # started and not finished
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def runs_dir(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / "runs"


def run_dir(sweep_dir: str | Path, run_id: str) -> Path:
    if not is_run_id(run_id):  # ids are checked where they are read; this keeps any other out of the paths
        raise ScalingError(f"{sweep_dir}: {run_id!r} is not a run id (letters, digits, '_', '-', '.'; no path)")
    return runs_dir(sweep_dir) / run_id


def is_run_id(run_id) -> bool:
    return isinstance(run_id, str) and RUN_ID.fullmatch(run_id) is not None and ".." not in run_id


def write_plan(sweep_dir: str | Path, spec_text: str, spec_name: str, spec_path: str, records: list[dict],
               overrides: list[str] = ()) -> None:
    """Record the plan: sweep.json and each run's run.json (rewritten atomically; same plan, same bytes)."""
    sweep_dir = Path(sweep_dir)
    for record in records:
        path = run_dir(sweep_dir, record["run_id"]) / "run.json"
        text = io.to_json(record) + "\n"
        if not path.exists() or path.read_text() != text:
            io.atomic_write(path, text)
    io.write_json(sweep_dir / "sweep.json", {"name": spec_name, "spec_path": spec_path, "spec": spec_text,
                                             "overrides": list(overrides), "run_ids": [r["run_id"] for r in records]})


def read_sweep(sweep_dir: str | Path) -> dict:
    """sweep.json, checked: a dict whose run_ids are run ids. Raises ScalingError saying what to do."""
    path = Path(sweep_dir) / "sweep.json"
    if not path.exists():
        raise ScalingError(f"{sweep_dir} is not a sweep directory (no sweep.json); run `scaling sweep run SPEC --out "
                           f"{sweep_dir}` first")
    try:
        sweep = io.read_json(path)
        ids = sweep["run_ids"]
        if not isinstance(ids, list):
            raise TypeError("run_ids is not a list")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ScalingError(f"{path} is unreadable ({type(err).__name__}: {err}); write it again from the spec with "
                           f"`scaling sweep run SPEC --out {sweep_dir} --force` (finished runs are kept)") from None
    bad = [run_id for run_id in ids if not is_run_id(run_id)]
    if bad:
        raise ScalingError(f"{path} names {bad[0]!r}, which is not a run id (letters, digits, '_', '-', '.'; no path); "
                           f"write it again with `scaling sweep run SPEC --out {sweep_dir} --force`")
    return sweep


def read_record(sweep_dir: str | Path, run_id: str) -> dict:
    """A planned run's run.json, checked against its id. Raises ScalingError saying what to do."""
    path = run_dir(sweep_dir, run_id) / "run.json"
    again = f"write the plan again with `scaling sweep run SPEC --out {sweep_dir}`"
    if not path.exists():
        raise ScalingError(f"{path} is missing (the plan of run {run_id}); {again}")
    try:
        record = io.read_json(path)
        if not isinstance(record, dict) or record.get("run_id") != run_id:
            raise ValueError(f"it does not describe run {run_id}")
        record["config"]["train"]["steps"]  # noqa: B018 - what status and the executor read first
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ScalingError(f"{path} is unreadable ({type(err).__name__}: {err}); {again}") from None
    if record.get("parent_run_id") is not None and not is_run_id(record["parent_run_id"]):
        raise ScalingError(f"{path}: parent_run_id {record['parent_run_id']!r} is not a run id; {again}")
    return record


def load_records(sweep_dir: str | Path) -> list[dict]:
    """The planned runs' records, in plan order."""
    return [read_record(sweep_dir, run_id) for run_id in read_sweep(sweep_dir)["run_ids"]]


def unplanned_records(sweep_dir: str | Path, planned: set[str]) -> list[dict]:
    """Readable records of runs in runs/ that the current plan does not list (planned by an earlier spec
    before `sweep run --force` re-planned the directory), sorted by run id."""
    found = []
    directory = runs_dir(sweep_dir)
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.name in planned or not is_run_id(path.name) or not (path / "run.json").is_file():
            continue
        try:
            found.append(read_record(sweep_dir, path.name))
        except ScalingError:
            continue  # not a run of ours, or damaged: it has no row to keep
    return found


def read_summary(directory: Path) -> dict | None:
    """summary.json, or None when it is missing or unreadable (see `summary_problem`)."""
    path = directory / "summary.json"
    try:
        summary = io.read_json(path) if path.exists() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def summary_problem(directory: Path) -> str | None:
    """Why summary.json is unreadable, or None when it is fine or missing. It is written atomically, so an
    unreadable one was damaged on disk; the run is trained again (resumed), which writes a new one."""
    path = directory / "summary.json"
    try:
        summary = io.read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{path} is unreadable ({type(err).__name__}); the next `sweep run` trains the run again (resuming)"
    if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
        return f"{path} has no status; the next `sweep run` trains the run again (resuming)"
    return None


def try_lock(directory: Path) -> int | None:
    """An fd holding the run's exclusive lock, or None when another process holds it (the same lock
    `scaling train` takes, so a sweep and a manual run exclude each other)."""
    directory.mkdir(parents=True, exist_ok=True)
    return io.try_lock_directory(directory)


def release(fd: int) -> None:
    os.close(fd)  # closing the last descriptor of the open file drops the flock


def is_locked(directory: Path) -> bool:
    """Whether some process holds the run's lock (a shared probe: it never blocks a trainer for long)."""
    path = directory / ".lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def append_attempt(directory: Path, entry: dict) -> None:
    with open(directory / "attempts.jsonl", "a") as handle:
        handle.write(json.dumps(dict(entry, time=time.time())) + "\n")


def record_failure(directory: Path, record: dict, error: str) -> None:
    """Mark a run failed when its worker died without writing a summary (crash, kill, bad input)."""
    summary = read_summary(directory) or {}
    if summary.get("status") in FINAL:
        return
    io.write_json(directory / "summary.json", {**summary, "status": FAILED, "error": error,
                                               "run_id": record["run_id"], "written_by": "sweep executor"})


def log_tail(directory: Path, lines: int = 8) -> str:
    path = directory / "worker.log"
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 8192))
        text = handle.read().decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def last_metrics(directory: Path) -> dict | None:
    """The newest metrics.jsonl record, read from the file's tail (the file may be long and growing)."""
    path = directory / "metrics.jsonl"
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        lines = handle.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            return record
    return None


def has_checkpoint(directory: Path, step: int | None = None) -> bool:
    """Whether orbax finished a checkpoint here (at `step`, or any). Orbax renames a step's temporary
    directory to the bare step number only once everything is written."""
    checkpoints = directory / "checkpoints"
    if step is not None:
        return (checkpoints / str(step)).is_dir()
    return checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())


@dataclasses.dataclass(frozen=True)
class RunState:
    run_id: str
    status: str  # completed, diverged, failed, running, preempted, interrupted (has progress), waiting (branch), pending
    step: int
    steps: int
    error: str | None = None


def run_state(sweep_dir: str | Path, record: dict) -> RunState:
    directory = run_dir(sweep_dir, record["run_id"])
    steps = record["config"]["train"]["steps"]
    summary = read_summary(directory)
    last = last_metrics(directory)
    step = last["step"] if last else 0
    if is_locked(directory):
        return RunState(record["run_id"], RUNNING, step, steps)
    if summary and summary.get("status") in FINISHED:
        return RunState(record["run_id"], summary["status"], summary.get("steps") or step, steps, summary.get("error"))
    if summary and summary.get("status") == PREEMPTED:  # checkpointed at `steps`; metrics may be logged sparser
        return RunState(record["run_id"], PREEMPTED, max(step, summary.get("steps") or 0), steps)
    problem = summary_problem(directory)
    if problem:
        return RunState(record["run_id"], CORRUPT, step, steps, problem)
    if step or has_checkpoint(directory):
        return RunState(record["run_id"], INTERRUPTED, step, steps)
    if record.get("role") == "branch" and not branch_source_ready(sweep_dir, record):
        return RunState(record["run_id"], WAITING, 0, steps)
    return RunState(record["run_id"], PENDING, 0, steps)


def branch_source_ready(sweep_dir: str | Path, record: dict) -> bool:
    """A WSD branch can start once its parent has finished the checkpoint at the branch point."""
    return has_checkpoint(run_dir(sweep_dir, record["parent_run_id"]), record["branch_step"])
