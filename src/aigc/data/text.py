"""A LightningDataModule for language modelling on a plain-text file."""

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.utils import download_url

from aigc.data.base import DATA_DIR_HINT, AigcDataModule, removing_new_folders
from aigc.data.samplers import EpochSeededRandomSampler
from aigc.errors import ConfigError, DatasetError, one_line
from aigc.tokenizers import TOKENIZER_KINDS, Tokenizer, build_tokenizer, tokenizer_from_state

log = logging.getLogger(__name__)


class TokenWindows(Dataset):
    """Windows of ``block_size + 1`` tokens at ``starts``, as ``{"tokens": window}``: a model
    predicts ``window[1:]`` from ``window[:-1]``."""

    def __init__(self, tokens: torch.Tensor, block_size: int, starts: torch.Tensor) -> None:
        self.tokens, self.block_size, self.starts = tokens, block_size, starts

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start = int(self.starts[index])
        return {"tokens": self.tokens[start : start + self.block_size + 1]}  # (T + 1,)


class TextDataModule(AigcDataModule):
    """Serves random windows of a tokenized text file for next-token prediction.

    The first ``1 - val_fraction`` of the tokens train, the rest validate. A training epoch is
    ``len(train tokens) // block_size`` windows at random offsets, so it sees each token about
    once. Validation uses ``val_batches`` batches of windows at fixed, evenly spaced offsets, so
    val loss is comparable between runs and steps (``None``: the whole split, window by window).
    The tokenized text is cached on disk, keyed by the file's content hash.
    """

    def __init__(
        self,
        path: str,
        block_size: int,
        cache_dir: str,
        url: str | None = None,
        tokenizer: str = "char",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        val_batches: int | None = 20,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.check_loader_settings(batch_size, num_workers)
        if tokenizer not in TOKENIZER_KINDS:
            raise ConfigError(
                f"unknown data.tokenizer {tokenizer!r}; choose one of {TOKENIZER_KINDS}"
            )
        self.save_hyperparameters()
        self.path = Path(path).expanduser()
        self._tokens: torch.Tensor | None = None  # (N,) int64
        self._tokenizer: Tokenizer | None = None
        self.train_set: TokenWindows | None = None
        self.val_set: TokenWindows | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        self._load()
        return self._tokenizer

    @property
    def batch_keys(self) -> frozenset[str]:
        return frozenset({"tokens"})

    def model_kwargs(self) -> dict[str, Any]:
        self._splits()  # a text too short for one window says so before a model is built
        return {"tokenizer_state": self.tokenizer.state_dict()}

    def prepare_data(self) -> None:
        if self.path.is_file():
            return
        if not self.hparams.url:
            raise DatasetError(
                f"text file {self.path} does not exist; set data.path to a .txt file"
            )
        # Download under a name of this process, then rename: processes that start together
        # (torchrun, SLURM) never read a half-written file.
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        try:
            with removing_new_folders(self.path.parent):
                download_url(self.hparams.url, str(self.path.parent), partial.name)
                partial.replace(self.path)
        except Exception as err:  # urllib and socket raise their own kinds
            partial.unlink(missing_ok=True)
            raise DatasetError(
                f"{self.path} does not exist and could not be downloaded from {self.hparams.url} "
                f"({one_line(err)}). Put the file there, {DATA_DIR_HINT}."
            ) from err

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, val = self._splits()
        block = self.hparams.block_size
        self.train_set = TokenWindows(train, block, torch.arange(len(train) - block))
        if self.hparams.val_batches is None:  # every token once, in non-overlapping windows
            val_starts = torch.arange(0, len(val) - block, block)
        else:
            num_val_windows = self.hparams.val_batches * self.hparams.batch_size
            val_starts = torch.linspace(0, len(val) - block - 1, num_val_windows).long()
        self.val_set = TokenWindows(val, block, val_starts)

    def train_dataloader(self) -> DataLoader:
        windows_per_epoch = max(
            len(self.train_set.tokens) // self.hparams.block_size, self.hparams.batch_size
        )
        sampler = EpochSeededRandomSampler(
            len(self.train_set), self.hparams.seed, windows_per_epoch
        )
        return self.make_loader(self.train_set, train=True, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self.make_loader(self.val_set)

    def _splits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training and validation tokens, each long enough for one window."""
        self._load()
        block = self.hparams.block_size
        num_val = int(len(self._tokens) * self.hparams.val_fraction)
        train, val = (
            self._tokens[: len(self._tokens) - num_val],
            self._tokens[len(self._tokens) - num_val :],
        )
        for name, split in (("training", train), ("validation", val)):
            if len(split) < block + 1:
                raise DatasetError(
                    f"{self.path}: the {name} split has {len(split)} tokens, fewer than "
                    f"block_size + 1 = {block + 1}; use a longer text or a smaller model.block_size"
                )
        return train, val

    def _load(self) -> None:
        """Reads and tokenizes the file once, through the on-disk token cache."""
        if self._tokens is not None:
            return
        self.prepare_data()
        raw = self.path.read_bytes()
        if not raw:
            raise DatasetError(f"text file {self.path} is empty")
        cache = self._cache_path(hashlib.sha256(raw).hexdigest()[:16])
        text = self._decode(raw)
        if cache.is_file():
            cached = self._read_cache(
                cache, len(raw) if self.hparams.tokenizer == "byte" else len(text)
            )
            if cached is not None:
                self._tokens, self._tokenizer = cached
                return
            log.warning("token cache %s does not match %s; tokenizing it again", cache, self.path)
        self._tokenizer = build_tokenizer(self.hparams.tokenizer, text)
        self._tokens = torch.tensor(self._tokenizer.encode(text), dtype=torch.long)
        compact = torch.int16 if self._tokenizer.vocab_size <= 2**15 else torch.int32
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")  # write, then rename: never a half file
        torch.save(
            {"tokens": self._tokens.to(compact), "tokenizer": self._tokenizer.state_dict()}, partial
        )
        partial.replace(cache)

    def _read_cache(self, cache: Path, num_tokens: int) -> tuple[torch.Tensor, Tokenizer] | None:
        """The cached tokens and tokenizer, or None when the file is damaged or holds something
        else than this text's tokens (another count, another tokenizer, ids out of range)."""
        try:
            cached = torch.load(cache, weights_only=True)
            tokens, tokenizer = cached["tokens"].long(), tokenizer_from_state(cached["tokenizer"])
        except Exception:  # zipfile, pickle, torch, a missing key: rebuilt all the same
            return None
        matches = (
            tokenizer.kind == self.hparams.tokenizer
            and tokens.shape == (num_tokens,)
            and (
                num_tokens == 0
                or 0 <= int(tokens.min()) <= int(tokens.max()) < tokenizer.vocab_size
            )
        )
        return (tokens, tokenizer) if matches else None

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DatasetError(
                f"{self.path} is not UTF-8 text (invalid byte {raw[err.start]:#04x} at offset "
                f"{err.start}); convert it to UTF-8"
            ) from err

    def _cache_path(self, digest: str) -> Path:
        # Next to the text when that folder is writable (data folders may be read-only). Root
        # may write anywhere, so a folder without write bits counts as read-only too.
        parent = self.path.parent
        writable = os.access(parent, os.W_OK) and parent.stat().st_mode & stat.S_IWUSR
        folder = parent if writable else Path(self.hparams.cache_dir)
        return folder.expanduser() / f"{self.path.stem}.{self.hparams.tokenizer}-{digest}.tokens.pt"
