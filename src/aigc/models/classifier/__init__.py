"""Image classifiers, trained by the framework to be the feature network of FID, KID and IS."""

from aigc.models.classifier.module import Classifier
from aigc.models.classifier.network import ConvClassifier

__all__ = ["Classifier", "ConvClassifier"]
