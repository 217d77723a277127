"""Transformer language models."""

from aigc.models.transformer.module import LanguageModel
from aigc.nn.gpt import GPT

__all__ = ["GPT", "LanguageModel"]
