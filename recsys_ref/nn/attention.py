r"""Graph attention layers written from scratch: additive GAT, GATv2 and scaled
dot-product (Transformer) attention over an ``edge_index``.

Every layer computes one score :math:`e_{ij}` per edge :math:`j \to i`, turns the scores
of each node's incoming edges into a distribution with a per-node softmax, and sums the
neighbours' messages with those weights:

.. math::

    \alpha_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}(e_{ij})
               = \frac{\exp e_{ij}}{\sum_{k \in \mathcal{N}(i)} \exp e_{ik}}, \qquad
    \mathbf{h}_i' = \sum_{j \in \mathcal{N}(i)} \alpha_{ij}\, \mathbf{m}_j .

The three layers differ only in the score and the message:

* GAT (Veličković et al., ICLR 2018), :class:`GATLayer`:
  :math:`e_{ij} = \mathrm{LeakyReLU}\big(\mathbf{a}^\top [W\mathbf{h}_i \,\|\, W\mathbf{h}_j]\big)`,
  :math:`\mathbf{m}_j = W\mathbf{h}_j`. Because :math:`\mathbf{a}^\top[\cdot\|\cdot]` splits into
  :math:`\mathbf{a}_{\text{dst}}^\top W\mathbf{h}_i + \mathbf{a}_{\text{src}}^\top W\mathbf{h}_j`
  and LeakyReLU is monotone, the *ranking* of neighbours is the same for every target
  :math:`i` ("static" attention).
* GATv2 (Brody et al., ICLR 2022), :class:`GATv2Layer`:
  :math:`e_{ij} = \mathbf{a}^\top \mathrm{LeakyReLU}(W_{\text{dst}}\mathbf{h}_i
  + W_{\text{src}}\mathbf{h}_j)`,
  :math:`\mathbf{m}_j = W_{\text{src}}\mathbf{h}_j`: the non-linearity sits between the two
  linear maps, so the ranking can depend on :math:`i` ("dynamic" attention).
* Scaled dot product (Vaswani et al., 2017; Shi et al., IJCAI 2021 as PyG's
  ``TransformerConv``), :class:`DotProductAttentionLayer`:
  :math:`e_{ij} = \mathbf{q}_i^\top \mathbf{k}_j / \sqrt{C}` with
  :math:`\mathbf{q}_i = W_Q\mathbf{h}_i`, :math:`\mathbf{k}_j = W_K\mathbf{h}_j`,
  :math:`\mathbf{m}_j = \mathbf{v}_j = W_V\mathbf{h}_j`, plus a root term :math:`W_S\mathbf{h}_i`.

With :math:`H` heads each head has its own parameters; the :math:`H` outputs are
concatenated (``concat=True``, size :math:`H C`) or averaged (size :math:`C`). Each layer
mirrors its PyG counterpart (``GATConv``, ``GATv2Conv``, ``TransformerConv``) and can copy
that layer's weights with :meth:`copy_from_pyg`, so the two can be compared number for
number. The per-node softmax is :func:`torch_geometric.utils.softmax` and the weighted sum
:func:`torch_geometric.utils.scatter` (both run on plain PyTorch; no ``torch-scatter``).

Shapes:
    - ``x``: ``(N, F_in)``; ``edge_index``: ``(2, E)``, row 0 = source :math:`j`,
      row 1 = target :math:`i` (PyG's convention)
    - output: ``(N, H*C)`` (concat) or ``(N, C)`` (mean)
    - attention weights: ``(E', H)`` for the ``(2, E')`` edges actually used (self-loops
      added by GAT/GATv2 included)

Cost: one layer does :math:`O(|E|\,H\,C)` work and memory for the messages (and, for
GATv2 and dot-product attention, for the scores), against :math:`O(|E|\,C)` for a GCN layer
with fixed weights.

Used in: ``chapters/08_graph_attention``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import add_self_loops as _add_self_loops
from torch_geometric.utils import remove_self_loops, scatter, softmax

__all__ = ["edge_softmax", "aggregate", "GATLayer", "GATv2Layer", "DotProductAttentionLayer"]


def _check_edge_index(edge_index: torch.Tensor, num_nodes: int) -> None:
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = (tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor)
                 else type(edge_index))
        raise ValueError("edge_index must be a (2, E) tensor (row 0 = source, row 1 = "
                         f"target), got {shape}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"edge_index must hold int64 node indices, got {edge_index.dtype}; "
                         "use .long()")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(f"edge_index refers to a node outside 0..{num_nodes - 1} "
                         f"(min {int(edge_index.min())}, max {int(edge_index.max())})")


def _check_x(x: torch.Tensor, in_dim: int, layer: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
        raise ValueError(f"{layer} expects node features x of shape (N, {in_dim}), got {shape}")
    if x.size(1) != in_dim:
        raise ValueError(f"{layer} was built for {in_dim} input features, x has {x.size(1)}")


def _check_sizes(in_dim: int, out_dim: int, heads: int) -> None:
    if in_dim < 1 or out_dim < 1 or heads < 1:
        raise ValueError("in_dim, out_dim and heads must be positive, got "
                         f"{in_dim}, {out_dim}, {heads}")


def _with_self_loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Drop existing self-loops, then add exactly one ``i -> i`` per node (GATConv's rule)."""
    edge_index, _ = remove_self_loops(edge_index)
    edge_index, _ = _add_self_loops(edge_index, num_nodes=num_nodes)
    return edge_index


def edge_softmax(scores: torch.Tensor, index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    r"""Softmax of edge scores over the edges that share a target node.

    Args:
        scores: ``(E,)`` or ``(E, H)`` scores :math:`e_{ij}`.
        index: ``(E,)`` target node :math:`i` of each edge (``edge_index[1]``).
        num_nodes: :math:`N`.

    Returns:
        ``alpha`` of the same shape as ``scores``; for every node with incoming edges
        (and every head) ``alpha`` sums to 1 over those edges.
    """
    if scores.dim() not in (1, 2) or index.dim() != 1 or scores.size(0) != index.size(0):
        raise ValueError(f"scores must be (E,) or (E, H) with E = len(index); got scores "
                         f"{tuple(scores.shape)} and index {tuple(index.shape)}")
    if index.numel() and (index.min() < 0 or index.max() >= num_nodes):
        raise ValueError(f"index refers to a node outside 0..{num_nodes - 1}")
    return softmax(scores, index, num_nodes=num_nodes)


def aggregate(messages: torch.Tensor, alpha: torch.Tensor, index: torch.Tensor,
              num_nodes: int) -> torch.Tensor:
    r""":math:`\mathbf{h}_i' = \sum_{j} \alpha_{ij} \mathbf{m}_j` for every target node.

    Args:
        messages: ``(E, H, C)`` message of each edge's source.
        alpha: ``(E, H)`` attention weights.
        index: ``(E,)`` target node of each edge.
        num_nodes: :math:`N` (nodes without incoming edges get zeros).

    Returns:
        ``(N, H, C)``.
    """
    return scatter(alpha.unsqueeze(-1) * messages, index, dim=0, dim_size=num_nodes, reduce="sum")


def _combine_heads(out: torch.Tensor, concat: bool) -> torch.Tensor:
    return out.flatten(1) if concat else out.mean(dim=1)  # (N, H*C) or (N, C)


class _AttentionLayer(nn.Module):
    """Shared plumbing: sizes, validation, head combination, ``__repr__``."""

    def __init__(self, in_dim: int, out_dim: int, heads: int, concat: bool, dropout: float):
        super().__init__()
        _check_sizes(in_dim, out_dim, heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.in_dim, self.out_dim, self.heads = in_dim, out_dim, heads
        self.concat, self.dropout = concat, dropout

    @property
    def total_out_dim(self) -> int:
        return self.out_dim * (self.heads if self.concat else 1)

    def _check(self, x: torch.Tensor, edge_index: torch.Tensor) -> None:
        _check_x(x, self.in_dim, type(self).__name__)
        _check_edge_index(edge_index, x.size(0))

    def _drop(self, alpha: torch.Tensor) -> torch.Tensor:
        return F.dropout(alpha, p=self.dropout, training=self.training)

    def _edges(self, x: torch.Tensor, edge_index: torch.Tensor, self_loops: bool) -> torch.Tensor:
        """Validated ``edge_index`` ``(2, E')``, with a self-loop per node when asked."""
        self._check(x, edge_index)
        return _with_self_loops(edge_index, x.size(0)) if self_loops else edge_index

    def _output(self, messages: torch.Tensor, alpha: torch.Tensor, edge_index: torch.Tensor,
                num_nodes: int, bias: torch.Tensor | None, return_attention_weights: bool):
        """Weighted sum of ``messages`` ``(E, H, C)`` into targets, heads combined, plus
        ``bias``; with ``(edge_index, alpha)`` when asked."""
        out = aggregate(messages, self._drop(alpha), edge_index[1], num_nodes)  # (N, H, C)
        out = _combine_heads(out, self.concat)
        if bias is not None:
            out = out + bias
        return (out, (edge_index, alpha)) if return_attention_weights else out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_dim}, {self.out_dim}, heads={self.heads}, "
                f"concat={self.concat})")


class GATLayer(_AttentionLayer):
    r"""Additive graph attention (GAT), the layer PyG calls ``GATConv``.

    .. math::

        e_{ij} = \mathrm{LeakyReLU}\big(\mathbf{a}_{\text{dst}}^\top W\mathbf{h}_i
                 + \mathbf{a}_{\text{src}}^\top W\mathbf{h}_j\big), \quad
        \mathbf{h}_i' = \big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i) \cup \{i\}}
                 \alpha_{ij}^{h} W^{h}\mathbf{h}_j + \mathbf{b}

    Args:
        in_dim: :math:`F_{in}`.
        out_dim: :math:`C`, the size of one head.
        heads: :math:`H` (default 1).
        concat: concatenate heads (default ``True``) or average them.
        negative_slope: LeakyReLU slope (default 0.2).
        dropout: dropout on the attention weights in training (default 0).
        add_self_loops: let every node attend to itself (default ``True``).
        bias: add a learnable bias (default ``True``).
    """

    def __init__(self, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 bias: bool = True):
        super().__init__(in_dim, out_dim, heads, concat, dropout)
        self.negative_slope, self.add_self_loops = negative_slope, add_self_loops
        self.W = nn.Linear(in_dim, heads * out_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_dim))
        self.att_dst = nn.Parameter(torch.empty(heads, out_dim))
        self.bias = nn.Parameter(torch.empty(self.total_out_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.W.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                return_attention_weights: bool = False):
        """``(N, out)``, and ``(edge_index_used, alpha (E', H))`` when asked."""
        edge_index = self._edges(x, edge_index, self.add_self_loops)
        n, H, C = x.size(0), self.heads, self.out_dim
        src, dst = edge_index
        wh = self.W(x).view(n, H, C)                        # (N, H, C)
        s_src = (wh * self.att_src).sum(-1)                 # (N, H): a_src . W h_j
        s_dst = (wh * self.att_dst).sum(-1)                 # (N, H): a_dst . W h_i
        e = F.leaky_relu(s_src[src] + s_dst[dst], self.negative_slope)  # (E, H)
        alpha = edge_softmax(e, dst, n)                     # (E, H)
        return self._output(wh[src], alpha, edge_index, n, self.bias, return_attention_weights)

    @torch.no_grad()
    def copy_from_pyg(self, conv) -> "GATLayer":
        """Copy the weights of a ``torch_geometric.nn.GATConv`` with the same sizes."""
        self.W.weight.copy_(conv.lin.weight)
        self.att_src.copy_(conv.att_src.view(self.heads, self.out_dim))
        self.att_dst.copy_(conv.att_dst.view(self.heads, self.out_dim))
        if self.bias is not None:
            self.bias.copy_(conv.bias)
        return self


class GATv2Layer(_AttentionLayer):
    r"""Dynamic additive attention (GATv2), the layer PyG calls ``GATv2Conv``.

    .. math::

        e_{ij} = \mathbf{a}^\top \mathrm{LeakyReLU}\big(W_{\text{dst}}\mathbf{h}_i
                 + W_{\text{src}}\mathbf{h}_j\big), \quad
        \mathbf{h}_i' = \big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i) \cup \{i\}}
                 \alpha_{ij}^{h} W_{\text{src}}^{h}\mathbf{h}_j + \mathbf{b}

    Args: as :class:`GATLayer`; ``bias`` also adds biases to :math:`W_{\text{src}}` and
    :math:`W_{\text{dst}}` (as PyG does), and ``share_weights=True`` uses one matrix for both.
    """

    def __init__(self, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 bias: bool = True, share_weights: bool = False):
        super().__init__(in_dim, out_dim, heads, concat, dropout)
        self.negative_slope, self.add_self_loops = negative_slope, add_self_loops
        self.share_weights = share_weights
        self.W_src = nn.Linear(in_dim, heads * out_dim, bias=bias)
        self.W_dst = self.W_src if share_weights else nn.Linear(in_dim, heads * out_dim, bias=bias)
        self.att = nn.Parameter(torch.empty(heads, out_dim))
        self.bias = nn.Parameter(torch.empty(self.total_out_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in {id(self.W_src): self.W_src, id(self.W_dst): self.W_dst}.values():
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.att)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                return_attention_weights: bool = False):
        """``(N, out)``, and ``(edge_index_used, alpha (E', H))`` when asked."""
        edge_index = self._edges(x, edge_index, self.add_self_loops)
        n, H, C = x.size(0), self.heads, self.out_dim
        src, dst = edge_index
        x_src = self.W_src(x).view(n, H, C)                # (N, H, C)
        x_dst = x_src if self.share_weights else self.W_dst(x).view(n, H, C)
        z = F.leaky_relu(x_src[src] + x_dst[dst], self.negative_slope)  # (E, H, C)
        e = (z * self.att).sum(-1)                           # (E, H)
        alpha = edge_softmax(e, dst, n)
        return self._output(x_src[src], alpha, edge_index, n, self.bias, return_attention_weights)

    @torch.no_grad()
    def copy_from_pyg(self, conv) -> "GATv2Layer":
        """Copy the weights of a ``torch_geometric.nn.GATv2Conv`` with the same sizes."""
        self.W_src.weight.copy_(conv.lin_l.weight)
        self.W_dst.weight.copy_(conv.lin_r.weight)
        if self.W_src.bias is not None:
            self.W_src.bias.copy_(conv.lin_l.bias)
            self.W_dst.bias.copy_(conv.lin_r.bias)
        self.att.copy_(conv.att.view(self.heads, self.out_dim))
        if self.bias is not None:
            self.bias.copy_(conv.bias)
        return self


class DotProductAttentionLayer(_AttentionLayer):
    r"""Scaled dot-product graph attention, the layer PyG calls ``TransformerConv``.

    .. math::

        \alpha_{ij}^{h} = \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \Big(\frac{(\mathbf{q}_i^{h})^\top \mathbf{k}_j^{h}}{\sqrt{C}}\Big), \quad
        \mathbf{h}_i' = \big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)} \alpha_{ij}^{h}
            \mathbf{v}_j^{h} + W_S \mathbf{h}_i

    with :math:`\mathbf{q} = W_Q\mathbf{h} + \mathbf{b}_Q`, :math:`\mathbf{k} = W_K\mathbf{h}
    + \mathbf{b}_K`, :math:`\mathbf{v} = W_V\mathbf{h} + \mathbf{b}_V`. No self-loops are
    added (the root term :math:`W_S\mathbf{h}_i` plays their role).

    Args:
        in_dim, out_dim, heads, concat, dropout: as :class:`GATLayer`.
        root_weight: add :math:`W_S\mathbf{h}_i` (default ``True``).
        bias: biases on the four linear maps (default ``True``).
    """

    def __init__(self, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 dropout: float = 0.0, root_weight: bool = True, bias: bool = True):
        super().__init__(in_dim, out_dim, heads, concat, dropout)
        self.root_weight = root_weight
        self.W_q = nn.Linear(in_dim, heads * out_dim, bias=bias)
        self.W_k = nn.Linear(in_dim, heads * out_dim, bias=bias)
        self.W_v = nn.Linear(in_dim, heads * out_dim, bias=bias)
        self.W_skip = nn.Linear(in_dim, self.total_out_dim, bias=bias) if root_weight else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.W_q, self.W_k, self.W_v, self.W_skip):
            if lin is not None:
                lin.reset_parameters()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                return_attention_weights: bool = False):
        """``(N, out)``, and ``(edge_index, alpha (E, H))`` when asked."""
        edge_index = self._edges(x, edge_index, False)
        n, H, C = x.size(0), self.heads, self.out_dim
        src, dst = edge_index
        q = self.W_q(x).view(n, H, C)                        # (N, H, C)
        k = self.W_k(x).view(n, H, C)
        v = self.W_v(x).view(n, H, C)
        e = (q[dst] * k[src]).sum(-1) / math.sqrt(C)         # (E, H)
        alpha = edge_softmax(e, dst, n)
        skip = self.W_skip(x) if self.W_skip is not None else None
        return self._output(v[src], alpha, edge_index, n, skip, return_attention_weights)

    @torch.no_grad()
    def copy_from_pyg(self, conv) -> "DotProductAttentionLayer":
        """Copy the weights of a ``torch_geometric.nn.TransformerConv`` (``beta=False``)."""
        pairs = [(self.W_q, conv.lin_query), (self.W_k, conv.lin_key), (self.W_v, conv.lin_value)]
        if self.W_skip is not None:
            pairs.append((self.W_skip, conv.lin_skip))
        for mine, theirs in pairs:
            mine.weight.copy_(theirs.weight)
            if mine.bias is not None:
                mine.bias.copy_(theirs.bias)
        return self
