"""A text corpus on disk: its files, read and hashed in chunks, and its tokens in one cache file
that training memory-maps, so that a corpus larger than memory trains.

The token file holds the ids (uint16, or uint32 for vocabularies above 65,536) from its first
byte, so that ``np.memmap`` reads them in place; after them come the tokenizer's state and the
token count as JSON, then the JSON's length and a magic number.
"""

import codecs
import glob
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigc.errors import DatasetError
from aigc.tokenizers import Tokenizer, tokenizer_from_state

CHUNK_BYTES = 1 << 22  # read, hashed and tokenized 4 MiB at a time
TOKEN_FILE_SUFFIX = ".tokens.bin"
_MAGIC = b"AIGCTOK1"
_TRAILER = struct.Struct("<Q8s")  # the JSON's length, the magic number


def corpus_files(paths: str | Sequence[str]) -> list[Path]:
    """The files of ``data.path``: a file, a folder (the ``.txt`` files below it), a glob
    (``books/*.txt``; ``**`` matches folders at any depth) or a list of these, each in sorted
    order."""
    entries = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not entries:
        raise DatasetError("data.path is an empty list: name a text file, a folder or a glob")
    return [file for entry in entries for file in _files_of(str(entry))]


def _files_of(entry: str) -> list[Path]:
    path = Path(entry).expanduser()
    if any(char in entry for char in "*?["):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        # A glob such as books/* also matches the token file cached next to the books.
        files = [p for p in matches if p.is_file() and TOKEN_FILE_SUFFIX not in p.name]
        if not files:
            raise DatasetError(f"data.path {entry!r} matches no files")
        return files
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DatasetError(f"folder {path} holds no .txt files; name the files with a glob")
        return files
    if not path.is_file():
        raise DatasetError(
            f"text file {path} does not exist; set data.path to a text file, a folder or a glob"
        )
    return [path]


def corpus_digest(files: Sequence[Path], settings: str) -> str:
    """A short SHA-256 of the files' contents in order (each after its length, so that where one
    file ends counts too) and of ``settings``, read in chunks."""
    digest = hashlib.sha256(settings.encode())
    for file in files:
        digest.update(struct.pack("<Q", file.stat().st_size))
        with file.open("rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def read_text(files: Sequence[Path]) -> Iterator[str]:
    """The files' text in chunks of about ``CHUNK_BYTES`` that end at a line end where the chunk
    has one, so that no word is cut in two; a byte that is not UTF-8 is a DatasetError that
    names the file and the byte's offset."""
    for file in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, rest = 0, ""  # bytes of the file read so far; text after the last line end
        with file.open("rb") as f:
            while True:
                raw = f.read(CHUNK_BYTES)
                pending = len(decoder.getstate()[0])  # the start of a character cut in two
                try:
                    text = rest + decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as err:
                    raise DatasetError(
                        f"{file} is not UTF-8 text (invalid byte {err.object[err.start]:#04x} at "
                        f"offset {offset - pending + err.start}); convert it to UTF-8"
                    ) from err
                offset += len(raw)
                if not raw:
                    if text:
                        yield text
                    break
                cut = text.rfind("\n") + 1 or len(text)
                text, rest = text[:cut], text[cut:]
                if text:
                    yield text


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer that holds every id: uint16 up to 65,536 tokens."""
    return np.dtype("<u2" if vocab_size <= 2**16 else "<u4")


@dataclass(frozen=True)
class TokenFile:
    """A token file: where it is, its ids' type and number, and the tokenizer that made them."""

    path: Path
    dtype: np.dtype
    num_tokens: int
    tokenizer: Tokenizer

    def memmap(self, start: int, stop: int) -> np.memmap:
        """Tokens ``[start, stop)``, mapped from the file: only what is read is loaded."""
        offset = start * self.dtype.itemsize
        return np.memmap(self.path, self.dtype, mode="r", offset=offset, shape=(stop - start,))

    @classmethod
    def write(cls, path: Path, tokenizer: Tokenizer, texts: Iterable[str]) -> "TokenFile":
        """Tokenizes ``texts`` into a token file at ``path``, a chunk at a time. It is written
        under a temporary name, then renamed: it appears whole or not at all."""
        dtype = token_dtype(tokenizer.vocab_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with partial.open("wb") as f:
                num_tokens = 0
                for text in texts:
                    ids = tokenizer.encode_array(text)
                    f.write(ids.astype(dtype).tobytes())
                    num_tokens += len(ids)
                state = {
                    "tokenizer": tokenizer.state_dict(),
                    "num_tokens": num_tokens,
                    "dtype": dtype.str,
                }
                header = json.dumps(state).encode()
                f.write(header + _TRAILER.pack(len(header), _MAGIC))
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return cls(path, dtype, num_tokens, tokenizer)

    @classmethod
    def read(cls, path: Path, kind: str) -> "TokenFile | None":
        """The token file at ``path``, or None when it is damaged or holds something else than
        tokens of a ``kind`` tokenizer (a wrong length, another type, ids out of range)."""
        try:
            with path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(size - _TRAILER.size)
                length, magic = _TRAILER.unpack(f.read(_TRAILER.size))
                f.seek(size - _TRAILER.size - length)
                state = json.loads(f.read(length))
            tokenizer = tokenizer_from_state(state["tokenizer"])
            dtype, num_tokens = np.dtype(state["dtype"]), int(state["num_tokens"])
        except Exception:  # OSError, struct, JSON, a missing key, a bad state: rebuilt all the same
            return None
        matches = (
            magic == _MAGIC
            and tokenizer.kind == kind
            and dtype == token_dtype(tokenizer.vocab_size)
            and num_tokens * dtype.itemsize + length + _TRAILER.size == size
        )
        if not matches or not _ids_below(path, dtype, num_tokens, tokenizer.vocab_size):
            return None
        return cls(path, dtype, num_tokens, tokenizer)


def _ids_below(path: Path, dtype: np.dtype, num_tokens: int, vocab_size: int) -> bool:
    """Whether every id in the file is below ``vocab_size``: read in chunks, not mapped, so that
    the check leaves nothing of the file in the process's memory."""
    with path.open("rb") as f:
        for start in range(0, num_tokens, CHUNK_BYTES):
            ids = np.fromfile(f, dtype, count=min(CHUNK_BYTES, num_tokens - start))
            if ids.max() >= vocab_size:
                return False
    return True
