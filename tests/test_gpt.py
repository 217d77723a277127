import math

import pytest
import torch

from aigc.errors import ConfigError
from aigc.models.language_model.network import stream
from aigc.nn.gpt import GPT, POSITION_ENCODINGS, sample_token

VOCAB, BLOCK = 17, 16


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # Models this small gain nothing from intra-op threads, and on a busy machine the spinning
    # OpenMP workers can slow them down by an order of magnitude.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_gpt(position_encoding: str = "learned") -> GPT:
    torch.manual_seed(0)
    return GPT(VOCAB, BLOCK, n_layer=2, n_head=2, n_embd=32, position_encoding=position_encoding)


def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, **sampling) -> torch.Tensor:
    """The prompt ``idx`` (B, T) and the tokens ``stream`` draws after it."""
    return torch.cat([idx, *stream(model, idx, max_new_tokens, **sampling)], dim=1)


def prompt(batch: int = 3, length: int = 4) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))


def seeded(seed: int = 123) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("bias", [False, True])
def test_parameter_count_matches_hand_computation(bias):
    V, S, L, C = 11, 8, 3, 24
    model = GPT(V, S, n_layer=L, n_head=4, n_embd=C, bias=bias)
    ln = C * (2 if bias else 1)
    attn = 3 * C * C + C * C + (4 * C if bias else 0)
    mlp = 2 * 4 * C * C + (5 * C if bias else 0)
    # token embedding (shared with the head) + blocks + final LayerNorm
    expected = V * C + L * (2 * ln + attn + mlp) + ln
    assert model.num_parameters() == expected
    assert model.num_parameters(non_embedding=False) == expected + S * C
    rotary = GPT(V, S, n_layer=L, n_head=4, n_embd=C, bias=bias, position_encoding="rotary")
    assert rotary.num_parameters() == rotary.num_parameters(non_embedding=False) == expected


def test_rotary_positions_matter_only_through_offsets():
    idx = prompt(2, BLOCK // 2)
    places = torch.arange(BLOCK // 2)
    with torch.no_grad():
        rotary = tiny_gpt("rotary").eval()
        base = rotary.logits(idx, positions=places)
        torch.testing.assert_close(rotary.logits(idx, positions=places + 5), base)
        # a gap between the tokens is an offset, and does change what the model sees
        gapped = torch.where(places < 3, places, places + 4)
        assert not torch.allclose(rotary.logits(idx, positions=gapped)[:, 3:], base[:, 3:])
        learned = tiny_gpt("learned").eval()
        assert not torch.allclose(learned.logits(idx, positions=places + 5), learned.logits(idx))


def test_unknown_position_encoding_is_a_config_error():
    with pytest.raises(ConfigError, match="position_encoding 'alibi'"):
        tiny_gpt("alibi")


def test_rotary_positions_with_an_odd_head_size_are_a_config_error():
    with pytest.raises(ConfigError, match=r"even head size \(n_embd / n_head\), not 9"):
        GPT(VOCAB, BLOCK, n_layer=1, n_head=4, n_embd=36, position_encoding="rotary")


def test_forward_shapes_and_initial_loss():
    model = tiny_gpt()
    idx = prompt(4, BLOCK)
    logits, loss = model(idx)
    assert logits.shape == (4, BLOCK, VOCAB)
    assert loss is None
    targets = torch.randint(0, VOCAB, (4, BLOCK), generator=seeded())
    _, loss = model(idx, targets)
    # small initial weights give nearly uniform predictions
    assert loss.item() == pytest.approx(math.log(VOCAB), abs=0.1)


def test_forward_rejects_sequences_longer_than_block_size():
    with pytest.raises(ValueError, match="block_size"):
        tiny_gpt()(prompt(1, BLOCK + 1))


@pytest.mark.parametrize("position_encoding", POSITION_ENCODINGS)
def test_future_tokens_do_not_change_earlier_logits(position_encoding):
    model = tiny_gpt(position_encoding).eval()
    idx = prompt(2, BLOCK)
    changed = idx.clone()
    changed[:, 10] = (changed[:, 10] + 1) % VOCAB
    with torch.no_grad():
        before, _ = model(idx)
        after, _ = model(changed)
    torch.testing.assert_close(before[:, :10], after[:, :10], rtol=0, atol=0)
    assert not torch.allclose(before[:, 10:], after[:, 10:])


@pytest.mark.parametrize("position_encoding", POSITION_ENCODINGS)
def test_overfits_a_tiny_batch(position_encoding):
    model = tiny_gpt(position_encoding)
    idx = prompt(2, BLOCK + 1)
    x, y = idx[:, :-1], idx[:, 1:]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("new_tokens", [8, 3 * BLOCK], ids=["within_block", "past_block"])
@pytest.mark.parametrize(
    "sampling",
    [{}, {"temperature": 0.0}, {"temperature": 0.7, "top_k": 5}, {"top_p": 0.9}],
    ids=["plain", "greedy", "top_k", "top_p"],
)
@pytest.mark.parametrize("position_encoding", POSITION_ENCODINGS)
def test_cache_does_not_change_sampled_tokens(new_tokens, sampling, position_encoding):
    model = tiny_gpt(position_encoding)
    idx = prompt()
    cached = generate(model, idx, new_tokens, use_cache=True, generator=seeded(), **sampling)
    uncached = generate(model, idx, new_tokens, use_cache=False, generator=seeded(), **sampling)
    assert cached.shape == (3, 4 + new_tokens)
    assert torch.equal(cached[:, :4], idx)
    assert torch.equal(cached, uncached)


def test_cache_feeds_one_token_per_step_until_the_window_slides():
    model = tiny_gpt()
    lengths = []
    model.wte.register_forward_hook(lambda module, args, out: lengths.append(args[0].size(1)))
    generate(model, prompt(length=4), BLOCK, generator=seeded())
    # prefill, single tokens up to a full block, then the sliding window is recomputed
    assert lengths == [4] + [1] * (BLOCK - 4) + [BLOCK] * 3


def test_prompt_longer_than_block_size():
    model = tiny_gpt()
    idx = prompt(2, 2 * BLOCK + 3)
    out = generate(model, idx, 5, generator=seeded())
    assert out.shape == (2, 2 * BLOCK + 8)
    assert torch.equal(out[:, : idx.size(1)], idx)
    assert torch.equal(out, generate(model, idx, 5, use_cache=False, generator=seeded()))


def test_stream_yields_each_new_token_and_restores_training_flag():
    model = tiny_gpt().train()
    idx = prompt()
    tokens = stream(model, idx, 6, generator=seeded())
    first = next(tokens)
    assert first.shape == (3, 1)
    assert model.training  # not left in eval mode between tokens
    rest = list(tokens)
    assert len(rest) == 5
    assert torch.equal(
        torch.cat([idx, first, *rest], dim=1), generate(model, idx, 6, generator=seeded())
    )
    assert model.training


def test_top_k_one_and_tiny_top_p_are_greedy():
    model = tiny_gpt()
    greedy = generate(model, prompt(), 10, temperature=0.0)
    assert torch.equal(generate(model, prompt(), 10, top_k=1, generator=seeded()), greedy)
    assert torch.equal(generate(model, prompt(), 10, top_p=1e-6, generator=seeded()), greedy)


def test_top_k_and_top_p_sample_only_allowed_tokens():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])  # ranked: 1, 3, 2, 0
    logits = probs.log().expand(4000, -1)

    def sampled(**filters) -> set[int]:
        ids = sample_token(logits, 1.0, filters.get("top_k"), filters.get("top_p"), seeded())
        return set(ids.flatten().tolist())

    assert sampled(top_k=2) == {1, 3}
    assert sampled(top_p=0.4) == {1}
    assert sampled(top_p=0.75) == {1, 3}
    assert sampled(top_p=0.9) == {1, 2, 3}
    assert sampled(top_k=3, top_p=0.75) == {1, 3}


def test_generation_under_bf16_autocast():
    model = tiny_gpt()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = generate(model, prompt(), BLOCK, generator=seeded())
    assert out.shape == (3, 4 + BLOCK)
    assert out.dtype == torch.long


@pytest.mark.parametrize(
    "bad", [{"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}]
)
def test_invalid_sampling_arguments_raise(bad):
    with pytest.raises(ConfigError):
        generate(tiny_gpt(), prompt(), 2, **bad)
