from pathlib import Path

import pytest
import torch

import aigc.data.text as text_module
from aigc.data import TextDataModule
from aigc.errors import DatasetError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40


def make_datamodule(path: Path, tmp_path: Path, **kwargs) -> TextDataModule:
    options = {
        "block_size": 16,
        "batch_size": 4,
        "val_batches": 3,
        "cache_dir": str(tmp_path / "cache"),
    }
    dm = TextDataModule(path=str(path), **{**options, **kwargs})
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
    (cache,) = text_file.parent.glob("input.char-*.tokens.pt")

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
    assert len(list(text_file.parent.glob("input.char-*.tokens.pt"))) == 2


@pytest.mark.parametrize(
    "forged",
    [
        b"not a checkpoint",
        {
            "tokens": torch.zeros(1000, dtype=torch.int16),
            "tokenizer": {"kind": "char", "chars": "ab"},
        },
        {"tokens": torch.zeros(len(TEXT), dtype=torch.int16), "tokenizer": {"kind": "byte"}},
        {
            "tokens": torch.full((len(TEXT),), 999, dtype=torch.int16),
            "tokenizer": {"kind": "char", "chars": "ab"},
        },
        {"ids": torch.zeros(3)},
    ],
    ids=["damaged", "other-count", "other-tokenizer", "ids-out-of-range", "other-keys"],
)
def test_a_cache_that_does_not_match_its_text_is_rebuilt(
    text_file: Path, tmp_path: Path, forged
) -> None:
    reference = make_datamodule(text_file, tmp_path)
    (cache,) = text_file.parent.glob("input.char-*.tokens.pt")
    if isinstance(forged, bytes):
        cache.write_bytes(forged)
    else:
        torch.save(forged, cache)
    dm = make_datamodule(text_file, tmp_path)
    assert torch.equal(dm.train_set.tokens, reference.train_set.tokens)
    assert dm.tokenizer.chars == reference.tokenizer.chars
    assert torch.load(cache, weights_only=True)["tokens"].shape == (len(TEXT),)


def test_read_only_data_folder_caches_in_project_cache(
    text_file: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(text_module.os, "access", lambda path, mode: False)
    make_datamodule(text_file, tmp_path)
    assert not list(text_file.parent.glob("*.tokens.pt"))
    assert len(list((tmp_path / "cache").glob("input.char-*.tokens.pt"))) == 1


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
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".tokens.pt")) == [
        "input.txt"
    ]
    assert len(dm.train_set) > 0


def test_unknown_tokenizer(text_file: Path, tmp_path: Path) -> None:
    from aigc.errors import ConfigError

    with pytest.raises(ConfigError, match="choose one of"):
        make_datamodule(text_file, tmp_path, tokenizer="bpe")


def test_missing_file_without_url(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"set data\.path"):
        make_datamodule(tmp_path / "nope.txt", tmp_path)
