"""Lightning callbacks, and the Hydra callback that summarises a multirun."""

from aigc.callbacks.checkpoint import Checkpoint, SafeCheckpointIO
from aigc.callbacks.divergence import DivergenceGuard
from aigc.callbacks.multirun_summary import MultirunSummary
from aigc.callbacks.samples import SampleLogger

__all__ = ["Checkpoint", "DivergenceGuard", "MultirunSummary", "SafeCheckpointIO", "SampleLogger"]
