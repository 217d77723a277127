"""Transformer language models."""

from aigc.models.transformer.gpt import GPT
from aigc.models.transformer.module import LanguageModel

__all__ = ["GPT", "LanguageModel"]
