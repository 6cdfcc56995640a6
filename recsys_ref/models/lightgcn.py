r"""LightGCN (He et al., SIGIR 2020): graph convolution with nothing but neighbourhood
averaging.

Layer :math:`l+1` of the user–item graph smooths layer :math:`l` with the symmetric
normalised adjacency (:mod:`recsys_ref.graph`), and the final representation averages
all layers:

.. math::

    \mathbf{E}^{(l+1)} = \tilde A\, \mathbf{E}^{(l)}, \qquad
    \mathbf{E} = \frac{1}{L+1} \sum_{l=0}^{L} \mathbf{E}^{(l)}
               = \Big(\frac{1}{L+1}\sum_{l=0}^{L} \tilde A^{l}\Big) \mathbf{E}^{(0)},

no feature transform, no non-linearity, no self-loop. The only parameters are the
layer-0 embeddings :math:`\mathbf{E}^{(0)} \in \mathbb{R}^{(U+I) \times d}`; BPR with L2
on the batch's layer-0 embeddings trains them.

Shapes:
    - ``forward()`` -> ``(U, d)``, ``(I, d)``
    - ``norm_adj``: sparse ``(U+I, U+I)``

Used in: ``chapters/06_graph_convolution``, ``08_graph_attention``, ``09_language_models``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..graph import bipartite_edge_index, normalized_adjacency
from .embedding import EmbeddingRecommender

__all__ = ["LightGCNModule", "LightGCN"]


class LightGCNModule(nn.Module):
    """The propagation network; ``norm_adj`` is a registered buffer (moves with ``.to``).

    Args:
        num_users, num_items: node counts.
        embed_dim: :math:`d`.
        num_layers: :math:`L` (0 gives plain matrix factorisation).
        norm_adj: sparse :math:`\\tilde A`.
        init_std: std of the normal initialisation of :math:`\\mathbf{E}^{(0)}`.
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, num_layers: int,
                 norm_adj: torch.Tensor, init_std: float = 0.1):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.num_users, self.num_items, self.num_layers = num_users, num_items, num_layers
        self.embedding = nn.Embedding(num_users + num_items, embed_dim)
        self.init_std = init_std
        self.register_buffer("norm_adj", norm_adj.coalesce())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        """Layer mean :math:`\\frac{1}{L+1}\\sum_l \\tilde A^l x` for any ``x`` ``(N, d)``."""
        out, h = x, x
        for _ in range(self.num_layers):
            h = torch.sparse.mm(self.norm_adj, h)
            out = out + h
        return out / (self.num_layers + 1)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.propagate(self.embedding.weight)
        return e[: self.num_users], e[self.num_users:]

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        w = self.embedding.weight
        terms = [w[users].pow(2).sum(), w[self.num_users + pos].pow(2).sum()]
        if neg is not None:
            terms.append(w[self.num_users + neg].pow(2).sum())
        return sum(terms) / (2 * len(users))

    def __repr__(self) -> str:
        return (f"LightGCNModule({self.num_users}+{self.num_items}, "
                f"{self.embedding.embedding_dim}, num_layers={self.num_layers})")


class LightGCN(EmbeddingRecommender):
    """LightGCN recommender (see the module docstring for the model).

    Args:
        num_layers: propagation depth :math:`L` (default 3).
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`.
    """

    name = "lightgcn"

    def __init__(self, num_layers: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.num_layers = num_layers

    def build(self) -> nn.Module:
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        adj = normalized_adjacency(ei, self.num_users + self.num_items)
        return LightGCNModule(self.num_users, self.num_items, self.embed_dim, self.num_layers, adj)

    def __repr__(self) -> str:
        return (f"LightGCN({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers})")
