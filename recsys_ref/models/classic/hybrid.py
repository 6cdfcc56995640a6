r"""Hybrid recommenders (Burke 2002): combine collaborative filtering (item-kNN) with
content-based scores.

Scores of different models live on different scales (sums of cosine similarities vs a
single cosine), so each is first standardised per user over the catalogue:

.. math::

    z(\mathbf s_u)_i = \frac{s_{ui} - \operatorname{mean}_j s_{uj}}{\operatorname{std}_j s_{uj}}
    \quad (\text{0 when the row is constant}).

**Weighted hybrid**: :math:`s(u, i) = \alpha\, z(\mathbf s^{\mathrm{CF}}_u)_i +
(1 - \alpha)\, z(\mathbf s^{\mathrm{CB}}_u)_i`, with :math:`\alpha \in [0, 1]` chosen on a
validation split (:math:`\alpha = 1` ranks exactly like CF, :math:`\alpha = 0` exactly like
content).

**Switching hybrid**: content scores where CF has too little to go on, CF elsewhere:

.. math::

    s(u, i) = \begin{cases}
        z(\mathbf s^{\mathrm{CB}}_u)_i & |I_u| < m_u \text{ or } |U_i| < m_i,\\
        z(\mathbf s^{\mathrm{CF}}_u)_i & \text{otherwise,}
    \end{cases}

with :math:`|I_u|`, :math:`|U_i|` the training interactions of the user and the item.

Shapes:
    - ``score(users)``: ``(B,)`` -> ``(B, num_items)``

Used in: ``chapters/03_content_hybrid``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from recsys_ref.protocol.evaluate import evaluate_ranking
from recsys_ref.models.base import Recommender
from recsys_ref.models.classic.content import ContentBased
from recsys_ref.models.classic.knn import ItemKNN

__all__ = ["zscore_rows", "WeightedHybrid", "SwitchingHybrid"]

#: default CF half: the implicit item-kNN tuned in chapter 02 (ItemKNN's defaults)
DEFAULT_CF = {"k": 100, "shrinkage": 10.0}


def zscore_rows(scores: torch.Tensor) -> torch.Tensor:
    """Standardise every row to mean 0 and standard deviation 1 (a constant row -> 0)."""
    scores = torch.as_tensor(scores, dtype=torch.float32)
    if scores.dim() != 2:
        raise ValueError(f"scores must be 2-D (users, items), got shape {tuple(scores.shape)}")
    mean = scores.mean(1, keepdim=True)
    std = scores.std(1, unbiased=False, keepdim=True)
    return torch.where(std > 0, (scores - mean) / std.clamp_min(1e-12), torch.zeros_like(scores))


class _Hybrid(Recommender):
    _data_params = ("items",)

    def _build(self, items, cf_params, content_params) -> None:
        self.cf_params, self.content_params = cf_params, content_params
        self.cf = ItemKNN(**(DEFAULT_CF if cf_params is None else cf_params))
        self.content = ContentBased(items=items, **(content_params or {}))

    def _fold_in_parts(self, items: np.ndarray, ratings: np.ndarray):
        z_cf = zscore_rows(self.cf.score_items(items, ratings)[None, :])[0]
        z_cb = zscore_rows(self.content.score_items(items, ratings)[None, :])[0]
        return z_cf, z_cb

    def _fit_parts(self, train: pd.DataFrame, num_users: int, num_items: int) -> None:
        self._store_train(train, num_users, num_items)
        self.cf.fit(train, num_users, num_items)
        self.content.fit(train, num_users, num_items)


class WeightedHybrid(_Hybrid):
    r"""Weighted hybrid :math:`\alpha\, z(\text{item-kNN}) + (1-\alpha)\, z(\text{content})`.

    Args:
        alpha: weight of CF in ``[0, 1]`` (default 0.8, chapter 03's choice on
            validation); ``None`` picks it on ``valid`` from ``alphas`` by
            NDCG@``k_tune`` (ties: the smaller alpha).
        items: item side information for :class:`ContentBased` (``None``: ML-100K's).
        cf_params: arguments of :class:`~recsys_ref.models.classic.knn.ItemKNN`
            (default ``None``: ``{"k": 100, "shrinkage": 10}``).
        content_params: arguments of :class:`~recsys_ref.models.classic.content.ContentBased`
            (default ``None``: its defaults, genres only with centred weights).
        alphas: the grid searched when ``alpha is None`` (default 0, 0.1, ..., 1).
        k_tune: cut-off of the tuning metric (default 10).
        seed: unused (deterministic), kept for the common interface.

    Attributes:
        tuning: ``{alpha: validation NDCG}`` after tuning.
    """

    name = "hybrid"
    uses_validation = True
    _param_attrs = {"alpha": "alpha_init"}

    def __init__(self, alpha: float | None = 0.8, items: pd.DataFrame | None = None,
                 cf_params: dict | None = None, content_params: dict | None = None,
                 alphas: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                 k_tune: int = 10, seed: int = 0):
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1] (or be None to tune it), got {alpha}")
        if alpha is None and (len(alphas) == 0 or any(not 0 <= a <= 1 for a in alphas)):
            raise ValueError(f"alphas must be a non-empty grid inside [0, 1], got {list(alphas)}")
        self.alpha_init = self.alpha = alpha
        self.alphas = tuple(float(a) for a in alphas)
        self.k_tune = k_tune
        self.seed = seed
        self.tuning: dict[float, float] = {}
        self._build(items, cf_params, content_params)

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "WeightedHybrid":
        if self.alpha_init is None and valid is None:
            raise ValueError("WeightedHybrid(alpha=None) tunes alpha on a validation split: "
                             "pass valid=... to fit, or fix alpha")
        self._fit_parts(train, num_users, num_items)
        if self.alpha_init is None:
            self._tune(train, valid)
        return self

    def _tune(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        users = np.unique(valid["user"].to_numpy())
        z_cf = torch.zeros(self.num_users, self.num_items)
        z_cb = torch.zeros(self.num_users, self.num_items)
        z_cf[users] = zscore_rows(self.cf.score(users))
        z_cb[users] = zscore_rows(self.content.score(users))
        self.tuning = {}
        for a in self.alphas:
            res = evaluate_ranking(a * z_cf + (1 - a) * z_cb, valid, self.num_users,
                                   self.num_items, self.k_tune, exclude=[train], metrics=("ndcg",))
            self.tuning[a] = res["ndcg"]
        self.alpha = max(self.tuning, key=lambda a: (self.tuning[a], -a))

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users)
        if self.alpha is None:
            raise RuntimeError("alpha is not set: fit with valid=... or pass alpha")
        a = self.alpha
        z_cf, z_cb = zscore_rows(self.cf.score(users)), zscore_rows(self.content.score(users))
        return a * z_cf + (1 - a) * z_cb

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        z_cf, z_cb = self._fold_in_parts(items, ratings)
        return self.alpha * z_cf + (1 - self.alpha) * z_cb


class SwitchingHybrid(_Hybrid):
    r"""Switch to content scores for users with fewer than ``min_user_history`` and items
    with fewer than ``min_item_history`` training interactions; item-kNN elsewhere.

    Args:
        min_user_history: :math:`m_u` (default 0: no user switches, chapter 03's setting).
        min_item_history: :math:`m_i` (default 1: only items nobody has seen switch;
            chapter 03's choice on validation).
        items, cf_params, content_params: as in :class:`WeightedHybrid`.
        seed: unused (deterministic), kept for the common interface.
    """

    name = "switching_hybrid"

    def __init__(self, min_user_history: int = 0, min_item_history: int = 1,
                 items: pd.DataFrame | None = None, cf_params: dict | None = None,
                 content_params: dict | None = None, seed: int = 0):
        if min_user_history < 0 or min_item_history < 0:
            raise ValueError("min_user_history and min_item_history must be >= 0")
        self.min_user_history, self.min_item_history = int(min_user_history), int(min_item_history)
        self.seed = seed
        self._build(items, cf_params, content_params)

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "SwitchingHybrid":
        self._fit_parts(train, num_users, num_items)
        X = self.train_matrix
        self.cold_users = torch.as_tensor(np.asarray(X.sum(1)).ravel() < self.min_user_history)
        self.cold_items = torch.as_tensor(np.asarray(X.sum(0)).ravel() < self.min_item_history)
        return self

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users)
        z_cf = zscore_rows(self.cf.score(users))
        z_cb = zscore_rows(self.content.score(users))
        use_cb = self.cold_users[users][:, None] | self.cold_items[None, :]
        return torch.where(use_cb, z_cb, z_cf)

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        z_cf, z_cb = self._fold_in_parts(items, ratings)
        if len(items) < self.min_user_history:
            return z_cb
        return torch.where(self.cold_items, z_cb, z_cf)
