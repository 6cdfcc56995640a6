r"""The user–item bipartite graph and its normalised adjacency.

Users are nodes ``0 .. U-1`` and items nodes ``U .. U+I-1`` of one graph with
:math:`N = U + I` nodes; every training interaction :math:`(u, i)` gives the two directed
edges :math:`u \to U+i` and :math:`U+i \to u`. The adjacency matrix is

.. math::

    A = \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix}, \qquad
    \tilde A = D^{-1/2} A D^{-1/2}, \quad \tilde A_{ij} = \frac{1}{\sqrt{d_i d_j}},

with :math:`R \in \{0,1\}^{U \times I}` the interaction matrix and :math:`D` the diagonal
degree matrix (isolated nodes get weight 0 instead of a division by zero). This
:math:`\tilde A` is the propagation matrix of GCN without self-loops, NGCF and LightGCN.

Shapes:
    - ``edge_index``: ``(2, 2|E|)``, PyG's COO convention (row 0 = source, row 1 = target)
    - ``norm_adj``: sparse ``(N, N)`` tensor

Used in: ``chapters/05_graph_embedding``, ``06_graph_convolution``, ``07_graph_attention``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

__all__ = ["bipartite_edge_index", "degree", "normalized_adjacency", "scipy_normalized_adjacency"]


def bipartite_edge_index(train: pd.DataFrame | np.ndarray, num_users: int, num_items: int) -> torch.Tensor:
    """Both directions of every ``(user, item)`` pair, items shifted by ``num_users``.

    Args:
        train: frame with ``user``, ``item`` columns, or an ``(E, 2)`` array of pairs.
        num_users, num_items: index space sizes.

    Returns:
        ``(2, 2E)`` LongTensor: first the ``E`` user->item edges, then the ``E``
        item->user edges. Duplicated pairs are kept once.
    """
    if isinstance(train, pd.DataFrame):
        for col in ("user", "item"):
            if col not in train.columns:
                raise ValueError(f"interaction frame lacks column {col!r}")
        pairs = train[["user", "item"]].to_numpy()
    else:
        pairs = np.asarray(train)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(f"pairs must have shape (E, 2), got {pairs.shape}")
    if len(pairs) == 0:
        raise ValueError("no interactions: the graph would have no edges")
    if pairs[:, 0].min() < 0 or pairs[:, 0].max() >= num_users:
        raise ValueError(f"user index outside 0..{num_users - 1}")
    if pairs[:, 1].min() < 0 or pairs[:, 1].max() >= num_items:
        raise ValueError(f"item index outside 0..{num_items - 1}")
    pairs = np.unique(pairs.astype(np.int64), axis=0)
    u = torch.as_tensor(pairs[:, 0])
    i = torch.as_tensor(pairs[:, 1]) + num_users
    return torch.stack([torch.cat([u, i]), torch.cat([i, u])])


def degree(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Number of edges leaving each node, ``(N,)`` float."""
    return torch.bincount(edge_index[0], minlength=num_nodes).to(torch.float32)


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int,
                         add_self_loops: bool = False) -> torch.Tensor:
    r"""Sparse :math:`D^{-1/2} (A [+ I]) D^{-1/2}` as a coalesced ``torch.sparse_coo`` tensor.

    With ``add_self_loops=True`` this is exactly the matrix PyG's ``GCNConv`` applies
    (``normalize=True``, unit edge weights).
    """
    if add_self_loops:
        loops = torch.arange(num_nodes, dtype=edge_index.dtype)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], 1)
    deg = degree(edge_index, num_nodes)
    inv_sqrt = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    values = inv_sqrt[edge_index[0]] * inv_sqrt[edge_index[1]]
    return torch.sparse_coo_tensor(edge_index, values, (num_nodes, num_nodes),
                                   check_invariants=False).coalesce()


def scipy_normalized_adjacency(train: pd.DataFrame, num_users: int, num_items: int) -> sp.csr_matrix:
    """The same :math:`\\tilde A` as a SciPy CSR matrix (for spectral methods / SVD)."""
    ei = bipartite_edge_index(train, num_users, num_items).numpy()
    n = num_users + num_items
    a = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(n, n))
    deg = np.asarray(a.sum(1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    d = sp.diags(inv)
    return (d @ a @ d).tocsr()
