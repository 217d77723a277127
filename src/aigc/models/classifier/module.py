"""The LightningModule that trains an image classifier with cross-entropy."""

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from aigc.core.module import AigcModule, Monitor
from aigc.core.scoring import ImageClassifier
from aigc.errors import ConfigError, check_positive
from aigc.models.classifier.network import ConvClassifier
from aigc.utils.log_steps import logs_this_step

Batch = dict[str, torch.Tensor]  # image (B, C, H, W) in [-1, 1], label (B,)


class Classifier(AigcModule, ImageClassifier):
    """A ``ConvClassifier`` trained with AdamW and a one-cycle learning-rate schedule.

    Its checkpoints are what ``aigc.metrics.load_feature_network`` reads.
    """

    monitor = Monitor("val/acc", "max")

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        width: int = 32,
        feature_dim: int = 128,
        dropout: float = 0.25,
        lr: float = 3e-3,
        weight_decay: float = 5e-4,
        compile: bool = False,
    ) -> None:
        super().__init__()
        check_positive("model", width=width, feature_dim=feature_dim, lr=lr)
        self.save_hyperparameters()
        self.network = ConvClassifier(tuple(image_shape), num_classes, width, feature_dim, dropout)
        if compile:
            self.network.compile()  # in place: parameter names, and so checkpoints, stay the same
        # micro: the fraction of images classified right, not the mean of per-class accuracies.
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    @property
    def batch_keys(self) -> frozenset[str]:
        return frozenset({"image", "label"})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)  # (B, num_classes) logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch["image"], batch["label"]
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        if logs_this_step(self.trainer):
            accuracy = (logits.argmax(dim=-1) == labels).float().mean()
            self.log_dict(
                {"train/loss": loss, "train/acc": accuracy}, prog_bar=True, sync_dist=True
            )
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def _evaluate(self, batch: Batch, stage: str, accuracy: Metric) -> None:
        images, labels = batch["image"], batch["label"]
        logits = self(images)
        accuracy.update(logits, labels)
        # Logging the metric object lets Lightning compute it over the whole epoch, then reset it.
        self.log_dict(
            {f"{stage}/loss": F.cross_entropy(logits, labels), f"{stage}/acc": accuracy},
            prog_bar=True,
            batch_size=labels.size(0),
            sync_dist=True,  # the loss averaged over all ranks (the accuracy metric syncs itself)
        )

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        total_steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise ConfigError(
                "the classifier's learning-rate schedule spans the whole run: "
                "set trainer.max_epochs or trainer.max_steps"
            )
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=hp.lr, total_steps=int(total_steps)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # The feature network of the image scores (aigc.core.scoring.ImageClassifier).
    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.network.image_shape

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.features(images)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.head(features)
