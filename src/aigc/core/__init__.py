"""The interface every generative family implements, and what entry points use to reach it."""

from aigc.core.checkpoints import load_checkpoint, load_model
from aigc.core.conditioning import Condition
from aigc.core.module import AigcModule, GenerativeModule
from aigc.core.pretrained import from_pretrained, save_pretrained
from aigc.core.samples import Samples

__all__ = [
    "AigcModule",
    "Condition",
    "GenerativeModule",
    "Samples",
    "from_pretrained",
    "load_checkpoint",
    "load_model",
    "save_pretrained",
]
