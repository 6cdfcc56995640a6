r"""Text-enhanced LightGCN: fuse a frozen text embedding of every node with its learned ID
embedding at layer 0, then propagate exactly as LightGCN does.

Each node :math:`v` (user or item) has a learned ID vector :math:`\mathbf{e}_v` and a
text vector :math:`\mathbf{t}_v` (a frozen sentence embedding, :mod:`recsys_ref.lm.text`)
mapped into the same space by a learned projection, :math:`\mathbf{z}_v = W \mathbf{t}_v`
(one :math:`W` for items, one for users). With a text weight :math:`w \ge 0` the layer-0
representation is, per ``fusion``:

.. math::

    \text{feature:}\quad & \mathbf{x}_v = w\,\mathbf{z}_v \ \text{(items)},\ \mathbf{e}_v
        \ \text{(users)} \\
    \text{sum:}\quad & \mathbf{x}_v = \mathbf{e}_v + w\,\mathbf{z}_v \\
    \text{concat:}\quad & \mathbf{x}_v = [\mathbf{e}_v \,\|\, w\,\mathbf{z}_v]
        \quad (d/2 + d/2) \\
    \text{gate:}\quad & \mathbf{g}_v = \sigma(W_g[\mathbf{e}_v \| \mathbf{z}_v] + \mathbf{b}_g),
        \quad \mathbf{x}_v = \mathbf{e}_v + w\,\mathbf{g}_v \odot \mathbf{z}_v \\
    \text{attention:}\quad & s_v^{(m)} = \mathbf{q}^\top
        \tanh(W_a \mathbf{h}_v^{(m)} + \mathbf{b}_a),
        \ m \in \{\text{id}, \text{text}\},\quad
        \alpha_v^{(m)} = \frac{\pi_m \exp s_v^{(m)}}{\sum_{m'} \pi_{m'} \exp s_v^{(m')}},
        \quad \mathbf{x}_v = \sum_m \alpha_v^{(m)} \mathbf{h}_v^{(m)}

with :math:`\mathbf{h}^{(\text{id})} = \mathbf{e}`, :math:`\mathbf{h}^{(\text{text})} =
\mathbf{z}`, and priors :math:`\pi_{\text{id}} = 1, \pi_{\text{text}} = w` (view-level
attention as in HAN :cite:`wang2019han`, the "fuse through attention" of the source
material). Every variant except ``feature`` is *exactly* LightGCN when :math:`w = 0`.
Then :math:`\mathbf{E} = \frac{1}{L+1}\sum_l \tilde A^l \mathbf{X}` (LightGCN
:cite:`he2020lightgcn`) and :math:`\hat y_{ui} = \mathbf{e}_u^\top \mathbf{e}_i`.

**Cold items.** An item with no training interaction has an untrained ID vector; the
module zeroes the ID vector of every node without a training edge (``id_mask``), so a
cold item, which has no edge either, ends with :math:`\mathbf{x}_v / (L+1)`, computed
from its text alone. ``id_dropout`` :math:`p` treats each item as cold with probability
:math:`p` in every training step (DropoutNet :cite:`volkovs2017dropoutnet`): its ID
vector is zeroed and its final representation replaced by :math:`\mathbf{x}_v/(L+1)`,
exactly what it would get at inference without interactions; the text path is thus
trained to stand in for the ID and the graph.

**Text map.** :class:`LightGCNTextMap` takes the other route to cold items: LightGCN is
trained unchanged and a ridge regression (:class:`TextToEmbedding`) learns, over the warm
items, to predict an item's trained embedding from its side features; an item without
training interactions gets the predicted embedding (:cite:`gantner2010mapping`).

Shapes:
    - ``item_text``: ``(I, t)``, ``user_text``: ``(U, t')`` or ``None``
    - ``layer0()`` -> ``(U+I, d)``; ``forward()`` -> ``(U, d)``, ``(I, d)``

Used in: ``chapters/09_language_models``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from recsys_ref.graph.adjacency import bipartite_edge_index, degree, normalized_adjacency
from recsys_ref.models.graph.lightgcn import LightGCN, LightGCNModule
from recsys_ref.nn.fused_losses import embedding_l2

__all__ = ["FUSIONS", "TextFusionModule", "LightGCNText", "default_text_features",
           "TextToEmbedding",
           "LightGCNTextMap"]

FUSIONS = ("feature", "sum", "concat", "gate", "attention")


class TextFusionModule(LightGCNModule):
    """LightGCN whose layer-0 node features fuse ID and text views (module docstring).

    Args:
        num_users, num_items, embed_dim, num_layers, norm_adj, init_std: as
            :class:`~recsys_ref.models.graph.lightgcn.LightGCNModule`.
        item_text: ``(I, t)`` frozen item text embeddings.
        user_text: ``(U, t')`` frozen user text embeddings, or ``None`` (users: ID only).
        fusion: one of :data:`FUSIONS` (default ``"sum"``).
        text_weight: :math:`w \\ge 0` (default 1.0).
        id_dropout: probability of treating an item as cold in a training step (default 0).
        id_mask: ``(U+I,)`` 0/1, 0 for nodes whose ID vector is never used (cold items);
            default all ones.
    """

    def __init__(self, num_users: int, num_items: int, embed_dim: int, num_layers: int,
                 norm_adj: torch.Tensor, item_text: torch.Tensor,
                 user_text: torch.Tensor | None = None,
                 fusion: str = "sum", text_weight: float = 1.0, id_dropout: float = 0.0,
                 id_mask: torch.Tensor | None = None, init_std: float = 0.1):
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if text_weight < 0:
            raise ValueError(f"text_weight must be >= 0, got {text_weight}")
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout}")
        item_text = torch.as_tensor(item_text, dtype=torch.float32)
        if item_text.dim() != 2 or item_text.shape[0] != num_items:
            raise ValueError(f"item_text must be (num_items={num_items}, t), "
                             f"got {tuple(item_text.shape)}")
        if user_text is not None:
            user_text = torch.as_tensor(user_text, dtype=torch.float32)
            if user_text.dim() != 2 or user_text.shape[0] != num_users:
                raise ValueError(f"user_text must be (num_users={num_users}, t), "
                                 f"got {tuple(user_text.shape)}")
        if fusion == "concat" and embed_dim % 2:
            raise ValueError("concat fusion splits embed_dim in two halves: use an even "
                             f"embed_dim, got {embed_dim}")
        self.fusion = fusion
        self.text_weight, self.id_dropout = float(text_weight), float(id_dropout)
        id_dim = embed_dim // 2 if fusion == "concat" else embed_dim
        self.embed_dim = embed_dim
        super().__init__(num_users, num_items, id_dim, num_layers, norm_adj, init_std)
        self.register_buffer("item_text", item_text)
        self.register_buffer("user_text", user_text)
        n = num_users + num_items
        mask = torch.ones(n) if id_mask is None else torch.as_tensor(id_mask, dtype=torch.float32)
        if mask.shape != (n,):
            raise ValueError(f"id_mask must have shape ({n},), got {tuple(mask.shape)}")
        self.register_buffer("id_mask", mask)
        self.item_proj = nn.Linear(item_text.shape[1], id_dim, bias=False)
        self.user_proj = (nn.Linear(user_text.shape[1], id_dim, bias=False)
                          if user_text is not None else None)
        self.gate = nn.Linear(2 * id_dim, id_dim) if fusion == "gate" else None
        if fusion == "attention":
            self.att = nn.Linear(id_dim, id_dim)
            self.att_q = nn.Parameter(torch.empty(id_dim))
        self._x0: torch.Tensor | None = None
        self._dropped: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for mod in (getattr(self, "item_proj", None), getattr(self, "user_proj", None),
                    getattr(self, "gate", None), getattr(self, "att", None)):
            if mod is not None:
                mod.reset_parameters()
        if getattr(self, "att_q", None) is not None:
            nn.init.normal_(self.att_q, std=1.0 / math.sqrt(self.att_q.numel()))

    def text_view(self) -> torch.Tensor:
        """Projected text :math:`\\mathbf{z}` for all nodes ``(U+I, d_view)`` (zeros for
        users without text)."""
        z_items = self.item_proj(self.item_text)                                  # (I, d)
        if self.user_proj is not None:
            z_users = self.user_proj(self.user_text)                              # (U, d)
        else:
            z_users = z_items.new_zeros(self.num_users, z_items.shape[1])
        return torch.cat([z_users, z_items])                                      # (U+I, d)

    def id_view(self) -> torch.Tensor:
        """ID vectors ``(U+I, d_view)`` with cold nodes (and this step's dropped items) zeroed."""
        mask = self.id_mask
        if self._dropped is not None:
            keep = (~self._dropped).float()
            mask = mask * torch.cat([torch.ones(self.num_users, device=mask.device), keep])
        return self.embedding.weight * mask.unsqueeze(1)

    def layer0(self) -> torch.Tensor:
        """Fused layer-0 features :math:`\\mathbf{X}` ``(U+I, d)``."""
        e, w = self.id_view(), self.text_weight
        if self.fusion == "sum" and w == 0:
            return e
        z = self.text_view()
        if self.fusion == "feature":
            return torch.cat([e[: self.num_users], w * z[self.num_users:]])
        if self.fusion == "sum":
            return e + w * z
        if self.fusion == "concat":
            return torch.cat([e, w * z], dim=1)
        if self.fusion == "gate":
            g = torch.sigmoid(self.gate(torch.cat([e, z], dim=1)))               # (N, d)
            return e + w * g * z
        # attention over the two views, text prior w
        views = torch.stack([e, z], dim=1)                                        # (N, 2, d)
        scores = torch.tanh(self.att(views)) @ self.att_q                         # (N, 2)
        prior = torch.log(torch.tensor([1.0, w], device=e.device).clamp(min=1e-30))
        alpha = torch.softmax(scores + prior, dim=1)                              # (N, 2)
        if w == 0:
            alpha = torch.stack([torch.ones_like(alpha[:, 0]), torch.zeros_like(alpha[:, 1])], 1)
        self._alpha = alpha.detach()
        return (alpha.unsqueeze(-1) * views).sum(1)                               # (N, d)

    def forward(self, adj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(user_emb, item_emb)``: fused layer 0 propagated over ``adj`` (default: the
        training graph)."""
        self._dropped = None
        if self.training and self.id_dropout > 0:
            # items treated as cold in this step (DropoutNet): no ID, and no graph
            self._dropped = torch.rand(self.num_items, device=self.id_mask.device) < self.id_dropout
        x0 = self.layer0()
        self._x0 = x0
        e = self.propagate(x0, adj)
        users, items = e[: self.num_users], e[self.num_users:]
        if self._dropped is not None:
            # what a cold item gets at inference: its layer-0 features averaged over L+1 layers
            cold_like = x0[self.num_users:] / (self.num_layers + 1)
            items = torch.where(self._dropped.unsqueeze(1), cold_like, items)
        self._dropped = None
        return users, items

    def reg_loss(self, users, pos, neg) -> torch.Tensor:
        """L2 of the batch's fused layer-0 rows over :math:`2B`
        (:func:`~recsys_ref.nn.fused_losses.embedding_l2`)."""
        x = self._x0 if self._x0 is not None else self.layer0()
        return embedding_l2(x, users, pos, neg, self.num_users)

    def __repr__(self) -> str:
        return (f"TextFusionModule({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, fusion={self.fusion!r}, "
                f"text_weight={self.text_weight})")


def default_text_features(dataset: str = "ml-100k") -> tuple[np.ndarray, np.ndarray]:
    """MiniLM embeddings of the book's item texts (MovieLens + OMDb) and user texts
    (demographics)."""
    from recsys_ref.data.movielens import load_movielens
    from recsys_ref.lm.text import TextEncoder, item_texts, load_omdb, match_omdb, user_texts

    ml = load_movielens(dataset)
    enc = TextEncoder()
    meta = match_omdb(ml.items, load_omdb())
    return enc.encode(item_texts(ml.items, meta)), enc.encode(user_texts(ml.users))


class LightGCNText(LightGCN):
    """LightGCN with text-fused layer-0 features (see the module docstring).

    Args:
        item_features: ``(I, t)`` item text embeddings; ``None`` builds MiniLM embeddings
            of ``dataset``'s item texts at fit time.
        user_features: ``(U, t')`` user text embeddings, ``None`` (with ``item_features``
            given: users have no text) — built from ``dataset`` when both are ``None``.
        fusion: one of :data:`FUSIONS` (default ``"sum"``).
        text_weight: :math:`w` (default 1.0).
        id_dropout: item ID dropout probability (default 0).
        dataset: dataset name for the default features (default ``"ml-100k"``).
        num_layers: LightGCN depth (default 3).
        **kwargs: training options of :class:`~recsys_ref.models.embedding.EmbeddingRecommender`;
            the defaults are chapter 9's: ``lr=1e-2, batch_size=4096, num_epochs=16,
            eval_every=4, patience=2``.
    """

    name = "lightgcn-text"
    #: chapter 9's training options
    defaults = dict(lr=1e-2, batch_size=4096, num_epochs=16, eval_every=4, patience=2)

    def __init__(self, item_features: np.ndarray | None = None,
                 user_features: np.ndarray | None = None,
                 fusion: str = "sum", text_weight: float = 1.0, id_dropout: float = 0.0,
                 dataset: str = "ml-100k", num_layers: int = 3, **kwargs):
        super().__init__(num_layers=num_layers, **kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.item_features, self.user_features = item_features, user_features
        self.fusion, self.text_weight, self.id_dropout = fusion, text_weight, id_dropout
        self.dataset = dataset

    def build(self) -> nn.Module:
        if self.item_features is None:
            self.item_features, uf = default_text_features(self.dataset)
            if self.user_features is None:
                self.user_features = uf
        if len(self.item_features) != self.num_items:
            raise ValueError(f"item_features has {len(self.item_features)} rows, the data "
                             f"{self.num_items} items: pass embeddings of this dataset's items")
        ei = bipartite_edge_index(self.train_df, self.num_users, self.num_items)
        n = self.num_users + self.num_items
        adj = normalized_adjacency(ei, n)
        deg = degree(ei, n)
        id_mask = (deg > 0).float()
        user_text = (None if self.user_features is None
                     else torch.as_tensor(np.asarray(self.user_features)))
        return TextFusionModule(self.num_users, self.num_items, self.embed_dim, self.num_layers,
                                adj, torch.as_tensor(np.asarray(self.item_features)), user_text,
                                self.fusion, self.text_weight, self.id_dropout, id_mask)

    def __repr__(self) -> str:
        return (f"LightGCNText({self.num_users}+{self.num_items}, {self.embed_dim}, "
                f"num_layers={self.num_layers}, fusion={self.fusion!r}, "
                f"text_weight={self.text_weight}, "
                f"id_dropout={self.id_dropout})")


# the text -> embedding route to cold items lives in its own module; re-exported here
from recsys_ref.models.text.textmap import LightGCNTextMap, TextToEmbedding  # noqa: E402
