"""Sweep overhead: a sweep's wall time against the sum of its runs' FLOPs over the measured throughput.

    python bench/sweep_overhead.py                                    # sweeps/quickstart.toml, all its runs
    python bench/sweep_overhead.py sweeps/isoflop_cpu.toml --max-runs 4 --max-run-flops 1.1e12
    python bench/sweep_overhead.py SPEC --runs 6a81,0d6c --workers 2 --threads 1 --set base.train.eval_every=500
    python bench/sweep_overhead.py SPEC --out /tmp/ov --json          # keep the sweep directory; one JSON object

The runs (all of the plan's, or a subset: `--runs`, `--max-runs`, `--max-run-flops`) are trained the way
`scaling sweep run` trains them: the same planning, `sweeps.executors.LocalExecutor` and `run_sweep`, one
pinned `python -m sweeps.worker run` process per run, then `collect`. The wall time covers planning (JAX
import, tokenizer cache), the runs and collecting, as the command's would.

Before the sweep, each distinct model shape (model, batch, sequence length) is timed in a probe process
pinned to the same CPU share (`--threads`), `--workers` probes at a time so that they share the machine as
the sweep's workers do: steady-state seconds per train step on random tokens, after compilation and
warm-up (on one thread the process's CPU time per step, which other load on the machine cannot inflate;
otherwise the median of several timed chunks of steps). Should a run of that shape step faster than its probe (the
probe was slowed down), the run's own step time is used instead. A run's ideal time is the steps it
trained x that (equivalently its FLOPs over the measured FLOP/s); the ideal wall time is their sum over
min(workers, runs), and overhead = 1 - ideal wall / wall.

The worker-seconds (min(workers, runs) x wall) are then split using each run's attempts.jsonl (the
executor's start and end of the worker process) and the `timings` that scaling.training records in
summary.json: worker start (spawn, interpreter, imports, JAX initialisation) and exit, parameter
initialisation (mostly compiling the initialiser), the rest of the set-up in train() (data, run directory,
checkpoint restore, peak FLOP/s), the first train step (tracing and compiling, or loading from the
compilation cache), evaluation (including compiling the eval step), checkpointing (save calls and the
final wait for the asynchronous writes), steps slower than the probe (data batches, logging, contention),
idle worker slots (scheduling, the uneven tail) and the sweep process's planning and collecting.
Other load on the machine stretches all of these; the workers' CPU time (getrusage) gives the worker-seconds
in which they waited for a CPU, and a second overhead figure leaves those out.

With a subset of the runs, every shape of the plan is probed and the whole plan's wall time and overhead
are estimated from the sample (see `extrapolate`; `--no-extrapolate` skips it).

By default the workers use a fresh, empty XLA compilation cache, so every run compiles as on a first sweep;
`--compile-cache shared` uses the usual one (`<scaling cache>/xla`), where a repeated sweep finds its
programs. The sweep directory is a temporary one, removed at the end, unless `--out` names one (which must
not exist or be empty). Exit codes: 0 done, 1 a run did not complete, 2 bad input.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 0.15  # the issue's target: overhead at most 15% of the sweep's wall time (sweeps/isoflop_cpu.toml)
CATEGORIES = (  # worker-seconds, in the order printed; "ideal" first, then the overhead
    ("ideal", "ideal training (steps x probe seconds per step)"),
    ("steps_excess", "steps slower than the probe (data batches, logging, contention)"),
    ("compile", "first train step (tracing + compiling the train step)"),
    ("init", "parameter initialisation (compiling + running the initialiser)"),
    ("eval", "evaluation (including compiling the eval step)"),
    ("checkpoint", "checkpointing (save calls + waiting for the writes)"),
    ("setup", "rest of set-up in train() (data, run dir, restore, peak FLOP/s)"),
    ("process_start", "worker start (spawn, interpreter, imports, JAX init)"),
    ("process_exit", "worker exit (after train() returns, teardown)"),
    ("other", "rest of train() (summary; failed runs' whole time)"),
    ("idle", "idle worker slots (scheduling, uneven tail)"),
    ("sweep_process", "sweep process: planning and collecting (all slots wait)"),
)
EVAL_BATCH = 16  # sequences per validation batch, as in scaling.training


class BadInput(Exception):
    pass


class ProbeFailed(Exception):
    pass


# --- the probe (runs in a child process: `bench/sweep_overhead.py --probe CONFIG_JSON`) -----------------

def probe(config_json: str, min_seconds: float, threads: int) -> dict:
    """Seconds per train step of a config, after compilation and warm-up, on random tokens. On one CPU
    thread: the process's CPU time per step, which other load on the machine cannot inflate (it only takes
    the CPU away for a while); otherwise the median of several timed chunks of steps."""
    import jax
    import numpy as np

    from scaling.config import from_dict
    from scaling.step import compile_train_step, init_state, make_mesh, shard_batch
    from scaling.timing import time_train_step

    config = from_dict(json.loads(config_json))
    t = config.train
    mesh = make_mesh()
    graphdef, state = init_state(config, mesh)
    step_fn = compile_train_step(config, graphdef, state, mesh)
    rng = np.random.default_rng(0)
    batch = shard_batch(rng.integers(0, config.model.vocab_size, (t.batch_size, t.seq_len + 1), dtype=np.int32), mesh)
    timing, _ = time_train_step(step_fn, state, batch, np.float32(t.lr), min_seconds=min_seconds)
    on_one_cpu = threads == 1 and jax.default_backend() == "cpu"
    median, cpu = timing.seconds_per_step, timing.cpu_seconds_per_step
    return {"seconds_per_step": min(median, cpu) if on_one_cpu else median,
            "wall_seconds_per_step": median, "best_seconds_per_step": timing.best_seconds_per_step,
            "cpu_seconds_per_step": cpu, "steps_timed": timing.steps_timed, "first_step_s": timing.first_step_s,
            "cpu_share": timing.cpu_share, "device_kind": jax.devices()[0].device_kind}


def probe_main(args) -> int:
    from sweeps.worker import die_with_parent, pin_threads

    die_with_parent()
    pin_threads(args.threads, [int(c) for c in args.cores.split(",") if c])
    print(json.dumps(probe(args.probe, args.probe_seconds, args.threads)))
    return 0


def shape_key(config: dict) -> str:
    m, t = config["model"], config["train"]
    return (f"d{m['d_model']}L{m['n_layers']}H{m['n_heads']}f{m['d_ff']}v{m['vocab_size']}{m['mlp']}{m['dtype']}"
            f"|b{t['batch_size']}s{t['seq_len']}a{t['grad_accum']}{'fsdp' if t['fsdp'] else ''}")


def measure_shapes(configs: dict[str, dict], workers: int, threads: int, gpus: list[str],
                   min_seconds: float) -> dict[str, dict]:
    """Probe every shape, `workers` at a time, each pinned like a sweep worker in its slot. The list is
    padded with repeats to a multiple of `workers` so that no probe runs alone on the machine; a shape
    probed more than once gets the best."""
    from sweeps.executors import cores_for

    keys = list(configs)
    jobs = keys + [keys[i % len(keys)] for i in range(-len(keys) % workers)]
    slots: list[int] = list(range(workers))

    def one(key: str) -> tuple[str, dict]:
        slot = slots.pop()
        try:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", json.dumps(configs[key]),
                   "--threads", str(threads), "--cores", ",".join(map(str, cores_for(slot, threads))),
                   "--probe-seconds", str(min_seconds)]
            env = dict(os.environ, SWEEP_PARENT_PID=str(os.getpid()))
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        finally:
            slots.append(slot)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ProbeFailed(f"throughput probe of {key} failed: {tail[0]}")
        return key, json.loads(done.stdout.strip().splitlines()[-1])

    found: dict[str, list[dict]] = {}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for key, result in pool.map(one, jobs):
            found.setdefault(key, []).append(result)
    return {key: {"seconds_per_step": min(r["seconds_per_step"] for r in rs),
                  "wall_seconds_per_step": min(r["wall_seconds_per_step"] for r in rs),
                  "cpu_seconds_per_step": min(r["cpu_seconds_per_step"] for r in rs),
                  "best_seconds_per_step": min(r["best_seconds_per_step"] for r in rs),
                  "first_step_s": min(r["first_step_s"] for r in rs), "probes": len(rs),
                  "steps_timed": sum(r["steps_timed"] for r in rs),
                  "cpu_share": min(r["cpu_share"] for r in rs)}
            for key, rs in found.items()}


# --- choosing the runs -----------------------------------------------------------------------------------

def select_runs(plan, ids: list[str], max_runs: int | None, max_run_flops: float | None) -> tuple[list, list[str]]:
    """The planned runs to train (plan order kept), and notes on what was added or left out."""
    runs, notes = list(plan.runs), []
    if ids:
        chosen = []
        for prefix in ids:
            hits = [r for r in runs if r.run_id.startswith(prefix)]
            if len(hits) != 1:
                known = ", ".join(r.run_id for r in runs)
                raise BadInput(f"--runs: '{prefix}' matches {len(hits)} of the plan's runs ({known})")
            chosen.append(hits[0])
        runs = [r for r in runs if r in chosen]
    if max_run_flops is not None:
        runs = [r for r in runs if r.flops["flops_exact"] * r.work_fraction <= max_run_flops]
        if not runs:
            cheapest = min(r.flops["flops_exact"] * r.work_fraction for r in plan.runs)
            raise BadInput(f"--max-run-flops {max_run_flops:.3g} leaves no run (the cheapest needs {cheapest:.3g})")
    if max_runs is not None and max_runs < len(runs):
        # Spread over model sizes: the cheapest run of evenly spaced shapes, then the cheapest of the rest.
        by_size = sorted(runs, key=lambda r: (r.counts["n_params"], r.flops["flops_exact"]))
        cheapest: dict[str, object] = {}
        for r in by_size:
            cheapest.setdefault(shape_key(r.record(plan.spec)["config"]), r)
        candidates = list(cheapest.values())
        if max_runs <= len(candidates):
            last = len(candidates) - 1
            picks = {0} if max_runs == 1 else {round(i * last / (max_runs - 1)) for i in range(max_runs)}
            kept = [candidates[i] for i in sorted(picks)]
        else:
            rest = sorted((r for r in runs if r not in candidates), key=lambda r: r.flops["flops_exact"])
            kept = candidates + rest[:max_runs - len(candidates)]
        runs = [r for r in runs if r in kept]
    by_id = {r.run_id: r for r in plan.runs}
    for r in list(runs):  # a WSD branch starts from its parent's checkpoint: the parent must train too
        if r.role == "branch" and by_id[r.parent_run_id] not in runs:
            runs.append(by_id[r.parent_run_id])
            notes.append(f"added {r.parent_run_id} ({by_id[r.parent_run_id].label}), the parent of branch {r.run_id}")
    runs = [r for r in plan.runs if r in runs]
    if len(runs) < len(plan.runs):
        notes.append(f"{len(runs)} of the plan's {len(plan.runs)} runs")
    return runs, notes


# --- the measurement -------------------------------------------------------------------------------------

def run_breakdown(directory: Path, probe_s: float, step_flops: float) -> dict:
    """One run's seconds by category, from its attempts.jsonl, summary.json and the time summary.json was
    written (train() returns right after, so its start is that time minus timings.total_s)."""
    from scaling import io

    summary = io.read_json(directory / "summary.json") if (directory / "summary.json").exists() else {}
    attempts = io.read_jsonl(directory / "attempts.jsonl") if (directory / "attempts.jsonl").exists() else []
    starts = [a["time"] for a in attempts if a["event"] == "start"]
    ends = [a["time"] for a in attempts if a["event"] == "end"]
    attempt_s = sum(e - s for s, e in zip(starts, ends))
    timings = summary.get("timings") or {}
    steps = (summary.get("steps") or 0) - (summary.get("resumed_from_step") or 0)
    ideal = steps * probe_s
    row = {"status": summary.get("status"), "steps_trained": steps, "flops_trained": steps * step_flops,
           "attempts": len(starts), "attempt_s": attempt_s, "ideal": ideal}
    if not timings or summary.get("status") != "completed":  # a failed worker: its time is not broken down
        return row | {"other": attempt_s - ideal}
    save, wait = timings["checkpoint_save_s"], timings["checkpoint_wait_s"]
    steps_s = timings["loop_s"] - timings["first_step_s"] - timings["eval_s"] - save
    written = (directory / "summary.json").stat().st_mtime
    process_start = written - timings["total_s"] - starts[-1] if starts else 0.0
    # Compiling the eval step: the first evaluation less a typical later one (or, with one evaluation, less
    # its forward passes estimated from the probe: a third of a train step's FLOPs per sequence).
    evals, first = timings["evals"], timings["eval_first_s"]
    config = summary["config"]
    typical = (timings["eval_s"] - first) / (evals - 1) if evals > 1 else \
        probe_s * config["data"]["val_batches"] * EVAL_BATCH / config["train"]["batch_size"] / 3
    row |= {"steps_s": steps_s, "steps_excess": steps_s - ideal, "compile": timings["first_step_s"],
            "init": timings["init_s"], "eval": timings["eval_s"], "evals": evals, "eval_first_s": first,
            "eval_compile": max(first - typical, 0.0) if evals else 0.0,
            "checkpoint": save + wait, "checkpoint_saves": timings["checkpoint_saves"],
            "setup": timings["setup_s"] - timings["init_s"],
            "other": timings["total_s"] - timings["setup_s"] - timings["loop_s"] - wait,
            "process_start": process_start, "process_exit": attempt_s - timings["total_s"] - process_start,
            "cpu_share": timings["process_cpu_s"] / (process_start + timings["total_s"]),
            "seconds_per_step": steps_s / steps if steps else None}
    return row


def measure(args) -> dict:
    from scaling.errors import ScalingError
    from sweeps import cli as sweep_cli

    t0 = time.perf_counter()
    try:
        spec, plan = sweep_cli._load_plan(args)
        gpus = sweep_cli._local_gpus()
        threads, workers = sweep_cli._parallelism(args, gpus)
    except ScalingError as err:
        raise BadInput(str(err)) from None
    runs, notes = select_runs(plan, args.runs, args.max_runs, args.max_run_flops)
    plan_s = time.perf_counter() - t0

    from sweeps import collector, store
    from sweeps.executors import LocalExecutor, run_sweep
    from sweeps.throughput import step_flops

    records = {r.run_id: r.record(spec) for r in plan.runs}
    sampled = len(runs) < len(plan.runs) and not args.no_extrapolate
    shapes: dict[str, dict] = {}
    shape_flops: dict[str, float] = {}
    for r in plan.runs if sampled else runs:  # to extrapolate, every shape of the plan is probed
        key = shape_key(records[r.run_id]["config"])
        shapes.setdefault(key, records[r.run_id]["config"])
        shape_flops[key] = step_flops(r)
    probes = measure_shapes(shapes, workers, threads, gpus, args.probe_seconds)

    sweep_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="sweep_overhead."))
    if args.compile_cache == "fresh":
        os.environ |= {"JAX_COMPILATION_CACHE_DIR": str(sweep_dir / "xla-cache"),
                       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                       "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    try:
        t0 = time.perf_counter()
        order = sweep_order(runs)
        ordered = [records[r.run_id] for r in order]
        store.write_plan(sweep_dir, Path(args.spec).read_text(), spec.name, str(args.spec), ordered, args.overrides)
        executor = LocalExecutor(workers, threads, gpus)
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            tally = run_sweep(sweep_dir, ordered, executor, retries=args.retries, on_event=progress)
        finally:
            executor.close()
        execute_s = time.perf_counter() - t0
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers_cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        t0 = time.perf_counter()
        collector.collect(sweep_dir)
        collect_s = time.perf_counter() - t0
        # The ideal step time of a shape: its probe's, unless a run of that shape stepped faster (steps,
        # data and logging included), which means the probe was slowed by other load on the machine.
        for key, p in probes.items():
            p["ideal_seconds_per_step"], p["ideal_from"] = p["seconds_per_step"], "probe"
        for r in order:
            key = shape_key(records[r.run_id]["config"])
            in_run = run_breakdown(store.run_dir(sweep_dir, r.run_id), 0.0, 0.0).get("seconds_per_step")
            if in_run and in_run < probes[key]["ideal_seconds_per_step"]:
                probes[key]["ideal_seconds_per_step"], probes[key]["ideal_from"] = in_run, f"run {r.run_id}"
        per_run = []
        for r in order:
            key = shape_key(records[r.run_id]["config"])
            ideal_step = probes[key]["ideal_seconds_per_step"]
            row = run_breakdown(store.run_dir(sweep_dir, r.run_id), ideal_step, step_flops(r))
            per_run.append({"run_id": r.run_id, "label": r.label, "role": r.role, "shape": key,
                            "n_params": r.counts["n_params"], "steps_planned": r.steps,
                            "probe_seconds_per_step": probes[key]["seconds_per_step"],
                            "ideal_seconds_per_step": ideal_step, **row})
    finally:
        if not args.out:
            shutil.rmtree(sweep_dir, ignore_errors=True)

    slots = min(workers, len(runs))  # a run cannot be split over workers
    wall = plan_s + execute_s + collect_s
    breakdown = {name: sum(row.get(name) or 0.0 for row in per_run) for name, _ in CATEGORIES}
    breakdown["idle"] = slots * execute_s - sum(row["attempt_s"] for row in per_run)
    breakdown["sweep_process"] = slots * (plan_s + collect_s)
    extrapolation = extrapolate(plan, per_run, probes, workers, plan_s, collect_s) if sampled else None
    compilation = sum((row.get("compile") or 0) + (row.get("init") or 0) + (row.get("eval_compile") or 0)
                      for row in per_run)
    ideal_total = breakdown["ideal"]
    ideal_wall = ideal_total / slots
    # Slot time in which a worker existed but did not run: mostly other processes holding its CPU.
    lost = max(slots * execute_s - breakdown["idle"] - workers_cpu_s, 0.0)
    return {
        "command": "python bench/sweep_overhead.py " + " ".join(args.argv),
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_end(args.machine),
        "spec": str(args.spec), "sweep": spec.name, "overrides": args.overrides, "workers": workers,
        "threads": threads, "slots": slots, "gpus": gpus, "compile_cache": args.compile_cache,
        "runs_in_plan": len(plan.runs), "runs": len(runs),
        "completed": sum(1 for row in per_run if row["status"] == "completed"),
        "failures": tally.failures, "notes": notes,
        "wall_s": wall, "plan_s": plan_s, "execute_s": execute_s, "collect_s": collect_s,
        "ideal_total_s": ideal_total, "ideal_wall_s": ideal_wall, "overhead": 1 - ideal_wall / wall,
        "target": TARGET, "flops_trained": sum(row["flops_trained"] for row in per_run),
        "worker_seconds": slots * wall,
        "breakdown_s": breakdown, "breakdown_fraction": {k: v / (slots * wall) for k, v in breakdown.items()},
        "workers_cpu_s": workers_cpu_s, "workers_cpu_share": workers_cpu_s / (slots * execute_s),
        "lost_to_other_load_s": lost, "overhead_load_adjusted": 1 - ideal_total / (slots * wall - lost),
        "compilation_s": compilation, "compilation_fraction": compilation / (slots * wall),
        "probes": {key: dict(p, step_flops=shape_flops[key], flops_per_s=shape_flops[key] / p["seconds_per_step"])
                   for key, p in probes.items()},
        "extrapolation": extrapolation, "per_run": per_run, "sweep_dir": str(sweep_dir) if args.out else None,
    }


def sweep_order(runs: list) -> list:
    """The order `scaling sweep run` submits runs in: parents first (branches wait on them), then dearest first."""
    return sorted(runs, key=lambda r: (r.role != "parent", r.role == "branch", -r.flops["flops_exact"]))


def extrapolate(plan, per_run: list[dict], probes: dict[str, dict], workers: int, plan_s: float,
                collect_s: float) -> dict | None:
    """The whole plan's wall time and overhead, estimated from the sampled runs: each unsampled run costs
    the sample's mean fixed cost per run (worker start and exit, set-up, initialisation, compiling the
    train and eval steps) + its ideal time x the sample's ratio of measured to probed step time + its
    evaluations and checkpoints at the sample's cost per evaluation (relative to the probe) and per save;
    sampled runs keep their measured time. The runs are then placed on the worker slots in the sweep's
    order (each starts when a slot frees up), which gives the wall time."""
    import heapq
    import math

    done = [row for row in per_run if row["status"] == "completed" and "init" in row]
    if not done:
        return None
    fixed_keys = ("process_start", "process_exit", "setup", "init", "compile", "eval_compile", "other")
    fixed = sum(sum(row[k] for k in fixed_keys) for row in done) / len(done)
    slow = sum(row["steps_s"] for row in done) / max(sum(row["ideal"] for row in done), 1e-9)

    def eval_model_s(config: dict, probe_s: float) -> float:  # forward passes of one evaluation, from the probe
        return probe_s * config["data"]["val_batches"] * EVAL_BATCH / config["train"]["batch_size"] / 3

    ratios = []
    for row in done:
        if row["evals"]:
            config = next(r for r in plan.runs if r.run_id == row["run_id"]).record(plan.spec)["config"]
            ratios.append((row["eval"] - row["eval_compile"]) / row["evals"]
                          / eval_model_s(config, row["ideal_seconds_per_step"]))
    eval_ratio = sum(ratios) / len(ratios) if ratios else 1.0
    saves = sum(row["checkpoint_saves"] for row in done)
    per_save = sum(row["checkpoint"] for row in done) / saves if saves else 0.0
    measured = {row["run_id"]: row for row in per_run}
    durations, ideal_total = [], 0.0
    for run in sweep_order(list(plan.runs)):
        config = run.record(plan.spec)["config"]
        probe_s = probes[shape_key(config)]["ideal_seconds_per_step"]
        t, every = run.config.train, run.config.checkpoint.every
        first = (run.branch_step or 0) + 1
        trained = t.steps - first + 1
        ideal = trained * probe_s
        ideal_total += ideal
        if run.run_id in measured:
            durations.append(measured[run.run_id]["attempt_s"])
            continue
        evals = sum(1 for step in range(first, t.steps + 1) if step % t.eval_every == 0 or step == t.steps)
        n_saves = 1 + sum(1 for step in range(first, t.steps) if (every and step % every == 0)
                          or step in run.keep_steps)
        durations.append(fixed + ideal * slow + evals * eval_ratio * eval_model_s(config, probe_s)
                         + n_saves * per_save)
    slots = [0.0] * min(workers, len(plan.runs))
    for seconds in durations:
        heapq.heapreplace(slots, slots[0] + seconds)  # the slot that frees first takes the next run
    wall = plan_s + max(slots) + collect_s
    ideal_wall = ideal_total / len(slots)
    return {"runs": len(plan.runs), "wall_s": wall, "ideal_total_s": ideal_total, "ideal_wall_s": ideal_wall,
            "overhead": 1 - ideal_wall / wall if math.isfinite(wall) and wall > 0 else None,
            "assumed": {"fixed_s_per_run": fixed, "step_time_over_probe": slow,
                        "eval_time_over_probe_estimate": eval_ratio, "checkpoint_s_per_save": per_save}}


def machine_end(info: dict) -> dict:
    return dict(info, load_average_at_end=os.getloadavg())


def progress(event: str, record: dict | None, outcome) -> None:
    """Run starts and ends on stderr (stdout carries the table or the JSON)."""
    if event == "tick":
        return
    took = f" in {outcome.seconds:.1f}s" if outcome is not None and outcome.seconds else ""
    print(f"  {event} {record['run_id']} {record['label']}{took}", file=sys.stderr, flush=True)


# --- output ----------------------------------------------------------------------------------------------

def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def report(out: dict) -> str:
    m = out["machine"]
    lines = [f"sweep '{out['sweep']}' ({out['spec']}): {out['runs']} of {out['runs_in_plan']} runs, "
             f"{out['workers']} worker(s) x {out['threads']} thread(s), compile cache {out['compile_cache']}",
             f"machine: {m['nproc']} CPUs, {m['cpu']}, load average {m['load_average_at_start'][0]:.2f} at start, "
             f"{m['load_average_at_end'][0]:.2f} at end"]
    lines += [f"note: {note}" for note in out["notes"]]
    lines.append("")
    columns = ("process_start", "setup", "init", "compile", "eval", "checkpoint", "steps_excess", "process_exit")
    heads = ("start", "setup", "init", "step1", "eval", "ckpt", "slow", "exit")
    lines.append(f"{'run_id':12} {'label':22} {'steps':>5} {'ms/step':>8} {'ms/step':>8} {'ideal':>6} {'run':>6} "
                 + " ".join(f"{h:>5}" for h in heads) + f" {'CPU':>4}")
    lines.append(f"{'':12} {'':22} {'':>5} {'probe':>8} {'in run':>8} {'s':>6} {'s':>6} "
                 + " ".join(f"{'s':>5}" for _ in heads) + f" {'%':>4}")
    for row in out["per_run"]:
        in_run = row.get("seconds_per_step")
        in_run = "-" if in_run is None else f"{in_run * 1e3:.2f}"
        star = "*" if row["ideal_seconds_per_step"] < row["probe_seconds_per_step"] else " "
        cpu = row.get("cpu_share")
        lines.append(f"{row['run_id']:12} {row['label'][:22]:22} {row['steps_trained']:5d} "
                     f"{row['probe_seconds_per_step'] * 1e3:7.2f}{star} {in_run:>8} {row['ideal']:6.1f} "
                     f"{row['attempt_s']:6.1f} " + " ".join(f"{fmt(row.get(c)):>5}" for c in columns)
                     + f" {'-' if cpu is None else f'{100 * cpu:.0f}':>4}"
                     + ("" if row["status"] == "completed" else f"  {row['status']}"))
    disturbed = [key for key, p in out["probes"].items() if p["ideal_from"] != "probe"]
    if disturbed:
        lines.append(f"* the probe of {len(disturbed)} shape(s) was slower than a run's own steps (other load on the "
                     "machine); their ideal uses the run's step time")
    slots, wall = out["slots"], out["wall_s"]
    lines.append("")
    lines.append(f"where the worker-seconds went ({slots} slot(s) x {wall:.1f} s wall = {slots * wall:.1f} s):")
    for name, text in CATEGORIES:
        lines.append(f"  {text:66} {out['breakdown_s'][name]:8.1f} s {100 * out['breakdown_fraction'][name]:6.1f}%")
    lines.append(f"  the workers got {100 * out['workers_cpu_share']:.0f}% of their slots' CPU time; the probes "
                 f"at least {100 * min(p['cpu_share'] for p in out['probes'].values()):.0f}% of theirs "
                 "(less: other load on the machine)")
    lines.append(f"  of the overhead, compilation (initialiser, train step, eval step): {out['compilation_s']:.1f} s, "
                 f"{100 * out['compilation_fraction']:.1f}%")
    lines.append(f"wall {wall:.1f} s = plan {out['plan_s']:.1f} + runs {out['execute_s']:.1f} + collect "
                 f"{out['collect_s']:.1f}; ideal {out['ideal_wall_s']:.1f} s (sum {out['ideal_total_s']:.1f} s over "
                 f"{slots} slot(s); {out['flops_trained']:.3g} FLOPs)")
    verdict = "meets" if out["overhead"] <= out["target"] else "misses"
    lines.append(f"overhead: {100 * out['overhead']:.1f}% of the wall time ({verdict} the {100 * out['target']:.0f}% "
                 f"target); {100 * out['overhead_load_adjusted']:.1f}% without the {out['lost_to_other_load_s']:.0f} "
                 "worker-seconds in which the workers waited for a CPU (slot time - idle - their CPU time)")
    x = out["extrapolation"]
    if x:
        a = x["assumed"]
        lines.append(f"extrapolated to all {x['runs']} runs of the plan: wall about {x['wall_s'] / 60:.1f} min, ideal "
                     f"{x['ideal_wall_s'] / 60:.1f} min, overhead about {100 * x['overhead']:.0f}% (assuming "
                     f"{a['fixed_s_per_run']:.1f} s fixed per run, steps at {a['step_time_over_probe']:.2f}x the "
                     f"probe, "
                     f"evaluations at {a['eval_time_over_probe_estimate']:.2f}x their probe estimate, "
                     f"{a['checkpoint_s_per_save']:.2f} s per checkpoint)")
    if out["failures"]:
        lines += [f"failed {run_id}: {error}" for run_id, error in out["failures"].items()]
    if out["sweep_dir"]:
        lines.append(f"sweep directory: {out['sweep_dir']}")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Usage examples and what is measured: see the module docstring.")
    parser.add_argument("spec", nargs="?", default="sweeps/quickstart.toml", metavar="SPEC",
                        help="sweep spec (default sweeps/quickstart.toml)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override a spec key, as `scaling sweep run --set`")
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default as `scaling sweep run`)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run (default 1 on CPU)")
    parser.add_argument("--out", default=None, metavar="SWEEP_DIR",
                        help="sweep directory to create and keep (must not exist or be empty); default a "
                             "temporary one, removed at the end")
    parser.add_argument("--runs", default="", metavar="IDS", help="comma-separated run ids (or unique prefixes)")
    parser.add_argument("--max-runs", type=int, default=None, metavar="N",
                        help="at most N runs, spread over the model sizes (the cheapest run of each chosen size)")
    parser.add_argument("--max-run-flops", type=float, default=None, metavar="F",
                        help="only runs that train at most F FLOPs (flops_exact)")
    parser.add_argument("--compile-cache", choices=("fresh", "shared"), default="fresh",
                        help="workers' XLA compilation cache: a fresh empty one (default, a first sweep) or the "
                             "usual shared one")
    parser.add_argument("--probe-seconds", type=float, default=3.0,
                        help="seconds of timed steps per shape in the throughput probe (default 3)")
    parser.add_argument("--no-extrapolate", action="store_true",
                        help="with a subset of the runs, do not probe the other shapes nor estimate the whole plan")
    parser.add_argument("--retries", type=int, default=0, help="extra attempts for a failed run (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # internal: the probe child process
    parser.add_argument("--cores", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(argv)
    args.sweep_command = "run"  # sweeps.cli._load_plan plans the sweep as `scaling sweep run` does
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if args.probe is not None:
        args.threads = args.threads or 1
        return args
    for name in ("workers", "threads", "max_runs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.max_run_flops is not None and not args.max_run_flops > 0:
        raise BadInput(f"--max-run-flops must be > 0, got {args.max_run_flops}")
    if not args.probe_seconds > 0:
        raise BadInput(f"--probe-seconds must be > 0, got {args.probe_seconds}")
    if args.retries < 0:
        raise BadInput(f"--retries must be >= 0, got {args.retries}")
    if not Path(args.spec).is_file():
        raise BadInput(f"spec {args.spec} is not a file")
    if args.out and Path(args.out).exists() and (not Path(args.out).is_dir() or any(Path(args.out).iterdir())):
        raise BadInput(f"--out {args.out} exists and is not an empty directory: the runs would be skipped or resumed, "
                       "not timed; choose a new directory")
    return args


def main(argv: list[str] | None = None) -> int:
    from scaling import xla_defaults

    xla_defaults.apply()  # the settings every entry point applies before JAX starts
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv)
        if args.probe is not None:
            return probe_main(args)
        from scaling import hardware

        args.machine = hardware.machine_facts()
        out = measure(args)
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ProbeFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(report(out))
    return 0 if out["completed"] == out["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
