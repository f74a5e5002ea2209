"""Tiny sweep specs and a way to run `scaling sweep` as a user would, shared by the sweep tests."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import PROJECT_ROOT

# Three 20-step runs of tiny byte-level models (shapes 32x1, 32x2, 32x3): a few seconds each.
TINY_GRID = """
kind = "grid"
[sizes]
n_params = [2.06e4, 3.3e4, 4.5e4]
aspect_ratio = 16
[hparams]
lr = 3e-3
lr_base_width = 32
batch_size = 8
[grid]
tokens = [5120]
[base.data]
val_batches = 2
[base.train]
seq_len = 32
warmup_steps = 2
eval_every = 10
log_every = 1
peak_flops = 1e11
[base.checkpoint]
every = 5
keep = 2
"""

# One size, a stable run and two cooldown branches of 16 and 24 steps (branch points 13 and 19).
TINY_WSD = """
kind = "wsd"
[sizes]
n_params = [3.3e4]
aspect_ratio = 16
[hparams]
lr = 3e-3
batch_size = 8
[wsd]
branch_tokens = [4096, 6144]
decay_fraction = 0.2
decay_shape = "linear"
[base.data]
val_batches = 2
[base.train]
seq_len = 32
warmup_steps = 2
eval_every = 4
log_every = 1
peak_flops = 1e11
[base.checkpoint]
every = 5
keep = 2
"""


def write_spec(tmp_path, text: str, name: str = "tiny") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def sweep_env() -> dict:
    return dict(os.environ, JAX_PLATFORMS="cpu")


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "scaling_cli", "sweep", *args]


def run_sweep_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT,
                          env=sweep_env())


def start_sweep_cli(*args: str, log=None) -> subprocess.Popen:
    return subprocess.Popen(sweep_cmd(*args), stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            cwd=PROJECT_ROOT, env=sweep_env())
