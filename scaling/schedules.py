"""Learning-rate schedules as optax schedules (step -> lr).

cosine    linear warmup, then cosine decay to min_lr_ratio * lr at the last step
wsd       linear warmup, constant, then a cooldown over the final decay_fraction of steps to
          min_lr_ratio * lr, linear or "1-sqrt" (Hägele et al. 2024)
constant  linear warmup, then constant
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.config import TrainConfig


def warmup_then(lr: float, warmup_steps: int, after: optax.Schedule) -> optax.Schedule:
    if warmup_steps == 0:
        return after
    # Warmup starts above zero so that step 0 already moves the parameters.
    warmup = optax.linear_schedule(lr / warmup_steps, lr, warmup_steps - 1) if warmup_steps > 1 else optax.constant_schedule(lr)
    return optax.join_schedules([warmup, after], [warmup_steps])


def cooldown(lr: float, final_lr: float, steps: int, shape: str) -> optax.Schedule:
    """Decay from lr to final_lr over `steps` steps, linearly or as 1 - sqrt(progress)."""
    def schedule(count):
        progress = jnp.clip(count / max(steps, 1), 0.0, 1.0)
        fraction_left = 1.0 - jnp.sqrt(progress) if shape == "1-sqrt" else 1.0 - progress
        return final_lr + (lr - final_lr) * fraction_left
    return schedule


def decay_steps(total_steps: int, fraction: float) -> int:
    """Cooldown length of a wsd run: at least one step unless `fraction` is 0 (sweeps.planner branches a
    wsd family at total_steps - this, so both must agree)."""
    return max(round(fraction * total_steps), 1) if fraction > 0 else 0


def make_schedule(train: TrainConfig) -> optax.Schedule:
    """The run's schedule; `train.steps` must be resolved."""
    lr, steps, warmup = train.lr, train.steps, train.warmup_steps
    final_lr = lr * train.min_lr_ratio
    after_warmup = max(steps - warmup, 1)
    if train.schedule == "constant":
        return warmup_then(lr, warmup, optax.constant_schedule(lr))
    if train.schedule == "cosine":
        return warmup_then(lr, warmup, optax.cosine_decay_schedule(lr, max(after_warmup - 1, 1), alpha=train.min_lr_ratio))
    if train.schedule == "wsd":
        cooldown_steps = decay_steps(steps, train.decay_fraction)
        stable_steps = max(after_warmup - cooldown_steps, 0)
        if cooldown_steps == 0:
            return warmup_then(lr, warmup, optax.constant_schedule(lr))
        stable_then_decay = optax.join_schedules(
            [optax.constant_schedule(lr), cooldown(lr, final_lr, cooldown_steps - 1, train.decay_shape)], [stable_steps])
        return warmup_then(lr, warmup, stable_then_decay)
    raise ValueError(f"unknown schedule {train.schedule!r}")


def lr_table(train: TrainConfig) -> np.ndarray:
    """The lr of each step 0 .. steps-1 as float32: what the train step is given (scaling.step)."""
    return np.asarray(jax.vmap(make_schedule(train))(np.arange(train.steps)), np.float32)
