"""The noise schedule and the samplers: diffusers' schedulers, chosen by name from the config.

Training noises images with ``DDPMScheduler``; every sampler is another diffusers scheduler built
from that one's config, so all of them share its betas and prediction target.
"""

import diffusers
from diffusers import DDPMScheduler, SchedulerMixin

from aigc.errors import ConfigError, check_positive

# `model.beta_schedule` -> diffusers' name of it.
BETA_SCHEDULES = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
}
PREDICTION_TYPES = ("epsilon", "v_prediction")
# `sampling.sampler` -> the diffusers scheduler that samples, and its settings beyond the
# training schedule's.
SAMPLERS: dict[str, tuple[type[SchedulerMixin], dict[str, str]]] = {
    "ddpm": (diffusers.DDPMScheduler, {}),
    "ddim": (diffusers.DDIMScheduler, {}),
    "dpm_solver": (diffusers.DPMSolverMultistepScheduler, {}),
    # DPM-Solver++ of the reverse SDE: fresh noise at each step, as DDPM, which corrects
    # earlier steps' errors; on MNIST it drew closer to the data than the ODE in 20 or 40 steps.
    "dpm_solver_sde": (
        diffusers.DPMSolverMultistepScheduler,
        {"algorithm_type": "sde-dpmsolver++"},
    ),
    "unipc": (diffusers.UniPCMultistepScheduler, {}),
    "euler": (diffusers.EulerDiscreteScheduler, {}),
    "euler_ancestral": (diffusers.EulerAncestralDiscreteScheduler, {}),
    "heun": (diffusers.HeunDiscreteScheduler, {}),
}


def noise_schedule(
    num_train_timesteps: int, beta_schedule: str, prediction_type: str
) -> DDPMScheduler:
    """The forward process training follows, with the prediction target of the network."""
    check_positive("model", num_train_timesteps=num_train_timesteps)
    if beta_schedule not in BETA_SCHEDULES:
        raise ConfigError(
            f"model.beta_schedule={beta_schedule}; choose {', '.join(BETA_SCHEDULES)}"
        )
    if prediction_type not in PREDICTION_TYPES:
        raise ConfigError(
            f"model.prediction_type={prediction_type}; choose {' or '.join(PREDICTION_TYPES)}"
        )
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=BETA_SCHEDULES[beta_schedule],
        prediction_type=prediction_type,
        beta_start=1e-4,  # Ho et al. 2020's linear range
        beta_end=0.02,
        # Sampling's first step starts from pure noise, the last timestep, whatever the step
        # count (Lin et al. 2024); diffusers' default, "leading", would start 1 step in 1 at t=0.
        timestep_spacing="trailing",
    )


def make_sampler(name: str, steps: int, schedule: DDPMScheduler) -> SchedulerMixin:
    """The sampler ``name`` on ``schedule``'s betas, set to ``steps`` denoising steps."""
    if name not in SAMPLERS:
        raise ConfigError(f"sampler={name} does not exist; choose from {', '.join(SAMPLERS)}")
    if steps < 1:
        raise ConfigError(f"steps={steps}: denoise in at least one step")
    total = schedule.config.num_train_timesteps
    if steps > total:
        raise ConfigError(f"steps={steps}: this model was trained with {total} timesteps")
    # Every setting of the training schedule, those it left at their defaults too: from_config
    # would otherwise give a sampler its own defaults for those, and Heun's betas differ.
    settings = {k: v for k, v in schedule.config.items() if k != "_use_default_values"}
    scheduler_class, own_settings = SAMPLERS[name]
    sampler = scheduler_class.from_config({**settings, **own_settings})
    sampler.set_timesteps(steps)
    return sampler
