"""Packed replicas: K runs of one small model trained together in one program with `jax.vmap`.

A model of a few million parameters leaves a GPU mostly idle; K replicas of the same shape that differ
only in `train.seed` and/or `train.lr` (a seed study, an lr sweep) can share one step instead. Every
state leaf gets a leading replica axis K, the batch is [K, B, L+1] (each replica reads its own data),
and the step is `jax.vmap` of scaling.step.train_step, so each replica computes exactly what a run of
its own would: its own init (its seed), its own schedule (its lr), its own batch.

The per-replica lr: the step takes a [K] vector of this step's lrs, row `step` of replica_lr_tables
(each replica's own scaling.schedules.lr_table), so replica k's lr is bit for bit the lr a single run
with config k is given.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling.config import RunConfig
from scaling.errors import ConfigError
from scaling.model import Transformer
from scaling.schedules import lr_table
from scaling.step import TrainState, make_optimizer, train_step, with_lr

VARYING = ("seed", "lr")  # the train keys in which replicas may differ


def _differing_keys(a, b, section: str, allowed: Sequence[str] = ()) -> list[str]:
    return [f"{section}.{f.name}" for f in dataclasses.fields(a)
            if f.name not in allowed and getattr(a, f.name) != getattr(b, f.name)]


def check_replicas(configs: Sequence[RunConfig]) -> tuple[RunConfig, ...]:
    """Refuse configs that cannot be packed: they must be resolved and share all but seed and lr."""
    configs = tuple(configs)
    if not configs:
        raise ConfigError("packed replicas need at least one config")
    for i, config in enumerate(configs):
        if config.model.vocab_size is None or config.model.d_ff is None or config.train.steps is None:
            raise ConfigError(f"replica {i}'s config is not resolved (model.vocab_size, model.d_ff and "
                              "train.steps must be set; see scaling.config.resolve)")
    if configs[0].train.fsdp:
        raise ConfigError("packed replicas keep each replica's parameters whole; train.fsdp must be false")
    first = configs[0]
    for i, config in enumerate(configs[1:], start=1):
        keys = _differing_keys(first.model, config.model, "model") + \
            _differing_keys(first.train, config.train, "train", VARYING)
        if keys:
            raise ConfigError(f"packed replicas may differ only in train.seed and train.lr, but replica {i} "
                              f"differs from replica 0 in {', '.join(keys)}")
    return configs


def init_replicas(configs: Sequence[RunConfig], mesh: jax.sharding.Mesh) -> tuple[nnx.GraphDef, TrainState]:
    """K train states stacked on a leading axis, replica k initialised from configs[k].train.seed and holding
    configs[k].train.lr as its optimizer's lr.

    One vmapped init over the seeds: random bits depend only on the key, so replica k's state is that of
    scaling.step.init_state(configs[k]). The states are replicated over the mesh.
    """
    configs = check_replicas(configs)
    model_config = configs[0].model
    tx = make_optimizer(configs[0].train)  # replicas differ only in seed and lr, and the lr is in the state
    graphdef = None

    def create(seed: jax.Array, lr: jax.Array) -> TrainState:
        nonlocal graphdef  # the same structure in every trace: keep the one the model was built with
        model = Transformer(model_config, nnx.Rngs(jax.random.key(seed)))  # what nnx.Rngs(int) does
        graphdef, params = nnx.split(model, nnx.Param)
        return TrainState(params, with_lr(tx.init(params), lr), jnp.zeros((), jnp.int32))

    seeds = jnp.array([c.train.seed for c in configs], jnp.int32)
    lrs = jnp.array([c.train.lr for c in configs], jnp.float32)
    states = jax.jit(jax.vmap(create), out_shardings=NamedSharding(mesh, P()))(seeds, lrs)
    return graphdef, states


def compile_replicas_step(configs: Sequence[RunConfig], graphdef, states: TrainState, mesh):
    """The jitted packed step: (states, batch [K, B, L+1], lrs [K]) -> (states, metrics with [K] leaves)."""
    configs = check_replicas(configs)
    one = partial(train_step, graphdef=graphdef, train=configs[0].train, mesh=mesh)
    state_shardings = jax.tree.map(lambda x: x.sharding, states)
    return jax.jit(jax.vmap(one), donate_argnums=0, out_shardings=(state_shardings, NamedSharding(mesh, P())))


def replica_lr_tables(configs: Sequence[RunConfig]) -> np.ndarray:
    """[steps, K] float32: row s holds each replica's lr at step s (what the packed step is given)."""
    return np.stack([lr_table(c.train) for c in check_replicas(configs)], axis=1)


def shard_replica_batch(batch_KxBxL1: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
    """Place K host batches, each replica's rows sharded over `data` as in scaling.step.shard_batch."""
    sharding = NamedSharding(mesh, P(None, "data"))
    return jax.make_array_from_callback(batch_KxBxL1.shape, sharding, lambda index: batch_KxBxL1[index])


def replica(states: TrainState, k: int) -> TrainState:
    """Replica k's own TrainState (e.g. to checkpoint or evaluate it with scaling.step)."""
    return jax.tree.map(lambda x: x[k], states)
