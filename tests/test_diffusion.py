"""The diffusion family: its noise schedule, samplers, guidance, errors and diffusers export. The
contract test (test_contract.py) covers training, reloading, exports and exact resumes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    TINY_DIFFUSION,
    compose_config,
    model_sampling,
    tiny_run,
    write_tiny_idx_dataset,
)
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DConditionModel, UNet2DModel
from safetensors.torch import load_file

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.errors import ConfigError
from aigc.export import export
from aigc.models.diffusion import DiffusionModel
from aigc.models.diffusion.network import Context
from aigc.models.diffusion.sampling import denoise, guided_prediction
from aigc.models.diffusion.schedule import SAMPLERS, make_sampler, noise_schedule
from aigc.nn.text_encoder import TextEncoder
from aigc.train import train

TINY = dict(widths=(8, 16), attention=(False, True), norm_groups=4, attention_head_dim=8)
PROMPTS = ["a one", "the digit two"]


def tiny_model(conditioning: str | None = None, **kwargs) -> DiffusionModel:
    if conditioning == "label":
        kwargs.update(num_classes=10, class_names=[str(i) for i in range(10)])
    if conditioning == "text":
        kwargs.update(sample_prompts=PROMPTS, text_encoder={"n_embd": 16, "n_head": 2})
    kwargs.setdefault("sampling", model_sampling("diffusion"))
    torch.manual_seed(0)
    model = DiffusionModel((1, 8, 8), conditioning=conditioning, **TINY, **kwargs)
    # Weights away from diffusers' zero initialisation of the output layers, so outputs differ.
    with torch.no_grad():
        for p in model.network.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
def test_the_forward_process_is_the_schedules_closed_form(beta_schedule: str) -> None:
    schedule = noise_schedule(1000, beta_schedule, "epsilon")
    if beta_schedule == "linear":  # Ho et al. 2020
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    else:  # Nichol & Dhariwal 2021, betas capped at 0.999
        f = lambda t: np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
        betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(1000)])
    alpha_bar = torch.cumprod(1 - betas, 0).float()
    clean, noise = torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    a = alpha_bar[t].view(-1, 1, 1, 1)
    expected = a.sqrt() * clean + (1 - a).sqrt() * noise
    torch.testing.assert_close(schedule.add_noise(clean, noise, t), expected)


class PerfectPredictor(torch.nn.Module):
    """The exact noise (or velocity) of a noisy image whose clean image is ``clean``: the ideal
    network of a dataset of one image."""

    def __init__(self, clean: torch.Tensor, schedule: DDPMScheduler) -> None:
        super().__init__()
        self.clean, self.schedule = clean, schedule
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the network a device

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: Context) -> torch.Tensor:
        # Heun steps through fractional timesteps too, which it maps to noise levels
        # sigma = sqrt((1 - alpha_bar) / alpha_bar) by interpolating log sigma linearly.
        alpha_bar = self.schedule.alphas_cumprod.double()
        log_sigmas = ((1 - alpha_bar) / alpha_bar).sqrt().log().numpy()
        timesteps = np.arange(len(log_sigmas))
        sigma = torch.from_numpy(np.interp(t.double().numpy(), timesteps, log_sigmas)).exp()
        a = (1 / (1 + sigma**2)).float().view(-1, 1, 1, 1)
        noise = (x - a.sqrt() * self.clean) / (1 - a).sqrt()
        if self.schedule.config.prediction_type == "epsilon":
            return noise
        return a.sqrt() * noise - (1 - a).sqrt() * self.clean


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_denoises_to_the_clean_image_with_a_perfect_predictor(
    sampler: str, prediction_type: str
) -> None:
    schedule = noise_schedule(1000, "linear", prediction_type)
    clean = torch.rand(2, 1, 8, 8) * 1.6 - 0.8
    network = PerfectPredictor(clean, schedule)
    generator = torch.Generator().manual_seed(0)
    for steps in (1, 10):
        scheduler = make_sampler(sampler, steps, schedule)
        images = denoise(network, scheduler, (2, 1, 8, 8), Context(), 1.0, generator)
        torch.testing.assert_close(images, clean, atol=2e-3, rtol=0)


@pytest.mark.parametrize("conditioning", ["label", "text"])
def test_guidance_scale_1_is_the_conditional_prediction_and_others_extrapolate(
    conditioning: str,
) -> None:
    network = tiny_model(conditioning).network
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([10, 700])
    condition = Condition.of([3, 7]) if conditioning == "label" else Condition.of(texts=PROMPTS)
    with torch.no_grad():
        context = network.context(condition)
        conditional = network(x, t, context)
        unconditional = network(x, t, network.null_context(2))
        assert not torch.allclose(conditional, unconditional)
        torch.testing.assert_close(guided_prediction(network, x, t, context, 1.0), conditional)
        # Both halves in one batch, the null prompt's states padded to the prompts' length.
        guided = guided_prediction(network, x, t, context, 3.0)
    torch.testing.assert_close(guided, unconditional + 3.0 * (conditional - unconditional))


def test_dropping_the_condition_is_the_null_condition() -> None:
    network = tiny_model("text").network
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 5])
    drop = torch.tensor([True, False])
    with torch.no_grad():
        mixed = network(x, t, network.context(Condition.of(texts=PROMPTS), drop))
        null = network(x[:1], t[:1], network.null_context(1))
        kept = network(x[1:], t[1:], network.context(Condition.of(texts=PROMPTS[1:])))
    torch.testing.assert_close(mixed, torch.cat([null, kept]))


def test_sampling_settings_choose_the_sampler_and_default_to_the_models() -> None:
    sampling = model_sampling("diffusion", sampler="ddim", steps=3, guidance_scale=2.0)
    model = tiny_model("label", sampling=sampling)
    condition = Condition.of([1, 2])

    def draw(**settings) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return model.sample(2, condition=condition, generator=generator, **settings).images

    assert torch.equal(draw(), draw(sampler="ddim", steps=3, guidance_scale=2.0))
    assert not torch.equal(draw(), draw(steps=4))
    assert not torch.equal(draw(), draw(sampler="euler"))
    assert not torch.equal(draw(), draw(guidance_scale=1.0))
    assert model.sample_tag({"sampler": "euler", "steps": None}) == "samples/euler_3"


def test_guidance_applies_only_inside_its_interval() -> None:
    sampling = model_sampling("diffusion", sampler="ddim", steps=4, guidance_scale=3.0)
    model = tiny_model("label", sampling=sampling)
    condition = Condition.of([1, 2])
    timesteps = make_sampler("ddim", 4, model.schedule).timesteps.tolist()  # [999, 749, 499, 249]

    def draw(**settings) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        return model.sample(2, condition=condition, generator=generator, **settings).images

    guided, unguided = draw(), draw(guidance_scale=1.0)
    assert torch.equal(draw(guidance_interval=[0, 1000]), guided)
    assert torch.equal(draw(guidance_interval=[timesteps[0] + 1, 1000]), unguided)
    middle = draw(guidance_interval=[timesteps[2], timesteps[1]])
    assert not torch.equal(middle, guided) and not torch.equal(middle, unguided)


@pytest.mark.parametrize(
    ("conditioning", "settings", "message"),
    [
        (None, {"sampler": "nope"}, "sampler=nope does not exist; choose from ddpm, ddim"),
        (None, {"steps": 0}, "steps=0: denoise in at least one step"),
        (None, {"steps": -3}, "steps=-3: denoise in at least one step"),
        (None, {"steps": 5000}, "steps=5000: this model was trained with 1000 timesteps"),
        (None, {"guidance_scale": 3.0}, "guidance_scale=3.0: this model is unconditional"),
        (
            "label",
            {"guidance_scale": -1.0, "condition": Condition.of(1)},
            "guidance_scale=-1.0: must be greater than 0",
        ),
        ("label", {"condition": Condition.of(texts="a seven")}, "takes class labels, not texts"),
        (
            "label",
            {"guidance_interval": [500, 100], "condition": Condition.of(1)},
            r"guidance_interval=\[500, 100\]: give \[low, high\] timesteps",
        ),
        ("text", {"condition": Condition.of(7)}, "takes text prompts, not labels"),
    ],
)
def test_bad_sampling_settings_are_one_line(
    conditioning: str | None, settings: dict, message: str
) -> None:
    model = tiny_model(conditioning)
    with pytest.raises(ConfigError, match=message):
        model.sample(1, **settings)


def test_guidance_without_a_learned_null_condition_is_refused() -> None:
    model = tiny_model("label", uncond_prob=0.0)
    with pytest.raises(ConfigError, match=r"never learned the unconditional case"):
        model.sample(1, condition=Condition.of(1), guidance_scale=2.0)
    model.sample(1, condition=Condition.of(1), guidance_scale=1.0, steps=1)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.beta_schedule=quadratic", "model.beta_schedule=quadratic; choose linear"),
        ("model.prediction_type=sample", "model.prediction_type=sample; choose epsilon"),
        ("model.sampling.sampler=fast", "sampler=fast does not exist"),
        ("model.uncond_prob=1.0", r"model.uncond_prob=1.0; choose a value in \[0, 1\)"),
        (
            "model.widths=[8,16,16,16] model.attention=[false,false,false,true]",
            "a 28x28 image cannot be halved 3 times",
        ),
        ("model.attention=[true]", "model.widths has 2 levels and model.attention 1"),
        ("model.norm_groups=3", r"model.widths \[8, 16\] are not multiples of model.norm_groups"),
    ],
)
def test_bad_model_settings_are_one_line(
    make_cfg, tiny_mnist: Path, override: str, message: str
) -> None:
    overrides = override.split()
    cfg = make_cfg(f"paths.data_dir={tiny_mnist}", "model=diffusion", *TINY_DIFFUSION, *overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg)


def trained_run(make_cfg, tmp_path: Path, *overrides: str) -> Path:
    data = tmp_path / "data"
    write_tiny_idx_dataset(data)
    run = tmp_path / "run"
    cfg = make_cfg(
        f"paths.data_dir={data}",
        "model=diffusion",
        *TINY_DIFFUSION,
        "data.batch_size=16",
        "trainer.max_steps=2",
        "logger=none",
        *overrides,
        output_dir=run,
    )
    train(cfg)
    return run


def test_an_unconditional_export_is_a_ddpm_pipeline_that_samples_what_aigc_samples(
    make_cfg, tmp_path: Path
) -> None:
    run = trained_run(make_cfg, tmp_path, "model.ema_decay=0.5")
    out = tmp_path / "diffusers"
    export(compose_config("export", f"ckpt_path={run}", f"output={out}", "format=diffusers"))
    pipeline = DDPMPipeline.from_pretrained(out)  # diffusers itself, from the folder
    model = load_model(run)
    ours = model.sample_from_config({"seed": 3, "num_samples": 2, "sampler": "ddpm", "steps": 4})
    theirs = pipeline(
        batch_size=2,
        generator=torch.Generator().manual_seed(3),
        num_inference_steps=4,
        output_type="np",
    ).images  # (B, H, W, C) in [0, 1]
    expected = torch.from_numpy(theirs).permute(0, 3, 1, 2) * 2 - 1
    torch.testing.assert_close(ours.images, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("conditioning", ["label", "text"])
def test_a_conditional_export_holds_the_unet_scheduler_and_prompt_encoder(
    make_cfg, tmp_path: Path, conditioning: str
) -> None:
    overrides = [f"model.conditioning={conditioning}", "model.ema_decay=0.5"]
    if conditioning == "text":
        overrides += ["data=mnist_captions", "model.text_encoder.n_embd=16"]
    run = trained_run(make_cfg, tmp_path, *overrides)
    out = tmp_path / "diffusers"
    export(compose_config("export", f"ckpt_path={run}", f"output={out}", "format=diffusers"))
    model = load_model(run)
    network = model.generating_network()  # the EMA weights
    scheduler = DDPMScheduler.from_pretrained(out / "scheduler")
    assert torch.equal(scheduler.betas, model.schedule.betas)
    assert scheduler.config.prediction_type == model.schedule.config.prediction_type
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 900])
    if conditioning == "label":
        unet = UNet2DModel.from_pretrained(out / "unet")
        labels = torch.tensor([4, 10])  # a digit, and the null class
        expected = network(x, t, Context(labels=labels))
        torch.testing.assert_close(unet(x, t, class_labels=labels).sample, expected)
        return
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    weights = load_file(out / "text_encoder" / "model.safetensors")
    encoder = TextEncoder(**json.loads((out / "text_encoder" / "config.json").read_text()))
    encoder.load_state_dict(
        {k.removeprefix("encoder."): v for k, v in weights.items() if k != "null_text"}
    )
    encoding = encoder(["a handwritten seven", "zero"])
    with torch.no_grad():
        got = unet(x, t, encoding.states, encoder_attention_mask=encoding.mask).sample
        expected = network(x, t, Context(states=encoding.states, mask=encoding.mask))
    torch.testing.assert_close(got, expected)
    assert torch.equal(weights["null_text"], network.null_text)


def test_other_families_have_no_diffusers_form(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:

    run = tmp_path / "gan"
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_steps=1", "logger=none", output_dir=run))
    cfg = compose_config(
        "export", f"ckpt_path={run}", f"output={tmp_path / 'x'}", "format=diffusers"
    )
    with pytest.raises(ConfigError, match="a GAN has no diffusers form; diffusion models do"):
        export(cfg)
    cfg = compose_config("export", f"ckpt_path={run}", f"output={tmp_path / 'x'}", "format=onnx")
    with pytest.raises(ConfigError, match="format=onnx; choose aigc or diffusers"):
        export(cfg)


@pytest.mark.parametrize("conditioning", ["label", "text"])
def test_bf16_mixed_precision_on_cpu(make_cfg, tmp_path: Path, conditioning: str) -> None:
    overrides = [f"model.conditioning={conditioning}", "trainer.precision=bf16-mixed"]
    if conditioning == "text":
        overrides += ["data=mnist_captions", "model.text_encoder.n_embd=16"]
    run = trained_run(make_cfg, tmp_path, *overrides)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        samples = load_model(run).sample_from_config({"seed": 0, "num_samples": None})
    assert samples.images.dtype == torch.float32 and torch.isfinite(samples.images).all()


@pytest.mark.slow
def test_compiled_diffusion_trains(make_cfg, tmp_path: Path) -> None:
    run = trained_run(make_cfg, tmp_path, "model.conditioning=label", "model.compile=true")
    samples = load_model(run).sample_from_config({"seed": 0, "num_samples": 10})
    assert torch.isfinite(samples.images).all()
