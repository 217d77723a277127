"""Caption templates: every caption names its class; held-out templates never reach training."""

import torch

from aigc.data.captions import DIGITS


def test_every_template_names_the_class() -> None:
    for template in DIGITS.train_templates + DIGITS.heldout_templates:
        captions = {DIGITS.caption(template, label) for label in range(10)}
        assert len(captions) == 10, template  # ten different captions: the class is in each


def test_heldout_templates_never_reach_training() -> None:
    heldout = {caption for caption, _ in DIGITS.prompts(heldout=True)}
    training = {caption for caption, _ in DIGITS.prompts(heldout=False)}
    assert not heldout & training
    labels = torch.arange(10).repeat(500)
    drawn = DIGITS.draw(labels, seed=0)
    assert set(drawn) <= training and not set(drawn) & heldout
    assert len(set(drawn)) == len(training)  # 5,000 draws use every training caption


def test_captions_in_several_languages() -> None:
    seven = {caption for caption, label in DIGITS.prompts(heldout=False) if label == 7}
    assert {"a handwritten seven", "the digit 7", "sieben", "七", "siete"} <= seven


def test_draws_are_seeded() -> None:
    labels = torch.arange(10)
    assert DIGITS.draw(labels, 0) == DIGITS.draw(labels, 0) != DIGITS.draw(labels, 1)
    assert DIGITS.sample_prompts()[7] == DIGITS.caption(DIGITS.train_templates[7], 7)
