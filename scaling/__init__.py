"""Scaling-law experiments on JAX: data, model, accounting, training, checkpoints, CLI.

The Python API mirrors `scaling train`: `scaling.train(config, out)`. Importing the package changes
nothing in the process and imports nothing heavy: `train` imports JAX and the training code when called,
and applies the XLA defaults (scaling.xla_defaults) itself, as the entry points do, so that a run started
from Python matches the same run started from the command line."""

from __future__ import annotations

import os


def train(config, out, *, quiet: bool = True, host_devices: int | None = None) -> dict:
    """Train one model into the run directory `out` (resuming it when it holds this run's checkpoints; a
    finished run is not retrained) and return its summary (summary.json's content).

    `config`: a scaling.config.RunConfig, a dict of sections ({"train": {"steps": 200}, ...}; missing keys
    take their defaults), a path to a TOML config, or None for the defaults. `quiet`: no progress output.
    `host_devices`: as `scaling train --host-devices` (CPU only: data-parallel JAX devices; default one per
    usable CPU dividing the micro-batch; must divide it). Bad input raises scaling.errors.ConfigError with
    the CLI's message; a diverged or preempted run raises DivergedError or PreemptedError after writing its
    summary. A multi-process run is started with `scaling train`, which joins the processes first."""
    from scaling import hardware, xla_defaults

    run_config = _run_config(config)  # config errors surface before JAX starts
    _check_host_devices(host_devices, run_config.train.batch_size // run_config.train.grad_accum)
    from scaling import training

    training.checked_out_dir(out)  # before JAX starts and the data is read
    xla_defaults.apply()
    hardware.split_cpus_into_devices(run_config.train.batch_size, run_config.train.grad_accum, host_devices)
    return training.train(run_config, out, quiet=quiet, lock=True)


def _run_config(config):
    """The RunConfig that `config` (a RunConfig, a dict of sections, a TOML path or None) describes, validated."""
    from scaling import config as config_lib
    from scaling.errors import ConfigError

    if isinstance(config, config_lib.RunConfig):
        config_lib.validate(config)
        return config
    if isinstance(config, dict):
        return config_lib.from_dict(config)
    if config is None or isinstance(config, (str, os.PathLike)):
        return config_lib.load(config)
    raise ConfigError(f"config must be a RunConfig, a dict of sections, a TOML path or None, got "
                      f"{type(config).__name__}; e.g. scaling.train({{'train': {{'steps': 200}}}}, 'runs/tiny')")


def _check_host_devices(requested: int | None, micro_batch: int) -> None:
    """host_devices must divide the micro-batch (it used to be lowered silently until it did)."""
    from scaling.errors import ConfigError

    if requested is None:
        return
    if requested < 1:
        raise ConfigError(f"--host-devices must be at least 1, got {requested}")
    if micro_batch % requested:
        divisors = ", ".join(str(n) for n in range(1, micro_batch + 1) if micro_batch % n == 0)
        raise ConfigError(f"--host-devices {requested} does not divide the micro-batch of {micro_batch} sequences "
                          f"(train.batch_size / train.grad_accum); use one of {divisors}")
