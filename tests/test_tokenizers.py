import pytest
import tokenizers
import torch

from aigc.tokenizers import (
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    build_tokenizer,
    tokenizer_from_state,
)

ENGLISH = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
MULTILINGUAL = "héllo wörld — 日本語 🙂"


def test_char_round_trip_and_vocab():
    tok = CharTokenizer.from_texts([ENGLISH])
    assert tok.chars == "".join(sorted(set(ENGLISH)))
    assert tok.vocab_size == len(set(ENGLISH))
    assert tok.unit == "character"
    ids = tok.encode(ENGLISH)
    assert len(ids) == len(ENGLISH)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == ENGLISH
    assert tok.decode(torch.tensor(ids)) == ENGLISH


def test_char_vocabulary_of_a_text_in_pieces_is_that_of_the_whole():
    pieces = [ENGLISH[:10], ENGLISH[10:40], ENGLISH[40:]]
    assert CharTokenizer.from_texts(pieces).chars == CharTokenizer.from_texts([ENGLISH]).chars


def test_char_ids_follow_the_vocabulary_order_given():
    tok = CharTokenizer("ba日")  # from a state: not necessarily sorted
    assert tok.encode("ab日a") == [1, 0, 2, 1]
    assert tok.encode_array("").tolist() == []


def test_char_unknown_character_is_named():
    tok = CharTokenizer.from_texts(["abc"])
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


@pytest.mark.parametrize("kind", ["char", "byte", "bpe"])
def test_state_round_trip_through_weights_only_checkpoint(kind, tmp_path):
    tok = build_tokenizer(kind, [MULTILINGUAL, ENGLISH], vocab_size=300)
    path = tmp_path / "ckpt.pt"
    torch.save({"tokenizer": tok.state_dict()}, path)
    state = torch.load(path, weights_only=True)["tokenizer"]
    assert state == tok.state_dict()
    rebuilt = tokenizer_from_state(state)
    assert type(rebuilt) is type(tok)
    assert rebuilt.vocab_size == tok.vocab_size
    assert rebuilt.encode(MULTILINGUAL) == tok.encode(MULTILINGUAL)


def test_unknown_kinds_raise():
    with pytest.raises(ValueError, match="valid kinds are char, byte, bpe"):
        build_tokenizer("wordpiece", [ENGLISH])
    with pytest.raises(ValueError, match="unknown tokenizer kind 'wordpiece'"):
        tokenizer_from_state({"kind": "wordpiece"})


def test_bpe_learns_merges_and_round_trips_any_text():
    tok = BPETokenizer.train([ENGLISH * 20, "Speak, speak.\n" * 20], vocab_size=300)
    assert 256 < tok.vocab_size <= 300
    assert tok.unit == "token"
    ids = tok.encode(ENGLISH)
    assert len(ids) < len(ENGLISH.encode("utf-8"))  # merges: fewer tokens than bytes
    assert tok.decode(ids) == ENGLISH
    # Byte-level: text it never saw, in any script, still round-trips.
    assert tok.decode(tok.encode(MULTILINGUAL)) == MULTILINGUAL
    assert tok.decode(torch.tensor(ids)) == ENGLISH


def test_bpe_encodes_line_by_line_as_the_library_does_the_whole_text():
    tok = BPETokenizer.train([ENGLISH * 20], vocab_size=300)
    library = tokenizers.Tokenizer.from_str(tok.state_dict()["json"])
    text = ENGLISH + "two  spaces\n\n\nand lines\r\nto end"
    assert tok.encode(text) == library.encode(text).ids
    indented = "def f():\n    return 1\n\tdone\n"  # indents are tokens of their own
    assert tok.decode(tok.encode(indented)) == indented


def test_bpe_needs_more_than_its_bytes():
    with pytest.raises(ValueError, match="vocab_size=256: a byte-level BPE needs more than 256"):
        BPETokenizer.train([ENGLISH], vocab_size=256)


def test_bpe_from_a_tokenizer_json(tmp_path):
    # A tokenizer.json of another kind than ours (word level, with special tokens) loads too.
    library = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({"[UNK]": 0, "speak": 1, ",": 2}, unk_token="[UNK]")
    )
    library.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    library.save(str(tmp_path / "tokenizer.json"))
    tok = BPETokenizer.from_file(tmp_path / "tokenizer.json")
    assert tok.vocab_size == 3
    assert tok.encode("speak , hear") == [1, 2, 0]
    assert tokenizer_from_state(tok.state_dict()).encode("speak") == [1]
