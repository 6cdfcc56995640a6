"""recsys_ref: the reference package of *Recommender Systems with Graph Neural Networks and
Language Models*, an executable book.

Modules (one concept each): :mod:`~recsys_ref.data.movielens` (datasets), :mod:`~recsys_ref.protocol.splits`
(protocols), :mod:`~recsys_ref.protocol.metrics` and :mod:`~recsys_ref.protocol.evaluate` (measurement),
:mod:`~recsys_ref.train.loop` (seeds, devices, the training loop), :mod:`~recsys_ref.book.plotting`
(the book's figure style), :mod:`~recsys_ref.models` (one recommender per module) and
:mod:`~recsys_ref.cli.bench` (the benchmark command line).
"""
from recsys_ref.data.movielens import DataError, load_movielens
from recsys_ref.protocol.evaluate import evaluate_ranking, interaction_matrix, topk_items
from recsys_ref.train.loop import get_device, set_seed

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
