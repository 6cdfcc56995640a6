r"""Matrix factorisation as an embedding of the user–item graph: truncated SVD of the
interaction matrix, binary (PureSVD, Cremonesi et al., 2010) or normalised by degrees
(the spectral view that graph convolution builds on; Shen et al., 2021).

With :math:`R \in \{0,1\}^{U \times I}` the training interactions and :math:`D_U, D_I` the
user and item degree matrices, factorise

.. math::

    \tilde R = \begin{cases} R & \text{(binary)} \\
                             D_U^{-1/2} R\, D_I^{-1/2} & \text{(normalised)} \end{cases}
    \;\approx\; U_d \Sigma_d V_d^\top ,

keeping the :math:`d` largest singular values. :math:`\tilde R` with normalisation is the
off-diagonal block of the normalised adjacency :math:`\tilde A` of
:mod:`recsys_ref.graph.adjacency`, so its singular values are the positive eigenvalues of
:math:`\tilde A` and :math:`[U_d; V_d]/\sqrt 2` its leading eigenvectors: the SVD *is* a
spectral embedding of the bipartite graph. Embeddings split :math:`\Sigma` evenly,

.. math::

    \mathbf{E}_U = U_d \Sigma_d^{1/2}, \qquad
    \mathbf{E}_I = D_I^{s} V_d \Sigma_d^{1/2}, \qquad \hat y_{ui} = \mathbf{e}_u^\top \mathbf{e}_i ,

with :math:`s = 0` (binary) or :math:`s = 1/2` (normalised: undoing the item
normalisation gives back a reconstruction of :math:`D_U^{-1/2} R`, whose row ranking
equals that of :math:`R`'s reconstruction; the user factor does not change a user's
ranking). With :math:`d = \mathrm{rank}(R)` the binary scores reproduce :math:`R` exactly.

Shapes:
    - ``user_emb``: ``(U, d)``, ``item_emb``: ``(I, d)``, ``singular_values``: ``(d,)``
    - ``score(users (B,))`` -> ``(B, I)``

**Fold-in** of a new user with interactions :math:`\mathbf x \in \{0,1\}^I`: the
user side of the SVD is :math:`U_d = \tilde R V_d \Sigma_d^{-1}`, so the new user's
embedding is :math:`\tilde{\mathbf x} V_d \Sigma_d^{-1/2}` with :math:`\tilde{\mathbf x}
= \mathbf x` (binary) or :math:`|\mathbf x|^{-1/2} \mathbf x D_I^{-1/2}` (normalised);
for a training user it gives back exactly her row of ``user_emb``. Binary scores are
PureSVD's :math:`\mathbf x V_d V_d^\top`.

Used in: ``chapters/04_matrix_factorisation``; the spectral view returns in
``chapters/05_graph_embedding`` and ``chapters/06_graph_convolution``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds

from recsys_ref.graph.adjacency import normalized_interactions
from recsys_ref.models.base import Recommender

__all__ = ["SVDEmbedding"]


class SVDEmbedding(Recommender):
    """Truncated-SVD embedding recommender.

    Args:
        embed_dim: number of singular triplets :math:`d` (default 32, chapter 04's choice
            on ML-100K); must be below ``min(num_users, num_items)``.
        matrix: ``"normalized"`` (degree-normalised, the bipartite block of
            :math:`\\tilde A`; the default, chapter 04's choice) or ``"binary"`` (PureSVD).
        seed: seeds the starting vector of the ARPACK solver (results are deterministic).

    Only which pairs occur is used: a ``rating``/``weight`` column is ignored.
    """

    name = "svd"

    def __init__(self, embed_dim: int = 32, matrix: str = "normalized", seed: int = 0):
        if matrix not in ("binary", "normalized"):
            raise ValueError(f"matrix must be 'binary' or 'normalized', got {matrix!r}")
        if not isinstance(embed_dim, (int, np.integer)) or embed_dim < 1:
            raise ValueError(f"embed_dim must be a positive integer, got {embed_dim!r}")
        self.embed_dim, self.matrix, self.seed = int(embed_dim), matrix, seed
        self.user_emb = self.item_emb = self.singular_values = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "SVDEmbedding":
        mat = self._store_train(train, num_users, num_items).astype(np.float64)
        if self.embed_dim >= min(num_users, num_items):
            raise ValueError(
                f"embed_dim={self.embed_dim} must be smaller than min(num_users, num_items)="
                f"{min(num_users, num_items)} for a truncated SVD; lower embed_dim")
        if self.matrix == "normalized":
            mat, _, item_deg = normalized_interactions(mat)
            item_scale = np.sqrt(item_deg)
        else:
            item_scale = np.ones(num_items)
        v0 = np.random.default_rng(self.seed).standard_normal(min(mat.shape))
        u, s, vt = svds(mat, k=self.embed_dim, v0=v0)
        order = np.argsort(-s, kind="stable")                       # largest first
        u, s, vt = u[:, order], s[order], vt[order]
        # fix the sign of each singular pair (largest |entry| of v positive): deterministic
        sign = np.sign(vt[np.arange(len(s)), np.abs(vt).argmax(1)])
        sign[sign == 0] = 1.0
        u, vt = u * sign, vt * sign[:, None]
        root = np.sqrt(s)
        self.singular_values = torch.as_tensor(s.copy())
        self.user_emb = torch.as_tensor(u * root)                              # (U, d)
        self.item_emb = torch.as_tensor(item_scale[:, None] * vt.T * root)     # (I, d)
        return self

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users)
        return (self.user_emb[users] @ self.item_emb.T).float()

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        s = self.singular_values
        x = torch.zeros(self.num_items, dtype=torch.float64)
        x[torch.as_tensor(items)] = 1.0
        if self.matrix == "normalized":
            # item_emb = D_I^{1/2} V S^{1/2}, so x~ V S^{-1/2} = |x|^{-1/2} (x / D_I) item_emb / s
            deg = torch.as_tensor(np.asarray(self.train_matrix.sum(0), dtype=np.float64).ravel())
            x = torch.where(deg > 0, x / deg.clamp(min=1.0), 0.0) / max(len(items), 1) ** 0.5
        user_emb = (x @ self.item_emb) / s                                # (d,)
        return (self.item_emb @ user_emb).float()
