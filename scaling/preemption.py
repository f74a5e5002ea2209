"""Stopping a run cleanly: SIGTERM (what SLURM, Kubernetes and spot instances send some time before they
take the machine) and SIGINT (Ctrl-C) ask the training loop to finish its current step, checkpoint it and
exit with EXIT_PREEMPTED, instead of dying mid-step and losing everything since the last checkpoint.

The handlers only set a flag that the loop reads between steps: nothing is written from inside a signal
handler. SIGTERM may arrive several times (SLURM signals every process of a job, and a sweep forwards the
signal to workers that got it already), so repeating it only asks again. A second SIGINT is a user who
will not wait: it raises KeyboardInterrupt as Ctrl-C normally does.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


STOPPING_RUN = "stopping after the current step, with a checkpoint"


@contextlib.contextmanager
def stop_on_signals(announce: str = STOPPING_RUN, on_first: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """An Event set when SIGTERM or SIGINT arrives inside the block; the first one prints `announce` and calls
    `on_first` (at once, from the handler: a sweep passes the signal on to its workers without waiting for
    its next look). The previous handlers are back after the block. Outside the main thread Python cannot
    install handlers: the Event is then never set by a signal."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def ask_to_stop(signum, frame):
        if signum == signal.SIGINT and requested.is_set():
            raise KeyboardInterrupt
        if not requested.is_set():
            print(f"{signal.Signals(signum).name}: {announce} (Ctrl-C again to stop at once, without one)",
                  file=sys.stderr, flush=True)
            requested.set()
            if on_first is not None:
                on_first()

    previous = {signum: signal.signal(signum, ask_to_stop) for signum in SIGNALS}
    try:
        yield requested
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
