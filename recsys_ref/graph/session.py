r"""Session graphs (Wu et al., SR-GNN, AAAI 2019): a sequence as a small directed graph.

A sequence :math:`s = (s_1, \ldots, s_n)` becomes the graph whose nodes are its **distinct**
items and whose edges are its transitions :math:`s_t \to s_{t+1}`; an item seen twice is
one node with all its transitions, so a user who goes back to a film shows up as a cycle.
As in the authors' code and RecBole, a transition repeated in the sequence is one edge
(binary), and each node reads its two neighbourhoods as **means**:

.. math::

    a^{\text{in}}_{vu} = \frac{1}{\deg^{-}(v)} \ \text{for } u \to v, \qquad
    a^{\text{out}}_{uv} = \frac{1}{\deg^{+}(u)} \ \text{for } u \to v,

the incoming weights :math:`\mathbf A^{\text{in}}` normalised by the in-degree of the node
that receives, the outgoing :math:`\mathbf A^{\text{out}}` by the out-degree of the node
that sends (PyG's ``edge_index`` of the out-direction is the transposed one).

:func:`session_graphs` builds the graphs of a whole batch of left-padded sequences at once
(vectorised, no Python loop over sessions) as one PyG :class:`~torch_geometric.data.Batch`:
the disjoint union of the sessions' graphs, with ``batch`` telling which session a node
belongs to. Within a session the nodes are sorted by item index (as RecBole's
``np.unique``); ``alias[b, t]`` is the node of position ``t`` of row ``b`` and ``last[b]``
the node of the row's latest item.

Used in: :mod:`recsys_ref.models.sequential.srgnn` (``chapters/11_session_graphs``).
"""
from __future__ import annotations

import torch
from torch_geometric.data import Batch

__all__ = ["session_graphs"]


def session_graphs(x: torch.Tensor) -> Batch:
    """The session graphs of left-padded sequences ``x (B, L)`` (items as ``item + 1``,
    ``0`` pads), as one :class:`~torch_geometric.data.Batch` with

    * ``item (N,)``: each node's item (0-based); ``batch (N,)``: its row of ``x``;
    * ``edge_index (2, E)``: the distinct transitions ``u -> v`` (node indices);
    * ``weight_in (E,)``: :math:`1/\\deg^-(v)`; ``weight_out (E,)``: :math:`1/\\deg^+(u)`;
    * ``alias (B, L)``: the node at each position (``-1`` at padding);
    * ``last (B,)``: the node of each row's last position (``-1`` for an empty row).

    Raises:
        ValueError: ``x`` is not a 2-D tensor of non-negative integers.
    """
    if x.dim() != 2 or x.dtype not in (torch.int32, torch.int64) or (x < 0).any():
        raise ValueError(f"x must be a (B, L) integer tensor of item + 1 with 0 as padding; "
                         f"got shape {tuple(x.shape)}, dtype {x.dtype}")
    x = x.long()
    num_rows, length = x.shape
    stride = int(x.max()) + 1 if x.numel() else 1
    rows = torch.arange(num_rows, device=x.device)[:, None].expand_as(x)
    real = x > 0
    # a node per distinct (row, item): sorting the keys groups rows and orders items
    keys, inverse = torch.unique(rows[real] * stride + x[real], return_inverse=True)
    alias = torch.full_like(x, -1)
    alias[real] = inverse
    node_batch, node_item = keys // stride, keys % stride - 1
    # transitions between consecutive real positions (left padding: no gap inside a row)
    src, dst = alias[:, :-1].reshape(-1), alias[:, 1:].reshape(-1)
    both = (src >= 0) & (dst >= 0)
    num_nodes = len(keys)
    pairs = torch.unique(src[both] * num_nodes + dst[both])
    src, dst = pairs // num_nodes, pairs % num_nodes
    ones = torch.ones(len(pairs), device=x.device)
    in_deg = torch.zeros(num_nodes, device=x.device).index_add_(0, dst, ones)
    out_deg = torch.zeros(num_nodes, device=x.device).index_add_(0, src, ones)
    counts = torch.bincount(node_batch, minlength=num_rows)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return Batch(item=node_item, batch=node_batch, ptr=ptr,
                 edge_index=torch.stack([src, dst]),
                 weight_in=1.0 / in_deg[dst], weight_out=1.0 / out_deg[src],
                 alias=alias, last=alias[:, length - 1] if length else alias.new_zeros(0),
                 num_nodes=num_nodes)
