"""One recommender per module, all with the :class:`~recsys_ref.models.base.Recommender`
interface (``fit`` / ``score`` / ``recommend``).

:data:`MODELS` maps the names accepted by ``python -m recsys_ref.bench --model NAME`` to
``"module:Class"``; classes are imported on first use, so a model with extra
dependencies costs nothing until it is asked for.
"""
from __future__ import annotations

import importlib

from .base import Recommender
from .popularity import Popularity

__all__ = ["MODELS", "Recommender", "Popularity", "get_model"]

# name -> "module:Class" (one line per model; keep sorted by chapter)
MODELS: dict[str, str] = {
    "popularity": "recsys_ref.models.popularity:Popularity",
    "userknn": "recsys_ref.models.knn:UserKNN",
    "itemknn": "recsys_ref.models.knn:ItemKNN",
    "content": "recsys_ref.models.content:ContentBased",
    "hybrid": "recsys_ref.models.hybrid:WeightedHybrid",
    "biasedmf": "recsys_ref.models.mf:BiasedMF",
    "bpr": "recsys_ref.models.bpr:BPRMF",
    "svd": "recsys_ref.models.svd:SVDEmbedding",
    "lightgcn": "recsys_ref.models.lightgcn:LightGCN",
    "gcn": "recsys_ref.models.gcn:GCN",
    "ngcf": "recsys_ref.models.ngcf:NGCF",
    "gat": "recsys_ref.models.gat:GATRecommender",
    "node2vec": "recsys_ref.models.node2vec:Node2Vec",
    "deepwalk": "recsys_ref.models.node2vec:DeepWalk",
    "gae": "recsys_ref.models.gae:GraphAutoEncoder",
    "lightgcn-text": "recsys_ref.models.fusion:LightGCNText",
    "lightgcn-textmap": "recsys_ref.models.fusion:LightGCNTextMap",
    "graphsage": "recsys_ref.models.graphsage:GraphSAGE",
}


def get_model(name: str) -> type[Recommender]:
    """The model class registered under ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)
