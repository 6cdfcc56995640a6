r"""SR-GNN's gated graph layer (Wu et al., AAAI 2019): a GRU step whose input is what a
node hears from its predecessors and its successors in the session graph.

With :math:`\mathbf H` the node states and :math:`\mathbf A^{\text{in}},
\mathbf A^{\text{out}}` the mean-normalised neighbourhoods of
:func:`recsys_ref.graph.session.session_graphs`,

.. math::

    \mathbf m^{\text{in}}_v &= \textstyle\sum_u a^{\text{in}}_{vu}
        (\mathbf W_{\text{in}} \mathbf h_u + \mathbf c_{\text{in}})
        + \mathbf b_{\text{in}}, \\
    \mathbf m^{\text{out}}_v &= \textstyle\sum_u a^{\text{out}}_{vu}
        (\mathbf W_{\text{out}} \mathbf h_u + \mathbf c_{\text{out}})
        + \mathbf b_{\text{out}}, \\
    \mathbf h_v' &= \operatorname{GRUCell}\big([\mathbf m^{\text{in}}_v ;
        \mathbf m^{\text{out}}_v],\ \mathbf h_v\big),

repeated ``num_steps`` times with shared weights. The GRU cell is PyTorch's
(:math:`\mathbf z` the update gate, :math:`\mathbf r` the reset gate):
:math:`\mathbf h' = (1 - \mathbf z) \odot \mathbf n + \mathbf z \odot \mathbf h` with
:math:`\mathbf n = \tanh(\mathbf W_n \mathbf m + \mathbf r \odot \mathbf U_n \mathbf h)`,
the update the authors' code writes out. The messages are PyG's
:class:`~torch_geometric.nn.conv.MessagePassing` (weighted sums over ``edge_index`` and its
transpose). With the outgoing half switched off (zero weights and biases) the layer is
PyG's :class:`~torch_geometric.nn.conv.GatedGraphConv` (Li et al., 2016) — the tests check
it on shared weights.

Used in: :mod:`recsys_ref.models.sequential.srgnn`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn.conv import MessagePassing

__all__ = ["SessionGatedConv"]


class SessionGatedConv(MessagePassing):
    """SR-GNN's gated layer over incoming and outgoing transitions (above).

    Args:
        dim: the node state size :math:`d`.
        num_steps: propagation steps (shared weights; the paper uses 1).

    Shapes: ``h (N, d)``, ``edge_index (2, E)``, ``weight_in``/``weight_out (E,)``
    -> ``(N, d)``.
    """

    def __init__(self, dim: int, num_steps: int = 1):
        super().__init__(aggr="add")
        if dim < 1 or num_steps < 1:
            raise ValueError(f"dim and num_steps must be positive, got {dim}, {num_steps}")
        self.dim, self.num_steps = dim, num_steps
        self.lin_in, self.lin_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.bias_in = nn.Parameter(torch.empty(dim))
        self.bias_out = nn.Parameter(torch.empty(dim))
        self.gru = nn.GRUCell(2 * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight uniform in :math:`\\pm 1/\\sqrt d`, as the authors initialise."""
        bound = 1.0 / math.sqrt(self.dim)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, weight_in: torch.Tensor,
                weight_out: torch.Tensor) -> torch.Tensor:
        reverse = edge_index.flip(0)
        for _ in range(self.num_steps):
            m_in = self.propagate(edge_index, x=self.lin_in(h), weight=weight_in)
            m_out = self.propagate(reverse, x=self.lin_out(h), weight=weight_out)
            h = self.gru(torch.cat([m_in + self.bias_in, m_out + self.bias_out], -1), h)
        return h

    def message(self, x_j: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight[:, None] * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, num_steps={self.num_steps})"
