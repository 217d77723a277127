"""Caption templates: every caption names its class; held-out templates never reach training."""

import re

import torch

from aigc.data.captions import DIGITS


def all_captions(templates) -> set[tuple[str, int]]:
    return {(DIGITS.caption(t, label), label) for t in templates for label in range(10)}


def test_every_template_names_the_class() -> None:
    for template in DIGITS.train_templates + DIGITS.heldout_templates:
        captions = {DIGITS.caption(template, label) for label in range(10)}
        assert len(captions) == 10, template  # ten different captions: the class is in each


def test_no_template_names_another_number() -> None:
    # The words around the class word name no number, or a caption would name two classes
    # (as "写一个七", "write a seven", does: its 一 is "one"). The one exception is the French
    # and Spanish article "un", which always stands right before the class word.
    numbers = {word for words in DIGITS.fields.values() for word in words}
    for template in DIGITS.train_templates + DIGITS.heldout_templates:
        context = re.sub(r"\{\w+\}", " ", template)
        assert not set(re.findall(r"\w+", context)) & (numbers - {"un"}), template
        assert not any(char in context for char in DIGITS.fields["zh"]), template


def test_heldout_templates_never_reach_training() -> None:
    training = all_captions(DIGITS.train_templates)
    heldout = all_captions(DIGITS.heldout_templates)
    assert not {c for c, _ in heldout} & {c for c, _ in training}
    labels = torch.arange(10).repeat(500)
    drawn = set(zip(DIGITS.draw(labels, seed=0), labels.tolist(), strict=True))
    assert drawn <= training  # each caption names its own label
    scored = set(DIGITS.prompts(heldout=False))
    assert scored <= training and len(scored) == 5 * 10 * 10  # 10 templates a language
    assert set(DIGITS.prompts(heldout=True)) == heldout


def test_captions_in_several_languages_and_contexts() -> None:
    seven = {caption for caption, label in all_captions(DIGITS.train_templates) if label == 7}
    expected = {"a handwritten seven", "the digit 7", "sieben", "七", "siete", "seven in ink"}
    assert expected <= seven
    drawn = DIGITS.draw(torch.full((1000,), 7), seed=0)
    for word in ("seven", "sieben", "sept", "siete", "七"):  # every language is drawn
        assert sum(word in caption for caption in drawn) > 100, word


def test_draws_are_seeded() -> None:
    labels = torch.arange(10)
    assert DIGITS.draw(labels, 0) == DIGITS.draw(labels, 0) != DIGITS.draw(labels, 1)
    prompts = DIGITS.sample_prompts()
    assert set(zip(prompts, range(10), strict=True)) <= all_captions(DIGITS.train_templates)


def test_a_caption_in_any_template_wording_names_its_class() -> None:
    for template in (*DIGITS.train_templates, *DIGITS.heldout_templates):
        for label in range(10):
            assert DIGITS.label_of(DIGITS.caption(template, label)) == label, template
    assert DIGITS.label_of(" a handwritten seven\n") == 7  # as a caption is cut
    assert DIGITS.label_of("a handwritten sevenn") is None  # any other wording is no answer
    assert DIGITS.label_of("seven or eight") is None
