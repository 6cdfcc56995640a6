r"""Train/test splits of an interaction table, all deterministic given ``seed``.

Every function takes a ratings frame with at least the columns ``user``, ``item`` (and
``timestamp`` for the temporal splits) and returns frames with the same columns, keeping
the input's row order inside each part. Which protocol a number in the book was measured
under is always stated next to it.

================================  ==========================================================
function                          protocol
================================  ==========================================================
:func:`stratified_split`          Microsoft Recommenders' ``python_stratified_split``:
                                  per group (item by default in their benchmark), a random
                                  75 % to train. Reproduced exactly, so numbers compare with
                                  their published ML-100K table.
:func:`per_user_random_split`     per user, a random ``test_ratio`` of their items held out.
:func:`per_user_ratio_split`      per user, train/valid/test ratios (e.g. 0.8/0.1/0.1).
:func:`leave_last_out`            per user, the latest ``n`` interactions to test.
:func:`temporal_split`            global cut at a time quantile: the past trains, the future
                                  tests.
:func:`grouplens_fold`            GroupLens' own ``u1..u5`` folds of ML-100K (``mku.sh``).
================================  ==========================================================

Used in: ``chapters/01_recsys_basics`` and every chapter that trains a model.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "check_interactions",
    "drop_unseen",
    "k_core",
    "stratified_split",
    "per_user_random_split",
    "per_user_ratio_split",
    "chronological_order",
    "leave_last_out",
    "temporal_split",
    "grouplens_fold",
]


def check_interactions(df: pd.DataFrame, cols: Sequence[str] = ("user", "item"),
                       allow_duplicates: bool = False) -> None:
    """Raise a clear error unless ``df`` is an interaction frame in the package's form.

    The form: columns ``user`` and ``item`` holding 0-based integer indices without NaN
    (map raw ids with :func:`recsys_ref.data.from_frame`), optional numeric ``rating`` /
    ``weight`` without NaN, and no duplicate ``(user, item)`` row (a duplicate can land in
    train and test at once and leak the answer).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of interactions, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"interaction frame lacks column(s) {missing}; it has {list(df.columns)}. "
            "Use the frames returned by recsys_ref.data loaders, or map your own table "
            "with recsys_ref.data.from_frame(df, user=..., item=...)."
        )
    if len(df) == 0:
        raise ValueError("interaction frame is empty: nothing to split or fit")
    for col in ("user", "item"):
        if col not in df.columns:
            continue
        values = df[col]
        if values.isna().any():
            raise ValueError(f"column {col!r} has {int(values.isna().sum())} missing ids (NaN);"
                             " drop those rows first")
        if not pd.api.types.is_integer_dtype(values):
            raise TypeError(
                f"column {col!r} holds {values.dtype} values (e.g. {values.iloc[0]!r}), not "
                "0-based integer indices: map raw ids with recsys_ref.data.from_frame(df, "
                "user=..., item=...), which keeps the maps back to your ids")
        if values.min() < 0:
            raise ValueError(f"column {col!r} has negative indices; ids must be 0-based")
    for col in ("rating", "weight"):
        if col in df.columns and df[col].isna().any():
            raise ValueError(f"column {col!r} has {int(df[col].isna().sum())} NaN values: "
                             "drop or fill them before splitting (a NaN would be predicted "
                             "as NaN or counted as a positive)")
    if not allow_duplicates and {"user", "item"} <= set(df.columns):
        dup = df.duplicated(["user", "item"])
        if dup.any():
            first = df.loc[dup, ["user", "item"]].iloc[0].tolist()
            raise ValueError(
                f"{int(dup.sum()):,} duplicate (user, item) rows (first: {first}); a duplicate "
                "can fall in train and test at once. Aggregate them first, e.g. "
                "recsys_ref.data.from_frame(..., duplicates='sum'|'last')")


def _check(df: pd.DataFrame, cols: Sequence[str]) -> None:
    check_interactions(df, cols)


def drop_unseen(test: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``test`` whose user and item both occur in ``train``."""
    keep = test["user"].isin(train["user"].unique()) & test["item"].isin(train["item"].unique())
    return test[keep.to_numpy()]


def k_core(ratings: pd.DataFrame, k: int = 5, user_k: int | None = None,
           item_k: int | None = None) -> pd.DataFrame:
    """The largest subset in which every user has >= ``user_k`` rows and every item
    >= ``item_k`` (both default ``k``), by repeated filtering until nothing changes.

    Indices are kept as they are (re-index with :func:`recsys_ref.data.from_frame` for a
    dense index space).
    """
    user_k = k if user_k is None else user_k
    item_k = k if item_k is None else item_k
    if user_k < 1 or item_k < 1:
        raise ValueError(f"k-core thresholds must be >= 1, got user_k={user_k}, item_k={item_k}")
    out = ratings
    while True:
        uc = out.groupby("user")["user"].transform("size")
        ic = out.groupby("item")["item"].transform("size")
        keep = ((uc >= user_k) & (ic >= item_k)).to_numpy()
        if keep.all():
            return out
        out = out[keep]
        if len(out) == 0:
            raise ValueError(f"the {user_k}/{item_k}-core is empty: lower the thresholds")


def _normalise(ratios: float | Sequence[float]) -> list[float]:
    if isinstance(ratios, (int, float)):
        if not 0 < ratios < 1:
            raise ValueError(f"a single split ratio must lie in (0, 1), got {ratios}")
        return [float(ratios), 1.0 - float(ratios)]
    ratios = [float(r) for r in ratios]
    if len(ratios) < 2 or any(r <= 0 for r in ratios):
        raise ValueError(f"split ratios must be >= 2 positive numbers, got {ratios}")
    total = math.fsum(ratios)   # as Recommenders: a list summing exactly to 1 is kept
    return ratios if total == 1.0 else [r / total for r in ratios]


def _rank_split(df: pd.DataFrame, by: str, order: np.ndarray, ratios: list[float]) -> list[pd.DataFrame]:
    r"""Rank rows inside each ``by`` group by ``order`` and cut at rounded cumulative counts.

    A row with within-group rank :math:`r` (1-based) in a group of :math:`n` rows goes to
    part :math:`j` when :math:`\operatorname{round}(c_{j-1} n) < r \le
    \operatorname{round}(c_j n)`, :math:`c` the cumulative ratios and ``round`` NumPy's
    half-to-even rounding: the rule of Recommenders' released stratified splitter.
    """
    tmp = pd.DataFrame({"g": df[by].to_numpy(), "o": order, "pos": np.arange(len(df))})
    tmp = tmp.sort_values(["g", "o"], kind="mergesort")
    grp = tmp.groupby("g", sort=False)
    rank = grp.cumcount().to_numpy() + 1
    count = grp["g"].transform("count").to_numpy()
    cum = np.cumsum(ratios)[:-1]
    # part = how many inner cut points lie strictly below the rank
    cuts = np.round(np.outer(count, cum))          # (rows, parts - 1), half to even
    part = np.empty(len(df), dtype=np.int64)
    part[tmp["pos"].to_numpy()] = (rank[:, None] > cuts).sum(axis=1)
    return [df[part == j] for j in range(len(ratios))]


def stratified_split(
    ratings: pd.DataFrame,
    ratio: float | Sequence[float] = 0.75,
    filter_by: str = "item",
    seed: int = 42,
    min_rating: int = 1,
) -> list[pd.DataFrame]:
    r"""Microsoft Recommenders' ``python_stratified_split``, reproduced row for row.

    Each row gets a uniform random number from ``np.random.seed(seed); np.random.rand(n)``
    in the frame's row order; rows are ranked by it inside each group (``filter_by``
    column), and a row with rank :math:`r` of :math:`n` goes to split :math:`j` when
    :math:`\operatorname{round}(c_{j-1} n) < r \le \operatorname{round}(c_j n)`,
    :math:`c` the cumulative ratios and ``round`` half to even (NumPy's). This is the
    rule of the released package (``recommenders`` 1.2.1, checked row by row against it in
    ``tests/unit/test_recommenders_peer.py``). With the GroupLens file order of ML-100K,
    ``ratio=0.75``, ``filter_by="item"`` and ``seed=42`` it gives 75,066 train and 24,934
    test rows: the split behind Recommenders' published ML-100K benchmark table.

    Rows keep the input's order inside each part (Recommenders returns them sorted by
    group and random key); the sets of rows are the same.

    Args:
        ratings: interactions with ``user`` and ``item`` columns, in file order.
        ratio: train fraction, or a list of fractions (normalised to sum to 1).
        filter_by: ``"item"`` or ``"user"``: the grouping column.
        seed: the NumPy legacy global seed Recommenders uses.
        min_rating: drop groups with fewer rows before splitting.

    Returns:
        one frame per ratio, e.g. ``[train, test]``.
    """
    _check(ratings, ["user", "item"])
    if filter_by not in ("user", "item"):
        raise ValueError(f"filter_by must be 'user' or 'item', got {filter_by!r}")
    if min_rating < 1:
        raise ValueError(f"min_rating must be >= 1, got {min_rating}")
    ratios = _normalise(ratio)
    if min_rating > 1:
        counts = ratings.groupby(filter_by)[filter_by].transform("count")
        ratings = ratings[counts >= min_rating]
    rng = np.random.RandomState(seed)  # same stream as np.random.seed(seed)
    order = rng.rand(len(ratings))
    return _rank_split(ratings, filter_by, order, ratios)


def per_user_ratio_split(
    ratings: pd.DataFrame, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> list[pd.DataFrame]:
    r"""Per user, shuffle their interactions and cut them at the given ratios.

    A user with :math:`n` rows gets :math:`\operatorname{round}(c_j n) -
    \operatorname{round}(c_{j-1} n)` of them in part :math:`j` (see
    :func:`stratified_split`); with the default 0.8/0.1/0.1 a user with 10 or more rows is
    in every part.

    Args:
        ratings: interactions with ``user`` and ``item`` columns.
        ratios: fractions for train/valid/test (normalised to sum to 1).
        seed: seed of the ``numpy.random.default_rng`` that draws the order.
    """
    _check(ratings, ["user", "item"])
    rng = np.random.default_rng(seed)
    return _rank_split(ratings, "user", rng.random(len(ratings)), _normalise(list(ratios)))


def per_user_random_split(
    ratings: pd.DataFrame, test_ratio: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, hold out a random ``test_ratio`` of their interactions.

    Returns:
        ``(train, test)``.
    """
    if not 0 < test_ratio < 1:
        raise ValueError(f"test_ratio must lie in (0, 1), got {test_ratio}")
    train, test = per_user_ratio_split(ratings, (1 - test_ratio, test_ratio), seed)
    return train, test


def chronological_order(ratings: pd.DataFrame) -> np.ndarray:
    """Row positions of ``ratings`` sorted by user, then ``timestamp``; equal timestamps
    keep their row order (a stable sort). The one definition of "a user's sequence" in the
    package: :func:`leave_last_out` and the sequential models
    (:mod:`recsys_ref.models.sequential`) both read it, so the item held out is always the
    one a model would have predicted next.

    Example:
        >>> f = pd.DataFrame({"user": [1, 0, 0, 0], "item": [0, 1, 2, 3],
        ...                   "timestamp": [5, 9, 7, 7]})
        >>> chronological_order(f).tolist()    # user 0: t=7 (rows 2, 3), t=9; then user 1
        [2, 3, 1, 0]
    """
    _check(ratings, ["user", "item", "timestamp"])
    return np.lexsort((np.arange(len(ratings)), ratings["timestamp"].to_numpy(),
                       ratings["user"].to_numpy()))


def leave_last_out(ratings: pd.DataFrame, n: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the ``n`` most recent interactions go to test (ties broken by row order,
    :func:`chronological_order`).

    Users with ``n`` or fewer interactions stay entirely in train.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    order = chronological_order(ratings)
    users = ratings["user"].to_numpy()[order]
    count = np.bincount(users)[users]
    # position of each sorted row inside its user's sequence, counted from the end
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    lengths = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, lengths)
    from_end = count - rank
    is_test = np.zeros(len(ratings), dtype=bool)
    is_test[order] = (from_end <= n) & (count > n)
    return ratings[~is_test], ratings[is_test]


def temporal_split(
    ratings: pd.DataFrame, test_ratio: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A global cut in time: interactions after the ``1 - test_ratio`` time quantile test.

    Test rows of users or items never seen in train are kept: they are the cold start
    a deployed system meets. Filter them if your model cannot score them.
    """
    _check(ratings, ["user", "item", "timestamp"])
    if not 0 < test_ratio < 1:
        raise ValueError(f"test_ratio must lie in (0, 1), got {test_ratio}")
    order = np.argsort(ratings["timestamp"].to_numpy(), kind="stable")
    n_train = int(round(len(ratings) * (1 - test_ratio)))
    is_test = np.ones(len(ratings), dtype=bool)
    is_test[order[:n_train]] = False
    return ratings[~is_test], ratings[is_test]


def grouplens_fold(ratings: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GroupLens' ``u{fold}.base`` / ``u{fold}.test`` of ML-100K, rebuilt from ``u.data``.

    GroupLens' ``mku.sh`` takes rows ``20000 (fold-1) .. 20000 fold - 1`` of ``u.data`` (in
    file order) as the test set and the other 80,000 as the base. The five test sets are
    disjoint and cover every rating, so averaging over folds is 5-fold cross-validation.

    Args:
        ratings: the full ML-100K ratings in file order (``load_movielens().ratings``).
        fold: 1..5.
    """
    _check(ratings, ["user", "item"])
    if fold not in (1, 2, 3, 4, 5):
        raise ValueError(f"fold must be one of 1..5, got {fold}")
    if len(ratings) != 100_000:
        raise ValueError(
            f"GroupLens folds are defined on the 100,000 ML-100K ratings in file order; "
            f"got {len(ratings):,} rows"
        )
    is_test = np.zeros(len(ratings), dtype=bool)
    is_test[(fold - 1) * 20_000: fold * 20_000] = True
    return ratings[~is_test], ratings[is_test]
