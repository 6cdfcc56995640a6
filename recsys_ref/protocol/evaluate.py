r"""Full-ranking evaluation: score every item for every user, mask what they already saw,
take the top k, and compare with the held-out items.

The protocol (stated once, used everywhere in the book):

* the candidate set of a user is **the whole catalogue** minus the items in the
  ``exclude`` interactions (training, and validation when testing);
* the top-k list is taken by a **stable** descending sort, so equal scores are broken by
  the lower item index, the same on CPU and GPU, run after run;
* users are processed in batches of ``batch_size`` rows, so memory is
  ``O(batch_size * num_items)`` whatever the number of users;
* metrics are averaged over users with at least one held-out item
  (:mod:`recsys_ref.protocol.metrics` has the formulas).

A model is a fitted :class:`~recsys_ref.models.base.Recommender` (its ``score`` is used),
a dense ``(num_users, num_items)`` score matrix, or a function
``score_fn(users: LongTensor) -> Tensor (len(users), num_items)``.
:func:`recsys_ref.protocol.split.evaluate` runs this on a
:class:`~recsys_ref.protocol.split.Split`, masking what the split says to mask.

Used in: ``chapters/01_recsys_basics`` and every chapter that ranks.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recsys_ref.protocol.metrics import (
    RANKING_METRICS,
    average_popularity,
    beyond_accuracy,
    catalogue_coverage,
    ranking_metrics,
)

__all__ = ["interaction_matrix", "topk_items", "evaluate_ranking", "as_score_fn", "ScoreFn"]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def interaction_matrix(df: pd.DataFrame, num_users: int, num_items: int) -> sp.csr_matrix:
    """Binary ``(num_users, num_items)`` CSR matrix of the ``(user, item)`` pairs in ``df``.

    Raises:
        ValueError: on missing columns or indices outside ``[0, num_users)`` /
            ``[0, num_items)`` (e.g. original ids passed instead of 0-based indices).
    """
    for col in ("user", "item"):
        if col not in df.columns:
            raise ValueError(f"interaction frame lacks column {col!r}; it has {list(df.columns)}")
    u = df["user"].to_numpy()
    i = df["item"].to_numpy()
    if len(u) and (u.min() < 0 or u.max() >= num_users):
        raise ValueError(
            f"user index outside 0..{num_users - 1} (max {u.max()}): pass 0-based indices "
            "(the 'user' column of recsys_ref frames), not original ids"
        )
    if len(i) and (i.min() < 0 or i.max() >= num_items):
        raise ValueError(
            f"item index outside 0..{num_items - 1} (max {i.max()}): pass 0-based indices "
            "(the 'item' column of recsys_ref frames), not original ids"
        )
    mat = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(num_users, num_items))
    mat.data[:] = 1.0  # duplicates summed above; keep it binary
    return mat


def as_score_fn(model, device: torch.device | None = None) -> ScoreFn:
    """``users -> scores`` from a fitted Recommender, a score function or a score matrix."""
    if isinstance(model, pd.DataFrame):
        raise TypeError("got a DataFrame where a model was expected: pass the fitted model, "
                        "its score function or a (num_users, num_items) score matrix")
    if not isinstance(model, (torch.Tensor, np.ndarray, torch.nn.Module)) and callable(
            getattr(model, "score", None)):
        return model.score                    # a fitted Recommender
    if callable(model) and not isinstance(model, (torch.Tensor, np.ndarray)):
        return model
    if not isinstance(model, (torch.Tensor, np.ndarray)):
        raise TypeError(f"cannot rank with a {type(model).__name__}: pass a fitted Recommender,"
                        " a score function users -> (len(users), num_items) scores, or a "
                        "score matrix")
    mat = torch.as_tensor(np.asarray(model) if isinstance(model, np.ndarray) else model)
    if mat.dim() != 2:
        raise ValueError(f"a score matrix must be 2-D (num_users, num_items), got "
                         f"{tuple(mat.shape)}")
    if device is not None:
        mat = mat.to(device)
    return lambda users: mat[users.to(mat.device)]


def _dense_rows(mat: sp.csr_matrix, rows: np.ndarray, device) -> torch.Tensor:
    sub = mat[rows].tocoo()
    out = torch.zeros(len(rows), mat.shape[1], dtype=torch.bool, device=device)
    rows_t = torch.as_tensor(sub.row, device=device).long()
    out[rows_t, torch.as_tensor(sub.col, device=device).long()] = True
    return out


def _stable_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores per row, ties broken by the lower index.

    Exactly ``torch.sort(scores, descending=True, stable=True).indices[:, :k]``, but in
    ``O(num_items)`` per row: ``torch.topk`` finds the k-th value; rows where no other
    item ties with it have exactly k candidates, which are put in (score desc, index asc)
    order by sorting k numbers; the rare rows with ties across the cut fall back to the
    full stable sort.
    """
    top_vals, top_idx = torch.topk(scores, k, dim=1)
    n_cand = (scores >= top_vals[:, -1:]).sum(1)
    idx = top_idx.sort(dim=1).values                       # ascending item index
    order = torch.sort(scores.gather(1, idx), dim=1, descending=True, stable=True).indices
    result = idx.gather(1, order)
    ties = n_cand > k
    if ties.any():
        result[ties] = torch.sort(scores[ties], dim=1, descending=True, stable=True).indices[:, :k]
    return result


@torch.no_grad()
def topk_items(
    model: torch.Tensor | np.ndarray | ScoreFn,
    k: int,
    users: Sequence[int] | np.ndarray | torch.Tensor,
    num_items: int,
    exclude: sp.spmatrix | None = None,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Top-``k`` item indices per user, best first, with ``exclude`` masked out.

    Args:
        model: score matrix or ``score_fn`` (see the module docstring).
        k: list length, ``1 <= k <= num_items``.
        users: 0-based user indices to rank for.
        num_items: catalogue size (the score rows' length).
        exclude: ``(num_users, num_items)`` sparse matrix; nonzeros are never recommended.
        batch_size: users per batch.
        device: where to score; default: the model's own device.

    Returns:
        ``(len(users), k)`` LongTensor on the CPU.
    """
    if not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > num_items:
        raise ValueError(f"k={k} exceeds the catalogue size {num_items}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = torch.device(device) if device is not None else None
    score_fn = as_score_fn(model, device)
    users_np = np.asarray(torch.as_tensor(users).cpu(), dtype=np.int64)
    out = []
    for start in range(0, len(users_np), batch_size):
        rows = users_np[start:start + batch_size]
        scores = score_fn(torch.as_tensor(rows, device=device))
        if scores.shape != (len(rows), num_items):
            raise ValueError(
                f"score function returned shape {tuple(scores.shape)}, expected "
                f"({len(rows)}, {num_items}) = (batch users, num_items)"
            )
        scores = scores.detach().to(
            torch.float64 if scores.dtype == torch.float64 else torch.float32)
        if torch.isnan(scores).any():
            raise ValueError("the model produced NaN scores; check training (learning rate, "
                             "inputs)")
        if exclude is not None:
            mask = _dense_rows(exclude.tocsr(), rows, scores.device)
            scores = scores.masked_fill(mask, float("-inf"))
        out.append(_stable_topk(scores, k).cpu())
    if not out:
        raise ValueError("no users given to rank")
    return torch.cat(out)


def _exclude_frames(exclude) -> list[pd.DataFrame]:
    if exclude is None:
        return []
    if isinstance(exclude, pd.DataFrame):
        return [exclude]
    frames = list(exclude)
    for df in frames:
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"exclude holds a {type(df).__name__}; pass interaction frames "
                            "(a frame or a list of frames with user and item columns)")
    return frames


def evaluate_ranking(
    model,
    test: pd.DataFrame,
    num_users: int,
    num_items: int,
    k: int = 10,
    exclude: Iterable[pd.DataFrame] = (),
    metrics: Sequence[str] = RANKING_METRICS,
    map_denominator: str = "relevant",
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    item_popularity: np.ndarray | None = None,
    return_topk: bool = False,
    per_user: bool = False,
    beyond: pd.DataFrame | sp.spmatrix | None = None,
) -> dict[str, float] | tuple:
    """Rank the full catalogue for every test user and compute ranking metrics.

    Args:
        model: a fitted Recommender, a score matrix or a ``score_fn``.
        test: held-out interactions (``user``, ``item`` columns, 0-based).
        num_users, num_items: sizes of the index spaces.
        k: cut-off.
        exclude: a frame or frames whose items are masked (usually ``train``;
            ``[train, valid]`` when testing a model tuned on ``valid``). A held-out pair
            that is also excluded can never be ranked: a warning says how many there are,
            and an error is raised when every held-out pair is excluded.
        metrics: names from :data:`recsys_ref.protocol.metrics.RANKING_METRICS`.
        map_denominator: ``"relevant"`` (Recommenders' table) or ``"min"``.
        batch_size, device: see :func:`topk_items`.
        item_popularity: if given (share of training users per item), adds
            ``coverage`` and ``avg_popularity``.
        return_topk: also return the ``(U, k)`` top-k matrix and the evaluated users.
        per_user: also return the per-user metrics: a frame indexed by the evaluated
            users' indices (index name ``"user"``, ascending), one float column per name
            in ``metrics``; its column means are the returned averages. Pair two models
            user by user with :func:`recsys_ref.protocol.stats.paired_test`.
        beyond: the training interactions (a frame with ``user``/``item`` columns, or a
            ``(num_users, num_items)`` sparse matrix); if given, adds ``coverage``,
            ``gini``, ``novelty`` and ``diversity`` of the top-k lists
            (:func:`recsys_ref.protocol.metrics.beyond_accuracy`).

    Returns:
        ``metrics`` (``{name: value}``); ``(metrics, per_user_frame)`` when ``per_user``;
        ``(metrics, topk, users)`` when ``return_topk``; ``(metrics, per_user_frame,
        topk, users)`` when both.
    """
    truth = interaction_matrix(test, num_users, num_items)
    n_rel = np.asarray(truth.sum(1)).ravel()
    users = np.flatnonzero(n_rel > 0)
    if len(users) == 0:
        raise ValueError("the test frame holds no interactions: nothing to evaluate")
    excl = None
    for df in _exclude_frames(exclude):
        m = interaction_matrix(df, num_users, num_items)
        excl = m if excl is None else excl + m
    if excl is not None:
        masked = int(truth.multiply(excl).nnz)
        if masked == truth.nnz:
            raise ValueError(
                "every held-out (user, item) pair is also in `exclude`, so no relevant item "
                "can be ranked and every metric would be 0: the test frame overlaps the "
                "training frame (duplicate rows?) or exclude holds the test frame itself")
        if masked:
            warnings.warn(
                f"{masked:,} of {truth.nnz:,} held-out (user, item) pairs are also in "
                "`exclude` and can never be recommended (duplicate interactions across "
                "the split?); they still count as relevant", stacklevel=2)
    topk = topk_items(model, k, users, num_items, excl, batch_size, device)
    hits = torch.cat([
        _dense_rows(truth, users[s:s + batch_size], None).gather(1, topk[s:s + batch_size])
        for s in range(0, len(users), batch_size)
    ])
    per = ranking_metrics(hits, torch.as_tensor(n_rel[users]), metrics, map_denominator,
                          reduce="none")
    res = {name: float(v.mean()) for name, v in per.items()}
    if item_popularity is not None:
        res["coverage"] = catalogue_coverage(topk, num_items)
        res["avg_popularity"] = average_popularity(topk, item_popularity)
    if beyond is not None:
        res.update(beyond_accuracy(topk, _train_matrix(beyond, num_users, num_items)))
    out: tuple = (res,)
    if per_user:
        out += (pd.DataFrame({name: v.numpy() for name, v in per.items()},
                             index=pd.Index(users, name="user")),)
    if return_topk:
        out += (topk, users)
    return out if len(out) > 1 else res


def _train_matrix(beyond, num_users: int, num_items: int) -> sp.csr_matrix:
    """The ``beyond`` argument of :func:`evaluate_ranking` as a checked sparse matrix."""
    if isinstance(beyond, pd.DataFrame):
        return interaction_matrix(beyond, num_users, num_items)
    if not sp.issparse(beyond):
        raise TypeError(f"beyond must be the training interactions (a frame with user and "
                        f"item columns, or a sparse matrix), got {type(beyond).__name__}")
    if beyond.shape != (num_users, num_items):
        raise ValueError(f"beyond has shape {beyond.shape}, expected (num_users, num_items) "
                         f"= ({num_users}, {num_items})")
    return sp.csr_matrix(beyond)
