"""The LightningModule that trains a GPT language model."""

import math
import time
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from aigc.data.tokenizers import tokenizer_from_state
from aigc.errors import ConfigError
from aigc.models.transformer.gpt import GPT

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs, targets: (B, T) token ids each


def warmup_cosine(step: int, warmup_steps: int, decay_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1, cosine decay to ``min_ratio`` at ``decay_steps``, flat
    after that."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= decay_steps:
        return min_ratio
    progress = (step - warmup_steps) / max(1, decay_steps - warmup_steps)
    return min_ratio + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(math.pi * progress))


class LanguageModel(L.LightningModule):
    """Next-token prediction with AdamW and a warm-up + cosine learning-rate schedule.

    The tokenizer's state (a dict of plain values from the datamodule) is a hyperparameter, so it
    is saved inside every checkpoint and sampling needs no dataset.
    """

    def __init__(
        self,
        tokenizer_state: dict[str, Any],
        block_size: int = 256,
        n_layer: int = 6,
        n_head: int = 6,
        n_embd: int = 384,
        dropout: float = 0.0,
        bias: bool = False,
        lr: float = 1e-3,
        min_lr: float = 1e-4,
        warmup_steps: int = 100,
        lr_decay_steps: int = 5000,
        weight_decay: float = 0.1,
        betas: Sequence[float] = (0.9, 0.99),
        grad_clip: float | None = 1.0,
        sample_prompt: str = "\n",
        sample_tokens: int = 200,
        sample_temperature: float = 1.0,
        sample_top_k: int | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer = tokenizer_from_state(tokenizer_state)
        try:
            self.sample_prompt = self.tokenizer.encode(sample_prompt)
        except ValueError as err:
            raise ConfigError(f"model.sample_prompt={sample_prompt!r}: {err}") from err
        self.model = GPT(
            self.tokenizer.vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias
        )
        if compile:
            self.model.compile()  # in place: parameter names, and so checkpoints, stay the same
        self._batch_start = 0.0

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)[0]  # (B, T, vocab)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        _, loss = self.model(*batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log("lr", self.lr_schedulers().get_last_lr()[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, loss = self.model(*batch)
        self.log("val/loss", loss, prog_bar=True)
        # nats per token -> bits per token, i.e. bits per character (or per byte)
        self.log(f"val/bp{self.tokenizer.unit[0]}", loss / math.log(2))

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        # Wall time of the step itself (forward, backward, optimizer), without data loading.
        tokens = batch[0].numel()
        self.log("tokens_per_sec", tokens / (time.perf_counter() - self._batch_start))

    @torch.no_grad()
    def sample_for_logging(self) -> str:
        """A continuation of ``sample_prompt``, the same random draws every time."""
        prompt = torch.tensor([self.sample_prompt], device=self.device)
        tokens = self.model.generate(
            prompt,
            self.hparams.sample_tokens,
            temperature=self.hparams.sample_temperature,
            top_k=self.hparams.sample_top_k,
            generator=torch.Generator(self.device).manual_seed(0),
        )
        return self.tokenizer.decode(tokens[0].tolist())

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        # The clip norm is the model's setting (model.grad_clip), not the trainer's.
        if self.hparams.grad_clip:
            self.clip_gradients(optimizer, self.hparams.grad_clip, gradient_clip_algorithm="norm")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        # Weight decay on matrices only: biases and LayerNorm gains are left free.
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": hp.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_cosine(step, hp.warmup_steps, hp.lr_decay_steps, hp.min_lr / hp.lr),
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
