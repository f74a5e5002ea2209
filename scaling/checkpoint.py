"""Checkpoints with orbax-checkpoint: the train state (parameters, optimizer state, step) plus a JSON
record of everything else a resume needs (seed, data position, tokens seen).

Orbax writes each step into a temporary directory and renames it when complete, so a crash leaves
either a whole checkpoint or none; saves are asynchronous so the device keeps training while the
host writes. The last `keep` checkpoints are kept, and those listed in `preserve`. Orbax does not
notice flipped bytes inside an array file, so each save also records a checksum of the state
(computed on the device) and a restore verifies it: a checkpoint that fails to restore or to
verify is reported and the next older one is tried; the unusable one is moved aside to
`<dir>.corrupt/<step>` for inspection. In a multi-process run every process restores (its own shards):
they agree on whether a checkpoint restored, process 0 alone moves an unusable one, and the others wait
for that, so that all of them fall back to the same older checkpoint.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path
from typing import Any, Collection

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers


@jax.jit
def _leaf_checksums(state: Any) -> list[jax.Array]:
    """Per-leaf sum of the raw 32-bit words, modulo 2**32: exact, order-independent, cheap."""
    def words(x):
        x = x.astype(jnp.float32) if x.dtype.itemsize != 4 else x
        return jax.lax.bitcast_convert_type(x, jnp.uint32).sum(dtype=jnp.uint32)
    return [words(leaf) for leaf in jax.tree.leaves(state)]


def state_checksum(state: Any) -> list[int]:
    return [int(c) for c in jax.device_get(_leaf_checksums(state))]


def checkpoint_steps(run_dir: Path) -> list[int]:
    """The steps of the finished checkpoints in run_dir/checkpoints, ascending, read from the directory names
    without opening a manager (orbax names each by its step once it is whole)."""
    directory = run_dir / "checkpoints"
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.is_dir() else []


class Checkpoints:
    def __init__(self, directory: str | Path, keep: int, preserve: Collection[int] = ()):
        """`preserve`: steps whose checkpoints are never deleted (a WSD stable run's branch points)."""
        policy = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(keep), checkpoint_managers.CustomSteps(sorted(preserve))])
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=True, cleanup_tmp_directories=True,
                                               enable_async_checkpointing=True)
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any, meta: dict) -> None:
        meta = dict(meta, checksum=state_checksum(state))
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)), force=True)

    def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict] | None:
        """The newest checkpoint that restores cleanly as (step, state, meta), or None if there is none.

        `abstract_state` is a pytree of jax.ShapeDtypeStruct (with shardings) describing the target.
        """
        steps = self.steps()
        for step in reversed(steps):
            restored, error = self._restore(step, abstract_state)
            if all_processes(error is None):
                return step, restored["state"], dict(restored["meta"])
            moved = self._move_aside(step)
            why = one_line(error) if error is not None else "another process could not restore it"
            print(f"warning: checkpoint at step {step} could not be restored ({why}); moved to {moved}; "
                  "trying an older one", file=sys.stderr)
        if steps:
            print(f"warning: none of the {len(steps)} checkpoint(s) in {self.directory} could be restored; "
                  "training starts again from step 0", file=sys.stderr)
        return None

    def _restore(self, step: int, abstract_state: Any) -> tuple[dict | None, Exception | None]:
        """(the restored state and meta, None), or (None, why this process could not restore or verify it)."""
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
            if restored["meta"].get("checksum") != state_checksum(restored["state"]):
                raise ValueError("state checksum does not match the one recorded at save time")
            return restored, None
        except Exception as err:  # noqa: BLE001 - any failure to read means this checkpoint is unusable
            return None, err

    def _move_aside(self, step: int) -> Path:
        target = self.directory.with_name(self.directory.name + ".corrupt") / str(step)
        if jax.process_index() == 0:
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.directory / str(step)), target)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"checkpoint {step} moved aside")
        self.manager.reload()
        return target

    def close(self) -> None:
        """Wait for the asynchronous saves and stop orbax's threads; a failed save is raised here, after the
        threads are stopped (left running, they print tracebacks while the interpreter shuts down)."""
        try:
            self.manager.wait_until_finished()
        finally:
            with contextlib.suppress(Exception):  # the same failure, reported by the wait
                self.manager.close()


def all_processes(true_here: bool) -> bool:
    """Whether `true_here` holds in every process of the run (just here, in a single-process run)."""
    if jax.process_count() == 1:
        return true_here
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.int32(true_here))))


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception as one short line: TensorStore's messages run over several lines and end in a JSON
    dump of the store's spec, which says nothing to the user."""
    text = " ".join(str(err).split(" [tensorstore_spec")[0].split())
    return f"{type(err).__name__}: {text[:limit]}"


def abstract_like(state: Any) -> Any:
    """Shape/dtype/sharding description of a pytree of arrays, as orbax's restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
