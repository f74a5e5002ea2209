"""Shared fixtures: an isolated cache directory and tiny run configs that train in seconds on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling import xla_defaults

# Every entry point applies the XLA defaults (scaling_cli.main, sweeps.worker); the test process does so
# here, before any test module can start a JAX backend, so that in-process runs match the subprocesses'.
xla_defaults.apply()

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# Tiny model on the stdlib corpus: a few seconds per run on one CPU core.
TINY = [
    "model.d_model=32", "model.n_layers=2", "model.n_heads=2",
    "train.seq_len=32", "train.batch_size=8", "train.steps=20", "train.lr=3e-3",
    "train.warmup_steps=2", "train.eval_every=10", "train.log_every=1",
    "data.val_batches=2", "train.peak_flops=1e11",
]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Tokenizer, token and peak-FLOP caches live in a per-session directory, not in $HOME."""
    import jax

    from scaling import xla_defaults

    xla_defaults.apply()  # what every entry point does, so in-process runs match the sweep workers'
    # Start JAX's CPU client (one device) before any test: `scaling train` run in-process would
    # otherwise split the CPUs into devices for the rest of this test process.
    jax.devices()
    if jax.default_backend() != "cpu":
        # The float32 tests compare runs closely; GPUs would otherwise run float32 matmuls in TF32.
        jax.config.update("jax_default_matmul_precision", "highest")
    cache = tmp_path_factory.mktemp("scaling_cache")
    previous = os.environ.get("SCALING_CACHE")
    os.environ["SCALING_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("SCALING_CACHE", None)
    else:
        os.environ["SCALING_CACHE"] = previous


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


def run_python(code: str, devices: int = 1, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with `devices` forced host devices (XLA reads the flag at start)
    and the XLA defaults applied first, as every entry point does (runs compared with this process' match)."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    code = "from scaling import xla_defaults; xla_defaults.apply()\n" + code
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=PROJECT_ROOT)


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the `scaling` CLI as a user would, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "scaling_cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"))
