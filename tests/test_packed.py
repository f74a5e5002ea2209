import json
import signal

import numpy as np
import pytest

from conftest import TINY, run_python
from scaling.config import load
from scaling.errors import ConfigError, DivergedError
from scaling.io import read_json, read_jsonl
from scaling.packed import checkpoint_steps, train_packed, trim_to_common_step
from scaling.training import train

# 12 steps, an evaluation at 6 and 12, checkpoints at 4 and 8 (and the final one at 12).
PACKED = TINY + ["train.steps=12", "train.eval_every=6", "checkpoint.every=4", "checkpoint.keep=3"]
MEMBERS = [["train.seed=0", "train.lr=3e-3"], ["train.seed=1", "train.lr=1e-3"], ["train.seed=2", "train.lr=1e-2"]]


def configs(k: int = 3, extra=()):
    return [load(None, PACKED + member + list(extra)) for member in MEMBERS[:k]]


def losses(run_dir, key="loss"):
    return [row[key] for row in read_jsonl(run_dir / "metrics.jsonl") if key in row]


def test_each_member_writes_the_files_and_losses_of_its_own_single_run(tmp_path):
    members = configs()
    summaries = train_packed(members, [tmp_path / f"packed{k}" for k in range(3)])
    assert [s["status"] for s in summaries] == ["completed"] * 3
    for k, config in enumerate(members):
        packed_dir, single_dir = tmp_path / f"packed{k}", tmp_path / f"single{k}"
        single = train(config, single_dir, quiet=True)
        assert summaries[k]["run_id"] == single["run_id"]  # the same resolved config, so the same run
        assert sorted(p.name for p in packed_dir.iterdir()) == sorted(p.name for p in single_dir.iterdir())
        assert checkpoint_steps(packed_dir) == checkpoint_steps(single_dir) == [4, 8, 12]
        packed_rows, single_rows = read_jsonl(packed_dir / "metrics.jsonl"), read_jsonl(single_dir / "metrics.jsonl")
        assert [r["step"] for r in packed_rows] == [r["step"] for r in single_rows] == list(range(1, 13))
        assert [r["lr"] for r in packed_rows] == [r["lr"] for r in single_rows]  # each member's own schedule
        # float32 tolerance: the batched matmuls may round differently from the unbatched ones
        np.testing.assert_allclose(losses(packed_dir), losses(single_dir), rtol=1e-5)
        np.testing.assert_allclose(losses(packed_dir, "val_loss"), losses(single_dir, "val_loss"), rtol=1e-5)
        assert summaries[k]["final_val_loss"] == pytest.approx(single["final_val_loss"], rel=1e-5)
        assert summaries[k]["steps"] == single["steps"] == 12
    # the members really differ (their own seeds, lrs and batches)
    assert len({tuple(losses(tmp_path / f"packed{k}")) for k in range(3)}) == 3


def test_a_completed_member_is_not_trained_again(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    first = train(configs(1)[0], dirs[0], quiet=True)
    before = (dirs[0] / "metrics.jsonl").read_text()
    summaries = train_packed(configs(2), dirs)
    assert summaries[0] == first and (dirs[0] / "metrics.jsonl").read_text() == before
    assert summaries[1]["status"] == "completed" and [r["step"] for r in read_jsonl(dirs[1] / "metrics.jsonl")] \
        == list(range(1, 13))


def test_a_diverged_member_is_finished_as_diverged_and_the_others_train_on(tmp_path):
    members = [load(None, PACKED + ["train.seed=0", "train.lr=3e-3"]),
               load(None, PACKED + ["train.seed=1", "train.lr=1e30"])]
    summaries = train_packed(members, [tmp_path / "ok", tmp_path / "bad"])
    assert summaries[0]["status"] == "completed" and summaries[0]["steps"] == 12
    assert summaries[1]["status"] == "diverged" and "non-finite training loss" in summaries[1]["error"]
    assert read_json(tmp_path / "bad" / "summary.json")["status"] == "diverged"
    bad_rows = read_jsonl(tmp_path / "bad" / "metrics.jsonl")
    assert bad_rows[-1]["loss"] is None and len(bad_rows) < 12  # non-finite (written as null), no line after it
    with pytest.raises(DivergedError):  # the member's run alone diverges at the same step, with the same log
        train(members[1], tmp_path / "bad_single", quiet=True)
    assert [r["step"] for r in read_jsonl(tmp_path / "bad_single" / "metrics.jsonl")] == [r["step"] for r in bad_rows]
    assert read_json(tmp_path / "bad_single" / "summary.json")["steps"] == summaries[1]["steps"]
    train(members[0], tmp_path / "single", quiet=True)
    np.testing.assert_allclose(losses(tmp_path / "ok"), losses(tmp_path / "single"), rtol=1e-5)


def test_members_that_may_not_be_packed_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="differ from replica 0 in train.steps|differs from replica 0 in train.steps"):
        train_packed([configs(1)[0], load(None, PACKED + ["train.steps=13"])], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match=r"differs from replica 0 in its \[data\] section"):
        train_packed([configs(1)[0], load(None, PACKED + ["data.val_batches=3"])], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match="same directory is named twice"):
        train_packed(configs(2), [tmp_path / "a", tmp_path / "a"])
    assert not (tmp_path / "a").exists()  # refused before anything is written


def test_newer_checkpoints_that_not_every_member_has_are_dropped(tmp_path):
    for name, steps in (("a", [4, 8]), ("b", [4])):
        for step in steps:
            (tmp_path / name / "checkpoints" / str(step)).mkdir(parents=True)
    assert trim_to_common_step([tmp_path / "a", tmp_path / "b"]) == 4
    assert checkpoint_steps(tmp_path / "a") == checkpoint_steps(tmp_path / "b") == [4]
    (tmp_path / "c").mkdir()
    assert trim_to_common_step([tmp_path / "a", tmp_path / "c"]) == 0 and checkpoint_steps(tmp_path / "a") == []


@pytest.mark.parametrize("kill_at_save", [2, 3], ids=["after-a-whole-checkpoint", "between-two-members-saves"])
def test_packed_group_resumes_after_sigkill_with_the_losses_of_an_uninterrupted_pack(tmp_path, kill_at_save):
    """A real SIGKILL in a fresh process once `kill_at_save` member checkpoints are on disk: 2 is both members
    at step 4; 3 is member 0 at step 8 while member 1 has only step 4 (the pack resumes from 4)."""
    members = configs(2)
    killed_dirs = [tmp_path / f"killed{k}" for k in range(2)]
    code = f"""
import os, signal
from scaling import packed
from scaling.config import load
real_save, saves = packed._timed_save, []
def save(a, checkpoints, step, state):
    real_save(a, checkpoints, step, state)
    checkpoints.manager.wait_until_finished()  # the save is on disk before the kill
    saves.append(step)
    if len(saves) == {kill_at_save}:
        os.kill(os.getpid(), signal.SIGKILL)
packed._timed_save = save
packed.train_packed([load(None, {PACKED + MEMBERS[0]!r}), load(None, {PACKED + MEMBERS[1]!r})],
                    {[str(d) for d in killed_dirs]!r})
"""
    killed = run_python(code)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (killed_dirs[0] / "summary.json").exists()
    resumed = train_packed(members, killed_dirs)
    whole = train_packed(members, [tmp_path / f"whole{k}" for k in range(2)])
    for k in range(2):
        rows = read_jsonl(killed_dirs[k] / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(1, 13))  # no step logged twice, none missing
        assert losses(killed_dirs[k]) == losses(tmp_path / f"whole{k}")  # exactly
        assert losses(killed_dirs[k], "val_loss") == losses(tmp_path / f"whole{k}", "val_loss")
        assert resumed[k]["resumed_from_step"] == 4 and resumed[k]["final_val_loss"] == whole[k]["final_val_loss"]
    assert json.loads((killed_dirs[0] / "summary.json").read_text())["steps"] == 12


def test_a_pack_too_big_for_memory_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from scaling import packed
    from scaling.data import prepare_dataset
    from scaling.config import resolve
    from scaling.training import estimated_bytes

    config = configs(1)[0]
    one = estimated_bytes(resolve(config, prepare_dataset(config.data, 32).vocab_size), 1)
    monkeypatch.setattr(packed, "available_bytes", lambda: (int(2.5 * one), "a test"))  # room for 2 members
    with pytest.raises(ConfigError, match="these 3 packed runs need at least .* pack fewer runs"):
        train_packed(configs(3), [tmp_path / f"m{k}" for k in range(3)])
    assert not any(tmp_path.iterdir())
    assert [s["status"] for s in train_packed(configs(2), [tmp_path / f"m{k}" for k in range(2)])] == ["completed"] * 2


def test_a_stop_signal_checkpoints_every_member_and_the_rerun_matches_an_uninterrupted_pack(tmp_path):
    """SIGTERM in a fresh process after step 6's metrics are read: every member checkpoints the step in
    flight, writes a 'preempted' summary, and the process raises PreemptedError (the worker's exit 75)."""
    stopped_dirs = [tmp_path / f"stopped{k}" for k in range(2)]
    code = f"""
import os, signal, sys
from scaling import packed
from scaling.config import load
from scaling.errors import PreemptedError
real_handle = packed._handle
def handle(members, pending, *args, **kwargs):
    if pending[0] == 6:
        os.kill(os.getpid(), signal.SIGTERM)
    return real_handle(members, pending, *args, **kwargs)
packed._handle = handle
try:
    packed.train_packed([load(None, {PACKED + MEMBERS[0]!r}), load(None, {PACKED + MEMBERS[1]!r})],
                        {[str(d) for d in stopped_dirs]!r})
except PreemptedError:
    sys.exit(75)
"""
    stopped = run_python(code)
    assert stopped.returncode == 75, stopped.stderr[-2000:]
    for directory in stopped_dirs:
        summary = read_json(directory / "summary.json")
        assert summary["status"] == "preempted" and summary["steps"] in (7, 8)  # the step in flight, or the next
        assert checkpoint_steps(directory)[-1] == summary["steps"]
    resumed = train_packed(configs(2), stopped_dirs)
    whole = train_packed(configs(2), [tmp_path / f"whole{k}" for k in range(2)])
    for k in range(2):
        assert [r["step"] for r in read_jsonl(stopped_dirs[k] / "metrics.jsonl")] == list(range(1, 13))
        assert losses(stopped_dirs[k]) == losses(tmp_path / f"whole{k}")
        assert resumed[k]["status"] == "completed" and resumed[k]["final_val_loss"] == whole[k]["final_val_loss"]
