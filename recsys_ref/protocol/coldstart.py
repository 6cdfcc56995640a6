r"""Cold-start items: hold out a share of the catalogue with *all* its interactions, train on
the rest, and rank only the held-out (cold) items for every user who interacted with one.

A cold item has no edge in the training graph and no trained ID vector, so a pure ID model
cannot rank it (its score is whatever the initialisation says); only side information —
here the item text — can. The content baselines score a cold item :math:`j` for user
:math:`u` from the similarity of its text vector :math:`\mathbf{t}_j` to the vectors of the
items :math:`\mathcal{N}(u)` the user interacted with in training:

.. math::

    s_{uj}^{\text{mean}} = \cos\Big(\frac{1}{|\mathcal{N}(u)|}\sum_{i \in \mathcal{N}(u)}
        \mathbf{t}_i,\ \mathbf{t}_j\Big), \qquad
    s_{uj}^{\text{max}} = \max_{i \in \mathcal{N}(u)} \cos(\mathbf{t}_i, \mathbf{t}_j).

Metrics (:mod:`recsys_ref.protocol.metrics`) are computed over the cold catalogue only: the top-k
is taken among the cold items, the relevant set is the user's cold interactions.

Shapes:
    - ``cold_item_split`` -> ``warm`` and ``cold`` frames, ``cold_items`` ``(C,)`` sorted
    - ``history_similarity(...)`` -> ``score_fn(users) -> (len(users), I)``

Used in: ``chapters/09_language_models``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.protocol.evaluate import evaluate_ranking, interaction_matrix

__all__ = ["cold_item_split", "evaluate_cold", "history_similarity", "random_scores"]


def cold_item_split(ratings: pd.DataFrame, cold_frac: float = 0.2, seed: int = 0,
                    num_items: int | None = None, candidates: Sequence[int] | None = None,
                    ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Choose ``cold_frac`` of the items at random; move all their interactions out.

    With ``candidates`` the cold items are drawn among those only: passing the warm items
    of a first split carves a *validation* cold set out of the warm part, on which
    hyper-parameters can be chosen without touching the cold test interactions.

    Args:
        ratings: interactions (``user``, ``item``, 0-based).
        cold_frac: share of the items (of ``candidates`` when given) made cold, in ``(0, 1)``
            (default 0.2).
        seed: seeds the choice.
        num_items: catalogue size (default ``ratings.item.max() + 1``).
        candidates: item indices to draw from (default: the items that occur in
            ``ratings``).

    Returns:
        ``(warm, cold, cold_items)``: ``warm`` holds no interaction with a cold item,
        ``cold`` all of them; ``cold_items`` sorted item indices.
    """
    if not 0.0 < cold_frac < 1.0:
        raise ValueError(f"cold_frac must be in (0, 1), got {cold_frac}")
    for col in ("user", "item"):
        if col not in ratings.columns:
            raise ValueError(f"ratings lacks column {col!r}")
    n = int(num_items if num_items is not None else ratings["item"].max() + 1)
    rng = np.random.default_rng(seed)
    if candidates is None:
        pool = np.unique(ratings["item"].to_numpy())   # items with at least one interaction
    else:
        pool = np.unique(np.asarray(candidates, dtype=np.int64))
        if len(pool) == 0 or pool.min() < 0 or pool.max() >= n:
            raise ValueError(f"candidates must be non-empty item indices in [0, {n})")
    size = int(round(cold_frac * len(pool)))
    if size == 0 or size == len(pool):
        raise ValueError(f"cold_frac={cold_frac} of {len(pool)} items leaves an empty warm or "
                         "cold part")
    cold_items = np.sort(rng.choice(pool, size=size, replace=False))
    is_cold = ratings["item"].isin(cold_items).to_numpy()
    return ratings[~is_cold], ratings[is_cold], cold_items


def evaluate_cold(model: Callable[[torch.Tensor], torch.Tensor] | np.ndarray | torch.Tensor,
                  test: pd.DataFrame, cold_items: Sequence[int], num_users: int, k: int = 20,
                  metrics: Sequence[str] = ("recall", "ndcg")) -> dict[str, float]:
    """Ranking metrics@k where the candidates are the cold items only.

    Args:
        model: ``score_fn(users) -> (len(users), I)`` over the full catalogue, or such a matrix.
        test: interactions with cold items (from :func:`cold_item_split`).
        cold_items: the cold item indices.
        num_users: user index space.
        k: cut-off (default 20).
        metrics: names from :data:`recsys_ref.protocol.metrics.RANKING_METRICS`.
    """
    cold = torch.as_tensor(np.asarray(cold_items), dtype=torch.long)
    pos = -np.ones(int(cold.max()) + 1 if len(cold) else 0, dtype=np.int64)
    pos[cold.numpy()] = np.arange(len(cold))
    items = test["item"].to_numpy()
    if len(items) == 0:
        raise ValueError("the cold test frame is empty")
    if items.max() >= len(pos) or (pos[items] < 0).any():
        raise ValueError("test holds items that are not cold: pass the `cold` frame of cold_item_split")
    sub = pd.DataFrame({"user": test["user"].to_numpy(), "item": pos[items]})
    if isinstance(model, (np.ndarray, torch.Tensor)):
        mat = torch.as_tensor(np.asarray(model))

        def fn(users):
            return mat[users][:, cold]
    else:
        def fn(users):
            s = model(users)
            return s[:, cold.to(s.device)]
    return evaluate_ranking(fn, sub, num_users, len(cold), k, metrics=list(metrics))


def history_similarity(train: pd.DataFrame | sp.spmatrix, item_vectors, num_users: int,
                       num_items: int, agg: str = "mean") -> Callable[[torch.Tensor], torch.Tensor]:
    """Content scores from the cosine similarity of item vectors to a user's history.

    Args:
        train: the user's training interactions (frame or ``(U, I)`` sparse matrix).
        item_vectors: ``(I, f)`` dense array or scipy sparse matrix (e.g. TF-IDF rows).
        agg: ``"mean"`` (cosine to the centroid of the history) or ``"max"`` (nearest
            neighbour in the history).

    Returns:
        ``score_fn(users) -> (len(users), I)`` float tensor.
    """
    if agg not in ("mean", "max"):
        raise ValueError(f"agg must be 'mean' or 'max', got {agg!r}")
    mat = train if sp.issparse(train) else interaction_matrix(train, num_users, num_items)
    mat = sp.csr_matrix(mat, dtype=np.float32)
    if sp.issparse(item_vectors):
        x = item_vectors.toarray()
    else:
        x = np.asarray(item_vectors)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.shape[0] != num_items:
        raise ValueError(f"item_vectors has {x.shape[0]} rows, expected num_items={num_items}")
    x = torch.nn.functional.normalize(x, dim=1)                      # (I, f)
    sim_all = x @ x.T if agg == "max" else None                      # (I, I)

    def score(users: torch.Tensor) -> torch.Tensor:
        users = torch.as_tensor(users, dtype=torch.long).numpy()
        hist = mat[users]
        if agg == "mean":
            h = torch.as_tensor(hist.toarray()) @ x                  # (B, f) sum of history
            h = torch.nn.functional.normalize(h, dim=1)
            return h @ x.T                                           # (B, I)
        out = torch.full((len(users), num_items), -1.0)
        for r in range(len(users)):
            idx = hist[r].indices
            if len(idx):
                out[r] = sim_all[torch.as_tensor(idx)].max(0).values
        return out

    return score


def random_scores(num_users: int, num_items: int, seed: int = 0) -> torch.Tensor:
    """A ``(U, I)`` matrix of uniform random scores (the chance baseline)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(num_users, num_items, generator=g)
