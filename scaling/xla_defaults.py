"""XLA settings measured to train this model faster, applied before JAX starts its backend.

- XLA:CPU (in the jaxlib series FLAGS names) sends matmuls and some fusions to YNNPACK. On the shapes
  these models use (a few thousand tokens by a few hundred features) its dots ran slower than XLA's
  Eigen path on one core, and so did the whole train step. The YNNPACK fusions are off.
- XLA:GPU fuses some matmuls with their neighbours into Triton kernels. On an H100 it did so for the
  GPT-2-small head's three matmuls, which then ran well below cuBLAS's speed and held the whole step
  back. Triton matmul fusions are off. The flag is a GPU option that every XLA backend parses, so it
  is harmless on a CPU.

Both measured in BENCHMARKS.md (the CPU profile's and the GPU profile's lists; issue 6). A flag is added
only for the jaxlib series it is known to exist in (an unknown XLA flag aborts the process), only where
XLA_FLAGS does not already name it, and not at all with SCALING_XLA_DEFAULTS=0. It must run before JAX
creates its backend; if the backend exists, XLA_FLAGS is no longer read and nothing changes. The flags
change which kernels run, hence the last bits of results, so every process of a run or sweep applies the
same ones: each entry point (the `scaling` command, the sweep worker, the bench scripts) calls `apply()`
before it starts JAX; importing scaling does not.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

# flag -> (value, the jaxlib series it is applied on)
FLAGS = {
    "xla_cpu_experimental_ynn_fusion_type": ("", ("0.10.",)),
    "xla_gpu_enable_triton_gemm": ("false", ("0.10.", "0.11.")),
}


def backend_started() -> bool:
    """Whether JAX has already created a backend (after which XLA_FLAGS is ignored)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(getattr(bridge, "_backends", None))


def flags_to_add(current: str, jaxlib_version: str | None) -> list[str]:
    if jaxlib_version is None:
        return []
    return [f"--{name}={value}" for name, (value, series) in FLAGS.items()
            if jaxlib_version.startswith(series) and f"--{name}" not in current]


def apply() -> list[str]:
    """Add the CPU flags to XLA_FLAGS when allowed; returns the flags added."""
    if os.environ.get("SCALING_XLA_DEFAULTS", "1") == "0" or backend_started():
        return []
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return []
    current = os.environ.get("XLA_FLAGS", "")
    added = flags_to_add(current, version)
    if added:
        os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added
