import pytest
import torch

from aigc.tokenizers import (
    ByteTokenizer,
    CharTokenizer,
    build_tokenizer,
    tokenizer_from_state,
)

ENGLISH = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
MULTILINGUAL = "héllo wörld — 日本語 🙂"


def test_char_round_trip_and_vocab():
    tok = CharTokenizer.from_text(ENGLISH)
    assert tok.chars == "".join(sorted(set(ENGLISH)))
    assert tok.vocab_size == len(set(ENGLISH))
    assert tok.unit == "character"
    ids = tok.encode(ENGLISH)
    assert len(ids) == len(ENGLISH)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == ENGLISH
    assert tok.decode(torch.tensor(ids)) == ENGLISH


def test_char_unknown_character_is_named():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"'z' is not in the vocabulary of the training text"):
        tok.encode("abz")


def test_char_rejects_repeated_or_empty_vocabulary():
    with pytest.raises(ValueError):
        CharTokenizer("aba")
    with pytest.raises(ValueError):
        CharTokenizer("")


def test_byte_round_trip_of_non_ascii_text():
    tok = ByteTokenizer()
    assert tok.vocab_size == 256
    assert tok.unit == "byte"
    ids = tok.encode(MULTILINGUAL)
    assert ids == list(MULTILINGUAL.encode("utf-8"))
    assert len(ids) > len(MULTILINGUAL)  # multi-byte characters
    assert tok.decode(ids) == MULTILINGUAL
    assert tok.decode(torch.tensor(ids)) == MULTILINGUAL


def test_byte_decode_of_a_cut_character_does_not_crash():
    ids = ByteTokenizer().encode("日本")
    assert ByteTokenizer().decode(ids[:-1]) == "日\ufffd"


def test_decode_rejects_a_2d_tensor():
    with pytest.raises(ValueError, match="1-D"):
        ByteTokenizer().decode(torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("kind", ["char", "byte"])
def test_state_round_trip_through_weights_only_checkpoint(kind, tmp_path):
    tok = build_tokenizer(kind, MULTILINGUAL)
    path = tmp_path / "ckpt.pt"
    torch.save({"tokenizer": tok.state_dict()}, path)
    state = torch.load(path, weights_only=True)["tokenizer"]
    assert state == tok.state_dict()
    rebuilt = tokenizer_from_state(state)
    assert type(rebuilt) is type(tok)
    assert rebuilt.vocab_size == tok.vocab_size
    assert rebuilt.encode(MULTILINGUAL) == tok.encode(MULTILINGUAL)


def test_unknown_kinds_raise():
    with pytest.raises(ValueError, match="'char' and 'byte'"):
        build_tokenizer("bpe", ENGLISH)
    with pytest.raises(ValueError, match="unknown tokenizer kind 'bpe'"):
        tokenizer_from_state({"kind": "bpe"})
