"""One GPT over text bytes and image codes: it draws what a prompt says and captions images."""

from aigc.models.multimodal.module import TextImageModel

__all__ = ["TextImageModel"]
