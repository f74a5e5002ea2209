"""User-facing errors: one line saying what was wrong, where, and what to do."""


class ScalingError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    The CLI prints `error: <message>` on one line and exits with `exit_code`.
    """

    exit_code = 2


class ConfigError(ScalingError):
    """A bad configuration key, value or type."""


class DataError(ScalingError):
    """A missing, empty, unreadable or inconsistent data source."""


class DivergedError(ScalingError):
    """Training produced a non-finite loss."""

    exit_code = 3


EXIT_PREEMPTED = 75  # EX_TEMPFAIL: stopped by SIGTERM/SIGINT with a checkpoint at the last step; rerun to resume


class PreemptedError(ScalingError):
    """Training stopped at a signal (SIGTERM, SIGINT) after checkpointing its current step; rerunning resumes
    there. Schedulers (sweeps.executors, SLURM requeue) read the exit code as "resume me", not as a failure."""

    exit_code = EXIT_PREEMPTED
