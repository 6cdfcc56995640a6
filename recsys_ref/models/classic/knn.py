r"""Neighbourhood collaborative filtering: user-based and item-based k-nearest neighbours,
with the baseline predictor of Koren (KDD 2008) for rating prediction.

**Similarities.** Let :math:`R \in \mathbb{R}^{U \times I}` be the sparse rating matrix
(zeros = not rated) and :math:`B = [R \ne 0]` its binary mask. For item-based kNN we
compare *columns* of :math:`R`; user-based kNN applies the same functions to
:math:`R^\top`. With :math:`U_{ij}` the users who rated both :math:`i` and :math:`j`:

.. math::

    \text{cosine:}\quad s_{ij} = \frac{\mathbf r_i^\top \mathbf r_j}
        {\lVert \mathbf r_i \rVert\, \lVert \mathbf r_j \rVert}
    \qquad\text{(missing = 0, as in scikit-learn)}

.. math::

    \text{co-rated cosine of centred values } c_{ui}:\quad
    s_{ij} = \frac{\sum_{u \in U_{ij}} c_{ui} c_{uj}}
        {\sqrt{\sum_{u \in U_{ij}} c_{ui}^2}\,\sqrt{\sum_{u \in U_{ij}} c_{uj}^2}}

with :math:`c_{ui} = r_{ui} - \bar r_i` (**Pearson**), :math:`c_{ui} = r_{ui} - \bar r_u`
(**adjusted cosine**, Sarwar et al. 2001) or :math:`c_{ui} = r_{ui} - b_{ui}`
(**Pearson-baseline**, Koren 2008). All three are sparse matrix products:
numerator :math:`C^\top C`, denominators :math:`(C \circ C)^\top B`, so the cost is
:math:`O(\sum_u |I_u|^2)` (pairs of items a user co-rated), not :math:`O(I^2 U)`.
**Shrinkage** damps similarities computed from few co-raters,
:math:`s_{ij} \leftarrow s_{ij}\, n_{ij} / (n_{ij} + \lambda)` with
:math:`n_{ij} = |U_{ij}| = (B^\top B)_{ij}`.

**Baseline** :math:`b_{ui} = \mu + b_u + b_i`, fitted by regularised least squares with a
few alternating sweeps (each sweep is the exact minimiser in one block):

.. math::

    b_i = \frac{\sum_{u \in R(i)} (r_{ui} - \mu - b_u)}{\lambda_i + |R(i)|}, \qquad
    b_u = \frac{\sum_{i \in R(u)} (r_{ui} - \mu - b_i)}{\lambda_u + |R(u)|}.

**Rating prediction** (item-based; user-based swaps the roles), with
:math:`N^k_i(u)` the :math:`k` items rated by :math:`u` most similar to :math:`i`:

.. math::

    \hat r_{ui} = b_{ui} + \frac{\sum_{j \in N^k_i(u)} s^+_{ij}\,(r_{uj} - b_{uj})}
                              {\sum_{j \in N^k_i(u)} s^+_{ij}},
    \qquad s^+ = \max(s, 0),

falling back to :math:`b_{ui}` when no neighbour has positive similarity (the
convention of the Surprise library's ``KNNBaseline``), clipped to the rating scale.

**Top-k ranking** (``implicit=True``): similarities on the binarised matrix
:math:`X = B`, each item keeps its :math:`k` most similar items :math:`N_k(i)`, and

.. math::

    \text{item-kNN: } s(u, i) = \sum_{j \in I_u \cap N_k(i)} s_{ij}, \qquad
    \text{user-kNN: } s(u, i) = \sum_{v \in N_k(u),\, i \in I_v} s_{uv},

i.e. ``scores = X @ S_k.T`` and ``scores = S_k @ X``: one sparse product each.

The similarity kernels live in :mod:`recsys_ref.models.classic.similarity` (re-exported
here).

Shapes:
    - ``score(users)``: ``(B,)`` -> ``(B, num_items)``
    - ``predict(users, items)``: ``(n,)``, ``(n,)`` -> ``(n,)`` ratings

Used in: ``chapters/02_neighbourhood_cf`` (and as the CF half of the hybrids in
``chapters/03_content_hybrid``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.models.base import Recommender, check_fit_frame
from recsys_ref.models.classic.similarity import (
    SIMILARITIES,
    safe_divide,
    top_k_mask,
    adjusted_cosine_similarity,
    co_counts,
    corated_cosine,
    cosine_similarity,
    keep_top_k,
    pearson_similarity,
    shrink,
    top_k_cosine,
)

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
    "fit_baselines",
    "Baseline",
    "ItemKNN",
    "UserKNN",
]



# ----------------------------------------------------------------------------- baseline
def fit_baselines(
    users: np.ndarray, items: np.ndarray, ratings: np.ndarray, num_users: int, num_items: int,
    reg_user: float = 15.0, reg_item: float = 10.0, num_iters: int = 10,
) -> tuple[float, np.ndarray, np.ndarray]:
    r"""Fit :math:`b_{ui} = \mu + b_u + b_i` by alternating regularised least squares.

    Each sweep sets every :math:`b_u` to its exact minimiser given :math:`b_i`, then every
    :math:`b_i` given :math:`b_u` (closed forms in the module docstring), so the
    regularised squared error never increases.

    Returns:
        ``(mu, b_user (num_users,), b_item (num_items,))``; unseen users/items get 0.
    """
    if reg_user < 0 or reg_item < 0:
        raise ValueError(f"regularisation must be >= 0, got reg_user={reg_user}, "
                         f"reg_item={reg_item}")
    if num_iters < 1:
        raise ValueError(f"num_iters must be >= 1, got {num_iters}")
    r = np.asarray(ratings, dtype=np.float64)
    mu = float(r.mean())
    n_u = np.bincount(users, minlength=num_users)
    n_i = np.bincount(items, minlength=num_items)
    b_u = np.zeros(num_users)
    b_i = np.zeros(num_items)
    for _ in range(num_iters):
        b_u = np.bincount(users, r - mu - b_i[items], minlength=num_users) / (reg_user + n_u)
        b_i = np.bincount(items, r - mu - b_u[users], minlength=num_items) / (reg_item + n_i)
    # a user/item with no ratings and zero regularisation would divide 0 by 0
    return mu, np.nan_to_num(b_u), np.nan_to_num(b_i)


def _clip_range(rating_range: tuple[float, float] | None,
                ratings: np.ndarray) -> tuple[float, float]:
    """The interval predictions are clipped to: ``rating_range``, or the training range."""
    if rating_range is None:
        return float(ratings.min()), float(ratings.max())
    lo, hi = (float(v) for v in rating_range)
    if not lo <= hi:
        raise ValueError(f"rating_range must be (low, high) with low <= high, got {rating_range}")
    return lo, hi


class Baseline(Recommender):
    r"""The baseline predictor alone, :math:`\hat r_{ui} = \mu + b_u + b_i`.

    Ranking with it is ranking by item bias (a popularity-like list), so it is mostly a
    rating model and the floor for :class:`ItemKNN` / :class:`UserKNN` RMSE.

    ``fit`` needs a ``rating`` column, one row per ``(user, item)`` pair; the values are
    regressed as they are (stars, or implicit weights such as play counts: transform
    those first, e.g. ``np.log1p``, if their scale is skewed).

    Args:
        reg_user: :math:`\lambda_u` (default 15).
        reg_item: :math:`\lambda_i` (default 10).
        num_iters: alternating sweeps (default 10).
        rating_range: ``(low, high)`` predictions are clipped to; ``None`` (default):
            the smallest and largest training rating (``[1, 5]`` on MovieLens).
            ``(-inf, inf)`` turns clipping off.
        seed: unused (deterministic), kept for the common interface.
    """

    name = "baseline"

    def __init__(self, reg_user: float = 15.0, reg_item: float = 10.0, num_iters: int = 10,
                 rating_range: tuple[float, float] | None = None, seed: int = 0):
        self.reg_user, self.reg_item, self.num_iters = reg_user, reg_item, num_iters
        self.rating_range = rating_range
        self.seed = seed
        self.mu = 0.0
        self.b_user: np.ndarray | None = None
        self.b_item: np.ndarray | None = None
        self.clip_range: tuple[float, float] | None = None

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "Baseline":
        self._store_train(train, num_users, num_items, require_rating=True, unique=True)
        users, items, r = check_fit_frame(train, num_users, num_items, require_rating=True)
        self.clip_range = _clip_range(self.rating_range, r)
        self.mu, self.b_user, self.b_item = fit_baselines(
            users, items, r, num_users, num_items, self.reg_user, self.reg_item, self.num_iters)
        return self

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for the pairs ``(users[n], items[n])``, shape ``(n,)``."""
        users, items = _check_pairs(self, users, items)
        pred = self.mu + self.b_user[users] + self.b_item[items]
        return np.clip(pred, *self.clip_range)

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users).numpy()
        s = self.mu + self.b_user[users][:, None] + self.b_item[None, :]
        return torch.as_tensor(s, dtype=torch.float32)

    def fold_in_user(self, items: np.ndarray, ratings: np.ndarray) -> float:
        r""":math:`b_u` of a new user: the exact user step
        :math:`b_u = \sum_i (r_{ui} - \mu - b_i) / (\lambda_u + |I_u|)`."""
        return float((ratings - self.mu - self.b_item[items]).sum()
                     / (self.reg_user + len(items))) if len(items) else 0.0


def _check_pairs(model: Recommender, users, items) -> tuple[np.ndarray, np.ndarray]:
    model._check_fitted()
    users = np.asarray(users, dtype=np.int64).ravel()
    items = np.asarray(items, dtype=np.int64).ravel()
    if users.shape != items.shape:
        raise ValueError(f"users and items must have the same length, got {len(users)} "
                         f"and {len(items)}")
    if len(users) and (users.min() < 0 or users.max() >= model.num_users):
        raise ValueError(f"user index outside 0..{model.num_users - 1}: pass 0-based indices")
    if len(items) and (items.min() < 0 or items.max() >= model.num_items):
        raise ValueError(f"item index outside 0..{model.num_items - 1}: pass 0-based indices")
    return users, items


def _neighbour_average(sims: np.ndarray, res: np.ndarray, k: int) -> np.ndarray:
    r""":math:`\sum_{j \in N^k} s^+_j\, res_j / \sum_{j \in N^k} s^+_j` per row of
    ``sims (m, c)`` over the ``k`` largest similarities (0 where no weight is positive)."""
    if sims.shape[1] > k:
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(sims, idx, axis=1)
        res_k = res[idx]
    else:
        res_k = np.broadcast_to(res, sims.shape)
    w = np.maximum(sims, 0.0)
    return safe_divide((w * res_k).sum(1), w.sum(1))


# ---------------------------------------------------------------------------------- kNN
class _NeighbourhoodKNN(Recommender):
    """Shared code of :class:`ItemKNN` and :class:`UserKNN` (``_by`` = "item" / "user")."""

    _by = "item"
    uses_validation = False

    def __init__(self, k: int = 100, similarity: str = "cosine", shrinkage: float = 10.0,
                 implicit: bool = True, reg_user: float = 15.0, reg_item: float = 10.0,
                 baseline_iters: int = 10, rating_range: tuple[float, float] | None = None,
                 seed: int = 0):
        if not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k (neighbourhood size) must be a positive integer, got {k!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; choose one of {SIMILARITIES}")
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        if implicit and similarity != "cosine":
            raise ValueError(
                f"similarity={similarity!r} needs ratings; with implicit=True (binary data) "
                "only 'cosine' is defined (centred binary values are meaningless)"
            )
        self.k, self.similarity = int(k), similarity
        self.shrinkage, self.implicit = shrinkage, implicit
        self.reg_user, self.reg_item, self.baseline_iters = reg_user, reg_item, baseline_iters
        self.rating_range = rating_range
        self.seed = seed
        self.sim: np.ndarray | None = None          # dense (n, n), explicit mode only
        self.neighbours: sp.csr_matrix | None = None  # sparse top-k (n, n), implicit mode
        self.baseline: Baseline | None = None
        self._resid: sp.csr_matrix | None = None    # (U, I) r - b on observed entries

    # -- similarity on the "profile" matrix whose columns are the compared entities
    def _profiles(self, M: sp.csr_matrix) -> sp.csr_matrix:
        return M if self._by == "item" else M.T.tocsr()

    def _similarity(self, R: sp.csr_matrix, mask: sp.csr_matrix) -> np.ndarray:
        P, Bp = self._profiles(R), self._profiles(mask)
        if self.similarity == "cosine":
            S = cosine_similarity(P)
        elif self.similarity == "pearson":
            S = pearson_similarity(P)
        elif self.similarity == "adjusted_cosine":
            S = adjusted_cosine_similarity(P)
        else:  # pearson_baseline
            S = corated_cosine(self._profiles(self._resid), Bp)
        if self.shrinkage > 0:
            S = shrink(S, co_counts(Bp), self.shrinkage)
        np.fill_diagonal(S, 0.0)  # an entity is never its own neighbour
        return S

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None):
        if self.implicit:
            mask = self._store_train(train, num_users, num_items)
            self.neighbours = top_k_cosine(self._profiles(mask), self.k, self.shrinkage)
            return self
        mask = self._store_train(train, num_users, num_items, require_rating=True,
                                 unique=True).astype(np.float64)
        u, i, r = check_fit_frame(train, num_users, num_items, require_rating=True)
        self.baseline = Baseline(self.reg_user, self.reg_item, self.baseline_iters,
                                 self.rating_range).fit(train, num_users, num_items)
        R = sp.csr_matrix((r, (u, i)), shape=(num_users, num_items))
        b = self.baseline
        resid = r - (b.mu + b.b_user[u] + b.b_item[i])
        self._resid = sp.csr_matrix((resid, (u, i)), shape=(num_users, num_items))
        self.sim = self._similarity(R, mask)
        return self

    # -- rating prediction
    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for the pairs ``(users[n], items[n])`` (explicit mode only)."""
        if self.implicit:
            raise ValueError(f"{type(self).__name__}(implicit=True) ranks binary data and "
                             "predicts no ratings; build it with implicit=False")
        users, items = _check_pairs(self, users, items)
        base = self.baseline.predict(users, items)
        if len(users) == 0:
            return base
        # item-based: group queries by user, neighbours among the items that user rated;
        # user-based: group by item, neighbours among the users who rated it.
        if self._by == "item":
            group, target, resid = users, items, self._resid
        else:
            group, target, resid = items, users, self._resid.T.tocsr()
        adj = np.zeros(len(users))
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        for q in np.split(order, bounds):
            g = group[q[0]]
            lo, hi = resid.indptr[g], resid.indptr[g + 1]
            cands = resid.indices[lo:hi]               # (c,) rated items / raters
            if len(cands) == 0:
                continue
            res = resid.data[lo:hi]                    # (c,) r - b of those ratings
            adj[q] = _neighbour_average(self.sim[np.ix_(target[q], cands)], res, self.k)
        return np.clip(base + adj, *self.baseline.clip_range)

    # -- ranking
    def score(self, users) -> torch.Tensor:
        users = self._check_users(users).numpy()
        if self.implicit:
            X = self.train_matrix
            if self._by == "item":
                s = X[users] @ self.neighbours.T      # (B, I)
            else:
                s = self.neighbours[users] @ X        # (B, U) @ (U, I)
            return torch.as_tensor(s.toarray(), dtype=torch.float32)
        # explicit: the predicted rating of every item
        uu = np.repeat(users, self.num_items)
        ii = np.tile(np.arange(self.num_items), len(users))
        pred = self.predict(uu, ii).reshape(len(users), self.num_items)
        return torch.as_tensor(pred, dtype=torch.float32)


class ItemKNN(_NeighbourhoodKNN):
    r"""Item-based kNN (Sarwar et al. 2001; with baseline, Koren 2008).

    Args:
        k: neighbourhood size (default 100, chapter 02's choice for top-10 ranking on
            ML-100K; 40 is the usual choice for rating prediction).
        similarity: ``"cosine"``, ``"pearson"``, ``"adjusted_cosine"`` or
            ``"pearson_baseline"`` (default ``"cosine"``; only cosine when implicit).
        shrinkage: :math:`\lambda` in :math:`s\,n/(n+\lambda)` (default 10).
        implicit: ``True`` (default): binary data (a ``rating``/``weight`` column is
            ignored: only which pairs occur counts), scores = sum of similarities to the
            user's history (top-k ranking); ``False``: ratings (needs a ``rating`` column,
            one row per pair), kNN-with-baseline :meth:`predict`.
        reg_user, reg_item, baseline_iters: the baseline fit (15, 10, 10).
        rating_range: ``(low, high)`` predictions are clipped to; ``None`` (default): the
            training ratings' range (see :class:`Baseline`).
        seed: unused (deterministic), kept for the common interface.

    Memory: implicit mode keeps only the top-``k`` similarities, a sparse
    ``(I, I)`` matrix of at most ``I * k`` entries (12 bytes each), computed in blocks
    of rows (:func:`~recsys_ref.models.classic.similarity.top_k_cosine`: at most about
    256 MB of dense blocks at a time, whatever ``I``). Explicit mode keeps the dense
    ``(I, I)`` similarity (``8 I^2`` bytes: 23 MB on ML-100K, 2.5 GB for 17.6k items),
    because each prediction picks its neighbours among the items the user rated.

    Example:
        >>> model = ItemKNN(k=40, similarity="pearson_baseline", shrinkage=100,
        ...                 implicit=False).fit(train, num_users, num_items)  # doctest: +SKIP
        >>> model.predict(test["user"], test["item"])                        # doctest: +SKIP
    """

    name = "itemknn"
    _by = "item"

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        """Implicit: :math:`s_i = \\sum_{j \\in I_u} (S_k)_{ij}`; explicit: the baseline
        user step for :math:`b_u`, then the kNN-with-baseline prediction of every item."""
        if self.implicit:
            x = np.zeros(self.num_items)
            x[items] = 1.0
            return torch.as_tensor(self.neighbours @ x, dtype=torch.float32)
        b = self.baseline
        b_u = b.fold_in_user(items, ratings)
        res = ratings - (b.mu + b_u + b.b_item[items])
        adj = (_neighbour_average(self.sim[:, items], res, self.k) if len(items)
               else np.zeros(self.num_items))
        pred = np.clip(b.mu + b_u + b.b_item + adj, *b.clip_range)
        return torch.as_tensor(pred, dtype=torch.float32)


class UserKNN(_NeighbourhoodKNN):
    r"""User-based kNN (Resnick et al. 1994; Herlocker et al. 1999; with baseline).

    Same arguments as :class:`ItemKNN` except the defaults ``k=50, shrinkage=0``
    (chapter 02's choice for top-10 ranking on validation); similarities are between users
    (rows of :math:`R`) and the neighbours of :math:`u` for item :math:`i` are the
    :math:`k` most similar users who rated :math:`i`. Memory as :class:`ItemKNN` with
    users in place of items.
    """

    name = "userknn"
    _by = "user"

    def __init__(self, k: int = 50, similarity: str = "cosine", shrinkage: float = 0.0,
                 implicit: bool = True, reg_user: float = 15.0, reg_item: float = 10.0,
                 baseline_iters: int = 10, rating_range: tuple[float, float] | None = None,
                 seed: int = 0):
        super().__init__(k, similarity, shrinkage, implicit, reg_user, reg_item,
                         baseline_iters, rating_range, seed)

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        r"""Implicit mode: shrunk cosine :math:`s_{v} = \frac{n_v}{\sqrt{|I_u|\,|I_v|}}
        \frac{n_v}{n_v + \lambda}` to every training user (:math:`n_v` = shared items),
        the ``k`` most similar (ties: lower index), :math:`s_i = \sum_{v \in N_k,\,
        i \in I_v} s_v`."""
        if not self.implicit:
            raise NotImplementedError(
                "UserKNN(implicit=False) has no fold-in (its similarities need the new "
                "user's centred ratings against every user); use UserKNN(implicit=True) or "
                "ItemKNN(implicit=False)")
        X = self.train_matrix
        x = np.zeros(self.num_items)
        x[items] = 1.0
        n = np.asarray(X @ x).ravel()                               # shared items, (U,)
        norms = np.sqrt(np.asarray(X.sum(1)).ravel() * len(items))
        s = safe_divide(n, norms)
        if self.shrinkage > 0:
            s = s * n / (n + self.shrinkage)
        keep = top_k_mask(s[None, :], self.k)[0] & (s > 0)
        scores = np.asarray(X.T @ np.where(keep, s, 0.0)).ravel()
        return torch.as_tensor(scores, dtype=torch.float32)
