"""Transformer language models."""

from aigc.models.transformer.module import LanguageModel
from aigc.models.transformer.network import GPT

__all__ = ["GPT", "LanguageModel"]
