"""Scaling-law experiments on JAX: data, model, accounting, training, checkpoints, CLI.

Importing it changes nothing in the process: entry points (scaling_cli.main, the sweep worker, bench
scripts) apply the XLA defaults themselves (scaling.xla_defaults.apply)."""
