"""Ranking and rating metrics against hand-computed values and scikit-learn."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score

from recsys_ref.protocol import metrics as M

RANKED = [["a", "b", "c", "d", "e"]]
RELEVANT = [{"a", "c", "f"}]


def test_worked_example_from_chapter_1():
    # hits at ranks 1 and 3 of 5; |R_u| = 3 (computed on paper in chapter 1)
    assert M.precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.4)
    assert M.recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert M.f1_at_k(RANKED, RELEVANT, 5) == pytest.approx(0.5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(1.5 / idcg)
    assert M.map_at_k(RANKED, RELEVANT, 5) == pytest.approx((1 + 2 / 3) / 3)
    assert M.hit_rate_at_k(RANKED, RELEVANT, 5) == 1.0
    assert M.mrr_at_k(RANKED, RELEVANT, 5) == 1.0


def test_map_denominators_differ_when_more_relevant_than_k():
    ranked, relevant = [[1, 2]], [{1, 2, 3, 4}]
    # |R_u| = 4: Recommenders' `map` (their benchmark table's MAP)
    assert M.map_at_k(ranked, relevant, 2) == pytest.approx(2 / 4)
    # min(k, |R_u|) = 2: Recommenders' `map_at_k` since 1.2.0 (Spark's MAP@k)
    assert M.map_at_k(ranked, relevant, 2, denominator="min") == pytest.approx(1.0)


def test_mrr_uses_first_hit_and_zero_without_hit():
    assert M.mrr_at_k([[9, 8, 1], [7, 6, 5]], [{1}, {1}], 3) == pytest.approx((1 / 3 + 0) / 2)


def test_perfect_ranking_scores_one():
    ranked, relevant = [[1, 2, 3], [4, 5, 6]], [{1, 2, 3}, {4, 5, 6}]
    for fn in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.map_at_k, M.hit_rate_at_k,
               M.mrr_at_k, M.f1_at_k):
        assert fn(ranked, relevant, 3) == pytest.approx(1.0)


def test_no_hit_scores_zero():
    for fn in (M.precision_at_k, M.recall_at_k, M.ndcg_at_k, M.map_at_k, M.hit_rate_at_k,
               M.mrr_at_k, M.f1_at_k):
        assert fn([[1, 2]], [{3}], 2) == 0.0


def test_ndcg_matches_sklearn_on_random_lists():
    rng = np.random.default_rng(0)
    n_items, k = 30, 10
    for _ in range(20):
        scores = rng.random(n_items)
        rel = rng.random(n_items) < 0.2
        if not rel.any():
            continue
        ranked = [list(np.argsort(-scores, kind="stable"))]
        ours = M.ndcg_at_k(ranked, [set(np.flatnonzero(rel))], k)
        assert ours == pytest.approx(ndcg_score(rel[None].astype(float), scores[None], k=k))


def test_metrics_are_invariant_to_user_order():
    hits = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=torch.bool)
    n_rel = torch.tensor([2, 5, 3])
    perm = torch.tensor([2, 0, 1])
    assert M.ranking_metrics(hits, n_rel) == pytest.approx(
        M.ranking_metrics(hits[perm], n_rel[perm]))


def test_per_user_values_with_reduce_none():
    hits = torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)
    out = M.ranking_metrics(hits, torch.tensor([1, 1]), ["mrr", "precision"], reduce="none")
    assert out["mrr"].tolist() == [1.0, 0.5]
    assert out["precision"].tolist() == [0.5, 0.5]


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_raises(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        M.precision_at_k(RANKED, RELEVANT, k)


def test_empty_relevant_raises_clear_error():
    with pytest.raises(ValueError, match="no relevant items"):
        M.recall_at_k([[1, 2]], [set()], 2)
    with pytest.raises(ValueError, match="no users"):
        M.ranking_metrics(torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0))


def test_shape_mismatch_and_unknown_metric_raise():
    with pytest.raises(ValueError, match="num_relevant must have shape"):
        M.ranking_metrics(torch.ones(2, 3, dtype=torch.bool), torch.ones(3))
    with pytest.raises(ValueError, match="unknown metric"):
        M.ranking_metrics(torch.ones(1, 3, dtype=torch.bool), torch.ones(1), ["auc"])
    with pytest.raises(ValueError, match="repeats an item"):
        M.precision_at_k([[1, 1]], [{1}], 2)


def test_coverage_and_average_popularity_by_hand():
    topk = torch.tensor([[0, 1], [1, 2]])
    assert M.catalogue_coverage(topk, 10) == pytest.approx(0.3)
    pop = np.array([0.5, 0.25, 0.1, 0.0])
    assert M.average_popularity(topk, pop) == pytest.approx((0.5 + 0.25 + 0.25 + 0.1) / 4)
    with pytest.raises(ValueError, match="outside"):
        M.catalogue_coverage(topk, 2)


def test_rmse_mae_against_sklearn_and_limits():
    rng = np.random.default_rng(1)
    y, p = rng.integers(1, 6, 50), rng.random(50) * 5
    assert M.rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert M.mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert M.rmse(y, y) == 0 and M.mae(y, y) == 0
    assert M.rmse([1, 2], [2, 4]) == pytest.approx(math.sqrt(2.5))


def test_rating_metric_errors():
    with pytest.raises(ValueError, match="shape"):
        M.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        M.mae([1.0], [float("nan")])
    with pytest.raises(ValueError, match="no ratings"):
        M.rmse([], [])


# ---------------------------------------------------------------------------- beyond accuracy
def test_gini_exposure_hand_examples():
    # counts (0, 0, 3, 1) over 4 items: sorted (0, 0, 1, 3), weights (2j - n - 1) =
    # (-3, -1, 1, 3), so G = (1 + 9) / (4 * 4) = 0.625
    assert M.gini_exposure([[2], [2], [3], [2]], 4) == pytest.approx(0.625)
    # counts (1, 0, 3, 2): sorted (0, 1, 2, 3), G = (-1 + 2 + 9) / (4 * 6) = 5 / 12
    assert M.gini_exposure(torch.tensor([[2, 3], [2, 0], [2, 3]]), 4) == pytest.approx(5 / 12)
    assert M.gini_exposure([[0, 1], [2, 3]], 4) == 0.0                  # equal exposure
    assert M.gini_exposure([[0]] * 5, 4) == pytest.approx(3 / 4)      # (n - 1) / n
    assert M.gini_exposure([[0]] * 5, 1000) == pytest.approx(0.999)


def test_gini_exposure_equals_mean_absolute_difference_form():
    rng = np.random.default_rng(0)
    weights = np.linspace(1, 30, 60) / np.linspace(1, 30, 60).sum()    # skewed exposure
    topk = np.stack([rng.choice(60, 8, replace=False, p=weights) for _ in range(40)])
    c = np.bincount(topk.ravel(), minlength=80).astype(float)        # 20+ items never shown
    pairwise = np.abs(c[:, None] - c[None, :]).sum() / (2 * len(c) * c.sum())
    assert M.gini_exposure(topk, 80) == pytest.approx(pairwise, rel=1e-12)


def test_novelty_hand_example_and_unseen_rules():
    pop = np.array([0.5, 0.25, 1.0, 0.125])
    # -log2: 1, 2, 0, 3 bits; the lists show items 0, 1, 3, 2: mean (1 + 2 + 3 + 0) / 4
    assert M.novelty(torch.tensor([[0, 1], [3, 2]]), pop) == pytest.approx(1.5)
    pop0 = np.array([0.0, 0.5])
    with pytest.raises(ValueError, match="no training user had"):
        M.novelty([[0, 1]], pop0)
    assert M.novelty([[0, 1]], pop0, unseen="zero") == pytest.approx(0.5)    # (0 + 1) / 2
    assert M.novelty([[0, 1]], pop0, unseen=0.25) == pytest.approx(1.5)      # (2 + 1) / 2
    with pytest.raises(ValueError, match="shares in"):
        M.novelty([[0, 1]], np.array([3, 5]))                # counts, not shares
    with pytest.raises(ValueError, match="unseen must be"):
        M.novelty([[0, 1]], pop0, unseen="skip")


def test_intra_list_diversity_hand_example_dense_sparse_tensor():
    """v0 = (1, 0), v1 = (1, 1), v2 = (0, 1), v3 = 0. List (0, 1, 2): cosines 1/sqrt2, 0,
    1/sqrt2, mean sqrt2 / 3, diversity 1 - sqrt2 / 3. List (0, 2, 3): cosines 0, 0 and 0
    (v3 is the zero vector), diversity 1."""
    vec = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    topk = np.array([[0, 1, 2], [0, 2, 3]])
    expected = (1 - math.sqrt(2) / 3 + 1) / 2
    assert M.intra_list_diversity(topk, vec) == pytest.approx(expected)
    assert M.intra_list_diversity(topk, sp.csr_matrix(vec)) == pytest.approx(expected)
    assert M.intra_list_diversity(torch.tensor(topk), torch.tensor(vec)) == pytest.approx(expected)
    # the order of items inside a list does not matter
    assert M.intra_list_diversity(topk[:, ::-1].copy(), vec) == pytest.approx(expected)


def test_intra_list_diversity_is_cooccurrence_cosine_of_train_columns():
    """Columns of a binary user x item matrix: cos = |U_i & U_j| / sqrt(|U_i| |U_j|)."""
    rng = np.random.default_rng(1)
    train = (rng.random((30, 12)) < 0.3).astype(float)
    topk = np.stack([rng.choice(12, 4, replace=False) for _ in range(9)])
    users = [set(np.flatnonzero(train[:, i])) for i in range(12)]

    def cos(i, j):
        if not users[i] or not users[j]:
            return 0.0
        return len(users[i] & users[j]) / math.sqrt(len(users[i]) * len(users[j]))
    by_hand = np.mean([1 - np.mean([cos(i, j) for a, i in enumerate(lst) for j in lst[a + 1:]])
                       for lst in topk])
    assert M.intra_list_diversity(topk, sp.csr_matrix(train).T) == pytest.approx(by_hand)
    assert M.intra_list_diversity(topk, train.T) == pytest.approx(by_hand)


def test_intra_list_diversity_batches_agree(monkeypatch):
    rng = np.random.default_rng(2)
    vec = rng.normal(size=(50, 6))
    topk = np.stack([rng.choice(50, 5, replace=False) for _ in range(37)])
    whole = M.intra_list_diversity(topk, vec)
    monkeypatch.setattr(M, "_ILD_BATCH", 4)
    assert M.intra_list_diversity(topk, vec) == pytest.approx(whole, rel=1e-12)


def test_intra_list_diversity_errors():
    vec = np.eye(4)
    with pytest.raises(ValueError, match="k >= 2"):
        M.intra_list_diversity([[0], [1]], vec)
    with pytest.raises(ValueError, match="repeats an item"):
        M.intra_list_diversity([[0, 0]], vec)
    with pytest.raises(ValueError, match="transpose"):      # a user x item matrix, not .T
        M.intra_list_diversity([[0, 5]], np.ones((4, 6)))


def test_beyond_accuracy_hand_example():
    """Users: u0 {0, 1}, u1 {0, 2}, u2 {0}, u3 {1, 2}; item 3 never trained.
    p = (3/4, 2/4, 2/4, 0); lists (0, 3) and (1, 2).
    coverage 4/4; counts (1, 1, 1, 1), Gini 0; novelty: -log2 .75, item 3 counted as one
    user of 4 (2 bits), 1, 1; diversity: (0, 3) has cosine 0 (item 3 has no users),
    (1, 2) share u3: 1 / sqrt(2 * 2) = 0.5; mean of (1, 0.5)."""
    rows, cols = [0, 0, 1, 1, 2, 3, 3], [0, 1, 0, 2, 0, 1, 2]
    ratings = [5.0, 3.0, 4.0, 1.0, 2.0, 5.0, 4.0]             # values are ignored
    train = sp.csr_matrix((ratings, (rows, cols)), shape=(4, 4))
    out = M.beyond_accuracy(torch.tensor([[0, 3], [1, 2]]), train)
    assert out == pytest.approx({"coverage": 1.0, "gini": 0.0,
                                 "novelty": (-math.log2(0.75) + 2 + 1 + 1) / 4,
                                 "diversity": 0.75})
    one = M.beyond_accuracy([[0], [1]], train)
    assert math.isnan(one["diversity"]) and one["coverage"] == 0.5


def test_beyond_accuracy_counts_only_users_who_trained():
    """A held-out user without training rows (a new-user split) is not in p's denominator:
    with u4 empty the hand example's numbers do not change."""
    rows, cols = [0, 0, 1, 1, 2, 3, 3], [0, 1, 0, 2, 0, 1, 2]
    train4 = sp.csr_matrix((np.ones(7), (rows, cols)), shape=(4, 4))
    train5 = sp.csr_matrix((np.ones(7), (rows, cols)), shape=(5, 4))
    lists = [[0, 3], [1, 2]]
    assert M.beyond_accuracy(lists, train5) == M.beyond_accuracy(lists, train4)
