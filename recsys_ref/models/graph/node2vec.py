r"""node2vec / DeepWalk on the user–item graph: random walks + skip-gram with negative sampling.

Walks (:mod:`recsys_ref.graph.walks`) turn the graph into "sentences" of nodes; every window
of ``context_size`` consecutive nodes gives skip-gram pairs (centre :math:`c`, context
:math:`o`), and the embeddings :math:`\mathbf{z}` of one table are trained with the
negative-sampling objective of word2vec (Mikolov et al., 2013), exactly as
``torch_geometric.nn.Node2Vec`` writes it:

.. math::

    \mathcal{L} = -\frac{1}{|P|}\sum_{(c,o) \in P} \log \sigma(\mathbf{z}_c^\top \mathbf{z}_o)
                  -\frac{1}{|N|}\sum_{(c,n) \in N}
                   \log\big(1 - \sigma(\mathbf{z}_c^\top \mathbf{z}_n)\big),

:math:`P` the pairs from the walks, :math:`N` pairs of the same centres with uniformly
drawn nodes (``num_neg`` per positive). A user and an item that co-occur in many
short walks end up with a large :math:`\mathbf{z}_u^\top \mathbf{z}_i`, which is the
recommendation score (``similarity="dot"``, or the cosine).

Backends: with ``backend="auto"`` the model uses PyG's ``torch_geometric.nn.Node2Vec``
(walks from ``pyg-lib``) when ``torch_geometric.typing.WITH_PYG_LIB`` is true, otherwise
the same loss and sampling structure implemented here (:class:`SkipGramModule`) with the
NumPy walker; ``backend="recsys_ref"`` forces ours (seeded, reproducible everywhere).

Shapes:
    - ``edge_index``: ``(2, 2|E|)`` user–item graph, items shifted by ``num_users``
    - ``pos_rw``, ``neg_rw``: ``(B', context_size)`` windows, column 0 = centre
    - embeddings: ``(U + I, d)``; ``score(users)``: ``(B, I)``

Used in: ``chapters/05_graph_embedding``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index
from recsys_ref.graph.walks import RandomWalker, context_windows
from recsys_ref.models.base import Recommender
from recsys_ref.models.embedding import DotProductScores, ranking_validator
from recsys_ref.train.runtime import get_device
from recsys_ref.train.trainer import History, Trainer, TrainerConfig

__all__ = ["SkipGramModule", "sgns_loss", "Node2Vec", "DeepWalk", "pyg_walks_available"]

EPS = 1e-15  # PyG's Node2Vec constant inside the logs


def pyg_walks_available() -> bool:
    """Can PyG's own ``Node2Vec`` sample walks here (``pyg-lib`` installed)?"""
    try:
        from torch_geometric.typing import WITH_PYG_LIB
    except ImportError:  # pragma: no cover
        return False
    return bool(WITH_PYG_LIB)


def sgns_loss(embedding: nn.Embedding | torch.Tensor, pos_rw: torch.Tensor,
              neg_rw: torch.Tensor) -> torch.Tensor:
    r"""Skip-gram negative-sampling loss of positive and negative windows.

    Args:
        embedding: the node table (an ``nn.Embedding`` or its ``(N, d)`` weight).
        pos_rw: ``(B, c)`` windows from walks; pairs ``(row[0], row[j])``, ``j >= 1``.
        neg_rw: ``(B', c)`` windows whose ``row[1:]`` are random nodes.

    Returns:
        the scalar :math:`-\text{mean}\log\sigma(s^+) - \text{mean}\log(1-\sigma(s^-))`.
    """
    weight = embedding.weight if isinstance(embedding, nn.Embedding) else embedding

    def scores(rw: torch.Tensor) -> torch.Tensor:
        h_start = weight[rw[:, 0]].unsqueeze(1)          # (B, 1, d)
        h_rest = weight[rw[:, 1:]]                       # (B, c-1, d)
        return (h_start * h_rest).sum(-1).view(-1)       # (B * (c-1),)

    pos_loss = -torch.log(torch.sigmoid(scores(pos_rw)) + EPS).mean()
    neg_loss = -torch.log(1 - torch.sigmoid(scores(neg_rw)) + EPS).mean()
    return pos_loss + neg_loss


class SkipGramModule(nn.Module):
    """Node table + walk sampler with the interface of ``torch_geometric.nn.Node2Vec``
    (``sample(batch) -> (pos_rw, neg_rw)``, ``loss(pos_rw, neg_rw)``, ``forward()``).

    Args:
        edge_index: ``(2, E)`` undirected graph.
        embedding_dim: :math:`d`.
        walk_length: nodes per walk (start included).
        context_size: window length :math:`c` (``<= walk_length``).
        walks_per_node: walks started from each node of a batch.
        p, q: node2vec return / in-out parameters.
        num_negative_samples: negative windows per positive window.
        num_nodes: :math:`N`.
        seed: seeds the walk / negative generator.
    """

    def __init__(self, edge_index: torch.Tensor, embedding_dim: int, walk_length: int,
                 context_size: int, walks_per_node: int = 1, p: float = 1.0, q: float = 1.0,
                 num_negative_samples: int = 1, num_nodes: int | None = None,
                 init_std: float = 1.0, seed: int = 0):
        super().__init__()
        if not 2 <= context_size <= walk_length:
            raise ValueError(f"need 2 <= context_size <= walk_length, got context_size="
                             f"{context_size}, walk_length={walk_length}")
        if walks_per_node < 1 or num_negative_samples < 1:
            raise ValueError("walks_per_node and num_negative_samples must be >= 1")
        self.walker = RandomWalker(edge_index, num_nodes, p, q)
        self.num_nodes = self.walker.num_nodes
        self.embedding_dim, self.walk_length = embedding_dim, walk_length
        self.context_size = context_size
        self.walks_per_node, self.num_negative_samples = walks_per_node, num_negative_samples
        self.rng = np.random.default_rng(seed)
        self.init_std = init_std
        self.embedding = nn.Embedding(self.num_nodes, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)   # PyG: N(0, 1)

    def forward(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        w = self.embedding.weight
        return w if batch is None else w[batch]

    def pos_sample(self, batch: torch.Tensor) -> torch.Tensor:
        start = batch.repeat(self.walks_per_node)
        walks = self.walker.walk(start, self.walk_length, rng=self.rng)   # (W, L)
        return context_windows(walks, self.context_size)

    def neg_sample(self, batch: torch.Tensor) -> torch.Tensor:
        start = batch.repeat(self.walks_per_node * self.num_negative_samples)
        rand = torch.from_numpy(
            self.rng.integers(0, self.num_nodes, (len(start), self.walk_length - 1)))
        return context_windows(torch.cat([start.view(-1, 1), rand], 1), self.context_size)

    def sample(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        batch = torch.as_tensor(batch, dtype=torch.long)
        return self.pos_sample(batch), self.neg_sample(batch)

    def loss(self, pos_rw: torch.Tensor, neg_rw: torch.Tensor) -> torch.Tensor:
        return sgns_loss(self.embedding, pos_rw, neg_rw)

    def __repr__(self) -> str:
        return (f"SkipGramModule({self.num_nodes}, {self.embedding_dim}, walk_length="
                f"{self.walk_length}, context_size={self.context_size}, p={self.walker.p:g}, "
                f"q={self.walker.q:g})")


class Node2Vec(DotProductScores, Recommender):
    """node2vec recommender: embed users and items with biased walks, score by similarity.

    The defaults are the chapter's ML-100K settings (``python -m recsys_ref.cli.bench --model
    node2vec`` trains its node2vec setting, ``--model deepwalk`` its DeepWalk one).

    Args:
        embed_dim: :math:`d` (default 64).
        walk_length: nodes per walk (default 20).
        context_size: skip-gram window (default 5).
        walks_per_node: walks per node per epoch (default 5).
        p, q: node2vec parameters (default 4 and 1, chapter 5's node2vec; 1, 1 is DeepWalk).
        num_neg: negative windows per positive window (default 1).
        num_epochs: passes over all nodes as walk starts (default 10).
        batch_size: start nodes per step (default 256).
        lr: Adam learning rate (default 0.02).
        init_std: std of the normal initialisation (default 0.1; PyG's ``Node2Vec`` uses
            1, which saturates the sigmoid at :math:`d = 64` and trains slowly).
        similarity: ``"dot"`` (default) or ``"cosine"``.
        backend: ``"auto"`` (PyG's ``Node2Vec`` if ``pyg-lib`` is importable),
            ``"pyg"`` or ``"recsys_ref"``.
        patience: early stopping on ``valid`` (evaluated every epoch) when given to
            ``fit``; ``None`` trains all epochs.
        device: ``None`` picks CUDA when available.
        seed: seeds initialisation, walks and negatives.
        progress: show a progress bar.
    """

    name = "node2vec"
    uses_validation = False

    def __init__(self, embed_dim: int = 64, walk_length: int = 20, context_size: int = 5,
                 walks_per_node: int = 5, p: float = 4.0, q: float = 1.0, num_neg: int = 1,
                 num_epochs: int = 10, batch_size: int = 256, lr: float = 0.02,
                 init_std: float = 0.1, similarity: str = "dot", backend: str = "auto",
                 patience: int | None = None,
                 device: str | None = None, seed: int = 0, progress: bool = False):
        if embed_dim < 1 or num_epochs < 1 or batch_size < 1:
            raise ValueError("embed_dim, num_epochs and batch_size must be positive")
        if walk_length < 1:
            raise ValueError(f"walk_length must be >= 1, got {walk_length}")
        if not 2 <= context_size <= walk_length:
            raise ValueError("need 2 <= context_size <= walk_length, got "
                             f"{context_size}, {walk_length}")
        for name, val in (("p", p), ("q", q)):
            if not val > 0:
                raise ValueError(f"{name} must be > 0, got {val}")
        if similarity not in ("dot", "cosine"):
            raise ValueError(f"similarity must be 'dot' or 'cosine', got {similarity!r}")
        if backend not in ("auto", "pyg", "recsys_ref"):
            raise ValueError(f"backend must be 'auto', 'pyg' or 'recsys_ref', got {backend!r}")
        if backend == "pyg" and not pyg_walks_available():
            raise ValueError("backend='pyg' needs pyg-lib (torch_geometric.typing.WITH_PYG_LIB); "
                             "use backend='recsys_ref'")
        self.embed_dim, self.walk_length, self.context_size = embed_dim, walk_length, context_size
        self.walks_per_node, self.num_neg = walks_per_node, num_neg
        self.p, self.q = float(p), float(q)
        self.num_epochs, self.batch_size, self.lr = num_epochs, batch_size, lr
        self.init_std = init_std
        self.similarity, self.backend, self.patience = similarity, backend, patience
        self.device = get_device(device)
        self.seed, self.progress = seed, progress
        self.module: nn.Module | None = None
        self.backend_used: str | None = None
        self.history: History | None = None
        self.epoch_seconds: float | None = None

    def _build(self, edge_index: torch.Tensor, num_nodes: int) -> nn.Module:
        use_pyg = self.backend == "pyg" or (self.backend == "auto" and pyg_walks_available())
        if use_pyg:  # pragma: no cover - needs pyg-lib
            from torch_geometric.nn import Node2Vec as PyGNode2Vec
            self.backend_used = "pyg"
            return PyGNode2Vec(edge_index, self.embed_dim, self.walk_length, self.context_size,
                               self.walks_per_node, self.p, self.q, self.num_neg, num_nodes)
        self.backend_used = "recsys_ref"
        return SkipGramModule(edge_index, self.embed_dim, self.walk_length, self.context_size,
                              self.walks_per_node, self.p, self.q, self.num_neg, num_nodes,
                              init_std=self.init_std, seed=self.seed)

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "Node2Vec":
        """Train with the :class:`~recsys_ref.train.trainer.Trainer`: each epoch starts
        walks from every node once (in random order, ``batch_size`` start nodes per step);
        with ``valid``, NDCG@10 after every epoch, early stopping and best-state restore."""
        self._store_train(train, num_users, num_items)
        self._edge_index = bipartite_edge_index(train, num_users, num_items)
        config = TrainerConfig(num_epochs=self.num_epochs, batch_size=self.batch_size,
                               lr=self.lr, eval_every=1, patience=self.patience, seed=self.seed,
                               device=self.device, progress=self.progress, desc=self.name)
        self.history = Trainer(config).fit(self, ranking_validator(self, train, valid))
        times = self.history.epoch_seconds
        self.epoch_seconds = float(np.median(times)) if times else None
        return self

    # -- the trainer's model contract --------------------------------------------------
    def setup(self, trainer) -> None:
        num_nodes = self.num_users + self.num_items
        self.module = self._build(self._edge_index, num_nodes).to(self.device)
        self._gen = torch.Generator().manual_seed(self.seed)

    def configure_optimizer(self, config) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.module.parameters(), lr=config.lr)

    def epoch_data(self, epoch: int) -> tuple[torch.Tensor]:
        """Every node once as a walk start, in random order ``(U+I,)``."""
        return (torch.randperm(self.num_users + self.num_items, generator=self._gen),)

    def calculate_loss(self, batch: tuple[torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Skip-gram loss of the batch's walks; weighted by its number of windows."""
        pos_rw, neg_rw = self.module.sample(batch[0])
        loss = self.module.loss(pos_rw.to(self.device), neg_rw.to(self.device))
        return loss, len(pos_rw)

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb (U, d), item_emb (I, d))`` (unit-normalised for ``"cosine"``)."""
        self._check_fitted()
        z = self.module.embedding.weight.detach()
        if self.similarity == "cosine":
            z = torch.nn.functional.normalize(z, dim=1)
        return z[: self.num_users], z[self.num_users:]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"walk_length={self.walk_length}, context_size={self.context_size}, "
                f"p={self.p:g}, q={self.q:g})")


class DeepWalk(Node2Vec):
    """DeepWalk (Perozzi et al., 2014): :class:`Node2Vec` with uniform walks, ``p = q = 1``."""

    name = "deepwalk"

    def __init__(self, **kwargs):
        for key in ("p", "q"):
            if key in kwargs and kwargs[key] != 1:
                raise ValueError(f"DeepWalk walks uniformly ({key}=1); use Node2Vec for "
                                 "biased walks")
            kwargs.pop(key, None)
        super().__init__(p=1.0, q=1.0, **kwargs)
