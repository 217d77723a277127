"""Sample-quality metrics for generators."""

from aigc.metrics.image import (
    FeatureNetwork,
    ImageMetrics,
    inception_available,
    load_feature_network,
)

__all__ = ["FeatureNetwork", "ImageMetrics", "inception_available", "load_feature_network"]
