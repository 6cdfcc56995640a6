r"""LightGCN (He et al., SIGIR 2020): graph convolution with nothing but neighbourhood
averaging.

Layer :math:`l+1` of the user–item graph smooths layer :math:`l` with the symmetric
normalised adjacency (:mod:`recsys_ref.graph.adjacency`), and the final representation averages
all layers:

.. math::

    \mathbf{E}^{(l+1)} = \tilde A\, \mathbf{E}^{(l)}, \qquad
    \mathbf{E} = \frac{1}{L+1} \sum_{l=0}^{L} \mathbf{E}^{(l)}
               = \Big(\frac{1}{L+1}\sum_{l=0}^{L} \tilde A^{l}\Big) \mathbf{E}^{(0)},

no feature transform, no non-linearity, no self-loop. The only parameters are the
layer-0 embeddings :math:`\mathbf{E}^{(0)} \in \mathbb{R}^{(U+I) \times d}`; BPR with L2
on the batch's layer-0 embeddings trains them (or a softmax cross-entropy, on dot
products or, with ``normalize=True``, on cosines over a temperature).

The propagation is linear, :math:`\mathbf{E} = P\,\mathbf{E}^{(0)}` with
:math:`P = \frac{1}{L+1}\sum_l \tilde A^l`, so its backward pass is the same
propagation with :math:`\tilde A^\top` (:math:`= \tilde A`, which is symmetric):
:math:`\partial \mathcal{L}/\partial \mathbf{E}^{(0)} = P^\top\, \partial
\mathcal{L}/\partial \mathbf{E}`. :class:`~recsys_ref.graph.sparse.LayerMean` computes
both with compressed-sparse-row (CSR) products into reused scratch blocks and no autograd
graph through the sparse tensor; the BPR loss
(:class:`~recsys_ref.nn.fused_losses.BPRFromTables`) and the batch L2 term
(:func:`~recsys_ref.nn.fused_losses.embedding_l2`) have hand-written gradients too
(``benchmarks/part2_lightgcn.py`` measures what each saves).

The graph is an argument: ``forward(adj)`` and ``propagate(x, adj)`` take any normalised
adjacency (the training graph stored at construction is the default), so the same
weights propagate over a graph with more edges, e.g. a user's new interactions.

Shapes:
    - ``forward(adj=None)`` -> ``(U, d)``, ``(I, d)``
    - ``propagate(x, adj=None)``: ``(U+I, d)`` -> ``(U+I, d)``
    - ``adj`` / ``norm_adj``: sparse ``(U+I, U+I)`` (COO or CSR; kept as CSR)

Used in: ``chapters/06_graph_convolution``, ``08_graph_attention``, ``09_language_models``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index, normalized_adjacency
from recsys_ref.graph.sparse import CSRBuffers, LayerMean, to_csr
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.nn.fused_losses import BPRFromTables, embedding_l2
from recsys_ref.nn.losses import bpr_loss, softmax_loss

__all__ = ["LightGCNModule", "LightGCN"]


class LightGCNModule(nn.Module):
    """The propagation network. ``norm_adj`` is kept as CSR (its three arrays are
    non-persistent buffers, so it moves with ``.to`` and is not in the ``state_dict``).

    Args:
        num_users, num_items: node counts.
        embed_dim: :math:`d`.
        num_layers: :math:`L` (0 gives plain matrix factorisation).
        norm_adj: sparse :math:`\\tilde A` ``(U+I, U+I)``, COO or CSR. When it is not
            symmetric its transpose is stored too (for the backward pass).
        init_std: std of the normal initialisation of :math:`\\mathbf{E}^{(0)}`.
        symmetric: whether ``norm_adj`` is symmetric; ``None`` (default) checks it (a sort
            of the edges: pass ``True`` for a large graph known to be undirected).
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, num_layers: int,
                 norm_adj: torch.Tensor, init_std: float = 0.1, symmetric: bool | None = None):
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        n = num_users + num_items
        if tuple(norm_adj.shape) != (n, n):
            raise ValueError(f"norm_adj must have shape ({n}, {n}) = (U+I, U+I), "
                             f"got {tuple(norm_adj.shape)}")
        self.num_users, self.num_items, self.num_layers = num_users, num_items, num_layers
        self.embedding = nn.Embedding(n, embed_dim)
        self.init_std = init_std
        self._work: tuple[torch.Tensor, torch.Tensor] | None = None  # scratch, see LayerMean
        self.graph = CSRBuffers(norm_adj, symmetric)                # the graph is data, not weights
        self.symmetric = self.graph.symmetric
        self.reset_parameters()

    @property
    def norm_adj(self) -> torch.Tensor:
        """:math:`\\tilde A` as a sparse CSR ``(U+I, U+I)`` tensor (on the module's device)."""
        return self.graph()[0]

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)

    def propagate(self, x: torch.Tensor, adj: torch.Tensor | None = None,
                  adj_t: torch.Tensor | None = None) -> torch.Tensor:
        """Layer mean :math:`\\frac{1}{L+1}\\sum_l \\tilde A^l x` for any ``x`` ``(N, d)``.

        ``adj``: sparse ``(N, N)`` :math:`\\tilde A` (default: the stored training graph);
        ``adj_t`` its transpose when it is not symmetric (default ``adj``)."""
        if adj is None:
            adj, adj_t = self.graph()
        else:
            adj = to_csr(adj)
            adj_t = adj if adj_t is None else to_csr(adj_t)
        work = self._work
        if work is None or work[0].shape != x.shape or work[0].dtype != x.dtype \
                or work[0].device != x.device:
            work = self._work = (torch.empty_like(x, requires_grad=False),
                                 torch.empty_like(x, requires_grad=False))
        return LayerMean.apply(x, adj, adj_t, self.num_layers, work)

    def forward(self, adj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb (U, d), item_emb (I, d))`` propagated over ``adj`` (default: the
        stored training graph)."""
        e = self.propagate(self.embedding.weight, adj)
        return e[: self.num_users], e[self.num_users:]

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        r""":math:`\frac{1}{2B}\sum \lVert \mathbf{e}^{(0)} \rVert^2` over the batch's users,
        positives and negatives (a row drawn twice counts twice), through
        :func:`~recsys_ref.nn.fused_losses.embedding_l2`: the value of gathering the rows and
        squaring them, with a hand-written gradient :math:`c_r \mathbf{e}_r / B` (one pass
        over the table instead of a gather/square/scatter chain of a ``(B(2+n), d)`` block)."""
        return embedding_l2(self.embedding.weight, users, pos, neg, self.num_users)

    def __repr__(self) -> str:
        return (f"LightGCNModule({self.num_users}+{self.num_items}, "
                f"{self.embedding.embedding_dim}, num_layers={self.num_layers})")


class LightGCN(EmbeddingRecommender):
    r"""LightGCN recommender (see the module docstring for the model).

    Args:
        num_layers: propagation depth :math:`L` (default 3).
        init_std: std of the layer-0 embedding initialisation (default 0.1).
        num_threads: CPU threads used while fitting (default ``None``: PyTorch's setting).
        normalize: score by cosine similarity over a temperature, :math:`s_{ui} =
            \cos(\mathbf{e}_u, \mathbf{e}_i) / \tau` with :math:`\tau` = ``temperature``
            (the "sampled softmax" / SimpleX scoring of Wu et al. 2022 and Mao et al. 2021),
            in the loss (BPR or softmax) and at inference (:meth:`score`; the
            :meth:`embeddings` are then the unit-length propagated vectors). The
            propagation is unchanged. Default ``False``: dot-product scores.
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`;
            the defaults differ in ``lr=5e-3, patience=4`` (:attr:`defaults`, chapter 6's
            BPR run). Chapter 6's softmax run (section 6.6) is ``loss="softmax",
            num_neg=None, normalize=True, temperature=0.2, lr=2e-2, batch_size=4096``.

    Cost: every step propagates the whole graph, :math:`O(L\,|E|\,d)`, and a full epoch
    has :math:`|E|/B` steps, so an epoch grows as :math:`|E|^2` at a fixed batch size
    :math:`B`. On graphs much larger than ML-100K, grow ``batch_size`` with :math:`|E|`
    or cap ``steps_per_epoch`` so that an epoch stays linear in the data.
    """

    name = "lightgcn"
    #: chapter 6's BPR LightGCN (section 6.4): lr 5e-3, early stopping patience 4
    defaults = dict(lr=5e-3, patience=4)

    def __init__(self, num_layers: int = 3, init_std: float = 0.1, num_threads: int | None = None,
                 normalize: bool = False, **kwargs):
        super().__init__(num_threads=num_threads, **{**self.defaults, **kwargs})
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if init_std <= 0:
            raise ValueError(f"init_std must be positive, got {init_std}")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be True or False, got {normalize!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self.num_layers, self.init_std = num_layers, init_std
        self.normalize = normalize

    def build(self) -> nn.Module:
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        adj = normalized_adjacency(ei, self.num_users + self.num_items)
        return LightGCNModule(self.num_users, self.num_items, self.embed_dim, self.num_layers,
                              adj, init_std=self.init_std, symmetric=True)

    def _batch_loss(self, user_emb, item_emb, users, pos, neg) -> torch.Tensor:
        """The parent's BPR / sampled-softmax loss with fused gathers (one
        ``index_select`` for positives and negatives together; for BPR a hand-written
        backward, :class:`~recsys_ref.nn.fused_losses.BPRFromTables`): same value, fewer
        kernels. With
        ``normalize`` the scores are cosines over ``temperature``
        (:meth:`_cosine_batch_loss`)."""
        if self.normalize:
            return self._cosine_batch_loss(user_emb, item_emb, users, pos, neg)
        if neg is None:
            return super()._batch_loss(user_emb, item_emb, users, pos, neg)
        batch, num_neg = neg.shape
        items = torch.cat([pos, neg.reshape(-1)])                             # (B(1+n),)
        if self.loss == "bpr":
            loss = BPRFromTables.apply(user_emb, item_emb, users, items, num_neg)
        else:
            u = user_emb.index_select(0, users)                               # (B, d)
            rows = item_emb.index_select(0, items)                            # (B(1+n), d)
            p, n = rows[:batch], rows[batch:].view(batch, num_neg, -1)        # (B, d), (B, n, d)
            pos_scores = (u * p).sum(-1)                                      # (B,)
            neg_scores = (u.unsqueeze(1) * n).sum(-1)                         # (B, n)
            loss = softmax_loss(pos_scores, neg_scores, self.temperature)
        return self._add_reg(loss, users, pos, neg)

    def _cosine_batch_loss(self, user_emb, item_emb, users, pos, neg) -> torch.Tensor:
        r"""BPR or softmax loss on :math:`s_{ui} = \cos(\mathbf{e}_u, \mathbf{e}_i)/\tau`:
        the gathered rows are scaled to unit length (through autograd) before the dot
        products; ``neg=None`` (softmax only) scores the positive against the whole
        catalogue (:meth:`~recsys_ref.models.embedding.EmbeddingRecommender._full_softmax`)."""
        tau = self.temperature
        if neg is None:
            loss = self._full_softmax(user_emb, item_emb, users, pos, unit=True)
        else:
            batch, num_neg = neg.shape
            u = F.normalize(user_emb.index_select(0, users), dim=-1)        # (B, d)
            rows = F.normalize(item_emb.index_select(0, torch.cat([pos, neg.reshape(-1)])), dim=-1)
            p, n = rows[:batch], rows[batch:].view(batch, num_neg, -1)        # (B, d), (B, n, d)
            pos_scores = (u * p).sum(-1) / tau                                # (B,)
            other = (u.unsqueeze(1) * n).sum(-1) / tau                        # (B, n)
            if self.loss == "bpr":
                loss = bpr_loss(pos_scores, other)
            else:                              # logits already divided by tau
                loss = softmax_loss(pos_scores, other, 1.0)
        return self._add_reg(loss, users, pos, neg)

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_emb (U, d), item_emb (I, d))`` in eval mode (cached); with
        ``normalize`` each row is scaled to unit length."""
        if not self.normalize:
            return super().embeddings()
        if self._cache is None:
            user_emb, item_emb = super().embeddings()
            self._cache = (F.normalize(user_emb, dim=-1), F.normalize(item_emb, dim=-1))
        return self._cache

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """``(len(users), I)`` scores: dot products, or with ``normalize`` the cosines over
        ``temperature`` that the loss was trained on."""
        scores = super().score(users)
        return scores / self.temperature if self.normalize else scores

    @torch.no_grad()
    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        r"""Inductive fold-in of a new user :math:`u` who chose the items :math:`N(u)`:
        the user node is added to the trained graph with no ID vector
        (:math:`\mathbf{e}_u^{(0)} = 0`) and propagated as in training,

        .. math::

            \mathbf{e}_u^{(l+1)} = \sum_{i \in N(u)}
                rac{\mathbf{e}_i^{(l)}}{\sqrt{|N(u)|\, d_i}}, \qquad
            \mathbf{e}_u = rac{1}{L+1}\sum_{l=0}^{L} \mathbf{e}_u^{(l)},

        with :math:`\mathbf{e}_i^{(l)}` and the degrees :math:`d_i` of the trained graph
        (the new user's own effect on the items is left out). ``ratings`` are not used."""
        device = self.module.embedding.weight.device
        x = self.module.embedding.weight                      # (U+I, d), layer 0
        adj = self.module.norm_adj
        deg = torch.as_tensor(np.asarray(self.train_matrix.sum(0)).ravel(), dtype=x.dtype,
                              device=device)                  # (I,) item degrees
        idx = torch.as_tensor(items, device=device)
        if (deg[idx] == 0).any():
            raise ValueError("items holds items without a training interaction: they have "
                             "no place in the graph; drop them")
        weight = (1.0 / torch.sqrt(len(items) * deg[idx]))[:, None]   # (|N(u)|, 1)
        user = torch.zeros(x.shape[1], dtype=x.dtype, device=device)
        for _ in range(self.num_layers):                      # e_u^(l+1) from e_i^(l)
            user += (weight * x[self.num_users + idx]).sum(0)
            x = adj @ x
        user /= self.num_layers + 1
        item_emb = self.embeddings()[1]
        if self.normalize:
            return (item_emb @ torch.nn.functional.normalize(user, dim=0)) / self.temperature
        return item_emb @ user

    def __repr__(self) -> str:
        extra = f", normalize=True, temperature={self.temperature}" if self.normalize else ""
        return (f"LightGCN({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}{extra})")
