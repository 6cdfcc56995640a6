r"""Edge scores of the graph-attention recommender: one :class:`EdgeScorer` per layer maps
node states :math:`\mathbf{h}` ``(N, d)`` and edges :math:`j \to i` to :math:`e_{ij}`
``(E, H)``:

* ``"dot"``: :math:`e_{ij} = (W_Q\mathbf{h}_i)^\top (W_K\mathbf{h}_j) / \sqrt{C}`;
* ``"gat"``: :math:`e_{ij} = \mathrm{LeakyReLU}(\mathbf{a}_{\text{dst}}^\top W\mathbf{h}_i
  + \mathbf{a}_{\text{src}}^\top W\mathbf{h}_j)`;
* ``"gatv2"``: :math:`e_{ij} = \mathbf{a}^\top\mathrm{LeakyReLU}(W_{\text{dst}}\mathbf{h}_i
  + W_{\text{src}}\mathbf{h}_j)`.

Used in: ``chapters/08_graph_attention``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EdgeScorer"]


class EdgeScorer(nn.Module):
    """Edge scores :math:`e_{ij}` ``(E, H)`` of one layer from its input ``(N, d)``, of kind
    ``"dot"``, ``"gat"`` or ``"gatv2"`` (module docstring), head :math:`h` on the
    :math:`h`-th slice of size :math:`C = d/H`.

    Args:
        kind: the score.
        embed_dim: :math:`d` (a multiple of ``heads``).
        heads: :math:`H`.
        negative_slope: LeakyReLU slope of ``"gat"``/``"gatv2"``.
        init_std: std of the random projections; the last factor of every score starts at
            zero, so an untrained scorer gives uniform attention.
    """

    def __init__(self, kind: str, embed_dim: int, heads: int, negative_slope: float,
                 init_std: float):
        super().__init__()
        self.kind, self.heads, self.head_dim = kind, heads, embed_dim // heads
        self.negative_slope, self.init_std = negative_slope, init_std
        d = embed_dim
        if kind == "dot":
            self.W_q = nn.Linear(d, d, bias=False)
            self.W_k = nn.Linear(d, d, bias=False)
        elif kind == "gat":
            self.W = nn.Linear(d, d, bias=False)
            self.att_src = nn.Parameter(torch.empty(heads, self.head_dim))
            self.att_dst = nn.Parameter(torch.empty(heads, self.head_dim))
        else:
            self.W_src = nn.Linear(d, d, bias=False)
            self.W_dst = nn.Linear(d, d, bias=False)
            self.att = nn.Parameter(torch.empty(heads, self.head_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # projections random, the last factor of each score zero: every e_ij is 0 at the
        # start (uniform attention, i.e. exactly LightGCN) but its gradient is not
        zero = {"dot": ("W_q",), "gat": ("att_src", "att_dst"), "gatv2": ("att",)}[self.kind]
        for name, p in self.named_parameters():
            if name.split(".")[0] in zero:
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, std=self.init_std)

    def forward(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        n, H, C = h.size(0), self.heads, self.head_dim
        if self.kind == "dot":
            q = self.W_q(h).view(n, H, C)
            k = self.W_k(h).view(n, H, C)
            return (q[dst] * k[src]).sum(-1) / math.sqrt(C)                       # (E, H)
        if self.kind == "gat":
            wh = self.W(h).view(n, H, C)
            s_src, s_dst = (wh * self.att_src).sum(-1), (wh * self.att_dst).sum(-1)  # (N, H)
            return F.leaky_relu(s_src[src] + s_dst[dst], self.negative_slope)
        z = self.W_src(h).view(n, H, C)[src] + self.W_dst(h).view(n, H, C)[dst]   # (E, H, C)
        return (F.leaky_relu(z, self.negative_slope) * self.att).sum(-1)

    def __repr__(self) -> str:
        return f"EdgeScorer({self.kind!r}, heads={self.heads}, head_dim={self.head_dim})"
