"""Device and precision choices shared by the sampling and evaluation entry points."""

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


def autocast(device: torch.device, precision: str | int) -> AbstractContextManager:
    """``32`` -> full precision; ``bf16`` -> bfloat16 autocast on the device."""
    if str(precision) == "32":
        return nullcontext()
    if str(precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ConfigError(f"precision={precision}; choose 32 or bf16")
