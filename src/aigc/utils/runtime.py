"""Accelerator and precision for the entry points, by Lightning's names for them: train.py passes
``trainer.accelerator`` and ``trainer.precision`` to its Trainer, and generate.py and eval.py take
``accelerator`` and ``precision`` with the same values."""

from contextlib import AbstractContextManager, nullcontext

import torch

from aigc.errors import ConfigError

# Lightning's precision names that sampling and scoring run in, and the autocast dtype of each.
PRECISIONS = {"32": None, "32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
# Names generate.py and eval.py took before they took Lightning's.
_RENAMED_PRECISIONS = {"bf16": "bf16-mixed"}


def resolve_device(accelerator: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``; ``gpu`` (or ``cuda``) -> CUDA."""
    if accelerator == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if accelerator == "cpu":
        return torch.device("cpu")
    if accelerator not in ("gpu", "cuda"):
        raise ConfigError(f"accelerator={accelerator}; choose auto, cpu or gpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"accelerator={accelerator}, but this machine has no CUDA GPU; use cpu")
    return torch.device("cuda")


def check_accelerator(accelerator: str) -> None:
    """A GPU trainer (``trainer=gpu``, ``ddp``, ``fsdp``) on a machine without CUDA is a config
    error, said before anything is built rather than deep inside Lightning."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator}, but this machine has no CUDA GPU; "
            "use trainer=cpu, or trainer=ddp_cpu for several processes"
        )


def autocast(device: torch.device, precision: str | int) -> AbstractContextManager:
    """``32`` -> full precision; ``bf16-mixed`` (``16-mixed``, CUDA only) -> bfloat16 (float16)
    autocast on the device."""
    name = str(precision)
    if name in _RENAMED_PRECISIONS:
        raise ConfigError(f"precision={name} is now called {_RENAMED_PRECISIONS[name]}")
    if name not in PRECISIONS:
        raise ConfigError(f"precision={name}; choose {', '.join(PRECISIONS)}")
    if name == "16-mixed" and device.type != "cuda":
        raise ConfigError("precision=16-mixed needs a CUDA GPU; use bf16-mixed")
    dtype = PRECISIONS[name]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
