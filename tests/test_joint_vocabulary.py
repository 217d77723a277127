"""The joint vocabulary of the text + image GPT: disjoint ids, lossless segments, and refusals."""

import pytest
import torch

from aigc.tokenizers.joint import JointVocabulary


def test_text_image_and_special_ids_are_disjoint_and_fill_the_vocabulary() -> None:
    vocab = JointVocabulary(image_vocab_size=1000, tokens_per_image=49)
    specials = set(vocab.special.values())
    assert (
        vocab.vocab_size
        == 256 + 1000 + 5
        == len(specials) + len(vocab.text_ids) + len(vocab.image_ids)
    )
    assert not set(vocab.text_ids) & set(vocab.image_ids)
    assert not specials & (set(vocab.text_ids) | set(vocab.image_ids))
    assert max(specials) == vocab.vocab_size - 1


def test_a_caption_then_an_image_reads_back_exactly() -> None:
    vocab = JointVocabulary(image_vocab_size=12, tokens_per_image=4)
    codes = torch.tensor([0, 11, 5, 5])
    caption = "sëven, handwritten"  # ë is two bytes
    ids = torch.cat([torch.tensor(vocab.text(caption)), vocab.image(codes)])
    assert len(ids) == len(caption.encode()) + 2 + 4 + 2
    assert vocab.read_text(ids) == caption
    assert torch.equal(vocab.read_image(ids), codes)
    # And in the other order, with the caption cut short in the middle of the ë.
    ids = torch.cat([vocab.image(codes), torch.tensor(vocab.text(caption))[:3]])
    assert torch.equal(vocab.read_image(ids), codes)
    assert vocab.read_text(ids) == "s\ufffd"


def test_a_sequence_that_ends_mid_image_is_refused() -> None:
    vocab = JointVocabulary(image_vocab_size=12, tokens_per_image=4)
    ids = vocab.image(torch.tensor([1, 2, 3, 4]))[:-2]
    with pytest.raises(ValueError, match="ends mid-image: 3 of 4 codes"):
        vocab.read_image(ids)


def test_segments_holding_the_wrong_ids_are_refused() -> None:
    vocab = JointVocabulary(image_vocab_size=12, tokens_per_image=4)
    text, image = vocab.text("7"), vocab.image(torch.tensor([1, 2, 3, 4])).tolist()
    with pytest.raises(ValueError, match="holds no image"):
        vocab.read_image(text)
    with pytest.raises(ValueError, match="holds no text"):
        vocab.read_text(image)
    with pytest.raises(ValueError, match="not image codes"):
        vocab.read_image([image[0], image[1], ord("a"), *image[3:]])
    with pytest.raises(ValueError, match="not a byte"):
        vocab.read_text([text[0], image[1], *text[1:]])


def test_image_codes_of_the_wrong_count_or_range_are_refused() -> None:
    vocab = JointVocabulary(image_vocab_size=12, tokens_per_image=4)
    with pytest.raises(ValueError, match="an image is 4 codes"):
        vocab.image(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"must be in \[0, 12\)"):
        vocab.image(torch.tensor([1, 2, 3, 12]))


def test_the_state_rebuilds_the_vocabulary_and_names_its_kind() -> None:
    vocab = JointVocabulary(image_vocab_size=12, tokens_per_image=4)
    again = JointVocabulary.from_state(vocab.state_dict())
    assert again.special == vocab.special and again.vocab_size == vocab.vocab_size
    with pytest.raises(ValueError, match="not a joint vocabulary"):
        JointVocabulary.from_state({"kind": "byte"})
