"""Transformer language models."""

from aigc.models.language_model.module import LanguageModel
from aigc.nn.gpt import GPT

__all__ = ["GPT", "LanguageModel"]
