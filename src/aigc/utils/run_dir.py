"""A run that fails before it writes anything leaves no run directory behind."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What a run directory holds before the run writes anything: Hydra's config copy and log file,
# and the run lock (callbacks.RunLock).
_BOOKKEEPING = {".hydra", ".lock"}


@contextmanager
def removed_if_failed_empty(run_dir: Path) -> Iterator[None]:
    """Removes ``run_dir`` when the body fails while the folder holds only bookkeeping: a run
    that stops at a missing dataset or a config error would otherwise leave a folder per attempt.
    The error itself reaches the console; a run that got further keeps its folder and log."""
    try:
        yield
    except BaseException:
        if run_dir.is_dir() and all(_is_bookkeeping(p) for p in run_dir.iterdir()):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _is_bookkeeping(path: Path) -> bool:
    return path.name in _BOOKKEEPING or (path.is_file() and path.suffix == ".log")
