"""Where a train step's time goes: a jax.profiler trace of a few steps, summed by kernel and by kind.

Builds the same train step as bench/throughput.py for one model size, runs a few warm-up steps, traces
`--steps` more and prints the device's busy time per step grouped into kinds (matmuls, attention,
other fusions, copies), then the heaviest kernels. On a GPU the device's kernels are read (CUPTI); on a
CPU, XLA's thunks on the host threads. The trace stays in `--trace-dir` for TensorBoard/Perfetto.

    python bench/profile_step.py --size 3e6                     # the CPU ladder's 3M model
    python bench/profile_step.py --size 124e6 --vocab 50257 --seq-len 1024 --batch 32   # GPT-2 small, GPU
    python bench/profile_step.py --size 124e6 ... --json        # the summary as one JSON object
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import run_config  # noqa: E402

from scaling import hardware  # noqa: E402
from scaling.step import compile_train_step, init_state, make_mesh, shard_batch  # noqa: E402
from scaling.timing import time_train_step  # noqa: E402

# Kernel kinds, by name: cuBLAS/CUTLASS GEMMs and XLA's dot thunks; cuDNN's fused attention; layout
# copies and transposes; everything else is an XLA fusion (elementwise work, reductions, the optimizer).
KINDS = (
    ("matmul", re.compile(r"gemm|nvjet|xmma|cutlass|cublas|sm\d+_.*_tn|^dot|ynn_fusion|custom-call.*matmul", re.I)),
    ("attention", re.compile(r"cudnn|fmha|flash|attention", re.I)),
    ("copy/transpose", re.compile(r"^copy|transpose|memcpy|memset", re.I)),
)


HLO_NAME = re.compile(r"^[A-Za-z][\w\-]*(\.\d+)?$")


def kind_of(name: str) -> str:
    for kind, pattern in KINDS:
        if pattern.search(name):
            return kind
    return "other fusions"


def device_events(trace: dict) -> list[dict]:
    """Complete events of the device: the GPU's kernels where there is one, else the host's XLA ops."""
    names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    gpu_pids = {pid for pid, name in names.items() if re.search(r"/device:GPU|GPU:\d|Stream", name)}
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X" and "dur" in e]
    if gpu_pids:
        return [e for e in events if e["pid"] in gpu_pids]
    # CPU: XLA's per-op events, named like HLO instructions ("dot.3", "loop_fusion.12"); the runtime's
    # own events (launches, waits, rendezvous) would count the same time twice.
    return [e for e in events if HLO_NAME.match(e["name"]) and e["name"] != "Rendezvous"]


def summarise(events: list[dict], steps: int, step_seconds: float, top: int) -> dict:
    per_name = collections.Counter()
    calls = collections.Counter()
    for e in events:
        per_name[e["name"]] += e["dur"] / 1e3 / steps  # microseconds over the run to ms per step
        calls[e["name"]] += 1
    by_kind = collections.Counter()
    for name, ms in per_name.items():
        by_kind[kind_of(name)] += ms
    return {
        "step_ms": step_seconds * 1e3,
        "busy_ms": sum(per_name.values()),
        "by_kind_ms": dict(by_kind.most_common()),
        "top": [{"name": name[:140], "ms": ms, "calls_per_step": calls[name] / steps, "kind": kind_of(name)}
                for name, ms in per_name.most_common(top)],
    }


def main(argv=None) -> int:
    from scaling import xla_defaults

    xla_defaults.apply()  # the settings every entry point applies before JAX starts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=float, default=3e6, help="target parameter count")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--mlp", default="gelu", choices=("gelu", "swiglu"))
    parser.add_argument("--dtype", default="auto", help="compute dtype (auto: float32 on CPU, bfloat16 on GPU)")
    parser.add_argument("--steps", type=int, default=3, help="steps traced")
    parser.add_argument("--top", type=int, default=25, help="kernels listed")
    parser.add_argument("--trace-dir", default=None, help="where the trace goes (default: a temporary folder)")
    parser.add_argument("--host-devices", type=int, default=None, help="CPU only: as bench/throughput.py")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parser.parse_args(argv)
    hardware.split_cpus_into_devices(args.batch, requested=args.host_devices)

    config = run_config(args.size, args)
    mesh = make_mesh()
    graphdef, state = init_state(config, mesh)
    lr = np.float32(config.train.lr)
    step = compile_train_step(config, graphdef, state, mesh)
    batch = shard_batch(np.random.default_rng(0).integers(0, args.vocab, size=(args.batch, args.seq_len + 1),
                                                          dtype=np.int32), mesh)
    timing, state = time_train_step(step, state, batch, lr, chunk_steps=args.steps, min_chunks=1)
    step_seconds = timing.seconds_per_step

    trace_dir = Path(args.trace_dir or tempfile.mkdtemp(prefix="profile_step_"))
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        for _ in range(args.steps):
            state, metrics = step(state, batch, lr)
        jax.block_until_ready(metrics)
    trace_file = max(trace_dir.glob("**/*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
    trace = json.load(gzip.open(trace_file))
    summary = summarise(device_events(trace), args.steps, step_seconds, args.top)
    m = config.model
    summary.update({"shape": f"d{m.d_model} L{m.n_layers} H{m.n_heads} F{m.d_ff} V{m.vocab_size}",
                    "batch": args.batch, "seq_len": args.seq_len, "dtype": m.dtype,
                    "device_kind": jax.devices()[0].device_kind, "n_devices": jax.device_count(),
                    "trace": str(trace_file)})
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"{summary['shape']}  batch {args.batch} x {args.seq_len}  {m.dtype}  on "
          f"{summary['device_kind']} x{summary['n_devices']}")
    print(f"step {summary['step_ms']:.2f} ms (untraced); device busy {summary['busy_ms']:.2f} ms per step "
          "(summed over threads on CPU)")
    for kind, ms in summary["by_kind_ms"].items():
        print(f"  {kind:<16} {ms:9.2f} ms  {ms / summary['busy_ms']:6.1%}")
    for row in summary["top"]:
        print(f"{row['ms']:9.3f} ms  x{row['calls_per_step']:<5g} {row['kind']:<15} {row['name']}")
    print(f"trace: {trace_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
