"""Train state, optimizer, and the jit-compiled data-parallel train and eval steps.

The batch is sharded over the mesh's `data` axis; parameters are replicated, or sharded over the
same axis when `train.fsdp` is set (XLA then inserts the all-gathers and reduce-scatters).
The same code runs on one CPU device, N forced host devices, a GPU or a TPU slice.

The train step takes its learning rate as an input (the run's schedule is tabulated on the host by
scaling.schedules.lr_table), so the compiled step depends only on the shapes and the optimizer's other
settings: runs of one shape with different lrs, schedules or lengths share one program, which the
persistent compilation cache then serves to every run after the first.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling.config import RunConfig, TrainConfig
from scaling.model import Transformer, cross_entropy
from scaling.schedules import make_schedule


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array  # optimizer steps taken so far


def make_mesh() -> jax.sharding.Mesh:
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def make_optimizer(train: TrainConfig, lr: float | None = None) -> optax.GradientTransformation:
    """AdamW with global-norm clipping (grad_clip 0: none, as in nanoGPT). The lr is a hyperparameter held in
    the optimizer state (optax.inject_hyperparams), so the train step sets each step's lr there and one state
    structure serves every schedule; `lr` is its value before the first step (default: train.lr)."""
    # Weight decay on matrices only: norm scales are 1-D and are not decayed.
    def decay_mask(params):
        return jax.tree.map(lambda p: p.ndim >= 2, params)

    # Only the lr is injected: betas and decay stay Python floats, so their arithmetic (and the losses) is unchanged.
    def adamw(learning_rate):
        return optax.chain(
            optax.clip_by_global_norm(train.grad_clip) if train.grad_clip > 0 else optax.identity(),
            optax.adamw(learning_rate, b1=train.beta1, b2=train.beta2, weight_decay=train.weight_decay,
                        mask=decay_mask),
        )
    return optax.inject_hyperparams(adamw)(learning_rate=train.lr if lr is None else lr)


def with_lr(opt_state, lr: jax.Array):
    """The optimizer state with its injected learning rate set to `lr`."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})


def param_sharding(shape: tuple[int, ...], mesh: jax.sharding.Mesh, fsdp: bool) -> NamedSharding:
    """Replicated, or (FSDP) split over `data` along the largest dimension that divides evenly."""
    n = mesh.shape["data"]
    if fsdp and n > 1:
        for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
            if shape[axis] % n == 0:
                spec = [None] * len(shape)
                spec[axis] = "data"
                return NamedSharding(mesh, P(*spec))
    return NamedSharding(mesh, P())


def init_state(config: RunConfig, mesh: jax.sharding.Mesh) -> tuple[nnx.GraphDef, TrainState]:
    """Create parameters and optimizer state directly in their shardings (no host copy)."""
    tx = make_optimizer(config.train)
    graphdef = None

    def create() -> TrainState:
        nonlocal graphdef  # the structure is the same traced or not: keep the one eval_shape's trace builds
        graphdef, params = nnx.split(Transformer(config.model, nnx.Rngs(config.train.seed)), nnx.Param)
        return TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))

    abstract = jax.eval_shape(create)
    shardings = jax.tree.map(lambda x: param_sharding(x.shape, mesh, config.train.fsdp), abstract)
    state = jax.jit(create, out_shardings=shardings)()
    return graphdef, state


def loss_fn(params: nnx.State, graphdef: nnx.GraphDef, batch_BxL1: jax.Array) -> jax.Array:
    model = nnx.merge(graphdef, params)
    return cross_entropy(model(batch_BxL1[:, :-1]), batch_BxL1[:, 1:])


def train_step(state: TrainState, batch_BxL1: jax.Array, lr: jax.Array, *, graphdef, train: TrainConfig, mesh):
    """One AdamW step at learning rate `lr` (this step's value of the run's schedule)."""
    tx = make_optimizer(train)  # the optimizer init_state's state was made by; the lr comes from the state
    grad_fn = jax.value_and_grad(loss_fn)
    grad_accum = train.grad_accum
    if grad_accum == 1:
        loss, grads = grad_fn(state.params, graphdef, batch_BxL1)
    else:
        b, l1 = batch_BxL1.shape
        # Micro-batch i takes rows i, i+A, i+2A, ... so that every micro-batch is spread over all devices.
        micro_AxMxL1 = batch_BxL1.reshape(b // grad_accum, grad_accum, l1).swapaxes(0, 1)
        micro_AxMxL1 = jax.lax.with_sharding_constraint(micro_AxMxL1, NamedSharding(mesh, P(None, "data")))

        def accumulate(carry, micro_MxL1):
            loss_sum, grad_sum = carry
            loss, grads = grad_fn(state.params, graphdef, micro_MxL1)
            return (loss_sum + loss, jax.tree.map(jnp.add, grad_sum, grads)), None

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        (loss_sum, grad_sum), _ = jax.lax.scan(accumulate, (jnp.zeros((), jnp.float32), zeros), micro_AxMxL1)
        loss, grads = loss_sum / grad_accum, jax.tree.map(lambda g: g / grad_accum, grad_sum)
    updates, opt_state = tx.update(grads, with_lr(state.opt_state, lr), state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr": lr}
    return TrainState(params, opt_state, state.step + 1), metrics


def compile_train_step(config: RunConfig, graphdef, state: TrainState, mesh):
    """The jitted step, `step(state, batch, lr) -> (state, metrics)`, with the state's shardings pinned
    so that they never drift between steps. `lr` is a float32 scalar (lr_table(train)[step] in a run)."""
    state_shardings = jax.tree.map(lambda x: x.sharding, state)
    step = partial(train_step, graphdef=graphdef, train=config.train, mesh=mesh)
    return jax.jit(step, donate_argnums=0, out_shardings=(state_shardings, NamedSharding(mesh, P())))


def compile_eval_step(graphdef, mesh):
    def eval_loss(params, batch_BxL1):
        return loss_fn(params, graphdef, batch_BxL1)
    return jax.jit(eval_loss, out_shardings=NamedSharding(mesh, P()))


def shard_batch(batch: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
    """Place a host batch (the same global batch on every process) sharded over `data`."""
    sharding = NamedSharding(mesh, P("data"))
    return jax.make_array_from_callback(batch.shape, sharding, lambda index: batch[index])
