r"""SASRec (Kang & McAuley, 2018): self-attention over a user's latest items, each position
attending only to the ones before it.

.. math::

    \mathbf H^{(0)} &= \sqrt d\,\mathbf E_{s_{1:L}} + \mathbf P, \\
    \mathbf H^{(b)} &= \operatorname{Block}_b\big(\mathbf H^{(b-1)}\big), \qquad
    \operatorname{Block}(\mathbf X) = \mathbf Y + \operatorname{FFN}(\operatorname{LN}(\mathbf Y)),\
    \mathbf Y = \mathbf X + \operatorname{MHA}(\operatorname{LN}(\mathbf X)), \\
    \hat y_{t,i} &= \operatorname{LN}(\mathbf h^{(B)}_t)^\top \mathbf e_i,

with :math:`\mathbf E` the item embeddings (shared by input and output), :math:`\mathbf P`
learned position embeddings, and the attention of position :math:`t` restricted to
positions :math:`\le t` (the causal mask) that hold an item (the padding mask). The blocks
are PyTorch's :class:`torch.nn.TransformerEncoderLayer` (pre-norm, ``norm_first=True``), as
the paper's (layer norm before attention and feed-forward, ReLU, dropout);
:class:`recsys_ref.nn.transformer.CausalSelfAttentionBlock` writes one out by hand and is
tested equal to it.

Training (:class:`~recsys_ref.models.sequential.base.NeuralSequentialRecommender`): every
position predicts the next item; the paper's loss is ``"bce"`` (one sampled negative per
position), ``"ce"`` the full-catalogue cross-entropy that later work found far better.

Used in: ``chapters/10_sequential``, ``chapters/11_session_graphs``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from recsys_ref.models.sequential.base import NeuralSequentialRecommender

__all__ = ["SASRec", "SASRecModule", "attention_mask"]


def attention_mask(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B * num_heads, L, L)`` boolean mask for left-padded inputs ``x (B, L)`` (0 pads):
    ``True`` where position ``t`` may **not** attend to ``s``: the future (``s > t``) and
    padding (``x[s] = 0``). A position always attends to itself, so no row is empty (a
    padded position's output is never used)."""
    length = x.shape[1]
    future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
    pad = (x == 0)[:, None, :] & ~torch.eye(length, dtype=torch.bool, device=x.device)
    return (future[None] | pad).repeat_interleave(num_heads, 0)


class SASRecModule(nn.Module):
    """Item and position embeddings, ``num_blocks`` causal transformer blocks, a final
    layer norm. ``encode(x (B, L)) -> (B, L, d)``; ``item_vectors() -> (I, d)``."""

    def __init__(self, num_items: int, max_len: int, embed_dim: int, num_blocks: int,
                 num_heads: int, dropout: float, ffn_dim: int | None = None):
        super().__init__()
        self.num_heads, self.scale = num_heads, math.sqrt(embed_dim)
        self.item_emb = nn.Embedding(num_items + 1, embed_dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, embed_dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, ffn_dim or embed_dim,
                                           dropout, activation="relu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_blocks, norm=nn.LayerNorm(embed_dim),
                                            enable_nested_tensor=False)
        nn.init.normal_(self.item_emb.weight, std=embed_dim ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks' input :math:`\mathbf H^{(0)}`, ``(B, L, d)``; padding rows zero."""
        pos = torch.arange(x.shape[1], device=x.device)
        h = self.item_emb(x) * self.scale + self.pos_emb(pos)[None]
        return self.dropout(h) * (x > 0).unsqueeze(-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.embed(x), mask=attention_mask(x, self.num_heads))

    def item_vectors(self) -> torch.Tensor:
        return self.item_emb.weight[1:]


class SASRec(NeuralSequentialRecommender):
    """SASRec: causal self-attention over the latest ``max_len`` items.

    Args:
        num_blocks, num_heads: transformer blocks and attention heads.
        dropout: on the embeddings, attention weights and feed-forward outputs.
        ffn_dim: width of the feed-forward layer (default ``embed_dim``, as the paper).
        **kwargs: :class:`~recsys_ref.models.sequential.base.NeuralSequentialRecommender`'s
            (``max_len``, ``embed_dim``, ``loss``, ``lr``, ``num_epochs``, ...).
    """

    name = "sasrec"

    def __init__(self, num_blocks: int = 2, num_heads: int = 1, dropout: float = 0.2,
                 ffn_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_blocks < 1 or num_heads < 1 or self.embed_dim % num_heads:
            raise ValueError(f"need num_blocks >= 1 and num_heads >= 1 dividing embed_dim "
                             f"({self.embed_dim}); got {num_blocks}, {num_heads}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.num_blocks, self.num_heads, self.dropout, self.ffn_dim = (
            num_blocks, num_heads, dropout, ffn_dim)

    def build(self) -> nn.Module:
        return SASRecModule(self.num_items, self.max_len, self.embed_dim, self.num_blocks,
                            self.num_heads, self.dropout, self.ffn_dim)
