"""The LightningModule that trains a GPT language model."""

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule, Monitor, Progress, derived_generator
from aigc.core.optim import warmup_schedule, weight_decay_groups
from aigc.core.samples import Samples
from aigc.core.scoring import TextLikelihood
from aigc.errors import ConfigError, check_positive
from aigc.models.language_model.network import stream
from aigc.nn.gpt import GPT, check_sampling_args
from aigc.nn.transformer import AttentionBackends
from aigc.tokenizers import tokenizer_from_state
from aigc.utils.log_steps import logs_this_step

Batch = dict[str, torch.Tensor]  # tokens: (B, T + 1) windows; inputs [:, :-1], targets [:, 1:]


class LanguageModel(GenerativeModule, TextLikelihood):
    """Next-token prediction with AdamW and a warm-up + cosine learning-rate schedule.

    It consumes a text prompt and produces its continuation. The tokenizer's state (a dict of plain
    values from the datamodule) is a hyperparameter, so it is saved inside every checkpoint and
    sampling needs no dataset.
    """

    produces = "text"
    monitor = Monitor("val/loss", "min")

    def __init__(
        self,
        tokenizer_state: dict[str, Any],
        block_size: int = 256,
        n_layer: int = 6,
        n_head: int = 6,
        n_embd: int = 384,
        dropout: float = 0.0,
        bias: bool = False,
        position_encoding: str = "learned",
        lr: float = 1e-3,
        min_lr: float = 1e-4,
        warmup_steps: int = 100,
        lr_decay_steps: int | None = None,
        weight_decay: float = 0.1,
        betas: Sequence[float] = (0.9, 0.99),
        attention_backends: Sequence[str] | None = None,
        sample_prompts: Sequence[str] = ("\n",),
        sampling: dict[str, Any] | None = None,
        ema_decay: float | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(conditioning="text", sample_prompts=sample_prompts, sampling=sampling)
        check_positive(
            "model",
            block_size=block_size,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            lr=lr,
            lr_decay_steps=lr_decay_steps,
        )
        self.save_hyperparameters()
        self.tokenizer = tokenizer_from_state(tokenizer_state)
        for prompt in self.sample_prompts:  # an unknown character is an error now, not at step 200
            try:
                self.encode_prompt(prompt)
            except ConfigError as err:
                raise ConfigError(f"model.sample_prompts: {err}") from None
        self.network = GPT(
            self.tokenizer.vocab_size,
            block_size,
            n_layer,
            n_head,
            n_embd,
            dropout,
            bias,
            position_encoding,
        )
        self.init_network(ema_decay, compile)
        self.attention = AttentionBackends(attention_backends)
        self._last_logged: tuple[float, int] | None = None  # (time, step) of the last log

    @property
    def batch_keys(self) -> frozenset[str]:
        return frozenset({"tokens"})

    @property
    def bits_metric(self) -> str:
        """``bpc`` (bits per character) or ``bpb`` (bits per byte): the loss in bits per token."""
        return f"bp{self.tokenizer.unit[0]}"

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple:
        """Logits ``(B, T, vocab)`` and loss, with attention on the configured kernels."""
        with self.attention():
            return self.network(idx, targets)

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids of a prompt; an unknown character or no text is an error."""
        try:
            ids = self.tokenizer.encode(text)
        except ValueError as err:
            raise ConfigError(f"the prompt {text!r}: {err}") from err
        if not ids:
            raise ConfigError("the prompt is empty: give the model at least one character")
        return ids

    def draw(
        self,
        network: nn.Module,
        n: int,
        condition: Condition | None,
        generator: torch.Generator | None,
        progress: Progress | None,
        *,
        max_new_tokens: int,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
    ) -> Samples:
        """A continuation of each prompt, one sequence at a time, so that ``progress`` can show
        each as it is written."""
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens={max_new_tokens}: generate at least one token")
        check_sampling_args(temperature, top_k, top_p)
        device_rng = derived_generator(generator, self.device)
        texts = []
        for number, prompt in enumerate(condition.texts):  # a language model always has a prompt
            tokens = [torch.tensor([self.encode_prompt(prompt)], device=self.device)]  # (1, T)
            with self.attention():
                new = stream(
                    network,
                    tokens[0],
                    max_new_tokens,
                    temperature,
                    top_k,
                    top_p,
                    generator=device_rng,
                )
                for step, token in enumerate(new, start=1):  # token: (1, 1)
                    tokens.append(token)
                    if progress is not None:
                        partial = Samples(texts=[self._decode(tokens)], captions=[prompt])
                        progress(number * max_new_tokens + step, n * max_new_tokens, partial)
            texts.append(self._decode(tokens))
        return Samples(texts=texts, captions=list(condition.texts))

    def _decode(self, tokens: list[torch.Tensor]) -> str:
        return self.tokenizer.decode(torch.cat(tokens, dim=1)[0].cpu())

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        tokens = batch["tokens"]
        _, loss = self(tokens[:, :-1], tokens[:, 1:])
        if logs_this_step(self.trainer):
            self.log_dict(
                {
                    "train/loss": loss,
                    "lr": self.lr_schedulers().get_last_lr()[0],
                    **self._throughput(tokens[:, 1:].numel()),
                },
                prog_bar=True,
                sync_dist=True,  # means over all ranks
            )
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        tokens = batch["tokens"]
        _, loss = self(tokens[:, :-1], tokens[:, 1:])
        # sync_dist: the mean over all ranks' windows, the same number each.
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        # nats per token -> bits per token, i.e. bits per character (or per byte)
        self.log(f"val/{self.bits_metric}", loss / math.log(2), sync_dist=True)

    def _throughput(self, batch_tokens: int) -> dict[str, float]:
        """Training tokens/s of all ranks together since the last logged step (data loading and
        optimizer included)."""
        now, since = time.perf_counter(), self._last_logged
        self._last_logged = now, self.global_step
        if since is None:
            return {}
        start, step = since
        tokens = (self.global_step - step) * batch_tokens * self.trainer.world_size
        return {"tokens_per_sec": tokens / (now - start)}

    def on_validation_start(self) -> None:
        self._last_logged = None  # time spent validating is not training throughput

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            weight_decay_groups(self.parameters(), hp.weight_decay), lr=hp.lr, betas=tuple(hp.betas)
        )
        return warmup_schedule(optimizer, self)

    # What eval.py's scorecard reads (aigc.core.scoring.TextLikelihood).
    @property
    def block_size(self) -> int:
        return self.hparams.block_size

    def nll(self, tokens: torch.Tensor) -> torch.Tensor:
        return self(tokens[:, :-1], tokens[:, 1:])[1]
