"""recsys_ref: the reference package of *Recommender Systems with Graph Neural Networks and
Language Models*, an executable book.

Sub-packages, by role:

================  ===========================================================================
``data``          one loader per dataset, your own table (``from_frame``), cache and download
``protocol``      :class:`~recsys_ref.protocol.split.Split` and its constructors, metrics,
                  full-ranking evaluation, cold-start protocols
``graph``         bipartite graphs, normalised adjacency, sparse kernels, neighbour sampling,
                  random walks
``nn``            layers (GCN, attention), losses, negative sampling
``models``        recommenders by family: ``classic``, ``graph``, ``text``; a registry
``train``         the Trainer and its callbacks; seeds, devices, threads
``lm``            text encoders, language-model generators, item and user texts
``book``          the book's figure style and notebook result recording
``cli``           ``python -m recsys_ref.cli.bench``
================  ===========================================================================

The most used names are importable from here.
"""
from recsys_ref.data import DataError, from_frame, load_movielens
from recsys_ref.protocol.evaluate import evaluate_ranking, interaction_matrix, topk_items
from recsys_ref.protocol.split import Split, evaluate
from recsys_ref.train import get_device, set_seed

__version__ = "0.2.0"

__all__ = [
    "DataError",
    "from_frame",
    "Split",
    "evaluate",
    "load_movielens",
    "evaluate_ranking",
    "interaction_matrix",
    "topk_items",
    "get_device",
    "set_seed",
    "__version__",
]
