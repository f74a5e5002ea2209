"""Device facts for the record: device kind, library versions, and a measured matmul peak for MFU.

The peak is measured once per (device kind, dtype) with a large jitted matmul through JAX itself and
cached in the scaling cache directory, so MFU compares the model against what this framework can
reach on this device rather than a datasheet number (declare `train.peak_flops` to use a datasheet).
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

from scaling.io import atomic_write

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tokenizers")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine_facts() -> dict:
    """The host, for a benchmark's record: CPU model (from lscpu), CPU count, Python, load at start."""
    import subprocess

    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                      if line.startswith("Model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}


def device_facts() -> dict:
    import jax

    device = jax.devices()[0]
    return {
        "device_kind": device.device_kind,
        "backend": jax.default_backend(),
        "n_devices": jax.device_count(),
        "n_local_devices": jax.local_device_count(),
        "n_processes": jax.process_count(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
    }


def measure_matmul_flops(dtype_name: str, size: int | None = None, repeats: int = 5) -> float:
    """Best FLOP/s of a square jitted matmul on one device (2*n^3 FLOPs per product)."""
    import jax
    import jax.numpy as jnp

    backend = jax.default_backend()
    size = size or (2048 if backend == "cpu" else 8192)
    dtype = jnp.dtype(dtype_name)
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.random.normal(key_a, (size, size), dtype)
    b = jax.random.normal(key_b, (size, size), dtype)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, b).block_until_ready()
    # An accelerator's product takes about a millisecond: queue several per timing so that dispatch
    # and the host's wait stay out of it.
    per_timing = 1 if backend == "cpu" else 20
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_timing):
            product = matmul(a, b)
        product.block_until_ready()
        best = min(best, (time.perf_counter() - start) / per_timing)
    return 2.0 * size**3 / best


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. a sweep worker's share), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


MAX_HOST_DEVICES = 8  # measured up to 2; more devices than this is untested


def host_devices_for(micro_batch: int, cpus: int, requested: int | None = None) -> int:
    """How many JAX devices to split this process's CPUs into for a CPU run.

    One device per usable CPU trains small models faster than one device using all of them (each
    device runs its share of the batch with its own core; the gain is largest for the smallest models
    and fades by a few million parameters: BENCHMARKS.md, training throughput on CPU). The count must
    divide the micro-batch, so it is lowered until it does. `requested` (>= 1) overrides the CPU count."""
    n = max(1, min(requested or cpus, MAX_HOST_DEVICES if requested is None else requested, micro_batch))
    while micro_batch % n:
        n -= 1
    return n


def split_cpus_into_devices(batch_size: int, grad_accum: int = 1, requested: int | None = None) -> int | None:
    """Set `jax_num_cpu_devices` for a run with this batch before JAX starts its CPU client; returns the
    count set, or None where it is not ours to set (the client exists, or XLA_FLAGS forces a count)."""
    import jax

    from scaling.xla_defaults import backend_started

    if backend_started() or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    n = host_devices_for(batch_size // max(grad_accum, 1), usable_cpus(), requested)
    jax.config.update("jax_num_cpu_devices", n)
    return n


def peak_flops(dtype_name: str, cache: Path) -> float:
    """Measured matmul peak FLOP/s per device for this device kind and dtype, cached on disk.

    On CPU the measurement is keyed by the process's CPU share, and host devices (forced with
    `jax_num_cpu_devices`) split the same cores, so each gets the share's peak over their count."""
    import jax

    key = f"{jax.devices()[0].device_kind}|{dtype_name}|{usable_cpus()}cpu"
    path = cache / "peak_flops.json"
    table = json.loads(path.read_text()) if path.exists() else {}
    if key not in table:
        table[key] = measure_matmul_flops(dtype_name)
        atomic_write(path, json.dumps(table, indent=1))
    per_device = float(table[key])
    return per_device / jax.local_device_count() if jax.default_backend() == "cpu" else per_device


def enable_compilation_cache(cache: Path) -> None:
    """Keep compiled XLA programs on disk (`<cache>/xla`), so a shape compiled once (in an earlier run,
    a sweep's other worker, or a resume) loads in milliseconds instead of recompiling. The executable is
    the same, so results are bit-identical. Set SCALING_COMPILATION_CACHE=0 to turn it off."""
    import jax

    if os.environ.get("SCALING_COMPILATION_CACHE", "1") == "0" or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", str(cache / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
