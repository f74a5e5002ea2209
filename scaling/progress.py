"""Progress display: a tqdm bar (tokens, loss, throughput, ETA) on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class Progress:
    def __init__(self, total_steps: int, start_step: int, tokens_per_step: int, enabled: bool = True,
                 stream=None):
        self.total, self.tokens_per_step, self.last_step = total_steps, tokens_per_step, start_step
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started, self.start_step = time.perf_counter(), start_step
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)

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
