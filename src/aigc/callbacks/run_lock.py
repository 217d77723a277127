"""One run per run directory: a second run started in a directory that is in use stops at once,
before it writes anything there."""

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no check
    fcntl = None

LOCK_FILE = ".lock"


class RunLock(Callback):
    """Holds an exclusive lock on ``<run dir>/.lock`` while ``python train.py`` runs.

    Two runs in one directory would write checkpoints side by side, overwrite each other's config
    and mix their TensorBoard curves. The lock is the operating system's (``flock``), so a run
    that is killed releases it and a resume is never refused. Only the first process of a run
    takes it: the other ranks of a distributed run share the directory by design. Multiruns give
    every job its own directory and are not locked.
    """

    def __init__(self) -> None:
        self._file: TextIO | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if fcntl is None or not _is_first_process():
            return
        # The same run directory Hydra is about to use: ${now:...} resolves once per config.
        run_dir = Path(config.hydra.run.dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            file = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 (held until the end)
        except OSError as err:
            sys.exit(f"error: cannot write the run directory {run_dir}: {err.strerror or err}")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            sys.exit(
                f"error: the run directory {run_dir} is in use by {holder}; give this run "
                "another hydra.run.dir, or wait for that one to end"
            )
        file.seek(0)
        file.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        file.write(f"process {os.getpid()} on {socket.gethostname()} since {started}\n")
        file.flush()
        self._file = file

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None


def _is_first_process() -> bool:
    """False in the other ranks of a distributed run (Lightning's local DDP, torchrun, SLURM)."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(variable, "0") != "0":
            return False
    return True
