import json
from functools import partial

import jax
import numpy as np
import pytest

from conftest import TINY, run_python
from scaling.config import load, resolve
from scaling.data import prepare_dataset, train_batch
from scaling.step import compile_train_step, init_state, make_mesh, param_sharding, shard_batch

TRAIN_AND_PRINT_LOSSES = """
import json, sys, tempfile
import jax
from scaling.config import load
from scaling.io import read_jsonl
from scaling.training import train
overrides = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {overrides!r}
run_dir = tempfile.mkdtemp()
train(load(None, overrides), run_dir, quiet=True)
print(json.dumps({{"devices": jax.device_count(),
                   "losses": [r["loss"] for r in read_jsonl(run_dir + "/metrics.jsonl")]}}))
"""


def losses_on(devices: int, overrides: list[str]) -> list[float]:
    result = run_python(TRAIN_AND_PRINT_LOSSES.format(overrides=overrides), devices=devices)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == devices
    return out["losses"]


def test_two_host_devices_give_the_same_losses_as_one():
    overrides = TINY + ["train.steps=8", "train.eval_every=8"]
    one, two = losses_on(1, overrides), losses_on(2, overrides)
    assert len(one) == len(two) == 8
    np.testing.assert_allclose(one, two, rtol=2e-5)
    fsdp = losses_on(2, overrides + ["train.fsdp=true"])
    np.testing.assert_allclose(one, fsdp, rtol=2e-5)


def state_and_batch(overrides):
    config = load(None, TINY + overrides)
    ds = prepare_dataset(config.data, config.train.seq_len)
    config = resolve(config, ds.vocab_size)
    mesh = make_mesh()
    graphdef, state = init_state(config, mesh)
    step = partial(compile_train_step(config, graphdef, state, mesh), lr=np.float32(config.train.lr))
    batch = shard_batch(train_batch(ds, 0, 0, config.train.batch_size, config.train.seq_len), mesh)
    return step, state, batch


def test_gradient_accumulation_matches_one_big_batch():
    step, state, batch = state_and_batch([])
    step_acc, state_acc, batch_acc = state_and_batch(["train.grad_accum=4"])
    new, metrics = step(state, batch)
    new_acc, metrics_acc = step_acc(state_acc, batch_acc)
    assert float(metrics["loss"]) == pytest.approx(float(metrics_acc["loss"]), rel=1e-5)
    assert float(metrics["grad_norm"]) == pytest.approx(float(metrics_acc["grad_norm"]), rel=1e-4)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(new_acc.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_step_advances_state_and_reports_metrics():
    step, state, batch = state_and_batch([])
    before = [np.array(x) for x in jax.tree.leaves(state.params)]
    new, metrics = step(state, batch)
    assert int(new.step) == 1
    assert set(metrics) == {"loss", "grad_norm", "lr"}
    assert any(not np.array_equal(a, np.array(b)) for a, b in zip(before, jax.tree.leaves(new.params)))


def test_fsdp_sharding_rule():
    mesh = jax.make_mesh((1,), ("data",))
    assert param_sharding((8, 4), mesh, fsdp=True).spec == jax.sharding.PartitionSpec()


def test_one_compiled_step_serves_every_lr_schedule_and_length():
    """The lr is an input, so runs of one shape lower to the same program (and the persistent
    compilation cache compiles it once per shape)."""
    mesh = make_mesh()
    programs = []
    for overrides in ([], ["train.lr=1e-2", "train.steps=37", "train.warmup_steps=5", "train.schedule=wsd"]):
        config = resolve(load(None, TINY + overrides), 256)
        graphdef, state = init_state(config, mesh)
        batch = shard_batch(np.zeros((config.train.batch_size, config.train.seq_len + 1), np.int32), mesh)
        step = compile_train_step(config, graphdef, state, mesh)
        programs.append(step.lower(state, batch, np.float32(config.train.lr)).as_text())
    assert programs[0] == programs[1]
    # ... but not a shape-blind one: another batch size is another program.
    config = resolve(load(None, TINY + ["train.batch_size=4"]), 256)
    graphdef, state = init_state(config, mesh)
    batch = shard_batch(np.zeros((4, config.train.seq_len + 1), np.int32), mesh)
    assert compile_train_step(config, graphdef, state, mesh).lower(state, batch, np.float32(0.1)).as_text() != programs[0]


def test_step_applies_the_lr_it_is_given():
    step, state, batch = state_and_batch([])
    before = [np.array(x) for x in jax.tree.leaves(state.params)]
    new, metrics = step(state, batch, lr=np.float32(0.0))
    assert float(metrics["lr"]) == 0.0
    # AdamW's update and decay both scale with the lr: at lr 0 nothing moves.
    assert all(np.array_equal(a, b) for a, b in zip(before, jax.tree.leaves(new.params)))


def test_grad_clip_zero_turns_clipping_off():
    """grad_clip = 0 means no clipping (nanoGPT's convention), not clipping every gradient to norm 0."""
    import dataclasses

    import jax.numpy as jnp

    from scaling.config import TrainConfig
    from scaling.step import make_optimizer
    params = {"w": jnp.ones((2, 2))}
    grads = {"w": jnp.full((2, 2), 100.0)}
    for clip, expect_moved in ((0.0, True), (1.0, True)):
        opt = make_optimizer(dataclasses.replace(TrainConfig(), grad_clip=clip, lr=1e-2, warmup_steps=0, steps=10))
        updates, _ = opt.update(grads, opt.init(params), params)
        assert bool(jnp.all(updates["w"] != 0)) is expect_moved
    raw = make_optimizer(dataclasses.replace(TrainConfig(), grad_clip=0.0, lr=1e-2, warmup_steps=0, steps=10))
    clipped = make_optimizer(dataclasses.replace(TrainConfig(), grad_clip=1e-6, lr=1e-2, warmup_steps=0, steps=10))
    small = {"w": jnp.full((2, 2), 1e-3)}
    u_raw, _ = raw.update(small, raw.init(params), params)
    u_clip, _ = clipped.update(small, clipped.init(params), params)
    assert not bool(jnp.allclose(u_raw["w"], u_clip["w"]))  # Adam's epsilon shows the clipping


def test_the_optimizer_state_holds_the_lr_each_step_is_given():
    """The lr is an optax.inject_hyperparams hyperparameter: init_state stores train.lr, each step its own."""
    step, state, batch = state_and_batch(["train.lr=0.5"])
    assert float(state.opt_state.hyperparams["learning_rate"]) == 0.5
    new, _ = step(state, batch, lr=np.float32(0.25))
    assert float(new.opt_state.hyperparams["learning_rate"]) == 0.25
