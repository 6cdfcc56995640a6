"""Splits: determinism, disjointness, and hand-worked examples of the stratified rule."""
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


# Stratified split: hand-worked examples of the rule of Recommenders' released splitter.
# Row-by-row agreement with the installed package itself is in test_recommenders_peer.py.
# Rule: a row of within-group rank r (1-based, by np.random.RandomState(seed).rand(n) in
# row order) in a group of n rows goes to part j when round(c[j-1] n) < r <= round(c[j] n),
# c the cumulative ratios, round = NumPy's half to even.


def test_stratified_split_ranks_rows_by_the_seeded_random_key():
    # One item, 4 rows. RandomState(0).rand(4) = [.5488, .7152, .6028, .5449], so the ranks
    # of rows 0..3 are 2, 4, 3, 1; round(.75 * 4) = 3, so rows 3, 0, 2 train and row 1 tests.
    df = pd.DataFrame({"user": [0, 1, 2, 3], "item": [0, 0, 0, 0]})
    train, test = stratified_split(df, 0.75, filter_by="item", seed=0)
    assert list(train.index) == [0, 2, 3] and list(test.index) == [1]


def test_stratified_split_train_counts_round_half_to_even():
    # Train rows per group of n at ratio .75 = round(.75 n), worked out by hand:
    #   n       1    2    3     4  5     6    7     8  9     10
    #   .75 n  .75  1.5  2.25  3  3.75  4.5  5.25  6  6.75  7.5
    #   train   1    2    2     3  4     4    5     6  7     8
    # (1.5 -> 2 and 7.5 -> 8 but 4.5 -> 4: halves go to the even neighbour; a group of one
    # row stays in train.)
    sizes = np.arange(1, 11)
    df = pd.DataFrame({"item": np.repeat(sizes - 1, sizes), "user": np.arange(sizes.sum())})
    for seed in (0, 1, 42):
        train, test = stratified_split(df, 0.75, filter_by="item", seed=seed)
        assert train.groupby("item").size().tolist() == [1, 2, 2, 3, 4, 4, 5, 6, 7, 8]
        assert len(train) + len(test) == len(df)


def test_stratified_three_way_cut_points():
    # Ratios [.8, .1, .1]: c = [.8, .9, 1]. By hand, per group of n:
    #   n = 5:  round(4) = 4, round(4.5) = 4   -> 4 train, 0 valid, 1 test
    #   n = 10: round(8) = 8, round(9) = 9     -> 8 / 1 / 1
    #   n = 15: round(12) = 12, round(13.5) = 14 -> 12 / 2 / 1
    sizes = [5, 10, 15]
    df = pd.DataFrame({"user": np.repeat([0, 1, 2], sizes), "item": np.arange(sum(sizes))})
    parts = stratified_split(df, [0.8, 0.1, 0.1], filter_by="user", seed=7)
    counts = [p.groupby("user").size().reindex([0, 1, 2], fill_value=0).tolist() for p in parts]
    assert counts == [[4, 8, 12], [0, 1, 2], [1, 1, 1]]


def test_stratified_split_on_ml100k_gives_recommenders_sizes(ml100k):
    # The split behind Recommenders' published ML-100K table (confirmed against the
    # installed recommenders 1.2.1 in test_recommenders_peer.py).
    train, test = stratified_split(ml100k.ratings, 0.75, filter_by="item", seed=42)
    assert (len(train), len(test)) == (75_066, 24_934)
    assert not set(train.index) & set(test.index)


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
