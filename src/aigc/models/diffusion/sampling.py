"""The sampling loop: noise, then ``steps`` denoising steps of a sampler, with classifier-free
guidance when a guidance scale other than 1 is given."""

import inspect
from collections.abc import Sequence

import torch
from diffusers import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from aigc.core.module import Progress
from aigc.models.diffusion.network import Context, Denoiser, cat_contexts


def guided_prediction(
    network: Denoiser, x: Tensor, t: Tensor, context: Context, guidance_scale: float
) -> Tensor:
    """The network's prediction ``(B, C, H, W)``, pushed away from the unconditional one by
    ``guidance_scale`` (1: the conditional prediction as it is)."""
    if guidance_scale == 1.0 or len(context) == 0:
        return network(x, t, context).float()
    both = network(
        torch.cat([x, x]), torch.cat([t, t]), cat_contexts(context, network.null_context(len(x)))
    )
    conditional, unconditional = both.float().chunk(2)
    return unconditional + guidance_scale * (conditional - unconditional)


def denoise(
    network: Denoiser,
    sampler: SchedulerMixin,
    shape: tuple[int, ...],
    context: Context,
    guidance_scale: float,
    generator: torch.Generator | None,
    progress: Progress | None = None,
    guidance_interval: Sequence[float] | None = None,
) -> Tensor:
    """Images ``shape`` = ``(B, C, H, W)`` drawn from noise with ``sampler`` (its timesteps set),
    guided at every step, or only at the timesteps ``t`` with ``low <= t <= high`` of
    ``guidance_interval = (low, high)`` (Kynkäänniemi et al. 2024: guidance at the highest noise
    levels costs variety, at the lowest it does little).

    The noise comes from ``generator`` on the CPU, whatever the network's device, so a seed gives
    the same images everywhere; the loop is diffusers' own pipelines' loop, so an exported model
    sampled by diffusers with the same generator gives the same images.
    """
    device = next(network.parameters()).device
    x = randn_tensor(shape, generator=generator, device=device) * sampler.init_noise_sigma
    # Stochastic samplers draw fresh noise at each step; the others take no generator. DDIM takes
    # its direction from the clipped image estimate, consistent with that estimate: from the raw
    # output, a guided MNIST model's 50-step DDIM samples showed the asked-for digit 28% of the
    # time, against 100% so.
    accepted = inspect.signature(sampler.step).parameters
    extra = {"generator": generator} if "generator" in accepted else {}
    if "use_clipped_model_output" in accepted:
        extra["use_clipped_model_output"] = True
    timesteps = sampler.timesteps
    low, high = guidance_interval or (float("-inf"), float("inf"))
    for i, t in enumerate(timesteps):
        model_input = sampler.scale_model_input(x, t)
        batch_t = t.to(device).expand(len(x))
        scale = guidance_scale if low <= float(t) <= high else 1.0
        prediction = guided_prediction(network, model_input, batch_t, context, scale)
        x = sampler.step(prediction, t, x, **extra).prev_sample
        if progress is not None:
            progress(i + 1, len(timesteps), None)
    return x
