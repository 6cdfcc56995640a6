r"""Similarity kernels of neighbourhood collaborative filtering: cosine, Pearson, adjusted
cosine, cosine of any centred values over co-rated rows, shrinkage, and the top-``k``
neighbours of every column computed in blocks of rows.

All functions compare the **columns** of a ``(n_rows, n_cols)`` matrix (items: pass
:math:`R`; users: pass :math:`R^\top`); the formulas are in
:mod:`recsys_ref.models.classic.knn`. The dense functions return ``(n_cols, n_cols)``
arrays (``8 n_cols^2`` bytes); :func:`top_k_cosine` never builds one.

Shapes:
    - dense similarity functions: sparse ``(n_rows, n_cols)`` -> dense ``(n_cols, n_cols)``
    - ``top_k_cosine``: sparse ``(n_rows, n_cols)`` -> sparse ``(n_cols, n_cols)``, at most
      ``k`` entries a row

Used in: ``chapters/02_neighbourhood_cf`` (through
:class:`~recsys_ref.models.classic.knn.ItemKNN` and
:class:`~recsys_ref.models.classic.knn.UserKNN`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "SIMILARITIES",
    "cosine_similarity",
    "co_counts",
    "corated_cosine",
    "pearson_similarity",
    "adjusted_cosine_similarity",
    "shrink",
    "keep_top_k",
    "top_k_cosine",
    "top_k_mask",
    "safe_divide",
]

#: similarity names accepted by :class:`~recsys_ref.models.classic.knn.ItemKNN` /
#: :class:`~recsys_ref.models.classic.knn.UserKNN`
SIMILARITIES = ("cosine", "pearson", "adjusted_cosine", "pearson_baseline")

def _as_csr(X, name: str = "X") -> sp.csr_matrix:
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (rows, cols), got shape {X.shape}")
        X = sp.csr_matrix(X)
    if not sp.issparse(X):
        raise ValueError(f"{name} must be a scipy sparse matrix or a 2-D numpy array, "
                         f"got {type(X).__name__}")
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)  # never modify the caller's matrix
    X.eliminate_zeros()
    return X


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, 0 elsewhere (float64)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def cosine_similarity(X: sp.spmatrix | np.ndarray) -> np.ndarray:
    r"""Cosine similarity between the **columns** of ``X`` (missing entries count as 0).

    :math:`S = D^{-1/2} X^\top X D^{-1/2}` with :math:`D = \mathrm{diag}(X^\top X)`; a
    zero column has similarity 0 with everything (itself included). Equals
    ``sklearn.metrics.pairwise.cosine_similarity(X.T)`` on non-zero columns.

    Args:
        X: ``(n_rows, n_cols)`` sparse or dense.

    Returns:
        dense ``(n_cols, n_cols)`` float64 array.
    """
    X = _as_csr(X)
    G = (X.T @ X).toarray()  # (n_cols, n_cols): the one sparse product
    norms = np.sqrt(np.diag(G))
    return safe_divide(G, np.outer(norms, norms))


def co_counts(X: sp.spmatrix | np.ndarray) -> np.ndarray:
    r"""Co-occurrence counts :math:`n_{ij} = (B^\top B)_{ij}`: rows non-zero in both
    column :math:`i` and column :math:`j` (dense ``(n_cols, n_cols)``)."""
    B = _as_csr(X)
    B.data[:] = 1.0
    return (B.T @ B).toarray()


def corated_cosine(C: sp.spmatrix | np.ndarray,
                   mask: sp.spmatrix | np.ndarray | None = None) -> np.ndarray:
    r"""Cosine between columns of ``C`` with both sums restricted to co-rated rows.

    .. math::

        s_{ij} = \frac{(C^\top C)_{ij}}{\sqrt{((C\circ C)^\top B)_{ij}\,
                                              ((C\circ C)^\top B)_{ji}}}

    Args:
        C: ``(n_rows, n_cols)`` centred values, stored only where observed.
        mask: ``(n_rows, n_cols)`` observed-entry mask :math:`B`. Pass it when a centred
            value can be exactly 0 (a rating equal to its mean); default: ``C != 0``.

    Returns:
        dense ``(n_cols, n_cols)`` float64 array in :math:`[-1, 1]`.
    """
    C = _as_csr(C, "C")
    if mask is None:
        B = C.copy()
        B.data[:] = 1.0
    else:
        B = _as_csr(mask, "mask")
        B.data[:] = 1.0
        if B.shape != C.shape:
            raise ValueError(f"mask shape {B.shape} differs from C shape {C.shape}")
    num = (C.T @ C).toarray()
    sq = C.multiply(C).tocsr()
    den = (sq.T @ B).toarray()  # den[i, j] = sum over co-rated rows of c_i^2
    return np.clip(safe_divide(num, np.sqrt(den * den.T)), -1.0, 1.0)


def _centre(X: sp.csr_matrix, axis: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Subtract the mean over observed entries along rows (axis=1) or columns (axis=0).

    Returns the centred values and the observed mask (kept apart: a centred value can be 0).
    """
    B = X.copy()
    B.data[:] = 1.0
    counts = np.asarray(B.sum(axis)).ravel()
    means = safe_divide(np.asarray(X.sum(axis)).ravel(), counts)
    coo = X.tocoo()
    idx = coo.row if axis == 1 else coo.col
    C = sp.csr_matrix((coo.data - means[idx], (coo.row, coo.col)), shape=X.shape)
    return C, B


def pearson_similarity(X: sp.spmatrix | np.ndarray) -> np.ndarray:
    r"""Pearson correlation between columns over co-rated rows, each column centred by
    its own mean over observed entries (:math:`c_{ui} = r_{ui} - \bar r_i`)."""
    C, B = _centre(_as_csr(X), axis=0)
    return corated_cosine(C, B)


def adjusted_cosine_similarity(X: sp.spmatrix | np.ndarray) -> np.ndarray:
    r"""Adjusted cosine (Sarwar et al. 2001): every row centred by its own mean over
    observed entries (:math:`c_{ui} = r_{ui} - \bar r_u`), cosine over co-rated rows."""
    C, B = _centre(_as_csr(X), axis=1)
    return corated_cosine(C, B)


def shrink(S: np.ndarray, counts: np.ndarray, shrinkage: float) -> np.ndarray:
    r""":math:`s_{ij}\, n_{ij} / (n_{ij} + \lambda)`: similarities from few co-raters
    are pulled towards 0. ``shrinkage = 0`` returns ``S`` unchanged (a copy)."""
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
    if S.shape != counts.shape:
        raise ValueError(f"similarity shape {S.shape} differs from counts shape {counts.shape}")
    if shrinkage == 0:
        return S.copy()
    return S * counts / (counts + shrinkage)


def top_k_mask(S: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` largest entries of every row of ``S`` (ties: lower column
    first), in ``O(rows * cols)``: the k-th largest value ``t`` of a row is found with
    ``np.partition``; every entry above ``t`` is kept, and entries equal to ``t`` fill the
    remaining places from the left. Equals the first ``k`` of a stable descending sort."""
    n_cols = S.shape[1]
    if k >= n_cols:
        return np.ones(S.shape, dtype=bool)
    kth = -np.partition(-S, k - 1, axis=1)[:, k - 1:k]          # (rows, 1)
    above = S > kth
    tied = S == kth
    room = k - above.sum(1, keepdims=True)                       # places left for ties
    return above | (tied & (np.cumsum(tied, axis=1) <= room))


def keep_top_k(S: np.ndarray, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row of ``S`` (ties: lower column first),
    drop the rest and non-positive values; returns a CSR matrix."""
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k}")
    keep = top_k_mask(S, k) & (S > 0)
    return sp.csr_matrix(np.where(keep, S, 0.0))


def top_k_cosine(X: sp.spmatrix | np.ndarray, k: int, shrinkage: float = 0.0,
                 block_size: int | None = None) -> sp.csr_matrix:
    r"""The ``k`` most similar columns of every column of a binary ``X``, as sparse CSR.

    Shrunk cosine :math:`s_{ij} = \frac{n_{ij}}{\sqrt{n_{ii} n_{jj}}}
    \frac{n_{ij}}{n_{ij} + \lambda}` with :math:`n = X^\top X` (co-occurrence counts),
    no self-similarity, then :func:`keep_top_k` per row. Computed ``block_size`` rows of
    :math:`S` at a time: the working memory is at most about eight dense
    ``block_size x n_cols`` arrays of 8-byte numbers, :math:`64\, b\, n` bytes
    (256 MB with the default :math:`b\,n \approx 2^{22}`, whatever ``n_cols``), plus the
    result, at most ``n_cols * k`` stored entries (12 bytes each); the full
    ``n_cols x n_cols`` matrix never exists. The result equals
    ``keep_top_k(shrink(cosine_similarity(X), co_counts(X), shrinkage), k)`` with a zero
    diagonal, entry for entry.

    Args:
        X: ``(n_rows, n_cols)`` binary (nonzero = interaction).
        k: neighbours kept per column.
        shrinkage: :math:`\lambda \ge 0`.
        block_size: rows of :math:`S` per block (default ``max(1, 2**22 // n_cols)``).

    Returns:
        CSR ``(n_cols, n_cols)``: row ``i`` holds the (positive) similarities of
        column ``i``'s ``k`` nearest columns.
    """
    if not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
    B = _as_csr(X)
    B.data[:] = 1.0
    n = B.shape[1]
    if block_size is None:
        block_size = max(1, 2**22 // max(n, 1))
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    Bt = B.T.tocsr()                                    # (n, n_rows)
    norms = np.sqrt(np.asarray(B.sum(0)).ravel())       # sqrt(n_ii), (n,)
    indptr, indices, data = [np.zeros(1, dtype=np.int64)], [], []
    for start in range(0, n, block_size):
        rows = np.arange(start, min(start + block_size, n))
        G = (Bt[rows] @ B).toarray()                   # (b, n) co-counts n_ij
        S = safe_divide(G, norms[rows, None] * norms[None, :])
        if shrinkage > 0:
            S = S * G / (G + shrinkage)
        S[np.arange(len(rows)), rows] = 0.0             # never its own neighbour
        keep = top_k_mask(S, k) & (S > 0)
        r, c = np.nonzero(keep)                         # row-major: sorted columns per row
        indices.append(c)
        data.append(S[r, c])
        indptr.append(indptr[-1][-1] + np.cumsum(np.bincount(r, minlength=len(rows))))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices),
                          np.concatenate(indptr)), shape=(n, n))
