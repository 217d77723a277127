"""What ``eval.py``'s scorecard asks of a model, by what the model is: small interfaces that
families declare as base classes and implement, so that ``aigc.metrics`` scores any family through
them alone. (An image generator's interface is ``GenerativeModule.sample``.)"""

import torch
from torchmetrics import Metric

from aigc.tokenizers import Tokenizer


class TextLikelihood:
    """A model of text: ``nll`` of windows ``(B, block_size + 1)`` of its ``tokenizer``'s ids is
    the mean negative log-likelihood in nats of tokens ``[:, 1:]``, each after those before it;
    ``bits_metric`` names it in bits per token (``bpc``: per character; ``bpb``: per byte)."""

    tokenizer: Tokenizer
    block_size: int
    bits_metric: str

    def nll(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ImageCaptionLikelihood:
    """A model of captioned images: ``caption`` writes the caption of each image ``(B, C, H, W)``
    in [-1, 1] (greedy); ``nll`` gives negative log-likelihoods in nats ``(B,)``, of each image
    after the empty caption and of each caption (its UTF-8 bytes and its end) after its image."""

    def caption(self, images: torch.Tensor) -> list[str]:
        raise NotImplementedError

    def nll(self, images: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class ImageCodec:
    """A tokenizer of images: ``encode`` turns images ``(B, C, H, W)`` in [-1, 1] into token ids
    ``(B, tokens_per_image)`` below ``vocab_size``, and ``decode`` turns them back."""

    vocab_size: int
    tokens_per_image: int

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ImageClassifier:
    """A classifier of images ``(B, C, H, W)`` of ``image_shape`` in [-1, 1], whose penultimate
    ``features`` ``(B, D)`` and their class ``logits`` ``(B, K)`` the image scores compare."""

    image_shape: tuple[int, ...]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CodebookUsage(Metric):
    """How evenly token ids are used: ``perplexity`` (the exponential of the usage entropy: the
    number of equally used ids with the same entropy; at most the vocabulary's size) and
    ``dead_fraction`` (the share of ids never used)."""

    full_state_update = False

    def __init__(self, codebook_size: int) -> None:
        super().__init__()
        self.add_state("counts", default=torch.zeros(codebook_size), dist_reduce_fx="sum")

    def update(self, codes: torch.Tensor) -> None:
        self.counts += torch.bincount(codes.flatten(), minlength=len(self.counts)).float()

    def compute(self) -> dict[str, torch.Tensor]:
        p = self.counts / self.counts.sum().clamp(min=1)
        entropy = -(p * p.clamp(min=1e-12).log()).sum()
        return {"perplexity": entropy.exp(), "dead_fraction": (self.counts == 0).float().mean()}
