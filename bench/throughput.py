"""Training throughput and MFU over a ladder of model sizes, beside the same model in PyTorch.

For each size: tokens/s of the real train step (scaling.step, jit-compiled, data-parallel over all
devices), achieved FLOP/s under `flops_exact`, and MFU against a matmul peak measured in this same run
through JAX in the same dtype. If torch is installed (`pip install -e .[bench]`), the identical
architecture (bench/torch_reference.py) is trained at the same shapes, dtype, batch and sequence length,
eagerly and with torch.compile, and the faster of the two is reported.

    python bench/throughput.py                # CPU ladder: ~0.1M, 1M, 3M, 10M parameters
    python bench/throughput.py --json         # one JSON list, a row per size
    python bench/throughput.py --sizes 124e6 --vocab 50257 --seq-len 1024 --batch 32   # GPT-2 small
    python bench/throughput.py --sizes 124e6 --vocab 50257 --seq-len 1024 --batch 32 --peak-flops 989e12
    python bench/throughput.py --host-devices 1    # CPU: one device using every core
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from replicas import compiled_memory  # noqa: E402

from scaling import hardware  # noqa: E402
from scaling.accounting import flops_per_token  # noqa: E402
from scaling.config import ModelConfig, RunConfig, TrainConfig, resolve  # noqa: E402
from scaling.model import compute_dtype  # noqa: E402
from scaling.shapes import choose_shape  # noqa: E402
from scaling.step import compile_train_step, init_state, make_mesh, shard_batch  # noqa: E402
from scaling.timing import time_train_step  # noqa: E402

CPU_SIZES = (1e5, 1e6, 3e6, 1e7)


def run_config(n_target: float, args) -> RunConfig:
    shape = choose_shape(n_target, vocab_size=args.vocab, mlp=args.mlp)
    model = ModelConfig(**shape.model_overrides(), mlp=args.mlp, dtype=args.dtype)
    train = TrainConfig(seq_len=args.seq_len, batch_size=args.batch, steps=10_000, lr=1e-3)
    config = resolve(RunConfig(model=model, train=train), args.vocab)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, dtype=compute_dtype(args.dtype).name))


def seconds_per_step(step, state, batch, lr, args) -> float:
    """The median of single steps (scaling.timing.time_train_step): `args.warmup` untimed steps, then steps
    until args.min_seconds have passed (at least 3, at most args.max_steps). The median shrugs off the odd
    step slowed by another process."""
    timing, _ = time_train_step(step, state, batch, lr, warmup=max(args.warmup - 1, 0), chunk_steps=1,
                                min_seconds=args.min_seconds, max_steps=args.max_steps)
    return timing.seconds_per_step


def jax_tokens_per_s(config: RunConfig, batch_np: np.ndarray, args) -> tuple[float, dict]:
    """Tokens/s of the train step, and its memory: XLA's compile-time account of the step's buffers
    (parameters, optimizer state, batch, outputs and temporaries; on every backend) and, where the
    device reports it, the measured peak."""
    mesh = make_mesh()
    graphdef, state = init_state(config, mesh)
    step = compile_train_step(config, graphdef, state, mesh)
    batch = shard_batch(batch_np, mesh)
    lr = np.float32(config.train.lr)
    compiled = step.lower(state, batch, lr).compile()  # timed below too: compiled once
    memory = {"compiled_memory_bytes": compiled_memory(compiled), "peak_memory_bytes": None}
    seconds = seconds_per_step(compiled, state, batch, lr, args)
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        memory["peak_memory_bytes"] = float(stats["peak_bytes_in_use"])
    return batch_np.shape[0] * (batch_np.shape[1] - 1) / seconds, memory


def torch_tokens_per_s(config: RunConfig, batch_np: np.ndarray, args) -> tuple[float | None, str | None]:
    try:
        import torch
    except ImportError:
        return None, None
    from torch_reference import make_train_step

    device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[config.model.dtype]
    best, best_mode = None, None
    for compiled in (False, True):
        torch.manual_seed(0)
        step, _ = make_train_step(config.model, config.train, compile_model=compiled, device=device)
        batch = torch.from_numpy(batch_np.astype(np.int64)).to(device)

        def once(state, batch, lr):  # the harness's step signature; torch keeps its own state
            with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
                step(batch)
            if device == "cuda":
                torch.cuda.synchronize()
            return state, None

        try:
            seconds = seconds_per_step(once, None, batch, None, args)
        except Exception as err:  # noqa: BLE001 - torch.compile may be unavailable here; report eager then
            print(f"torch {'compiled' if compiled else 'eager'} failed: {err}", file=sys.stderr)
            continue
        rate = batch_np.shape[0] * (batch_np.shape[1] - 1) / seconds
        if best is None or rate > best:
            best, best_mode = rate, "torch.compile" if compiled else "eager"
    if device == "cuda":
        step = once = None  # drop the models and optimizers, then return their memory to the GPU
        gc.collect()
        torch.cuda.empty_cache()
    return best, best_mode


def main(argv=None) -> int:
    from scaling import xla_defaults

    xla_defaults.apply()  # the settings every entry point applies before JAX starts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=None, help="target parameter counts")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--mlp", default="gelu", choices=("gelu", "swiglu"))
    parser.add_argument("--dtype", default="auto", help="compute dtype (auto: float32 on CPU, bfloat16 on GPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    parser.add_argument("--peak-flops", type=float, default=None,
                        help="per-device peak FLOP/s for MFU instead of the measured matmul, e.g. 989e12 "
                             "for an H100's dense bfloat16 datasheet figure")
    parser.add_argument("--host-devices", type=int, default=None,
                        help="CPU only: split the cores into this many JAX devices (data-parallel), as "
                             "`scaling train` does by default; default: as training would choose")
    args = parser.parse_args(argv)
    if not args.no_torch:
        # JAX takes 75% of a GPU's memory at start unless told not to; PyTorch runs in this process too.
        # (The model's memory below is XLA's own account and the allocator's peak, either way.)
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    hardware.split_cpus_into_devices(args.batch, requested=args.host_devices)  # before JAX starts its CPU client
    sizes = args.sizes or (CPU_SIZES if jax.default_backend() == "cpu" else (124e6,))
    dtype_name = compute_dtype(args.dtype).name
    peak = args.peak_flops or hardware.measure_matmul_flops(dtype_name)
    # Host CPU devices share the same cores, and one device's matmul already uses all of them.
    total_peak = peak if jax.default_backend() == "cpu" else peak * jax.device_count()
    rows = []
    for n_target in sizes:
        config = run_config(n_target, args)
        rng = np.random.default_rng(0)
        batch = rng.integers(0, args.vocab, size=(args.batch, args.seq_len + 1), dtype=np.int32)
        # PyTorch first: it hands its cached GPU memory back when done, where JAX's pool keeps what it took.
        torch_rate, torch_mode = (None, None) if args.no_torch else torch_tokens_per_s(config, batch, args)
        tokens_per_s, memory = jax_tokens_per_s(config, batch, args)
        per_token = flops_per_token(config.model, args.seq_len)["flops_exact"]
        m = config.model
        rows.append({
            "n_params_target": n_target, "n_params": int(choose_shape(n_target, args.vocab, args.mlp).n_params),
            "shape": f"d{m.d_model} L{m.n_layers} H{m.n_heads} F{m.d_ff}", "seq_len": args.seq_len,
            "batch": args.batch, "dtype": dtype_name, "tokens_per_s": tokens_per_s,
            "flops_per_s": tokens_per_s * per_token, "peak_flops": total_peak,
            "mfu": tokens_per_s * per_token / total_peak,
            "torch_tokens_per_s": torch_rate, "torch_mode": torch_mode,
            "speedup_vs_torch": tokens_per_s / torch_rate if torch_rate else None,
            **memory, "device_kind": jax.devices()[0].device_kind,
            "n_devices": jax.device_count(),
        })
        if not args.json:
            r = rows[-1]
            torch_text = f"{r['torch_tokens_per_s']:.0f} ({r['torch_mode']})" if r["torch_tokens_per_s"] else "-"
            speedup = f"{r['speedup_vs_torch']:.2f}x" if r["speedup_vs_torch"] else "-"
            memory = r["peak_memory_bytes"] or r["compiled_memory_bytes"]
            memory_text = f"{memory / 2**20:,.0f} MiB" if memory else "-"
            print(f"N={r['n_params']:>11,} {r['shape']:<22} {r['tokens_per_s']:>10.0f} tok/s "
                  f"{r['flops_per_s'] / 1e9:>8.1f} GFLOP/s  MFU {r['mfu']:.1%}  torch {torch_text}  {speedup}  "
                  f"mem {memory_text}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"peak (measured {dtype_name} matmul): {total_peak / 1e9:.1f} GFLOP/s on "
              f"{jax.devices()[0].device_kind} x{jax.device_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
