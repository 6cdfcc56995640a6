"""Recommenders, grouped by family, all with the
:class:`~recsys_ref.models.base.Recommender` interface (``fit`` / ``score`` /
``recommend``): :mod:`~recsys_ref.models.classic`, :mod:`~recsys_ref.models.graph`,
:mod:`~recsys_ref.models.text` and :mod:`~recsys_ref.models.sequential`.

Every model class is importable from here (``from recsys_ref.models import LightGCN``);
:data:`MODELS` maps the names accepted by ``python -m recsys_ref.cli.bench --model NAME``
to ``"module:Class"``. Classes are imported on first use, so a model with extra
dependencies costs nothing until it is asked for.
"""
from __future__ import annotations

import importlib

from recsys_ref.models.base import Recommender

# class name -> module, for ``from recsys_ref.models import NAME`` (imported lazily)
_CLASSES: dict[str, str] = {
    "Popularity": "recsys_ref.models.classic.popularity",
    "Baseline": "recsys_ref.models.classic.knn",
    "UserKNN": "recsys_ref.models.classic.knn",
    "ItemKNN": "recsys_ref.models.classic.knn",
    "ContentBased": "recsys_ref.models.classic.content",
    "WeightedHybrid": "recsys_ref.models.classic.hybrid",
    "SwitchingHybrid": "recsys_ref.models.classic.hybrid",
    "BiasedMF": "recsys_ref.models.classic.mf",
    "BPRMF": "recsys_ref.models.classic.bprmf",
    "SVDEmbedding": "recsys_ref.models.classic.svd",
    "EASE": "recsys_ref.models.classic.ease",
    "WRMF": "recsys_ref.models.classic.wrmf",
    "GFCF": "recsys_ref.models.graph.gfcf",
    "LightGCN": "recsys_ref.models.graph.lightgcn",
    "GCN": "recsys_ref.models.graph.gcn",
    "NGCF": "recsys_ref.models.graph.ngcf",
    "GATRecommender": "recsys_ref.models.graph.gat",
    "GraphSAGE": "recsys_ref.models.graph.graphsage",
    "Node2Vec": "recsys_ref.models.graph.node2vec",
    "DeepWalk": "recsys_ref.models.graph.node2vec",
    "GraphAutoEncoder": "recsys_ref.models.graph.gae",
    "LightGCNText": "recsys_ref.models.text.fusion",
    "LightGCNTextMap": "recsys_ref.models.text.textmap",
    "ItemTransitions": "recsys_ref.models.sequential.markov",
    "GRU4Rec": "recsys_ref.models.sequential.gru4rec",
    "SASRec": "recsys_ref.models.sequential.sasrec",
    "SRGNN": "recsys_ref.models.sequential.srgnn",
}

__all__ = ["MODELS", "Recommender", "get_model", "check_params", *_CLASSES]

# name -> "module:Class" (one line per model; keep sorted by chapter)
MODELS: dict[str, str] = {
    "popularity": "recsys_ref.models.classic.popularity:Popularity",
    "userknn": "recsys_ref.models.classic.knn:UserKNN",
    "itemknn": "recsys_ref.models.classic.knn:ItemKNN",
    "ease": "recsys_ref.models.classic.ease:EASE",
    "content": "recsys_ref.models.classic.content:ContentBased",
    "hybrid": "recsys_ref.models.classic.hybrid:WeightedHybrid",
    "biasedmf": "recsys_ref.models.classic.mf:BiasedMF",
    "bpr": "recsys_ref.models.classic.bprmf:BPRMF",
    "svd": "recsys_ref.models.classic.svd:SVDEmbedding",
    "wrmf": "recsys_ref.models.classic.wrmf:WRMF",
    "lightgcn": "recsys_ref.models.graph.lightgcn:LightGCN",
    "gfcf": "recsys_ref.models.graph.gfcf:GFCF",
    "gcn": "recsys_ref.models.graph.gcn:GCN",
    "ngcf": "recsys_ref.models.graph.ngcf:NGCF",
    "gat": "recsys_ref.models.graph.gat:GATRecommender",
    "node2vec": "recsys_ref.models.graph.node2vec:Node2Vec",
    "deepwalk": "recsys_ref.models.graph.node2vec:DeepWalk",
    "gae": "recsys_ref.models.graph.gae:GraphAutoEncoder",
    "lightgcn-text": "recsys_ref.models.text.fusion:LightGCNText",
    "lightgcn-textmap": "recsys_ref.models.text.textmap:LightGCNTextMap",
    "graphsage": "recsys_ref.models.graph.graphsage:GraphSAGE",
    "transitions": "recsys_ref.models.sequential.markov:ItemTransitions",
    "gru4rec": "recsys_ref.models.sequential.gru4rec:GRU4Rec",
    "sasrec": "recsys_ref.models.sequential.sasrec:SASRec",
    "srgnn": "recsys_ref.models.sequential.srgnn:SRGNN",
}


def get_model(name: str) -> type[Recommender]:
    """The model class registered under ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def check_params(cls: type[Recommender], params: dict, reserved: tuple[str, ...] = ("seed",),
                 ) -> dict:
    """Check hyper-parameter names (e.g. from ``--param name=value``) against
    ``cls.__init__`` before building the model.

    Args:
        cls: the model class (:func:`get_model`'s result).
        params: ``{name: value}``.
        reserved: names set by other means (the CLI's ``--seed``).

    Returns:
        ``params`` unchanged.

    Raises:
        ValueError: an unknown or reserved name; the message lists the valid names of
            ``cls`` with their defaults.
    """
    valid = {n: p.default for n, p in cls._init_params().items()}
    listing = ", ".join(f"{n}={d!r}" for n, d in valid.items() if n not in reserved)
    for name in params:
        if name in reserved:
            raise ValueError(f"{cls.__name__}: {name!r} is set by its own option "
                             f"(--{name}), not --param")
        if name not in valid:
            raise ValueError(f"{cls.__name__} has no parameter {name!r}; valid parameters "
                             f"(with defaults): {listing}")
    return params


def __getattr__(name: str):
    """Import a model class on first access (PEP 562)."""
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module 'recsys_ref.models' has no attribute {name!r}; "
                         f"models: {sorted(_CLASSES)}")


def __dir__() -> list[str]:
    return sorted(__all__)
