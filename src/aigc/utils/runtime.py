"""Device and precision choices shared by the entry points."""

from contextlib import AbstractContextManager, nullcontext

import torch

from aigc.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:1`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name}, but this machine has no CUDA GPU; use device=cpu")
    return device


def check_accelerator(accelerator: str) -> None:
    """A GPU trainer (``trainer=gpu``, ``ddp``, ``fsdp``) on a machine without CUDA is a config
    error, said before anything is built rather than deep inside Lightning."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator}, but this machine has no CUDA GPU; "
            "use trainer=cpu, or trainer=ddp_cpu for several processes"
        )


# The entry points' ``precision`` settings and the Lightning precision each stands for.
_LIGHTNING_PRECISION = {"32": "32-true", "bf16": "bf16-mixed"}


def lightning_precision(precision: str | int) -> str:
    """``32`` -> ``"32-true"``, ``bf16`` -> ``"bf16-mixed"``; anything else is a config error."""
    if str(precision) not in _LIGHTNING_PRECISION:
        raise ConfigError(f"precision={precision}; choose 32 or bf16")
    return _LIGHTNING_PRECISION[str(precision)]


def autocast(device: torch.device, precision: str | int) -> AbstractContextManager:
    """``32`` -> full precision; ``bf16`` -> bfloat16 autocast on the device."""
    if lightning_precision(precision) == "32-true":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
