"""One GPT over text bytes and image codes: it draws what a prompt says and captions images."""

from aigc.models.text_image.module import TextImageModel

__all__ = ["TextImageModel"]
