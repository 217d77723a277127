"""The text + image GPT: its rows, decoding held to one kind of token, guidance, best-of-k
drawing, captioning, a tiny model that learns two pairs both ways, and the error lines. The
contract test covers training, reloading, exports and exact resumes."""

from pathlib import Path

import pytest
import torch
from conftest import (
    TINY_TEXT_IMAGE,
    compose_config,
    guided_draws_with_and_without_cache,
    model_sampling,
    tiny_classifier,
    tiny_image_tokenizer,
    write_tiny_idx_dataset,
)
from PIL import Image

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.errors import CheckpointError, ConfigError
from aigc.eval import evaluate
from aigc.generate import generate
from aigc.models.image_tokenizer import ImageTokenizer
from aigc.models.text_image import TextImageModel
from aigc.models.text_image.sampling import allowed, decode
from aigc.train import train

TOKENIZER = dict(image_shape=(1, 28, 28), widths=(8, 8, 8), norm_groups=4, levels=(4, 3))
PAIRS = ["a one", "the digit two"]


def tiny_model(**kwargs) -> TextImageModel:
    torch.manual_seed(0)
    sizes = dict(n_layer=2, n_head=2, n_embd=32, max_text_bytes=16, sample_prompts=PAIRS)
    sizes["sampling"] = model_sampling("text_image")
    args = {"image_tokenizer": ImageTokenizer(**TOKENIZER).hparams, "image_shape": (1, 28, 28)}
    return TextImageModel(**{**args, **sizes, **kwargs})


def test_rows_put_each_segment_at_the_same_place_in_both_orders() -> None:
    model = tiny_model()
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    codes = model.image_tokenizer.encode(images)
    rows = model.layout.rows(PAIRS, codes, torch.tensor([False, True]))
    special, vocab = model.vocab.special, model.vocab
    # The caption segment is cut to the longest caption (13 bytes + 2); the image's is 49 + 2.
    assert rows.shape == (2, 15 + 51)
    assert rows[0, 0] == special["begin_text"] and rows[0, 15] == special["begin_image"]
    assert rows[0, 7:15].eq(special["pad"]).all() and rows[1, 51:].ne(special["pad"]).all()
    assert rows[1, 0] == special["begin_image"] and rows[1, 51] == special["begin_text"]
    assert vocab.read_text(rows[0]) == PAIRS[0] and vocab.read_text(rows[1]) == PAIRS[1]
    assert torch.equal(vocab.read_image(rows[0]), codes[0])
    assert torch.equal(vocab.read_image(rows[1]), codes[1])


def test_position_ids_name_slots_in_both_orders() -> None:
    order = torch.tensor([False, True])  # caption first, image first
    places = torch.arange(18 + 51)
    slots = torch.cat([places[18:], places[:18]])  # the image's slot, then the caption's
    model = tiny_model()
    assert torch.equal(model.layout.positions(order), torch.stack([places, slots]))
    # Caption segments cut to 7 tokens keep their tokens' ids.
    cut = torch.cat([places[:7], places[18:]])
    expected = torch.stack([cut, torch.cat([places[18:], places[:7]])])
    assert torch.equal(model.layout.positions(order, 7), expected)


def test_no_token_sees_padding(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model().eval()
    codes = model.image_tokenizer.encode(torch.rand(4, 1, 28, 28) * 2 - 1)
    order = torch.tensor([False, True, False, True])
    texts = [*PAIRS, *PAIRS[::-1]]
    cut = model.layout.rows(texts, codes, order)  # caption segments of 15 tokens
    monkeypatch.setattr(model.layout, "caption_length", lambda texts: model.layout.text_length)
    whole = model.layout.rows(texts, codes, order)  # of 18
    logits = [model.layout.logits(model.network, rows, order) for rows in (cut, whole)]
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


def test_decoding_draws_only_allowed_ids_and_the_cache_changes_nothing() -> None:
    model = tiny_model().eval()
    draws = guided_draws_with_and_without_cache(model, PAIRS)
    assert draws[0].shape == (2, 49) and torch.equal(draws[0], draws[1])
    assert all(i in model.vocab.image_ids for i in draws[0].flatten().tolist())


def test_guided_tokens_are_the_only_image_tokens_guided() -> None:
    model = tiny_model().eval()
    prefix, free = model.layout.image_prefixes(PAIRS), model.layout.image_prefixes(["", ""], 15)
    image_ids = allowed(model.vocab.vocab_size, model.vocab.image_ids, model.device)

    def draw(scale: float, interval: tuple[int, int] | None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return decode(
            model.network, prefix, 49, 1.0, None, generator, allowed=image_ids,
            guidance_scale=scale, unconditional=free, guided_tokens=interval,
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
    segment_nll = model.layout.segment_nll

    def recorded(network, codes, texts, image_first):
        scored.append((codes, segment_nll(network, codes, texts, image_first)))
        return scored[-1][1]

    monkeypatch.setattr(model.layout, "segment_nll", recorded)
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


def test_a_tiny_model_learns_two_pairs_in_both_directions() -> None:
    model = tiny_model(uncond_prob=0.0)
    torch.manual_seed(1)
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    batch = {"text": PAIRS, "image": images}
    generator = torch.Generator().manual_seed(0)  # each row's order: both directions, at random
    optimizer = torch.optim.AdamW(model.network.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model.loss(model.network, batch, generator, False)
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
    for block in model.network.blocks:
        block.attn.register_forward_pre_hook(
            lambda *_: seen.append(torch.backends.cuda.flash_sdp_enabled())
        )
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    batch = {"text": PAIRS, "image": images}
    model.loss(model.network, batch, torch.Generator().manual_seed(0), False)
    model.sample(2, condition=Condition(texts=PAIRS), best_of=2)
    model.caption(images)
    assert len(seen) > 50 and set(seen) == {fused}


def test_bad_input_is_one_line(tmp_path: Path, make_cfg) -> None:
    model = tiny_model()
    with pytest.raises(ConfigError, match=r"is 20 bytes, more than model\.max_text_bytes=16"):
        model.sample(1, condition=Condition(texts=["twenty bytes of text"]))
    with pytest.raises(ConfigError, match=r"an image of shape \(3, 28, 28\)"):
        model.caption(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ConfigError, match="guidance_scale: for drawing from prompts, not for"):
        model.sample(1, condition=Condition(images=torch.zeros(1, 1, 28, 28)), guidance_scale=2.0)
    with pytest.raises(ConfigError, match=r"guided_tokens=\[5, 2\]: give \[first, last\]"):
        model.sample(1, condition=Condition(texts=PAIRS[:1]), guided_tokens=[5, 2])
    with pytest.raises(ConfigError, match=r"guided_tokens=\[0\]: give"):
        tiny_model(sampling=model_sampling("text_image", guided_tokens=[0]))
    with pytest.raises(ConfigError, match="guidance_interval: not a sampling setting of a Text"):
        model.sample(1, condition=Condition(texts=PAIRS[:1]), guidance_interval=[0, 1000])
    with pytest.raises(ConfigError, match="best_of=0: draw at least 1 image per prompt"):
        model.sample(1, condition=Condition(texts=PAIRS[:1]), best_of=0)
    with pytest.raises(ConfigError, match=r"the data's images are \(1, 32, 32\)"):
        tiny_model(image_shape=(1, 32, 32))
    with pytest.raises(ConfigError, match="is 17 bytes"):  # a sample prompt: at once
        tiny_model(sample_prompts=["seventeen bytes!!"])
    with pytest.raises(ConfigError, match=r"n_embd=32 must be a multiple of model\.n_head=3"):
        tiny_model(n_head=3)
    with pytest.raises(ConfigError, match=r"unknown attention backends \['fast'\]"):
        tiny_model(attention_backends=["fast"])
    data = tmp_path / "data"
    write_tiny_idx_dataset(data)
    classifier = tiny_classifier(make_cfg, data, tmp_path / "classifier")
    with pytest.raises(CheckpointError, match="holds a Classifier, not a ImageTokenizer"):
        tiny_model(image_tokenizer=str(classifier))


def test_the_tokenizer_stays_frozen_while_the_gpt_trains(make_cfg, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tiny_idx_dataset(data)
    tokenizer = tiny_image_tokenizer(make_cfg, data, tmp_path / "tokenizer")
    before = torch.load(tokenizer / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    cfg = make_cfg(
        "model=text_image",
        "data=mnist_captions",
        *TINY_TEXT_IMAGE,
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
        ids_seen(False, image_to_text_prob=0.0) == tiny_model().layout.positions(order, 15)[:, :-1]
    ).all()
    order = torch.tensor([True, True])
    assert (
        ids_seen(True, image_to_text_prob=1.0) == tiny_model().layout.positions(order, 15)[:, :-1]
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
        return model.loss(model.network, batch, torch.Generator().manual_seed(0), False)

    # Captions written after their images are never emptied; prompts are.
    torch.testing.assert_close(
        loss(image_to_text_prob=1.0, uncond_prob=1.0), loss(image_to_text_prob=1.0, uncond_prob=0.0)
    )
    drawing = dict(image_to_text_prob=0.0)
    assert not torch.isclose(loss(uncond_prob=1.0, **drawing), loss(uncond_prob=0.0, **drawing))
