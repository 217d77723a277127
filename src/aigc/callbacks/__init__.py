"""Lightning callbacks."""

from aigc.callbacks.checkpoint import Checkpoint
from aigc.callbacks.samples import SampleLogger

__all__ = ["Checkpoint", "SampleLogger"]
