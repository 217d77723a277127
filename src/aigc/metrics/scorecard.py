"""The scorecard: what ``eval.py`` measures of a model, by the interface it declares
(``aigc.core.scoring``; nothing here knows a family).

Every image generator, conditional or not, gets the same image scores; language models get
their likelihood of held-out text; image tokenizers, the quality of their reconstructions; a
model of captioned images, the image scores and its captions' accuracy and likelihoods.
"""

import math
import time

import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torchmetrics.image import PeakSignalNoiseRatio

from aigc.core.conditioning import Condition, spread
from aigc.core.module import AigcModule, GenerativeModule
from aigc.core.scoring import CodebookUsage, ImageCaptionLikelihood, ImageCodec, TextLikelihood
from aigc.data import ImageDataModule, TextDataModule
from aigc.data.pixels import to_signed_unit_range
from aigc.errors import ConfigError
from aigc.metrics.image import (
    extract_features,
    frechet_distance,
    image_scores,
    inception_available,
    inception_fid,
    load_feature_network,
    reference_features,
)
from aigc.utils.instantiate import instantiate

Scores = dict[str, float | str]


def score_image_generator(
    model: GenerativeModule,
    cfg: DictConfig,
    device: torch.device,
    datamodule: ImageDataModule | None = None,
) -> Scores:
    """FID, KID, IS, precision/recall/density/coverage of ``sampling.num_samples`` generated
    images against the real test split, in a classifier's feature space; for conditional models
    also conditional accuracy and intra-class FID (for text prompts on the training templates,
    and under ``heldout/`` on templates training never saw). ``seconds_per_image`` is the wall
    time sampling took, per image, on this machine. ``datamodule``: ``cfg.data``'s, when the
    caller has built it already."""
    datamodule = datamodule or _data(cfg, ImageDataModule, model)
    if not cfg.image.feature_ckpt:
        raise ConfigError(
            "image.feature_ckpt is not set: the image scores need a classifier checkpoint as "
            "feature network; train one with `python train.py experiment=mnist_classifier`"
        )
    network = load_feature_network(cfg.image.feature_ckpt)
    batch_size = cfg.image.batch_size
    real = reference_features(network, datamodule, cfg.paths.cache_dir, batch_size, device)
    results: Scores = {}
    for prefix, condition, classes in _conditions(model, datamodule):
        start = time.perf_counter()
        samples = model.sample_from_config(cfg.sampling, condition, batch_size=batch_size)
        if not prefix:  # what a sampler and its steps cost, beside what they score
            results["seconds_per_image"] = (time.perf_counter() - start) / len(samples)
        if tuple(samples.images.shape[1:]) != datamodule.image_shape:
            raise ConfigError(
                f"the model generates images of shape {tuple(samples.images.shape[1:])}, but the "
                f"data has {datamodule.image_shape}: score it on the data it was trained on"
            )
        # The class of each sample, spread over the samples as the condition is.
        labels = None
        if classes is not None:
            labels = spread(Condition(labels=classes), cfg.sampling.num_samples)[1].labels
        batches = samples.images.split(batch_size)
        fake = extract_features(network, batches, labels, device)
        scores = image_scores(real, fake, cfg.image.kid_subset_size, cfg.image.nearest_k)
        results.update({prefix + name: value for name, value in scores.items()})
        if not prefix:
            results["inception_fid"] = _inception_fid(datamodule, samples.images, device)
    results["feature_network"] = network.name
    results["samples"] = len(samples)
    return results


def score_language_model(model: TextLikelihood, cfg: DictConfig, device: torch.device) -> Scores:
    """Loss, perplexity and bits per token over every token of the validation split, in
    non-overlapping windows of the model's ``block_size``."""
    datamodule = _data(cfg, TextDataModule, model, block_size=model.block_size, val_batches=None)
    if datamodule.tokenizer.state_dict() != model.tokenizer.state_dict():
        raise ConfigError(
            f"{datamodule.path} tokenizes differently from the text {cfg.ckpt_path} was trained "
            "on (another vocabulary): evaluate on the training text's data config"
        )
    datamodule.prepare_data()
    datamodule.setup("validate")
    nats = 0.0  # every window has block_size targets: the mean of the windows' means
    for batch in datamodule.val_dataloader():
        nats += float(model.nll(batch["tokens"].to(device))) * len(batch["tokens"])
    loss = nats / len(datamodule.val_set)
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        model.bits_metric: loss / math.log(2),
        "tokens": len(datamodule.val_set) * model.block_size,
    }


def score_image_tokenizer(model: ImageCodec, cfg: DictConfig, device: torch.device) -> Scores:
    """How well the test split survives the trip through the tokenizer's codes
    (``decode(encode(images))``): PSNR, how much of the codebook the test images use, and with a
    classifier (``image.feature_ckpt``) its accuracy on the originals and on the
    reconstructions, and the FID between the two in its feature space."""
    datamodule = _data(cfg, ImageDataModule, model)
    datamodule.prepare_data()
    datamodule.setup("test")
    test = datamodule.test_set
    psnr = PeakSignalNoiseRatio(data_range=(-1.0, 1.0))
    usage = CodebookUsage(model.vocab_size)
    originals, reconstructions = [], []
    for pixels in test.images.split(cfg.image.batch_size):
        images = to_signed_unit_range(pixels).to(device)
        ids = model.encode(images)
        reconstruction = model.decode(ids).float()
        psnr.update(reconstruction.cpu(), images.float().cpu())
        usage.update(ids.cpu())
        originals.append(images.cpu())
        reconstructions.append(reconstruction.cpu())
    results: Scores = {"psnr": float(psnr.compute())}
    results.update({f"codebook_{name}": float(v) for name, v in usage.compute().items()})
    if cfg.image.feature_ckpt:
        network = load_feature_network(cfg.image.feature_ckpt)
        real, rebuilt = (
            extract_features(network, batches, test.labels, device)
            for batches in (originals, reconstructions)
        )
        if test.labels is not None:
            for name, features in (("originals", real), ("reconstructions", rebuilt)):
                correct = features.logits.argmax(dim=1) == features.labels
                results[f"accuracy_{name}"] = float(correct.float().mean())
        results["fid_reconstructions"] = frechet_distance(real, rebuilt)
        results["feature_network"] = network.name
    results["images"] = len(test)
    results["tokens_per_image"] = model.tokens_per_image
    return results


def score_text_image_model(
    model: ImageCaptionLikelihood, cfg: DictConfig, device: torch.device
) -> Scores:
    """A model that draws and captions: the image generator's scorecard of its drawings from
    prompts (training and held-out wordings), then over the test split its captions' accuracy
    (the share that name the image's class in one of the data's caption wordings, greedy),
    and its negative log-likelihood of the test images (bits per pixel, after the empty
    caption) and of their captions (bits per byte, after the image)."""
    datamodule = _data(cfg, ImageDataModule, model)
    results = score_image_generator(model, cfg, device, datamodule)
    datamodule.setup("test")  # loaded already by the image scores: the same test split
    test = datamodule.test_set
    if test.texts is None:
        raise ConfigError(f"{cfg.ckpt_path}: score it on captioned data (data=mnist_captions)")
    captions, image_nats, text_nats = [], 0.0, 0.0
    step = cfg.image.batch_size
    for start in range(0, len(test), step):
        images = to_signed_unit_range(test.images[start : start + step]).to(device)
        texts = test.texts[start : start + step]
        captions += model.caption(images)
        image_nll, caption_nll = model.nll(images, texts)
        image_nats += float(image_nll.sum())
        text_nats += float(caption_nll.sum())
    # Accuracy where the data's own captions name their class in words a parser knows.
    if test.labels is not None and datamodule.caption_label(test.texts[0]) is not None:
        parsed = [datamodule.caption_label(caption) for caption in captions]
        right = sum(p == int(label) for p, label in zip(parsed, test.labels, strict=True))
        results["caption_accuracy"] = right / len(test)
    results["image_bits_per_dim"] = image_nats / math.log(2) / test.images[0].numel() / len(test)
    num_bytes = sum(len(text.encode("utf-8")) for text in test.texts)
    results["caption_bits_per_byte"] = text_nats / math.log(2) / num_bytes
    results["caption_example"] = captions[0]
    return results


def score(model: AigcModule, cfg: DictConfig, device: torch.device) -> Scores:
    """The scorecard of ``model``, by the interface it declares."""
    if isinstance(model, ImageCaptionLikelihood):  # an image generator too: checked first
        return score_text_image_model(model, cfg, device)
    if isinstance(model, TextLikelihood):
        return score_language_model(model, cfg, device)
    if isinstance(model, ImageCodec):
        return score_image_tokenizer(model, cfg, device)
    if isinstance(model, GenerativeModule) and model.produces == "image":
        return score_image_generator(model, cfg, device)
    raise ConfigError(
        f"{cfg.ckpt_path} holds a {type(model).__name__}, which eval.py does not score: it "
        "scores image and text generators and image tokenizers"
    )


def _data(cfg: DictConfig, kind: type, model: AigcModule, **kwargs) -> ImageDataModule:
    """The datamodule of ``cfg.data``, which must be ``kind`` of data for this model."""
    if not issubclass(get_class(cfg.data._target_), kind):
        wanted = "image" if kind is ImageDataModule else "text"
        verb = "generates" if isinstance(model, GenerativeModule) else "reads"
        raise ConfigError(
            f"{cfg.ckpt_path} holds a {type(model).__name__}, which {verb} {wanted}; score it "
            f"on {wanted} data (the data config it was trained with)"
        )
    return instantiate(cfg.data, **kwargs)


def _conditions(
    model: GenerativeModule, datamodule: ImageDataModule
) -> list[tuple[str, Condition | None, torch.Tensor | None]]:
    """What to generate for the scorecard: (prefix of the scores' names, the condition to spread
    over the samples, the class each of its entries asks for)."""
    if model.conditioning == "label":
        classes = torch.arange(model.num_classes)
        return [("", Condition(labels=classes), classes)]
    if model.conditioning == "text":
        sets = {"": datamodule.prompts(heldout=False), "heldout/": datamodule.prompts(heldout=True)}
        scored = [
            (prefix, Condition(texts=[p for p, _ in pairs]), torch.tensor([c for _, c in pairs]))
            for prefix, pairs in sets.items()
            if pairs
        ]
        if scored:
            return scored
    # Unconditional, or prompts of unknown classes: the model's own sample prompts.
    return [("", None, None)]


def _inception_fid(
    datamodule: ImageDataModule, fake: torch.Tensor, device: torch.device
) -> float | str:
    """The standard FID with InceptionV3, where its weights can be had; else why not."""
    available, why_not = inception_available()
    if not available:
        return why_not
    return inception_fid(datamodule.test_set.images, fake, device)
