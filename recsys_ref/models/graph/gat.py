r"""A graph-attention recommender: LightGCN's propagation with learned neighbour weights.

Users and items are nodes of the bipartite graph
(:func:`recsys_ref.graph.adjacency.bipartite_edge_index`)
with learnable ID embeddings :math:`\mathbf{E}^{(0)}`. Layer :math:`l+1` lets every node
attend to its neighbours (a user to the films she rated, a film to the users who rated it)
and sums their layer-:math:`l` representations with the attention weights; the final
representation averages the layers, as LightGCN does:

.. math::

    \alpha_{ij}^{(l)} = \operatorname{softmax}_{j \in \mathcal{N}(i)}\big(e_{ij}^{(l)}\big),\qquad
    \mathbf{e}_i^{(l+1)} = \sum_{j \in \mathcal{N}(i)} \alpha_{ij}^{(l)}
        \sqrt{\tfrac{d_i}{d_j}}\; \mathbf{e}_j^{(l)}, \qquad
    \mathbf{e}_i = \frac{1}{L+1}\sum_{l=0}^{L} \mathbf{e}_i^{(l)},

and :math:`\hat y_{ui} = \mathbf{e}_u^\top \mathbf{e}_i`, trained with BPR. The score
:math:`e_{ij}` is one of the chapter's three (:mod:`recsys_ref.nn.edge_scorer`) computed on the
layer's input, per head :math:`h` on the :math:`h`-th slice of size :math:`C = d/H`:

* ``"dot"`` (default, the scaled dot product of the source material):
  :math:`e_{ij} = (W_Q\mathbf{e}_i)^\top (W_K\mathbf{e}_j) / \sqrt{C}`;
* ``"gat"``: :math:`e_{ij} = \mathrm{LeakyReLU}(\mathbf{a}_{\text{dst}}^\top W\mathbf{e}_i
  + \mathbf{a}_{\text{src}}^\top W\mathbf{e}_j)`;
* ``"gatv2"``: :math:`e_{ij} = \mathbf{a}^\top\mathrm{LeakyReLU}(W_{\text{dst}}\mathbf{e}_i
  + W_{\text{src}}\mathbf{e}_j)`.

Design choices, each switchable:

* The factor :math:`\sqrt{d_i/d_j}` (``degree_norm="symmetric"``) makes a layer exactly
  LightGCN's :math:`1/\sqrt{d_i d_j}` when attention is uniform (:math:`\alpha_{ij} = 1/d_i`),
  so attention *re-distributes* LightGCN's weights instead of replacing its degree
  normalisation (``"none"``: the plain GAT average :math:`\sum_j \alpha_{ij}\mathbf{e}_j`).
* Messages are the neighbours' embeddings themselves, without a value matrix or a
  non-linearity (LightGCN's finding that both hurt collaborative filtering);
  ``value_transform=True`` adds a per-layer :math:`W_V` (initialised to the identity).
* The last factor of every score (:math:`W_Q`; :math:`\mathbf{a}`) starts at zero, so an
  untrained attention layer *is* a LightGCN layer, and ``pretrain_epochs`` first trains the
  ID embeddings with that uniform attention (LightGCN, cheap sparse products) before the
  attention is switched on, much as KGAT (Wang et al., KDD 2019) starts from BPR-MF embeddings.
  By default the second phase then trains the attention parameters only, and the phase
  with the better validation score is kept (uniform attention is the setting
  :math:`W_Q = 0` of the same model).

Shapes:
    - ``forward(edge_index=None)`` -> ``(U, d)``, ``(I, d)``
    - ``edge_index``: ``(2, 2|E|)`` buffer; ``attention_weights()``: list of ``(2|E|, H)``

Cost per layer and step: :math:`O(|E|\,d)` time *and* memory for the messages (every
edge's weighted message is kept for backprop) plus :math:`O(|E|\,d)` (dot, GATv2) or
:math:`O(|E|\,H)` (GAT) for the scores, against one sparse product for LightGCN.

Used in: ``chapters/08_graph_attention``.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index, degree_scale, normalized_adjacency
from recsys_ref.models.embedding import EmbeddingRecommender
from recsys_ref.nn.attention import aggregate, edge_softmax
from recsys_ref.nn.edge_scorer import EdgeScorer
from recsys_ref.nn.fused_losses import embedding_l2
from recsys_ref.train.trainer import Phase, Trainer

__all__ = ["GATRecModule", "GATRecommender", "ATTENTIONS"]

ATTENTIONS = ("dot", "gat", "gatv2")


class GATRecModule(nn.Module):
    """Attention propagation over the user–item graph (see the module docstring).

    Args:
        num_users, num_items: node counts :math:`U`, :math:`I`.
        embed_dim: :math:`d` (divisible by ``heads``).
        num_layers: :math:`L` (0 gives matrix factorisation).
        edge_index: ``(2, 2|E|)`` bipartite edges, items shifted by ``num_users``.
        attention: ``"dot"`` (default), ``"gat"`` or ``"gatv2"``.
        heads: :math:`H` (default 1); head :math:`h` scores with, and moves, the
            :math:`h`-th slice of size :math:`d/H`.
        degree_norm: ``"symmetric"`` (default; multiply by :math:`\\sqrt{d_i/d_j}`) or ``"none"``.
        value_transform: learn a value matrix :math:`W_V` per layer (default ``False``).
        att_dropout: dropout on attention weights during training (default 0).
        negative_slope: LeakyReLU slope for ``"gat"``/``"gatv2"`` (default 0.2).
        init_std: std of the normal initialisation of the ID embeddings (default 0.1).
        att_init_std: std of the random attention projections (default 1.0).
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, num_layers: int,
                 edge_index: torch.Tensor, attention: str = "dot", heads: int = 1,
                 degree_norm: str = "symmetric", value_transform: bool = False,
                 att_dropout: float = 0.0, negative_slope: float = 0.2, init_std: float = 0.1,
                 att_init_std: float = 1.0):
        super().__init__()
        _check_options(attention, degree_norm, num_layers, embed_dim, heads, att_dropout)
        n = num_users + num_items
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.numel() == 0:
            raise ValueError("edge_index must be a non-empty (2, E) tensor; build it with "
                             "recsys_ref.graph.adjacency.bipartite_edge_index")
        if edge_index.min() < 0 or edge_index.max() >= n:
            raise ValueError(f"edge_index refers to a node outside 0..{n - 1}")
        self.num_users, self.num_items, self.num_layers = num_users, num_items, num_layers
        self.embed_dim, self.heads, self.attention = embed_dim, heads, attention
        self.degree_norm, self.value_transform = degree_norm, value_transform
        self.att_dropout, self.init_std = att_dropout, init_std
        #: ``False`` replaces attention by uniform weights (LightGCN, via a sparse product)
        self.attend = True
        self.embedding = nn.Embedding(n, embed_dim)
        self.scorers = nn.ModuleList(
            EdgeScorer(attention, embed_dim, heads, negative_slope, att_init_std)
            for _ in range(num_layers))
        self.values = nn.ModuleList(
            nn.Linear(embed_dim, embed_dim, bias=False)
            for _ in range(num_layers if value_transform else 0))
        edge_index = edge_index.long()
        self.register_buffer("edge_index", edge_index)
        self.register_buffer("edge_scale", degree_scale(edge_index, n))
        self.register_buffer("norm_adj", normalized_adjacency(edge_index, n))
        self._alphas: list[torch.Tensor] = []
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        for s in self.scorers:
            s.reset_parameters()
        for v in self.values:
            nn.init.eye_(v.weight)

    def _graph(self, edge_index: torch.Tensor | None):
        """``(edge_index, edge_scale, norm_adj)`` of the given graph (default: the stored
        training graph)."""
        if edge_index is None:
            return self.edge_index, self.edge_scale, self.norm_adj
        n = self.num_users + self.num_items
        edge_index = edge_index.long()
        return edge_index, degree_scale(edge_index, n), normalized_adjacency(edge_index, n)

    def layer(self, h: torch.Tensor, l: int, edge_index: torch.Tensor | None = None,
              scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention layer ``l``: ``(h' (N, d), alpha (E, H))`` for input ``h`` ``(N, d)``
        over ``edge_index`` ``(2, E)`` with its ``scale`` :math:`\\sqrt{d_i/d_j}` ``(E, 1)``
        (default: the training graph)."""
        if edge_index is None:
            edge_index, scale = self.edge_index, self.edge_scale
        elif scale is None:
            scale = degree_scale(edge_index, self.num_users + self.num_items)
        src, dst = edge_index
        n, H = h.size(0), self.heads
        alpha = edge_softmax(self.scorers[l](h, src, dst), dst, n)        # (E, H)
        weight = alpha * scale if self.degree_norm == "symmetric" else alpha
        weight = F.dropout(weight, p=self.att_dropout, training=self.training)
        v = self.values[l](h) if self.value_transform else h
        out = aggregate(v.view(n, H, -1)[src], weight, dst, n)             # (N, H, d/H)
        return out.reshape(n, -1), alpha

    def layers(self, edge_index: torch.Tensor | None = None) -> list[torch.Tensor]:
        """:math:`[\\mathbf{E}^{(0)}, \\dots, \\mathbf{E}^{(L)}]`, each ``(N, d)``, over
        ``edge_index`` (default: the training graph)."""
        edge_index, scale, norm_adj = self._graph(edge_index)
        h = self.embedding.weight
        out, alphas = [h], []
        for l in range(self.num_layers):
            if self.attend:
                h, alpha = self.layer(h, l, edge_index, scale)
                alphas.append(alpha.detach())
            else:
                h = torch.sparse.mm(norm_adj, h)
            out.append(h)
        self._alphas = alphas
        return out

    def forward(self, edge_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb (U, d), item_emb (I, d))``, the layer mean over ``edge_index``
        ``(2, E)`` (default: the training graph given at construction)."""
        e = torch.stack(self.layers(edge_index)).mean(0)
        return e[: self.num_users], e[self.num_users:]

    @torch.no_grad()
    def attention_weights(self) -> list[torch.Tensor]:
        """Attention ``(E, H)`` of every layer on :attr:`edge_index` (eval mode)."""
        was = self.training
        self.eval()
        self.layers()
        self.train(was)
        return list(self._alphas)

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        """L2 of the batch's ID embeddings over :math:`2B`
        (:func:`~recsys_ref.nn.fused_losses.embedding_l2`, as in LightGCN)."""
        return embedding_l2(self.embedding.weight, users, pos, neg, self.num_users)

    def __repr__(self) -> str:
        return (f"GATRecModule({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, attention={self.attention!r}, heads={self.heads})")


def _check_options(attention, degree_norm, num_layers, embed_dim, heads, att_dropout) -> None:
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    if degree_norm not in ("symmetric", "none"):
        raise ValueError(f"degree_norm must be 'symmetric' or 'none', got {degree_norm!r}")
    if num_layers < 0:
        raise ValueError(f"num_layers must be >= 0, got {num_layers}")
    if heads < 1 or embed_dim % heads:
        raise ValueError(f"embed_dim={embed_dim} must be a positive multiple of heads={heads}")
    if not 0.0 <= att_dropout < 1.0:
        raise ValueError(f"att_dropout must lie in [0, 1), got {att_dropout}")


class GATRecommender(EmbeddingRecommender):
    """Graph-attention recommender (see the module docstring for the model).

    Args:
        num_layers: attention layers :math:`L` (default 2).
        attention: ``"dot"`` (default), ``"gat"`` or ``"gatv2"``.
        heads: attention heads (default 1).
        degree_norm: ``"symmetric"`` (default) or ``"none"``.
        value_transform: per-layer value matrix (default ``False``).
        att_dropout: dropout on the attention weights (default 0).
        att_init_std: std of the random attention projections (default 1.0).
        pretrain_epochs: maximum epochs of the first phase, uniform attention = LightGCN
            (default 0: train with attention from the start). It stops early on ``valid``
            like the main phase.
        pretrain_lr, pretrain_batch_size: learning rate and batch size of the first phase
            (default: ``lr`` and ``batch_size``, which then apply to the attention phase).
        freeze_embeddings: after a first phase, train only the attention parameters
            (default ``True``). With validation data the better phase is kept: if learned
            attention never beats the first phase's validation score, the first phase's
            weights (uniform attention) are restored and :attr:`attention_kept` is ``False``.
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`;
            ``num_epochs`` counts the attention phase.

    Attributes:
        pretrain_history: :class:`~recsys_ref.train.trainer.History` of the first phase
            (or ``None``).
        attention_kept: whether the fitted model uses the learned attention.
        pretrained_embedding: ``(U+I, d)`` ID embeddings at the end of the first phase, i.e.
            a LightGCN with ``num_layers`` layers trained under the same protocol (or ``None``).
    """

    name = "gat"

    def __init__(self, num_layers: int = 2, attention: str = "dot", heads: int = 1,
                 degree_norm: str = "symmetric", value_transform: bool = False,
                 att_dropout: float = 0.0, att_init_std: float = 1.0, pretrain_epochs: int = 0,
                 pretrain_lr: float | None = None, pretrain_batch_size: int | None = None,
                 freeze_embeddings: bool = True, **kwargs):
        super().__init__(**kwargs)
        _check_options(attention, degree_norm, num_layers, self.embed_dim, heads, att_dropout)
        if pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {pretrain_epochs}")
        self.num_layers, self.attention, self.heads = num_layers, attention, heads
        self.degree_norm, self.value_transform = degree_norm, value_transform
        self.att_dropout, self.att_init_std = att_dropout, att_init_std
        if (pretrain_lr is not None and pretrain_lr <= 0) or (
                pretrain_batch_size is not None and pretrain_batch_size < 1):
            raise ValueError("pretrain_lr and pretrain_batch_size must be positive")
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr, self.pretrain_batch_size = pretrain_lr, pretrain_batch_size
        self.freeze_embeddings = freeze_embeddings
        self.attention_kept: bool | None = None
        self.phase_states: dict[str, dict] | None = None
        self._uniform = False
        self.pretrain_history = None
        self.pretrained_embedding: torch.Tensor | None = None
        self.pretrain_epoch_seconds: float | None = None
        self._pretrained: GATRecModule | None = None

    def build(self) -> nn.Module:
        if self._pretrained is not None:
            module, self._pretrained = self._pretrained, None
            module.attend = True
            module.embedding.weight.requires_grad_(not self.freeze_embeddings)
            return module
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        module = GATRecModule(self.num_users, self.num_items, self.embed_dim, self.num_layers, ei,
                              self.attention, self.heads, self.degree_norm, self.value_transform,
                              self.att_dropout, att_init_std=self.att_init_std)
        module.attend = not self._uniform
        return module

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "GATRecommender":
        """Phase ``"uniform"`` (``pretrain_epochs``): uniform attention; phase
        ``"attention"`` (``num_epochs``): attention. The two phases are
        :class:`~recsys_ref.train.trainer.Phase` s of one
        :class:`~recsys_ref.train.trainer.Trainer`, each re-seeded with its own early
        stopping and best-state restore."""
        self.pretrain_history, self._pretrained, self.pretrained_embedding = None, None, None
        self._uniform, self.phase_states = False, None
        self._store_train(train, num_users, num_items)
        self.train_df = train
        trainer = Trainer(self.trainer_config(), self.callbacks)
        evaluate = self._validator(train, valid)
        if not (self.pretrain_epochs > 0 and self.num_layers > 0):
            self.attention_kept = True
            self.history = trainer.fit(self, evaluate)
            return self._finish_fit()
        first = {"lr": self.pretrain_lr or self.lr,
                 "batch_size": self.pretrain_batch_size or self.batch_size}
        phases = [Phase("uniform", self.pretrain_epochs, self._start_uniform, first),
                  Phase("attention", self.num_epochs, self._start_attention)]
        histories = trainer.fit_phases(self, phases, evaluate)
        self.pretrain_history, self.history = histories["uniform"], histories["attention"]
        times = self.pretrain_history.epoch_seconds
        self.pretrain_epoch_seconds = float(np.median(times)) if times else None
        self._finish_fit()
        self.module.embedding.weight.requires_grad_(True)
        # uniform attention is a point of the model (zero queries): keep it when learned
        # attention does not beat it on validation
        self.phase_states = {"uniform": self._phase1_state,
                             "attention": copy.deepcopy(self.module.state_dict())}
        phase1, phase2 = self.pretrain_history.best_score, self.history.best_score
        self.attention_kept = phase1 is None or phase2 is None or phase2 > phase1
        self.use_phase("attention" if self.attention_kept else "uniform")
        return self

    def _start_uniform(self, _model) -> None:
        self._uniform = True

    def _start_attention(self, _model) -> None:
        """Between the phases: keep the first phase's weights, switch attention on."""
        self._uniform = False
        self.pretrained_embedding = self.module.embedding.weight.detach().cpu().clone()
        self._phase1_state = copy.deepcopy(self.module.state_dict())
        self._pretrained = self.module

    def use_phase(self, phase: str) -> "GATRecommender":
        """Load the weights at the end of phase ``"uniform"`` or ``"attention"`` (after a
        two-phase fit; :meth:`fit` loads the one validation preferred)."""
        self._check_fitted()
        if not getattr(self, "phase_states", None):
            raise ValueError("use_phase needs a two-phase fit (pretrain_epochs > 0)")
        if phase not in self.phase_states:
            raise ValueError(f"phase must be 'uniform' or 'attention', got {phase!r}")
        self.module.load_state_dict(self.phase_states[phase])
        self._cache = None
        return self

    def attention_weights(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(edge_index (2, E), [alpha (E, H) per layer])`` of the fitted model."""
        self._check_fitted()
        return self.module.edge_index.cpu(), [a.cpu() for a in self.module.attention_weights()]

    @torch.no_grad()
    def explain(self, user: int, item: int) -> pd.DataFrame:
        r"""How the items ``user`` rated shape the score of ``item``, through layer 1.

        The user's layer-1 representation is :math:`\mathbf{e}_u^{(1)} = \sum_{j}
        w_{uj}\mathbf{e}_j^{(0)}` with :math:`w_{uj} = \alpha_{uj}\sqrt{d_u/d_j}`, so the
        layer-1 part of the score, :math:`\mathbf{e}_u^{(1)\top}\mathbf{e}_i / (L+1)`,
        splits exactly into one term per rated item :math:`j`.

        Returns:
            one row per item the user rated in training: ``item``, ``attention``
            (:math:`\alpha_{uj}`, mean over heads), ``uniform`` (:math:`1/d_u`, LightGCN's
            share), ``contribution`` (:math:`w_{uj}\, \mathbf{e}_j^{(0)\top}\mathbf{e}_i/(L+1)`,
            summed over heads' slices), sorted by attention, largest first.
        """
        self._check_fitted()
        if self.num_layers < 1:
            raise ValueError("explain needs at least one attention layer (num_layers >= 1)")
        user = int(self._check_users([user])[0])
        if not 0 <= item < self.num_items:
            raise ValueError(f"item index outside 0..{self.num_items - 1}")
        m = self.module
        was = m.training
        m.eval()
        alpha = m.attention_weights()[0].cpu()                         # (E, H)
        m.train(was)
        ei = m.edge_index.cpu()
        sel = (ei[1] == user).nonzero().squeeze(1)
        src = ei[0, sel]
        emb0 = m.embedding.weight.detach().cpu()
        _, item_emb = self.embeddings()
        target = item_emb[item].cpu()                                   # (d,)
        H = m.heads
        weight = alpha[sel] * m.edge_scale[sel].cpu()                   # (d_u, H)
        per_head = (emb0[src].view(len(sel), H, -1) * target.view(H, -1)).sum(-1)  # (d_u, H)
        contribution = (weight * per_head).sum(1) / (self.num_layers + 1)
        frame = pd.DataFrame({
            "item": (src - self.num_users).numpy(),
            "attention": alpha[sel].mean(1).numpy(),
            "uniform": np.full(len(sel), 1.0 / len(sel)),
            "contribution": contribution.numpy(),
        })
        return frame.sort_values("attention", ascending=False, kind="stable").reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"GATRecommender({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, attention={self.attention!r}, heads={self.heads})")
