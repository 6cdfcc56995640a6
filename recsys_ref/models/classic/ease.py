r"""EASE\ :sup:`R`: an embarrassingly shallow linear autoencoder (Steck, WWW 2019).

With :math:`X \in \{0,1\}^{U \times I}` the training interactions, EASE learns an item–item
weight matrix :math:`B` that reconstructs every user's row from the *other* items she
interacted with:

.. math::

    \min_B \; \lVert X - X B \rVert_F^2 + \lambda \lVert B \rVert_F^2
    \quad \text{subject to} \quad \operatorname{diag}(B) = 0 .

The constraint forbids the trivial answer :math:`B = I` (an item predicting itself).
Setting the gradient of the Lagrangian to zero gives a closed form: with the
regularised Gram matrix and its inverse

.. math::

    G = X^\top X + \lambda I, \qquad P = G^{-1}, \qquad
    B = I - P \,\operatorname{diag}\!\big(1 / \operatorname{diag}(P)\big),

i.e. :math:`B_{ij} = -P_{ij} / P_{jj}` off the diagonal and :math:`B_{jj} = 0`. A user's
scores are her row times :math:`B`, :math:`\hat{\mathbf y}_u = \mathbf x_u B`. Unlike the
item-kNN of chapter 02, whose similarities are computed pair by pair, :math:`B` is a
regression on *all* items at once: :math:`P` accounts for the overlap between the items a
user already has, and :math:`B` has negative weights (items that substitute each other).
``nonnegative=True`` keeps only :math:`\max(B, 0)` (the ``posB`` option of cornac's
``EASE``, which it turns on by default).

Cost: one dense :math:`I \times I` inverse, :math:`O(I^3)` time and :math:`8 I^2` bytes
(float64) for :math:`B`, and :math:`P` besides while fitting: 23 MB for ML-100K's 1,682
items, 2.5 GB for 17,600. Above :data:`MAX_ITEMS` items ``fit`` refuses and names models
whose memory grows with the interactions instead (:class:`~recsys_ref.models.classic.
knn.ItemKNN` keeps the top-:math:`k` neighbours, :class:`~recsys_ref.models.classic.wrmf.
WRMF` and :class:`~recsys_ref.models.graph.gfcf.GFCF` low-rank factors).

Shapes:
    - ``B``: ``(I, I)`` float64 tensor, zero diagonal
    - ``score(users (N,))`` -> ``(N, I)``

**Fold-in.** :math:`B` does not depend on any user once fitted, so a user unseen at fit
time with interactions :math:`\mathbf x` is scored exactly as a training user:
:math:`\mathbf x B`.

Used in: ``chapters/02_neighbourhood_cf`` (next to item-kNN).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from recsys_ref.models.base import Recommender

__all__ = ["EASE", "MAX_ITEMS", "ease_weights"]

#: largest catalogue ``EASE.fit`` accepts (``B`` and ``P``: 2 x 7.2 GB in float64)
MAX_ITEMS = 30_000


def ease_weights(gram: np.ndarray, l2: float, nonnegative: bool = False) -> np.ndarray:
    r"""EASE's closed form :math:`B = I - P\,\mathrm{diag}(1/\mathrm{diag}(P))`,
    :math:`P = (X^\top X + \lambda I)^{-1}`, from the Gram matrix :math:`X^\top X`.

    Args:
        gram: ``(I, I)`` :math:`X^\top X` (left unchanged).
        l2: :math:`\lambda > 0`.
        nonnegative: clip negative weights to 0 (cornac's ``posB``).

    Returns:
        ``(I, I)`` float64 :math:`B` with a zero diagonal.
    """
    g = np.array(gram, dtype=np.float64)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / -np.diag(p)[None, :]            # B_ij = -P_ij / P_jj
    np.fill_diagonal(b, 0.0)
    if nonnegative:
        np.maximum(b, 0.0, out=b)
    return b


class EASE(Recommender):
    r"""EASE\ :sup:`R` (Steck, 2019): closed-form item–item linear autoencoder.

    Args:
        l2: :math:`\lambda`, the L2 penalty on :math:`B` (default 400.0, chosen below).
            Must be positive.
        nonnegative: keep only the positive weights of :math:`B` (default ``False``,
            Steck's model; ``True`` is cornac's default ``posB=True``).
        seed: unused (the closed form is deterministic), kept for the common interface.

    Only which pairs occur is used: a ``rating``/``weight`` column is ignored.

    Defaults chosen on the validation part of the Recommenders ML-100K split, seed 42
    (train without validation, ranked for the validation rows), nDCG@10 over
    ``l2`` in {50, 100, 200, 300, 400, 500, 700, 1000, 1500} x ``nonnegative`` in
    {False, True}: best ``l2=400, nonnegative=False`` (.1814; 500: .1804, 700: .1803,
    200: .1781, 1500: .1746, 50: .1679); ``nonnegative=True`` is lower at every
    ``l2`` (best .1770 at 500).
    """

    name = "ease"

    def __init__(self, l2: float = 400.0, nonnegative: bool = False, seed: int = 0):
        if not np.isfinite(l2) or l2 <= 0:
            raise ValueError(f"l2 must be a positive number (the ridge that makes X^T X + "
                             f"l2 I invertible), got {l2!r}")
        self.l2, self.nonnegative, self.seed = float(l2), bool(nonnegative), seed
        self.B: torch.Tensor | None = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "EASE":
        if num_items > MAX_ITEMS:
            raise ValueError(
                f"EASE needs two dense {num_items}x{num_items} float64 matrices "
                f"({2 * 8 * num_items ** 2 / 1e9:.1f} GB) and refuses more than {MAX_ITEMS:,} "
                "items; use ItemKNN (sparse top-k neighbours), WRMF or GFCF (low-rank) "
                "instead, or keep the most popular items")
        x = self._store_train(train, num_users, num_items).astype(np.float64)
        gram = (x.T @ x).toarray()                                    # (I, I)
        self.B = torch.from_numpy(ease_weights(gram, self.l2, self.nonnegative))
        return self

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users).numpy()
        rows = self.train_matrix[users].astype(np.float64)            # (N, I) sparse
        return torch.from_numpy(np.asarray(rows @ self.B.numpy())).float()

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        """:math:`\\mathbf x B` for the binary row of the new user (``ratings`` unused)."""
        return self.B[torch.as_tensor(items)].sum(0).float()
