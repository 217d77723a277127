"""The text + image model's network: the shared GPT (``aigc.nn.gpt``) over the joint vocabulary."""

from torch import Tensor

from aigc.nn.gpt import GPT


class TextImageGPT(GPT):
    """A ``GPT`` that reads rows of segments at their own position ids, under an attention mask
    that hides padding; ``decode`` draws its segments."""

    def forward(
        self, idx: Tensor, positions: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Logits ``(B, T, vocab)`` of tokens ``idx`` ``(B, T)`` at ``positions`` ``(B, T)``
        (default: their places), with the attention ``mask`` ``(B, T, T)`` (default: causal)."""
        return self.logits(idx, positions=positions, mask=mask)
