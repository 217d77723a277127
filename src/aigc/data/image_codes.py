"""Images as an image tokenizer's codes: encoded once, then read from a cache file keyed by the
images' pixels and the tokenizer's weights, so that a model over codes (the text + image GPT)
neither encodes every batch again nor waits for the encoder when the same data trains again."""

import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

import torch

from aigc.data.pixels import to_signed_unit_range

log = logging.getLogger(__name__)

ENCODE_BATCH = 500  # images per encoder call


class ImageTokenizer(Protocol):
    """What caching needs of an image tokenizer (``model=image_tokenizer``): a module whose
    ``encode`` turns images ``(B, C, H, W)`` in [-1, 1] into ids ``(B, tokens_per_image)``."""

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...


def image_codes(images: torch.Tensor, tokenizer: ImageTokenizer, cache_dir: Path) -> torch.Tensor:
    """The codes ``(N, tokens_per_image)`` (int32) of uint8 ``images`` ``(N, C, H, W)``, from
    ``cache_dir`` when these images were encoded by a tokenizer with these weights before."""
    path = Path(cache_dir).expanduser() / f"image-codes-{_digest(images, tokenizer)}.pt"
    if path.is_file():
        codes = torch.load(path, weights_only=True)
        if len(codes) == len(images):
            return codes
        log.warning("image code file %s does not match its images; encoding again", path)
    log.info("Encoding %d images into image codes (cached in %s)", len(images), path)
    device = next(iter(tokenizer.state_dict().values())).device
    with torch.no_grad():
        codes = torch.cat(
            [
                tokenizer.encode(to_signed_unit_range(images[i : i + ENCODE_BATCH].to(device)))
                .to(torch.int32)
                .cpu()
                for i in range(0, len(images), ENCODE_BATCH)
            ]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # processes may race to write it
    torch.save(codes, partial)
    os.replace(partial, path)
    return codes


def _digest(images: torch.Tensor, tokenizer: ImageTokenizer) -> str:
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(_bytes(images))
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()[:20]


def _bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())
