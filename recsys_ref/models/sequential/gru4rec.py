r"""GRU4Rec (Hidasi et al., 2016): a recurrent network reads the items one by one and its
state scores the next one.

.. math::

    \mathbf h_t = \operatorname{GRU}(\mathbf e_{s_t}, \mathbf h_{t-1}), \qquad
    \hat y_{t,i} = (\mathbf W \mathbf h_t + \mathbf b)^\top \mathbf e_i,

with :math:`\mathbf E` the item embeddings, shared by input and output (the projection
:math:`\mathbf W` maps the state to the embedding space). The paper trains on
*session-parallel mini-batches*: the batch's rows are sessions, the step moves every row
one item forward and a row whose session ends is given the next session with its state
reset. Training on whole padded sequences, as here, computes the same next-item losses
with the state carried along each sequence (PyTorch's fused :class:`torch.nn.GRU`); the
left padding is a run of zero vectors before the first item, which the network learns to
treat as its starting state.

Used in: ``chapters/10_sequential``, ``chapters/11_session_graphs``.
"""
from __future__ import annotations

from torch import nn

from recsys_ref.models.sequential.base import NeuralSequentialRecommender

__all__ = ["GRU4Rec", "GRU4RecModule"]


class GRU4RecModule(nn.Module):
    """Item embeddings, a ``num_layers`` GRU, a linear map back to the embedding space."""

    def __init__(self, num_items: int, embed_dim: int, hidden_dim: int, num_layers: int,
                 dropout: float):
        super().__init__()
        self.item_emb = nn.Embedding(num_items + 1, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embed_dim, hidden_dim, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, embed_dim)
        nn.init.normal_(self.item_emb.weight, std=embed_dim ** -0.5)

    def encode(self, x):
        h, _ = self.gru(self.dropout(self.item_emb(x)))
        return self.out(self.dropout(h))

    def item_vectors(self):
        return self.item_emb.weight[1:]


class GRU4Rec(NeuralSequentialRecommender):
    """GRU4Rec with full-catalogue cross-entropy by default (``loss="sampled"`` with
    ``num_neg`` shared negatives is the cheaper option for large catalogues).

    Args:
        hidden_dim: GRU state size (default ``embed_dim``).
        num_layers: stacked GRU layers.
        dropout: on the input embeddings and on the GRU's outputs.
        **kwargs: :class:`~recsys_ref.models.sequential.base.NeuralSequentialRecommender`'s.
    """

    name = "gru4rec"

    def __init__(self, hidden_dim: int | None = None, num_layers: int = 1,
                 dropout: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 1 or not 0 <= dropout < 1:
            raise ValueError("num_layers must be >= 1 and dropout in [0, 1)")
        self.hidden_dim, self.num_layers, self.dropout = hidden_dim, num_layers, dropout

    def build(self) -> nn.Module:
        return GRU4RecModule(self.num_items, self.embed_dim, self.hidden_dim or self.embed_dim,
                             self.num_layers, self.dropout)
