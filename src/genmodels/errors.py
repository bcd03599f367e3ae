"""The one error type genmodels raises for bad input.

Every message is one sentence saying what was wrong and how to fix it; the
command line prints it without a traceback (docs/ARCHITECTURE.md, "Errors").
"""


class GenmodelsError(Exception):
    """Bad input, bad config, bad file or bad checkpoint, explained in one sentence."""


class DataError(GenmodelsError):
    """A data source is missing, corrupt or holds values we cannot use."""


class ConfigError(GenmodelsError):
    """A configuration value is of the wrong type or out of range."""


class CheckpointError(GenmodelsError):
    """A run directory or checkpoint is missing, foreign or damaged."""


class TrainingInterrupted(GenmodelsError):
    """SIGINT or SIGTERM stopped training; the message says what was saved and how to resume."""


class TrainingError(GenmodelsError):
    """Training started but cannot go on (a loss became NaN, the disk filled up); exit status 1."""
