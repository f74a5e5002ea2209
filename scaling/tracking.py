"""Experiment tracking: TensorBoard event files and Weights & Biases runs, fed from metrics.jsonl's rows.

metrics.jsonl stays the source of truth; a tracker is a second writer of the same rows (every key but
`step` becomes a scalar of that name, at that step). Resume: the training loop first cuts metrics.jsonl
back to the checkpoint's step, then opens the tracker with the rows that remain. A resumed attempt's event
file starts with TensorBoard's purge marker at the step after those rows (tensorboardX's purge_step):
TensorBoard drops what the interrupted attempt logged past the checkpoint, which the resumed attempt logs
again, so a step never shows twice (in a TensorBoard already open too). W&B keeps a step once logged and
refuses steps below its last, so a resumed W&B run gets only the steps after the checkpoint. A tracker
new to the run (turned on for a rerun, a WSD branch whose rows up to the branch point are its parent's)
first gets all the rows so far.

Tracking never stops training: an error from a tracker (W&B cannot start, a disk full under the event
files) is reported once as a warning and that tracker is dropped; metrics.jsonl is written as before.
A tracker whose package is missing is refused before the run starts (`check_installed`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Callable

from scaling import io
from scaling.config import LogConfig
from scaling.errors import ConfigError

TENSORBOARD_DIR = "tensorboard"  # RUN_DIR/tensorboard unless log.tensorboard_dir says otherwise
WANDB_DIR = "wandb"  # W&B's own files (offline runs, logs) go to RUN_DIR/wandb
WANDB_ID_FILE = "scaling_run_id"  # in WANDB_DIR: the W&B run this directory resumes
EVENT_FILE_PREFIX = "events.out.tfevents."
PACKAGES = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}  # key: (module, extra)


def wanted(log: LogConfig) -> tuple[str, ...]:
    """The trackers `log` turns on, by config key."""
    return tuple(key for key, on in (("tensorboard", log.tensorboard), ("wandb", bool(log.wandb))) if on)


def check_installed(log: LogConfig) -> None:
    """Refuse, before anything is written, a tracker whose package is not installed."""
    for key in wanted(log):
        module, extra = PACKAGES[key]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"log.{key} needs the {module} package, which is not installed; "
                              f"pip install '.[{extra}]' (or turn log.{key} off)")


def tensorboard_dir(log: LogConfig, run_dir: Path) -> Path:
    """Where the run's event files go: log.tensorboard_dir taken from the run directory, else RUN_DIR/tensorboard."""
    return run_dir / (log.tensorboard_dir or TENSORBOARD_DIR)


def scalars(row: dict) -> dict[str, float]:
    """A metrics.jsonl row's finite numbers by key, less the step (metrics.jsonl writes the others as null)."""
    return {key: float(value) for key, value in row.items()
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value)}


class TensorBoardSink:
    """Event files through tensorboardX (numpy and protobuf only); read back by TensorBoard itself."""

    def __init__(self, log: LogConfig, run_dir: Path, run_id: str, rows: list[dict]):
        from tensorboardX import SummaryWriter

        directory = tensorboard_dir(log, run_dir)
        suffix = f".{run_id}"  # tells this run's files from others', should a directory be shared
        resumed = directory.is_dir() and any(directory.glob(f"{EVENT_FILE_PREFIX}*{suffix}"))
        after = rows[-1]["step"] + 1 if rows else 1  # the first step metrics.jsonl does not hold (yet)
        self.writer = SummaryWriter(str(directory), filename_suffix=suffix, purge_step=after if resumed else None)
        for row in [] if resumed else rows:  # a resumed run's earlier files hold these rows
            self.write(row)

    def write(self, row: dict) -> None:
        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, global_step=int(row["step"]))
        self.writer.flush()  # a row every log_every steps: cheap, and a live TensorBoard sees it at once

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """A W&B run per run directory, resumed by the id stored in RUN_DIR/wandb; group and name from [log]."""

    def __init__(self, log: LogConfig, run_dir: Path, run_id: str, rows: list[dict], config: dict):
        import wandb

        directory = run_dir / WANDB_DIR
        directory.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_CACHE_DIR", str(directory / "cache"))  # W&B's service logs: not in ~/.cache
        id_file = directory / WANDB_ID_FILE
        resumed = id_file.is_file() and bool(id_file.read_text().strip())
        # A new id is the run id with a random tail: the same config trained in two directories is two W&B runs.
        wandb_id = id_file.read_text().strip() if resumed else f"{run_id}-{secrets.token_hex(3)}"
        self.run = wandb.init(project=log.wandb, group=log.group or None, name=log.name or run_id, id=wandb_id,
                              resume="allow", dir=str(run_dir), config=config, reinit="create_new",
                              settings=wandb.Settings(console="off", silent=True))
        if not resumed:
            io.atomic_write(id_file, wandb_id + "\n")
            for row in rows:  # this W&B run's first attempt: all the rows so far (a resumed one has them)
                self.write(row)

    def write(self, row: dict) -> None:
        self.run.log(scalars(row), step=int(row["step"]))

    def close(self) -> None:
        self.run.finish()


class Tracker:
    """The trackers of one run. Each call is guarded: a tracker that fails warns once and is dropped."""

    def __init__(self, sinks: dict[str, Any] | None = None):
        self.sinks = dict(sinks or {})

    def write(self, row: dict) -> None:
        for key in list(self.sinks):
            self._guard(key, lambda sink: sink.write(row))

    def close(self) -> None:
        for key in list(self.sinks):
            self._guard(key, lambda sink: sink.close())
        self.sinks.clear()

    def _guard(self, key: str, call: Callable[[Any], None]) -> None:
        try:
            call(self.sinks[key])
        except Exception as err:  # noqa: BLE001 - tracking must never stop training
            warn(key, err)
            self.sinks.pop(key, None)


def warn(key: str, err: BaseException) -> None:
    print(f"warning: log.{key} failed ({type(err).__name__}: {err}); training goes on without it, "
          "metrics.jsonl is unaffected", file=sys.stderr)


def open_tracker(log: LogConfig, run_dir: Path, run_id: str, rows: list[dict], config: dict) -> Tracker:
    """The trackers `log` asks for, given metrics.jsonl's rows so far (cut back to the checkpoint on resume)
    and the run's config (W&B records it)."""
    openers = {"tensorboard": lambda: TensorBoardSink(log, run_dir, run_id, rows),
               "wandb": lambda: WandbSink(log, run_dir, run_id, rows, config)}
    sinks = {}
    for key in wanted(log):
        try:
            sinks[key] = openers[key]()
        except Exception as err:  # noqa: BLE001 - tracking must never stop training
            warn(key, err)
    return Tracker(sinks)
