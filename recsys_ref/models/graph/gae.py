r"""Graph autoencoder (Kipf & Welling, 2016) for link prediction on the user–item graph.

A GCN encoder maps every node to :math:`\mathbf{z}_v` and the inner-product decoder
reconstructs the probability of an edge:

.. math::

    \mathbf{Z} = \mathrm{GCN}(\mathbf{X}, \tilde A_{+I}), \qquad
    \hat A_{ui} = \sigma(\mathbf{z}_u^\top \mathbf{z}_i),

    \mathcal{L} = -\frac{1}{|E^+|}\sum_{(u,i) \in E^+} \log \hat A_{ui}
                  -\frac{1}{|E^-|}\sum_{(u,j) \in E^-} \log (1 - \hat A_{uj}),

with :math:`\tilde A_{+I}` the GCN propagation matrix (self-loops, symmetric
normalisation), :math:`\mathbf{X}` learnable node embeddings (there are no node features
in a pure interaction graph), :math:`E^+` the training user–item edges and :math:`E^-` as
many sampled user–item pairs the user has not interacted with. The model is
``torch_geometric.nn.GAE`` with ``GCNConv`` layers (no compiled extension needed);
negatives are drawn inside the bipartite graph (user–item pairs only) instead of PyG's
default ``negative_sampling`` over all node pairs, since user–user and item–item pairs are
never candidates for recommendation. Scores for ranking are the logits
:math:`\mathbf{z}_u^\top \mathbf{z}_i` (the sigmoid does not change the order).

Shapes:
    - ``edge_index``: ``(2, 2|E|)`` user–item graph, items shifted by ``num_users``
    - ``encode()`` -> ``Z``: ``(U + I, d)``; ``score(users)``: ``(B, I)``

Used in: ``chapters/05_graph_embedding``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.nn import GAE, GCNConv
from torch_geometric.utils import to_torch_csr_tensor

from recsys_ref.graph.adjacency import bipartite_edge_index
from recsys_ref.models.base import Recommender
from recsys_ref.models.embedding import DotProductScores, ranking_validator
from recsys_ref.nn.losses import NegativeSampler
from recsys_ref.protocol.evaluate import interaction_matrix
from recsys_ref.train.runtime import get_device
from recsys_ref.train.trainer import History, Trainer, TrainerConfig

__all__ = ["GCNEncoder", "GraphAutoEncoder", "user_item_pairs", "sparse_adj_t"]


def sparse_adj_t(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """The transposed adjacency ``adj_t[target, source]`` as a ``torch.sparse_csr``
    tensor, the input format PyG layers accept instead of ``edge_index``: one sparse
    product per layer instead of the scatter-based ``edge_index`` path, with the same
    output (see ``tests/unit/test_node2vec_gae.py``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "sparse CSR support is in beta"
        return to_torch_csr_tensor(edge_index.flip(0), size=(num_nodes, num_nodes))


def user_item_pairs(df: pd.DataFrame, num_users: int) -> torch.Tensor:
    """``(2, E)`` user -> item edges of a frame, items shifted by ``num_users``."""
    for col in ("user", "item"):
        if col not in df.columns:
            raise ValueError(f"interaction frame lacks column {col!r}")
    u = torch.tensor(df["user"].to_numpy(), dtype=torch.long)
    i = torch.tensor(df["item"].to_numpy(), dtype=torch.long) + num_users
    return torch.stack([u, i])


class GCNEncoder(nn.Module):
    r"""Learnable node embeddings followed by ``num_layers`` ``GCNConv`` layers (ReLU
    between them, none after the last).

    Args:
        num_nodes: :math:`N = U + I`.
        embed_dim: input embedding size and width of the hidden layers.
        out_dim: size of :math:`\mathbf{z}` (default ``embed_dim``).
        num_layers: GCN layers (default 2).
        dropout: dropout on the hidden layers (default 0).
    """

    def __init__(self, num_nodes: int, embed_dim: int, out_dim: int | None = None,
                 num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        out_dim = out_dim or embed_dim
        self.num_nodes, self.embed_dim, self.out_dim = num_nodes, embed_dim, out_dim
        self.dropout = dropout
        self.embedding = nn.Embedding(num_nodes, embed_dim)
        dims = [embed_dim] * num_layers + [out_dim]
        self.convs = nn.ModuleList(GCNConv(a, b, cached=True) for a, b in zip(dims[:-1], dims[1:]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, edge_index: torch.Tensor) -> torch.Tensor:
        """``edge_index`` ``(2, E)`` or a sparse ``adj_t`` ``(N, N)`` -> ``Z`` ``(N, out_dim)``."""
        h = self.embedding.weight                             # (N, d)
        for k, conv in enumerate(self.convs):
            h = conv(h, edge_index)                           # (N, d_k)
            if k < len(self.convs) - 1:
                h = torch.relu(h)
                h = nn.functional.dropout(h, self.dropout, self.training)
        return h

    def __repr__(self) -> str:
        return (f"GCNEncoder({self.num_nodes}, {self.embed_dim}, out_dim={self.out_dim}, "
                f"num_layers={len(self.convs)})")


class GraphAutoEncoder(DotProductScores, Recommender):
    """GAE recommender: a GCN encoder trained to reconstruct user–item edges.

    Args:
        embed_dim: input and hidden width (default 64).
        out_dim: size of :math:`\\mathbf{z}` (default 64).
        num_layers: GCN layers (default 2).
        dropout: hidden dropout (default 0).
        num_neg: sampled negative pairs per positive edge (default 1).
        lr: Adam learning rate (default 0.01).
        weight_decay: Adam weight decay (default 0).
        num_epochs: full-batch epochs (default 200).
        eval_every, patience: early stopping on ``valid`` (NDCG@10) when given to ``fit``.
        device: ``None`` picks CUDA when available.
        seed: seeds initialisation and negative sampling.
        progress: show a progress bar.
    """

    name = "gae"
    uses_validation = False

    def __init__(self, embed_dim: int = 64, out_dim: int = 64, num_layers: int = 2,
                 dropout: float = 0.0, num_neg: int = 1, lr: float = 0.01,
                 weight_decay: float = 0.0, num_epochs: int = 200, eval_every: int = 10,
                 patience: int | None = 5, device: str | None = None, seed: int = 0,
                 progress: bool = False):
        if embed_dim < 1 or out_dim < 1 or num_epochs < 1 or num_neg < 1:
            raise ValueError("embed_dim, out_dim, num_epochs and num_neg must be positive")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.embed_dim, self.out_dim, self.num_layers = embed_dim, out_dim, num_layers
        self.dropout, self.num_neg, self.lr = dropout, num_neg, lr
        self.weight_decay, self.num_epochs = weight_decay, num_epochs
        self.eval_every, self.patience = eval_every, patience
        self.device = get_device(device)
        self.seed, self.progress = seed, progress
        self.gae: GAE | None = None
        self.edge_index: torch.Tensor | None = None
        self.adj_t: torch.Tensor | None = None
        self.history: History | None = None
        self.epoch_seconds: float | None = None
        self._z: torch.Tensor | None = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "GraphAutoEncoder":
        """Full-batch training with the :class:`~recsys_ref.train.trainer.Trainer` (one
        step per epoch, fresh negatives each epoch); with ``valid``, NDCG@10 every
        ``eval_every`` epochs, early stopping and best-state restore."""
        self._store_train(train, num_users, num_items)
        self.edge_index = bipartite_edge_index(train, num_users, num_items)
        self.adj_t = sparse_adj_t(self.edge_index, num_users + num_items).to(self.device)
        config = TrainerConfig(num_epochs=self.num_epochs, batch_size=None, lr=self.lr,
                               eval_every=self.eval_every, patience=self.patience,
                               seed=self.seed, device=self.device, progress=self.progress,
                               desc=self.name)
        evaluate = ranking_validator(self, train, valid, before=self._drop_cache)
        self.history = Trainer(config).fit(self, evaluate)
        times = self.history.epoch_seconds
        self.epoch_seconds = float(np.median(times)) if times else None
        self._z = None
        return self

    # -- the trainer's model contract --------------------------------------------------
    @property
    def module(self) -> GAE | None:
        """The trained network (:attr:`gae`)."""
        return self.gae

    def setup(self, trainer) -> None:
        coo = self.train_matrix.tocoo()
        self._pos_u = torch.as_tensor(coo.row, dtype=torch.long)
        pos_i = torch.as_tensor(coo.col, dtype=torch.long)
        self._pos = torch.stack([self._pos_u, pos_i + self.num_users]).to(self.device)  # (2, E)
        encoder = GCNEncoder(self.num_users + self.num_items, self.embed_dim, self.out_dim,
                             self.num_layers, self.dropout)
        self.gae = GAE(encoder).to(self.device)
        self._sampler = NegativeSampler(self.train_matrix, seed=self.seed)
        self._rep_u = self._pos_u.repeat_interleave(self.num_neg)

    def configure_optimizer(self, config) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.gae.parameters(), lr=config.lr,
                                weight_decay=self.weight_decay)

    def epoch_data(self, epoch: int) -> tuple[torch.Tensor]:
        """This epoch's negative items, ``num_neg`` per training edge ``(E n,)``."""
        self._z = None
        return (self._sampler(self._pos_u.numpy(), self.num_neg).view(-1),)

    def calculate_loss(self, batch: tuple[torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Reconstruction loss of the training edges against the sampled non-edges."""
        neg = torch.stack([self._rep_u, batch[0] + self.num_users]).to(self.device)
        z = self.gae.encode(self.adj_t)
        return self.gae.recon_loss(z, self._pos, neg), 1

    def _drop_cache(self) -> None:
        self._z = None

    @torch.no_grad()
    def encode(self) -> torch.Tensor:
        """Node representations :math:`\\mathbf{Z}` ``(U + I, d)`` in eval mode (cached)."""
        self._check_fitted()
        if self._z is None:
            self.gae.eval()
            self._z = self.gae.encode(self.adj_t).detach()
        return self._z

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb (U, d), item_emb (I, d))``."""
        z = self.encode()
        return z[: self.num_users], z[self.num_users:]

    @torch.no_grad()
    def link_prediction(self, test: pd.DataFrame, exclude: tuple[pd.DataFrame, ...] = (),
                        seed: int = 0) -> dict[str, float]:
        """AUC and AP (``GAE.test``, scikit-learn) of held-out edges against as many
        user–item pairs seen nowhere (not in training, ``test`` or ``exclude``), drawn
        for the same users.
        """
        self._check_fitted()
        seen = self.train_matrix + interaction_matrix(test, self.num_users, self.num_items)
        for df in exclude:
            seen = seen + interaction_matrix(df, self.num_users, self.num_items)
        pos = user_item_pairs(test, self.num_users)
        neg_i = NegativeSampler(seen, seed=seed)(pos[0].numpy(), 1).view(-1)
        neg = torch.stack([pos[0], neg_i + self.num_users])
        z = self.encode()
        auc, ap = self.gae.test(z, pos.to(z.device), neg.to(z.device))
        return {"auc": float(auc), "ap": float(ap)}

    def __repr__(self) -> str:
        return (f"GraphAutoEncoder({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"out_dim={self.out_dim}, num_layers={self.num_layers})")
