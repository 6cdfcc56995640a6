r"""One causal self-attention block written out, for reading: what
:class:`torch.nn.TransformerEncoderLayer` (pre-norm) computes inside SASRec.

For inputs :math:`\mathbf X \in \mathbb R^{L \times d}` and one head:

.. math::

    \mathbf Q, \mathbf K, \mathbf V &= \operatorname{LN}_1(\mathbf X)\,
        \mathbf W_Q,\ \operatorname{LN}_1(\mathbf X)\,\mathbf W_K,\
        \operatorname{LN}_1(\mathbf X)\,\mathbf W_V, \\
    \mathbf A &= \operatorname{softmax}\Big(\frac{\mathbf Q \mathbf K^\top}{\sqrt{d}}
        + \mathbf M\Big), \qquad M_{ts} = -\infty \text{ if } s > t, \\
    \mathbf Y &= \mathbf X + \mathbf A \mathbf V \mathbf W_O, \\
    \operatorname{Block}(\mathbf X) &= \mathbf Y + \operatorname{ReLU}\big(
        \operatorname{LN}_2(\mathbf Y)\,\mathbf W_1 + \mathbf b_1\big)\mathbf W_2 + \mathbf b_2.

With :math:`h` heads, :math:`\mathbf Q, \mathbf K, \mathbf V` are cut into :math:`h`
slices of width :math:`d/h`, each attends on its own (scaled by :math:`\sqrt{d/h}`), and
the outputs are concatenated before :math:`\mathbf W_O`. Row :math:`t` of
:math:`\mathbf A` puts weight only on positions :math:`s \le t`: the prediction after
item :math:`t` never reads a later one.

:meth:`CausalSelfAttentionBlock.from_torch` copies the weights of a
:class:`torch.nn.TransformerEncoderLayer` (``norm_first=True``, ``batch_first=True``,
ReLU), so the two can be compared on the same input (they agree to float precision; the
tests check it).

Used in: ``chapters/10_sequential``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["CausalSelfAttentionBlock"]


class CausalSelfAttentionBlock(nn.Module):
    """A pre-norm transformer block with causal (and optional padding) masking, by hand.

    Args:
        embed_dim: :math:`d`.
        num_heads: :math:`h` (divides :math:`d`).
        ffn_dim: width of the feed-forward layer.
    """

    def __init__(self, embed_dim: int, num_heads: int = 1, ffn_dim: int | None = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide embed_dim ({embed_dim})")
        self.d, self.h = embed_dim, num_heads
        self.norm1, self.norm2 = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)     # W_Q, W_K, W_V stacked
        self.out = nn.Linear(embed_dim, embed_dim)         # W_O
        self.ff1 = nn.Linear(embed_dim, ffn_dim or embed_dim)
        self.ff2 = nn.Linear(ffn_dim or embed_dim, embed_dim)

    def attention(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The weights :math:`\\mathbf A`, ``(B, h, L, L)``; ``mask (B, L, L)`` or
        ``(L, L)`` is ``True`` where attention is forbidden (default: the future)."""
        batch, length, _ = x.shape
        q, k, _ = self._qkv(self.norm1(x))
        if mask is None:
            mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.d // self.h)
        mask = mask if mask.dim() == 3 else mask[None]
        logits = logits.masked_fill(mask[:, None], float("-inf"))
        return torch.softmax(logits, -1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, d)`` -> ``(B, L, d)``."""
        batch, length, _ = x.shape
        _, _, v = self._qkv(self.norm1(x))
        a = self.attention(x, mask)                                 # (B, h, L, L)
        heads = (a @ v).transpose(1, 2).reshape(batch, length, self.d)
        y = x + self.out(heads)
        return y + self.ff2(torch.relu(self.ff1(self.norm2(y))))

    def _qkv(self, x: torch.Tensor):
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).split(self.d, dim=-1)
        return tuple(t.reshape(batch, length, self.h, self.d // self.h).transpose(1, 2)
                     for t in (q, k, v))

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "CausalSelfAttentionBlock":
        """A block with the weights of PyTorch's layer (pre-norm, batch first, ReLU)."""
        if not (layer.norm_first and layer.self_attn.batch_first):
            raise ValueError("expected TransformerEncoderLayer(norm_first=True, "
                             "batch_first=True)")
        attn = layer.self_attn
        block = cls(attn.embed_dim, attn.num_heads, layer.linear1.out_features)
        with torch.no_grad():
            block.qkv.weight.copy_(attn.in_proj_weight)
            block.qkv.bias.copy_(attn.in_proj_bias)
            block.out.load_state_dict(attn.out_proj.state_dict())
            block.ff1.load_state_dict(layer.linear1.state_dict())
            block.ff2.load_state_dict(layer.linear2.state_dict())
            block.norm1.load_state_dict(layer.norm1.state_dict())
            block.norm2.load_state_dict(layer.norm2.state_dict())
        return block
