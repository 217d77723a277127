"""Errors that the user can fix: reported as one clear line, without a traceback."""


class AigcError(Exception):
    """Base class for problems with the user's input: data, configuration or checkpoints."""


class DatasetError(AigcError):
    """A dataset is missing, cannot be downloaded, or its files are corrupt."""


class CheckpointError(AigcError):
    """A checkpoint path is missing or does not hold a readable checkpoint."""


class ConfigError(AigcError):
    """The composed configuration cannot be turned into a run."""
