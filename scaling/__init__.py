"""Scaling-law experiments on JAX: data, model, accounting, training, checkpoints, CLI."""
