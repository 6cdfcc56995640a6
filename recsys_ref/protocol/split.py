r"""One object for an evaluation protocol: what a model trains on, what it is tuned on,
what it is tested on, and what is masked when it ranks.

A :class:`Split` holds parts of one interaction table and the sizes of its index spaces
(``train`` and ``test`` are disjoint; ``valid`` lies inside ``train``):

* ``train``: everything the final model may see (it includes ``valid``);
* ``valid``: a part carved out of ``train`` for choosing hyper-parameters and epochs;
* ``test``: held out, read once, after every choice is made.

``split.tuning`` is the same protocol one level down: a :class:`Split` whose ``train`` is
``train`` without ``valid`` and whose ``test`` is ``valid``. Select on
``evaluate(model, split.tuning)``, refit on ``split.train`` if you want, and report
``evaluate(model, split)`` once. Ranking for a part masks the user's items in the part's
``train`` (the full-ranking protocol of :mod:`recsys_ref.protocol.evaluate`).

================================  ==========================================================
constructor                       protocol
================================  ==========================================================
:meth:`Split.recommenders`        Microsoft Recommenders' stratified split (by item, 75 %,
                                  seed 42): the split behind their published ML-100K table
:meth:`Split.per_user`            per user, random train/valid/test ratios (0.8/0.1/0.1)
:meth:`Split.leave_last_out`      per user, the latest interaction to test, the one before
                                  to valid (sequential recommendation)
:meth:`Split.temporal`            a global cut in time: the past trains, the future tests
:meth:`Split.grouplens_fold`      GroupLens' ``u1..u5`` folds of ML-100K
:meth:`Split.cold_items`          a share of the items with all their interactions to test;
                                  ranking is among those items only
:meth:`Split.new_users`           a share of the users held out; part of each one's items is
                                  given as ``history`` (fold-in), the rest is the test
:meth:`Split.link_prediction`     a share of the edges of a graph held out, with as many
                                  sampled non-edges (AUC / AP)
================================  ==========================================================

Every constructor takes a dataset (anything with ``ratings``, ``num_users``, ``num_items``,
such as :func:`recsys_ref.load_movielens`'s result) or a frame with explicit sizes, and an
explicit ``seed``.

Used in: every chapter that trains a model (first in ``chapters/01_recsys_basics``).
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recsys_ref.protocol import splits as S
from recsys_ref.protocol.coldstart import cold_item_split, evaluate_cold
from recsys_ref.protocol.evaluate import as_score_fn, evaluate_ranking
from recsys_ref.protocol.metrics import RANKING_METRICS

__all__ = ["Split", "evaluate"]


def _unpack(data, num_users: int | None, num_items: int | None):
    """``(frame, num_users, num_items, user_ids, item_ids)`` from a dataset, an
    :class:`~recsys_ref.data.Interactions` table or a frame."""
    user_ids = item_ids = None
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        if hasattr(data, "ratings"):                       # a dataset with ratings
            frame = data.ratings
            user_ids, item_ids = getattr(data, "user_ids", None), getattr(data, "item_ids", None)
        else:
            table = data if hasattr(data, "frame") else getattr(data, "interactions", None)
            if table is None or not hasattr(table, "frame"):
                raise TypeError(f"expected a dataset, an Interactions table (from_frame) or "
                                f"an interaction frame, got {type(data).__name__}")
            frame, user_ids, item_ids = table.frame, table.user_ids, table.item_ids
        num_users = data.num_users if num_users is None else num_users
        num_items = data.num_items if num_items is None else num_items
    S.check_interactions(frame)
    if not frame.index.is_unique:       # parts are told apart by index labels
        frame = frame.reset_index(drop=True)
    num_users = int(frame["user"].max()) + 1 if num_users is None else int(num_users)
    num_items = int(frame["item"].max()) + 1 if num_items is None else int(num_items)
    if frame["user"].max() >= num_users or frame["item"].max() >= num_items:
        raise ValueError(f"ids exceed the given sizes ({num_users} users, {num_items} items)")
    return frame, num_users, num_items, user_ids, item_ids


@dataclass(frozen=True, repr=False)
class Split:
    """Train / validation / test parts of one interaction table (see the module docstring).

    Attributes:
        train: interactions the final model may be fitted on (``valid`` included).
        test: held-out interactions.
        num_users, num_items: sizes of the 0-based index spaces.
        valid: the part of ``train`` held out for selection, or ``None``.
        name: the protocol, in words (printed in tables next to the numbers).
        seed: the seed the parts were drawn with (``None`` if deterministic).
        candidates: item indices ranked at evaluation (``None``: the whole catalogue).
        history: for new-user protocols, the revealed interactions of the test users.
        negatives: for link prediction, sampled non-edges paired with ``test``.
        user_ids, item_ids: original ids of the indices (``user_ids[u]``), when the data
            came with them; ``model.recommend(..., id_map=split)`` then speaks original ids.
        drop_unseen: the tuning split tests only ``valid`` rows whose user and item occur
            in ``train`` without ``valid`` (temporal protocols).
        mask_seen: rank only the items the user has not interacted with in ``train``
            (default). ``False`` ranks the whole catalogue, seen items included, as
            RecBole's sequential protocol does (its full sort).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    num_users: int
    num_items: int
    valid: pd.DataFrame | None = None
    name: str = "custom"
    seed: int | None = None
    candidates: np.ndarray | None = None
    history: pd.DataFrame | None = None
    negatives: pd.DataFrame | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    drop_unseen: bool = False
    mask_seen: bool = True

    # ----------------------------------------------------------------- views
    @property
    def train_without_valid(self) -> pd.DataFrame:
        """``train`` minus ``valid``: what a model is fitted on while it is tuned."""
        if self.valid is None:
            return self.train
        return self.train.drop(index=self.valid.index)

    @property
    def tuning(self) -> Split:
        """The split to select on: train without ``valid``, tested on ``valid``."""
        if self.valid is None:
            raise ValueError(f"split {self.name!r} has no validation part: build it with "
                             "valid_ratio > 0 (or valid=True) to tune on it")
        candidates = None
        if self.candidates is not None:        # cold items: rank the validation cold items
            candidates = np.unique(self.valid["item"].to_numpy())
        train = self.train_without_valid
        test = S.drop_unseen(self.valid, train) if self.drop_unseen else self.valid
        return dataclasses.replace(self, train=train, test=test, valid=None,
                                   name=self.name + " (validation)", candidates=candidates)

    def exclude(self) -> list[pd.DataFrame]:
        """The frames masked when ranking for ``test``: the user's training items (none
        when ``mask_seen`` is off)."""
        return [self.train] if self.mask_seen else []

    def sizes(self) -> dict[str, int]:
        """Row counts of the parts and the numbers of test users and items."""
        return {"train": len(self.train),
                "valid": 0 if self.valid is None else len(self.valid),
                "test": len(self.test), "test_users": self.test["user"].nunique(),
                "unseen_test_items": int((~self.test["item"].isin(
                    self.train["item"].unique())).sum())}

    def __repr__(self) -> str:
        sz = self.sizes()
        valid = f" (valid {sz['valid']:,})" if self.valid is not None else ""
        return (f"Split({self.name!r}, train={sz['train']:,}{valid}, test={sz['test']:,}, "
                f"users={self.num_users:,}, items={self.num_items:,}, seed={self.seed})")

    def __post_init__(self) -> None:
        if len(self.test) == 0:
            raise ValueError(f"split {self.name!r} has an empty test part (every test row "
                             "dropped or none drawn): change the ratios or keep unseen rows")
        if self.valid is not None and not self.valid.index.isin(self.train.index).all():
            raise ValueError("valid must be a part of train (its index labels in train's)")
        if self.candidates is None and self.history is None and self.negatives is None:
            unseen = self.sizes()["unseen_test_items"]
            if unseen > 0.01 * len(self.test):
                warnings.warn(
                    f"{unseen:,} of {len(self.test):,} test rows ({unseen / len(self.test):.0%})"
                    f" are items never seen in train, which an ID-based model cannot rank; "
                    "drop them with recsys_ref.protocol.splits.drop_unseen or use a "
                    "cold-item protocol (Split.cold_items)", stacklevel=3)

    # ---------------------------------------------------------- constructors
    @staticmethod
    def _carve(train: pd.DataFrame, valid_ratio: float, seed: int | None) -> pd.DataFrame | None:
        if not 0 <= valid_ratio < 1:
            raise ValueError(f"valid_ratio must lie in [0, 1), got {valid_ratio}")
        if valid_ratio == 0:
            return None
        return S.per_user_ratio_split(train, (1 - valid_ratio, valid_ratio), seed=seed)[1]

    @classmethod
    def recommenders(cls, data, ratio: float = 0.75, filter_by: str = "item", seed: int = 42,
                     valid_ratio: float = 0.1, num_users: int | None = None,
                     num_items: int | None = None) -> Split:
        """Recommenders' stratified split (:func:`~recsys_ref.protocol.splits.stratified_split`);
        ``valid`` is ``valid_ratio`` of each user's training rows (same ``seed``)."""
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        train, test = S.stratified_split(frame, ratio, filter_by=filter_by, seed=seed)
        return cls(train, test, nu, ni, cls._carve(train, valid_ratio, seed),
                   f"stratified by {filter_by} {ratio:g} (Recommenders)", seed,
                   user_ids=uid, item_ids=iid)

    @classmethod
    def per_user(cls, data, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                 num_users: int | None = None, num_items: int | None = None) -> Split:
        """Per user, random train/valid/test parts (two ratios: no validation part)."""
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        parts = S.per_user_ratio_split(frame, ratios, seed=seed)
        if len(parts) == 2:
            return cls(parts[0], parts[1], nu, ni, None, "per-user random", seed,
                       user_ids=uid, item_ids=iid)
        if len(parts) != 3:
            raise ValueError(f"give two or three ratios, got {len(parts)}")
        train, valid, test = parts
        return cls(pd.concat([train, valid]).sort_index(), test, nu, ni, valid,
                   "per-user random " + "/".join(f"{r:g}" for r in ratios), seed,
                   user_ids=uid, item_ids=iid)

    @classmethod
    def leave_last_out(cls, data, n: int = 1, valid: bool = True, mask_seen: bool = True,
                       num_users: int | None = None, num_items: int | None = None) -> Split:
        """Per user, the ``n`` latest interactions to test and the ``n`` before to valid
        (by timestamp, ties in row order: :func:`~recsys_ref.protocol.splits.chronological_order`).

        The protocol of sequential recommendation: a model reads each user's history in
        ``train`` (the validation items included, when testing) and predicts what comes
        next. ``mask_seen=False`` ranks the whole catalogue, items already seen included
        (RecBole's sequential protocol); the default masks them, as every other split.
        """
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        train, test = S.leave_last_out(frame, n)
        val = S.leave_last_out(train, n)[1] if valid else None
        name = f"leave-last-{n}-out (by time)" + ("" if mask_seen else ", seen items ranked")
        return cls(train, test, nu, ni, val, name, None, user_ids=uid, item_ids=iid,
                   mask_seen=mask_seen)

    @classmethod
    def temporal(cls, data, test_ratio: float = 0.2, valid_ratio: float = 0.1,
                 drop_unseen: bool = True, num_users: int | None = None,
                 num_items: int | None = None) -> Split:
        """A global time cut; ``valid`` is the latest ``valid_ratio`` of the past. With
        ``drop_unseen`` test rows of users or items absent from train are dropped."""
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        train, test = S.temporal_split(frame, test_ratio)
        val = S.temporal_split(train, valid_ratio)[1] if valid_ratio > 0 else None
        if drop_unseen:
            kept = S.drop_unseen(test, train)
            if len(kept) < len(test):
                warnings.warn(f"{len(test) - len(kept):,} of {len(test):,} test rows dropped: "
                              "their user or item never occurs before the cut", stacklevel=2)
            test = kept
        return cls(train, test, nu, ni, val, f"temporal {1 - test_ratio:g}/{test_ratio:g}",
                   None, user_ids=uid, item_ids=iid, drop_unseen=drop_unseen)

    @classmethod
    def grouplens_fold(cls, data, fold: int, valid_ratio: float = 0.1, seed: int = 0,
                       num_users: int | None = None, num_items: int | None = None) -> Split:
        """GroupLens' ``u{fold}.base`` / ``u{fold}.test``; ``valid`` from the base only."""
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        train, test = S.grouplens_fold(frame, fold)
        return cls(train, test, nu, ni, cls._carve(train, valid_ratio, seed),
                   f"GroupLens fold u{fold}", seed, user_ids=uid, item_ids=iid)

    @classmethod
    def cold_items(cls, data, cold_frac: float = 0.2, seed: int = 0, valid_frac: float = 0.0,
                   num_users: int | None = None, num_items: int | None = None) -> Split:
        """``cold_frac`` of the items with all their rows to test; ranking among them only.
        With ``valid_frac`` a validation cold set is drawn among the warm items."""
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        warm, cold, cold_ids = cold_item_split(frame, cold_frac, seed=seed, num_items=ni)
        val = None
        if valid_frac > 0:
            val = cold_item_split(warm, valid_frac, seed=seed + 1, num_items=ni)[1]
        return cls(warm, cold, nu, ni, val, f"cold items {cold_frac:g}", seed,
                   candidates=cold_ids, user_ids=uid, item_ids=iid)

    @classmethod
    def new_users(cls, data, user_frac: float = 0.1, history_frac: float = 0.5, seed: int = 0,
                  num_users: int | None = None, num_items: int | None = None) -> Split:
        """``user_frac`` of the users held out entirely from ``train``; a random
        ``history_frac`` of each one's rows is revealed as ``history`` (what a new user
        tells the system), the rest is ``test``."""
        frame, nu, ni, uid, iid = _unpack(data, num_users, num_items)
        if not 0 < user_frac < 1 or not 0 < history_frac < 1:
            raise ValueError("user_frac and history_frac must lie in (0, 1)")
        rng = np.random.default_rng(seed)
        users = np.unique(frame["user"].to_numpy())
        new = rng.choice(users, size=max(1, int(round(user_frac * len(users)))), replace=False)
        is_new = frame["user"].isin(new).to_numpy()
        history, test = S.per_user_ratio_split(frame[is_new], (history_frac, 1 - history_frac),
                                               seed=seed)
        test = test[test["user"].isin(history["user"].unique()).to_numpy()]  # needs a history
        return cls(frame[~is_new], test, nu, ni, None, f"new users {user_frac:g}", seed,
                   history=history, user_ids=uid, item_ids=iid)

    @classmethod
    def link_prediction(cls, edges: pd.DataFrame, num_nodes: int, test_ratio: float = 0.5,
                        seed: int = 0) -> Split:
        """Hold out ``test_ratio`` of an undirected graph's edges (columns ``user`` and
        ``item`` = the two endpoints, each edge once) and sample as many node pairs that
        are not edges as negatives. The training graph may lose nodes' last edges, as in
        the usual 50 % hold-out of the link-prediction literature."""
        S.check_interactions(edges)
        if not 0 < test_ratio < 1:
            raise ValueError(f"test_ratio must lie in (0, 1), got {test_ratio}")
        u, v = edges["user"].to_numpy(), edges["item"].to_numpy()
        if max(u.max(), v.max()) >= num_nodes:
            raise ValueError(f"node ids must lie below num_nodes={num_nodes}")
        if (u == v).any():
            raise ValueError("edges holds self-loops; drop them")
        pairs = pd.Series(list(zip(np.minimum(u, v).tolist(), np.maximum(u, v).tolist())))
        if pairs.duplicated().any():
            raise ValueError("edges lists an undirected edge twice (both directions?); keep "
                             "each edge once, e.g. the rows with user < item")
        known = set(pairs.tolist())
        rng = np.random.default_rng(seed)
        is_test = np.zeros(len(edges), dtype=bool)
        is_test[rng.permutation(len(edges))[: int(round(test_ratio * len(edges)))]] = True
        if is_test.sum() > num_nodes * (num_nodes - 1) // 2 - len(known):
            raise ValueError("the graph has fewer non-edges than held-out edges: lower "
                             "test_ratio")
        neg: list[tuple[int, int]] = []
        while len(neg) < is_test.sum():
            a, b = rng.integers(0, num_nodes, size=2).tolist()
            pair = (min(a, b), max(a, b))
            if a != b and pair not in known:
                known.add(pair)
                neg.append(pair)
        negatives = pd.DataFrame(neg, columns=["user", "item"])
        return cls(edges[~is_test], edges[is_test], num_nodes, num_nodes, None,
                   f"link prediction, {test_ratio:.0%} of edges held out", seed,
                   negatives=negatives)


def evaluate(model, split: Split, k: int = 10, metrics: Sequence[str] = RANKING_METRICS,
             per_user: bool = False, beyond: bool = False,
             **kwargs) -> dict[str, float] | tuple:
    """Rank for ``split.test`` as the split says and return ``{metric: value}``.

    What is masked and ranked follows the protocol: the user's ``split.train`` items,
    the whole catalogue (most protocols); only ``split.candidates`` (cold items; nothing
    to mask); the user's ``split.history`` (new users, scored by fold-in:
    ``model.score_items(history of u)`` for a fitted Recommender, or pass your own
    ``score_fn``). ``model`` is a fitted Recommender, a ``score_fn`` or a score matrix;
    ``kwargs`` go to :func:`~recsys_ref.protocol.evaluate.evaluate_ranking`. Evaluate the
    tuning part with ``evaluate(model, split.tuning)``. A sequential model
    (:mod:`recsys_ref.models.sequential`) scores each user from her history in
    ``split.train``, whatever it was fitted on: fitted on ``split.tuning.train``, it is
    tested on ``split`` with the validation items in the history.

    ``per_user=True`` returns ``(metrics, per_user_frame)`` (index: user index, one
    column per metric) to pair two models with
    :func:`~recsys_ref.protocol.stats.paired_test`; ``beyond=True`` adds ``coverage``,
    ``gini``, ``novelty`` and ``diversity`` of the top-k lists, measured against
    ``split.train`` (:func:`~recsys_ref.protocol.metrics.beyond_accuracy`). With
    ``return_topk=True`` as well, the tuple is ``(metrics, per_user_frame, topk, users)``.
    """
    if split.negatives is not None:
        raise ValueError("a link-prediction split is scored with AUC/AP on split.test and "
                         "split.negatives, not with ranking metrics")
    if split.candidates is not None:
        options = sorted(kwargs) + ["per_user"] * bool(per_user) + ["beyond"] * bool(beyond)
        if options:
            raise TypeError(f"options {options} are not supported on a cold-item "
                            "split (ranking among the candidates only)")
        return evaluate_cold(as_score_fn(model, None), split.test, split.candidates,
                             split.num_users, k, metrics=list(metrics))
    kwargs.update(per_user=per_user, beyond=split.train if beyond else None)
    if getattr(model, "reads_history", False) and split.history is None:
        # a sequential model predicts from each user's history: the split's train part
        # (for the test: the validation items included)
        def model(users: torch.Tensor, fitted=model, history=split.train) -> torch.Tensor:
            return fitted.score(users, history=history)
    if split.history is None:
        return evaluate_ranking(model, split.test, split.num_users, split.num_items, k,
                                exclude=split.exclude(), metrics=metrics, **kwargs)
    if hasattr(model, "score_items"):              # a fitted Recommender: fold the users in
        items = split.history.groupby("user")["item"].agg(lambda s: s.to_numpy())

        def model(users: torch.Tensor, fitted=model) -> torch.Tensor:
            return torch.stack([fitted.score_items(items[int(u)]) for u in users.tolist()])
    return evaluate_ranking(model, split.test, split.num_users, split.num_items, k,
                            exclude=[split.history], metrics=metrics, **kwargs)
