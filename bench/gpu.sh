#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md in one go, on a machine with one NVIDIA GPU whose python3 already has
# jax (CUDA), flax, optax, orbax-checkpoint, torch and the project's other dependencies (the project
# itself need not be installed: it runs from this checkout). Each part writes its JSON and log into
# $OUT (default: bench_out/) as it finishes, so a run cut short keeps what it measured.
#
#   bash bench/gpu.sh                 # everything, about 6 minutes on an H100
#   bash bench/gpu.sh throughput      # only the named parts: env tests throughput profile replicas
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-python3}
parts=${*:-env throughput profile replicas tests}
gpt2=(--vocab 50257 --seq-len 1024 --batch 32)

wanted() { [[ " $parts " == *" $1 "* ]]; }
section() { echo; echo "== $* ($(date +%T))"; }

if wanted env; then
  section environment
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
  $py -c "import sys, jax, flax, optax, orbax.checkpoint as o, torch; print(sys.version.split()[0], 'jax', \
jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__); print(jax.devices())"
fi
if wanted throughput; then
  section "throughput: GPT-2 small (124M), batch 32 x 1024, bfloat16, beside PyTorch"
  $py bench/throughput.py --sizes 124e6 "${gpt2[@]}" --json >"$out/throughput_124m.json" 2>"$out/throughput_124m.log"
  echo "exit $?"; tail -4 "$out/throughput_124m.log"
  $py -c "import json; [print({k: r[k] for k in ('n_params', 'tokens_per_s', 'mfu', 'peak_flops', \
'torch_tokens_per_s', 'torch_mode', 'speedup_vs_torch', 'peak_memory_bytes', 'device_kind')}) \
for r in json.load(open('$out/throughput_124m.json'))]"
fi
if wanted profile; then
  section "profile: GPT-2 small train step"
  $py bench/profile_step.py --size 124e6 "${gpt2[@]}" --top 30 --trace-dir /tmp/profile_124m \
    >"$out/profile_124m.txt" 2>"$out/profile_124m.log"
  echo "exit $?"; cat "$out/profile_124m.txt"; tail -3 "$out/profile_124m.log"
fi
if wanted replicas; then
  section "packed replicas: 1M parameters, K = 1 .. 64"
  $py bench/replicas.py --sizes 1e6 --k 1 2 4 8 16 32 64 --min-seconds 3 --json \
    >"$out/replicas_1m.json" 2>"$out/replicas_1m.log"
  echo "exit $?"; tail -3 "$out/replicas_1m.log"
  $py -c "import json; [print({k: r[k] for k in ('mode', 'k', 'tokens_per_s', 'speedup_vs_single', 'step_ms', \
'memory_bytes', 'device_peak_bytes')}) for r in json.load(open('$out/replicas_1m.json'))]"
fi
if wanted tests; then
  section "tests on the GPU: model (cuDNN attention), train step, replicas"
  $py -m pytest -q -p no:cacheprovider tests/test_model.py tests/test_replicas.py tests/test_step.py \
    >"$out/tests.log" 2>&1
  echo "exit $?"; tail -25 "$out/tests.log"
fi
