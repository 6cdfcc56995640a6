r"""Ranking and rating metrics, with the definitions written out.

Notation (the book's, see ``notation.md``): for a user :math:`u`, :math:`R_u` is the set
of relevant (held-out) items, :math:`L_u = (\ell_1, \dots, \ell_k)` the top-:math:`k`
list, :math:`\mathrm{rel}_r = [\ell_r \in R_u]` and :math:`h_u = \sum_{r \le k}
\mathrm{rel}_r` the number of hits. Every ranking metric is the mean over the evaluated
users (those with :math:`|R_u| \ge 1`):

.. math::

    \mathrm{P@k} = \frac{h_u}{k}, \qquad
    \mathrm{R@k} = \frac{h_u}{|R_u|}, \qquad
    \mathrm{F1@k} = \frac{2\,\mathrm{P@k}\,\mathrm{R@k}}{\mathrm{P@k} + \mathrm{R@k}},

.. math::

    \mathrm{NDCG@k} = \frac{\sum_{r=1}^{k} \mathrm{rel}_r / \log_2(r+1)}
                           {\sum_{r=1}^{\min(k, |R_u|)} 1 / \log_2(r+1)}, \qquad
    \mathrm{AP@k} = \frac{1}{D_u} \sum_{r=1}^{k} \mathrm{rel}_r\,
                    \frac{\sum_{s \le r} \mathrm{rel}_s}{r},

with :math:`D_u = |R_u|` (``map_denominator="relevant"``: Microsoft Recommenders'
``map``, the MAP of their published benchmark table) or
:math:`D_u = \min(k, |R_u|)` (``"min"``: the common MAP@k, which reaches 1 for a perfect
list; their ``map_at_k`` since 1.2.0). Precision, recall, nDCG and both MAPs equal
``recommenders`` 1.2.1's on the same lists (``tests/unit/test_recommenders_peer.py``). :math:`\mathrm{HR@k} = [h_u > 0]`, :math:`\mathrm{MRR@k} = 1 / r^\ast` with
:math:`r^\ast` the first hit's rank (0 without a hit). F1 is computed per user, then
averaged.

The workhorse is :func:`ranking_metrics`, which takes a boolean *hit matrix*
``hits[u, r] = rel_r`` of shape ``(U, k)`` and ``num_relevant`` of shape ``(U,)``;
:mod:`recsys_ref.protocol.evaluate` builds both from a score matrix. The list-based functions
(:func:`precision_at_k` …) are for small examples you can check by hand.

Used in: ``chapters/01_recsys_basics`` (every formula with a worked example) and every
chapter after it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "RANKING_METRICS",
    "ranking_metrics",
    "hit_matrix",
    "precision_at_k",
    "recall_at_k",
    "f1_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "mrr_at_k",
    "catalogue_coverage",
    "average_popularity",
    "rmse",
    "mae",
]

RANKING_METRICS = ("precision", "recall", "f1", "ndcg", "map", "hit_rate", "mrr")


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def ranking_metrics(
    hits: torch.Tensor,
    num_relevant: torch.Tensor,
    metrics: Iterable[str] = RANKING_METRICS,
    map_denominator: str = "relevant",
    reduce: str = "mean",
) -> dict[str, float] | dict[str, torch.Tensor]:
    """Ranking metrics at ``k = hits.shape[1]`` from a hit matrix.

    Args:
        hits: ``(U, k)`` bool/0-1 tensor, ``hits[u, r]`` true when the item at rank
            ``r + 1`` of user ``u``'s list is relevant.
        num_relevant: ``(U,)`` number of relevant items per user; every entry must be
            ``>= 1`` (users without relevant items are not evaluated).
        metrics: names from :data:`RANKING_METRICS`.
        map_denominator: ``"relevant"`` (Recommenders' table) or ``"min"``.
        reduce: ``"mean"`` for floats averaged over users, ``"none"`` for per-user tensors.

    Returns:
        ``{name: value}``.
    """
    hits = torch.as_tensor(hits)
    num_relevant = torch.as_tensor(num_relevant)
    if hits.dim() != 2 or hits.shape[1] == 0:
        raise ValueError(f"hits must have shape (num_users, k) with k >= 1, got {tuple(hits.shape)}")
    if num_relevant.shape != (hits.shape[0],):
        raise ValueError(
            f"num_relevant must have shape ({hits.shape[0]},) to match hits, got "
            f"{tuple(num_relevant.shape)}"
        )
    if hits.shape[0] == 0:
        raise ValueError("no users to evaluate: every user has an empty relevant set")
    if (num_relevant < 1).any():
        raise ValueError("every evaluated user needs >= 1 relevant item; drop the others first")
    unknown = set(metrics) - set(RANKING_METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; choose from {RANKING_METRICS}")
    if map_denominator not in ("relevant", "min"):
        raise ValueError(f"map_denominator must be 'relevant' or 'min', got {map_denominator!r}")
    hits = hits.to(torch.float64)
    n_rel = num_relevant.to(torch.float64)
    k = hits.shape[1]
    ranks = torch.arange(1, k + 1, dtype=torch.float64, device=hits.device)
    h = hits.sum(1)
    out: dict[str, torch.Tensor] = {}
    prec = h / k
    rec = h / n_rel
    for name in metrics:
        if name == "precision":
            out[name] = prec
        elif name == "recall":
            out[name] = rec
        elif name == "f1":
            denom = prec + rec
            out[name] = torch.where(denom > 0, 2 * prec * rec / denom.clamp_min(1e-300), 0.0)
        elif name == "ndcg":
            disc = 1.0 / torch.log2(ranks + 1)
            dcg = (hits * disc).sum(1)
            ideal = torch.cumsum(disc, 0)[(n_rel.clamp(max=k) - 1).long()]
            out[name] = dcg / ideal
        elif name == "map":
            prec_at_r = torch.cumsum(hits, 1) / ranks
            denom = n_rel if map_denominator == "relevant" else n_rel.clamp(max=k)
            out[name] = (prec_at_r * hits).sum(1) / denom
        elif name == "hit_rate":
            out[name] = (h > 0).to(torch.float64)
        elif name == "mrr":
            first = torch.where(hits > 0, ranks, torch.full_like(ranks, float("inf"))).min(1).values
            out[name] = torch.where(torch.isinf(first), 0.0, 1.0 / first)
    if reduce == "none":
        return out
    if reduce != "mean":
        raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    return {name: float(v.mean()) for name, v in out.items()}


def hit_matrix(
    ranked: Sequence[Sequence[int]], relevant: Sequence[Iterable[int]], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hit matrix and relevant counts from python lists (small, hand-checkable inputs).

    Args:
        ranked: per user, item ids best first (at least ``k`` of them, or fewer: missing
            positions count as misses).
        relevant: per user, the relevant item ids (a user with none raises).
        k: cut-off.
    """
    k = _check_k(k)
    if len(ranked) != len(relevant):
        raise ValueError(f"ranked has {len(ranked)} users but relevant has {len(relevant)}")
    hits = torch.zeros(len(ranked), k, dtype=torch.bool)
    n_rel = torch.zeros(len(ranked), dtype=torch.long)
    for u, (lst, rel) in enumerate(zip(ranked, relevant)):
        rel = set(rel)
        if not rel:
            raise ValueError(f"user at position {u} has no relevant items; drop such users")
        if len(set(lst[:k])) != len(lst[:k]):
            raise ValueError(f"user at position {u}: ranked list repeats an item")
        n_rel[u] = len(rel)
        for r, item in enumerate(lst[:k]):
            hits[u, r] = item in rel
    return hits, n_rel


def _list_metric(name: str, ranked, relevant, k: int, **kw) -> float:
    hits, n_rel = hit_matrix(ranked, relevant, k)
    return ranking_metrics(hits, n_rel, [name], **kw)[name]


def precision_at_k(ranked, relevant, k: int) -> float:
    """Mean precision@k over users; see the module docstring for the formula."""
    return _list_metric("precision", ranked, relevant, k)


def recall_at_k(ranked, relevant, k: int) -> float:
    """Mean recall@k = hits / |R_u| over users."""
    return _list_metric("recall", ranked, relevant, k)


def f1_at_k(ranked, relevant, k: int) -> float:
    """Mean per-user F1@k."""
    return _list_metric("f1", ranked, relevant, k)


def ndcg_at_k(ranked, relevant, k: int) -> float:
    """Mean binary-relevance NDCG@k with the log2(r + 1) discount."""
    return _list_metric("ndcg", ranked, relevant, k)


def map_at_k(ranked, relevant, k: int, denominator: str = "relevant") -> float:
    """Mean average precision@k; ``denominator`` is ``"relevant"`` or ``"min"``."""
    return _list_metric("map", ranked, relevant, k, map_denominator=denominator)


def hit_rate_at_k(ranked, relevant, k: int) -> float:
    """Fraction of users with at least one relevant item in the top k."""
    return _list_metric("hit_rate", ranked, relevant, k)


def mrr_at_k(ranked, relevant, k: int) -> float:
    """Mean reciprocal rank of the first hit within the top k (0 without one)."""
    return _list_metric("mrr", ranked, relevant, k)


def catalogue_coverage(topk: torch.Tensor | np.ndarray, num_items: int) -> float:
    r"""Share of the catalogue recommended to at least one user:
    :math:`|\bigcup_u L_u| / |I|`."""
    topk = torch.as_tensor(topk)
    if num_items <= 0:
        raise ValueError(f"num_items must be positive, got {num_items}")
    if topk.numel() and (topk.min() < 0 or topk.max() >= num_items):
        raise ValueError(f"topk holds item indices outside 0..{num_items - 1}")
    return float(torch.unique(topk).numel() / num_items)


def average_popularity(topk: torch.Tensor | np.ndarray, item_popularity) -> float:
    r"""Popularity bias: mean training popularity of the recommended items,
    :math:`\frac{1}{|U|k}\sum_u \sum_{i \in L_u} \mathrm{pop}(i)`, where
    :math:`\mathrm{pop}(i)` is the fraction of training users who interacted with
    :math:`i`. Compare it with the catalogue mean to see how far a model leans on hits."""
    topk = torch.as_tensor(topk)
    pop = torch.as_tensor(np.asarray(item_popularity), dtype=torch.float64)
    if topk.numel() == 0:
        raise ValueError("topk is empty")
    return float(pop[topk.long()].mean())


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"y_true has shape {a.shape} but y_pred has {b.shape}")
    if a.size == 0:
        raise ValueError("no ratings to compare")
    if np.isnan(b).any():
        raise ValueError("y_pred contains NaN; check the model's predictions")
    return a, b


def rmse(y_true, y_pred) -> float:
    r""":math:`\sqrt{\frac{1}{n}\sum (r_{ui} - \hat r_{ui})^2}`."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true, y_pred) -> float:
    r""":math:`\frac{1}{n}\sum |r_{ui} - \hat r_{ui}|`."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))
