r"""SR-GNN (Wu et al., AAAI 2019): the history as a session graph, a gated graph layer over
it, and an attention readout of long- and short-term interest.

For the latest ``max_len`` items of a history,

.. math::

    \mathbf V &= \operatorname{SessionGatedConv}^{(k)}\big(\mathbf E_{\text{nodes}}\big)
        \quad \text{(the session graph's distinct items, } k \text{ steps)}, \\
    \alpha_t &= \mathbf q^\top \sigma\big(\mathbf W_1 \mathbf v_n + \mathbf W_2
        \mathbf v_{s_t} + \mathbf c\big), \qquad
    \mathbf s_g = \textstyle\sum_t \alpha_t\, \mathbf v_{s_t}, \\
    \mathbf s_h &= \mathbf W_3 [\mathbf s_g ; \mathbf v_n], \qquad
    \hat y_i = \mathbf s_h^\top \mathbf e_i,

with :math:`\mathbf v_n` the node of the latest item (the short-term interest),
:math:`\mathbf s_g` the attention-weighted sum over the positions (the long-term one; the
weights are not normalised, as in the paper) and :math:`\mathbf E` the item embeddings,
shared by the graph's input and the output. The graphs of a whole batch are built at once
(:func:`recsys_ref.graph.session.session_graphs`) and propagated as one PyG ``Batch``.

Training: one sample per next-item target, its input the items before it (the prefixes
of every training sequence, as the paper and RecBole train), full-catalogue cross-entropy
by default (:class:`~recsys_ref.models.sequential.base.NeuralSequentialRecommender`'s
losses); ``windows="latest"`` keeps each user's latest ``max_len`` targets.

Used in: ``chapters/11_session_graphs``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from recsys_ref.graph.session import session_graphs
from recsys_ref.models.sequential.base import NeuralSequentialRecommender
from recsys_ref.nn.session import SessionGatedConv

__all__ = ["SRGNN", "SRGNNModule"]


class SRGNNModule(nn.Module):
    """Item embeddings, a :class:`~recsys_ref.nn.session.SessionGatedConv`, the attention
    readout. ``forward(x (B, L)) -> (B, d)``; ``item_vectors() -> (I, d)``;
    ``attention(x)`` the readout weights :math:`\\alpha` ``(B, L)`` (0 at padding)."""

    def __init__(self, num_items: int, embed_dim: int, num_steps: int):
        super().__init__()
        self.item_emb = nn.Embedding(num_items, embed_dim)
        self.conv = SessionGatedConv(embed_dim, num_steps)
        self.w_last = nn.Linear(embed_dim, embed_dim)
        self.w_pos = nn.Linear(embed_dim, embed_dim)
        self.q = nn.Linear(embed_dim, 1, bias=False)
        self.w_out = nn.Linear(2 * embed_dim, embed_dim)
        bound = 1.0 / math.sqrt(embed_dim)
        for p in self.parameters():                 # the authors' initialisation
            nn.init.uniform_(p, -bound, bound)

    def _readout(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = session_graphs(x)
        v = self.conv(self.item_emb(g.item), g.edge_index, g.weight_in, g.weight_out)
        v = torch.cat([v, v.new_zeros(1, v.shape[1])])          # index -1: a zero row
        mask = (g.alias >= 0).unsqueeze(-1)                         # (B, L, 1)
        seq, last = v[g.alias], v[g.last]                           # (B, L, d), (B, d)
        alpha = self.q(torch.sigmoid(self.w_last(last)[:, None] + self.w_pos(seq))) * mask
        s_g = (alpha * seq).sum(1)
        return self.w_out(torch.cat([s_g, last], -1)), alpha.squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._readout(x)[0]

    @torch.no_grad()
    def attention(self, x: torch.Tensor) -> torch.Tensor:
        return self._readout(x)[1]

    def item_vectors(self) -> torch.Tensor:
        return self.item_emb.weight


class SRGNN(NeuralSequentialRecommender):
    """SR-GNN: gated propagation over each history's session graph, attention readout.

    Args:
        num_steps: propagation steps of the gated layer (the paper: 1).
        **kwargs: :class:`~recsys_ref.models.sequential.base.NeuralSequentialRecommender`'s
            (``max_len``, ``embed_dim``, ``loss``, ``lr``, ``weight_decay``, ...).
    """

    name = "srgnn"

    def __init__(self, num_steps: int = 1, **kwargs):
        super().__init__(**kwargs)
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.num_steps = num_steps

    def build(self) -> nn.Module:
        return SRGNNModule(self.num_items, self.embed_dim, self.num_steps)

    def setup(self, trainer) -> None:
        """The module, the targets (positions in the training sequences) and the
        generators of shuffling and negative sampling."""
        self.module = self.build().to(self.device)
        latest = self.max_len if self.windows == "latest" else None
        self._windows = torch.as_tensor(self.sequences.targets(latest))
        if not len(self._windows):
            raise ValueError("no user has 2 or more interactions to learn from")
        self._gen = torch.Generator().manual_seed(self.seed)

    def calculate_loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
        """The loss of each target given the ``max_len`` items before it."""
        pos = batch[0].cpu().numpy()
        x = self.sequences.before(pos, self.max_len).to(self.device)
        target = torch.as_tensor(self.sequences.items[pos], device=self.device)
        return self._loss(self.module(x), target), len(pos)

    def _final_state(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)
