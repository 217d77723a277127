"""Sampling the text + image model: images drawn for prompts, with classifier-free guidance and
best-of-k ranking by the model's own captions, and captions written for images."""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from aigc.core.module import derived_generator
from aigc.models.image_tokenizer import ImageTokenizer
from aigc.models.text_image.network import TextImageGPT
from aigc.models.text_image.objective import Rows


def draw_images(
    network: TextImageGPT,
    layout: Rows,
    image_tokenizer: ImageTokenizer,
    texts: Sequence[str],
    generator: torch.Generator | None,
    guidance_scale: float,
    guided_tokens: Sequence[int] | None,
    temperature: float,
    top_k: int | None,
    best_of: int,
) -> Tensor:
    """Images ``(B, C, H, W)`` drawn for ``texts`` (the empty prompt "": the unconditional model):
    each prompt's caption segment, then image codes drawn one by one. With ``best_of`` k > 1, k
    images are drawn for each prompt, and kept is the one for which the model finds the prompt
    the likeliest caption."""
    vocab, n = layout.vocab, len(texts)
    device = next(network.parameters()).device
    prompted = any(texts)  # else there is nothing to guide away from, nor to rank by
    guided = guidance_scale != 1.0 and prompted
    length = layout.caption_length(texts)  # of the caption segments, cut to the longest
    prefixes = layout.image_prefixes(texts, length).to(device)
    unconditional = layout.image_prefixes([""] * n, length).to(device) if guided else None
    positions = layout.positions(torch.zeros(1, dtype=torch.bool), length)[0]  # caption first
    settings = dict(
        allowed=allowed(vocab.vocab_size, vocab.image_ids, device),
        unconditional=unconditional,
        guidance_scale=guidance_scale,
        guided_tokens=guided_tokens,
        positions=positions.to(device),
        pad_id=vocab.special["pad"],
    )
    # (k, n, tokens_per_image): the candidates that k calls with best_of=1 would draw
    candidates = torch.stack(
        [
            decode(
                network, prefixes, vocab.tokens_per_image, temperature, top_k, generator, **settings
            )
            - vocab.image_offset
            for _ in range(best_of if prompted else 1)
        ]
    )
    best = torch.zeros(n, dtype=torch.long, device=device)
    if len(candidates) > 1:
        # The prompt's likelihood as each candidate's caption, log p(text | image): the model's
        # own reading of its drawings. Unprompted rows keep their first candidate.
        nll = torch.stack([layout.segment_nll(network, c, texts, True) for c in candidates])
        unprompted = torch.tensor([not t for t in texts], device=device)
        best = nll.argmin(0).masked_fill(unprompted, 0)  # (n,)
    codes = candidates[best, torch.arange(n, device=device)]  # (n, tokens_per_image)
    return image_tokenizer.decode(codes)


def write_captions(
    network: TextImageGPT,
    layout: Rows,
    codes: Tensor,
    generator: torch.Generator | None,
    temperature: float,
    top_k: int | None,
) -> list[str]:
    """The caption of each image's codes ``(B, tokens_per_image)``, written after the image."""
    vocab = layout.vocab
    begin_text, end_text = vocab.special["begin_text"], vocab.special["end_text"]
    prefix = torch.cat([vocab.image(codes), codes.new_full((len(codes), 1), begin_text)], 1)
    text = decode(
        network,
        prefix,
        layout.max_text_bytes + 1,
        temperature,
        top_k,
        generator,
        allowed=allowed(vocab.vocab_size, [*vocab.text_ids, end_text], codes.device),
        stop_id=end_text,
        positions=layout.positions(torch.ones(1, dtype=torch.bool))[0].to(codes.device),
    )
    return [vocab.read_text([begin_text, *row]) for row in text.tolist()]


def decode(
    network: TextImageGPT,
    prefix: Tensor,
    steps: int,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
    **options: Any,
) -> Tensor:
    """The tokens ``(B, <= steps)`` that ``GPT.decode`` draws after ``prefix`` ``(B, T)`` with
    ``options``, from a device generator seeded by ``generator``."""
    device_rng = derived_generator(generator, prefix.device)
    tokens = network.decode(prefix, steps, temperature, top_k, None, device_rng, **options)
    return torch.cat(list(tokens), dim=1)


def allowed(vocab_size: int, ids: Sequence[int], device: torch.device) -> Tensor:
    """The boolean mask ``(vocab_size,)`` of ``ids``, for ``GPT.decode``."""
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    mask[list(ids)] = True
    return mask
