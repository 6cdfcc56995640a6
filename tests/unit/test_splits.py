"""Splits: determinism, disjointness, and Recommenders' stratified split reproduced."""
import numpy as np
import pandas as pd
import pytest

from recsys_ref.protocol.splits import (grouplens_fold, leave_last_out, per_user_random_split,
                               per_user_ratio_split, stratified_split, temporal_split)


def _random_frame(n=600, nu=30, ni=50, seed=0):
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.c_[rng.integers(0, nu, n), rng.integers(0, ni, n)], axis=0)
    rng.shuffle(pairs)
    return pd.DataFrame({"user": pairs[:, 0], "item": pairs[:, 1],
                         "timestamp": rng.integers(0, 10_000, len(pairs))})


def _reference_stratified(df, ratio, by, seed):
    """Independent re-statement of Recommenders' documented algorithm, one group at a time:
    a uniform number per row from np.random.seed(seed); np.random.rand(n) in row order;
    within each group, rows sorted by it; the row of rank r (1-based) out of n goes to
    train iff r / n <= ratio."""
    np.random.seed(seed)
    rand = np.random.rand(len(df))
    train_pos = []
    for _, idx in df.groupby(by).indices.items():
        order = idx[np.argsort(rand[idx])]
        n = len(order)
        train_pos += [p for r, p in enumerate(order, start=1) if r / n <= ratio]
    mask = np.zeros(len(df), bool)
    mask[train_pos] = True
    return df[mask], df[~mask]


@pytest.mark.parametrize("by", ["item", "user"])
def test_stratified_split_reproduces_recommenders_algorithm(by):
    df = _random_frame()
    train, test = stratified_split(df, 0.75, filter_by=by, seed=42)
    ref_train, ref_test = _reference_stratified(df, 0.75, by, 42)
    assert train.index.sort_values().equals(ref_train.index.sort_values())
    assert test.index.sort_values().equals(ref_test.index.sort_values())


def test_stratified_split_on_ml100k_matches_reference(ml100k):
    train, test = stratified_split(ml100k.ratings, 0.75, filter_by="item", seed=42)
    ref_train, _ = _reference_stratified(ml100k.ratings, 0.75, "item", 42)
    assert len(train) == len(ref_train) == 74_331 and len(test) == 25_669
    assert set(train.index) == set(ref_train.index)


def test_stratified_split_counts_per_group_are_floor_of_ratio():
    df = _random_frame()
    train, _ = stratified_split(df, 0.75, filter_by="item")
    per_item = df.groupby("item").size()
    got = train.groupby("item").size().reindex(per_item.index, fill_value=0)
    assert (got == np.floor(0.75 * per_item + 1e-9).astype(int)).all()


def test_multi_ratio_stratified_partitions_everything():
    df = _random_frame()
    parts = stratified_split(df, [0.6, 0.2, 0.2], filter_by="user", seed=1)
    assert sum(map(len, parts)) == len(df)
    assert len(set().union(*[set(p.index) for p in parts])) == len(df)


def test_per_user_split_is_deterministic_and_keeps_every_user():
    df = _random_frame(2000, 20, 200)
    a = per_user_ratio_split(df, (0.8, 0.1, 0.1), seed=3)
    b = per_user_ratio_split(df, (0.8, 0.1, 0.1), seed=3)
    c = per_user_ratio_split(df, (0.8, 0.1, 0.1), seed=4)
    assert all(x.index.equals(y.index) for x, y in zip(a, b))
    assert not a[2].index.equals(c[2].index)
    assert set(a[0].user) == set(a[2].user) == set(df.user)
    tr, te = per_user_random_split(df, 0.25, seed=0)
    assert len(tr) + len(te) == len(df) and abs(len(te) / len(df) - 0.25) < 0.03


def test_leave_last_out_takes_latest_per_user(tiny_frame):
    train, test = leave_last_out(tiny_frame, 1)
    assert sorted(map(tuple, test[["user", "item"]].to_numpy())) == [(0, 2), (1, 2), (2, 3)]
    assert len(train) == 4


def test_temporal_split_cuts_globally(tiny_frame):
    train, test = temporal_split(tiny_frame, test_ratio=2 / 7)
    assert train["timestamp"].max() < test["timestamp"].min()
    assert len(test) == 2


def test_grouplens_fold_partitions_ml100k(ml100k):
    tests = [grouplens_fold(ml100k.ratings, f)[1] for f in range(1, 6)]
    assert all(len(t) == 20_000 for t in tests)
    assert len(set().union(*[set(t.index) for t in tests])) == 100_000
    base, test = grouplens_fold(ml100k.ratings, 1)
    # GroupLens' u1.test holds u.data's first 20,000 rows; its first row is 196 242 3
    assert tuple(test.iloc[0][["user_id", "item_id", "rating"]]) == (196, 242, 3)
    assert not set(base.index) & set(test.index)


def test_split_errors_are_clear(tiny_frame):
    with pytest.raises(ValueError, match="lacks column"):
        stratified_split(tiny_frame.drop(columns="item"))
    with pytest.raises(ValueError, match="empty"):
        stratified_split(tiny_frame.iloc[:0])
    with pytest.raises(ValueError, match="filter_by"):
        stratified_split(tiny_frame, filter_by="time")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        stratified_split(tiny_frame, ratio=1.5)
    with pytest.raises(ValueError, match="fold"):
        grouplens_fold(tiny_frame, 6)
    with pytest.raises(ValueError, match="100,000"):
        grouplens_fold(tiny_frame, 1)
