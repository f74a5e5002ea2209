"""Where time goes: a stopwatch for the training loop's phases, and the one harness that times a train step.

`time_train_step` is what every throughput number comes from (the sweep planner's probe in sweeps/worker.py,
bench/sweep_overhead.py, bench/throughput.py, bench/profile_step.py, bench/replicas.py), so they all time a
step the same way: the first call (tracing and compiling) apart, then warm-up steps, then timed chunks of
steps, each ended by waiting for the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from typing import Callable, Iterator

import jax

CHUNK_SECONDS = 0.25  # a chunk sized from the warm-up steps lasts about this long


@dataclasses.dataclass
class Stopwatch:
    """Seconds, calls and the first call's seconds per named phase: `with watch("eval"): ...`."""
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    calls: dict[str, int] = dataclasses.field(default_factory=dict)
    first: dict[str, float] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        tick = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - tick)

    def add(self, phase: str, seconds: float) -> None:
        self.first.setdefault(phase, seconds)
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self.calls[phase] = self.calls.get(phase, 0) + 1


@dataclasses.dataclass(frozen=True)
class StepTiming:
    first_step_s: float  # the first call: tracing and compiling (or loading from the compilation cache)
    seconds_per_step: float  # the median chunk's: it shrugs off a chunk slowed by another process
    best_seconds_per_step: float
    cpu_seconds_per_step: float  # this process's CPU time (all threads) per timed step
    steps_timed: int
    timed_s: float  # wall seconds of the timed chunks
    cpu_share: float  # CPU seconds per wall second while timing


def time_train_step(step: Callable, state, batch, lr, *, warmup: int = 2, chunk_steps: int | None = None,
                    min_chunks: int = 3, min_seconds: float = 0.0, max_steps: float = math.inf):
    """Time `step(state, batch, lr) -> (state, metrics)` on one batch; returns (StepTiming, the last state),
    the state because the step may donate its input. After the first call and `warmup` untimed steps, chunks
    of `chunk_steps` steps (None: as many as take CHUNK_SECONDS) are timed until there are `min_chunks` and
    `min_seconds` have passed, stopping early at `max_steps` timed steps."""
    tick = time.perf_counter()
    state, metrics = step(state, batch, lr)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - tick
    tick = time.perf_counter()
    for _ in range(warmup):
        state, metrics = step(state, batch, lr)
    jax.block_until_ready(metrics)
    if chunk_steps is None:
        chunk_steps = max(1, round(CHUNK_SECONDS / max((time.perf_counter() - tick) / max(warmup, 1), 1e-6)))
    chunks: list[float] = []
    start, cpu = time.perf_counter(), time.process_time()
    while len(chunks) * chunk_steps < max_steps and (len(chunks) < min_chunks
                                                      or time.perf_counter() - start < min_seconds):
        tick = time.perf_counter()
        for _ in range(chunk_steps):
            state, metrics = step(state, batch, lr)
        jax.block_until_ready(metrics)
        chunks.append((time.perf_counter() - tick) / chunk_steps)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    steps = chunk_steps * len(chunks)
    timing = StepTiming(first_step_s=first, seconds_per_step=sorted(chunks)[len(chunks) // 2],
                        best_seconds_per_step=min(chunks), cpu_seconds_per_step=cpu / steps, steps_timed=steps,
                        timed_s=elapsed, cpu_share=cpu / elapsed)
    return timing, state
