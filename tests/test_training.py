import json
import math
import signal

import pytest

from conftest import run_python
from scaling.config import load
from scaling.errors import ConfigError, DivergedError
from scaling.io import read_json, read_jsonl
from scaling.training import train
from sweeps import store


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_at(step_to_stop: int):
    def on_step(step):
        if step == step_to_stop:
            raise Interrupt()
    return on_step


def test_loss_falls_and_outputs_are_complete(tmp_path, tiny_overrides):
    summary = train(load(None, tiny_overrides + ["train.steps=40", "train.eval_every=20"]), tmp_path, quiet=True)
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 41))
    first, last = records[0]["loss"], sum(r["loss"] for r in records[-5:]) / 5
    assert first == pytest.approx(math.log(256), rel=0.05)  # starts near uniform over bytes
    assert last < first - 1.0
    for key in ("step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "mfu",
                "flops_6nd", "flops_6nd_nonembed", "flops_exact"):
        assert key in records[-1]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [20, 40]
    assert evals[1]["val_loss"] < evals[0]["val_loss"]
    on_disk = read_json(tmp_path / "summary.json")
    assert on_disk["status"] == "completed"
    assert on_disk["tokens"] == 40 * 8 * 32
    assert on_disk["flops_exact"] == on_disk["flops_per_token"]["flops_exact"] * on_disk["tokens"]
    assert on_disk["final_val_loss"] == evals[1]["val_loss"]
    assert on_disk["val_bpb"] == pytest.approx(on_disk["final_val_loss"] / math.log(2))  # byte tokenizer
    for key in ("n_params", "n_params_embedding", "n_params_nonembedding", "unique_tokens", "final_train_loss",
                "wall_time_s", "device_kind", "versions", "corpus", "config"):
        assert on_disk[key] is not None, key
    assert on_disk["corpus"]["files"] > 100
    assert (tmp_path / "config.toml").exists() and (tmp_path / "tokenizer.json").exists()
    assert summary == on_disk


def test_interrupted_and_resumed_run_matches_uninterrupted_bitwise(tmp_path, tiny_overrides):
    overrides = tiny_overrides + ["train.steps=20", "checkpoint.every=5", "train.schedule=wsd"]
    straight = tmp_path / "straight"
    train(load(None, overrides), straight, quiet=True)
    resumed = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        train(load(None, overrides), resumed, on_step=interrupt_at(13), quiet=True)
    assert not (resumed / "summary.json").exists()
    summary = train(load(None, overrides), resumed, quiet=True)
    assert summary["resumed_from_step"] == 10
    a, b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(resumed / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 21))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]  # bitwise: exact float equality
    assert [r.get("val_loss") for r in a] == [r.get("val_loss") for r in b]


def test_completed_run_is_not_retrained(tmp_path, tiny_overrides):
    config = load(None, tiny_overrides + ["train.steps=4"])
    first = train(config, tmp_path, quiet=True)
    again = train(config, tmp_path, quiet=True)
    assert again == first
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 4


def test_directory_holding_another_run_is_refused(tmp_path, tiny_overrides):
    train(load(None, tiny_overrides + ["train.steps=2"]), tmp_path, quiet=True)
    with pytest.raises(ConfigError, match="holds run"):
        train(load(None, tiny_overrides + ["train.steps=3"]), tmp_path, quiet=True)


def test_divergence_stops_with_status(tmp_path, tiny_overrides):
    overrides = tiny_overrides + ["train.steps=30", "train.lr=1e12", "train.grad_clip=1e12", "train.warmup_steps=0",
                                  "train.weight_decay=0.0"]
    with pytest.raises(DivergedError):
        train(load(None, overrides), tmp_path, quiet=True)
    summary = read_json(tmp_path / "summary.json")
    assert summary["status"] == "diverged"
    assert "non-finite" in summary["error"]
    assert summary["steps"] < 30


def test_epochs_warning_when_budget_exceeds_data(tmp_path, tiny_overrides, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"doc{i}.txt").write_text(f"document {i} " * 200)
    summary = train(load(None, tiny_overrides + [f"data.source={corpus}", "train.steps=30", "data.val_fraction=0.3"]),
                    tmp_path / "run", quiet=True)
    assert summary["epochs"] > 1
    assert "epochs" in capsys.readouterr().err


def _drop_final_meta(run_dir, steps):
    """As a checkpoint written before the meta carried the final losses."""
    meta_file = run_dir / "checkpoints" / str(steps) / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k not in ("recent_losses", "val_loss")}))


def _drop_final_val_row(run_dir, steps):
    path = run_dir / "metrics.jsonl"
    rows = [{k: v for k, v in r.items() if r["step"] != steps or k not in ("val_loss", "val_bpb")}
            for r in read_jsonl(path)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


DAMAGE = {
    "summary deleted": lambda run, steps: (run / "summary.json").unlink(),
    "summary cut short": lambda run, steps: (run / "summary.json").write_text('{"status": "compl'),
    "failed stub from the sweep": lambda run, steps: ((run / "summary.json").unlink(), store.record_failure(
        run, {"run_id": read_json(run / "config.json")["run_id"]}, "worker exited with code -9")),
    "old meta": lambda run, steps: ((run / "summary.json").unlink(), _drop_final_meta(run, steps)),
    "old meta, no final val row": lambda run, steps: ((run / "summary.json").unlink(), _drop_final_meta(run, steps),
                                                      _drop_final_val_row(run, steps)),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_run_stopped_after_its_final_checkpoint_is_finished_not_retrained(damage, tmp_path, tiny_overrides):
    """Stopped between the final checkpoint and summary.json (or with the summary lost or replaced by a failed
    stub), a rerun writes the summary from the final checkpoint: same final losses, nothing trained or saved."""
    steps = 12
    config = load(None, tiny_overrides + [f"train.steps={steps}", "train.eval_every=5", "checkpoint.every=4"])
    run = tmp_path / "run"
    first = train(config, run, quiet=True)
    DAMAGE[damage](run, steps)
    metrics = (run / "metrics.jsonl").read_text()
    saved = sorted(p.name for p in (run / "checkpoints").iterdir())
    summary = train(config, run, quiet=True)
    assert summary["status"] == "completed" and summary == read_json(run / "summary.json")
    for key in ("final_train_loss", "final_val_loss", "val_bpb", "steps", "tokens", "flops_exact", "n_params"):
        assert summary[key] == first[key], key
    assert summary["resumed_from_step"] == steps
    assert (run / "metrics.jsonl").read_text() == metrics
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == saved


def test_run_killed_between_final_checkpoint_and_summary_resumes(tmp_path, tiny_overrides):
    """A real SIGKILL, in a fresh process, just before summary.json is written."""
    run = tmp_path / "run"
    overrides = tiny_overrides + ["train.steps=8", "train.eval_every=4"]
    code = f"""
import os, signal
from scaling import io
from scaling.config import load
from scaling.training import train
real_write_json = io.write_json
def write_json(path, obj):
    if str(path).endswith("summary.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_write_json(path, obj)
io.write_json = write_json
train(load(None, {overrides!r}), {str(run)!r}, quiet=True)
"""
    killed = run_python(code)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (run / "checkpoints" / "8").is_dir() and not (run / "summary.json").exists()
    summary = train(load(None, overrides), run, quiet=True)
    rows = read_jsonl(run / "metrics.jsonl")
    assert summary["status"] == "completed" and summary["steps"] == 8
    assert summary["final_train_loss"] == pytest.approx(sum(r["loss"] for r in rows[-8:]) / 8, rel=1e-12)
    assert summary["final_val_loss"] == rows[-1]["val_loss"]


def test_full_disk_inside_an_orbax_save_is_read_as_the_os_error():
    """What orbax raised when a 3 MB tmpfs filled during a save (TensorStore's ValueError, not an OSError)."""
    from scaling.training import as_os_error

    message = ('RESOURCE_EXHAUSTED: Error writing local file "/runs/a/checkpoints/7.orbax-checkpoint-tmp/state.orbax-'
               'checkpoint-tmp/_sharding": Failed writing: "/runs/a/checkpoints/7.orbax-checkpoint-tmp/x.__lock": '
               "Failed to write 7655 bytes to file 5: No space left on device [os_error_code='28']")
    err = as_os_error(ValueError(message))
    assert err.errno == 28 and err.strerror == "No space left on device"
    assert err.filename == "/runs/a/checkpoints (saving the checkpoint of step 7)"
    assert as_os_error(ValueError("shapes do not match")) is None


def test_directory_of_a_run_that_failed_before_any_progress_is_taken_over(tmp_path, tiny_overrides, capsys):
    """A run that failed during setup (no checkpoint, no metrics) must not block the corrected rerun."""
    (tmp_path / "config.json").write_text(json.dumps({"run_id": "abc123", "config": {}}))
    (tmp_path / "summary.json").write_text(json.dumps({"status": "failed", "run_id": "abc123", "error": "boom"}))
    summary = train(load(None, tiny_overrides + ["train.steps=2"]), tmp_path, quiet=True)
    assert summary["status"] == "completed" and summary["run_id"] != "abc123"
    assert "holds run abc123, which has no checkpoint and no metrics" in capsys.readouterr().err
