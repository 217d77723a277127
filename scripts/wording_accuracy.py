"""Conditional accuracy per prompt wording: which of the held-out wordings a text-conditional
model draws right, and which it does not read.

    python scripts/wording_accuracy.py <text_image run> <classifier run> --set guidance_scale=3
    python scripts/wording_accuracy.py <text gan run> <classifier run> --per-class 50

For each held-out wording of the data's captions it draws ``--per-class`` images of every class
from that wording's prompts, and prints the share that the classifier names as the prompt's
class, overall and per class; then the same over the training wordings that eval.py prompts with
(an image per prompt). eval.py's ``heldout/conditional_accuracy`` is the mean over all held-out
wordings; this says which of them the model fails on.
"""

import argparse
import ast
from typing import Any

import torch

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule
from aigc.data.captions import caption_set
from aigc.errors import ConfigError, exit_on_user_error
from aigc.metrics.image import FeatureNetwork, load_feature_network


def setting(text: str) -> tuple[str, object]:
    """``name=value``, the value read as a Python literal where it is one (3, 0.8, None)."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: give a sampling setting as name=value")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def correct(
    model: GenerativeModule,
    classifier: FeatureNetwork,
    prompts: list[tuple[str, int]],
    copies: int,
    settings: dict[str, Any],
    seed: int,
) -> torch.Tensor:
    """Whether the classifier names the class of each drawing ``(len(prompts), copies)``, drawn
    from ``copies`` of each (prompt, class) with the sampling ``settings``."""
    texts = [text for text, _ in prompts for _ in range(copies)]
    labels = torch.tensor([label for _, label in prompts for _ in range(copies)])
    generator = torch.Generator().manual_seed(seed)
    condition = Condition(texts=texts)
    images = model.sample(len(texts), condition=condition, generator=generator, **settings).images
    with torch.no_grad():
        _, logits = classifier(images)
    return (logits.argmax(dim=1) == labels).view(len(prompts), copies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ckpt_path", help="a text-conditional model: run directory or .ckpt")
    parser.add_argument("classifier", help="the classifier of eval.py's image.feature_ckpt")
    parser.add_argument("--captions", default="digits", help="the data's caption set")
    parser.add_argument("--per-class", type=int, default=20, help="drawings per class and wording")
    parser.add_argument("--set", type=setting, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = load_model(args.ckpt_path).eval()
    if "text" not in getattr(model, "condition_kinds", ()):
        raise ConfigError(f"{args.ckpt_path} holds a model that draws from no prompts")
    settings = dict(args.set)
    classifier = load_feature_network(args.classifier).eval()
    captions = caption_set(args.captions)
    classes = captions.num_classes

    print(f"{'wording':36} accuracy  per class 0..{classes - 1}")
    for template in captions.heldout_templates:
        prompts = [(captions.caption(template, c), c) for c in range(classes)]
        hits = correct(model, classifier, prompts, args.per_class, settings, args.seed).float()
        per_class = " ".join(f"{x:.2f}" for x in hits.mean(dim=1).tolist())
        print(f"{template!r:36} {hits.mean():7.1%}  {per_class}", flush=True)
    training = captions.prompts(heldout=False)
    hits = correct(model, classifier, training, 1, settings, args.seed).float()
    print(f"{'training wordings':36} {hits.mean():7.1%}  ({len(training)} prompts, one each)")


if __name__ == "__main__":
    exit_on_user_error(main)
