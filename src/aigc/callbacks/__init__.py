"""Lightning callbacks and the checkpoint writer, and the Hydra callbacks: the run directory's
lock and the multirun summary."""

from aigc.callbacks.checkpoint import Checkpoint, SafeCheckpointIO
from aigc.callbacks.divergence import DivergenceGuard
from aigc.callbacks.interruption import Interruption
from aigc.callbacks.multirun_summary import MultirunSummary
from aigc.callbacks.progress import ProgressBar
from aigc.callbacks.run_lock import RunLock
from aigc.callbacks.samples import SampleLogger

__all__ = [
    "Checkpoint",
    "DivergenceGuard",
    "Interruption",
    "MultirunSummary",
    "ProgressBar",
    "RunLock",
    "SafeCheckpointIO",
    "SampleLogger",
]
