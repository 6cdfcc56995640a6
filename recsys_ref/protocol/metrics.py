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
``recommenders`` 1.2.1's on the same lists (``tests/unit/test_recommenders_peer.py``).
:math:`\mathrm{HR@k} = [h_u > 0]`, :math:`\mathrm{MRR@k} = 1 / r^\ast` with
:math:`r^\ast` the first hit's rank (0 without a hit). F1 is computed per user, then
averaged.

**Beyond accuracy.** For the top-:math:`k` lists :math:`L_u` of the evaluated users
:math:`U` over a catalogue :math:`I` with :math:`n = |I|` items, let
:math:`c_i = |\{u : i \in L_u\}|` be the number of lists that show item :math:`i`
(:math:`c_i = 0` for an item never shown) and :math:`c_{(1)} \le \dots \le c_{(n)}` the
counts sorted in ascending order. Then

.. math::

    \mathrm{Coverage} = \frac{|\{i : c_i > 0\}|}{n}, \qquad
    \mathrm{Gini} = \frac{\sum_{j=1}^{n} (2j - n - 1)\, c_{(j)}}{n \sum_{j} c_{(j)}}
                  = \frac{\sum_{i}\sum_{i'} |c_i - c_{i'}|}{2 n \sum_i c_i}.

Gini is 0 when every item is shown equally often and :math:`(n-1)/n \to 1` when every
list shows the same items (Gini of exposure, as in RecBole's ``GiniIndex``). With
:math:`p(i)` the share of training users who had item :math:`i`, novelty is the mean
self-information of a recommended item (Castells, Vargas & Wang 2011; Zhou et al. 2010),

.. math::

    \mathrm{Novelty} = \frac{1}{|U|\,k} \sum_{u} \sum_{i \in L_u} -\log_2 p(i),

in bits: an item every user had is worth 0 bits, an item one user in 1,024 had is worth 10.
Intra-list diversity (Ziegler et al. 2005) is one minus the mean cosine similarity of the
:math:`k(k-1)/2` pairs inside a list, averaged over lists,

.. math::

    \mathrm{ILD} = \frac{1}{|U|} \sum_u \Bigl(1 - \frac{2}{k(k-1)}
                   \sum_{\{i, j\} \subseteq L_u} \cos(\mathbf{v}_i, \mathbf{v}_j)\Bigr);

with :math:`\mathbf{v}_i` the column of item :math:`i` in the binary training matrix,
:math:`\cos(\mathbf{v}_i, \mathbf{v}_j) = |U_i \cap U_j| / \sqrt{|U_i|\,|U_j|}` (the
users who had both over the geometric mean of their counts), Microsoft Recommenders'
item co-occurrence similarity. Against Recommenders 1.2.1 (``catalog_coverage``,
``novelty``, ``diversity``; ``tests/unit/test_recommenders_peer.py``): their coverage
divides by the number of items *in the training frame*, not the catalogue; their
:math:`p(i)` is item :math:`i`'s share of all training *interactions*, not of users (their
novelty is ours plus :math:`\log_2` of the mean number of items per user); the diversities
are equal.

The workhorse is :func:`ranking_metrics`, which takes a boolean *hit matrix*
``hits[u, r] = rel_r`` of shape ``(U, k)`` and ``num_relevant`` of shape ``(U,)``;
:mod:`recsys_ref.protocol.evaluate` builds both from a score matrix. The list-based functions
(:func:`precision_at_k` …) are for small examples you can check by hand.

Used in: ``chapters/01_recsys_basics`` (every formula with a worked example) and every
chapter after it; the beyond-accuracy measures in the comparison tables of chapters 1–9.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
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
    "gini_exposure",
    "novelty",
    "intra_list_diversity",
    "beyond_accuracy",
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
        raise ValueError(f"hits must have shape (num_users, k) with k >= 1, got "
                         f"{tuple(hits.shape)}")
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


def _topk_array(topk, num_items: int, what: str = "num_items") -> np.ndarray:
    """``topk`` as a 2-D int64 array with every index in ``0..num_items - 1``."""
    arr = np.asarray(torch.as_tensor(topk).cpu()) if isinstance(topk, torch.Tensor) \
        else np.asarray(topk)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"topk must be a non-empty (num_users, k) array of item indices, "
                         f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"topk must hold integer item indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= num_items:
        bad = int(arr.max() if arr.max() >= num_items else arr.min())
        raise ValueError(f"topk holds item index {bad} outside 0..{num_items - 1} "
                         f"({what} = {num_items})")
    return arr.astype(np.int64, copy=False)


def gini_exposure(topk: torch.Tensor | np.ndarray, num_items: int) -> float:
    r"""Gini coefficient of how often each catalogue item is recommended.

    With :math:`c_{(1)} \le \dots \le c_{(n)}` the sorted numbers of lists showing each of
    the :math:`n` = ``num_items`` items (items never shown count as 0),
    :math:`G = \sum_j (2j - n - 1)\, c_{(j)} / (n \sum_j c_{(j)})`: 0 when every item is
    shown equally often, :math:`(n-1)/n` (→ 1) when all exposure goes to one item.

    Example: counts (0, 0, 3, 1) sort to (0, 0, 1, 3); weights (-3, -1, 1, 3) give
    :math:`(1 + 9) / (4 \cdot 4) = 0.625`.
    """
    if not isinstance(num_items, (int, np.integer)) or num_items <= 0:
        raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
    counts = np.sort(np.bincount(_topk_array(topk, num_items).ravel(), minlength=num_items))
    n = len(counts)
    weights = 2 * np.arange(1, n + 1) - n - 1
    return float((weights * counts).sum() / (n * counts.sum()))


def novelty(
    topk: torch.Tensor | np.ndarray,
    item_popularity: np.ndarray | Sequence[float],
    unseen: str | float = "raise",
) -> float:
    r"""Mean self-information :math:`-\log_2 p(i)` of the recommended items, in bits.

    Args:
        topk: ``(num_users, k)`` item indices.
        item_popularity: ``p(i)`` per item, the share of training users who had item
            ``i`` (``train_matrix.getnnz(0) / num_users``), in ``[0, 1]``.
        unseen: what an item with ``p(i) = 0`` (no training user had it; its
            self-information is infinite) contributes: ``"raise"`` refuses with an error;
            ``"zero"`` counts 0 bits, Recommenders' rule (their inner merge drops such items
            from the sum but not from the count); a number in ``(0, 1]`` is used as its
            ``p(i)`` (:func:`beyond_accuracy` passes ``1 / num_users``: the item counts as
            had by one user, the largest finite self-information).
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1:
        raise ValueError(f"item_popularity must be 1-D (one share per item), got {pop.shape}")
    if not np.all(np.isfinite(pop)) or pop.min() < 0 or pop.max() > 1:
        raise ValueError("item_popularity must hold shares in [0, 1] (the fraction of "
                         "training users who had each item), not counts")
    p = pop[_topk_array(topk, len(pop), "len(item_popularity)")]
    zero = p == 0
    if zero.any():
        if isinstance(unseen, str) and unseen == "raise":
            raise ValueError(
                f"{int(zero.sum())} recommended entries are items no training user had "
                "(p(i) = 0, infinite self-information): pass unseen=\"zero\" (Recommenders' "
                "rule) or unseen=<a share such as 1 / num_users> to score them")
        if isinstance(unseen, str) and unseen == "zero":
            info = np.zeros_like(p)
            info[~zero] = -np.log2(p[~zero])
            return float(info.mean())
        if isinstance(unseen, str) or not 0 < float(unseen) <= 1:
            raise ValueError(f"unseen must be 'raise', 'zero' or a share in (0, 1], got "
                             f"{unseen!r}")
        p = np.where(zero, float(unseen), p)
    return float(-np.log2(p).mean())


_ILD_BATCH = 512  # lists per batch: memory O((batch * k)^2)


def intra_list_diversity(
    topk: torch.Tensor | np.ndarray,
    item_vectors: np.ndarray | torch.Tensor | sp.spmatrix,
) -> float:
    r"""One minus the mean pairwise cosine similarity inside each list, averaged over lists.

    Args:
        topk: ``(num_users, k)`` item indices, ``k >= 2``, no item twice in a list.
        item_vectors: **one row per item**, ``(num_items, d)``, dense (array, tensor) or
            scipy sparse. For the training interactions, pass the transpose of the
            ``(num_users, num_items)`` matrix, ``train_matrix.T``: its rows are the items'
            user columns and the similarity is Recommenders' co-occurrence cosine. An item
            whose vector is zero has similarity 0 with every item (Recommenders' rule for
            pairs never seen together).
    """
    if isinstance(item_vectors, torch.Tensor):
        item_vectors = item_vectors.detach().cpu().numpy()
    if sp.issparse(item_vectors):
        vec = sp.csr_matrix(item_vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(vec.multiply(vec).sum(1)).ravel())
    else:
        vec = np.asarray(item_vectors, dtype=np.float64)
        if vec.ndim != 2:
            raise ValueError(f"item_vectors must be 2-D (num_items, d), got shape {vec.shape}")
        norms = np.linalg.norm(vec, axis=1)
    lists = _topk_array(topk, vec.shape[0], "item_vectors.shape[0], one row per item: for a "
                        "(num_users, num_items) interaction matrix pass its transpose .T")
    k = lists.shape[1]
    if k < 2:
        raise ValueError("intra-list diversity needs lists of k >= 2 items (pairs inside a "
                         "list)")
    srt = np.sort(lists, axis=1)
    if (srt[:, 1:] == srt[:, :-1]).any():
        raise ValueError("a list repeats an item; top-k lists hold distinct items")
    inv_norm = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    vec = sp.diags(inv_norm) @ vec if sp.issparse(vec) else vec * inv_norm[:, None]
    off_diag = ~np.eye(k, dtype=bool)
    total = 0.0
    for start in range(0, len(lists), _ILD_BATCH):
        batch = lists[start:start + _ILD_BATCH]
        uniq, inv = np.unique(batch, return_inverse=True)
        sub = vec[uniq]
        sim = sub @ sub.T
        sim = sim.toarray() if sp.issparse(sim) else np.asarray(sim)
        inv = inv.reshape(batch.shape)
        pair_sim = sim[inv[:, :, None], inv[:, None, :]][:, off_diag]   # (B, k(k-1))
        total += (1.0 - pair_sim.mean(1)).sum()
    return float(total / len(lists))


def beyond_accuracy(
    topk: torch.Tensor | np.ndarray, train_matrix: sp.spmatrix | np.ndarray
) -> dict[str, float]:
    r"""Coverage, Gini of exposure, novelty and intra-list diversity of top-k lists,
    measured against the training interactions.

    Args:
        topk: ``(num_users, k)`` item indices of the evaluated users' lists.
        train_matrix: ``(num_users, num_items)`` training interactions (nonzeros count as
            interactions; values are ignored), e.g.
            :func:`~recsys_ref.protocol.evaluate.interaction_matrix` of ``split.train``.

    Returns:
        ``{"coverage", "gini", "novelty", "diversity"}``: :func:`catalogue_coverage` and
        :func:`gini_exposure` over the ``num_items`` of the matrix; :func:`novelty` with
        ``p(i) = |U_i| / |U_train|``, ``U_train`` the users with at least one training
        interaction (all users on most splits; not the held-out users of a new-user
        split), and an item no training user had counted as had by one
        (``p = 1 / |U_train|``); :func:`intra_list_diversity` with the matrix's columns as
        the item vectors (NaN for ``k = 1``: a list of one has no pair).
    """
    mat = sp.csr_matrix(train_matrix, dtype=np.float64)
    if mat.ndim != 2 or min(mat.shape) == 0:
        raise ValueError(f"train_matrix must be a non-empty (num_users, num_items) matrix, "
                         f"got shape {mat.shape}")
    mat.sum_duplicates()
    mat.eliminate_zeros()
    mat.data[:] = 1.0
    num_items = mat.shape[1]
    lists = _topk_array(topk, num_items, "train_matrix.shape[1]")
    num_train_users = int((mat.getnnz(axis=1) > 0).sum())
    if num_train_users == 0:
        raise ValueError("train_matrix holds no interaction: nothing to measure novelty "
                         "and diversity against")
    pop = mat.getnnz(axis=0) / num_train_users
    return {
        "coverage": catalogue_coverage(lists, num_items),
        "gini": gini_exposure(lists, num_items),
        "novelty": novelty(lists, pop, unseen=1.0 / num_train_users),
        "diversity": (intra_list_diversity(lists, mat.T) if lists.shape[1] >= 2
                      else float("nan")),
    }


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
