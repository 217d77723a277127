"""What every entry point shares on the command line: Hydra over the packaged configs, a ``--help``
that lists the entry point's groups and keys, and one line for a key that was renamed."""

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import hydra
from omegaconf import DictConfig

from aigc.errors import ConfigError, exit_on_user_error
from aigc.paths import CONFIG_DIR
from aigc.utils.help import register_resolver

T = TypeVar("T")


def entry_point(
    config_name: str, renamed: Mapping[str, str] | None = None
) -> Callable[[Callable[[DictConfig], T]], Callable[[DictConfig | None], T]]:
    """``hydra.main`` over the config ``config_name``; an override of a key in ``renamed`` (old
    name -> new name, kept for one release) ends the run before Hydra composes anything, with
    one line that names the new key."""
    register_resolver()

    def decorate(task: Callable[[DictConfig], T]) -> Callable[[DictConfig | None], T]:
        with_hydra = hydra.main(
            version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name
        )
        hydra_main = with_hydra(task)

        @functools.wraps(task)
        def main(cfg: DictConfig | None = None) -> T:
            # Like hydra.main, given a composed config it runs on that, not on the command line.
            if cfg is None:
                exit_on_user_error(lambda: check_renamed(sys.argv[1:], renamed or {}))
            return hydra_main(cfg)

        return main

    return decorate


def check_renamed(overrides: Sequence[str], renamed: Mapping[str, str]) -> None:
    """A ConfigError for the first command-line override (``key=value``, ``+key=value``) of an
    old key name, or of an old config name (``renamed`` holds ``group=old`` -> ``group=new``)."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and f"{key}={value}" in renamed:
            raise ConfigError(f"{key}={value} is now called {renamed[f'{key}={value}']}")
        if sep and key in renamed:
            new = renamed[key]
            raise ConfigError(f"{key} is now called {new}: use {new}={value}")
