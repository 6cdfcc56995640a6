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

Speed. The propagation is linear, :math:`\mathbf{E} = P\,\mathbf{E}^{(0)}` with
:math:`P = \frac{1}{L+1}\sum_l \tilde A^l`, so its backward pass is the same
propagation with :math:`\tilde A^\top` (:math:`= \tilde A`, which is symmetric):
:math:`\partial \mathcal{L}/\partial \mathbf{E}^{(0)} = P^\top\, \partial
\mathcal{L}/\partial \mathbf{E}`. :class:`LayerMean` implements exactly that with
compressed-sparse-row (CSR) products written into reused scratch blocks, :math:`2L`
sparse–dense products per step and no autograd graph through the sparse tensor. With
the BPR loss's gradient written by hand (:class:`BPRFromTables`: one gather and one
``index_add_`` per table) and the batch L2 term's too
(:func:`~recsys_ref.models.embedding.rows_l2`), an epoch of ML-100K costs about a fifth of
the CPU of ``torch.sparse.mm`` on a COO tensor with autograd (0.235 s against 1.35 s on
one core; ``benchmarks/part2_lightgcn.py``).

Shapes:
    - ``forward()`` -> ``(U, d)``, ``(I, d)``
    - ``propagate(x)``: ``(U+I, d)`` -> ``(U+I, d)``
    - ``norm_adj``: sparse ``(U+I, U+I)`` (COO or CSR given; kept as CSR)

Used in: ``chapters/06_graph_convolution``, ``08_graph_attention``, ``09_language_models``.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index, normalized_adjacency
from recsys_ref.nn.losses import bpr_loss, softmax_loss
from recsys_ref.train.loop import torch_threads
from recsys_ref.models.embedding import EmbeddingRecommender, batch_rows, rows_l2

__all__ = ["to_csr", "LayerMean", "layer_mean", "SpMM", "spmm", "BPRFromTables", "LightGCNModule", "LightGCN"]


def to_csr(adj: torch.Tensor) -> torch.Tensor:
    """``adj`` (sparse COO, CSR or dense) as a sparse CSR tensor."""
    if adj.layout == torch.sparse_csr:
        return adj
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use mm only
        warnings.simplefilter("ignore", UserWarning)
        if adj.layout == torch.sparse_coo:
            return adj.coalesce().to_sparse_csr()
        if adj.layout == torch.strided:
            return adj.to_sparse_csr()
    raise ValueError(f"norm_adj must be a COO, CSR or dense tensor, got layout {adj.layout}")


def _mean_of_powers(adj: torch.Tensor, x: torch.Tensor, num_layers: int,
                    work: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    r""":math:`\frac{1}{L+1}\sum_{l=0}^{L} A^l x` with ``L`` sparse products, no autograd.

    Horner's rule: with :math:`s = x / (L+1)`, :math:`h_0 = s` and :math:`h_{k+1} = s + A
    h_k`, the last :math:`h_L = s + A s + \dots + A^L s` is the layer mean. Each step is
    one ``torch.addmm(s, A, h)``, the sparse product and the addition in one kernel, so
    there is no running sum to update and no final division.

    ``work`` are two ``x``-shaped scratch tensors that the intermediate :math:`h_k` are
    written into (``addmm(..., out=)``); reusing them across calls avoids allocating (and,
    on a virtual machine, page-faulting) fresh ``(N, d)`` blocks every layer. The result is
    always a fresh tensor (it is :math:`s`, overwritten in place by the last step).
    """
    out = x / (num_layers + 1)                                   # s, (N, d)
    if num_layers == 0:
        return out
    if num_layers == 1:
        return torch.addmm(out, adj, out)                        # s + A s
    if x.device.type != "cpu":            # the caching GPU allocator makes scratch moot
        h = out
        for _ in range(num_layers):
            h = torch.addmm(out, adj, h)                         # h <- s + A h
        return h
    if work is None or work[0].shape != x.shape or work[0].dtype != x.dtype \
            or work[0].device != x.device:
        work = (torch.empty_like(x), torch.empty_like(x))
    h = out
    for layer in range(num_layers - 1):
        dst = work[layer % 2]
        torch.addmm(out, adj, h, out=dst)                        # dst = s + A h
        h = dst
    return torch.addmm(out, adj, h, out=out)                     # s + A h_{L-1}, into s


class LayerMean(torch.autograd.Function):
    r"""Autograd function :math:`x \mapsto \frac{1}{L+1}\sum_{l=0}^{L} A^l x` whose
    backward is the same sum with :math:`A^\top` (``adj_t``; pass ``adj`` itself when
    :math:`A` is symmetric). ``adj`` gets no gradient; ``work`` (optional) is a pair of
    scratch tensors shaped like ``x``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, adj: torch.Tensor, adj_t: torch.Tensor,
                num_layers: int, work=None) -> torch.Tensor:
        ctx.adj_t, ctx.num_layers, ctx.work = adj_t, num_layers, work
        return _mean_of_powers(adj, x.detach(), num_layers, work)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_x = _mean_of_powers(ctx.adj_t, grad.contiguous(), ctx.num_layers, ctx.work)
        return grad_x, None, None, None, None


class SpMM(torch.autograd.Function):
    r"""Differentiable sparse–dense product :math:`x \mapsto A x` for a constant CSR
    :math:`A`, with the backward :math:`A^\top g` (``adj_t``, default ``adj`` for a
    symmetric :math:`A`) done by the same kernel; used by NGCF."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, adj: torch.Tensor, adj_t: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return torch.sparse.mm(ctx.adj_t, grad.contiguous()), None, None


def spmm(adj: torch.Tensor, x: torch.Tensor, adj_t: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`A x` through :class:`SpMM` (``adj`` CSR; ``adj_t`` its transpose, default
    ``adj``: pass it when :math:`A` is not symmetric)."""
    return SpMM.apply(x, adj, adj if adj_t is None else adj_t)


def layer_mean(x: torch.Tensor, adj: torch.Tensor, num_layers: int,
               adj_t: torch.Tensor | None = None) -> torch.Tensor:
    r"""Differentiable :math:`\frac{1}{L+1}\sum_{l=0}^{L} A^l x` (see :class:`LayerMean`).

    Args:
        x: ``(N, d)`` dense features.
        adj: sparse ``(N, N)`` CSR matrix (COO is converted).
        num_layers: :math:`L \ge 0`.
        adj_t: :math:`A^\top` as CSR; default ``adj`` (a symmetric :math:`A`).
    """
    if num_layers < 0:
        raise ValueError(f"num_layers must be >= 0, got {num_layers}")
    adj = to_csr(adj)
    adj_t = adj if adj_t is None else to_csr(adj_t)
    return LayerMean.apply(x, adj, adj_t, num_layers)


class BPRFromTables(torch.autograd.Function):
    r"""Mean BPR loss :math:`-\frac{1}{Bn}\sum_{b,k} \log\sigma(\mathbf{e}_{u_b}^\top
    \mathbf{e}_{i_b} - \mathbf{e}_{u_b}^\top \mathbf{e}_{j_{bk}})` straight from the user
    and item tables, with a hand-written backward: the gradient rows are scattered back
    with one ``index_add_`` per table instead of autograd's chain of gathers.

    Inputs: ``user_emb (U, d)``, ``item_emb (I, d)``, ``users (B,)``, ``items (B(1+n),)``
    (the ``B`` positives, then the ``B*n`` negatives row by row), ``num_neg`` :math:`n`.
    """

    @staticmethod
    def forward(ctx, user_emb, item_emb, users, items, num_neg: int):
        batch = users.numel()
        u = user_emb.index_select(0, users)                                 # (B, d)
        rows = item_emb.index_select(0, items)                              # (B(1+n), d)
        p, n = rows[:batch], rows[batch:].view(batch, num_neg, -1)         # (B, d), (B, n, d)
        u_col = u.unsqueeze(2)                                              # (B, d, 1)
        x = (torch.bmm(p.unsqueeze(1), u_col).squeeze(2)                    # (B, n) score gaps
             - torch.bmm(n, u_col).squeeze(2))                              # e_u.e_i - e_u.e_j
        ctx.save_for_backward(u, rows, x, users, items)
        ctx.sizes = (user_emb.shape[0], item_emb.shape[0])
        return torch.nn.functional.softplus(-x).mean()                      # = -log sigma(x)

    @staticmethod
    def backward(ctx, grad):
        r"""With :math:`c_{bk} = \partial\mathcal{L}/\partial x_{bk} = -\sigma(-x_{bk})/(Bn)`:
        :math:`\partial/\partial\mathbf{e}_u = \sum_k c_k(\mathbf{e}_i - \mathbf{e}_{j_k})`,
        :math:`\partial/\partial\mathbf{e}_i = (\sum_k c_k)\,\mathbf{e}_u`,
        :math:`\partial/\partial\mathbf{e}_{j_k} = -c_k\,\mathbf{e}_u`, each summed into
        its table row (``index_add_``)."""
        u, rows, x, users, items = ctx.saved_tensors
        num_users, num_items = ctx.sizes
        batch, num_neg = x.shape
        p, n = rows[:batch], rows[batch:].view(batch, num_neg, -1)
        c = torch.sigmoid(-x).mul_(-grad / x.numel())                       # (B, n) dL/dx
        c_sum = c.sum(1, keepdim=True)                                      # (B, 1)
        du = p * c_sum                                                      # (B, d) fused
        for k in range(num_neg):                                            # multiply-adds,
            du.addcmul_(c[:, k:k + 1], n[:, k], value=-1)                   # no (B, n, d) temps
        g_rows = torch.empty_like(rows)                                     # (B(1+n), d)
        torch.mul(u, c_sum, out=g_rows[:batch])                             # dL/de_i
        torch.mul(u.unsqueeze(1), c.neg().unsqueeze(2),                     # dL/de_j
                  out=g_rows[batch:].view(batch, num_neg, -1))
        g_user = u.new_zeros(num_users, u.shape[1]).index_add_(0, users, du)
        g_item = u.new_zeros(num_items, u.shape[1]).index_add_(0, items, g_rows)
        return g_user, g_item, None, None, None


def _is_symmetric(adj: torch.Tensor) -> bool:
    a = adj.to_sparse_coo().coalesce()
    t = a.t().coalesce()
    return bool(torch.equal(a.indices(), t.indices()) and torch.equal(a.values(), t.values()))


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
        adj = to_csr(norm_adj.detach())
        self.symmetric = _is_symmetric(adj) if symmetric is None else bool(symmetric)
        # CSR parts as plain (non-persistent) buffers: they move with .to(), survive
        # copy.deepcopy, and stay out of the state_dict (the graph is data, not weights).
        self._register_csr("adj", adj)
        if not self.symmetric:
            self._register_csr("adj_t", to_csr(adj.to_sparse_coo().t().coalesce()))
        self.reset_parameters()

    def _register_csr(self, name: str, adj: torch.Tensor) -> None:
        # int32 indices when they fit: the CPU (MKL) kernel wants them and would
        # otherwise convert the int64 ones on every product
        itype = torch.int32 if adj.values().numel() < 2**31 - 1 else torch.int64
        self.register_buffer(f"{name}_crow", adj.crow_indices().to(itype), persistent=False)
        self.register_buffer(f"{name}_col", adj.col_indices().to(itype), persistent=False)
        self.register_buffer(f"{name}_val", adj.values(), persistent=False)

    def _csr(self, name: str) -> torch.Tensor:
        n = self.num_users + self.num_items
        return torch.sparse_csr_tensor(getattr(self, f"{name}_crow"), getattr(self, f"{name}_col"),
                                       getattr(self, f"{name}_val"), (n, n), check_invariants=False)

    @property
    def norm_adj(self) -> torch.Tensor:
        """:math:`\\tilde A` as a sparse CSR ``(U+I, U+I)`` tensor (on the module's device)."""
        return self._csr("adj")

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        """Layer mean :math:`\\frac{1}{L+1}\\sum_l \\tilde A^l x` for any ``x`` ``(N, d)``."""
        adj = self._csr("adj")
        adj_t = adj if self.symmetric else self._csr("adj_t")
        work = self._work
        if work is None or work[0].shape != x.shape or work[0].dtype != x.dtype \
                or work[0].device != x.device:
            work = self._work = (torch.empty_like(x, requires_grad=False),
                                 torch.empty_like(x, requires_grad=False))
        return LayerMean.apply(x, adj, adj_t, self.num_layers, work)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.propagate(self.embedding.weight)
        return e[: self.num_users], e[self.num_users:]

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        r""":math:`\frac{1}{2B}\sum \lVert \mathbf{e}^{(0)} \rVert^2` over the batch's users,
        positives and negatives (a row drawn twice counts twice), through
        :func:`~recsys_ref.models.embedding.rows_l2`: the value of gathering the rows and
        squaring them, with a hand-written gradient :math:`c_r \mathbf{e}_r / B` (one pass
        over the table instead of a gather/square/scatter chain of a ``(B(2+n), d)`` block)."""
        return rows_l2(self.embedding.weight, *batch_rows(users, pos, neg, self.num_users),
                       batch=len(users))

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
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`.
    """

    name = "lightgcn"

    def __init__(self, num_layers: int = 3, init_std: float = 0.1, num_threads: int | None = None,
                 normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if init_std <= 0:
            raise ValueError(f"init_std must be positive, got {init_std}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be True or False, got {normalize!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self.num_layers, self.init_std, self.num_threads = num_layers, init_std, num_threads
        self.normalize = normalize

    def fit(self, train, num_users: int, num_items: int, valid=None) -> "LightGCN":
        """:meth:`EmbeddingRecommender.fit`, run with ``num_threads`` CPU threads when set
        (restored afterwards). On a small, *shared* CPU ``num_threads=1`` avoids OpenMP
        threads spinning against other processes, which can make sparse products an
        order of magnitude slower (:func:`~recsys_ref.train.loop.torch_threads`)."""
        with torch_threads(self.num_threads):
            return super().fit(train, num_users, num_items, valid=valid)

    def build(self) -> nn.Module:
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        adj = normalized_adjacency(ei, self.num_users + self.num_items)
        return LightGCNModule(self.num_users, self.num_items, self.embed_dim, self.num_layers,
                              adj, init_std=self.init_std, symmetric=True)

    def _batch_loss(self, user_emb, item_emb, users, pos, neg) -> torch.Tensor:
        """The parent's BPR / sampled-softmax loss with fused gathers (one
        ``index_select`` for positives and negatives together; for BPR a hand-written
        backward, :class:`BPRFromTables`): same value, a faster step on CPU. With
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
        if self.reg > 0 and hasattr(self.module, "reg_loss"):
            loss = loss + self.reg * self.module.reg_loss(users, pos, neg)
        return loss

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
        if self.reg > 0 and hasattr(self.module, "reg_loss"):
            loss = loss + self.reg * self.module.reg_loss(users, pos, neg)
        return loss

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

    def __repr__(self) -> str:
        extra = f", normalize=True, temperature={self.temperature}" if self.normalize else ""
        return (f"LightGCN({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}{extra})")
