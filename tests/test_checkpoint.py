import json
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.checkpoint import Checkpoints, abstract_like, state_checksum
from scaling.config import load
from scaling.io import read_jsonl
from scaling.training import train


def toy_state(value: float):
    return {"w": jnp.full((4, 3), value, jnp.float32), "step": jnp.asarray(int(value), jnp.int32)}


def corrupt_arrays(step_dir):
    """Flip a block of bytes in the middle of every array data file of a saved state."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files
    for path in files:
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 64)):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))


def test_save_restore_round_trip_and_keep_last_k(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep=2)
    for step in (1, 2, 3):
        checkpoints.save(step, toy_state(step), {"step": step})
    checkpoints.close()  # waits for the asynchronous saves, as a run does before it exits
    checkpoints = Checkpoints(tmp_path, keep=2)  # a resumed run reopens the directory
    assert checkpoints.steps() == [2, 3]
    step, state, meta = checkpoints.restore_latest(abstract_like(toy_state(0)))
    assert step == 3 and meta["step"] == 3
    np.testing.assert_array_equal(state["w"], toy_state(3)["w"])
    checkpoints.close()


def test_corrupted_checkpoint_falls_back_to_older_one(tmp_path, capsys):
    checkpoints = Checkpoints(tmp_path, keep=3)
    for step in (1, 2):
        checkpoints.save(step, toy_state(step), {"step": step})
    checkpoints.close()
    corrupt_arrays(tmp_path / "2")
    step, state, _ = Checkpoints(tmp_path, keep=3).restore_latest(abstract_like(toy_state(0)))
    assert step == 1
    np.testing.assert_array_equal(state["w"], toy_state(1)["w"])
    assert "step 2 could not be restored" in capsys.readouterr().err


def test_no_usable_checkpoint_means_fresh_start(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep=2)
    checkpoints.save(1, toy_state(1), {})
    checkpoints.close()
    corrupt_arrays(tmp_path / "1")
    assert Checkpoints(tmp_path, keep=2).restore_latest(abstract_like(toy_state(0))) is None


def test_checksum_sees_single_bit_flip():
    state = toy_state(1.0)
    flipped = dict(state, w=state["w"].at[2, 1].set(jnp.nextafter(1.0, 2.0)))
    assert state_checksum(state) != state_checksum(flipped)
    assert state_checksum(state) == state_checksum(jax.tree.map(jnp.copy, state))


def test_run_resumes_from_older_checkpoint_when_newest_is_corrupt(tmp_path, tiny_overrides):
    overrides = tiny_overrides + ["train.steps=12", "checkpoint.every=4", "checkpoint.keep=3"]
    straight = tmp_path / "straight"
    train(load(None, overrides), straight, quiet=True)
    run = tmp_path / "run"

    def stop(step):
        if step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load(None, overrides), run, on_step=stop, quiet=True)
    corrupt_arrays(run / "checkpoints" / "8")
    summary = train(load(None, overrides), run, quiet=True)
    assert summary["resumed_from_step"] == 4
    assert [r["loss"] for r in read_jsonl(run / "metrics.jsonl")] == [r["loss"] for r in read_jsonl(straight / "metrics.jsonl")]


def test_checksum_mismatch_is_detected(tmp_path, capsys):
    checkpoints = Checkpoints(tmp_path, keep=3)
    checkpoints.save(1, toy_state(1), {})
    checkpoints.save(2, toy_state(2), {})
    checkpoints.close()
    meta_file = tmp_path / "2" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta["checksum"][0] = (meta["checksum"][0] + 1) % 2**32  # as if the stored array had changed
    meta_file.write_text(json.dumps(meta))
    step, _, _ = Checkpoints(tmp_path, keep=3).restore_latest(abstract_like(toy_state(0)))
    assert step == 1
    assert "checksum does not match" in capsys.readouterr().err
    assert (tmp_path.with_name(tmp_path.name + ".corrupt") / "2").is_dir()


def test_preserved_steps_survive_keep_last_k(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep=1, preserve=(2,))
    for step in (1, 2, 3, 4):
        checkpoints.save(step, toy_state(step), {"step": step})
    checkpoints.close()
    assert Checkpoints(tmp_path, keep=1).steps() == [2, 4]
