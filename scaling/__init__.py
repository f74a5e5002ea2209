"""Scaling-law experiments on JAX: data, model, accounting, training, checkpoints, CLI."""

from scaling import xla_defaults as _xla_defaults

_xla_defaults.apply()
