import contextlib
import fcntl
import io
import os
import pty
import struct
import termios
import time

import pytest

from scaling.progress import Progress, run_header, terminal_columns

ROW = {"tokens": 2048, "loss": 3.5, "lr": 1e-3, "tokens_per_s": 1000.0}


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(10, 0, 256, stream=stream)
    progress.update(1, None)
    progress.update(2, ROW)
    progress.update(3, dict(ROW, val_loss=3.2))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("step 2/10") and "loss 3.5000" in lines[0] and "eta" in lines[0]
    assert "val_loss 3.2000" in lines[1]


def test_disabled_prints_nothing_but_tracks_step():
    stream = io.StringIO()
    progress = Progress(10, 4, 256, enabled=False, stream=stream)
    progress.update(7, ROW)
    assert stream.getvalue() == "" and progress.last_step == 7


@contextlib.contextmanager
def terminal(columns: int):
    """A real pseudo-terminal reporting `columns` columns: (the stream a program writes to, a reader of what
    the terminal received)."""
    controller, screen = pty.openpty()
    fcntl.ioctl(screen, termios.TIOCSWINSZ, struct.pack("HHHH", 24 if columns else 0, columns, 0, 0))
    os.set_blocking(controller, False)
    stream = os.fdopen(screen, "w")

    def received() -> str:
        stream.flush()
        time.sleep(0.05)
        out = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(controller, 65536):
                out += chunk
        return out.decode(errors="replace")

    try:
        yield stream, received
    finally:
        stream.close()
        os.close(controller)


def show_half_way(stream) -> None:
    progress = Progress(10, 0, 256, stream=stream)
    progress.update(5, ROW)
    progress.close()


def test_bar_on_a_terminal_that_reports_its_width(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    with terminal(100) as (stream, received):
        assert terminal_columns(stream) == 100
        show_half_way(stream)
        shown = received()
    assert "5/10" in shown and "loss=3.5000" in shown and "step 5/10" not in shown  # a bar, not lines


def test_a_terminal_reporting_zero_columns_still_shows_progress(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    with terminal(0) as (stream, received):
        assert stream.isatty() and terminal_columns(stream) == 0
        show_half_way(stream)
        shown = received()
    assert "step 5/10" in shown and "loss 3.5000" in shown  # lines, as when not a terminal


def test_a_zero_width_terminal_draws_the_bar_at_COLUMNS(monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    with terminal(0) as (stream, received):
        show_half_way(stream)
        shown = received()
    bar_lines = [part for part in shown.replace("\n", "\r").split("\r") if "5/10" in part]
    assert bar_lines and "loss=3.5000" in shown
    assert all(len(line) <= 72 for line in bar_lines)


def test_header_names_the_run_its_size_data_compute_and_devices():
    line = run_header("3f2a9c", 123_456, 110_000, 3_700_000, 2.7e12, 1, "cpu")
    assert line == "run 3f2a9c: N 1.23e5 (1.1e5 non-emb), D 3.7e6 tokens, C 2.7e12 FLOPs, 1 cpu device"
    assert run_header("r", 1, 1, 1, 1.0, 8, "NVIDIA H100").endswith("8 NVIDIA H100 devices")


@pytest.mark.parametrize("stream", [io.StringIO(), object()])
def test_no_file_descriptor_means_no_reported_width(stream):
    assert terminal_columns(stream) == 0


def test_a_run_prints_its_header_before_its_first_step(tmp_path, tiny_overrides, capsys):
    from scaling import accounting
    from scaling.config import load
    from scaling.training import train

    summary = train(load(None, tiny_overrides + ["train.steps=2"]), tmp_path)
    lines = capsys.readouterr().err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(f"run {summary['run_id']}: N "))
    first_step = next(i for i, line in enumerate(lines) if line.startswith("step 1/2"))
    assert header < first_step
    config = load(None, tiny_overrides + ["train.steps=2", f"model.vocab_size={summary['config']['model']['vocab_size']}"])
    counts = accounting.param_counts(config.model)
    planned = 2 * 8 * 32  # steps x batch_size x seq_len of the tiny config
    assert lines[header] == run_header(summary["run_id"], counts["n_params"], counts["n_params_nonembedding"],
                                       planned, summary["flops_exact"], summary["n_devices"], summary["device_kind"])
    assert summary["tokens"] == planned and summary["n_params"] == counts["n_params"]
    train(load(None, tiny_overrides + ["train.steps=2"]), tmp_path / "quiet", quiet=True)
    assert "run " not in capsys.readouterr().err
