from pathlib import Path

import pytest
import torch

from aigc.models.classifier import ConvClassifier
from aigc.train import train

TINY_CLASSIFIER = ["model=classifier", "model.width=4", "model.feature_dim=8"]


def tiny_classifier_run(make_cfg, data_dir: Path, *overrides: str):
    return make_cfg(
        f"paths.data_dir={data_dir}",
        "data.batch_size=32",
        "data.val_fraction=0.25",
        *TINY_CLASSIFIER,
        *overrides,
    )


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_network_adapts_to_image_shape(shape: tuple[int, int, int]) -> None:
    network = ConvClassifier(shape, num_classes=10, width=4, feature_dim=8)
    images = torch.rand(5, *shape) * 2 - 1
    assert network.features(images).shape == (5, 8)
    assert network(images).shape == (5, 10)


def test_image_side_must_be_a_multiple_of_4() -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        ConvClassifier((1, 30, 30), num_classes=10)


def test_fast_dev_run_logs_loss_and_accuracy(make_cfg, tiny_mnist: Path) -> None:
    metrics = train(tiny_classifier_run(make_cfg, tiny_mnist, "debug=fdr", "test=false"))
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} <= metrics.keys()
    assert 0.0 <= metrics["val/acc"] <= 1.0


def test_test_split_is_scored_after_training(make_cfg, tiny_mnist: Path) -> None:
    metrics = train(tiny_classifier_run(make_cfg, tiny_mnist, "debug=fdr", "test=true"))
    assert {"test/loss", "test/acc"} <= metrics.keys()
