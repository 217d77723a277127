import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import tokenizers
import torch

import aigc.data.corpus as corpus_module
import aigc.data.text as text_module
from aigc.data import TextDataModule
from aigc.data.corpus import token_dtype
from aigc.data.samplers import EpochSeededOffsetSampler
from aigc.errors import ConfigError, DatasetError
from aigc.tokenizers import BPETokenizer, tokenizer_from_state

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40


def make_datamodule(path: Path, tmp_path: Path, **kwargs) -> TextDataModule:
    options = {
        "block_size": 16,
        "batch_size": 4,
        "val_batches": 3,
        "cache_dir": str(tmp_path / "cache"),
    }
    path = path if isinstance(path, list) else str(path)
    dm = TextDataModule(path=path, **{**options, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus" / "input.txt"
    path.parent.mkdir()
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_windows_are_next_token_pairs(text_file: Path, tmp_path: Path) -> None:
    dm = make_datamodule(text_file, tmp_path)
    assert dm.batch_keys == {"tokens"}
    tokens = next(iter(dm.train_dataloader()))["tokens"]
    assert tokens.shape == (4, 17) and tokens.dtype == torch.long  # block_size + 1: in and target
    assert dm.tokenizer.decode(tokens[0]) in TEXT


def test_split_is_90_10_and_epoch_covers_the_tokens_once(text_file: Path, tmp_path: Path) -> None:
    dm = make_datamodule(text_file, tmp_path)
    num_tokens = len(TEXT)
    assert len(dm.val_set.tokens) == num_tokens // 10
    assert len(dm.train_dataloader()) == (len(dm.train_set.tokens) // 16) // 4


def test_validation_windows_are_fixed(text_file: Path, tmp_path: Path) -> None:
    a = make_datamodule(text_file, tmp_path, seed=1)
    b = make_datamodule(text_file, tmp_path, seed=2)
    batches_a, batches_b = list(a.val_dataloader()), list(b.val_dataloader())
    assert len(batches_a) == 3
    for batch_a, batch_b in zip(batches_a, batches_b, strict=True):
        assert torch.equal(batch_a["tokens"], batch_b["tokens"])


def test_byte_tokenizer_on_non_ascii_text(tmp_path: Path) -> None:
    path = tmp_path / "poem.txt"
    path.write_text("Grüße aus Köln — 日本語のテキスト 🙂\n" * 30, encoding="utf-8")
    dm = make_datamodule(path, tmp_path, tokenizer="byte")
    assert dm.tokenizer.vocab_size == 256
    assert dm.model_kwargs() == {"tokenizer_state": {"kind": "byte"}}


def test_tokens_are_cached_next_to_the_text(text_file: Path, tmp_path: Path, monkeypatch) -> None:
    make_datamodule(text_file, tmp_path)
    (cache,) = text_file.parent.glob("input.char-*.tokens.bin")

    def fail(*args):
        raise AssertionError("tokenized again despite the cache")

    monkeypatch.setattr(text_module, "build_tokenizer", fail)
    again = make_datamodule(text_file, tmp_path)
    assert again.tokenizer.vocab_size == len(set(TEXT))
    assert cache.is_file()


def test_cache_is_keyed_by_content(text_file: Path, tmp_path: Path) -> None:
    make_datamodule(text_file, tmp_path)
    text_file.write_text(TEXT + "Zebra!\n", encoding="utf-8")
    dm = make_datamodule(text_file, tmp_path)
    assert "Z" in dm.tokenizer.chars
    assert len(list(text_file.parent.glob("input.char-*.tokens.bin"))) == 2


def forge(cache: Path, how: str) -> None:
    """Damages a token file, or makes it hold something else than the text's tokens."""
    data = bytearray(cache.read_bytes())
    length = int.from_bytes(data[-16:-8], "little")
    state = json.loads(data[-16 - length : -16])
    tokens = data[: -16 - length]
    if how == "damaged":
        data = b"not a token file"
    elif how == "truncated":
        data = data[2:]
    elif how == "other-count":
        state["num_tokens"] -= 1
    elif how == "other-tokenizer":
        state["tokenizer"] = {"kind": "byte"}
    elif how == "other-dtype":
        state["dtype"] = "<u4"
    elif how == "ids-out-of-range":
        state["tokenizer"]["chars"] = state["tokenizer"]["chars"][:3]
    elif how == "other-keys":
        state = {"ids": [1, 2]}
    if how not in ("damaged", "truncated"):
        header = json.dumps(state).encode()
        data = tokens + header + len(header).to_bytes(8, "little") + data[-8:]
    cache.write_bytes(data)


@pytest.mark.parametrize(
    "how",
    [
        "damaged",
        "truncated",
        "other-count",
        "other-tokenizer",
        "other-dtype",
        "ids-out-of-range",
        "other-keys",
    ],
)
def test_a_cache_that_does_not_match_its_text_is_rebuilt(
    text_file: Path, tmp_path: Path, how: str
) -> None:
    reference = make_datamodule(text_file, tmp_path)
    (cache,) = text_file.parent.glob("input.char-*.tokens.bin")
    expected = cache.read_bytes()
    forge(cache, how)
    dm = make_datamodule(text_file, tmp_path)
    assert dm.tokenizer.chars == reference.tokenizer.chars
    assert cache.read_bytes() == expected


def test_read_only_data_folder_caches_in_project_cache(
    text_file: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(text_module.os, "access", lambda path, mode: False)
    make_datamodule(text_file, tmp_path)
    assert not list(text_file.parent.glob("*.tokens.bin"))
    assert len(list((tmp_path / "cache").glob("input.char-*.tokens.bin"))) == 1


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        make_datamodule(path, tmp_path)


def test_file_shorter_than_a_block(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("to be or not to be, that is the question")
    with pytest.raises(DatasetError, match=r"fewer than block_size \+ 1 = 17"):
        make_datamodule(path, tmp_path)


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait\n".encode("latin-1") * 50)
    with pytest.raises(DatasetError, match=r"is not UTF-8 text .*0xe9 at offset 3"):
        make_datamodule(path, tmp_path)


def test_missing_file_offline_says_where_to_put_it(tmp_path: Path, no_network: None) -> None:
    path = tmp_path / "data" / "tinyshakespeare" / "input.txt"
    with pytest.raises(DatasetError) as err:
        make_datamodule(path, tmp_path, url="https://example.invalid/input.txt")
    assert f"{path} does not exist and could not be downloaded" in str(err.value)
    assert "AIGC_DATA_DIR" in str(err.value)
    assert not (tmp_path / "data").exists(), "a failed download leaves no folders behind"


def test_download_appears_whole_under_its_name(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "data" / "input.txt"
    seen = []

    def fake_download(url: str, root: str, filename: str) -> None:
        # Written under a temporary name: ranks starting together never see half a file.
        seen.append(filename)
        assert not path.exists()
        Path(root).mkdir(parents=True, exist_ok=True)  # as download_url does
        (Path(root) / filename).write_text(TEXT, encoding="utf-8")

    monkeypatch.setattr(text_module, "download_url", fake_download)
    dm = make_datamodule(path, tmp_path, url="https://example.invalid/input.txt")
    assert seen[0] != path.name
    assert path.read_text(encoding="utf-8") == TEXT
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".tokens.bin")) == [
        "input.txt"
    ]
    assert len(dm.train_set) > 0


def test_unknown_tokenizer(text_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        make_datamodule(text_file, tmp_path, tokenizer="wordpiece")


def test_missing_file_without_url(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"set data\.path"):
        make_datamodule(tmp_path / "nope.txt", tmp_path)


@pytest.fixture
def books(tmp_path: Path) -> Path:
    """A folder of three texts, one in a subfolder, and a file that is not text."""
    folder = tmp_path / "books"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("Second book.\n" * 30, encoding="utf-8")
    (folder / "a.txt").write_text("First book, Grüße.\n" * 30, encoding="utf-8")
    (folder / "sub" / "c.txt").write_text("Third book.\n" * 30, encoding="utf-8")
    (folder / "cover.png").write_bytes(b"\x89PNG\r\n")
    return folder


def all_text(dm: TextDataModule) -> str:
    return dm.tokenizer.decode(np.concatenate([dm.train_set.tokens, dm.val_set.tokens]).tolist())


@pytest.mark.parametrize(
    "spec",
    [
        "{books}",
        "{books}/**/*.txt",
        ["{books}/a.txt", "{books}/b.txt", "{books}/sub/*.txt"],
    ],
    ids=["folder", "glob", "list"],
)
def test_many_files_are_one_corpus_in_sorted_order(books: Path, tmp_path: Path, spec) -> None:
    path = (
        spec.format(books=books) if isinstance(spec, str) else [s.format(books=books) for s in spec]
    )
    dm = TextDataModule(path=path, block_size=16, cache_dir=str(tmp_path / "cache"))
    dm.setup("fit")
    expected = "".join((books / name).read_text() for name in ("a.txt", "b.txt", "sub/c.txt"))
    assert all_text(dm) == expected
    (cache,) = books.glob("books.char-*.tokens.bin")  # in the folder that holds them all
    assert Path(dm.train_set.tokens.filename) == cache.absolute()


def test_a_glob_does_not_read_the_token_file_next_to_the_texts(books: Path, tmp_path: Path) -> None:
    first = make_datamodule(f"{books}/*.txt", tmp_path)
    assert list(books.glob("*.tokens.bin"))
    again = make_datamodule(f"{books}/*[xt]", tmp_path)  # also matches books.char-....tokens.bin
    assert all_text(again) == all_text(first)


def test_the_cache_key_covers_every_file(books: Path, tmp_path: Path) -> None:
    make_datamodule(books, tmp_path)
    (books / "sub" / "c.txt").write_text("Third book, revised.\n" * 30, encoding="utf-8")
    dm = make_datamodule(books, tmp_path)
    assert "revised" in all_text(dm)
    assert len(list(books.glob("books.char-*.tokens.bin"))) == 2


def test_training_reads_windows_from_a_memory_map(text_file: Path, tmp_path: Path) -> None:
    dm = make_datamodule(text_file, tmp_path)
    (cache,) = text_file.parent.glob("input.char-*.tokens.bin")
    for split in (dm.train_set, dm.val_set):
        assert isinstance(split.tokens, np.memmap) and split.tokens.dtype == np.uint16
        assert Path(split.tokens.filename) == cache
    tokens = np.concatenate([dm.train_set.tokens, dm.val_set.tokens])
    assert dm.tokenizer.decode(tokens.tolist()) == TEXT
    assert len(dm.train_set) == len(dm.train_set.tokens) - 16  # every offset, none listed
    # Worker processes receive where the tokens lie, not a copy of them.
    copy = pickle.loads(pickle.dumps(dm.train_set))
    assert len(pickle.dumps(dm.train_set)) < dm.train_set.tokens.nbytes / 4
    for index in (0, 7, len(copy) - 1):
        assert torch.equal(copy[index]["tokens"], dm.train_set[index]["tokens"])


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="Linux shows the maps in /proc")
def test_the_token_file_is_mapped_only_while_a_batch_is_read(
    text_file: Path, tmp_path: Path
) -> None:
    # Pages a map has read count as the process's memory while it lives: a long-lived map of a
    # large corpus would grow the process with every window read.
    dm = make_datamodule(text_file, tmp_path)
    (cache,) = text_file.parent.glob("input.char-*.tokens.bin")
    batches = [next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))]
    assert all(batch["tokens"].shape == (4, 17) for batch in batches)
    assert str(cache) not in Path("/proc/self/maps").read_text()


def test_token_file_type_follows_the_vocabulary_size(tmp_path: Path) -> None:
    assert token_dtype(256) == np.uint16 and token_dtype(2**16) == np.uint16
    assert token_dtype(2**16 + 1) == np.uint32
    # 70,000 distinct characters: more ids than uint16 holds.
    path = tmp_path / "many.txt"
    path.write_text("".join(chr(0x10000 + i) for i in range(70_000)), encoding="utf-8")
    dm = make_datamodule(path, tmp_path)
    assert dm.tokenizer.vocab_size == 70_000
    assert dm.train_set.tokens.dtype == np.uint32
    assert all_text(dm) == path.read_text(encoding="utf-8")


def test_text_is_read_in_chunks_at_line_ends(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 16)  # cuts characters of 2 to 4 bytes
    path = tmp_path / "poem.txt"
    path.write_text("Grüße\n日本\n🙂 ok\n" * 4 + "end", encoding="utf-8")
    chunks = list(corpus_module.read_text([path]))
    assert "".join(chunks) == path.read_text(encoding="utf-8")
    assert len(chunks) > 2 and all(chunk.endswith("\n") for chunk in chunks[:-1])
    # A line longer than a chunk is cut where the chunk ends, between characters.
    path.write_text("日本語のテキスト🙂" * 5, encoding="utf-8")
    assert "".join(corpus_module.read_text([path])) == path.read_text(encoding="utf-8")
    path.write_bytes("日本語\n".encode() * 3 + b"ok \xff")
    with pytest.raises(DatasetError, match=r"is not UTF-8 text .*0xff at offset 33"):
        list(corpus_module.read_text([path]))
    # A character cut by a chunk's end, broken in the next chunk: named at its first byte.
    path.write_bytes(b"x" * 14 + "日".encode()[:2] + b"A\n")
    with pytest.raises(DatasetError, match=r"is not UTF-8 text .*0xe6 at offset 14"):
        list(corpus_module.read_text([path]))


def test_bpe_trained_on_the_text(text_file: Path, tmp_path: Path) -> None:
    dm = make_datamodule(text_file, tmp_path, tokenizer="bpe", vocab_size=300)
    state = dm.model_kwargs()["tokenizer_state"]
    assert state["kind"] == "bpe" and 256 < dm.tokenizer.vocab_size <= 300
    assert len(dm.train_set.tokens) + len(dm.val_set.tokens) < len(TEXT) / 2  # merged
    assert all_text(dm) == TEXT
    assert tokenizer_from_state(state).encode(TEXT) == dm.tokenizer.encode(TEXT)
    # The vocabulary size is part of the key: another one tokenizes again.
    smaller = make_datamodule(text_file, tmp_path, tokenizer="bpe", vocab_size=280)
    assert smaller.tokenizer.vocab_size <= 280
    assert len(list(text_file.parent.glob("input.bpe-*.tokens.bin"))) == 2


def test_bpe_from_a_tokenizer_json(text_file: Path, tmp_path: Path) -> None:
    trained = BPETokenizer.train([TEXT], vocab_size=280)
    tokenizer_json = tmp_path / "tokenizer.json"
    tokenizers.Tokenizer.from_str(trained.state_dict()["json"]).save(str(tokenizer_json))
    options = {"tokenizer": "bpe", "tokenizer_file": str(tokenizer_json)}
    dm = make_datamodule(text_file, tmp_path, **options)
    assert dm.tokenizer.vocab_size == trained.vocab_size  # not data.vocab_size
    assert dm.tokenizer.encode(TEXT) == trained.encode(TEXT)
    assert all_text(dm) == TEXT
    # Another tokenizer.json is another key.
    BPETokenizer.train([TEXT], vocab_size=260)._tokenizer.save(str(tokenizer_json))
    assert make_datamodule(text_file, tmp_path, **options).tokenizer.vocab_size <= 260


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"path": "{tmp}/nothing/*.txt"},
            DatasetError,
            r"data.path '.*/nothing/\*.txt' matches no",
        ),
        ({"path": "{tmp}/empty"}, DatasetError, r"folder .*/empty holds no .txt files"),
        ({"path": []}, DatasetError, "data.path is an empty list"),
        ({"tokenizer": "bpe", "vocab_size": 256}, ConfigError, "a byte-level BPE needs more than"),
        (
            {"tokenizer": "bpe", "tokenizer_file": "{tmp}/gpt2/tokenizer.json"},
            ConfigError,
            r"data.tokenizer_file .*/gpt2/tokenizer.json does not exist",
        ),
        (
            {"tokenizer": "bpe", "tokenizer_file": "{tmp}/not-json.txt"},
            ConfigError,
            r"data.tokenizer_file .*/not-json.txt is not a tokenizer.json: ",
        ),
        (
            {"tokenizer_file": "{tmp}/not-json.txt"},
            ConfigError,
            "data.tokenizer_file is a tokenizer.json: set data.tokenizer=bpe",
        ),
        ({"url": "https://example.invalid/a.txt", "path": ["a.txt"]}, ConfigError, "one file"),
    ],
    ids=[
        "glob-matches-nothing",
        "folder-without-text",
        "empty-list",
        "small-bpe",
        "missing-tokenizer-json",
        "bad-tokenizer-json",
        "tokenizer-json-without-bpe",
        "url-with-a-list",
    ],
)
def test_bad_text_settings_are_one_line(text_file, tmp_path, options, error, message) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-json.txt").write_text("{not json")
    options = {"path": str(text_file), **options}
    options = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(error, match=message) as err:
        make_datamodule(options.pop("path"), tmp_path, **options)
    assert "\n" not in str(err.value)


def test_training_offsets_are_drawn_as_they_are_used() -> None:
    # A permutation of 10**12 offsets would not fit in memory; these take none per offset.
    sampler = EpochSeededOffsetSampler(10**12, seed=3, items_per_epoch=10**10)
    first = list(itertools.islice(sampler, 5))
    assert len(sampler) == 10**10 and all(0 <= i < 10**12 for i in first)
    assert list(itertools.islice(sampler, 5)) == first  # the same seed and epoch: the same
    sampler.set_epoch(1)
    assert list(itertools.islice(sampler, 5)) != first
