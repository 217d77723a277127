"""Lightning callbacks."""

from aigc.callbacks.samples import SampleLogger

__all__ = ["SampleLogger"]
