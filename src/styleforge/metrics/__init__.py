"""Evaluation: one feature pass per image set, every metric derived from it.

``features`` (the network and the pass), ``fid``, ``kid``, ``inception_score``, ``diversity``,
``fewshot`` (the metrics), ``cache`` (real-set features on disk), ``evaluate`` (folders and
models scored, tables), ``periodic`` (the trainer's optional evaluation). See
docs/evaluation.md for the choices made.
"""
from .evaluate import (ALL_METRICS, DEFAULT_METRICS, EvalOptions, evaluate_folders, evaluate_model,
                       format_table, parse_metrics, score_features)
from .features import Features, FeatureNet, extract_features, load_feature_net
from .fid import fid, frechet_distance
from .inception_score import inception_score
from .kid import kid

__all__ = ["ALL_METRICS", "DEFAULT_METRICS", "EvalOptions", "Features", "FeatureNet", "evaluate_folders",
           "evaluate_model", "extract_features", "fid", "format_table", "frechet_distance",
           "inception_score", "kid", "load_feature_net", "parse_metrics", "score_features"]
