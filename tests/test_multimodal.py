"""The text + image GPT: its rows, decoding held to one kind of token, guidance, best-of-k
drawing, captioning, a tiny model that learns two pairs both ways, and the error lines. The
contract test covers training, reloading, exports and exact resumes."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    TINY_MULTIMODAL,
    compose_config,
    guided_draws_with_and_without_cache,
    tiny_classifier,
    tiny_image_tokenizer,
    write_tiny_idx_dataset,
)
from PIL import Image

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.errors import CheckpointError, ConfigError
from aigc.evaluate import evaluate
from aigc.generate import generate
from aigc.models.multimodal import TextImageModel
from aigc.models.multimodal import module as multimodal_module
from aigc.models.multimodal.module import with_made_up_word
from aigc.models.vqvae import VQVAE
from aigc.nn.transformer import causal_mask
from aigc.train import train

TOKENIZER = dict(image_shape=(1, 28, 28), widths=(8, 8, 8), norm_groups=4, levels=(4, 3))
PAIRS = ["a one", "the digit two"]


def tiny_model(**kwargs) -> TextImageModel:
    torch.manual_seed(0)
    sizes = dict(n_layer=2, n_head=2, n_embd=32, max_text_bytes=16, sample_prompts=PAIRS)
    return TextImageModel(VQVAE(**TOKENIZER).hparams, (1, 28, 28), **{**sizes, **kwargs})


def test_rows_put_each_segment_at_the_same_place_in_both_orders() -> None:
    model = tiny_model()
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    codes = model.image_tokenizer.encode(images)
    rows = model.rows(PAIRS, codes, torch.tensor([False, True]))
    special, vocab = model.vocab.special, model.vocab
    # The caption segment is cut to the longest caption (13 bytes + 2); the image's is 49 + 2.
    assert rows.shape == (2, 15 + 51)
    assert rows[0, 0] == special["begin_text"] and rows[0, 15] == special["begin_image"]
    assert rows[0, 7:15].eq(special["pad"]).all() and rows[1, 51:].ne(special["pad"]).all()
    assert rows[1, 0] == special["begin_image"] and rows[1, 51] == special["begin_text"]
    assert vocab.read_text(rows[0]) == PAIRS[0] and vocab.read_text(rows[1]) == PAIRS[1]
    assert torch.equal(vocab.read_image(rows[0]), codes[0])
    assert torch.equal(vocab.read_image(rows[1]), codes[1])


def test_learned_positions_name_slots_and_rotary_ones_a_rows_places() -> None:
    order = torch.tensor([False, True])  # caption first, image first
    places = torch.arange(18 + 51)
    slots = torch.cat([places[18:], places[:18]])  # the image's slot, then the caption's
    learned = tiny_model(position_encoding="learned").positions(order)
    assert torch.equal(learned, torch.stack([places, slots]))
    rotary = tiny_model(position_encoding="rotary").positions(order)
    assert torch.equal(rotary, torch.stack([places, places]))
    # Caption segments cut to 7 tokens keep their tokens' ids.
    cut = torch.cat([places[:7], places[18:]])
    learned = tiny_model(position_encoding="learned").positions(order, 7)
    assert torch.equal(learned, torch.stack([cut, torch.cat([places[18:], places[:7]])]))
    rotary = tiny_model(position_encoding="rotary").positions(order, 7)
    assert torch.equal(rotary, torch.stack([cut, places[: 51 + 7]]))


@pytest.mark.parametrize(
    ("prefix_lm", "position_encoding"), [(False, "learned"), (True, "learned"), (False, "rotary")]
)
def test_no_token_sees_padding(
    prefix_lm: bool, position_encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(prefix_lm=prefix_lm, position_encoding=position_encoding).eval()
    codes = model.image_tokenizer.encode(torch.rand(4, 1, 28, 28) * 2 - 1)
    order = torch.tensor([False, True, False, True])
    texts = [*PAIRS, *PAIRS[::-1]]
    cut = model.rows(texts, codes, order)  # caption segments of 15 tokens
    monkeypatch.setattr(model, "caption_length", lambda texts: model.text_length)
    whole = model.rows(texts, codes, order)  # of 18
    logits = [model.next_token_logits(model.network, rows, order) for rows in (cut, whole)]
    pad = model.vocab.special["pad"]
    assert cut.eq(pad).any()
    for i in range(len(texts)):  # the logits of each row's real tokens (whole rows have more)
        kept = [rows[i, :-1] != pad for rows in (cut, whole)]
        expected = logits[1][i][kept[1]][: int(kept[0].sum())]
        torch.testing.assert_close(logits[0][i][kept[0]], expected)

    # In drawing too: an image drawn for a prompt is the same in a batch with a longer prompt.
    monkeypatch.undo()
    prompt = [PAIRS[0]]
    alone = model.sample(1, condition=Condition(texts=prompt), temperature=0.0, guidance_scale=3)
    batch = model.sample(2, condition=Condition(texts=PAIRS), temperature=0.0, guidance_scale=3)
    torch.testing.assert_close(alone.images[0], batch.images[0])


@pytest.mark.parametrize("position_encoding", ["learned", "rotary"])
def test_decoding_draws_only_allowed_ids_and_the_cache_changes_nothing(
    position_encoding: str,
) -> None:
    model = tiny_model(position_encoding=position_encoding).eval()
    draws = guided_draws_with_and_without_cache(model, PAIRS)
    assert draws[0].shape == (2, 49) and torch.equal(draws[0], draws[1])
    assert all(i in model.vocab.image_ids for i in draws[0].flatten().tolist())


def test_the_guidance_interval_guides_only_its_image_tokens() -> None:
    model = tiny_model().eval()
    prefix, free = model.image_prefixes(PAIRS), model.image_prefixes(["", ""], 15)
    allowed = model.allowed(model.vocab.image_ids)

    def draw(scale: float, interval: tuple[int, int] | None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return model.network.decode(
            prefix, 49, allowed, generator=generator, guidance_scale=scale,
            unconditional=free, guidance_interval=interval,
        )  # fmt: skip

    # A large scale, so that the tiny untrained model's guided draws differ from its unguided ones.
    guided, unguided = draw(20.0, None), draw(1.0, None)
    assert torch.equal(draw(20.0, (0, 48)), guided)
    early, late = draw(20.0, (0, 9)), draw(20.0, (10, 48))
    assert torch.equal(early[:, :10], guided[:, :10]) and not torch.equal(early, guided)
    assert torch.equal(late[:, :10], unguided[:, :10]) and not torch.equal(late, unguided)


def test_guidance_scale_1_is_the_conditional_model() -> None:
    model = tiny_model().eval()
    condition = Condition(texts=PAIRS)

    def draw(**settings) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return model.sample(2, condition=condition, generator=generator, **settings).images

    torch.testing.assert_close(draw(), draw(guidance_scale=1.0), rtol=0, atol=0)
    assert not torch.equal(draw(), draw(guidance_scale=20.0))  # large: the model is untrained


def test_best_of_keeps_the_drawing_the_model_captions_likeliest_with_its_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tiny_model().eval()
    texts = ["", PAIRS[1]]  # an unprompted row keeps its first drawing
    condition = Condition(texts=texts)
    generator = torch.Generator().manual_seed(0)  # the same stream draws the k candidates
    plain = [model.sample(2, condition=condition, generator=generator).images for _ in range(3)]
    scored = []  # each candidate's codes (n, 49) and the prompts' NLL as its caption (n,)
    segment_nll = model.segment_nll

    def recorded(network, codes, texts, image_first):
        scored.append((codes, segment_nll(network, codes, texts, image_first)))
        return scored[-1][1]

    monkeypatch.setattr(model, "segment_nll", recorded)
    generator = torch.Generator().manual_seed(0)
    best = model.sample(2, condition=condition, generator=generator, best_of=3).images
    assert len(scored) == 3
    for candidate, (codes, _) in zip(plain, scored, strict=True):
        torch.testing.assert_close(candidate, model.image_tokenizer.decode(codes), rtol=0, atol=0)
    nll = torch.stack([nll for _, nll in scored])  # (k, n)
    assert not torch.equal(nll[:, 1], nll[:, 1].flip(0))  # the candidates differ
    kept = [0, int(nll[:, 1].argmin())]
    for i, k in enumerate(kept):
        torch.testing.assert_close(best[i], plain[k][i], rtol=0, atol=0)


def test_asked_for_nothing_it_draws_unconditional_images_and_its_grids_show_the_prompts() -> None:
    model = tiny_model().eval()

    def draw(condition: Condition | None):
        generator = torch.Generator().manual_seed(0)
        return model.sample(3, condition=condition, generator=generator, guidance_scale=3.0)

    free = draw(None)
    assert free.captions is None and free.images.shape == (3, 1, 28, 28)
    torch.testing.assert_close(free.images, draw(Condition(texts=[""] * 3)).images, rtol=0, atol=0)
    assert model.default_condition() is None
    assert model.grid_condition() == Condition(texts=PAIRS)


@pytest.mark.parametrize(
    ("prefix_lm", "predict_condition", "position_encoding"),
    [
        (False, True, "learned"),
        (False, False, "learned"),
        (True, False, "learned"),
        (False, "image", "rotary"),
    ],
)
def test_a_tiny_model_learns_two_pairs_in_both_directions(
    prefix_lm: bool, predict_condition: bool | str, position_encoding: str
) -> None:
    model = tiny_model(
        uncond_prob=0.0,
        prefix_lm=prefix_lm,
        predict_condition=predict_condition,
        position_encoding=position_encoding,
    )
    torch.manual_seed(1)
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    batch = {"text": PAIRS, "image": images}
    generator = torch.Generator().manual_seed(0)  # each row's order: both directions, at random
    optimizer = torch.optim.AdamW(model.network.parameters(), lr=3e-3)
    model.train()
    # Predicting second segments only, it learns the images from the drawing rows alone: half.
    for _ in range(300 if predict_condition or prefix_lm else 500):
        loss = model.loss(model.network, batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert model.caption(images) == PAIRS
    assert model.sample(2, condition=Condition(images=images)).texts == PAIRS  # the same, greedy
    drawn = model.sample(2, condition=Condition(texts=PAIRS), temperature=0.0)
    expected = model.image_tokenizer.decode(model.image_tokenizer.encode(images))
    torch.testing.assert_close(drawn.images, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("backends", "fused"), [(["math"], False), (None, True)])
def test_attention_runs_on_the_configured_kernels(backends: list[str] | None, fused: bool) -> None:
    """Training, drawing (best of k) and captioning all run on model.attention_backends."""
    model = tiny_model(attention_backends=backends).eval()
    seen = []  # whether the fused kernel may run, at each attention call
    for block in model.network.gpt.blocks:
        block.attn.register_forward_pre_hook(
            lambda *_: seen.append(torch.backends.cuda.flash_sdp_enabled())
        )
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    model.loss(model.network, {"text": PAIRS, "image": images}, torch.Generator().manual_seed(0))
    model.sample(2, condition=Condition(texts=PAIRS), best_of=2)
    model.caption(images)
    assert len(seen) > 50 and set(seen) == {fused}


def test_bad_input_is_one_line(tmp_path: Path, make_cfg) -> None:
    model = tiny_model()
    with pytest.raises(ConfigError, match=r"is 20 bytes, more than model\.max_text_bytes=16"):
        model.sample(1, condition=Condition(texts=["twenty bytes of text"]))
    with pytest.raises(ConfigError, match=r"an image of shape \(3, 28, 28\)"):
        model.caption(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ConfigError, match="guidance_interval and best_of are for drawing from"):
        model.sample(1, condition=Condition(images=torch.zeros(1, 1, 28, 28)), guidance_scale=2.0)
    with pytest.raises(ConfigError, match=r"guidance_interval=\[5, 2\]: give \[first, last\]"):
        model.sample(1, condition=Condition(texts=PAIRS[:1]), guidance_interval=[5, 2])
    with pytest.raises(ConfigError, match=r"guidance_interval=\[0\]: give"):
        tiny_model(guidance_interval=[0])
    with pytest.raises(ConfigError, match="best_of=0: draw at least 1 image per prompt"):
        model.sample(1, condition=Condition(texts=PAIRS[:1]), best_of=0)
    with pytest.raises(ConfigError, match=r"the data's images are \(1, 32, 32\)"):
        TextImageModel(VQVAE(**TOKENIZER).hparams, (1, 32, 32), sample_prompts=PAIRS)
    with pytest.raises(ConfigError, match="is 17 bytes"):  # a sample prompt: at once
        tiny_model(sample_prompts=["seventeen bytes!!"])
    with pytest.raises(ConfigError, match=r"n_embd=32 must be a multiple of model\.n_head=3"):
        tiny_model(n_head=3)
    with pytest.raises(ConfigError, match=r"unknown attention backends \['fast'\]"):
        tiny_model(attention_backends=["fast"])
    data = tmp_path / "data"
    write_tiny_idx_dataset(data)
    classifier = tiny_classifier(make_cfg, data, tmp_path / "classifier")
    with pytest.raises(CheckpointError, match="holds a Classifier, not a VQVAE"):
        TextImageModel(str(classifier), (1, 28, 28), sample_prompts=PAIRS)


def test_the_tokenizer_stays_frozen_while_the_gpt_trains(make_cfg, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tiny_idx_dataset(data)
    tokenizer = tiny_image_tokenizer(make_cfg, data, tmp_path / "tokenizer")
    before = torch.load(tokenizer / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    cfg = make_cfg(
        "model=multimodal",
        "data=mnist_captions",
        *TINY_MULTIMODAL,
        f"model.image_tokenizer={tokenizer}",
        f"paths.data_dir={data}",
        "data.batch_size=16",
        "trainer.max_steps=3",
        "logger=none",
    )
    train(cfg)
    run = Path(cfg.paths.output_dir)
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for name, tensor in before.items():
        assert torch.equal(after["state_dict"][f"image_tokenizer.{name}"], tensor), name
    # The sample callback shows drawings for prompts, and validation images with their captions.
    assert {p.name for p in (run / "samples").iterdir()} == {
        "step_0000003.png",
        "step_0000003_captions.png",
    }

    # generate.py captions image files: one line each, the captions in the output file.
    pixels = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image.numpy(), mode="L").save(tmp_path / f"{i}.png")
    Image.new("L", (32, 32)).save(tmp_path / "big.png")
    files = f"image=[{tmp_path / '0.png'},{tmp_path / '1.png'}]"
    output = f"output={tmp_path / 'captions'}"
    samples, path = generate(compose_config("generate", f"ckpt_path={run}", files, output))
    model = load_model(run)
    assert samples.texts == model.caption(pixels[:, None].float() / 127.5 - 1)
    assert path.read_text(encoding="utf-8") == "\n\n".join(samples.texts) + "\n"
    with pytest.raises(ConfigError, match=r"an image of shape \(1, 32, 32\)"):
        generate(compose_config("generate", f"ckpt_path={run}", f"image={tmp_path / 'big.png'}"))

    # eval.py's scorecard: its drawings as any text-conditional generator's, then its captions
    # and likelihoods over the test split.
    classifier = tiny_classifier(make_cfg, data, tmp_path / "classifier")
    scores = evaluate(
        compose_config(
            "eval",
            f"ckpt_path={cfg.paths.output_dir}",
            "data=mnist_captions",
            f"paths.data_dir={data}",
            f"image.feature_ckpt={classifier}",
            "sampling.num_samples=2000",
        )
    )
    assert scores["fid"] > 0 and 0 <= scores["heldout/conditional_accuracy"] <= 1
    assert 0 <= scores["caption_accuracy"] <= 1
    # An untrained model's bits: near log2 of the codes' and the bytes' counts.
    assert 0 < scores["image_bits_per_dim"] < 49 * 13 / 784 * 1.5
    assert 0 < scores["caption_bits_per_byte"] < 13
    assert isinstance(scores["caption_example"], str)


def test_without_predict_condition_the_loss_is_the_second_segments() -> None:
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    order = torch.tensor([False, False])  # image_to_text_prob=0: every row draws
    losses = {}
    for predict_condition in (True, False, "image"):
        model = tiny_model(
            image_to_text_prob=0.0, uncond_prob=0.0, predict_condition=predict_condition
        )
        batch = {"text": PAIRS, "image": images}
        losses[predict_condition] = model.loss(model.network, batch, torch.Generator())
    rows = model.rows(PAIRS, model.image_tokenizer.encode(images), order)
    logits = model.next_token_logits(model.network, rows, order)
    image = slice(model.caption_length(PAIRS) - 1, None)  # the targets from begin_image on
    expected = F.cross_entropy(logits[:, image].flatten(0, 1), rows[:, 1:][:, image].flatten())
    torch.testing.assert_close(losses[False], expected)
    torch.testing.assert_close(losses["image"], expected)  # a caption first is only read
    assert not torch.isclose(losses[True], expected)  # with the captions' bytes


def test_predict_condition_image_predicts_an_image_that_comes_first() -> None:
    batch = {"text": PAIRS, "image": torch.rand(2, 1, 28, 28) * 2 - 1}
    losses = {}
    for predict_condition in (True, False, "image"):
        model = tiny_model(
            image_to_text_prob=1.0, uncond_prob=0.0, predict_condition=predict_condition
        )
        losses[predict_condition] = model.loss(model.network, batch, torch.Generator())
    torch.testing.assert_close(losses["image"], losses[True])  # every row captions
    assert not torch.isclose(losses[False], losses[True])
    with pytest.raises(ConfigError, match="predict_condition=text; choose true, false or image"):
        tiny_model(predict_condition="text")


def test_a_made_up_word_goes_between_a_prompts_words_and_fits_its_budget() -> None:
    generator = torch.Generator().manual_seed(0)
    for text in ("a handwritten seven", "die Ziffer acht auf Papier", "七"):
        for _ in range(20):
            distracted, span = with_made_up_word(text, 48, generator)
            raw = distracted.encode()
            word = raw[span].decode().strip()  # the word and the space that joins it
            assert raw[span].decode() in (word + " ", " " + word)
            assert 3 <= len(word) <= 8 and word.isascii() and word.islower()
            assert (raw[: span.start] + raw[span.stop :]).decode() == text
    assert with_made_up_word("a seven", 10, generator) == ("a seven", slice(0, 0))  # no room
    assert len(with_made_up_word("a seven", 11, generator)[0]) == 11  # just room for 3 letters


def test_a_made_up_word_is_read_and_never_predicted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        multimodal_module, "with_made_up_word", lambda text, *_: ("zzz " + text, slice(0, 4))
    )
    batch = {"text": PAIRS, "image": torch.rand(2, 1, 28, 28) * 2 - 1}

    def loss(training: bool, **kwargs) -> torch.Tensor:
        model = tiny_model(uncond_prob=0.0, distractor_prob=1.0, max_text_bytes=32, **kwargs)
        return model.loss(model.network, batch, torch.Generator(), training)

    # Every row draws: its prompt gets the word, whose bytes leave the targets.
    model = tiny_model(max_text_bytes=32)
    order = torch.tensor([False, False])
    codes = model.image_tokenizer.encode(batch["image"])
    rows = model.rows(["zzz " + text for text in PAIRS], codes, order)
    targets = rows[:, 1:].clone()
    targets[:, :4] = -100  # "zzz "
    targets[targets == model.vocab.special["pad"]] = -100
    logits = model.next_token_logits(model.network, rows, order)
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    torch.testing.assert_close(loss(True, image_to_text_prob=0.0), expected)
    # Validation's prompts, and captions that are written rather than read, get no word.
    assert not torch.isclose(loss(False, image_to_text_prob=0.0), expected)
    captioning = dict(image_to_text_prob=1.0)
    torch.testing.assert_close(loss(True, **captioning), loss(False, **captioning))
    with pytest.raises(ConfigError, match=r"model.distractor_prob=2; choose a value in \[0, 1\]"):
        tiny_model(distractor_prob=2)


def test_shifted_prompts_move_up_their_slot_in_training(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = {"text": PAIRS, "image": torch.rand(2, 1, 28, 28) * 2 - 1}
    seen = []  # the position ids of every forward pass

    def ids_seen(training: bool, **kwargs) -> torch.Tensor:
        model = tiny_model(uncond_prob=0.0, prompt_shift_prob=1.0, **kwargs)
        forward = model.network.forward
        monkeypatch.setattr(
            model.network, "forward", lambda x, ids, mask: seen.append(ids) or forward(x, ids, mask)
        )
        for seed in range(20):
            model.loss(model.network, batch, torch.Generator().manual_seed(seed), training)
        return torch.stack(seen[-20:])  # (20, B, T - 1)

    # Prompts of 13 bytes at most fill 15 of the caption slot's 18 places: they move up 0 to 3.
    drawing = ids_seen(True, image_to_text_prob=0.0)
    offsets = drawing[:, :, :15] - torch.arange(15)
    assert torch.equal(offsets, offsets[:, :, :1].expand_as(offsets))  # a row moves whole
    assert set(offsets.flatten().tolist()) == {0, 1, 2, 3}
    assert torch.equal(drawing[:, :, 15:], (18 + torch.arange(50)).expand(20, 2, 50))  # the image
    # Validation, captions written after their images and empty prompts keep their ids.
    order = torch.tensor([False, False])
    assert (
        ids_seen(False, image_to_text_prob=0.0) == tiny_model().positions(order, 15)[:, :-1]
    ).all()
    order = torch.tensor([True, True])
    assert (
        ids_seen(True, image_to_text_prob=1.0) == tiny_model().positions(order, 15)[:, :-1]
    ).all()
    empty = {"text": ["", ""], "image": batch["image"]}
    model = tiny_model(uncond_prob=0.0, prompt_shift_prob=1.0, image_to_text_prob=0.0)
    unshifted = model.loss(model.network, empty, torch.Generator(), training=False)
    torch.testing.assert_close(model.loss(model.network, empty, torch.Generator(), True), unshifted)
    with pytest.raises(ConfigError, match=r"model.prompt_shift_prob=2; choose a value in \[0, 1\]"):
        tiny_model(prompt_shift_prob=2)


def test_only_prompts_are_replaced_by_the_empty_one() -> None:
    batch = {"text": PAIRS, "image": torch.rand(2, 1, 28, 28) * 2 - 1}

    def loss(**kwargs) -> torch.Tensor:
        model = tiny_model(**kwargs)
        return model.loss(model.network, batch, torch.Generator().manual_seed(0))

    # Captions written after their images are never emptied; prompts are.
    torch.testing.assert_close(
        loss(image_to_text_prob=1.0, uncond_prob=1.0), loss(image_to_text_prob=1.0, uncond_prob=0.0)
    )
    drawing = dict(image_to_text_prob=0.0)
    assert not torch.isclose(loss(uncond_prob=1.0, **drawing), loss(uncond_prob=0.0, **drawing))


def test_captions_after_their_images_weigh_caption_loss_weight_in_training() -> None:
    batch = {"text": PAIRS, "image": torch.rand(2, 1, 28, 28) * 2 - 1}
    model = tiny_model(uncond_prob=0.0, image_to_text_prob=1.0, caption_loss_weight=3.0)
    order = torch.tensor([True, True])  # every row captions
    rows = model.rows(PAIRS, model.image_tokenizer.encode(batch["image"]), order)
    targets = rows[:, 1:].masked_fill(rows[:, 1:] == model.vocab.special["pad"], -100)
    logits = model.next_token_logits(model.network, rows, order)
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
    weights = (targets != -100).float()
    weights[:, model.image_length - 1 :] *= 3.0  # from the caption's begin_text on
    expected = (losses * weights).sum() / weights.sum()
    torch.testing.assert_close(model.loss(model.network, batch, torch.Generator(), True), expected)
    # Validation's loss stays the plain mean over tokens, whatever the weight.
    plain = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)
    torch.testing.assert_close(model.loss(model.network, batch, torch.Generator()), plain)
    with pytest.raises(ConfigError, match=r"model.caption_loss_weight=0: must be greater than 0"):
        tiny_model(caption_loss_weight=0)


def test_the_prefix_lm_reads_its_condition_whole() -> None:
    mask = causal_mask(torch.tensor([[1, 1, 1, 1], [1, 1, 0, 1]]).bool(), torch.tensor([2, 0]))
    assert mask[0].int().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert mask[1].int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 1]]
    # A caption's first byte sees its last one (the whole caption is the condition), while the
    # image's codes still see only what comes before them; a causal model's first byte sees itself.
    codes = torch.zeros(1, 49, dtype=torch.long)
    order = torch.tensor([False])
    for prefix_lm in (True, False):
        model = tiny_model(prefix_lm=prefix_lm).eval()
        rows = [model.rows([text], codes, order) for text in ("a one", "a two")]
        logits = [model.next_token_logits(model.network, row, order) for row in rows]
        assert torch.allclose(logits[0][:, 0], logits[1][:, 0]) != prefix_lm
        rows[1][:, -5] += 1  # another code near the end
        changed = model.next_token_logits(model.network, rows[1], order)
        kept = rows[1].size(1) - 6
        torch.testing.assert_close(changed[:, :kept], logits[1][:, :kept])
