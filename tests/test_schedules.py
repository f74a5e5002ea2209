import numpy as np
import pytest

from scaling.config import TrainConfig
from scaling.schedules import decay_steps, lr_table, make_schedule


def values(**fields) -> np.ndarray:
    train = TrainConfig(lr=1.0, min_lr_ratio=0.1, **fields)
    schedule = make_schedule(train)
    return np.array([float(schedule(i)) for i in range(train.steps)])


def test_warmup_is_linear_and_starts_above_zero():
    lrs = values(steps=20, warmup_steps=4, schedule="constant")
    np.testing.assert_allclose(lrs[:4], [0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    assert np.all(lrs[4:] == 1.0)


def test_cosine_decays_to_min_at_last_step():
    lrs = values(steps=50, warmup_steps=5, schedule="cosine")
    assert lrs[5] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, rel=1e-5)
    assert np.all(np.diff(lrs[5:]) <= 1e-7)


@pytest.mark.parametrize("shape", ["linear", "1-sqrt"])
def test_wsd_is_stable_then_cools_down(shape):
    lrs = values(steps=100, warmup_steps=10, schedule="wsd", decay_fraction=0.2, decay_shape=shape)
    assert np.all(lrs[10:80] == 1.0)
    assert lrs[-1] == pytest.approx(0.1, rel=1e-5)
    assert np.all(np.diff(lrs[80:]) < 0)
    midpoint = lrs[80 + 10]
    expected = 0.1 + 0.9 * (1 - np.sqrt(10 / 19)) if shape == "1-sqrt" else 0.1 + 0.9 * (1 - 10 / 19)
    assert midpoint == pytest.approx(expected, rel=1e-5)


def test_wsd_without_decay_is_constant():
    lrs = values(steps=30, warmup_steps=0, schedule="wsd", decay_fraction=0.0)
    assert np.all(lrs == 1.0)


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "constant"])
def test_lr_table_is_the_schedule_at_every_step(schedule):
    train = TrainConfig(steps=50, warmup_steps=5, lr=3e-3, schedule=schedule, min_lr_ratio=0.1, decay_fraction=0.2)
    table = lr_table(train)
    assert table.shape == (50,) and table.dtype == np.float32
    expected = [float(make_schedule(train)(step)) for step in range(50)]
    np.testing.assert_allclose(table, expected, rtol=1e-6)


@pytest.mark.parametrize("steps, fraction", [(100, 0.2), (7, 0.2), (5, 0.01), (40, 0.5)])
def test_decay_steps_is_where_the_wsd_schedule_leaves_its_peak(steps, fraction):
    """sweeps.planner branches a wsd run at steps - decay_steps: up to there the lr must be the peak."""
    lrs = values(steps=steps, warmup_steps=0, schedule="wsd", decay_fraction=fraction)
    start = steps - decay_steps(steps, fraction)
    assert 1 <= decay_steps(steps, fraction) < steps and decay_steps(steps, 0.0) == 0
    assert np.all(lrs[:start + 1] == 1.0) and np.all(lrs[start + 1:] < 1.0)
