r"""GraphSAGE's layer written out by hand (Hamilton, Ying & Leskovec, NeurIPS 2017):

.. math::

    \mathbf{h}_v' = \mathbf{W}_1 \mathbf{h}_v + \mathbf{W}_2\,
        \mathrm{AGG}(\{\mathbf{h}_u : u \to v\}) + \mathbf{b},

with the mean aggregator or the pool aggregator
:math:`\max_u \mathrm{ReLU}(\mathbf{W}_p \mathbf{h}_u + \mathbf{b}_p)`. The reference the
chapter builds; the tests compare it with PyG's ``SAGEConv`` (which the recommender uses).

Shapes: ``x`` ``(N_src, F_in)``, ``edge_index`` ``(2, E)`` -> ``(num_dst, F_out)``.

Used in: ``chapters/07_graphsage_sampling``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SAGELayer"]


class SAGELayer(nn.Module):
    r"""GraphSAGE layer written out by hand (mean or pool aggregator), the reference the
    chapter builds and the tests compare with PyG's ``SAGEConv``.

    ``out = lin_root(h_v) + lin_neigh(AGG(h_u : u -> v))``; ``aggr="pool"`` first maps
    every neighbour through ``ReLU(pool(h_u))`` and takes the element-wise max. Nodes
    without neighbours aggregate to zero (as in PyG).

    Args:
        in_dim, out_dim: feature sizes.
        aggr: ``"mean"`` or ``"pool"``.
    """

    def __init__(self, in_dim: int, out_dim: int, aggr: str = "mean"):
        super().__init__()
        if aggr not in ("mean", "pool"):
            raise ValueError(f"aggr must be 'mean' or 'pool', got {aggr!r}")
        self.aggr = aggr
        self.pool = nn.Linear(in_dim, in_dim) if aggr == "pool" else None
        self.lin_neigh = nn.Linear(in_dim, out_dim, bias=True)
        self.lin_root = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                num_dst: int | None = None) -> torch.Tensor:
        """``x`` ``(N_src, in)``; edges ``src -> dst`` with ``dst < num_dst`` (default all);
        returns ``(num_dst, out)``."""
        num_dst = x.shape[0] if num_dst is None else num_dst
        src, dst = edge_index
        msg = x[src]                                                   # (E, in)
        if self.aggr == "pool":
            msg = F.relu(self.pool(msg))
            agg = torch.full((num_dst, x.shape[1]), float("-inf"), dtype=x.dtype)
            agg = agg.scatter_reduce(0, dst.unsqueeze(1).expand_as(msg), msg, reduce="amax")
            agg = torch.where(torch.isinf(agg), torch.zeros_like(agg), agg)
        else:
            total = torch.zeros(num_dst, x.shape[1], dtype=x.dtype).index_add_(0, dst, msg)
            count = torch.bincount(dst, minlength=num_dst).clamp(min=1).unsqueeze(1)
            agg = total / count                                        # (num_dst, in)
        return self.lin_neigh(agg) + self.lin_root(x[:num_dst])

    def __repr__(self) -> str:
        return (f"SAGELayer({self.lin_root.in_features}, {self.lin_root.out_features}, "
                f"aggr={self.aggr})")
