r"""NGCF, Neural Graph Collaborative Filtering (Wang et al., SIGIR 2019).

Each layer sends a user :math:`u` two kinds of message from every item :math:`i` it
interacted with, a linear one and an *affinity* one (the element-wise product
:math:`\mathbf{e}_i \odot \mathbf{e}_u`, large when the two already agree), plus a
self-message, and passes the sum through a LeakyReLU. In matrix form (the paper's Eq. 7),
with :math:`\tilde A` the symmetric normalised adjacency without self-loops
(:mod:`recsys_ref.graph.adjacency`),

.. math::

    \mathbf{E}^{(l+1)} = \mathrm{LeakyReLU}\Big( (\tilde A + I)\, \mathbf{E}^{(l)} W_1^{(l)}
        + \big(\tilde A \mathbf{E}^{(l)} \odot \mathbf{E}^{(l)}\big) W_2^{(l)} \Big),

(biases omitted), and the final representation concatenates the layers, each
L2-normalised row-wise as in the authors' code:
:math:`\mathbf{e}_u = [\mathbf{e}_u^{(0)} \,\|\, \bar{\mathbf{e}}_u^{(1)} \,\|\, \cdots
\,\|\, \bar{\mathbf{e}}_u^{(L)}]`. Message dropout acts on each layer's output during
training. Removing :math:`W_1, W_2`, the affinity term and the non-linearity gives
LightGCN (:mod:`recsys_ref.models.graph.lightgcn`).

Shapes:
    - ``NGCFLayer``: ``x (N, F_in)``, sparse ``adj (N, N)`` -> ``(N, F_out)``
    - ``NGCFModule.forward(norm_adj=None)`` -> ``(U, d + sum(layer_dims))``,
      ``(I, d + sum(layer_dims))``

Used in: ``chapters/06_graph_convolution``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index, normalized_adjacency
from recsys_ref.graph.sparse import CSRBuffers, spmm
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.nn.fused_losses import embedding_l2

__all__ = ["NGCFLayer", "NGCFModule", "NGCF"]


class NGCFLayer(nn.Module):
    r"""One NGCF propagation layer (module docstring, Eq. 7 of the paper).

    Args:
        in_dim, out_dim: feature sizes.
        negative_slope: of the LeakyReLU (default 0.2, the authors' value).
        dropout: message dropout on the output during training (default 0).
    """

    def __init__(self, in_dim: int, out_dim: int, negative_slope: float = 0.2,
                 dropout: float = 0.0):
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be positive, got {in_dim}, {out_dim}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.negative_slope, self.dropout = negative_slope, dropout
        self.w1 = nn.Linear(in_dim, out_dim)      # linear messages + self-connection
        self.w2 = nn.Linear(in_dim, out_dim)      # affinity messages e_i * e_u
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights, zero biases (as in the authors' code)."""
        for lin in (self.w1, self.w2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, adj: torch.Tensor,
                adj_t: torch.Tensor | None = None) -> torch.Tensor:
        """``x (N, F_in)``, ``adj`` the sparse :math:`\\tilde A` (CSR preferred; COO works)."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"x must have shape (N, {self.in_dim}), got {tuple(x.shape)}")
        if adj.layout == torch.sparse_csr:
            side = spmm(adj, x, adj_t)                              # (N, F_in)  Ã x
        else:
            side = torch.sparse.mm(adj, x)
        h = self.w1(side + x) + self.w2(side * x)                    # (N, F_out)
        h = F.leaky_relu(h, self.negative_slope)
        return F.dropout(h, self.dropout, self.training)

    def __repr__(self) -> str:
        return f"NGCFLayer({self.in_dim}, {self.out_dim}, dropout={self.dropout})"


class NGCFModule(nn.Module):
    """Layer-0 embeddings, :class:`NGCFLayer` stack and layer concatenation.

    Args:
        num_users, num_items: node counts.
        embed_dim: :math:`d` of layer 0.
        layer_dims: output size of each layer (e.g. ``(64, 64, 64)``).
        norm_adj: sparse :math:`\\tilde A` ``(U+I, U+I)`` (symmetric).
        dropout: message dropout (default 0.1).
        init_std: std of the normal initialisation of the layer-0 embeddings
            (default None: Glorot-uniform, the authors' choice).
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, layer_dims: Sequence[int],
                 norm_adj: torch.Tensor, dropout: float = 0.1, init_std: float | None = None):
        super().__init__()
        n = num_users + num_items
        if tuple(norm_adj.shape) != (n, n):
            raise ValueError(f"norm_adj must have shape ({n}, {n}), got {tuple(norm_adj.shape)}")
        self.num_users, self.num_items = num_users, num_items
        self.embed_dim, self.layer_dims, self.init_std = embed_dim, tuple(layer_dims), init_std
        self.embedding = nn.Embedding(n, embed_dim)
        dims = (embed_dim, *self.layer_dims)
        self.layers = nn.ModuleList(NGCFLayer(a, b, dropout=dropout)
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.graph = CSRBuffers(norm_adj, symmetric=True)
        self.reset_parameters()

    @property
    def norm_adj(self) -> torch.Tensor:
        """:math:`\\tilde A` as a sparse CSR ``(U+I, U+I)`` tensor."""
        return self.graph()[0]

    def reset_parameters(self) -> None:
        if self.init_std is None:
            bound = math.sqrt(6.0 / (self.embedding.num_embeddings + self.embed_dim))
            nn.init.uniform_(self.embedding.weight, -bound, bound)
        else:
            nn.init.normal_(self.embedding.weight, std=self.init_std)
        for layer in self.layers:
            layer.reset_parameters()

    @property
    def out_dim(self) -> int:
        return self.embed_dim + sum(self.layer_dims)

    def forward(self, norm_adj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb, item_emb)`` over ``norm_adj``, a sparse symmetric :math:`\\tilde A`
        ``(U+I, U+I)`` of any graph on these nodes (default: the training graph)."""
        adj = self.norm_adj if norm_adj is None else norm_adj
        h = self.embedding.weight                          # (N, d)
        outs = [h]
        for layer in self.layers:
            h = layer(h, adj)                              # (N, d_l)
            outs.append(F.normalize(h, dim=1))
        e = torch.cat(outs, dim=1)                         # (N, d + sum d_l)
        return e[: self.num_users], e[self.num_users:]

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        """L2 of the batch's layer-0 embeddings over :math:`2B`
        (:func:`~recsys_ref.nn.fused_losses.embedding_l2`, as in LightGCN)."""
        return embedding_l2(self.embedding.weight, users, pos, neg, self.num_users)

    def __repr__(self) -> str:
        return (f"NGCFModule({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"layers={list(self.layer_dims)})")


class NGCF(EmbeddingRecommender):
    """NGCF recommender trained with BPR (see the module docstring).

    Args:
        num_layers: number of propagation layers (default 3), each of size ``embed_dim``
            unless ``layer_dims`` is given.
        layer_dims: explicit output sizes, one per layer (overrides ``num_layers``).
        dropout: message dropout (default 0.1).
        init_std: layer-0 initialisation std (default None: Glorot-uniform).
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`;
            the defaults differ in ``lr=5e-3, num_epochs=40, patience=4`` (chapter 6's run).
    """

    name = "ngcf"
    #: chapter 6's NGCF: lr 5e-3, at most 40 epochs, patience 4
    defaults = dict(lr=5e-3, num_epochs=40, patience=4)

    def __init__(self, num_layers: int = 3, layer_dims: Sequence[int] | None = None,
                 dropout: float = 0.1, init_std: float | None = None, **kwargs):
        super().__init__(**{**self.defaults, **kwargs})
        if layer_dims is None:
            if num_layers < 0:
                raise ValueError(f"num_layers must be >= 0, got {num_layers}")
            layer_dims = (self.embed_dim,) * num_layers
        if any(int(x) < 1 for x in layer_dims):
            raise ValueError(f"layer_dims must be positive, got {layer_dims}")
        self.layer_dims = tuple(int(x) for x in layer_dims)
        self.num_layers = len(self.layer_dims)
        self.dropout, self.init_std = dropout, init_std

    def build(self) -> nn.Module:
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        adj = normalized_adjacency(ei, self.num_users + self.num_items)
        return NGCFModule(self.num_users, self.num_items, self.embed_dim, self.layer_dims, adj,
                          dropout=self.dropout, init_std=self.init_std)

    def __repr__(self) -> str:
        return (f"NGCF({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"layers={list(self.layer_dims)}, dropout={self.dropout})")
