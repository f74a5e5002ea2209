import pytest

from scaling import timing
from scaling.timing import Stopwatch, time_train_step


class FakeClock:
    """perf_counter and process_time that advance only when a fake step runs: timings become exact."""

    def __init__(self, step_s: float, first_s: float):
        self.now, self.step_s, self.first_s, self.calls = 0.0, step_s, first_s, 0

    def read(self) -> float:
        return self.now

    def step(self, state, batch, lr):
        self.now += self.first_s if self.calls == 0 else self.step_s
        self.calls += 1
        return state + 1, {"loss": lr}


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(step_s=0.01, first_s=2.0)
    monkeypatch.setattr(timing.time, "perf_counter", fake.read)
    monkeypatch.setattr(timing.time, "process_time", fake.read)
    return fake


def test_stopwatch_adds_up_each_phase_and_keeps_the_first(clock):
    watch = Stopwatch()
    for seconds in (3.0, 1.0):
        with watch("eval"):
            clock.now += seconds
    watch.add("save", 0.5)
    assert watch.seconds == {"eval": 4.0, "save": 0.5}
    assert watch.calls == {"eval": 2, "save": 1}
    assert watch.first == {"eval": 3.0, "save": 0.5}


def test_stopwatch_times_a_phase_that_raises(clock):
    watch = Stopwatch()
    with pytest.raises(RuntimeError), watch("save"):
        clock.now += 2.0
        raise RuntimeError("disk full")
    assert watch.seconds == {"save": 2.0}


def test_the_first_step_is_timed_apart_and_the_state_threads_through(clock):
    result, state = time_train_step(clock.step, 0, None, 0.1, warmup=2, chunk_steps=5, min_chunks=3)
    assert result.first_step_s == pytest.approx(2.0)
    assert result.steps_timed == 15 and clock.calls == 1 + 2 + 15 == state
    assert result.seconds_per_step == pytest.approx(0.01) == result.best_seconds_per_step
    assert result.cpu_seconds_per_step == pytest.approx(0.01) and result.cpu_share == pytest.approx(1.0)
    assert result.timed_s == pytest.approx(0.15)


def test_chunks_are_sized_from_the_warm_up_and_run_for_min_seconds(clock):
    result, _ = time_train_step(clock.step, 0, None, 0.1, warmup=2, min_seconds=1.0)
    chunk = round(timing.CHUNK_SECONDS / 0.01)
    assert result.steps_timed % chunk == 0
    assert result.timed_s >= 1.0 and result.timed_s - chunk * 0.01 < 1.0  # stops at the first chunk past it


def test_max_steps_caps_the_timed_steps_before_min_seconds(clock):
    result, _ = time_train_step(clock.step, 0, None, 0.1, warmup=0, chunk_steps=1, min_seconds=100.0, max_steps=4)
    assert result.steps_timed == 4


def test_the_median_chunk_ignores_one_slowed_chunk(clock):
    slow = {"chunk": 0}

    def step(state, batch, lr):  # the second timed step takes ten times as long
        state, metrics = clock.step(state, batch, lr)
        slow["chunk"] += 1
        if slow["chunk"] == 3:
            clock.now += 0.09
        return state, metrics

    result, _ = time_train_step(step, 0, None, 0.1, warmup=1, chunk_steps=1, min_chunks=3)
    assert result.seconds_per_step == pytest.approx(0.01)
    assert result.best_seconds_per_step == pytest.approx(0.01)
    assert result.cpu_seconds_per_step == pytest.approx(0.12 / 3)
