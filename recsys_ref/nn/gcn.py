r"""Graph layers written from scratch, small enough to read in one sitting and tested
against PyTorch Geometric.

Graph convolution (Kipf & Welling, ICLR 2017). With self-loops added,
:math:`\hat A = A + I`, and the degrees :math:`\hat d_i = \sum_j \hat A_{ij}`, one layer maps
node features :math:`H \in \mathbb{R}^{N \times F}` to

.. math::

    H' = \sigma\big(\hat D^{-1/2} \hat A \hat D^{-1/2} H W + b\big), \qquad
    \mathbf{h}_i' = \sigma\Big(\sum_{j \in \mathcal{N}(i) \cup \{i\}}
        \frac{\hat a_{ij}}{\sqrt{\hat d_i \hat d_j}}\, W^\top \mathbf{h}_j + b\Big),

the rule of PyG's ``GCNConv(normalize=True, add_self_loops=True)`` (which leaves
:math:`\sigma` to the caller: ``activation=None`` here is the same). Edges follow PyG's
convention: ``edge_index[0]`` is the source :math:`j`, ``edge_index[1]`` the target
:math:`i`, so :math:`\hat A_{ij}` counts edges :math:`j \to i` and :math:`\hat d_i` is the
in-degree (plus the self-loop). Self-loops are added only where a node has none (PyG's
``add_remaining_self_loops``).

* :class:`DenseGCNLayer` builds :math:`\hat D^{-1/2} \hat A \hat D^{-1/2}` as a dense
  ``(N, N)`` matrix: the version to check by hand on a five-node graph.
* :class:`SparseGCNLayer` keeps it as a sparse ``(N, N)`` tensor built from
  ``edge_index``: memory :math:`O(|E| + N F)`, the version for real graphs.

Shapes:
    - ``x``: ``(N, F_in)`` -> ``(N, F_out)``
    - ``adj`` (dense layer): ``(N, N)`` with ``adj[i, j]`` the weight of edge ``j -> i``
    - ``edge_index`` (sparse layer): ``(2, |E|)``

Used in: ``chapters/06_graph_convolution``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from recsys_ref.graph.adjacency import normalized_adjacency

__all__ = ["gcn_norm_dense", "gcn_norm_sparse", "DenseGCNLayer", "SparseGCNLayer"]


def _check_activation(activation):
    if activation is not None and not callable(activation):
        raise ValueError(f"activation must be callable or None, got {activation!r}")


def gcn_norm_dense(adj: torch.Tensor, add_self_loops: bool = True) -> torch.Tensor:
    r"""Dense :math:`\hat D^{-1/2} \hat A \hat D^{-1/2}` with :math:`\hat A = A + I`
    (self-loops only where the diagonal is 0); zero-degree rows stay 0.

    Args:
        adj: ``(N, N)`` non-negative adjacency, ``adj[i, j]`` = weight of edge ``j -> i``.
        add_self_loops: add the missing self-loops (default True).
    """
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adj must be a square (N, N) matrix, got shape {tuple(adj.shape)}")
    if adj.is_sparse:
        raise ValueError("gcn_norm_dense expects a dense matrix; use SparseGCNLayer for "
                         "sparse graphs")
    a = adj.clone()
    if add_self_loops:
        diag = a.diagonal()
        diag.copy_(torch.where(diag == 0, torch.ones_like(diag), diag))
    deg = a.sum(1)                                            # (N,) in-degree + loop
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-30).rsqrt(), torch.zeros_like(deg))
    return inv_sqrt[:, None] * a * inv_sqrt[None, :]


def gcn_norm_sparse(edge_index: torch.Tensor, num_nodes: int,
                    edge_weight: torch.Tensor | None = None,
                    add_self_loops: bool = True,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Sparse ``(N, N)`` :math:`\hat D^{-1/2} \hat A \hat D^{-1/2}` (coalesced COO) with
    row = target, column = source: :func:`recsys_ref.graph.adjacency.normalized_adjacency`
    with self-loops on by default (the GCN convention)."""
    return normalized_adjacency(edge_index, num_nodes, add_self_loops, edge_weight, dtype)


class _GCNBase(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, add_self_loops: bool = True,
                 activation=None):
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be positive, got {in_dim}, {out_dim}")
        _check_activation(activation)
        self.in_dim, self.out_dim, self.add_self_loops = in_dim, out_dim, add_self_loops
        self.activation = activation
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))       # W: (F_in, F_out)
        self.bias = nn.Parameter(torch.empty(out_dim)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform :math:`W` and zero bias (PyG's initialisation)."""
        bound = math.sqrt(6.0 / (self.in_dim + self.out_dim))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _finish(self, h: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            h = h + self.bias
        return self.activation(h) if self.activation is not None else h

    def _check_x(self, x: torch.Tensor, num_nodes: int) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"x must have shape (N, {self.in_dim}), got {tuple(x.shape)}")
        if x.shape[0] != num_nodes:
            raise ValueError(f"x has {x.shape[0]} rows but the graph has {num_nodes} nodes")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_dim}, {self.out_dim})"


class DenseGCNLayer(_GCNBase):
    """GCN layer on a dense adjacency (see the module docstring).

    Args:
        in_dim, out_dim: :math:`F_{in}`, :math:`F_{out}`.
        bias: add a learnable bias (default True).
        add_self_loops: use :math:`A + I` (default True).
        activation: :math:`\\sigma`, e.g. ``torch.relu`` (default None: linear, like ``GCNConv``).
    """

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        self._check_x(x, adj.shape[0])
        norm = gcn_norm_dense(adj.to(x.dtype), self.add_self_loops)   # (N, N)
        return self._finish(norm @ (x @ self.weight))                  # (N, F_out)


class SparseGCNLayer(_GCNBase):
    """GCN layer on a sparse graph (see the module docstring).

    ``forward(x, graph)`` takes either an ``edge_index`` ``(2, E)`` (normalised on every
    call) or the sparse ``(N, N)`` matrix returned by :func:`gcn_norm_sparse`, computed
    once for a fixed graph as in transductive recommendation.

    Args:
        in_dim, out_dim: :math:`F_{in}`, :math:`F_{out}`.
        bias: add a learnable bias (default True).
        add_self_loops: use :math:`A + I` when normalising an ``edge_index`` (default True).
        activation: :math:`\\sigma` (default None).
    """

    def forward(self, x: torch.Tensor, graph: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        if graph.is_sparse or graph.layout == torch.sparse_csr:
            norm = graph
            if tuple(norm.shape) != (x.shape[0], x.shape[0]):
                raise ValueError(f"the normalised adjacency has shape {tuple(norm.shape)}, "
                                 f"expected ({x.shape[0]}, {x.shape[0]}) for x with "
                                 f"{x.shape[0]} rows")
        else:
            norm = gcn_norm_sparse(graph, x.shape[0], edge_weight, self.add_self_loops, x.dtype)
        self._check_x(x, norm.shape[0])
        return self._finish(torch.sparse.mm(norm, x @ self.weight))            # (N, F_out)
