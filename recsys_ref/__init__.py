"""recsys_ref: the reference package of *Recommender Systems with Graph Neural Networks and
Language Models*, an executable book.

Modules (one concept each): :mod:`~recsys_ref.data` (datasets), :mod:`~recsys_ref.splits`
(protocols), :mod:`~recsys_ref.metrics` and :mod:`~recsys_ref.evaluate` (measurement),
:mod:`~recsys_ref.train` (seeds, devices, the training loop), :mod:`~recsys_ref.plotting`
(the book's figure style), :mod:`~recsys_ref.models` (one recommender per module) and
:mod:`~recsys_ref.bench` (the benchmark command line).
"""
from .data import DataError, load_movielens
from .evaluate import evaluate_ranking, interaction_matrix, topk_items
from .train import get_device, set_seed

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "load_movielens",
    "evaluate_ranking",
    "interaction_matrix",
    "topk_items",
    "get_device",
    "set_seed",
    "__version__",
]
