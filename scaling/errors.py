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
