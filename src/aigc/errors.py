"""Errors that the user can fix: reported as one clear line, without a traceback."""

import logging
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

T = TypeVar("T")


class AigcError(Exception):
    """Base class for problems with the user's input: data, configuration or checkpoints."""


class DatasetError(AigcError):
    """A dataset is missing, cannot be downloaded, or its files are corrupt."""


class CheckpointError(AigcError):
    """A checkpoint path is missing or does not hold a readable checkpoint."""


class ConfigError(AigcError):
    """The composed configuration cannot be turned into a run."""


def check_positive(group: str, **values: float | None) -> None:
    """A ConfigError for the first of ``values`` (config keys of ``group``) that is not greater
    than zero; None means unset and passes."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{group}.{name}={value}: must be greater than 0")


def exit_on_user_error(run: Callable[[], T]) -> T:
    """Runs an entry point; a problem the user can fix ends it with one ``error:`` line.

    Besides our own errors that includes configs that do not fit together, which OmegaConf reports
    when a value is read: a missing mandatory value (``???``) or an interpolation to a key that
    the chosen groups do not have (``model=gan data=shakespeare``); and files that cannot be
    written or read (a full disk, a read-only folder), named with the system's reason.
    """
    try:
        return run()
    except (AigcError, MissingMandatoryValue, InterpolationResolutionError) as err:
        _exit(f"error: {one_line(err)}")
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        _exit(f"error: {where}{err.strerror or one_line(err)}")


def _exit(message: str) -> NoReturn:
    """Ends the process with ``message`` on stderr, written also to the run's log file (Hydra's
    ``<run dir>/train.log``), so that the log of a failed run says why it failed."""
    record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    sys.exit(message)


def one_line(err: BaseException) -> str:
    """An exception's message with its line breaks folded, to quote inside a one-line error."""
    return " ".join(str(err).split())
