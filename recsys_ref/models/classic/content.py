r"""Content-based recommendation: item profiles from side information, user profiles
from the items each user rated, ranking by cosine (Pazzani & Billsus 2007).

**Item profiles.** For item :math:`i`, a TF-IDF vector of the words of its title
(scikit-learn's ``TfidfVectorizer``:
:math:`\mathrm{tf}(t, i)\cdot(\ln\frac{1+I}{1+\mathrm{df}(t)} + 1)`,
then L2-normalised) and a one-hot vector of its genres (L2-normalised), weighted and
concatenated, and the result L2-normalised:

.. math::

    \mathbf f_i = \frac{[\,w_g\, \mathbf g_i / \lVert \mathbf g_i \rVert \;;\;
                        w_t\, \mathbf t_i\,]}{\lVert \cdot \rVert}.

**User profiles** are the rating-weighted mean of the profiles of the items in the
user's training history :math:`I_u`, and items are ranked by cosine:

.. math::

    \mathbf p_u = \frac{\sum_{i \in I_u} w_{ui}\, \mathbf f_i}{\sum_{i \in I_u} |w_{ui}|},
    \qquad s(u, i) = \cos(\mathbf p_u, \mathbf f_i),

with :math:`w_{ui} = r_{ui}` (``weighting="rating"``), :math:`w_{ui} = 1` (``"binary"``)
or :math:`w_{ui} = r_{ui} - \bar r_u` (``"centred"``, disliked items push away).

The model needs no other user's data, so it scores an item nobody has rated yet: the
new-item cold start that collaborative filtering cannot handle (:func:`cold_item_split`).

Shapes:
    - ``item_features(items)``: ``I`` rows -> sparse ``(I, d)``
    - ``user_profiles``: ``(U, d)``
    - ``score(users)``: ``(B,)`` -> ``(B, I)``

Used in: ``chapters/03_content_hybrid``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MultiLabelBinarizer, normalize

from recsys_ref.data.movielens import clean_title
from recsys_ref.models.base import Recommender

__all__ = ["item_features", "ContentBased"]



def item_features(
    items: pd.DataFrame,
    use_genres: bool = True,
    use_titles: bool = True,
    genre_weight: float = 1.0,
    title_weight: float = 1.0,
    min_df: int = 2,
) -> tuple[sp.csr_matrix, list[str]]:
    r"""Row-normalised item profiles :math:`\mathbf f_i` and the names of their columns.

    Args:
        items: one row per item **in index order** (``ml.items``) with columns
            ``title`` (str) and ``genres`` (list of str).
        use_genres, use_titles: which blocks to build (at least one).
        genre_weight, title_weight: :math:`w_g, w_t` (default 1, 1).
        min_df: words in fewer titles are dropped (default 2: a word only one title has
            links that item to nothing).

    Returns:
        ``(F, names)``: CSR ``(I, d)`` with unit-norm rows (an item with no feature has a
        zero row) and ``d`` column names (``"genre:Drama"``, ``"title:star"``).
    """
    if not (use_genres or use_titles):
        raise ValueError("item_features needs at least one block: use_genres or use_titles")
    need = [c for c, on in (("genres", use_genres), ("title", use_titles)) if on]
    missing = [c for c in need if c not in items.columns]
    if missing:
        raise ValueError(f"items frame lacks column(s) {missing}; pass ml.items from "
                         "recsys_ref.data.movielens.load_movielens")
    if genre_weight < 0 or title_weight < 0:
        raise ValueError("genre_weight and title_weight must be >= 0")
    blocks, names = [], []
    if use_genres:
        mlb = MultiLabelBinarizer(sparse_output=True)
        G = mlb.fit_transform(items["genres"]).astype(np.float64)
        blocks.append(genre_weight * normalize(G.tocsr()))
        names += [f"genre:{g}" for g in mlb.classes_]
    if use_titles:
        vec = TfidfVectorizer(min_df=min_df, stop_words="english")
        T = vec.fit_transform(items["title"].map(clean_title))
        blocks.append(title_weight * T)  # TfidfVectorizer rows are already unit-norm
        names += [f"title:{w}" for w in vec.get_feature_names_out()]
    F = normalize(sp.hstack(blocks).tocsr())
    return F, names


class ContentBased(Recommender):
    r"""Content-based ranking by cosine between user and item profiles.

    Args:
        items: item side information, one row per item index (``ml.items``). ``None``
            loads ML-100K's (``recsys_ref.data.movielens.load_movielens``), so
            ``python -m recsys_ref.cli.bench --model content`` works.
        features: a precomputed ``(num_items, d)`` feature matrix instead of ``items``.
        use_genres, use_titles, genre_weight, title_weight, min_df: see
            :func:`item_features` (defaults True, True, 1, 1, 2: genres and titles,
            chapter 03's choice on validation).
        weighting: how the value column (``rating``, else ``weight``) weighs an item in
            the user profile: ``"rating"`` (default, chapter 03's choice: the value
            itself, :math:`r_{ui}`; the natural choice for implicit weights such as play
            counts), ``"centred"`` (:math:`r_{ui} - \bar r_u`) or ``"binary"`` (1 for
            every pair, no value column needed).
        seed: unused (deterministic), kept for the common interface.

    A new user (:meth:`score_items`) gets the profile of her items, weighted by the
    ``ratings`` given (``"centred"`` needs ratings that differ).
    """

    name = "content"
    _data_params = ("items", "features")

    def __init__(self, items: pd.DataFrame | None = None, features=None, use_genres: bool = True,
                 use_titles: bool = True, genre_weight: float = 1.0, title_weight: float = 1.0,
                 min_df: int = 2, weighting: str = "rating", seed: int = 0):
        if weighting not in ("rating", "binary", "centred"):
            raise ValueError("weighting must be 'rating', 'binary' or 'centred', "
                             f"got {weighting!r}")
        if items is not None and features is not None:
            raise ValueError("pass either items (side information) or features, not both")
        self.use_genres, self.use_titles = use_genres, use_titles
        self.genre_weight, self.title_weight, self.min_df = genre_weight, title_weight, min_df
        self.weighting = weighting
        self.seed = seed
        self.feature_names: list[str] = []
        if features is not None:
            self.features = normalize(sp.csr_matrix(features, dtype=np.float64))
        else:
            if items is None:
                from recsys_ref.data.movielens import load_movielens
                items = load_movielens("ml-100k").items
            self.features, self.feature_names = item_features(
                items, use_genres, use_titles, genre_weight, title_weight, min_df)
        self.user_profiles: np.ndarray | None = None

    def _weights(self, train: pd.DataFrame) -> np.ndarray:
        col = next((c for c in ("rating", "weight") if c in train.columns), None)
        if self.weighting == "binary":
            return np.ones(len(train))
        if col is None:
            raise ValueError(f"weighting={self.weighting!r} needs a 'rating' or 'weight' "
                             "column; use weighting='binary' for interactions without values")
        r = train[col].to_numpy(np.float64)
        if self.weighting == "rating":
            return r
        mean = train.groupby("user")[col].transform("mean").to_numpy()
        return r - mean

    def fit(self, train: pd.DataFrame, num_users: int, num_items: int,
            valid: pd.DataFrame | None = None) -> "ContentBased":
        if self.features.shape[0] != num_items:
            raise ValueError(
                f"the item features have {self.features.shape[0]} rows but num_items is "
                f"{num_items}: pass the side information of the same dataset (one row per "
                "item index)"
            )
        self._store_train(train, num_users, num_items, unique=self.weighting != "binary")
        w = self._weights(train)
        W = sp.csr_matrix((w, (train["user"].to_numpy(), train["item"].to_numpy())),
                          shape=(num_users, num_items))
        total = np.asarray(abs(W).sum(1)).ravel()             # sum of |w_ui|
        P = (W @ self.features).toarray()                     # (U, d)
        P = np.divide(P, total[:, None], out=np.zeros_like(P), where=total[:, None] != 0)
        self.user_profiles = P
        return self

    def score(self, users) -> torch.Tensor:
        users = self._check_users(users).numpy()
        P = normalize(self.user_profiles[users])              # (B, d) unit rows
        s = self.features @ P.T                               # (I, B)
        return torch.as_tensor(np.asarray(s).T, dtype=torch.float32)

    def _score_items(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        if self.weighting == "binary":
            w = np.ones(len(items))
        elif self.weighting == "rating":
            w = ratings
        else:
            if len(items) and np.ptp(ratings) == 0:
                raise ValueError("weighting='centred' weighs items by rating minus the user's "
                                 "mean: pass ratings that differ, or use weighting='binary'")
            w = ratings - ratings.mean()
        total = np.abs(w).sum()
        p = (w @ self.features[items]) / total if total > 0 else np.zeros(self.features.shape[1])
        p = normalize(np.asarray(p).reshape(1, -1))            # (1, d) unit row
        return torch.as_tensor(np.asarray(self.features @ p.T).ravel(), dtype=torch.float32)
