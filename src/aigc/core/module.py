"""What every model family's LightningModule shares, and the one interface of generative models."""

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from aigc.core.conditioning import CONDITIONING_KINDS, Condition, spread
from aigc.core.rng import rng_states, set_rng_states
from aigc.core.samples import Samples
from aigc.errors import ConfigError
from aigc.utils.log_steps import logs_this_step

PREVIEW_IMAGES = 8  # validation images a preview shows

MODEL_CLASS_KEY = "aigc_model_class"
RNG_STATES_KEY = "aigc_rng_states"
TRAINING_RNG_KEY = "aigc_training_rng_state"

# Called by a family while it samples: (steps done, steps in all, the samples so far or None).
Progress = Callable[[int, int, Samples | None], None]


class Monitor(NamedTuple):
    """A validation metric that says which of a model's checkpoints is best, and whether lower
    (``"min"``) or higher (``"max"``) is better."""

    metric: str
    mode: str


class AigcModule(L.LightningModule):
    """A LightningModule whose checkpoints name its class, so entry points can rebuild any of them.

    ``batch_keys`` are the entries its training batches must hold (``image``, ``label``, ``text``,
    ``tokens``); datamodules declare the ones they give. ``monitor`` is the validation metric that
    means "better" for this family: the best checkpoint and early stopping follow it unless the
    config names another. ``ddp_find_unused_parameters`` says whether DDP must look for parameters
    that a backward pass leaves without gradients (it costs a walk over the autograd graph at every
    backward).
    """

    monitor: ClassVar[Monitor]
    ddp_find_unused_parameters: ClassVar[bool] = False
    # Submodules that only training uses (the GAN's discriminator): exports leave their weights
    # out, and a model rebuilt from an export has None in their place.
    training_only: ClassVar[tuple[str, ...]] = ()

    # The logger tag of ``preview``'s pictures, and the images it shows: the first validation
    # batch's first ones, kept by ``keep_preview_images``.
    preview_tag: ClassVar[str] = "preview"
    preview_images: torch.Tensor | None = None  # (PREVIEW_IMAGES, C, H, W)

    @property
    def batch_keys(self) -> frozenset[str]:
        raise NotImplementedError

    def preview(self) -> Samples | None:
        """What the sample callback shows besides a generator's samples (images with the captions
        a model writes for them) or, for a model that does not generate, in their place (a
        tokenizer's reconstructions); None: nothing."""
        return None

    def keep_preview_images(self, images: torch.Tensor, batch_idx: int) -> None:
        """Keeps the first validation batch's first images for ``preview``, the same every time."""
        if self.preview_images is None and batch_idx == 0:
            self.preview_images = images[:PREVIEW_IMAGES].detach().cpu()

    @classmethod
    def class_key(cls) -> str:
        """The name checkpoints store to rebuild this class: ``module.QualifiedName``."""
        return f"{cls.__module__}.{cls.__qualname__}"

    def export_hparams(self) -> dict[str, Any]:
        """The constructor arguments of this model's export: its own, but uncompiled (compiling is
        the choice of the machine that runs a model)."""
        hparams = dict(self.hparams)
        if "compile" in hparams:
            hparams["compile"] = False
        return hparams

    def export_state_dict(self, ema: bool | None = None) -> dict[str, torch.Tensor]:
        """The weights an export keeps: all but the training-only submodules'. ``ema`` chooses
        between raw and averaged weights in models that keep an average; this one keeps none."""
        if ema:
            raise ConfigError(
                f"sampling.ema=true, but this {type(self).__name__} keeps no average of its weights"
            )
        return {
            name: tensor
            for name, tensor in self.state_dict().items()
            if name.split(".")[0] not in self.training_only
        }

    def save_diffusers(self, out: str | Path, ema: bool | None = None) -> Path:
        """Writes this model into the folder ``out`` in diffusers' layout, for the families that
        have one (diffusion models)."""
        raise ConfigError(
            f"format=diffusers: a {type(self).__name__} has no diffusers form; diffusion models do"
        )

    def drop_training_parts(self) -> "AigcModule":
        """This model for inference only: without its training-only submodules, in eval mode and
        frozen."""
        for name in self.training_only:
            setattr(self, name, None)
        return self.eval().requires_grad_(False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[MODEL_CLASS_KEY] = self.class_key()
        # Dropout and anything else that draws from the global generators continues, on resume,
        # with the numbers the uninterrupted run would have drawn.
        checkpoint[RNG_STATES_KEY] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_states_to_restore = checkpoint.get(RNG_STATES_KEY)

    def on_train_start(self) -> None:
        # A model that reads trainer.estimated_stepping_batches in configure_optimizers (the
        # classifier's one-cycle schedule) makes Lightning 2.6 build the training loader before a
        # resumed checkpoint is loaded, and then never give the loader its saved place in the
        # epoch: give it here, before the first batch is drawn.
        fit_loop = self.trainer.fit_loop
        if fit_loop._combined_loader_states_to_load:
            fit_loop._load_combined_loader_states()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Restored at the first step rather than on load: what happens between load and that step
        # (a sanity check, building the loaders) would draw from them otherwise.
        states = getattr(self, "_rng_states_to_restore", None)
        if states is not None:
            set_rng_states(states)
            self._rng_states_to_restore = None


class GenerativeModule(AigcModule):
    """A model that generates, through one interface for every family:
    ``sample(n, condition=..., generator=..., **settings) -> Samples``.

    A family declares what it ``produces`` ("image" or "text") and, per model, what it consumes:
    ``conditioning`` is None, "label" (class labels, ``num_classes`` of them) or "text" (prompts).
    It implements ``draw(network, n, condition, generator, progress, **settings)``, whose
    keyword-only arguments are its sampling settings; their defaults are the model config's
    ``sampling`` block, kept in the hyperparameters. The network that generates is
    ``self.network``; ``init_network`` keeps an exponential moving average of its weights, which
    ``sample`` uses unless told otherwise (``ema=False``).
    """

    produces: ClassVar[str]

    def __init__(
        self,
        conditioning: str | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        sample_prompts: Sequence[str] | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if conditioning not in (None, *CONDITIONING_KINDS):
            raise ConfigError(
                f"model.conditioning={conditioning}; choose null, {' or '.join(CONDITIONING_KINDS)}"
            )
        if conditioning == "label" and not num_classes:
            raise ConfigError(
                "model.conditioning=label needs labelled data, and this data config has no labels"
            )
        if conditioning == "text" and not sample_prompts:
            raise ConfigError(
                "model.conditioning=text needs captioned data (data=mnist_captions, or "
                "data=image_folder with a text column)"
            )
        self.conditioning = conditioning
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else None
        self.sample_prompts = list(sample_prompts) if sample_prompts else None
        self._check_defaults(sampling or {})
        self.ema: AveragedModel | None = None
        # The randomness training draws itself (GAN latents, diffusion noise and timesteps, the
        # text + image model's row orders) comes from this generator, saved in checkpoints, so a
        # resumed run draws exactly what an uninterrupted one would.
        self.training_rng = torch.Generator().manual_seed(torch.initial_seed())

    @property
    def batch_keys(self) -> frozenset[str]:
        """What it produces (``image``) and what it is conditioned on (``label``, ``text``), unless
        a family's batches hold something else (a language model's ``tokens``)."""
        return frozenset({self.produces, self.conditioning} - {None})

    @property
    def condition_kinds(self) -> frozenset[str]:
        """The kinds of ``Condition`` that ``sample`` takes: its ``conditioning``, if any."""
        return frozenset({self.conditioning} - {None})

    def batch_condition(self, batch: Mapping[str, Any]) -> Condition | None:
        """The condition of each example of a training batch: its labels or its captions."""
        if self.conditioning == "label":
            return Condition(labels=batch["label"])
        if self.conditioning == "text":
            return Condition(texts=list(batch["text"]))
        return None

    def loss(
        self,
        network: nn.Module,
        batch: Mapping[str, Any],
        generator: torch.Generator,
        training: bool,
    ) -> torch.Tensor:
        """The training objective of a family that learns by one loss (diffusion, text + image),
        on ``batch`` with ``network``, drawing from ``generator``; ``training`` False: as
        validation measures it."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self.network, batch, self.training_rng, training=True)
        if logs_this_step(self.trainer):
            self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        # The loss of the network that samples, with the same draws at every validation, apart
        # from the training stream.
        generator = torch.Generator().manual_seed(batch_idx)
        loss = self.loss(self.generating_network(), batch, generator, training=False)
        size = len(batch[self.produces])
        self.log(self.monitor.metric, loss, prog_bar=True, batch_size=size, sync_dist=True)

    def draw(
        self,
        network: nn.Module,
        n: int,
        condition: Condition | None,
        generator: torch.Generator | None,
        progress: Progress | None,
    ) -> Samples:
        """The family's sampling, with ``network`` (the raw or the averaged weights) in eval mode
        under ``torch.no_grad``. Sampling settings are keyword-only arguments after these."""
        raise NotImplementedError

    def default_condition(self) -> Condition | None:
        """What ``sample`` draws when nothing is asked for (``generate.py`` without a label, prompt
        or image): every class, or the sample prompts; None: unconditional samples."""
        if self.conditioning == "label":
            return Condition(labels=torch.arange(self.num_classes))
        if self.conditioning == "text":
            return Condition(texts=self.sample_prompts)
        return None

    def grid_condition(self) -> Condition | None:
        """What the sample grids logged during training show: ``default_condition()``, unless a
        family shows more."""
        return self.default_condition()

    def sample(
        self,
        n: int,
        *,
        condition: Condition | None = None,
        generator: torch.Generator | None = None,
        progress: Progress | None = None,
        **settings: Any,
    ) -> Samples:
        """``n`` samples; ``condition`` has one entry per sample (None: unconditional, or the
        ``default_condition`` spread evenly over the samples of a conditional model).

        ``generator`` (a CPU generator) makes the samples repeatable; ``settings`` are the
        family's sampling settings, None meaning its default, plus ``ema`` (True: the averaged
        weights, False: the raw ones; None: the averaged ones where the model keeps them).
        """
        use_ema = settings.pop("ema", None)
        given = self._given(settings)
        if condition is None and self.conditioning is not None:
            n, condition = spread(self.default_condition(), n)
        self._check_condition(condition, n)
        settings = self.sampling_settings(given, condition)
        network = self.generating_network(use_ema)
        with torch.no_grad(), eval_mode(self):
            return self.draw(network, n, condition, generator, progress, **settings)

    def generating_network(self, ema: bool | None = None) -> nn.Module:
        """The network that samples: the averaged weights where the model keeps them (``ema``
        None or True), else the raw ones (``ema=False``, or no average)."""
        if ema and self.ema is None:
            raise ConfigError(
                "sampling.ema=true, but this model keeps no average of its weights "
                "(model.ema_decay=null)"
            )
        if self.ema is not None and ema is not False:
            return self.ema.module
        return self.network

    def sample_from_config(
        self,
        sampling: Mapping[str, Any],
        condition: Condition | None = None,
        progress: Progress | None = None,
        batch_size: int | None = None,
    ) -> Samples:
        """``sample`` as a ``sampling`` config says: ``num_samples`` spread evenly over the entries
        of ``condition`` (or of ``default_condition()``), drawn from ``seed``, with the family's
        settings; ``batch_size`` at a time when given. The training-time sample callback,
        ``generate.py`` and ``eval.py`` all sample through here, so that one config gives the same
        samples in each."""
        settings = dict(sampling)
        seed, num_samples = settings.pop("seed"), settings.pop("num_samples")
        n, per_sample = spread(condition or self.default_condition(), num_samples)
        generator = torch.Generator().manual_seed(seed)
        step = batch_size or n
        parts = [
            self.sample(
                min(step, n - start),
                condition=per_sample.slice(start, start + step) if per_sample else None,
                generator=generator,
                progress=progress,
                **settings,
            )
            for start in range(0, n, step)
        ]
        return Samples.cat(parts)

    def sample_tag(self, settings: Mapping[str, Any]) -> str:
        """The logger tag of samples drawn with the sampling ``settings``."""
        return "samples"

    def init_network(self, ema_decay: float | None, compile: bool) -> None:
        """Once ``self.network`` is built: keeps an exponential moving average of its weights and
        buffers (None: none), updated after every training batch and saved in checkpoints, then
        compiles the network in place (parameter names, and so checkpoints, stay the same)."""
        if ema_decay is not None:
            if not 0.0 < ema_decay < 1.0:
                raise ConfigError(f"model.ema_decay={ema_decay}; choose a value in (0, 1), or null")
            self.ema = AveragedModel(
                self.network, multi_avg_fn=WarmupEMA(ema_decay), use_buffers=True
            ).requires_grad_(False)  # DDP and the optimizers leave it alone
        if compile:
            self.network.compile()

    def export_hparams(self) -> dict[str, Any]:
        hparams = super().export_hparams()
        # The export holds the weights that sample with (see export_state_dict), and no average.
        if "ema_decay" in hparams:
            hparams["ema_decay"] = None
        return hparams

    def export_state_dict(self, ema: bool | None = None) -> dict[str, torch.Tensor]:
        """All weights but the training-only submodules' and the average's, with the weights that
        ``sample(ema=ema)`` uses in the network's place."""
        state = {
            name: tensor
            for name, tensor in super().export_state_dict().items()
            if name.split(".")[0] != "ema"
        }
        for name, tensor in self.generating_network(ema).state_dict().items():
            state[f"network.{name}"] = tensor
        return state

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[TRAINING_RNG_KEY] = self.training_rng.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if TRAINING_RNG_KEY in checkpoint:  # checkpoints from before it was saved lack it
            self.training_rng.set_state(checkpoint[TRAINING_RNG_KEY])

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.network)

    def sampling_settings(
        self, given: Mapping[str, Any], condition: Condition | None
    ) -> dict[str, Any]:
        """What ``draw`` gets for ``condition``: the ``given`` settings, and the model's defaults
        (its ``sampling`` hyperparameter) for the others."""
        return {**(self.hparams.get("sampling") or {}), **given}

    def _setting_names(self) -> list[str]:
        params = inspect.signature(self.draw).parameters.values()
        return sorted(p.name for p in params if p.kind is p.KEYWORD_ONLY)

    def _given(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings that are not None; a setting this family does not have is an error."""
        known = self._setting_names()
        given = {name: value for name, value in settings.items() if value is not None}
        unknown = sorted(set(given) - set(known))
        if unknown:
            takes = f"its settings are {', '.join(known)}" if known else "it takes none"
            raise ConfigError(
                f"{', '.join(unknown)}: not a sampling setting of a {type(self).__name__}; "
                f"{takes}, and ema"
            )
        return given

    def _check_defaults(self, sampling: Mapping[str, Any]) -> None:
        """The model config's ``sampling`` block names every setting of the family, and no other."""
        known = self._setting_names()
        wrong = [f"{name} is not one" for name in sorted(set(sampling) - set(known))]
        wrong += [f"{name} is missing" for name in known if name not in sampling]
        if wrong:
            takes = ", ".join(known) if known else "none"
            raise ConfigError(
                f"model.sampling: {', '.join(wrong)}; a {type(self).__name__}'s settings: {takes}"
            )

    def _check_condition(self, condition: Condition | None, n: int) -> None:
        name = type(self).__name__
        if condition is None:
            return
        if not self.condition_kinds:
            raise ConfigError(f"this {name} is unconditional: it takes no {condition.kind}s")
        if condition.kind not in self.condition_kinds:
            wanted = " or ".join(_CONDITION_WORDS[kind] for kind in sorted(self.condition_kinds))
            raise ConfigError(f"this {name} takes {wanted}, not {condition.kind}s")
        if condition.labels is not None:
            bad = [i for i in condition.labels.tolist() if not 0 <= i < self.num_classes]
            if bad:
                raise ConfigError(
                    f"label {bad[0]} is out of range: this model knows classes 0 to "
                    f"{self.num_classes - 1} ({', '.join(self.class_names or [])})"
                )
        if len(condition) != n:
            raise ValueError(f"{len(condition)} condition entries for {n} samples")


_CONDITION_WORDS = {"label": "class labels", "text": "text prompts", "image": "images"}


class WarmupEMA:
    """``torch.optim.swa_utils``' EMA update with a warm-up: the decay after t updates is
    ``min(decay, (1 + t) / (10 + t))``, so that the average forgets the initial weights within
    the first hundreds of steps rather than the first ``1 / (1 - decay)`` thousands."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, averaged: list, current: list, num_averaged: torch.Tensor | int) -> None:
        t = int(num_averaged)
        get_ema_multi_avg_fn(min(self.decay, (1 + t) / (10 + t)))(averaged, current, t)


def derived_generator(generator: torch.Generator | None, device: torch.device):
    """A generator on ``device`` seeded from ``generator`` (a CPU one), for random draws that
    must happen on the device; None stays None (the global random state)."""
    if generator is None:
        return None
    seed = int(torch.randint(2**62, (), generator=generator))
    return torch.Generator(device).manual_seed(seed)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode, then back in the mode each was in."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training
