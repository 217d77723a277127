"""A LightningDataModule for language modelling on plain-text files of any size."""

import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.utils import download_url

from aigc.data.base import DATA_DIR_HINT, AigcDataModule, removing_new_folders
from aigc.data.corpus import (
    TOKEN_FILE_SUFFIX,
    TokenFile,
    corpus_digest,
    corpus_files,
    read_text,
)
from aigc.data.samplers import EpochSeededOffsetSampler
from aigc.errors import ConfigError, DatasetError, one_line
from aigc.tokenizers import TOKENIZER_KINDS, BPETokenizer, Tokenizer, build_tokenizer

log = logging.getLogger(__name__)


class TokenWindows(Dataset):
    """Windows of ``block_size + 1`` tokens at ``starts``, as ``{"tokens": window}``: a model
    predicts ``window[1:]`` from ``window[:-1]``.

    The tokens stay on disk. Each batch maps the token file afresh and copies its windows out (as
    nanoGPT does): the pages that a map has read count as the process's memory for as long as
    the map lives, so one map kept for the run would grow with every window read, up to the
    whole token file. This way a batch's few pages are all that is ever mapped, and workers
    receive the file's place rather than a copy of its tokens.
    """

    def __init__(self, tokens: np.memmap, block_size: int, starts: Sequence[int]) -> None:
        self._where = (tokens.filename, tokens.dtype, tokens.offset, tokens.shape)
        self.block_size, self.starts = block_size, starts

    @property
    def tokens(self) -> np.memmap:
        """All the tokens, memory-mapped (and unmapped when no longer referenced)."""
        filename, dtype, offset, shape = self._where
        return np.memmap(filename, dtype, mode="r", offset=offset, shape=shape)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """A batch of windows (the DataLoader asks for a batch at once when this exists)."""
        tokens, size = self.tokens, self.block_size + 1
        starts = (int(self.starts[index]) for index in indices)
        windows = (tokens[start : start + size].astype(np.int64) for start in starts)
        return [{"tokens": torch.from_numpy(window)} for window in windows]  # (T + 1,) each

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])[0]


class TextDataModule(AigcDataModule):
    """Serves random windows of tokenized text files for next-token prediction.

    ``path`` is a file, a folder (its ``.txt`` files), a glob or a list of these; the files are
    read in sorted order, one after the other. They are tokenized once, a chunk at a time, into
    a token file keyed by their contents' hash, which training memory-maps: neither the text
    nor its tokens are ever held in memory whole, so a corpus larger than memory trains.

    The first ``1 - val_fraction`` of the tokens train, the rest validate. A training epoch is
    ``len(train tokens) // block_size`` windows at random offsets, so it sees each token about
    once. Validation uses ``val_batches`` batches of windows at fixed, evenly spaced offsets, so
    val loss is comparable between runs and steps (``None``: the whole split, window by window).
    """

    def __init__(
        self,
        path: str | Sequence[str],
        block_size: int,
        cache_dir: str,
        url: str | None = None,
        tokenizer: str = "char",
        vocab_size: int = 4096,
        tokenizer_file: str | None = None,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        val_batches: int | None = 20,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if tokenizer not in TOKENIZER_KINDS:
            raise ConfigError(
                f"unknown data.tokenizer {tokenizer!r}; choose one of {TOKENIZER_KINDS}"
            )
        if tokenizer == "bpe" and not tokenizer_file and vocab_size <= 256:
            raise ConfigError(
                f"data.vocab_size={vocab_size}: a byte-level BPE needs more than its 256 bytes"
            )
        if tokenizer_file:
            if tokenizer != "bpe":
                raise ConfigError("data.tokenizer_file is a tokenizer.json: set data.tokenizer=bpe")
            if not Path(tokenizer_file).expanduser().is_file():
                raise ConfigError(f"data.tokenizer_file {tokenizer_file} does not exist")
        if url and not isinstance(path, str):
            raise ConfigError("data.url downloads one file: data.path must be that file's path")
        self.save_hyperparameters()
        self.path = path
        self._token_file: TokenFile | None = None
        self.train_set: TokenWindows | None = None
        self.val_set: TokenWindows | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        return self._load().tokenizer

    @property
    def batch_keys(self) -> frozenset[str]:
        return frozenset({"tokens"})

    def model_kwargs(self) -> dict[str, Any]:
        self._splits()  # a text too short for one window says so before a model is built
        return {"tokenizer_state": self.tokenizer.state_dict()}

    def prepare_data(self) -> None:
        if not self.hparams.url:
            return
        path = Path(self.path).expanduser()
        if path.is_file():
            return
        # Download under a name of this process, then rename: processes that start together
        # (torchrun, SLURM) never read a half-written file.
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        try:
            with removing_new_folders(path.parent):
                download_url(self.hparams.url, str(path.parent), partial.name)
                partial.replace(path)
        except Exception as err:  # urllib and socket raise their own kinds
            partial.unlink(missing_ok=True)
            raise DatasetError(
                f"{path} does not exist and could not be downloaded from {self.hparams.url} "
                f"({one_line(err)}). Put the file there, {DATA_DIR_HINT}."
            ) from err

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, val = (self._load().memmap(start, stop) for start, stop in self._splits())
        block = self.hparams.block_size
        self.train_set = TokenWindows(train, block, range(len(train) - block))
        if self.hparams.val_batches is None:  # every token once, in non-overlapping windows
            val_starts = range(0, len(val) - block, block)
        else:
            num_val_windows = self.hparams.val_batches * self.hparams.batch_size
            val_starts = torch.linspace(0, len(val) - block - 1, num_val_windows).long()
        self.val_set = TokenWindows(val, block, val_starts)

    def train_dataloader(self) -> DataLoader:
        num_tokens = len(self.train_set) + self.hparams.block_size
        windows_per_epoch = max(num_tokens // self.hparams.block_size, self.hparams.batch_size)
        sampler = EpochSeededOffsetSampler(
            len(self.train_set), self.hparams.seed, windows_per_epoch
        )
        return self.make_loader(self.train_set, train=True, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self.make_loader(self.val_set)

    def _splits(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (start, stop) of the training and validation tokens, each long enough for one
        window."""
        num_tokens, block = self._load().num_tokens, self.hparams.block_size
        num_train = num_tokens - int(num_tokens * self.hparams.val_fraction)
        splits = (0, num_train), (num_train, num_tokens)
        for name, (start, stop) in zip(("training", "validation"), splits, strict=True):
            if stop - start < block + 1:
                raise DatasetError(
                    f"{self._source}: the {name} split has {stop - start} tokens, fewer than "
                    f"block_size + 1 = {block + 1}; use a longer text or a smaller model.block_size"
                )
        return splits

    @property
    def _source(self) -> str:
        return str(self.path) if isinstance(self.path, str) else f"data.path {list(self.path)}"

    def _load(self) -> TokenFile:
        """The token file of the corpus, tokenized once (through the on-disk cache)."""
        if self._token_file is not None:
            return self._token_file
        self.prepare_data()
        files = corpus_files(self.path)
        if not any(file.stat().st_size for file in files):
            raise DatasetError(f"{self._source} is empty")
        cache = self._cache_path(files, corpus_digest(files, self._tokenizer_settings()))
        if cache.is_file():
            self._token_file = TokenFile.read(cache, self.hparams.tokenizer)
            if self._token_file is not None:
                return self._token_file
            log.warning("token file %s does not match %s; tokenizing again", cache, self._source)
        started = time.perf_counter()
        log.info("Tokenizing %d file(s) of %s into %s", len(files), self._source, cache)
        self._token_file = TokenFile.write(cache, self._make_tokenizer(files), read_text(files))
        log.info(
            "%s tokens in %.0f s", f"{self._token_file.num_tokens:,}", time.perf_counter() - started
        )
        return self._token_file

    def _make_tokenizer(self, files: list[Path]) -> Tokenizer:
        hp = self.hparams
        if not hp.tokenizer_file:
            return build_tokenizer(hp.tokenizer, read_text(files), hp.vocab_size)
        try:
            return BPETokenizer.from_file(Path(hp.tokenizer_file).expanduser())
        except Exception as err:  # the library raises its own kind for a file it cannot read
            raise ConfigError(
                f"data.tokenizer_file {hp.tokenizer_file} is not a tokenizer.json: {one_line(err)}"
            ) from err

    def _tokenizer_settings(self) -> str:
        """What decides the tokens besides the text, for the token file's key."""
        hp = self.hparams
        settings: dict[str, Any] = {"tokenizer": hp.tokenizer}
        if hp.tokenizer_file:
            tokenizer_json = Path(hp.tokenizer_file).expanduser().read_bytes()
            settings["tokenizer_file"] = hashlib.sha256(tokenizer_json).hexdigest()
        elif hp.tokenizer == "bpe":
            settings["vocab_size"] = hp.vocab_size
        return json.dumps(settings, sort_keys=True)

    def _cache_path(self, files: list[Path], digest: str) -> Path:
        # Next to the text when that folder is writable (data folders may be read-only). Root
        # may write anywhere, so a folder without write bits counts as read-only too.
        parent = Path(os.path.commonpath([file.parent.absolute() for file in files]))
        writable = os.access(parent, os.W_OK) and parent.stat().st_mode & stat.S_IWUSR
        folder = parent if writable else Path(self.hparams.cache_dir).expanduser()
        name = files[0].stem if len(files) == 1 else parent.name or "corpus"
        return folder / f"{name}.{self.hparams.tokenizer}-{digest}{TOKEN_FILE_SUFFIX}"
