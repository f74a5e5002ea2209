"""Progress display: a tqdm bar (tokens, loss, throughput, ETA) on a terminal that reports its width (or with
$COLUMNS set), plain log lines otherwise; and the header line printed before a run's first step."""

from __future__ import annotations

import os
import sys
import time


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def terminal_columns(stream) -> int:
    """The width the terminal behind `stream` reports: 0 when it reports none (some CI ptys, `docker exec`
    without a size) or `stream` has no file descriptor."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return 0


def environment_columns() -> int:
    try:
        return max(int(os.environ.get("COLUMNS", "0")), 0)
    except ValueError:
        return 0


def run_header(run: str, n_params: int, n_nonembedding: int, tokens: int, flops: float, n_devices: int,
               device_kind: str) -> str:
    """The line printed before a run's first step: what is about to be trained, and on what."""
    devices = f"{n_devices} {device_kind} device{'s' if n_devices != 1 else ''}"
    return (f"run {run}: N {_short(n_params)} ({_short(n_nonembedding)} non-emb), D {_short(tokens)} tokens, "
            f"C {_short(flops)} FLOPs, {devices}")


def _short(value: float) -> str:
    """3 significant digits, exponent without padding: 1.23e5."""
    return format(value, ".3g").replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _bar(stream, total_steps: int, start_step: int):
    """A tqdm bar that follows the terminal's width; at $COLUMNS when the terminal reports zero columns (a bar
    sized to zero prints nothing); None, for plain lines, when neither gives a width."""
    from tqdm import tqdm

    reported = terminal_columns(stream)
    columns = reported or environment_columns()
    if not columns:
        return None
    return tqdm(total=total_steps, initial=start_step, unit="step", file=stream, dynamic_ncols=bool(reported),
                ncols=None if reported else columns, smoothing=0.1)


class Progress:
    def __init__(self, total_steps: int, start_step: int, tokens_per_step: int, enabled: bool = True,
                 stream=None):
        self.total, self.tokens_per_step, self.last_step = total_steps, tokens_per_step, start_step
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started, self.start_step = time.perf_counter(), start_step
        self.bar = None
        if enabled and self.stream.isatty():
            self.bar = _bar(self.stream, total_steps, start_step)

    def update(self, step: int, row: dict | None) -> None:
        advanced, self.last_step = step - self.last_step, step
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(advanced)
            if row is not None:
                postfix = {"tokens": f"{row['tokens']:.3g}", "loss": f"{row['loss']:.4f}",
                           "tok/s": f"{row['tokens_per_s']:.3g}"}
                if "val_loss" in row:
                    postfix["val"] = f"{row['val_loss']:.4f}"
                self.bar.set_postfix(postfix, refresh=False)
            return
        if row is None:
            return
        elapsed = time.perf_counter() - self.started
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else None
        line = (f"step {step}/{self.total} | tokens {row['tokens']:.4g} | loss {row['loss']:.4f} | "
                f"lr {row['lr']:.3g} | {_fmt(row['tokens_per_s'], '.4g')} tok/s | eta {_fmt(eta, '.0f')}s")
        if "val_loss" in row:
            line += f" | val_loss {row['val_loss']:.4f}"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
