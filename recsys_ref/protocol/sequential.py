r"""The two next-item protocols of the book's sequential chapter, on MovieLens-1M.

Both hold out each user's latest interaction for test and the one before for validation
(:meth:`~recsys_ref.protocol.split.Split.leave_last_out`, ties in the order of the
ratings file) and rank the whole catalogue; they differ in the data and in what is
ranked:

================  ==============================================================  ==========
protocol          data                                                             seen items
================  ==============================================================  ==========
``"sasrec"``      every rating of the items rated at least 5 times (one pass):    masked
                  6,040 users, 3,416 items, 999,611 interactions — the ML-1M file
                  of the BERT4Rec release that the full-ranking SASRec
                  reproductions train on (Klenitskiy & Vasilev 2023; Petrov &
                  Macdonald 2022, 2023); they mask the user's history at ranking
``"recbole"``     ratings >= 3, then users and items with at least 10 of them,    ranked
                  filtered until nothing changes: 6,033 users, 3,123 items,
                  834,449 interactions — RecBole's ML-1M sequential benchmark
                  (its counts include one padding user and item), whose full sort
                  ranks the history too
================  ==============================================================  ==========

In both, the validation item is part of the history the test prediction reads
(:func:`recsys_ref.evaluate` passes ``split.train``). HR@k is the split's recall@k (one
held-out item per user).

Used in: ``chapters/10_sequential``, ``chapters/11_session_graphs``,
``benchmarks/part4_sequential.py``.
"""
from __future__ import annotations

import pandas as pd

from recsys_ref.data.interactions import Interactions, from_frame
from recsys_ref.protocol.split import Split
from recsys_ref.protocol.splits import k_core

__all__ = ["NEXT_ITEM_PROTOCOLS", "next_item_interactions", "next_item_split"]

#: protocol -> (what it keeps, whether seen items are masked)
NEXT_ITEM_PROTOCOLS = {
    "sasrec": ("items rated >= 5 times (one pass)", True),
    "recbole": ("ratings >= 3, then a 10-core of users and items", False),
}


def next_item_interactions(ratings: pd.DataFrame, protocol: str = "sasrec") -> Interactions:
    """The interactions a protocol keeps, re-indexed densely (original ids kept).

    Args:
        ratings: MovieLens ratings in file order with ``user_id``, ``item_id``, ``rating``
            and ``timestamp`` columns (``load_movielens("ml-1m").ratings``).
        protocol: ``"sasrec"`` or ``"recbole"`` (see the module docstring).
    """
    if protocol not in NEXT_ITEM_PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; use one of "
                         f"{sorted(NEXT_ITEM_PROTOCOLS)}")
    missing = {"user_id", "item_id", "rating", "timestamp"} - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings lack the column(s) {sorted(missing)}: pass "
                         "load_movielens('ml-1m').ratings")
    if protocol == "sasrec":
        counts = ratings.groupby("item_id")["item_id"].transform("size")
        kept = ratings[(counts >= 5).to_numpy()]
    else:
        liked = ratings[(ratings["rating"] >= 3).to_numpy()]
        # k_core counts by the user and item columns: the original ids will do
        kept = k_core(liked[["user_id", "item_id", "rating", "timestamp"]].rename(
            columns={"user_id": "user", "item_id": "item"}), 10)
        kept = kept.rename(columns={"user": "user_id", "item": "item_id"})
    return from_frame(kept.reset_index(drop=True), user="user_id", item="item_id",
                      rating="rating", timestamp="timestamp")


def next_item_split(ratings: pd.DataFrame, protocol: str = "sasrec") -> Split:
    """:func:`next_item_interactions` split by leave-last-out, validation included, with
    the protocol's masking."""
    data = next_item_interactions(ratings, protocol)
    split = Split.leave_last_out(data, mask_seen=NEXT_ITEM_PROTOCOLS[protocol][1])
    return split
