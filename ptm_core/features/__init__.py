"""Features: the FeatureSet, extraction from a backbone (cached, resumable, previewed while it runs), the
user's own features files, shards and the Ray engine that writes them.
"""
from ptm_core.features.featureset import FeatureSet, validate_feature_arrays
from ptm_core.features.extraction import extract, warm_up
from ptm_core.features.preview import Preview, ProgressivePreview
from ptm_core.features.user_files import read_features_file

__all__ = ["FeatureSet", "Preview", "ProgressivePreview", "extract", "read_features_file", "validate_feature_arrays",
           "warm_up"]
