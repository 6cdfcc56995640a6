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

Used in: ``chapters/04_matrix_factorisation`` (the SciPy version), ``05_graph_embedding``,
``06_graph_convolution``, ``07_graphsage_sampling``, ``08_graph_attention``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

__all__ = ["bipartite_edge_index", "degree", "normalized_adjacency", "degree_scale",
           "normalized_interactions", "scipy_normalized_adjacency"]


def bipartite_edge_index(train: pd.DataFrame | np.ndarray, num_users: int,
                         num_items: int) -> torch.Tensor:
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


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int, add_self_loops: bool = False,
                         edge_weight: torch.Tensor | None = None,
                         dtype: torch.dtype = torch.float32,
                         exponent: float = 0.5) -> torch.Tensor:
    r"""Sparse :math:`D^{-1/2} (A [+ I]) D^{-1/2}` as a coalesced ``torch.sparse_coo`` tensor:
    the one normalised adjacency of the package (LightGCN, NGCF, GCN, GAT, the GAE chapter).

    Entry ``[i, j]`` is the weight of the edge :math:`j \to i` (PyG's convention: row 0 of
    ``edge_index`` the source, row 1 the target; ``norm @ x`` sums messages into targets),
    :math:`d_i` the (weighted) in-degree, and a node without edges gets 0 instead of a
    division by zero. For the symmetric user–item graph rows and columns are
    interchangeable. With ``add_self_loops=True`` a unit self-loop is added to every node
    that has none (PyG's ``add_remaining_self_loops``): exactly the matrix of
    ``GCNConv(normalize=True)``.

    Args:
        edge_index: ``(2, E)`` LongTensor.
        num_nodes: :math:`N`.
        add_self_loops: use :math:`A + I` (default False: LightGCN's :math:`\tilde A`).
        edge_weight: ``(E,)`` weights (default 1).
        dtype: dtype of the values (default float32).
        exponent: :math:`r` of the general form :math:`D^{-r} A D^{-(1-r)}`, entry
            :math:`a_{ij} / (d_i^{\,r} d_j^{\,1-r})`: 0.5 (default) the symmetric matrix
            above, 1 the row-normalised mean over in-neighbours, 0 each message divided by
            its sender's degree (the normalisation exponent of the architecture search of
            ``chapters/12_architecture_search``).
    """
    if not 0.0 <= exponent <= 1.0:
        raise ValueError(f"exponent must lie in [0, 1], got {exponent}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index has node ids outside 0..{num_nodes - 1}")
    src, dst = edge_index[0].long(), edge_index[1].long()
    w = (torch.ones(src.numel(), dtype=dtype, device=src.device) if edge_weight is None
         else edge_weight.to(dtype))
    if w.shape != src.shape:
        raise ValueError(f"edge_weight must have shape ({src.numel()},), got {tuple(w.shape)}")
    if add_self_loops:
        has_loop = torch.zeros(num_nodes, dtype=torch.bool, device=src.device)
        has_loop[src[src == dst]] = True
        loops = torch.arange(num_nodes, device=src.device)[~has_loop]
        src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
        w = torch.cat([w, torch.ones(loops.numel(), dtype=dtype, device=w.device)])
    deg = torch.zeros(num_nodes, dtype=dtype, device=w.device).index_add_(0, dst, w)
    if exponent == 0.5:
        inv_sqrt = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))  # d^{-1/2}
        values = inv_sqrt[dst] * w * inv_sqrt[src]
    else:
        safe = torch.where(deg > 0, deg, torch.ones_like(deg))
        values = torch.where((deg[dst] > 0) & (deg[src] > 0),
                             w * safe[dst].pow(-exponent) * safe[src].pow(exponent - 1.0),
                             torch.zeros_like(w))
    return torch.sparse_coo_tensor(torch.stack([dst, src]), values, (num_nodes, num_nodes),
                                   check_invariants=False).coalesce()


def degree_scale(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    r""":math:`\sqrt{d_i / d_j}` ``(E, 1)`` for every edge :math:`j \to i` (in-degrees,
    at least 1): with uniform attention :math:`1/d_i` it gives LightGCN's
    :math:`1/\sqrt{d_i d_j}` (the graph-attention recommender's ``degree_norm``)."""
    deg = torch.bincount(edge_index[1], minlength=num_nodes).clamp(min=1).float()
    src, dst = edge_index
    return (deg[dst] / deg[src]).sqrt().unsqueeze(-1)


def normalized_interactions(mat: sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    r""":math:`\tilde R = D_U^{-1/2} R D_I^{-1/2}` in float64, zero rows/columns left at zero:
    the off-diagonal block of :math:`\tilde A` (its singular values are the positive
    eigenvalues of :math:`\tilde A`).

    Returns:
        ``(normalised (U, I) CSR, user_degree (U,), item_degree (I,))``.
    """
    mat = sp.csr_matrix(mat, dtype=np.float64)
    du = np.asarray(mat.sum(1)).ravel()
    di = np.asarray(mat.sum(0)).ravel()
    iu = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1e-12)), 0.0)
    ii = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1e-12)), 0.0)
    return (sp.diags(iu) @ mat @ sp.diags(ii)).tocsr(), du, di


def scipy_normalized_adjacency(train: pd.DataFrame, num_users: int,
                               num_items: int) -> sp.csr_matrix:
    r"""The same :math:`\tilde A` as a SciPy CSR matrix (for spectral methods / SVD):
    :math:`\begin{pmatrix} 0 & \tilde R \\ \tilde R^\top & 0 \end{pmatrix}`."""
    ei = bipartite_edge_index(train, num_users, num_items).numpy()
    half = ei[0] < num_users                         # the user -> item direction
    r = sp.csr_matrix((np.ones(int(half.sum())), (ei[0, half], ei[1, half] - num_users)),
                      shape=(num_users, num_items))
    r_norm = normalized_interactions(r)[0]
    return sp.bmat([[None, r_norm], [r_norm.T, None]], format="csr")
