"""The interface every generative family implements, and what entry points use to reach it."""

from aigc.core.checkpoints import load_checkpoint, load_model
from aigc.core.conditioning import Condition
from aigc.core.module import AigcModule, GenerativeModule
from aigc.core.samples import Samples

__all__ = [
    "AigcModule",
    "Condition",
    "GenerativeModule",
    "Samples",
    "load_checkpoint",
    "load_model",
]
