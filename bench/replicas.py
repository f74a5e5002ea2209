"""Packed replicas: aggregate training throughput of K vmapped replicas against one replica at a time.

A small model leaves an accelerator mostly idle. scaling.replicas trains K replicas of one shape (here
seeds 0..K-1 and learning rates spread over 4x) in one program with `jax.vmap`. For each model size
this times the ordinary train step (scaling.step, one replica at a time: K such runs in sequence have
the same aggregate throughput) and the packed step for each K, and reports aggregate tokens/s, the
speedup over one at a time, and the compiled program's memory (XLA's memory_analysis(): arguments +
outputs - donated + temporaries; `device_peak_bytes` beside it is the GPU's peak so far in this process,
so it only grows down the table). On a CPU the cores are already busy with one replica, so expect
about 1x; the gain is on a GPU.

    python bench/replicas.py                          # ~1M parameters, K = 1 2 4 8 16 (1 2 4 on CPU)
    python bench/replicas.py --k 1 4 --min-seconds 2  # a quick CPU check
    python bench/replicas.py --sizes 1e6 5e6 2e7 --json   # one JSON list, a row per (size, mode, K)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling.accounting import flops_per_token  # noqa: E402
from scaling.config import ModelConfig, RunConfig, TrainConfig, resolve  # noqa: E402
from scaling.model import compute_dtype  # noqa: E402
from scaling.replicas import compile_replicas_step, init_replicas, shard_replica_batch  # noqa: E402
from scaling.shapes import choose_shape  # noqa: E402
from scaling.step import compile_train_step, init_state, make_mesh, shard_batch  # noqa: E402
from scaling.timing import time_train_step  # noqa: E402

GPU_KS = (1, 2, 4, 8, 16)
CPU_KS = (1, 2, 4)


def run_config(n_target: float, args, seed: int = 0, lr: float = 1e-3) -> RunConfig:
    shape = choose_shape(n_target, vocab_size=args.vocab, mlp=args.mlp)
    model = ModelConfig(**shape.model_overrides(), mlp=args.mlp, dtype=compute_dtype(args.dtype).name)
    train = TrainConfig(seq_len=args.seq_len, batch_size=args.batch, steps=10_000, lr=lr, seed=seed)
    return resolve(RunConfig(model=model, train=train), args.vocab)


def replica_configs(n_target: float, k: int, args) -> list[RunConfig]:
    """Seeds 0..k-1 and learning rates log-spaced over [lr/2, 2 lr]: what a small seed/lr study packs."""
    lrs = [1e-3] if k == 1 else list(1e-3 * 2.0 ** np.linspace(-1, 1, k))
    return [run_config(n_target, args, seed=i, lr=float(lr)) for i, lr in enumerate(lrs)]


def seconds_per_step(step, state, batch, lrs, args) -> float:
    """`args.warmup` untimed steps, then single steps until args.min_seconds have passed (at least 3, at most
    args.max_steps): their median (scaling.timing.time_train_step, as bench/throughput.py)."""
    timing, _ = time_train_step(step, state, batch, lrs, warmup=max(args.warmup - 1, 0), chunk_steps=1,
                                min_seconds=args.min_seconds, max_steps=args.max_steps)
    return timing.seconds_per_step


def compiled_memory(compiled) -> int | None:
    """Bytes the compiled program holds at once, by XLA's own account; None where it gives none."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes)


def device_peak() -> int | None:
    """The device's peak bytes in use so far in this process (GPU/TPU); None on CPU."""
    stats = jax.devices()[0].memory_stats() or {}
    return int(stats["peak_bytes_in_use"]) if "peak_bytes_in_use" in stats else None


def time_compiled(step, state, batch, lrs, args) -> tuple[float, int | None]:
    """Seconds per step of a jitted step (compiled once, here) and its compiled memory."""
    compiled = step.lower(state, batch, lrs).compile()
    return seconds_per_step(compiled, state, batch, lrs, args), compiled_memory(compiled)


def time_single(config: RunConfig, batch_BxL1: np.ndarray, args) -> tuple[float, int | None]:
    mesh = make_mesh()
    graphdef, state = init_state(config, mesh)
    return time_compiled(compile_train_step(config, graphdef, state, mesh), state, shard_batch(batch_BxL1, mesh),
                         np.float32(config.train.lr), args)


def time_packed(configs: list[RunConfig], batch_KxBxL1: np.ndarray, args) -> tuple[float, int | None]:
    mesh = make_mesh()
    graphdef, states = init_replicas(configs, mesh)
    return time_compiled(compile_replicas_step(configs, graphdef, states, mesh), states,
                         shard_replica_batch(batch_KxBxL1, mesh), np.array([c.train.lr for c in configs], np.float32),
                         args)


def main(argv=None) -> int:
    from scaling import xla_defaults

    xla_defaults.apply()  # the settings every entry point applies before JAX starts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6], help="target parameter counts")
    parser.add_argument("--k", type=int, nargs="+", default=None, help="replica counts to pack")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="sequences per replica per step")
    parser.add_argument("--mlp", default="gelu", choices=("gelu", "swiglu"))
    parser.add_argument("--dtype", default="auto", help="compute dtype (auto: float32 on CPU, bfloat16 on GPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = parser.parse_args(argv)
    ks = args.k or (CPU_KS if jax.default_backend() == "cpu" else GPU_KS)
    if any(k < 1 for k in ks):
        parser.error("--k values must be >= 1")
    device_kind = jax.devices()[0].device_kind
    tokens_per_replica_step = args.batch * args.seq_len
    rng = np.random.default_rng(0)
    rows = []

    def add(row: dict) -> None:
        rows.append(row)
        if not args.json:
            memory = f"{row['memory_bytes'] / 2**20:8.1f} MiB" if row["memory_bytes"] is not None else "       - MiB"
            print(f"N={row['n_params']:>11,} {row['shape']:<20} {row['mode']:<6} K={row['k']:<3} "
                  f"{row['tokens_per_s']:>10.0f} tok/s  {row['step_ms']:>8.1f} ms/step  "
                  f"{row['speedup_vs_single']:5.2f}x  {memory}", flush=True)

    for n_target in args.sizes:
        config = run_config(n_target, args)
        m = config.model
        base = {"n_params_target": n_target, "n_params": int(choose_shape(n_target, args.vocab, args.mlp).n_params),
                "shape": f"d{m.d_model} L{m.n_layers} H{m.n_heads} F{m.d_ff}", "seq_len": args.seq_len,
                "batch": args.batch, "dtype": m.dtype, "device_kind": device_kind, "n_devices": jax.device_count()}
        per_token = float(flops_per_token(m, args.seq_len)["flops_exact"])
        batches = rng.integers(0, args.vocab, size=(max(ks), args.batch, args.seq_len + 1), dtype=np.int32)

        seconds, memory = time_single(config, batches[0], args)
        single_rate = tokens_per_replica_step / seconds
        add({**base, "mode": "single", "k": 1, "tokens_per_s": single_rate, "tokens_per_s_per_replica": single_rate,
             "step_ms": seconds * 1e3, "flops_per_s": single_rate * per_token, "speedup_vs_single": 1.0,
             "memory_bytes": memory, "device_peak_bytes": device_peak()})
        for k in ks:
            seconds, memory = time_packed(replica_configs(n_target, k, args), batches[:k], args)
            rate = k * tokens_per_replica_step / seconds
            add({**base, "mode": "packed", "k": k, "tokens_per_s": rate, "tokens_per_s_per_replica": rate / k,
                 "step_ms": seconds * 1e3, "flops_per_s": rate * per_token, "speedup_vs_single": rate / single_rate,
                 "memory_bytes": memory, "device_peak_bytes": device_peak()})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{device_kind} x{jax.device_count()}; tokens/s are aggregate over the K replicas; "
              f"batch {args.batch} x seq {args.seq_len} per replica")
    return 0


if __name__ == "__main__":
    sys.exit(main())
