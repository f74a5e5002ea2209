"""XLA:CPU settings measured to train this model faster, applied before JAX starts its backend.

XLA:CPU (jaxlib 0.10) sends matmuls and some fusions to YNNPACK. On the shapes these models use
(a few thousand tokens by a few hundred features) its dots ran at 60-90% of the speed of XLA's
Eigen path on one core, and the whole train step was 12-23% slower (BENCHMARKS.md, issue 6).
So `import scaling` turns the YNNPACK fusions off, only for the jaxlib series where this was
measured (an unknown XLA flag aborts the process, and a later jaxlib may have fixed the cause),
only where XLA_FLAGS does not already name the flag, and not at all with SCALING_XLA_DEFAULTS=0.
It must run before JAX creates its CPU client; if the client exists, XLA_FLAGS is no longer read
and nothing changes. The flags change which kernels run, hence the last bits of results, so every
process of a run or sweep applies the same ones (they all import scaling first).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

TESTED_JAXLIB_SERIES = ("0.10.",)
CPU_FLAGS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def backend_started() -> bool:
    """Whether JAX has already created a backend (after which XLA_FLAGS is ignored)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bool(getattr(bridge, "_backends", None))


def flags_to_add(current: str, jaxlib_version: str | None) -> list[str]:
    if jaxlib_version is None or not jaxlib_version.startswith(TESTED_JAXLIB_SERIES):
        return []
    return [f"--{name}={value}" for name, value in CPU_FLAGS.items() if f"--{name}" not in current]


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
