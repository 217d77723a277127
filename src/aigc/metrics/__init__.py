"""The scorecard: sample-quality scores of generators, and likelihood of language models."""

from aigc.metrics.image import (
    FeatureNetwork,
    FeatureSet,
    extract_features,
    image_scores,
    inception_available,
    inception_fid,
    load_feature_network,
    prdc,
    reference_features,
)
from aigc.metrics.scorecard import score

__all__ = [
    "FeatureNetwork",
    "FeatureSet",
    "extract_features",
    "image_scores",
    "inception_available",
    "inception_fid",
    "load_feature_network",
    "prdc",
    "reference_features",
    "score",
]
