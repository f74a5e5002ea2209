"""Checkpoints with orbax-checkpoint: the train state (parameters, optimizer state, step) plus a JSON
record of everything else a resume needs (seed, data position, tokens seen).

Orbax writes each step into a temporary directory and renames it when complete, so a crash leaves
either a whole checkpoint or none; saves are asynchronous so the device keeps training while the
host writes. The last `keep` checkpoints are kept. A checkpoint that fails to restore (corrupted
files) is reported and the next older one is tried.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpoints:
    def __init__(self, directory: str | Path, keep: int):
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, cleanup_tmp_directories=True,
                                               enable_async_checkpointing=True)
        self.manager = ocp.CheckpointManager(Path(directory).absolute(), options=options,
                                             item_names=("state", "meta"))

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any, meta: dict) -> None:
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)), force=True)

    def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict] | None:
        """The newest checkpoint that restores cleanly as (step, state, meta), or None if there is none.

        `abstract_state` is a pytree of jax.ShapeDtypeStruct (with shardings) describing the target.
        """
        for step in reversed(self.steps()):
            try:
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
                return step, restored["state"], dict(restored["meta"])
            except Exception as err:  # noqa: BLE001 - any failure to read means this checkpoint is unusable
                print(f"warning: checkpoint at step {step} could not be restored ({type(err).__name__}: {err}); "
                      "trying an older one", file=sys.stderr)
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(state: Any) -> Any:
    """Shape/dtype/sharding description of a pytree of arrays, as orbax's restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
