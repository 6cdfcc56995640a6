r"""GF-CF: collaborative filtering as a training-free graph filter (Shen et al., CIKM 2021,
"How Powerful is Graph Convolution for Recommendation?").

**The graph-signal view of LightGCN.** A user's history is a signal on the items,
:math:`\mathbf r_u \in \{0,1\}^I`; recommending is *smoothing* that signal over the
item–item graph so that items close to what she chose light up. Normalise the
interactions as LightGCN does,

.. math::

    \tilde R = D_U^{-1/2} R\, D_I^{-1/2}, \qquad
    \tilde P = \tilde R^\top \tilde R
             = \sum_{k} \sigma_k^2\, \mathbf v_k \mathbf v_k^\top ,

where :math:`\tilde R = \sum_k \sigma_k \mathbf u_k \mathbf v_k^\top` is the SVD
(:math:`1 = \sigma_1 \ge \sigma_2 \ge \dots \ge 0`). :math:`\tilde P` is the normalised
item–item graph (items linked through common users): two hops on LightGCN's
:math:`\tilde A`, and its eigenvectors :math:`\mathbf v_k` are the graph's Fourier basis,
ordered from smooth (large :math:`\sigma_k^2`, low frequency) to rough. LightGCN's
propagation is a *low-pass filter* in this basis: the eigenvalues :math:`\lambda` of
:math:`\tilde A` lie in :math:`[-1, 1]` (they are the :math:`\pm\sigma_k`), and
:math:`L` layers averaged multiply an eigencomponent of the embeddings by
:math:`\frac{1}{L+1}\sum_{l=0}^{L} \lambda^l`, which is 1 at :math:`\lambda = 1` (the
smoothest signal, frequency :math:`1 - \lambda = 0`) and smaller for every other
eigenvalue; training the embeddings only decides
how the components that pass are used. Shen et al. show that a filter written down
directly, with nothing to learn, competes with the trained model:

.. math::

    \hat{\mathbf y}_u = \underbrace{\mathbf r_u \tilde P}_{\text{linear filter}}
        + \alpha\, \underbrace{\mathbf r_u D_I^{-1/2} V_k V_k^\top D_I^{1/2}}
          _{\text{ideal low-pass filter}} ,

where :math:`V_k` holds the top-:math:`k` right singular vectors of :math:`\tilde R`.
The linear term passes each frequency with gain :math:`\sigma^2` (the two-hop smoothing
of item-kNN with degree normalisation); the ideal term passes the :math:`k` smoothest
components with gain 1 and removes the rest, with :math:`D_I^{\mp 1/2}` taking the
signal into the normalised domain and back. :math:`\alpha` mixes them (the paper uses
0.3 and :math:`k = 256` on its larger datasets).

The top-:math:`k` SVD is SciPy's ``svds`` with the PROPACK solver (Lanczos
bidiagonalisation, a starting vector drawn from ``seed``, so the fit is deterministic);
only :math:`V_k` is kept, sorted by singular value. Neither :math:`\tilde P` nor the
projector is formed: scores are the products :math:`((\mathbf r_u \tilde R^\top)\,
\tilde R)` (sparse) and :math:`((\mathbf r_u D_I^{-1/2} V_k)\, V_k^\top) D_I^{1/2}`
(dense, :math:`O(Ik)` memory).

Shapes:
    - ``norm_interactions`` :math:`\tilde R`: sparse ``(U, I)``;
      ``components`` :math:`V_k`: ``(I, k)``; ``singular_values``: ``(k,)``
    - ``score(users (N,))`` -> ``(N, I)``

**Fold-in.** Nothing in the filter depends on one user beyond her row (the degrees and
:math:`V_k` are the training graph's), so a user unseen at fit time with items
:math:`\mathbf x` is scored by the same formula with :math:`\mathbf r_u = \mathbf x`.

Used in: ``chapters/06_graph_convolution``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds

from recsys_ref.graph.adjacency import normalized_interactions
from recsys_ref.models.base import Recommender

__all__ = ["GFCF", "top_right_singular_vectors"]


def top_right_singular_vectors(mat: sp.spmatrix, k: int,
                               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest singular values of ``mat`` (descending) and their right singular
    vectors ``(n_cols, k)`` (PROPACK; ARPACK when this SciPy has PROPACK switched off)."""
    v0 = np.random.default_rng(seed).standard_normal(mat.shape[0])
    try:
        _, s, vt = svds(mat, k=k, v0=v0, solver="propack")
    except ValueError as err:                   # SciPy < 1.12 needs SCIPY_USE_PROPACK
        if "PROPACK" not in str(err).upper() or k >= min(mat.shape):
            raise
        v0 = np.random.default_rng(seed).standard_normal(min(mat.shape))
        _, s, vt = svds(mat, k=k, v0=v0, solver="arpack")
    order = np.argsort(-s, kind="stable")
    return s[order], vt[order].T


class GFCF(Recommender):
    r"""GF-CF (Shen et al. 2021): linear plus ideal low-pass graph filter, no training.

    Args:
        alpha: weight :math:`\alpha` of the ideal low-pass term (default 0.3, the paper's;
            0 keeps only the linear filter :math:`\mathbf r_u \tilde R^\top \tilde R`).
        num_components: :math:`k`, the pass band of the ideal filter (default 64, chosen
            below; the paper uses 256); at most ``min(num_users, num_items)``.
        seed: seeds the starting vector of the SVD solver.

    Only which pairs occur is used: a ``rating``/``weight`` column is ignored.

    Defaults chosen on the validation part of the Recommenders ML-100K split, seed 42
    (train without validation, ranked for the validation rows), nDCG@10 over
    ``alpha`` in {0, 0.1, 0.3, 0.5, 1} x ``num_components`` in {32, 64, 128, 256, 512},
    then {0.2, 0.3, 0.4, 0.5} x {48, 64, 80, 96}: best ``alpha=0.3, num_components=64``
    (.1825; alpha 0.2 with 80: .1820, 0.5 with 64: .1818; the linear filter alone,
    alpha 0: .1619; the paper's 0.3 with 256: .1536, with 512: .1454). On this small
    catalogue a narrow pass band is best: past about 64 components the ideal filter
    passes, at full gain, components that the linear filter damps.
    """

    name = "gfcf"

    def __init__(self, alpha: float = 0.3, num_components: int = 64, seed: int = 0):
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        if not isinstance(num_components, (int, np.integer)) or num_components < 1:
            raise ValueError(f"num_components must be a positive integer, got "
                             f"{num_components!r}")
        self.alpha, self.num_components, self.seed = float(alpha), int(num_components), seed
        self.norm_interactions: sp.csr_matrix | None = None
        self.item_degree: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.singular_values: np.ndarray | None = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "GFCF":
        mat = self._store_train(train, num_users, num_items)
        if self.alpha > 0 and self.num_components > min(num_users, num_items):
            raise ValueError(
                f"num_components={self.num_components} exceeds min(num_users, num_items)="
                f"{min(num_users, num_items)}, the rank of the interaction matrix at most; "
                "lower num_components")
        self.norm_interactions, _, self.item_degree = normalized_interactions(mat)
        self.components = self.singular_values = None
        if self.alpha > 0:
            self.singular_values, self.components = top_right_singular_vectors(
                self.norm_interactions, self.num_components, self.seed)
        return self

    def _filter(self, rows: sp.csr_matrix) -> np.ndarray:
        """:math:`\\mathbf r \\tilde R^\\top \\tilde R + \\alpha\\, \\mathbf r D_I^{-1/2}
        V V^\\top D_I^{1/2}` for the rows ``(N, I)`` of a binary matrix."""
        r_norm = self.norm_interactions
        scores = np.asarray(((rows @ r_norm.T) @ r_norm).toarray())         # (N, I)
        if self.alpha > 0:
            deg = self.item_degree
            inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
            low = np.asarray(rows @ (inv_sqrt[:, None] * self.components))  # (N, k)
            scores += self.alpha * (low @ self.components.T) * np.sqrt(deg)[None, :]
        return scores

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users).numpy()
        rows = self.train_matrix[users].astype(np.float64)
        return torch.from_numpy(self._filter(rows)).float()

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        """The same filter applied to the new user's binary row (``ratings`` unused)."""
        row = sp.csr_matrix((np.ones(len(items)), (np.zeros(len(items), np.int64), items)),
                            shape=(1, self.num_items))
        return torch.from_numpy(self._filter(row)[0]).float()
