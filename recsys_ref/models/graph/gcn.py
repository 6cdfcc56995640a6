r"""A GCN recommender: Kipf & Welling's graph convolution (ICLR 2017) on the user–item
graph, trained with BPR.

The layer-0 representations are free ID embeddings :math:`\mathbf{E}^{(0)}`; each layer
is the from-scratch :class:`~recsys_ref.nn.gcn.SparseGCNLayer`,

.. math::

    \mathbf{E}^{(l+1)} = \sigma\big(\hat D^{-1/2} (A + I) \hat D^{-1/2}\,
        \mathbf{E}^{(l)} W^{(l)} + b^{(l)}\big),

with :math:`\sigma` the LeakyReLU, and, as in NGCF, the representation used for scoring
concatenates all layers (each row-normalised):
:math:`\mathbf{e}_u = [\mathbf{e}^{(0)}_u \,\|\, \bar{\mathbf{e}}^{(1)}_u \,\|\, \cdots]`.
It is the baseline that NGCF extends with affinity messages and LightGCN strips of
:math:`W` and :math:`\sigma`.

Shapes:
    - ``forward(norm_adj=None)`` -> ``(U, d (L+1))``, ``(I, d (L+1))``

Used in: ``chapters/06_graph_convolution``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index
from recsys_ref.nn.gcn import SparseGCNLayer, gcn_norm_sparse
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.nn.fused_losses import embedding_l2

__all__ = ["GCNModule", "GCN"]


class GCNModule(nn.Module):
    """ID embeddings followed by ``num_layers`` :class:`SparseGCNLayer` s.

    Args:
        num_users, num_items: node counts.
        embed_dim: :math:`d` (every layer keeps it).
        num_layers: :math:`L`.
        edge_index: ``(2, E)`` bipartite edges (both directions), items shifted by ``num_users``.
        negative_slope: LeakyReLU slope (default 0.2).
        dropout: dropout on each layer's output in training (default 0.1).
        init_std: std of the normal layer-0 initialisation (default 0.1).
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, num_layers: int,
                 edge_index: torch.Tensor, negative_slope: float = 0.2, dropout: float = 0.1,
                 init_std: float = 0.1):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        n = num_users + num_items
        self.num_users, self.num_items, self.num_layers = num_users, num_items, num_layers
        self.negative_slope, self.dropout, self.init_std = negative_slope, dropout, init_std
        self.embedding = nn.Embedding(n, embed_dim)
        act = lambda h: F.leaky_relu(h, negative_slope)  # noqa: E731
        self.layers = nn.ModuleList(SparseGCNLayer(embed_dim, embed_dim, activation=act)
                                    for _ in range(num_layers))
        self.register_buffer("norm_adj", gcn_norm_sparse(edge_index, n), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, norm_adj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb, item_emb)`` over ``norm_adj``, the sparse :math:`\\hat D^{-1/2}
        (A + I) \\hat D^{-1/2}` ``(U+I, U+I)`` of any graph on these nodes (default: the
        training graph given at construction)."""
        adj = self.norm_adj if norm_adj is None else norm_adj
        h = self.embedding.weight                           # (N, d)
        outs = [h]
        for layer in self.layers:
            h = F.dropout(layer(h, adj), self.dropout, self.training)   # (N, d)
            outs.append(F.normalize(h, dim=1))
        e = torch.cat(outs, dim=1)                          # (N, d (L+1))
        return e[: self.num_users], e[self.num_users:]

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        """L2 of the batch's layer-0 embeddings over :math:`2B`
        (:func:`~recsys_ref.nn.fused_losses.embedding_l2`, as in LightGCN)."""
        return embedding_l2(self.embedding.weight, users, pos, neg, self.num_users)

    def __repr__(self) -> str:
        return (f"GCNModule({self.num_users}+{self.num_items}, {self.embedding.embedding_dim}, "
                f"num_layers={self.num_layers})")


class GCN(EmbeddingRecommender):
    """GCN recommender (module docstring) trained with BPR.

    Args:
        num_layers: :math:`L` (default 2).
        dropout: dropout on layer outputs (default 0.1).
        init_std: layer-0 initialisation std (default 0.1).
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`.
    """

    name = "gcn"

    def __init__(self, num_layers: int = 2, dropout: float = 0.1, init_std: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.num_layers, self.dropout, self.init_std = num_layers, dropout, init_std

    def build(self) -> nn.Module:
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        return GCNModule(self.num_users, self.num_items, self.embed_dim, self.num_layers, ei,
                         dropout=self.dropout, init_std=self.init_std)

    def __repr__(self) -> str:
        return (f"GCN({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers})")
