"""Our split and ranking metrics against the installed peer, Microsoft Recommenders 1.2.1.

Issue 11, section 1: a claim to reproduce a peer is checked against the peer's *released*
package, never against our own re-statement of its rule. ``recommenders==1.2.1`` is
installed with ``pip install --no-deps`` (the two modules used here import only numpy,
pandas and scikit-learn). Its ``datasets/python_splitters.py``, ``datasets/split_utils.py``
and ``evaluation/python_evaluation.py`` are byte-identical to the repository's head
(recommenders-team/recommenders b02c95e, 2025-09-29), the code their ML-100K benchmark
notebook was re-run with.

Their rule (``_do_stratification``): ``np.random.seed(seed)``, one ``np.random.rand``
number per row in frame order, rows sorted by (group, number), and the row of rank ``r``
in a group of ``n`` goes to part ``j`` when ``round(c[j-1] n) < r <= round(c[j] n)``, with
``c = np.cumsum(ratios)`` and ``round`` NumPy's half-to-even. Parts are compared as sets
of the input's row labels: theirs come back sorted by group and random number, ours in
input order.

Their metrics are compared on the *same* top-k lists: ours (from
:func:`recsys_ref.evaluate_ranking`, ties broken by the lower item index) are handed to
them as predictions with strictly decreasing scores, so no tie is left for them to break.
"""
from __future__ import annotations

import importlib.metadata

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip(
    "recommenders.datasets.python_splitters",
    reason="the peer is not installed: `pip install --no-deps recommenders==1.2.1` "
    "(see the Makefile) to compare our split and metrics with Microsoft Recommenders'",
)
from recommenders.datasets.python_splitters import python_stratified_split  # noqa: E402
from recommenders.evaluation import python_evaluation as peer  # noqa: E402

from recsys_ref import evaluate_ranking  # noqa: E402
from recsys_ref.protocol.metrics import hit_matrix, ranking_metrics  # noqa: E402
from recsys_ref.protocol.splits import stratified_split  # noqa: E402

PEER_VERSION = "1.2.1"
TOL = 1e-9


# ---------------------------------------------------------------------------- helpers
def _theirs(df, ratio, by, seed, min_rating=1, col_user="user", col_item="item"):
    """Their splitter on a copy: it writes a ``random`` column into the frame it gets."""
    return python_stratified_split(df.copy(), ratio=ratio, min_rating=min_rating,
                                   filter_by=by, col_user=col_user, col_item=col_item,
                                   seed=seed)


def _assert_same_parts(ours, theirs):
    """Same number of parts, and part j holds the same rows (labels and contents)."""
    assert len(ours) == len(theirs)
    for j, (a, b) in enumerate(zip(ours, theirs)):
        assert set(a.index) == set(b.index), (
            f"part {j}: {len(set(a.index) - set(b.index))} rows only in ours, "
            f"{len(set(b.index) - set(a.index))} only in theirs")
        pd.testing.assert_frame_equal(a.sort_index(), b.sort_index())


def _small_groups_frame(by: str, seed: int) -> pd.DataFrame:
    """Groups of every size 1..14 (four of each), rows shuffled so groups interleave.

    Sizes 2, 6, 10, 14 put ``0.75 n`` exactly on a half (1.5, 4.5, 7.5, 10.5), where
    half-to-even rounding decides; sizes 5 and 10 do the same for 0.1/0.9 cut points.
    Inside a group the other ids are distinct (no duplicate (user, item) row, which our
    splitter rejects), drawn from 20 values; ratings and timestamps take 2 and 3 values,
    so they tie everywhere. The index is a shuffled set of labels, not 0..n-1, so parts
    are matched by label.
    """
    rng = np.random.default_rng(seed)
    sizes = np.tile(np.arange(1, 15), 4)
    group = np.repeat(np.arange(len(sizes)), sizes)
    other_ids = np.concatenate([rng.choice(20, s, replace=False) for s in sizes])
    n = len(group)
    other = "item" if by == "user" else "user"
    df = pd.DataFrame({by: group, other: other_ids,
                       "rating": rng.integers(1, 3, n), "timestamp": rng.integers(0, 3, n)})
    df = df.iloc[rng.permutation(n)]
    df.index = rng.permutation(np.arange(10 * n, 11 * n))
    return df


# ---------------------------------------------------------------------------- the peer
def test_installed_peer_is_the_release_we_cite():
    assert importlib.metadata.version("recommenders") == PEER_VERSION


# ---------------------------------------------------------------------------- split
@pytest.mark.parametrize("seed", [42, 7])
@pytest.mark.parametrize("by", ["item", "user"])
def test_ml100k_split_equals_peer_row_for_row(ml100k, by, seed):
    ratings = ml100k.ratings
    _assert_same_parts(stratified_split(ratings, 0.75, filter_by=by, seed=seed),
                       _theirs(ratings, 0.75, by, seed))


def test_ml100k_split_on_original_ids_equals_peer(ml100k):
    """Their benchmark splits GroupLens' 1-based ids; our 0-based ids group the same rows."""
    ratings = ml100k.ratings
    _assert_same_parts(stratified_split(ratings, 0.75, filter_by="item", seed=42),
                       _theirs(ratings, 0.75, "item", 42, col_user="user_id",
                               col_item="item_id"))


def test_ml100k_benchmark_split_sizes(ml100k):
    """The split behind Recommenders' published ML-100K table: 75,066 / 24,934 rows."""
    train, test = stratified_split(ml100k.ratings, 0.75, filter_by="item", seed=42)
    peer_train, peer_test = _theirs(ml100k.ratings, 0.75, "item", 42)
    assert (len(train), len(test)) == (len(peer_train), len(peer_test)) == (75_066, 24_934)


@pytest.mark.parametrize("ratio", [
    0.75, 0.7, 0.9, [0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [3, 1], [0.5, 0.25, 0.125, 0.125]])
@pytest.mark.parametrize("by", ["user", "item"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_groups_split_equals_peer(by, ratio, seed):
    df = _small_groups_frame(by, seed)
    _assert_same_parts(stratified_split(df, ratio, filter_by=by, seed=seed),
                       _theirs(df, ratio, by, seed))


def test_half_ties_round_to_even_like_peer():
    """n = 2, 6, 10, 14 with ratio 0.75: 0.75 n = 1.5, 4.5, 7.5, 10.5 rounds to 2, 4, 8, 10
    train rows (half to even), on both sides."""
    sizes = np.array([2, 6, 10, 14])
    df = pd.DataFrame({"item": np.repeat(np.arange(4), sizes), "user": np.arange(sizes.sum())})
    for train in (stratified_split(df, 0.75, seed=3)[0], _theirs(df, 0.75, "item", 3)[0]):
        assert train.groupby("item").size().tolist() == [2, 4, 8, 10]


def test_ratio_list_is_normalised_like_peer():
    """[0.7, 0.2, 0.1] is normalised as the peer does, and the last ulp matters.

    The peer divides by ``math.fsum(ratios)`` only when that is not exactly 1.0; here the
    binary values sum to 1 - 2.8e-17, which ``fsum`` rounds to 1.0, so it keeps the ratios:
    cumulative [0.7, 0.8999999999999999, 0.9999999999999999]. In a group of 5 the cut
    points are round(3.5) = 4, round(4.499999999999999) = 4 and 5: 4 train rows, 0 valid,
    1 test. Dividing by ``np.sum`` (0.9999999999999999) instead gives 0.9000000000000001,
    round(4.500000000000001) = 5, and sends the fifth row to valid instead of test.
    """
    df = pd.DataFrame({"user": np.repeat(np.arange(20), 5), "item": np.tile(np.arange(5), 20)})
    theirs = _theirs(df, [0.7, 0.2, 0.1], "user", 0)
    assert [len(p) for p in theirs] == [80, 0, 20]
    _assert_same_parts(stratified_split(df, [0.7, 0.2, 0.1], filter_by="user", seed=0), theirs)


@pytest.mark.parametrize("min_rating", [2, 5])
@pytest.mark.parametrize("by", ["user", "item"])
def test_min_rating_filter_equals_peer(by, min_rating):
    """Groups below ``min_rating`` rows are dropped *before* the random numbers are drawn,
    so the draws of the remaining rows shift: both sides must drop the same rows first."""
    df = _small_groups_frame(by, seed=5)
    ours = stratified_split(df, 0.75, filter_by=by, seed=11, min_rating=min_rating)
    theirs = _theirs(df, 0.75, by, 11, min_rating=min_rating)
    _assert_same_parts(ours, theirs)
    kept = df.groupby(by)[by].transform("size") >= min_rating
    assert sum(map(len, ours)) == kept.sum() < len(df)


def test_ml100k_min_rating_split_equals_peer(ml100k):
    ratings = ml100k.ratings
    _assert_same_parts(
        stratified_split(ratings, [0.8, 0.1, 0.1], filter_by="item", seed=42, min_rating=10),
        _theirs(ratings, [0.8, 0.1, 0.1], "item", 42, min_rating=10))


def test_sparse_ids_split_equals_peer():
    """Ids need not be dense: items 100, 107, 114, ... group the same rows on both sides."""
    df = _small_groups_frame("item", seed=9)
    df["item"] = 100 + 7 * df["item"]
    _assert_same_parts(stratified_split(df, 0.75, filter_by="item", seed=4),
                       _theirs(df, 0.75, "item", 4))


# ---------------------------------------------------------------------------- metrics
def _peer_predictions(topk: torch.Tensor, users: np.ndarray) -> pd.DataFrame:
    """Our top-k lists as their ``rating_pred``: scores k, k-1, ..., 1 down each list."""
    k = topk.shape[1]
    return pd.DataFrame({"user": np.repeat(users, k).astype(np.int64),
                         "item": topk.numpy().ravel().astype(np.int64),
                         "prediction": np.tile(np.arange(k, 0, -1, dtype=np.float64),
                                               len(users))})


def _peer_metrics(test: pd.DataFrame, pred: pd.DataFrame, k: int) -> dict[str, float]:
    cols = dict(col_user="user", col_item="item", col_prediction="prediction", k=k)
    return {
        "precision": peer.precision_at_k(test, pred, **cols),
        "recall": peer.recall_at_k(test, pred, **cols),
        "ndcg": peer.ndcg_at_k(test, pred, col_rating="rating", **cols),
        "ndcg_log2": peer.ndcg_at_k(test, pred, col_rating="rating",
                                    discfun_type="log2", **cols),
        "map": peer.map(test, pred, **cols),            # denominator |R_u|
        "map_at_k": peer.map_at_k(test, pred, **cols),  # denominator min(k, |R_u|)
    }


def _scores(kind: str, num_users: int, num_items: int, train: pd.DataFrame) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if kind == "popularity":  # many items share a count: ties broken by the lower index
        pop = np.bincount(train["item"].to_numpy(), minlength=num_items)
        return torch.as_tensor(pop, dtype=torch.float64).expand(num_users, num_items)
    if kind == "coarse":      # five score levels: ties everywhere
        return torch.randint(0, 5, (num_users, num_items), generator=gen).to(torch.float64)
    return torch.rand(num_users, num_items, generator=gen, dtype=torch.float64)


@pytest.fixture(scope="module")
def ml100k_split(ml100k):
    return stratified_split(ml100k.ratings, 0.75, filter_by="item", seed=42)


@pytest.mark.parametrize("k", [1, 10, 50])
@pytest.mark.parametrize("kind", ["popularity", "random", "coarse"])
def test_ml100k_metrics_equal_peer(ml100k, ml100k_split, kind, k):
    train, test = ml100k_split
    scores = _scores(kind, ml100k.num_users, ml100k.num_items, train)
    names = ("precision", "recall", "ndcg", "map")
    ours, topk, users = evaluate_ranking(scores, test, ml100k.num_users, ml100k.num_items,
                                         k=k, exclude=[train], metrics=names,
                                         return_topk=True)
    ours_min = evaluate_ranking(scores, test, ml100k.num_users, ml100k.num_items, k=k,
                                exclude=[train], metrics=["map"], map_denominator="min")
    pred = _peer_predictions(topk, users)
    # the lists they rank are ours, in our order
    ranked = peer.get_top_k_items(pred, col_user="user", col_rating="prediction", k=k)
    assert np.array_equal(ranked["item"].to_numpy(), topk.numpy().ravel())
    theirs = _peer_metrics(test[["user", "item", "rating"]], pred, k)
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=TOL)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=TOL)
    assert ours["ndcg"] == pytest.approx(theirs["ndcg"], abs=TOL)
    assert ours["ndcg"] == pytest.approx(theirs["ndcg_log2"], abs=TOL)
    assert ours["map"] == pytest.approx(theirs["map"], abs=TOL)
    assert ours_min["map"] == pytest.approx(theirs["map_at_k"], abs=TOL)
    assert theirs["precision"] > 0  # the comparison is not between two zeros


def test_hand_example_metrics_equal_peer():
    """One user, R = {1, 2, 3, 4, 5}, list (1, 9, 2) at k = 3: hits at ranks 1 and 3.

    P@3 = 2/3; R@3 = 2/5; nDCG@3 = (1 + 1/log2 4) / (1 + 1/log2 3 + 1/log2 4) = 0.7039;
    AP: precisions at the hits 1/1 and 2/3 sum to 5/3, over |R| = 5 gives 1/3 (their
    ``map``, our ``"relevant"``), over min(3, 5) = 3 gives 5/9 (their ``map_at_k``, ours
    ``"min"``). A second user, R = {7}, list (7, 8, 9): P = 1/3, R = 1, nDCG = 1, AP = 1.
    """
    lists, relevant = [[1, 9, 2], [7, 8, 9]], [{1, 2, 3, 4, 5}, {7}]
    hits, n_rel = hit_matrix(lists, relevant, 3)
    ours = ranking_metrics(hits, n_rel, ["precision", "recall", "ndcg", "map"])
    ours_min = ranking_metrics(hits, n_rel, ["map"], map_denominator="min")
    ndcg_u0 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3) + 1 / np.log2(4))
    expected = {"precision": (2 / 3 + 1 / 3) / 2, "recall": (2 / 5 + 1) / 2,
                "ndcg": (ndcg_u0 + 1) / 2, "map": (1 / 3 + 1) / 2, "map_at_k": (5 / 9 + 1) / 2}
    test = pd.DataFrame([(u, i, 1.0) for u, rel in enumerate(relevant) for i in sorted(rel)],
                        columns=["user", "item", "rating"])
    theirs = _peer_metrics(test, _peer_predictions(torch.tensor(lists), np.arange(2)), 3)
    for name in ("precision", "recall", "ndcg", "map"):
        assert ours[name] == pytest.approx(expected[name], abs=TOL)
        assert theirs[name] == pytest.approx(expected[name], abs=TOL)
    assert ours_min["map"] == pytest.approx(expected["map_at_k"], abs=TOL)
    assert theirs["map_at_k"] == pytest.approx(expected["map_at_k"], abs=TOL)


# ---------------------------------------------------------------------------- beyond accuracy
# Their ``catalog_coverage``, ``novelty`` and ``diversity`` (default
# ``item_sim_measure="item_cooccurrence_count"``) on the same top-k lists as ours.
# Where their definitions differ from the book's, the test states the conversion:
# * coverage: they divide by the number of distinct items in the *training frame*; we
#   divide by the catalogue size ``num_items``;
# * novelty: their p(i) is item i's share of all training *rows* (the item-choice model of
#   Castells et al.); ours is its share of training users. Passing their p to our
#   ``novelty`` gives theirs; an item absent from training adds 0 bits on their side (their
#   inner merge drops it from the sum, not from the count): our ``unseen="zero"``;
# * diversity: the same definition (co-occurrence cosine of the training columns).
# With pandas >= 3, 1.2.1's ``novelty`` and ``diversity`` raise ``KeyError: 0`` on their
# last line (``Series.agg(...)[0]``, a positional lookup pandas 3 no longer falls back
# to), and the ``fillna(0, inplace=True)`` on a column in ``_get_intralist_similarity`` is
# a no-op under copy-on-write, so pairs never seen together are *skipped* (NaN) instead of
# counted as similarity 0. The helpers below call the released function and, only when it
# raises that KeyError, run its body's last step on the output of the released function it
# wraps; the diversity comparison uses training data in which every recommended pair
# co-occurs, where the fillna does not matter, and the similarity table itself (including
# the rule for pairs that never co-occur) is compared separately.
from recsys_ref.protocol import metrics as M  # noqa: E402
from recsys_ref.protocol.evaluate import interaction_matrix, topk_items  # noqa: E402

_COLS = dict(col_user="user", col_item="item")


def _peer_novelty(train: pd.DataFrame, reco: pd.DataFrame) -> float:
    try:
        return float(peer.novelty(train, reco, **_COLS))
    except KeyError:   # pandas >= 3: their final `[0]`; the same steps, indexed by label
        item_nov = peer.historical_item_novelty(train, reco, **_COLS)
        counts = reco.groupby("item").size().rename("count").reset_index()
        both = counts.merge(item_nov, on="item")
        return float((both["count"] * both["item_novelty"]).sum() / reco.shape[0])


def _peer_diversity(train: pd.DataFrame, reco: pd.DataFrame) -> float:
    try:
        return float(peer.diversity(train, reco, **_COLS))
    except KeyError:   # pandas >= 3: their final `[0]` on the mean of user_diversity
        return float(peer.user_diversity(train, reco, **_COLS)["user_diversity"].mean())


def _random_case(seed: int, num_users: int, num_items: int, density: float,
                 untrained: int = 0):
    """A random binary train frame (the last ``untrained`` items never trained) and our
    top-5 lists for every user from random scores, training items masked."""
    rng = np.random.default_rng(seed)
    trained = num_items - untrained
    mask = rng.random((num_users, trained)) < density
    mask[np.arange(num_users), rng.integers(0, trained, num_users)] = True  # >= 1 per user
    mask[rng.integers(0, num_users, trained), np.arange(trained)] = True   # >= 1 per item
    u, i = np.nonzero(mask)
    train = pd.DataFrame({"user": u.astype(np.int64), "item": i.astype(np.int64)})
    scores = torch.as_tensor(rng.random((num_users, num_items)))
    users = np.arange(num_users)
    topk = topk_items(scores, 5, users, num_items,
                      interaction_matrix(train, num_users, num_items))
    return train, topk, _peer_predictions(topk, users)[["user", "item"]]


@pytest.mark.parametrize("untrained", [0, 6])
def test_catalog_coverage_equals_peer_with_its_denominator(untrained):
    train, topk, reco = _random_case(0, 40, 60, 0.05, untrained)
    theirs = peer.catalog_coverage(train, reco, **_COLS)
    ours = M.catalogue_coverage(topk, 60)
    n_train_items = train["item"].nunique()
    assert n_train_items == 60 - untrained
    assert ours * 60 / n_train_items == pytest.approx(theirs, abs=TOL)
    assert (ours == pytest.approx(theirs, abs=TOL)) == (untrained == 0)
    assert 0 < ours < 1


@pytest.mark.parametrize("untrained", [0, 6])
def test_novelty_equals_peer_with_their_popularity(untrained):
    train, topk, reco = _random_case(1, 40, 60, 0.1, untrained)
    counts = np.bincount(train["item"], minlength=60)
    theirs = _peer_novelty(train, reco)
    ours = M.novelty(topk, counts / len(train), unseen="zero")
    assert ours == pytest.approx(theirs, abs=TOL)
    if untrained == 0:
        # the book's p(i) (share of users) differs by log2(rows per user), a constant
        book = M.beyond_accuracy(topk, interaction_matrix(train, 40, 60))["novelty"]
        assert book == pytest.approx(theirs - np.log2(len(train) / 40), abs=TOL)
    else:
        assert (topk.numpy() >= 54).any()          # untrained items were recommended


def test_novelty_equals_peer_on_ml100k(ml100k, ml100k_split):
    train, test = ml100k_split
    scores = _scores("random", ml100k.num_users, ml100k.num_items, train)
    _, topk, users = evaluate_ranking(scores, test, ml100k.num_users, ml100k.num_items,
                                      k=10, exclude=[train], metrics=["ndcg"],
                                      return_topk=True)
    reco = _peer_predictions(topk, users)[["user", "item"]]
    pairs = train[["user", "item"]]
    counts = np.bincount(pairs["item"], minlength=ml100k.num_items)
    theirs = _peer_novelty(pairs, reco)
    assert M.novelty(topk, counts / len(pairs)) == pytest.approx(theirs, abs=TOL)
    n_items = pairs["item"].nunique()
    assert (M.catalogue_coverage(topk, ml100k.num_items) * ml100k.num_items / n_items
            == pytest.approx(peer.catalog_coverage(pairs, reco, **_COLS), abs=TOL))


def test_cooccurrence_similarity_table_equals_cosine_of_train_columns():
    """Their similarity table against the cosine of our binary matrix's columns, pair by
    pair; pairs missing from their table (never co-occurring) have cosine 0 on ours."""
    train, _, _ = _random_case(2, 30, 25, 0.08)
    mat = interaction_matrix(train, 30, 25).toarray()
    norms = np.linalg.norm(mat, axis=0)
    cos = (mat.T @ mat) / np.outer(norms, norms)
    table = peer._get_cooccurrence_similarity(train, "user", "item", "sim")
    i1, i2 = table["i1"].to_numpy(), table["i2"].to_numpy()
    assert np.allclose(table["sim"].to_numpy(), cos[i1, i2], atol=TOL)
    listed = np.zeros((25, 25), dtype=bool)
    listed[i1, i2] = listed[i2, i1] = True
    assert (~listed).any() and np.all(cos[~listed] == 0)


@pytest.mark.filterwarnings("ignore::pandas.errors.ChainedAssignmentError")  # their fillna
@pytest.mark.parametrize("seed", [3, 4])
def test_diversity_equals_peer(seed):
    train, topk, reco = _random_case(seed, 40, 30, 0.5)
    sim = peer._get_cooccurrence_similarity(train, "user", "item", "sim")
    assert len(sim) == 30 * 31 // 2             # every pair co-occurs: fillna irrelevant
    theirs = _peer_diversity(train, reco)
    ours = M.intra_list_diversity(topk, interaction_matrix(train, 40, 30).T)
    assert ours == pytest.approx(theirs, abs=TOL)
    book = M.beyond_accuracy(topk, interaction_matrix(train, 40, 30))["diversity"]
    assert book == ours and 0 < ours < 1
