"""The LightningModule that trains a GPT language model."""

import math
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from aigc.data.tokenizers import tokenizer_from_state
from aigc.errors import ConfigError
from aigc.models.base import AigcModule
from aigc.models.transformer.gpt import GPT
from aigc.utils.log_steps import logs_this_step

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


def attention_kernels(names: Sequence[str]) -> list[SDPBackend]:
    """Names of ``torch.nn.attention.SDPBackend`` members: ``["math"]`` -> ``[SDPBackend.MATH]``."""
    backends = {name.lower(): kernel for name, kernel in SDPBackend.__members__.items()}
    backends.pop("error")
    unknown = [name for name in names if name.lower() not in backends]
    if unknown:
        raise ConfigError(f"unknown attention backends {unknown}; choose from {sorted(backends)}")
    return [backends[name.lower()] for name in names]


class LanguageModel(AigcModule):
    """Next-token prediction with AdamW and a warm-up + cosine learning-rate schedule.

    The tokenizer's state (a dict of plain values from the datamodule) is a hyperparameter, so it
    is saved inside every checkpoint and sampling needs no dataset.
    """

    modality = "text"

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
        attention_backends: Sequence[str] | None = None,
        sample_prompt: str = "\n",
        sample_tokens: int = 200,
        sample_temperature: float = 1.0,
        sample_top_k: int | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer = tokenizer_from_state(tokenizer_state)
        self.sample_prompt = self.encode_prompt(sample_prompt, setting="model.sample_prompt")
        self.model = GPT(
            self.tokenizer.vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias
        )
        if compile:
            self.model.compile()  # in place: parameter names, and so checkpoints, stay the same
        self.attention_kernels = attention_kernels(attention_backends or [])
        self._last_logged: tuple[float, int] | None = None  # (time, step) of the last log

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple:
        """Logits ``(B, T, vocab)`` and loss, with attention on the configured kernels."""
        with self.attention():
            return self.model(idx, targets)

    def encode_prompt(self, text: str, setting: str) -> list[int]:
        """Token ids of a prompt; an unknown character or no text is an error naming ``setting``."""
        try:
            ids = self.tokenizer.encode(text)
        except ValueError as err:
            raise ConfigError(f"{setting}={text!r}: {err}") from err
        if not ids:
            raise ConfigError(
                f"{setting} is empty: give the model at least one character to continue"
            )
        return ids

    def attention(self) -> AbstractContextManager:
        """Restricts attention to ``model.attention_backends``; PyTorch picks when none are set."""
        return sdpa_kernel(self.attention_kernels) if self.attention_kernels else nullcontext()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        _, loss = self(*batch)
        if logs_this_step(self.trainer):
            self.log_dict(
                {
                    "train/loss": loss,
                    "lr": self.lr_schedulers().get_last_lr()[0],
                    **self._throughput(batch),
                },
                prog_bar=True,
                sync_dist=True,  # means over all ranks
            )
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, loss = self(*batch)
        # sync_dist: the mean over all ranks' windows, the same number each.
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        # nats per token -> bits per token, i.e. bits per character (or per byte)
        self.log(f"val/bp{self.tokenizer.unit[0]}", loss / math.log(2), sync_dist=True)

    def _throughput(self, batch: Batch) -> dict[str, float]:
        """Training tokens/s of all ranks together since the last logged step (data loading and
        optimizer included)."""
        now, since = time.perf_counter(), self._last_logged
        self._last_logged = now, self.global_step
        if since is None:
            return {}
        start, step = since
        tokens = (self.global_step - step) * batch[0].numel() * self.trainer.world_size
        return {"tokens_per_sec": tokens / (now - start)}

    def on_validation_start(self) -> None:
        self._last_logged = None  # time spent validating is not training throughput

    @torch.no_grad()
    def sample_for_logging(self) -> str:
        """A continuation of ``sample_prompt``, the same random draws every time."""
        prompt = torch.tensor([self.sample_prompt], device=self.device)
        with self.attention():
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
